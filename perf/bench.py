#!/usr/bin/python3
"""ringcast's benchmark: the same load generator (build/ringload) drives ringcast and,
in the same run, its peers (uWebSockets, Socket.IO 4 + Redis adapter, Node ws, the
naive one-send-per-frame C server). Each server is pinned to core 0, the load generator to
core 1. Writes perf/results/<UTC stamp>.json (raw results and machine facts), PNG
plots next to it, and regenerates BENCHMARKS.md from that run alone.

  /usr/bin/python3 perf/bench.py [--short] [--build build] [--servers ringcast,uws,naive,ws,socketio]
  /usr/bin/python3 perf/bench.py --cross [--short]   # only the cross-node runs (two nodes + Redis)
  /usr/bin/python3 perf/bench.py --render perf/results/STAMP.json   # rewrite BENCHMARKS.md only
"""
import argparse
import json
import math
import os
import re
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
PRIOR_DELIVERIES = {"ringcast": 1_000_000, "uws": 1_000_000, "ringcast-sio": 1_000_000, "naive": 250_000, "ws": 150_000, "socketio": 30_000}

FULL = dict(n_fan=10000, warmup=1.0, step_dur=4.0, drain=2.0, search_steps=7,
            lat_rate=10, lat_dur=10.0, curve_rates=[10, 30, 100, 200, 300, 1000, 3000],
            curve_dur=4.0, subs=[1000, 2000, 5000, 10000], subs_steps=5,
            echo_conns=100, echo_dur=5.0, hs_conns=10000,
            rss_n=50000, rss_shards=3, sio_rss_n=19000, rss_hold=4.0,
            mem_levels=[1000, 10000], mem_big=[100000], mem_big_shards=6,
            heavy_rates=[200, 300], heavy_rounds=3, heavy_dur=4.0)
SHORT = dict(n_fan=2000, warmup=0.3, step_dur=1.0, drain=0.5, search_steps=3,
             lat_rate=10, lat_dur=2.0, curve_rates=[], curve_dur=1.0,
             subs=[1000, 2000], subs_steps=2,
             echo_conns=100, echo_dur=1.0, hs_conns=5000,
             rss_n=19000, rss_shards=1, sio_rss_n=3000, rss_hold=1.0,
             mem_levels=[1000, 10000], mem_big=[], mem_big_shards=6,
             heavy_rates=[], heavy_rounds=1, heavy_dur=1.0)

# Cross-node: subscribers on node B, the publisher on node A, both nodes and their
# redis-server on SERVER_CPU. lat: (publishes/s, subscribers) points; the rate search
# runs twice, with search_subs subscribers (fan-out: deliveries-bound) and with msg_subs
# (few deliveries per message: what the A -> Redis -> B link passes per second).
CROSS_FULL = dict(lat=[(100, 1), (100, 100), (1000, 1000)], lat_dur=10.0, search_subs=1000,
                  msg_subs=10, search_steps=7, warmup=1.0, step_dur=4.0, drain=2.0)
CROSS_SHORT = dict(lat=[(100, 1), (100, 100), (1000, 1000)], lat_dur=2.0, search_subs=1000,
                   msg_subs=10, search_steps=3, warmup=0.3, step_dur=1.0, drain=0.5)
CROSS_P99_TARGET_US = 2000
CROSS_PRIOR_DELIVERIES = {"ringcast": 1_000_000, "uws": 1_000_000, "socketio": 30_000}
CROSS_KINDS = ("ringcast", "socketio")
# ringcast's per-connection message bucket, set to the highest values its config
# accepts: the load generator's one publisher connection must never be throttled.
RC_MSG_RATE = 1_000_000
RC_MSG_BURST = 65535


# ---- servers -----------------------------------------------------------------------

class Server:
    """One server under test; started pinned to SERVER_CPU, stopped by PID."""

    def __init__(self, kind, build, logdir, shards=1, jwt=False, redis_url=None, node_id=None,
                 extra=()):
        """redis_url: a node of a cluster on that Redis (ringcast --redis, Socket.IO's
        adapter); without it Socket.IO gets a redis-server of its own."""
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
                         "--anonymous-publish", "--msg-rate", str(RC_MSG_RATE),
                         "--msg-burst", str(RC_MSG_BURST), "--max-connections", "200000",
                         "--log-level", "warn"]
            env["RINGCAST_API_KEY"] = API_KEY
            if jwt:
                env["RINGCAST_JWT_SECRET"] = JWT_SECRET
            if redis_url:
                cmd += ["--redis", redis_url, "--node-id", node_id or "bench-%d" % port]
            cmd += list(extra)
            ready, self.dialect, path = None, "ringcast", "/ws"
        elif kind == "ringcast-sio":
            # ringcast serving Socket.IO clients, its publishes through a Redis of its own
            # as the Socket.IO peer's go through its adapter's.
            if not redis_url:
                self.redis = bl.start_redis(logdir, cpu=SERVER_CPU)
                redis_url = "redis://%s:%d" % (bl.HOST, self.redis.port)
            cmd = pin + [os.path.join(build, "ringcast"), "--listen", "%s:%d" % (bl.HOST, port),
                         "--shards", str(shards), "--no-pin", "--public", "bench:*,echo:*",
                         "--anonymous-publish", "--msg-rate", str(RC_MSG_RATE),
                         "--msg-burst", str(RC_MSG_BURST), "--max-connections", "200000",
                         "--log-level", "warn", "--redis", redis_url,
                         "--socketio-map", "subscribe subscribe",
                         "--socketio-map", "message publish"] + list(extra)
            ready, self.dialect, path = (None, "socketio",
                                         "/socket.io/?EIO=4&transport=websocket")
        elif kind == "naive":
            cmd = pin + [os.path.join(build, "naive"), "--listen", "%s:%d" % (bl.HOST, port),
                         "--cpu", str(SERVER_CPU)]
            ready, self.dialect, path = "listening on", "ringcast", "/ws"
        elif kind == "ws":
            cmd = pin + ["node", os.path.join(bl.REPO, "perf/peers/ws-server.js"),
                         "--host", bl.HOST, "--port", str(port)]
            ready, self.dialect, path = "listening on", "ringcast", "/ws"
        elif kind == "uws":
            cmd = pin + ["node", os.path.join(bl.REPO, "perf/peers/uws-server.js"),
                         "--host", bl.HOST, "--port", str(port)]
            ready, self.dialect, path = "listening on", "ringcast", "/ws"
        elif kind == "socketio":
            if not redis_url:
                self.redis = bl.start_redis(logdir, cpu=SERVER_CPU)
                redis_url = "redis://%s:%d" % (bl.HOST, self.redis.port)
            cmd = pin + ["node", os.path.join(bl.REPO, "perf/peers/sio-server.js"),
                         "--host", bl.HOST, "--port", str(port), "--redis", redis_url] + list(extra)
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
        self.cmd = cmd
        if kind in ("ringcast", "ringcast-sio") and redis_url:
            self._wait_readyz(20.0)

    def _wait_readyz(self, timeout):
        """A clustered ringcast node says "ready" once both Redis connections are up."""
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            try:
                body = bl.http_get(self.port, "/readyz").strip()
            except OSError as e:
                body = str(e)
            if body == "ready":
                return
            if not self.alive():
                break
            time.sleep(0.1)
        self.stop()
        raise bl.BenchError("%s node not ready within %.0f s (/readyz: %s)\n%s" % (
            self.kind, timeout, body, self.proc.log_tail()))

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


class Cluster:
    """Two nodes of one kind on one private redis-server: node B holds the subscribers
    (url), node A the publisher (pub_url), so every message crosses Redis. All three
    processes run on SERVER_CPU and are stopped by PID."""

    def __init__(self, kind, build, logdir, extra=()):
        self.kind = kind
        self.redis = None
        self.nodes = []
        try:
            self.redis = bl.start_redis(logdir, cpu=SERVER_CPU)
            self.redis_url = "redis://%s:%d" % (bl.HOST, self.redis.port)
            for nid in ("A", "B"):
                self.nodes.append(Server(kind, build, logdir, redis_url=self.redis_url,
                                         node_id=nid, extra=extra))
        except BaseException:
            self.stop()
            raise
        a, b = self.nodes
        self.url, self.pub_url, self.dialect = b.url, a.url, b.dialect
        self.pid = b.pid

    def describe(self):
        return {"redis_url": self.redis_url, "redis_cmd": " ".join(self.redis.cmd),
                "node_a_cmd": " ".join(self.nodes[0].cmd),
                "node_b_cmd": " ".join(self.nodes[1].cmd),
                "url": self.url, "pub_url": self.pub_url}

    def pids(self):
        return {"redis": self.redis.pid, "node_a": self.nodes[0].pid,
                "node_b": self.nodes[1].pid}

    def alive(self):
        return self.redis.alive() and all(n.alive() for n in self.nodes)

    def quiet(self):
        for pid in self.pids().values():
            bl.wait_quiet(pid)

    def cpu_marks(self):
        return {k: bl.cpu_seconds(pid) for k, pid in self.pids().items()}

    def cpu_use(self, before, res, rate):
        """CPU of each process over the run, as a fraction of a core while the publisher
        was publishing (warm-up + measured time, about publishes_total / rate); the
        connection set-up is in the numerator too, so the nodes' figures are upper
        bounds. Redis does nothing but relay publishes."""
        after = self.cpu_marks()
        pub_s = (g(res, "publishes_total", default=0) or 0) / rate if rate else 0
        out = {"publishing_s": round(pub_s, 3)}
        for k, b in before.items():
            a = after.get(k)
            if a is None or b is None:
                continue
            out[k + "_cpu_s"] = round(a - b, 3)
            out[k] = (a - b) / pub_s if pub_s > 0 else None
        return out

    def redis_metrics(self):
        """ringcast's ringcast_redis_* counters of both nodes (Socket.IO has none)."""
        if self.kind != "ringcast":
            return None
        out = {}
        for name, n in zip(("node_a", "node_b"), self.nodes):
            m = bl.metrics(n.port)
            out[name] = {k: v for k, v in m.items() if "redis" in k or "relay_queue" in k}
        return out

    def stop(self):
        for n in reversed(self.nodes):
            n.stop()
        if self.redis is not None:
            self.redis.stop()


# ---- one run and its verdict ----------------------------------------------------------

def run_fanout(rl, srv, n, rate, p, dur=None, queue_limit=QUEUE_LIMIT_US):
    dur = dur or p["step_dur"]
    srv.quiet()
    cpu0 = srv.cpu_marks() if hasattr(srv, "cpu_marks") else None
    res = rl.run(srv.url, srv.dialect, "broadcast", conns=n, threads=threads_for(n),
                 src_addrs=src_addrs_for(n), channel=CHANNEL, rate=rate, payload=64,
                 duration=dur, warmup=p["warmup"], drain=p["drain"],
                 pub_url=getattr(srv, "pub_url", None),
                 timeout=dur + p["warmup"] + p["drain"] + 30 + n / 500)
    if cpu0 is not None:
        res["_server_cpu"] = srv.cpu_use(cpu0, res, rate)
    if hasattr(srv, "redis_metrics"):
        res["_redis_metrics"] = srv.redis_metrics()
    res["_rate"] = rate
    res["_conns"] = n
    ok, why = fanout_verdict(res, n, rate, dur, queue_limit)
    res["_ok"] = ok
    res["_why"] = why
    bl.log("  %-8s broadcast n=%d rate=%g: %s%s (deliveries/s %s, p99 %s us, loadgen cpu %s%s)" % (
        srv.kind, n, rate, "ok" if ok else "FAIL", "" if ok else " (%s)" % why,
        fmt_num(g(res, "deliveries_per_s")), fmt_num(g(res, "latency_us", "p99")),
        fmt_pct(bl.rl_cpu_util(res)),
        "" if "_server_cpu" not in res else ", redis cpu %s" % fmt_pct(
            g(res, "_server_cpu", "redis"))))
    return res


def fanout_verdict(res, n, rate, dur, queue_limit=QUEUE_LIMIT_US):
    if "error" in res:
        return False, res["error"]
    if (g(res, "unexpected_closes", default=0) or 0) > 0:
        # before the held count: a server that closed its subscribers holds none
        return False, "%d unexpected closes (close codes %s)" % (
            res["unexpected_closes"], json.dumps(g(res, "close_codes", default={})))
    if (g(res, "held", default=0) or 0) < n or (g(res, "failed", default=0) or 0) > 0:
        return False, "%s of %d connected, %s failed" % (g(res, "held"), n, g(res, "failed"))
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


def search_rate(rl, srv, n, p, start, steps, queue_limit=QUEUE_LIMIT_US, run=None):
    """Highest publish rate (per second) with a loss-free, sustained run: doubling or
    halving until the boundary is bracketed, then bisecting (geometric mean). run:
    the step, called as run_fanout is (default run_fanout); it returns the result
    with _rate and _ok set."""
    run = run or run_fanout
    best = None
    lo, hi = None, None
    rate = rnd_rate(start)
    tried = []
    for _ in range(steps):
        if not srv.alive():
            break
        res = run(rl, srv, n, rate, p, queue_limit=queue_limit)
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

        if srv.dialect == "ringcast":
            bl.log("%s: JSON ping/pong, %d connections" % (kind, p["echo_conns"]))
            srv.quiet()
            out["rpc"] = rl.run(srv.url, srv.dialect, "rpc", conns=p["echo_conns"], threads=1,
                                duration=p["echo_dur"], warmup=p["warmup"],
                                timeout=p["echo_dur"] + 40)
            bl.log("  ping/pong round trips/s %s, loadgen cpu %s" % (
                fmt_num(g(out["rpc"], "round_trips_per_s")), fmt_pct(bl.rl_cpu_util(out["rpc"]))))

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


def bench_cross(kind, args, cp, rl, logdir):
    """Cross-node: latency at the cp["lat"] points and the highest loss-free rate with
    cp["search_subs"] subscribers, then with cp["msg_subs"], all publishes going
    A -> Redis -> B."""
    out = {"server": kind}
    try:
        cl = Cluster(kind, args.build, logdir)
    except (bl.BenchError, OSError) as e:
        out["error"] = str(e)
        bl.log("%s cross-node: not measured: %s" % (kind, str(e).splitlines()[0]))
        return out
    try:
        out["cluster"] = cl.describe()
        lat_pts = sorted(cp["lat"], key=lambda x: x[0] * x[1])
        out["latency"] = []

        def lat_run(rate, n, dur):
            bl.log("%s cross-node: latency at %g publishes/s, %d subscribers on B" % (
                kind, rate, n))
            res = run_fanout(rl, cl, n, rate, cp, dur=dur)
            q = g(res, "latency_us", "p99")
            res["_p99_target_us"] = CROSS_P99_TARGET_US
            res["_p99_target_met"] = bool(res["_ok"] and q is not None
                                          and q <= CROSS_P99_TARGET_US)
            out["latency"].append(res)
            return res

        first = lat_run(lat_pts[0][0], lat_pts[0][1], cp["lat_dur"])
        base50 = g(first, "latency_us", "p50")
        limit = QUEUE_LIMIT_US
        if base50:
            limit = min(QUEUE_LIMIT_US, max(QUEUE_FLOOR_US, LIMIT_FACTOR * base50))
        out["queue_limit_us"] = limit

        def cross_search(n):
            """The highest loss-free rate with n subscribers on B; the first step
            asks for the deliveries/s the kind is expected to manage."""
            bl.log("%s cross-node: rate search, %d subscribers on B, p50 limit %.0f ms" % (
                kind, n, limit / 1000))
            b, t = search_rate(rl, cl, n, cp, CROSS_PRIOR_DELIVERIES[kind] / n,
                               cp["search_steps"], queue_limit=limit)
            return {"conns": n, "best": b, "tried": t,
                    "publisher_cap": RC_MSG_RATE if kind == "ringcast" else None}

        out["max_rate"] = cross_search(cp["search_subs"])
        best = out["max_rate"]["best"]

        for rate, count in lat_pts[1:]:
            if not cl.alive():
                break
            # Above the highest loss-free rate a long run only grows a queue: a
            # search-length step shows the same.
            over = best is None or rate * count > 1.12 * (g(best, "deliveries_per_s") or 0)
            r = lat_run(rate, count, cp["step_dur"] if over else cp["lat_dur"])
            r["_over_max_rate"] = over
        if cl.alive() and cp.get("msg_subs"):
            out["msg_rate"] = cross_search(cp["msg_subs"])
        dead = ["%s exited with %s: %s" % (nm, x.proc.returncode, x.log_tail(5))
                for nm, x in (("node A", cl.nodes[0].proc), ("node B", cl.nodes[1].proc),
                              ("redis", cl.redis)) if not x.alive()]
        if dead:
            out["crashed"] = "; ".join(dead)
    except Exception as e:  # noqa: BLE001 - one server's failure must not end the run
        out["error"] = "%s: %s" % (type(e).__name__, e)
        bl.log("%s cross-node: error: %s" % (kind, e))
    finally:
        cl.stop()
    if "error" not in out:
        out["single_latency"] = single_reference(kind, args, cp, rl, logdir, out["latency"])
    return out


def single_reference(kind, args, cp, rl, logdir, cross_runs):
    """The same latency points on one node (ringcast without --redis; Socket.IO as in
    the single-node runs, its adapter on its own Redis), same durations: what the
    cluster adds is the difference."""
    runs = []
    try:
        srv = Server(kind, args.build, logdir)
    except (bl.BenchError, OSError) as e:
        bl.log("%s one-node reference: not measured: %s" % (kind, str(e).splitlines()[0]))
        return [{"error": str(e)}]
    try:
        for c in cross_runs:
            if not srv.alive():
                break
            bl.log("%s one node (reference): latency at %g publishes/s, %d subscribers" % (
                kind, c["_rate"], c["_conns"]))
            dur = cp["step_dur"] if c.get("_over_max_rate") else cp["lat_dur"]
            r = run_fanout(rl, srv, c["_conns"], c["_rate"], cp, dur=dur)
            r["_over_max_rate"] = c.get("_over_max_rate", False)
            runs.append(r)
    except Exception as e:  # noqa: BLE001
        runs.append({"error": "%s: %s" % (type(e).__name__, e)})
    finally:
        srv.stop()
    return runs


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


def memory_levels(kind, args, p, rl, logdir, levels, shards=1, leave_s=12.0):
    """RSS of a fresh server, then with each number of idle connections in levels
    (connections are added, none leave in between), then leave_s seconds after they
    have all gone. cold_per_conn at each level = (RSS there - fresh RSS) / connections:
    what connections cost a fresh node, fixed pools they touch first included."""
    out = {"server": kind, "shards": shards, "levels": [], "leave_s": leave_s}
    srv = None
    spawned = []
    try:
        srv = Server(kind, args.build, logdir, shards=shards)
        time.sleep(1.0)
        out["fresh"] = bl.rss_bytes(srv.pid)[0]
        held = 0
        hold = 60 + levels[-1] / 1000.0
        for n in levels:
            add = n - held
            spawned.append(rl.spawn(srv.url, srv.dialect, "idle", os.path.join(
                logdir, "mem-%s-%d-%d.out" % (kind, shards, n)), conns=add,
                threads=threads_for(add), src_addrs=src_addrs_for(n), ramp_rate=5000,
                duration=hold))
            got = bl.wait_established(srv.port, n, timeout=30 + add / 1000.0, settle=1.0)
            time.sleep(1.0)
            rss = bl.rss_bytes(srv.pid)[0]
            out["levels"].append({"conns": n, "established": got, "rss": rss,
                                  "cold_per_conn": (rss - out["fresh"]) / got if got else None})
            held = n
            bl.log("  %s (%d shards) %d connections: RSS %.1f MiB, %.0f B each over fresh" % (
                kind, shards, got, rss / 2 ** 20, out["levels"][-1]["cold_per_conn"] or 0))
        for sp in spawned:
            bl.kill_pid(sp)
        spawned = []
        deadline = time.monotonic() + 30
        while bl.established(srv.port) > 0 and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(leave_s)
        out["after_leave"] = bl.rss_bytes(srv.pid)[0]
        bl.log("  %s: RSS %.1f MiB %.0f s after all left (fresh %.1f MiB)" % (
            kind, out["after_leave"] / 2 ** 20, leave_s, out["fresh"] / 2 ** 20))
    except Exception as e:  # noqa: BLE001
        out["error"] = "%s: %s" % (type(e).__name__, e)
        bl.log("%s memory levels: error: %s" % (kind, e))
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
    ap.add_argument("--servers", default="ringcast,uws,naive,ws,socketio")
    ap.add_argument("--no-rss", action="store_true", help="skip the memory runs")
    ap.add_argument("--results", default=os.path.join(bl.REPO, "perf", "results"))
    ap.add_argument("--md", default=os.path.join(bl.REPO, "BENCHMARKS.md"))
    ap.add_argument("--render", metavar="JSON", help="only rewrite BENCHMARKS.md from a result")
    ap.add_argument("--cross", action="store_true",
                    help="only the cross-node runs; writes perf/results/cross-STAMP.json and "
                         "re-renders BENCHMARKS.md from the newest full result plus it")
    ap.add_argument("--no-cross", action="store_true", help="skip the cross-node runs")
    args = ap.parse_args()

    if args.render:
        with open(args.render) as f:
            doc = json.load(f)
        if str(doc.get("mode", "")).startswith("cross"):
            return 0 if render_latest(os.path.dirname(os.path.abspath(args.render)),
                                      args.md) else 1
        benchreport.write_all(doc, args.render, args.md)
        return 0

    p = SHORT if args.short else FULL
    cp = CROSS_SHORT if args.short else CROSS_FULL
    stamp = bl.now_utc_stamp()
    os.makedirs(args.results, exist_ok=True)
    logdir = bl.make_logdir("ringcast-bench-%s-" % stamp)
    t0 = time.monotonic()
    rl_bin = os.path.join(args.build, "ringload")
    if args.cross:
        return main_cross(args, cp, stamp, logdir, rl_bin, t0)
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
        if p["heavy_rates"]:
            doc["heavy"] = heavy_latency(args, p, rl, logdir)
        if not args.no_cross:
            doc["cross"] = run_cross(args, cp, stamp, doc["command"], rl, logdir)
        if not args.no_rss:
            kinds = args.servers.split(",")
            if "ringcast" in kinds:
                bl.log("ringcast: memory per idle connection")
                for sub in (False, True):
                    doc["rss"].append(rss_run("ringcast", args, p, rl, logdir, p["rss_n"],
                                              shards=p["rss_shards"], subscribed=sub))
            doc["memory"] = []
            for kind, levels, shards in (("ringcast", p["mem_levels"], 1),
                                         ("ringcast", p["mem_big"], p["mem_big_shards"]),
                                         ("uws", p["mem_levels"], 1)):
                if kind in kinds and levels:
                    bl.log("%s: memory from fresh, %s connections, and after" % (kind, levels))
                    doc["memory"].append(memory_levels(kind, args, p, rl, logdir, levels,
                                                       shards=shards))
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


HEAVY_KINDS = ("ringcast", "uws")


def heavy_latency(args, p, rl, logdir):
    """Latency under heavy fan-out: p["n_fan"] subscribers at each of
    p["heavy_rates"], ringcast and uWebSockets in turn, p["heavy_rounds"] rounds.
    Within a round both servers stay up (the idle one costs nothing) and take
    turns, so a noisy minute of the machine falls on both; each round starts them
    afresh. Every step runs whatever the
    server's loss-free rate was: a step that lost messages is reported as such.
    Each round starts with a step at p["lat_rate"]: the server's CPU over a step
    at rate R less its CPU over that one (same number of connections, same set-up
    and teardown) is what R's extra deliveries cost it, a figure the load
    generator does not cap."""
    kinds = [k for k in HEAVY_KINDS if k in args.servers.split(",")]
    out = {"rates": p["heavy_rates"], "base_rate": p["lat_rate"], "rounds": p["heavy_rounds"],
           "n": p["n_fan"],
           "dur": p["heavy_dur"], "runs": {k: {} for k in kinds}}
    if len(kinds) < 2 or not p["heavy_rates"]:
        return out
    for rnd in range(p["heavy_rounds"]):
        # Fresh servers each round: an overloaded step can leave a server busy for
        # many seconds after its clients left, which would fall on the next round.
        servers = {}
        try:
            for k in kinds:
                try:
                    servers[k] = Server(k, args.build, logdir)
                except (bl.BenchError, OSError) as e:
                    out.setdefault("errors", {})[k] = str(e)
                    bl.log("%s: not measured: %s" % (k, str(e).splitlines()[0]))
            for rate in [p["lat_rate"]] + p["heavy_rates"]:
                for k, srv in servers.items():
                    if not srv.alive():
                        continue
                    bl.log("%s: heavy fan-out latency, round %d, %d publishes/s" % (
                        k, rnd + 1, rate))
                    # The other server too: Node goes on closing sockets and collecting
                    # garbage for seconds after its clients leave, on the same core.
                    for other in servers.values():
                        if other is not srv:
                            other.quiet()
                    cpu0 = bl.cpu_seconds(srv.pid)
                    res = run_fanout(rl, srv, p["n_fan"], rate, p, dur=p["heavy_dur"])
                    cpu1 = bl.cpu_seconds(srv.pid)
                    out["runs"][k].setdefault(str(rate), []).append({
                        "server_cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
                        "ok": res["_ok"], "why": res["_why"], "p50": g(res, "latency_us", "p50"),
                        "p99": g(res, "latency_us", "p99"), "lost": g(res, "lost"),
                        "expected": g(res, "expected"), "received": g(res, "received"),
                        "loadgen_util": bl.rl_cpu_util(res), "cmd": res.get("_cmd"),
                        "error": res.get("error")})
        finally:
            for srv in servers.values():
                srv.stop()
    return out


def run_cross(args, cp, stamp, command, rl, logdir):
    t0 = time.monotonic()
    out = {"stamp": stamp, "command": command, "params": cp,
           "p99_target_us": CROSS_P99_TARGET_US, "server_cpu": SERVER_CPU,
           "loadgen_cpu": LOADGEN_CPU, "servers": {}}
    for kind in [k for k in args.servers.split(",") if k in CROSS_KINDS]:
        out["servers"][kind] = bench_cross(kind, args, cp, rl, logdir)
    out["elapsed_s"] = round(time.monotonic() - t0, 1)
    return out


def main_cross(args, cp, stamp, logdir, rl_bin, t0):
    """--cross: the cross-node runs alone, in a result file of their own."""
    if not os.access(rl_bin, os.X_OK):
        print("bench: %s missing; run make first" % rl_bin, file=sys.stderr)
        return 2
    command = "/usr/bin/python3 perf/bench.py --cross" + (" --short" if args.short else "")
    doc = {"stamp": stamp, "mode": "cross-short" if args.short else "cross",
           "command": command, "argv": sys.argv, "machine": bl.machine_info(args.build),
           "logdir": logdir}
    rl = bl.Ringload(rl_bin, cpu=LOADGEN_CPU)
    bl.log("bench %s, logs in %s" % (doc["mode"], logdir))
    out_json = os.path.join(args.results, "cross-%s.json" % stamp)
    try:
        doc["cross"] = run_cross(args, cp, stamp, command, rl, logdir)
    finally:
        doc["elapsed_s"] = round(time.monotonic() - t0, 1)
        with open(out_json, "w") as f:
            json.dump(doc, f, indent=1, default=str)
        bl.log("raw results: %s" % out_json)
    if render_latest(args.results, args.md):
        bl.log("wrote %s" % args.md)
    return 0


def render_latest(results_dir, md):
    """Re-renders BENCHMARKS.md from the newest full or short result in results_dir;
    the report takes the newest cross-node figures itself. False when there is none."""
    mains = [f for f in bl.files_matching(os.path.join(results_dir, "*.json"))
             if re.match(r"^\d{8}T\d{6}Z\.json$", os.path.basename(f))]
    if not mains:
        bl.log("no full bench result in %s: BENCHMARKS.md left as it is" % results_dir)
        return False
    with open(mains[-1]) as f:
        doc = json.load(f)
    benchreport.write_all(doc, mains[-1], md)
    return True


if __name__ == "__main__":
    sys.exit(main())
