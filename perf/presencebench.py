#!/usr/bin/python3
"""Presence benchmark: presence_stats on a 100,000-member channel.

Members are real connections: one ringload holds N connections subscribed to
bench:presence (a channel with --presence), and a second ringload, 100
connections with 16 requests outstanding each, asks presence_stats of that
channel as fast as the answers come. Each figure is measured on a channel of
1 member and of 100,000 members, interleaved in one run (1, 100k, 1, 100k),
with the server on core 0 (6 shards: 100k connections need that many
descriptor tables here) and the load generators on core 1:

  one node              counts kept by the relay as members come and go
  with Redis            the node on a private redis-server (on core 0 too):
                        each answer comes from a script that reads the
                        channel's kept counts (ZCARD, HLEN); questions asked
                        while one read is in flight share it

A count that is kept, not recounted, costs the same on 100,000 members as
on one: the ratio 100k / 1 is the figure that says so. Writes
perf/results/presence-<UTC stamp>.json and rewrites the block between
<!-- presence-bench:start --> and <!-- presence-bench:end --> in
BENCHMARKS.md (--no-report leaves it alone). About 4 minutes.

  /usr/bin/python3 perf/presencebench.py
"""
import argparse
import json
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import benchlib as bl  # noqa: E402

START, END = "<!-- presence-bench:start -->", "<!-- presence-bench:end -->"
CMD = "/usr/bin/python3 perf/presencebench.py"
CHAN = "bench:presence"
# ttl 6 s: a refresh every 2 s, so that the refresh's Redis cost is measured in seconds
TTL = 6
FLAGS = ("--presence", "bench:*", "--max-connections", "200000", "--presence-ttl", str(TTL))
IDLE = 3 * TTL / 3.0  # three refresh periods
SHARDS = 6
ASKERS, PIPELINE, DUR = 100, 16, 5.0
BIG = 100_000


def api_connections(port):
    """The channel's connections as the HTTP API says (with Redis: Redis's count)."""
    try:
        with socket.create_connection((bl.HOST, port), timeout=5.0) as s:
            s.sendall(("GET /api/channels/%s/presence-stats HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                       % (CHAN, bench.API_KEY)).encode())
            buf = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
        return json.loads(buf.partition(b"\r\n\r\n")[2]).get("connections")
    except (OSError, ValueError):
        return None


def wait_members(port, n, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = api_connections(port)
        if last is not None and last >= n:
            return last
        time.sleep(0.5)
    return last


def one_round(rl, build, logdir, n, redis):
    red = bl.start_redis(logdir, cpu=bench.SERVER_CPU) if redis else None
    srv = None
    holder = None
    out = {"members": n, "redis": redis}
    try:
        url = "redis://%s:%d" % (bl.HOST, red.port) if red else None
        srv = bench.Server("ringcast", build, logdir, shards=SHARDS, redis_url=url, extra=FLAGS)
        hold_s = DUR + 40 + n / 2000.0
        holder = rl.spawn(srv.url, "ringcast", "churn", os.path.join(
            logdir, "presence-holders-%d-%d.out" % (n, redis)),
            conns=n, churn_rate=0, channel=CHAN, duration=hold_s,
            threads=bench.threads_for(n), src_addrs=bench.src_addrs_for(n))
        got = wait_members(srv.port, n, timeout=60 + n / 1000.0)
        out["members_seen"] = got
        if got is None or got < n:
            out["error"] = "only %s of %d members" % (got, n)
            return out
        srv.quiet()
        if red:
            bl.wait_quiet(red.pid)
        m0 = bl.metrics(srv.port)
        c0 = bl.cpu_seconds(srv.pid)
        r0 = bl.cpu_seconds(red.pid) if red else None
        res = rl.run(srv.url, "ringcast", "presence", conns=ASKERS, pipeline=PIPELINE,
                     channel=CHAN, duration=DUR, timeout=DUR + 60)
        c1 = bl.cpu_seconds(srv.pid)
        r1 = bl.cpu_seconds(red.pid) if red else None
        m1 = bl.metrics(srv.port)
        answers = bl.g(res, "answers", default=0) or 0
        wall = bl.g(res, "wall_s", default=None)

        def d(key):
            return (m1.get(key) or 0) - (m0.get(key) or 0)

        out.update({
            "round_trips_per_s": bl.g(res, "round_trips_per_s"),
            "latency_us": bl.g(res, "latency_us"),
            "mean_connections": bl.g(res, "mean_connections"),
            "loadgen_util": bl.rl_cpu_util(res),
            "answers": answers,
            "server_cpu_s": (c1 - c0) if c0 is not None and c1 is not None else None,
            "redis_cpu_s": (r1 - r0) if r0 is not None and r1 is not None else None,
            "run_wall_s": wall,
            "redis_calls": d("ringcast_presence_redis_calls_total") if redis else None,
            "coalesced": d("ringcast_presence_coalesced_total") if redis else None,
            "server_errors": bl.g(res, "server_errors"),
            "ringload_error": res.get("error"),
        })
        if red and n == BIG:
            # No questions: what Redis spends is the node's refresh of its members.
            time.sleep(1.0)
            r2 = bl.cpu_seconds(red.pid)
            time.sleep(IDLE)
            r3 = bl.cpu_seconds(red.pid)
            if r2 is not None and r3 is not None:
                refreshes = IDLE / (TTL / 3.0)
                out["refresh_redis_cpu_s"] = r3 - r2
                out["refresh_us_per_member"] = 1e6 * (r3 - r2) / (refreshes * n)
        bl.log("  members=%d redis=%s: %s presence_stats/s, p50 %s us, answers say %s "
               "connections, loadgen %s" % (
                   n, redis, bench.fmt_num(out["round_trips_per_s"]),
                   bl.g(res, "latency_us", "p50"), out["mean_connections"],
                   bench.fmt_pct(out["loadgen_util"])))
        return out
    except Exception as e:  # noqa: BLE001
        out["error"] = "%s: %s" % (type(e).__name__, e)
        bl.log("presence round: error: %s" % e)
        return out
    finally:
        if holder is not None:
            bl.kill_pid(holder)
        if srv is not None:
            srv.stop()
        if red is not None:
            red.stop()


def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.mean(xs) if xs else None


def report(doc, path_json):
    rows = doc["rounds"]

    def m(redis, n, key):
        return mean([r.get(key) for r in rows if r["redis"] == redis and r["members"] == n])

    def num(x, f="%.0f"):
        return "n/a" if x is None else f % x

    lines = [START, "## Presence: presence_stats on a 100,000-member channel", "",
             "Measured by `%s` at %s UTC (raw: `results/%s`): %d connections with %d "
             "presence_stats requests outstanding each, on a channel of 1 member and of "
             "100,000 members (real connections), interleaved (1, 100k, 1, 100k); each figure "
             "is the mean of its two rounds. Server on core 0 (%d shards), load generators on "
             "core 1." % (CMD, doc["stamp"], os.path.basename(path_json), ASKERS, PIPELINE,
                          SHARDS), "",
             "| node | 1 member, answers/s | 100,000 members, answers/s | 100k ÷ 1 | server CPU "
             "per answer at 1 / at 100k, µs | p50 at 100k, ms | load generator |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    notes = []
    for redis in (False, True):
        small, big = m(redis, 1, "round_trips_per_s"), m(redis, BIG, "round_trips_per_s")
        p50 = mean([bl.g(r, "latency_us", "p50") for r in rows
                    if r["redis"] == redis and r["members"] == BIG])
        lg = max([r.get("loadgen_util") or 0 for r in rows if r["redis"] == redis] or [0])
        conns = m(redis, BIG, "mean_connections")
        def per_answer(n):
            us = [1e6 * r["server_cpu_s"] / r["answers"] for r in rows
                  if r["redis"] == redis and r["members"] == n and r.get("server_cpu_s")
                  and r.get("answers")]
            return mean(us)

        lines.append("| %s | %s | %s | %s | %s / %s | %s | %s |" % (
            "with Redis" if redis else "one node, no Redis", num(small), num(big),
            num(big / small if small and big else None, "%.2f"),
            num(per_answer(1), "%.1f"), num(per_answer(BIG), "%.1f"),
            num(p50 / 1000.0 if p50 else None, "%.1f"), bench.fmt_pct(lg)))
        if conns is not None:
            notes.append("%s: the answers said %.0f connections on the big channel." % (
                "With Redis" if redis else "One node", conns))
        if redis:
            calls = sum(r.get("redis_calls") or 0 for r in rows if r["redis"])
            answers = sum(r.get("answers") or 0 for r in rows if r["redis"])
            rcpu = m(True, BIG, "redis_cpu_s")
            per = m(True, BIG, "refresh_us_per_member")
            if per is not None:
                notes.append("Keeping 100,000 members alive (with no questions) cost redis-server "
                             "%.1f µs of CPU per member per refresh (measured over %.0f s of "
                             "refreshes every %.0f s, `--presence-ttl %d`): at the default ttl of "
                             "30 s, %.0f ms every 10 s for 100,000 members." % (
                                 per, IDLE, TTL / 3.0, TTL, per * 100000 / 1000.0))
            if calls and answers:
                notes.append("With Redis, %.1f questions were answered per Redis script run "
                             "(reads coalesced while one is in flight); redis-server used %s "
                             "CPU seconds over a %.0f s run at 100,000 members." % (
                                 answers / calls, num(rcpu, "%.2f"), DUR))
    errs = [r for r in rows if r.get("error")]
    lines.append("")
    lines.append(" ".join(notes))
    if errs:
        lines.append("")
        lines.append("Rounds with errors: %s." % "; ".join(
            "%d members%s: %s" % (r["members"], " (Redis)" if r["redis"] else "", r["error"])
            for r in errs))
    lines.append("")
    lines.append("Each answer is a round trip of a client request through the node (shard to "
                 "relay and back). The server's core was busy throughout (its CPU seconds over "
                 "the run's answers give the per-answer column, which counts the whole run "
                 "with its ramp); most of it is the kernel's loopback path (77% of the "
                 "server's samples in `perf record -g -p PID` during a one-shard run), one send "
                 "per answer, because a connection's requests are answered in order, one at a "
                 "time. With Redis, redis-server shares the server's core. Centrifugo reports "
                 "200k/s on bigger hardware; here the bound is one core. The load generator "
                 "column is its busiest round.")
    lines.append(END)
    bl.write_block(lines, START, END, "presence-bench")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--render", metavar="JSON", help="only rewrite the block from a result")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            report(json.load(f), args.render)
        return 0
    stamp = bl.now_utc_stamp()
    logdir = bl.make_logdir("ringcast-presence-%s-" % stamp)
    rl = bl.Ringload(os.path.join(args.build, "ringload"), cpu=bench.LOADGEN_CPU)
    doc = {"stamp": stamp, "command": CMD, "machine": bl.machine_info(args.build),
           "rounds": [], "logdir": logdir}
    t0 = time.monotonic()
    for redis in (False, True):
        for n in (1, BIG, 1, BIG):
            bl.log("presence_stats, %d members, %s" % (n, "Redis" if redis else "one node"))
            doc["rounds"].append(one_round(rl, args.build, logdir, n, redis))
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    out = bl.save_results(doc, "presence", stamp)
    if not args.no_report:
        report(doc, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
