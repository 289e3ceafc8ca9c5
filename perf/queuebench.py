#!/usr/bin/python3
"""Waiting-room benchmark: WAITERS connections (default 100000) wait in queue `bench`
behind a line of ENTRIES (default 1000000) in a private Redis; for TICKS admission
ticks it measures the tick's Redis round trip and round trips (ringcast's /metrics),
Redis's CPU, and the time from each tick until every waiter has its new position
(ringload --scenario queue: the tick's queue.tick frame, the same for every waiter,
from which ringload derives each waiter's position with its ticket). Target: <= 200 ms.

Writes perf/results/queue-<UTC stamp>.json and rewrites the block between
<!-- queue-bench:start --> and <!-- queue-bench:end --> in BENCHMARKS.md (appended
when absent; --no-report leaves BENCHMARKS.md alone).

  /usr/bin/python3 perf/queuebench.py            # 100k waiters, 1M entries, 20 ticks
  /usr/bin/python3 perf/queuebench.py --small    # 10k waiters, 100k entries (< 1 min)
"""
import argparse
import json
import math
import os
import shlex
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

QUEUE = "bench"
API_KEY = "queue-bench-api-key"
JWT_SECRET = "queue-bench-jwt-secret"
ADM_SECRET = "queue-bench-admission-secret"
TARGET_MS = 200.0
CONNS_PER_SHARD = 19000
START, END = "<!-- queue-bench:start -->", "<!-- queue-bench:end -->"
CMD_FULL = "/usr/bin/python3 perf/queuebench.py"

# Fills the line in slices: ZADD wait ticket user and ZADD seen now user for
# users s<from>..s<to> (seen now, so nobody counts as abandoned), 1000 a call.
FILL_LUA = """
local from, to = tonumber(ARGV[1]), tonumber(ARGV[2])
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
for i = from, to, 1000 do
  local a, b = {}, {}
  for j = i, math.min(i + 999, to) do
    local u = 's' .. j
    a[#a + 1] = j; a[#a + 1] = u
    b[#b + 1] = now; b[#b + 1] = u
  end
  redis.call('ZADD', KEYS[1], unpack(a))
  redis.call('ZADD', KEYS[2], unpack(b))
end
return to - from + 1
"""


def redis_cli(port, *args, timeout=120):
    rc, out, err = bl.run(["redis-cli", "-h", bl.HOST, "-p", str(port)] + [str(a) for a in args],
                          timeout)
    if rc != 0:
        raise bl.BenchError("redis-cli %s: exit %s %s" % (args[0], rc, err.strip()))
    return out.strip()


def fill(port, entries):
    key = lambda k: "rc:q:{%s}:%s" % (QUEUE, k)  # noqa: E731
    t0 = time.monotonic()
    step = 100000
    for lo in range(1, entries + 1, step):
        redis_cli(port, "EVAL", FILL_LUA, 2, key("wait"), key("seen"), lo,
                  min(lo + step - 1, entries))
    redis_cli(port, "SET", key("seq"), entries)
    got = int(redis_cli(port, "ZCARD", key("wait")))
    if got != entries:
        raise bl.BenchError("filled %d entries, wanted %d" % (got, entries))
    return time.monotonic() - t0


def http(port, method, path, body=None, timeout=10.0):
    import socket
    data = json.dumps(body).encode() if body is not None else b""
    with socket.create_connection((bl.HOST, port), timeout=timeout) as s:
        s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nContent-Type: "
                   "application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
                       method, path, bl.HOST, API_KEY, len(data))).encode() + data)
        buf = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, rest.decode("utf-8", "replace")


def pct(xs, q):
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(math.ceil(q * len(s))) - 1)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="10k waiters, 100k entries, 10 ticks")
    ap.add_argument("--waiters", type=int)
    ap.add_argument("--entries", type=int)
    ap.add_argument("--ticks", type=int)
    ap.add_argument("--rate", type=int, default=1000, help="admitted per tick (default 1000)")
    ap.add_argument("--shards", type=int, help="default max(2, ceil(waiters/19000))")
    ap.add_argument("--ramp-rate", type=float, default=10000)
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--ringload", help="ringload binary (default BUILD/ringload)")
    ap.add_argument("--results", default=os.path.join(bl.REPO, "perf", "results"))
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra ringcast argument (repeatable), e.g. --server-arg=--ping-interval-ms=0")
    ap.add_argument("--no-report", action="store_true", help="leave BENCHMARKS.md alone")
    ap.add_argument("--report-from", metavar="JSON",
                    help="only rewrite the BENCHMARKS.md block from an earlier results file")
    args = ap.parse_args()
    if args.report_from:
        with open(args.report_from) as f:
            doc = json.load(f)
        write_report(doc, os.path.relpath(os.path.abspath(args.report_from), bl.REPO))
        return 0
    waiters = args.waiters or (10000 if args.small else 100000)
    entries = args.entries or (100000 if args.small else 1000000)
    ticks = args.ticks or (10 if args.small else 20)
    shards = args.shards or max(2, math.ceil(waiters / CONNS_PER_SHARD))
    rl_threads = max(1, math.ceil(waiters / 16000))
    src_addrs = max(1, math.ceil(waiters / 24000))
    ramp_s = waiters / args.ramp_rate

    stamp = bl.now_utc_stamp()
    os.makedirs(args.results, exist_ok=True)
    logdir = bl.make_logdir("ringcast-queue-%s-" % stamp)
    out_path = os.path.join(args.results, "queue-%s.json" % stamp)
    doc = {"stamp": stamp, "small": args.small, "waiters": waiters, "entries": entries,
           "ticks_wanted": ticks, "rate": args.rate, "shards": shards, "tick_ms": 1000,
           "target_ms": TARGET_MS, "machine": bl.machine_info(args.build), "logdir": logdir,
           "failures": [],
           "command": " ".join([CMD_FULL] + [shlex.quote(a) for a in sys.argv[1:]])}
    bl.log("queue bench: %d waiters behind %d entries, %d ticks, %d shards; logs in %s" % (
        waiters, entries, ticks, shards, logdir))
    redis = srv = load = None
    try:
        redis = bl.start_redis(logdir)
        doc["fill_s"] = round(fill(redis.port, entries), 2)
        bl.log("filled %d entries in %.1f s" % (entries, doc["fill_s"]))
        port = bl.free_port()
        env = dict(os.environ)
        env.update({"RINGCAST_API_KEY": API_KEY, "RINGCAST_JWT_SECRET": JWT_SECRET,
                    "RINGCAST_ADMISSION_SECRET": ADM_SECRET})
        cmd = [os.path.join(args.build, "ringcast"), "--listen", "%s:%d" % (bl.HOST, port),
               "--shards", str(shards), "--redis", "redis://%s:%d" % (bl.HOST, redis.port),
               "--max-connections", str(waiters + 10000), "--log-level", "warn"] + args.server_arg
        srv = bl.Proc("ringcast", cmd, logdir, port=port, env=env, timeout=30)
        doc["ringcast_cmd"] = " ".join(map(shlex.quote, cmd)) + \
            "  (env RINGCAST_API_KEY, RINGCAST_JWT_SECRET, RINGCAST_ADMISSION_SECRET)"
        cfg = {"rate": args.rate, "max_active": 100000000, "active_ttl": 600,
               "abandon_timeout": 86400, "state": "open"}
        st, body = http(port, "PUT", "/api/queues/%s" % QUEUE, cfg)
        if st != 200:
            raise bl.BenchError("PUT /api/queues/%s: %d %s" % (QUEUE, st, body))
        doc["queue_cfg"] = json.loads(body)

        rl = bl.Ringload(args.ringload or os.path.join(args.build, "ringload"), cpu=None)
        warmup = 3.0
        duration = ticks + 0.5
        load = rl.spawn("ws://%s:%d/ws" % (bl.HOST, port), "ringcast", "queue",
                        os.path.join(logdir, "ringload.out"), conns=waiters,
                        threads=rl_threads, src_addrs=src_addrs, ramp_rate=args.ramp_rate,
                        jwt_secret=JWT_SECRET, user_prefix="w", queue=QUEUE,
                        duration=duration, warmup=warmup, drain=3,
                        max_time=ramp_s + warmup + duration + 90)
        # One sample per tick: the node's tick gauges, and the CPU of Redis and ringcast.
        samples = []
        last_ticks = None
        deadline = time.monotonic() + ramp_s + warmup + duration + 150
        while load.poll() is None and time.monotonic() < deadline:
            if not srv.alive():
                doc["failures"].append("ringcast exited with %s: %s" % (
                    srv.proc.returncode, srv.log_tail(5)))
                break
            m = bl.metrics(port)
            n = m.get("ringcast_admission_ticks_total")
            if n is not None and n != last_ticks:
                last_ticks = n
                samples.append({
                    "wall_ms": int(time.time() * 1000), "ticks": n,
                    "round_trips": m.get("ringcast_admission_round_trips_total"),
                    "late_ticks": m.get("ringcast_admission_late_ticks_total"),
                    "tick_s": m.get("ringcast_admission_tick_seconds"),
                    "leader": m.get("ringcast_admission_leader"),
                    "local_waiters": m.get("ringcast_admission_local_waiters"),
                    "waiting": m.get('ringcast_queue_waiting{queue="%s"}' % QUEUE),
                    "head": m.get('ringcast_queue_head{queue="%s"}' % QUEUE),
                    "websockets": m.get("ringcast_websockets"),
                    "heartbeat_timeouts": m.get("ringcast_heartbeat_timeouts_total"),
                    "ws_closes": m.get("ringcast_ws_closes_total"),
                    "deliveries": m.get("ringcast_deliveries_total"),
                    "redis_cpu_s": bl.cpu_seconds(redis.pid),
                    "ringcast_cpu_s": bl.cpu_seconds(srv.pid)})
            time.sleep(0.1)
        res = bl.finish_spawned(load, timeout=60)
        doc["ringload"] = res
        doc["samples"] = samples
        doc["ringcast_alive_after"] = srv.alive()
        doc["queue_after"] = json.loads(http(port, "GET", "/api/queues/%s" % QUEUE)[1])
        doc["redis_info_commandstats"] = redis_cli(redis.port, "INFO", "commandstats")
        summarize(doc)
        srv.stop()
        load = None
        srv = None
        doc["floor"] = sendfloor(args.build, waiters, shards)
    except bl.BenchError as e:
        doc["failures"].append(str(e))
        bl.log("failed: %s" % e)
    finally:
        bl.kill_pid(load)
        for p in (srv, redis):
            if p is not None:
                p.stop()
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
    bl.log("wrote %s" % out_path)
    if "summary" in doc and not args.no_report:
        write_report(doc, os.path.relpath(out_path, bl.REPO))
    print(json.dumps(doc.get("summary", {"failures": doc["failures"]}), indent=1))
    return 0 if "summary" in doc and not doc["failures"] else 1


# A queue.tick frame as the bench's ticks send it (2 bytes of WebSocket header).
TICK_FRAME = 2 + len(json.dumps({"type": "queue.tick", "queue": QUEUE, "head": 1001000,
                                 "ewma": 1000.0, "tick": 100, "paused": False,
                                 "time": 1765000000000}, separators=(",", ":")))


def sendfloor(build, waiters, procs):
    """The machine's floor in the same run: build/sendfloor puts one frame-sized
    message on each of WAITERS loopback connections (no WebSocket, no Redis)."""
    cmd = [os.path.join(build, "sendfloor"), "--conns", str(waiters), "--procs", str(procs),
           "--bytes", str(TICK_FRAME), "--rounds", "10"]
    bl.log("floor: %s" % " ".join(cmd))
    rc, out, err = bl.run(cmd, 300)
    m = [ln for ln in out.splitlines() if ln.startswith("median ")]
    if rc != 0 or not m:
        return {"cmd": " ".join([os.path.relpath(cmd[0], bl.REPO)] + cmd[1:]), "error": "exit %s: %s" % (rc, err.strip()[-300:])}
    w = m[0].split()
    return {"cmd": " ".join([os.path.relpath(cmd[0], bl.REPO)] + cmd[1:]),
            "median_ms": float(w[1]), "max_ms": float(w[4]),
            "sender_us": float(w[w.index("sender") + 2]),
            "reader_us": float(w[w.index("reader") + 2]), "out": out}


def summarize(doc):
    res = doc["ringload"]
    if "error" in res and "ticks" not in res:
        doc["failures"].append("ringload: %s" % res["error"])
        return
    rticks = res.get("ticks") or []
    if not rticks:
        doc["failures"].append("ringload measured no tick (joined %s, errors %s: %s)" % (
            res.get("joined"), res.get("queue_errors"), res.get("first_error")))
        return
    t_first, t_last = rticks[0]["time"], rticks[-1]["time"]
    # Samples taken while the measured ticks ran (a tick's gauge lands after its time).
    win = [s for s in doc["samples"] if t_first <= s["wall_ms"] <= t_last + 1000]
    tick_ms = [s["tick_s"] * 1000 for s in win if s["tick_s"] is not None]
    summ = {"waiters_connected": res.get("opened"), "joined": res.get("joined"),
            "ticks_measured": len(rticks)}
    if len(win) >= 2:
        a, b = win[0], win[-1]
        dt = max(1e-9, (b["wall_ms"] - a["wall_ms"]) / 1000.0)
        dticks = b["ticks"] - a["ticks"]
        summ["round_trips_per_tick"] = round((b["round_trips"] - a["round_trips"]) / dticks,
                                             3) if dticks else None
        summ["late_ticks_in_window"] = b["late_ticks"] - a["late_ticks"]
        summ["redis_cpu_util"] = round((b["redis_cpu_s"] - a["redis_cpu_s"]) / dt, 3)
        summ["ringcast_cpu_util"] = round((b["ringcast_cpu_s"] - a["ringcast_cpu_s"]) / dt, 3)
        summ["admitted_in_window"] = (b["head"] - a["head"]) if b["head"] and a["head"] else None
    if tick_ms:
        summ["tick_ms"] = {"median": round(statistics.median(tick_ms), 2),
                           "p90": round(pct(tick_ms, 0.9), 2), "max": round(max(tick_ms), 2),
                           "samples": len(tick_ms)}
    maxes = [t["max_ms"] for t in rticks]
    counts = [t["positions"] for t in rticks]
    summ["all_waiters_ms"] = {"median": round(statistics.median(maxes), 1),
                              "p90": round(pct(maxes, 0.9), 1), "max": round(max(maxes), 1)}
    summ["positions_per_tick"] = {"min": min(counts), "max": max(counts)}
    summ["position_latency_ms"] = {k: round(res["latency_us"][k] / 1000.0, 1)
                                   for k in ("p50", "p99", "max")} \
        if res.get("latency_us") else None
    summ["lost_positions"] = sum(max(0, (res.get("joined") or 0) - c) for c in counts)
    summ["position_regressions"] = res.get("position_regressions")
    summ["queue_errors"] = res.get("queue_errors")
    summ["unexpected_closes"] = res.get("unexpected_closes")
    summ["ringload_cpu"] = bl.g(res, "cpu", "utilisation")
    summ["ramp_s"] = res.get("ramp_s")
    summ["verdict"] = "meets" if max(maxes) <= TARGET_MS else (
        "median meets, worst misses" if statistics.median(maxes) <= TARGET_MS else "misses")
    doc["summary"] = summ


def fmt(x, unit=""):
    return "-" if x is None else ("%s%s" % (x, unit))


def floor_lines(doc):
    f = doc.get("floor")
    if not f:
        return []
    if "error" in f:
        return ["- The machine's floor (`%s`) failed: %s." % (f["cmd"], f["error"])]
    aw = doc["summary"]["all_waiters_ms"]
    return [
        "- The machine's floor, same run: `%s` (no WebSocket, no Redis, no server: one "
        "io_uring send of a tick-sized message on each of the same number of loopback TCP "
        "connections, drained by epoll readers) reaches every connection in %.1f ms at the "
        "median (worst %.1f ms), at %.2f us of sender CPU and %.2f us of reader CPU a message. "
        "ringcast's median is %.2fx the floor." % (
            f["cmd"], f["median_ms"], f["max_ms"], f["sender_us"], f["reader_us"],
            aw["median"] / f["median_ms"])]


def write_report(doc, rel_json):
    s, m = doc["summary"], doc["machine"]
    tm = s.get("tick_ms") or {}
    aw = s["all_waiters_ms"]
    lines = [
        START,
        "## Waiting room: one admission tick for %d waiters behind %d entries" % (
            doc["waiters"], doc["entries"]),
        "",
        "`%s` (%s; results `%s`). One ringcast node (%d shards) and a private Redis; "
        "queue `%s` holds %d synthetic waiters, then %s connections of ringload "
        "(`--scenario queue`) join it, each as its own user; rate %d admitted per 1 s tick. "
        "Machine: %s, %s CPUs, kernel %s, %s; nothing pinned (load generator, node and Redis "
        "share the CPUs)." % (
            doc["command"], doc["stamp"], rel_json, doc["shards"], QUEUE, doc["entries"],
            fmt(s.get("joined")), doc["rate"], m.get("cpu_model", "?"), m.get("nproc"),
            m.get("kernel"), m.get("redis") or "redis"),
        "",
        "| measured over %d ticks | median | p90 | worst |" % s["ticks_measured"],
        "|---|---|---|---|",
        "| tick's Redis round trip (`ringcast_admission_tick_seconds`) | %s ms | %s ms | %s ms |"
        % (fmt(tm.get("median")), fmt(tm.get("p90")), fmt(tm.get("max"))),
        "| tick -> every waiter has its position (its `queue.tick`; slowest waiter of the "
        "tick) "
        "| %s ms | %s ms | %s ms |" % (aw["median"], aw["p90"], aw["max"]),
        "",
        "- Redis round trips per tick: %s; late ticks: %s; Redis CPU %s, ringcast CPU %s "
        "(cores, over the measured ticks); ringload CPU %s (cores, whole run, ramp of %s s "
        "included)." % (
            fmt(s.get("round_trips_per_tick")), fmt(s.get("late_ticks_in_window")),
            fmt(s.get("redis_cpu_util")), fmt(s.get("ringcast_cpu_util")),
            fmt(s.get("ringload_cpu")), fmt(s.get("ramp_s"))),
        "- Positions per tick: %d..%d of %s joined; positions missing: %s; positions that "
        "went up: %s; queue errors: %s; unexpected closes: %s." % (
            s["positions_per_tick"]["min"], s["positions_per_tick"]["max"], fmt(s.get("joined")),
            s["lost_positions"], fmt(s.get("position_regressions")), fmt(s.get("queue_errors")),
            fmt(s.get("unexpected_closes"))),
        "- Verdict against the %.0f ms target: **%s** (worst tick %s ms, median %s ms)." % (
            TARGET_MS, s["verdict"], aw["max"], aw["median"]),
    ] + floor_lines(doc) + [END]
    block = "\n".join(lines) + "\n"
    path = os.path.join(bl.REPO, "BENCHMARKS.md")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    i, j = text.find(START), text.find(END)
    if i >= 0 and j > i:
        rest = text[j + len(END):].lstrip("\n")
        text = text[:i] + block + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block
    with open(path, "w") as f:
        f.write(text)
    bl.log("updated the queue-bench block of %s" % path)


if __name__ == "__main__":
    sys.exit(main())
