#!/usr/bin/python3
"""ringcast's benchmark: the same load generator (build/ringload) drives ringcast and,
in the same run, its peers (Socket.IO 4 + Redis adapter, Node ws, the naive
one-send-per-frame C server). Each server is pinned to core 0, the load generator to
core 1. Writes perf/results/<UTC stamp>.json (raw results and machine facts), PNG
plots next to it, and regenerates BENCHMARKS.md from that run alone.

  /usr/bin/python3 perf/bench.py [--short] [--build build] [--servers ringcast,naive,ws,socketio]
  /usr/bin/python3 perf/bench.py --render perf/results/STAMP.json   # rewrite BENCHMARKS.md only
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import g  # noqa: E402
import benchreport  # noqa: E402

SERVER_CPU = 0
LOADGEN_CPU = 1
CHANNEL = "bench:fan"
JWT_SECRET = "bench-jwt-secret-0123456789abcdef"
API_KEY = "bench-api-key"
# A step sustains its rate when its median latency stays under LIMIT_FACTOR x the
# server's own median at the low latency rate, but never demanding less than
# QUEUE_FLOOR_US nor allowing more than QUEUE_LIMIT_US. A queue that grows during the
# step moves the median; the p99 is left out of the verdict because on loopback a
# single retransmitted segment (at least 200 ms, see BENCHMARKS.md) moves it.
QUEUE_LIMIT_US = 500_000
QUEUE_FLOOR_US = 50_000
LIMIT_FACTOR = 3.0

# Deliveries/s a server is roughly expected to sustain: only the first rate the
# fan-out search tries, so a wrong guess costs steps, not correctness.
PRIOR_DELIVERIES = {"ringcast": 1_000_000, "naive": 250_000, "ws": 150_000, "socketio": 30_000}

FULL = dict(n_fan=10000, warmup=1.0, step_dur=4.0, drain=2.0, search_steps=7,
            lat_rate=10, lat_dur=10.0, curve_rates=[10, 30, 100, 300, 1000, 3000],
            curve_dur=4.0, subs=[1000, 2000, 5000, 10000], subs_steps=5,
            echo_conns=100, echo_dur=5.0, hs_conns=10000,
            rss_n=50000, rss_shards=3, sio_rss_n=19000, rss_hold=4.0)
SHORT = dict(n_fan=2000, warmup=0.3, step_dur=1.0, drain=0.5, search_steps=3,
             lat_rate=10, lat_dur=2.0, curve_rates=[], curve_dur=1.0,
             subs=[1000, 2000], subs_steps=2,
             echo_conns=100, echo_dur=1.0, hs_conns=5000,
             rss_n=19000, rss_shards=1, sio_rss_n=3000, rss_hold=1.0)


# ---- servers -----------------------------------------------------------------------

class Server:
    """One server under test; started pinned to SERVER_CPU, stopped by PID."""

    def __init__(self, kind, build, logdir, shards=1, jwt=False):
        self.kind = kind
        self.redis = None
        self.proc = None
        port = bl.free_port()
        pin = ["taskset", "-c", str(SERVER_CPU)]
        env = dict(os.environ)
        env.pop("RINGCAST_JWT_SECRET", None)
        env.pop("RINGCAST_API_KEY", None)
        if kind == "ringcast":
            cmd = pin + [os.path.join(build, "ringcast"), "--listen", "%s:%d" % (bl.HOST, port),
                         "--shards", str(shards), "--no-pin", "--public", "bench:*,echo:*",
                         "--anonymous-publish", "--msg-rate", "1000000",
                         "--msg-burst", "65535", "--max-connections", "200000",
                         "--log-level", "warn"]
            env["RINGCAST_API_KEY"] = API_KEY
            if jwt:
                env["RINGCAST_JWT_SECRET"] = JWT_SECRET
            ready, self.dialect, path = None, "ringcast", "/ws"
        elif kind == "naive":
            cmd = pin + [os.path.join(build, "naive"), "--listen", "%s:%d" % (bl.HOST, port),
                         "--cpu", str(SERVER_CPU)]
            ready, self.dialect, path = "listening on", "ringcast", "/ws"
        elif kind == "ws":
            cmd = pin + ["node", os.path.join(bl.REPO, "perf/peers/ws-server.js"),
                         "--host", bl.HOST, "--port", str(port)]
            ready, self.dialect, path = "listening on", "ringcast", "/ws"
        elif kind == "socketio":
            self.redis = bl.start_redis(logdir, cpu=SERVER_CPU)
            cmd = pin + ["node", os.path.join(bl.REPO, "perf/peers/sio-server.js"),
                         "--host", bl.HOST, "--port", str(port),
                         "--redis", "redis://%s:%d" % (bl.HOST, self.redis.port)]
            ready, self.dialect, path = ("listening on", "socketio",
                                         "/socket.io/?EIO=4&transport=websocket")
        else:
            raise bl.BenchError("unknown server " + kind)
        self.port = port
        self.url = "ws://%s:%d%s" % (bl.HOST, port, path)
        try:
            self.proc = bl.Proc(kind, cmd, logdir, ready_text=ready, port=port, env=env)
        except BaseException:
            self.stop()
            raise
        self.pid = self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def quiet(self):
        """Lets the server finish the previous run's work before the next one."""
        bl.wait_quiet(self.pid)
        if self.redis is not None:
            bl.wait_quiet(self.redis.pid)

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
        if self.redis is not None:
            self.redis.stop()


# ---- one run and its verdict ----------------------------------------------------------

def run_fanout(rl, srv, n, rate, p, dur=None, queue_limit=QUEUE_LIMIT_US):
    dur = dur or p["step_dur"]
    srv.quiet()
    res = rl.run(srv.url, srv.dialect, "broadcast", conns=n, threads=threads_for(n),
                 src_addrs=src_addrs_for(n), channel=CHANNEL, rate=rate, payload=64,
                 duration=dur, warmup=p["warmup"], drain=p["drain"],
                 timeout=dur + p["warmup"] + p["drain"] + 30 + n / 500)
    res["_rate"] = rate
    res["_conns"] = n
    ok, why = fanout_verdict(res, n, rate, dur, queue_limit)
    res["_ok"] = ok
    res["_why"] = why
    bl.log("  %-8s broadcast n=%d rate=%g: %s%s (deliveries/s %s, p99 %s us, loadgen cpu %s)" % (
        srv.kind, n, rate, "ok" if ok else "FAIL", "" if ok else " (%s)" % why,
        fmt_num(g(res, "deliveries_per_s")), fmt_num(g(res, "latency_us", "p99")),
        fmt_pct(bl.rl_cpu_util(res))))
    return res


def fanout_verdict(res, n, rate, dur, queue_limit=QUEUE_LIMIT_US):
    if "error" in res:
        return False, res["error"]
    if (g(res, "held", default=0) or 0) < n or (g(res, "failed", default=0) or 0) > 0:
        return False, "%s of %d connected, %s failed" % (g(res, "held"), n, g(res, "failed"))
    if (g(res, "unexpected_closes", default=0) or 0) > 0:
        return False, "%d unexpected closes" % res["unexpected_closes"]
    if (g(res, "lost", default=0) or 0) > 0:
        return False, "%d lost" % res["lost"]
    pubs = g(res, "publishes", default=0) or 0
    if pubs < 0.9 * rate * dur - 1:
        return False, "publisher sent only %d of %d" % (pubs, rate * dur)
    if (g(res, "received", default=0) or 0) <= 0:
        return False, "nothing received"
    p50 = g(res, "latency_us", "p50")
    if p50 is not None and p50 > queue_limit:
        return False, "p50 %.0f ms > %.0f ms: queueing" % (p50 / 1000, queue_limit / 1000)
    return True, ""


def threads_for(n):
    return max(1, math.ceil(n / 15000))


def src_addrs_for(n):
    # Runs follow each other quickly and leave sockets in TIME_WAIT; spreading the
    # clients over several source addresses keeps connect() from hunting for ports.
    return max(8, math.ceil(n / 10000))


def fmt_num(v):
    if v is None:
        return "-"
    return "%.0f" % v if abs(v) >= 10 else "%.3g" % v


def fmt_pct(u):
    return "-" if u is None else "%.0f%%" % (100 * u)


MIN_RATE = 0.2


def rnd_rate(r):
    """Publish rates: whole numbers from 10/s, one decimal below (Socket.IO at 10k)."""
    r = max(MIN_RATE, r)
    return int(round(r)) if r >= 10 else round(r, 1)


def search_rate(rl, srv, n, p, start, steps, queue_limit=QUEUE_LIMIT_US):
    """Highest publish rate (per second) with a loss-free, sustained run: doubling or
    halving until the boundary is bracketed, then bisecting (geometric mean)."""
    best = None
    lo, hi = None, None
    rate = rnd_rate(start)
    tried = []
    for _ in range(steps):
        if not srv.alive():
            break
        res = run_fanout(rl, srv, n, rate, p, queue_limit=queue_limit)
        tried.append(res)
        if res["_ok"]:
            lo = rate
            if best is None or rate >= best["_rate"]:
                best = res
        else:
            hi = rate
        if lo is not None and hi is not None:
            if hi / lo < 1.12:
                break
            nxt = rnd_rate(math.sqrt(lo * hi))
        elif lo is not None:
            nxt = rnd_rate(lo * 2)
        else:
            if hi <= MIN_RATE:
                break
            nxt = rnd_rate(max(MIN_RATE, hi / 2))
        if nxt in (lo, hi):
            break
        rate = nxt
    return best, tried


# ---- scenarios per server -----------------------------------------------------------------

def bench_server(kind, args, p, rl, logdir):
    out = {"server": kind}
    try:
        srv = Server(kind, args.build, logdir)
    except (bl.BenchError, OSError) as e:
        out["error"] = str(e)
        bl.log("%s: not measured: %s" % (kind, str(e).splitlines()[0]))
        return out
    try:
        out["pid"] = srv.pid
        n = p["n_fan"]
        bl.log("%s: latency at %d publishes/s, %d subscribers" % (kind, p["lat_rate"], n))
        out["latency"] = run_fanout(rl, srv, n, p["lat_rate"], p, dur=p["lat_dur"])
        base50 = g(out["latency"], "latency_us", "p50")
        limit = QUEUE_LIMIT_US
        if base50:
            limit = min(QUEUE_LIMIT_US, max(QUEUE_FLOOR_US, LIMIT_FACTOR * base50))
        out["queue_limit_us"] = limit

        bl.log("%s: fan-out search, %d subscribers, p50 limit %.0f ms" % (kind, n, limit / 1000))
        start = PRIOR_DELIVERIES[kind] / n
        best, tried = search_rate(rl, srv, n, p, start, p["search_steps"], queue_limit=limit)
        out["fanout"] = {"conns": n, "best": best, "tried": tried}

        curve = [r for r in tried]
        max_rate = best["_rate"] if best else None
        for r in p["curve_rates"]:
            if max_rate is None or r > max_rate or r == p["lat_rate"]:
                continue
            if any(t["_rate"] == r for t in curve):
                continue
            curve.append(run_fanout(rl, srv, n, r, p, dur=p["curve_dur"], queue_limit=limit))
        curve.append(out["latency"])
        out["latency_curve"] = sorted(
            [{"rate": t["_rate"], "ok": t["_ok"], "p50": g(t, "latency_us", "p50"),
              "p99": g(t, "latency_us", "p99"), "loadgen_util": bl.rl_cpu_util(t)}
             for t in curve if "error" not in t], key=lambda x: x["rate"])

        subs = []
        ref = best
        for count in p["subs"]:
            if count == n:
                subs.append({"conns": n, "best": best, "tried": []})
                continue
            base = g(ref, "deliveries_per_s") or PRIOR_DELIVERIES[kind]
            bl.log("%s: fan-out search, %d subscribers" % (kind, count))
            b, t = search_rate(rl, srv, count, p, base / count, p["subs_steps"], queue_limit=limit)
            subs.append({"conns": count, "best": b, "tried": t})
        out["subs_curve"] = subs

        bl.log("%s: echo, %d connections" % (kind, p["echo_conns"]))
        srv.quiet()
        out["echo"] = rl.run(srv.url, srv.dialect, "echo", conns=p["echo_conns"], threads=1,
                             channel="bench:echo", payload=64, duration=p["echo_dur"],
                             warmup=p["warmup"], timeout=p["echo_dur"] + 40)
        bl.log("  echo round trips/s %s, loadgen cpu %s" % (
            fmt_num(g(out["echo"], "round_trips_per_s")), fmt_pct(bl.rl_cpu_util(out["echo"]))))

        bl.log("%s: handshakes, %d connections" % (kind, p["hs_conns"]))
        hs_n = p["hs_conns"]
        srv.quiet()
        out["handshakes"] = rl.run(srv.url, srv.dialect, "idle", conns=hs_n,
                                   threads=threads_for(hs_n), src_addrs=src_addrs_for(hs_n),
                                   duration=1, timeout=60 + hs_n / 200)
        bl.log("  handshakes/s %s (%s of %d), loadgen cpu %s" % (
            fmt_num(g(out["handshakes"], "handshakes_per_s")), g(out["handshakes"], "opened"),
            hs_n, fmt_pct(bl.rl_cpu_util(out["handshakes"]))))
        if not srv.alive():
            out["crashed"] = "server exited with %s: %s" % (srv.proc.proc.returncode,
                                                            srv.proc.log_tail(5))
    except Exception as e:  # noqa: BLE001 - one server's failure must not end the run
        out["error"] = "%s: %s" % (type(e).__name__, e)
        bl.log("%s: error: %s" % (kind, e))
    finally:
        srv.stop()
    return out


def rss_run(kind, args, p, rl, logdir, n, shards=1, subscribed=False):
    """User-space memory per idle connection, two ways: cold = (RSS with n connections
    - RSS of the fresh server) / n, which also counts pools touched for the first time
    (receive buffers, handshake scratch); marginal = (RSS at n - RSS at n/2) / (n/2),
    where such fixed costs cancel out. Plus the kernel's socket memory (sockstat TCP
    mem and the TCP slab) per connection, both ends of the loopback pair included."""
    out = {"server": kind, "conns_target": n, "subscribed": subscribed, "shards": shards}
    srv = None
    spawned = []
    try:
        srv = Server(kind, args.build, logdir, shards=shards, jwt=subscribed)
        time.sleep(0.5)
        out["rss_before"], out["smaps_before"] = bl.rss_bytes(srv.pid)
        out["sockstat_before"] = bl.sockstat()
        out["slab_before"] = bl.slab_tcp()
        half = n // 2
        opts = dict(threads=threads_for(half), src_addrs=src_addrs_for(n))
        # the first half must outlive the second half's ramp and both samples
        durations = (p["rss_hold"] + 4 + n / 2000.0, p["rss_hold"] + 1.5)
        scenario = "idle"
        if subscribed:
            # churn at rate 0: every connection subscribes to --channel and stays.
            scenario = "churn"
            opts["churn_rate"] = 0
            opts["channel"] = "bench:idle"
            if kind == "ringcast":
                opts["token"] = bl.jwt_hs256({"sub": "user-000123456",
                                              "subscribe": ["bench:*", "user:{sub}"]},
                                             JWT_SECRET)
        marks = []
        for step, count in enumerate((half, n - half)):
            spawned.append(rl.spawn(srv.url, srv.dialect, scenario, os.path.join(
                logdir, "rss-%s-%d-%d-%d.out" % (kind, n, subscribed, step)),
                conns=count, duration=durations[step], **opts))
            want = half if step == 0 else n
            got = bl.wait_established(srv.port, want, timeout=30 + n / 1000.0, settle=1.0)
            if subscribed and kind == "ringcast":
                # established is not yet subscribed: wait for the acks to be counted.
                _wait_subscribed(srv.port, want, timeout=20)
            time.sleep(0.5)
            rss, sm = bl.rss_bytes(srv.pid)
            marks.append({"established": got, "rss": rss, "smaps": sm,
                          "sockstat": bl.sockstat(), "slab": bl.slab_tcp()})
        out["marks"] = marks
        got = marks[-1]["established"]
        out["established"] = got
        out["rss_after"], out["smaps_after"] = marks[-1]["rss"], marks[-1]["smaps"]
        out["sockstat_after"] = marks[-1]["sockstat"]
        out["slab_after"] = marks[-1]["slab"]
        if kind == "ringcast":
            m = bl.metrics(srv.port)
            out["metrics_subset"] = {k: v for k, v in m.items()
                                     if "connections" in k or "websockets" in k or "subscri" in k}
        out["loadgen"] = [bl.finish_spawned(sp, timeout=durations[0] + 30 + n / 1000.0)
                          for sp in spawned]
        spawned = []
        if got > 0 and out["rss_after"] and out["rss_before"]:
            out["rss_per_conn_cold"] = (out["rss_after"] - out["rss_before"]) / got
            d_conns = marks[1]["established"] - marks[0]["established"]
            if d_conns > 0 and marks[0]["rss"]:
                out["rss_per_conn"] = (marks[1]["rss"] - marks[0]["rss"]) / d_conns
                if marks[1]["smaps"] and marks[0]["smaps"]:
                    out["smaps_per_conn"] = (marks[1]["smaps"] - marks[0]["smaps"]) / d_conns
            sb, sa = out["sockstat_before"], out["sockstat_after"]
            if "mem_bytes" in sb and "mem_bytes" in sa:
                out["sockstat_mem_per_conn"] = (sa["mem_bytes"] - sb["mem_bytes"]) / got
            if out["slab_before"] is not None and out["slab_after"] is not None:
                out["slab_per_conn"] = (out["slab_after"] - out["slab_before"]) / got
        if got < n:
            out["note"] = "only %d of %d connections established" % (got, n)
        bl.log("  %s n=%d subscribed=%s: RSS/conn marginal %s B, cold %s B (established %d); "
               "kernel per conn (both ends): sockstat mem %s B, TCP slab %s B" % (
                   kind, n, subscribed, fmt_num(out.get("rss_per_conn")),
                   fmt_num(out.get("rss_per_conn_cold")), got,
                   fmt_num(out.get("sockstat_mem_per_conn")), fmt_num(out.get("slab_per_conn"))))
    except Exception as e:  # noqa: BLE001
        out["error"] = "%s: %s" % (type(e).__name__, e)
        bl.log("%s rss: error: %s" % (kind, e))
    finally:
        for sp in spawned:
            bl.kill_pid(sp)
        if srv is not None:
            srv.stop()
    return out


def _wait_subscribed(port, n, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = bl.metrics(port)
        subs = [v for k, v in m.items() if "{" not in k and "subscri" in k and "total" not in k]
        if subs and max(subs) >= n:
            return
        time.sleep(0.25)
    time.sleep(2.0)  # no usable gauge: give the subscribes time


# ---- main -------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", action="store_true", help="the < 2 minute variant")
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--servers", default="ringcast,naive,ws,socketio")
    ap.add_argument("--no-rss", action="store_true", help="skip the memory runs")
    ap.add_argument("--results", default=os.path.join(bl.REPO, "perf", "results"))
    ap.add_argument("--md", default=os.path.join(bl.REPO, "BENCHMARKS.md"))
    ap.add_argument("--render", metavar="JSON", help="only rewrite BENCHMARKS.md from a result")
    args = ap.parse_args()

    if args.render:
        with open(args.render) as f:
            doc = json.load(f)
        benchreport.write_all(doc, args.render, args.md)
        return 0

    p = SHORT if args.short else FULL
    stamp = bl.now_utc_stamp()
    os.makedirs(args.results, exist_ok=True)
    logdir = bl.make_logdir("ringcast-bench-%s-" % stamp)
    t0 = time.monotonic()
    rl_bin = os.path.join(args.build, "ringload")
    doc = {"stamp": stamp, "mode": "short" if args.short else "full", "params": p,
           "command": "make %s" % ("bench-short" if args.short else "bench"),
           "argv": sys.argv, "machine": bl.machine_info(args.build), "servers": {},
           "rss": [], "logdir": logdir, "server_cpu": SERVER_CPU, "loadgen_cpu": LOADGEN_CPU,
           "queue_limit_us": QUEUE_LIMIT_US, "queue_floor_us": QUEUE_FLOOR_US,
           "limit_factor": LIMIT_FACTOR}
    if os.cpu_count() < 2:
        doc["warning"] = "fewer than 2 CPUs: server and load generator share a core"
    if not os.access(rl_bin, os.X_OK):
        print("bench: %s missing; run make first" % rl_bin, file=sys.stderr)
        return 2
    rl = bl.Ringload(rl_bin, cpu=LOADGEN_CPU)
    bl.log("bench %s, logs in %s" % (doc["mode"], logdir))
    out_json = os.path.join(args.results, "%s.json" % stamp)
    try:
        for kind in [s for s in args.servers.split(",") if s]:
            doc["servers"][kind] = bench_server(kind, args, p, rl, logdir)
        if not args.no_rss:
            kinds = args.servers.split(",")
            if "ringcast" in kinds:
                bl.log("ringcast: memory per idle connection")
                for sub in (False, True):
                    doc["rss"].append(rss_run("ringcast", args, p, rl, logdir, p["rss_n"],
                                              shards=p["rss_shards"], subscribed=sub))
            if "socketio" in kinds:
                bl.log("socketio: memory per idle connection")
                doc["rss"].append(rss_run("socketio", args, p, rl, logdir, p["sio_rss_n"]))
    finally:
        doc["elapsed_s"] = round(time.monotonic() - t0, 1)
        with open(out_json, "w") as f:
            json.dump(doc, f, indent=1, default=str)
        bl.log("raw results: %s" % out_json)
    benchreport.write_all(doc, out_json, args.md)
    bl.log("wrote %s (%.0f s)" % (args.md, doc["elapsed_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
