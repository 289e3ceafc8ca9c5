#!/usr/bin/python3
"""History benchmark: what keeping a channel's history costs.

Each figure is measured with history off and on, interleaved in one run
(off, on, off, on), with the same load generator and the same pinning as
perf/bench.py (server on core 0, load generator on core 1):

  fan-out, one node     2000 subscribers of one channel, 64 B messages: the
                        highest loss-free deliveries/s (perf/bench.py's search),
                        and the server's CPU at a fixed 250 publishes/s
  Redis, two nodes      publisher on node A, 100 subscribers on node B, one
                        private redis-server: Redis CPU per 1,000 publishes at
                        1,000 publishes/s (history: the publish script, with
                        its stream append; off: a plain PUBLISH)

History on: --history 'bench:* size=100 ttl=60'. Writes
perf/results/history-<UTC stamp>.json and rewrites the block between
<!-- history-bench:start --> and <!-- history-bench:end --> in BENCHMARKS.md
(--no-report leaves it alone). About 3 minutes.

  /usr/bin/python3 perf/historybench.py
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import benchlib as bl  # noqa: E402

HIST = ("--history", "bench:* size=100 ttl=60")
START, END = "<!-- history-bench:start -->", "<!-- history-bench:end -->"
CMD = "/usr/bin/python3 perf/historybench.py"
P = dict(bench.SHORT, step_dur=2.0, warmup=0.5, drain=1.0, search_steps=4)
N_FAN, CPU_RATE = 2000, 250
N_REDIS, REDIS_RATE = 100, 1000


def fanout_round(rl, build, logdir, on):
    srv = bench.Server("ringcast", build, logdir, extra=HIST if on else ())
    try:
        srv.quiet()
        c0 = bl.cpu_seconds(srv.pid)
        fixed = bench.run_fanout(rl, srv, N_FAN, CPU_RATE, P, dur=3.0)
        c1 = bl.cpu_seconds(srv.pid)
        pub_s = (bl.g(fixed, "publishes_total", default=0) or 0) / CPU_RATE
        best, tried = bench.search_rate(rl, srv, N_FAN, P, 2_000_000 / N_FAN, P["search_steps"])
        return {"history": on, "fixed_rate": CPU_RATE, "fixed_ok": fixed.get("_ok"),
                "fixed_server_cpu": {"server_cpu_s": (c1 - c0) if c0 is not None and c1
                                     is not None else None, "publishing_s": pub_s},
                "fixed_p50_us": bl.g(fixed, "latency_us", "p50"),
                "best_deliveries_per_s": bl.g(best, "deliveries_per_s") if best else None,
                "best_loadgen_util": bl.rl_cpu_util(best) if best else None,
                "tried": [{"rate": t["_rate"], "ok": t["_ok"],
                           "deliveries_per_s": bl.g(t, "deliveries_per_s"),
                           "loadgen_util": bl.rl_cpu_util(t)} for t in tried]}
    finally:
        srv.stop()


def redis_round(rl, build, logdir, on):
    cl = bench.Cluster("ringcast", build, logdir, extra=HIST if on else ())
    try:
        res = bench.run_fanout(rl, cl, N_REDIS, REDIS_RATE, P, dur=3.0)
        cpu = res.get("_server_cpu", {})
        pubs = bl.g(res, "publishes_total", default=0) or 0
        redis_s = cpu.get("redis_cpu_s")
        return {"history": on, "rate": REDIS_RATE, "ok": res.get("_ok"), "publishes": pubs,
                "redis_cpu_s": redis_s, "cpu": cpu,
                "redis_ms_per_1000": (1e6 * redis_s / pubs) if redis_s and pubs else None,
                "p50_us": bl.g(res, "latency_us", "p50"),
                "lost": bl.g(res, "lost")}
    finally:
        cl.stop()


def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.mean(xs) if xs else None


def report(doc, path_json):
    fan = doc["fanout"]
    red = doc["redis"]

    def m(rows, on, key):
        return mean([r[key] for r in rows if r["history"] == on])

    def cpu_frac(r):
        c = r.get("fixed_server_cpu") or {}
        v = c.get("server_cpu_s")
        s = c.get("publishing_s")
        return v / s if v and s else None

    for r in fan:
        r["fixed_cpu_fraction"] = cpu_frac(r)
    off_best, on_best = m(fan, False, "best_deliveries_per_s"), m(fan, True, "best_deliveries_per_s")
    off_cpu, on_cpu = m(fan, False, "fixed_cpu_fraction"), m(fan, True, "fixed_cpu_fraction")
    off_r, on_r = m(red, False, "redis_ms_per_1000"), m(red, True, "redis_ms_per_1000")
    lg = max([r["best_loadgen_util"] or 0 for r in fan] or [0])

    def num(x, f="%.0f"):
        return "n/a" if x is None else f % x

    lines = [START, "## History: what it costs", "",
             "Measured by `%s` at %s UTC (raw: `results/%s`), history off and on "
             "interleaved (off, on, off, on); each figure is the mean of its two rounds. "
             "History on: `--history 'bench:* size=100 ttl=60'`." % (
                 CMD, doc["stamp"], os.path.basename(path_json)), "",
             "| figure | history off | history on | on ÷ off |", "| --- | --- | --- | --- |"]
    ratio = (on_best / off_best) if off_best and on_best else None
    lines.append("| fan-out, %d subscribers, highest loss-free deliveries/s (one node) | %s | %s "
                 "| %s |" % (N_FAN, num(off_best), num(on_best), num(ratio, "%.2f")))
    cr = (on_cpu / off_cpu) if off_cpu and on_cpu else None
    lines.append("| server CPU at %d publishes/s to %d subscribers (fraction of a core) | %s | "
                 "%s | %s |" % (CPU_RATE, N_FAN, num(off_cpu, "%.3f"), num(on_cpu, "%.3f"),
                               num(cr, "%.2f")))
    rr = (on_r / off_r) if off_r and on_r else None
    lines.append("| Redis CPU per 1,000 publishes at %d/s (two nodes, %d subscribers), ms | %s "
                 "| %s | %s |" % (REDIS_RATE, N_REDIS, num(off_r, "%.1f"), num(on_r, "%.1f"),
                                 num(rr, "%.2f")))
    lines.append("")
    lines.append("Server CPU: the node's CPU seconds over the whole fixed-rate run (connects, "
                 "warm-up, about 3.5 s of publishing, drain) divided by the publishing time, the "
                 "same method for both. Redis CPU: the redis-server's CPU seconds from /proc (10 ms "
                 "ticks) over about 3,500 publishes, per 1,000; with history each publish runs "
                 "the publish script (offset, stream append, PUBLISH) instead of one PUBLISH.")
    lines.append("")
    if lg > 0.9:
        lines.append("The load generator was above 90%% of its core (%.0f%%) at the highest "
                     "rates: the fan-out figures are its limit as much as the server's, so the "
                     "server CPU at a fixed rate is the fairer comparison." % (100 * lg))
    lines.append(END)
    bl.write_block(lines, START, END, "history-bench")


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
    logdir = bl.make_logdir("ringcast-history-%s-" % stamp)
    rl = bl.Ringload(os.path.join(args.build, "ringload"), cpu=bench.LOADGEN_CPU)
    doc = {"stamp": stamp, "command": CMD, "machine": bl.machine_info(args.build),
           "fanout": [], "redis": [], "logdir": logdir}
    t0 = time.monotonic()
    for on in (False, True, False, True):
        bl.log("fan-out, history %s" % ("on" if on else "off"))
        doc["fanout"].append(fanout_round(rl, args.build, logdir, on))
    for on in (False, True, False, True):
        bl.log("Redis CPU, history %s" % ("on" if on else "off"))
        doc["redis"].append(redis_round(rl, args.build, logdir, on))
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    out = bl.save_results(doc, "history", stamp)
    if not args.no_report:
        report(doc, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
