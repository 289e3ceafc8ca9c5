#!/usr/bin/python3
"""The admission tick's Redis round trips with queues spread over a Redis
Cluster's primaries, against one Redis, in one run (issue 16).

One ringcast node (--admission-tick-ms 1000) on one redis-server, then on a
local cluster of three primaries with a replica each (tests/integration/
clusterhelp.py); QUEUES queues, each with WAITERS synthetic waiters in its
line, created through the HTTP API. Over TICKS ticks it reads the node's
metrics after each tick: round trips per tick (ringcast_admission_round_trips_total
over ringcast_admission_ticks_total: on a cluster one pipeline per primary the
tick touches, all in flight at once) and the tick's time (ringcast_admission_tick_seconds,
from the first command sent to the last reply), and which primary owns each
queue's slot.

    /usr/bin/python3 perf/tickbench.py [--queues 30] [--ticks 15] [--no-report]

Results: perf/results/tick-STAMP.json and the tick-bench section of
BENCHMARKS.md."""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import clusterhelp  # noqa: E402
from rchelp import API_KEY, Server, get_metrics, msum  # noqa: E402
from redishelp import RedisServer, slot_of  # noqa: E402

ASECRET = "tickbench-admission-secret-0123456789"


def put_queue(srv, q, **cfg):
    req = urllib.request.Request(
        "http://127.0.0.1:%d/api/queues/%s" % (srv.port, q), data=json.dumps(cfg).encode(),
        method="PUT", headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status


def fill(client, q, n):
    """n waiters in q's line (tickets 1..n), as joins would leave them."""
    key = "rc:q:{%s}:" % q
    for i in range(0, n, 1000):
        args = []
        for t in range(i + 1, min(n, i + 1000) + 1):
            args += [t, "synthetic-%d" % t]
        client.command("ZADD", key + "wait", *args)
    client.command("SET", key + "seq", n)


def measure(kind, url, client, tmp, queues, ticks, waiters, owner_of=None):
    env = {"RINGCAST_ADMISSION_SECRET": ASECRET, "RINGCAST_API_KEY": API_KEY}
    srv = Server(tmp, ["--redis", url, "--admission-tick-ms", "1000"], shards=1, env=env,
                 name="tick-" + kind)
    try:
        deadline = time.monotonic() + 30
        while msum(get_metrics(srv.port), "ringcast_admission_up") < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("%s: the admission link never came up" % kind)
            time.sleep(0.1)
        names = ["bench-%02d" % i for i in range(queues)]
        for q in names:
            fill(client, q, waiters)
            put_queue(srv, q, rate=1, max_active=10 ** 8, active_ttl=600, abandon_timeout=3600)
        time.sleep(3.0)  # every queue in the index, leases taken
        samples = []
        m0 = get_metrics(srv.port)
        last = m0
        while len(samples) < ticks:
            time.sleep(0.25)
            m = get_metrics(srv.port)
            dt = msum(m, "ringcast_admission_ticks_total") - msum(last, "ringcast_admission_ticks_total")
            if dt >= 1:
                time.sleep(0.3)  # the tick's replies are in
                m = get_metrics(srv.port)
                samples.append({
                    "round_trips": (msum(m, "ringcast_admission_round_trips_total") -
                                    msum(last, "ringcast_admission_round_trips_total")) /
                    (msum(m, "ringcast_admission_ticks_total") -
                     msum(last, "ringcast_admission_ticks_total")),
                    "tick_ms": msum(m, "ringcast_admission_tick_seconds") * 1000.0,
                })
                last = m
        spread = {}
        if owner_of:
            for q in names:
                o = owner_of(slot_of("rc:q:{%s}:wait" % q))
                spread[o] = spread.get(o, 0) + 1
        late = msum(last, "ringcast_admission_late_ticks_total") - \
            msum(m0, "ringcast_admission_late_ticks_total")
        return {
            "backend": kind,
            "queues": queues,
            "waiters_per_queue": waiters,
            "ticks": len(samples),
            "round_trips_per_tick": statistics.median(s["round_trips"] for s in samples),
            "round_trips_max": max(s["round_trips"] for s in samples),
            "tick_ms_median": statistics.median(s["tick_ms"] for s in samples),
            "tick_ms_max": max(s["tick_ms"] for s in samples),
            "late_ticks": late,
            "queues_per_primary": spread,
        }
    finally:
        srv.stop() if hasattr(srv, "stop") else srv.proc.kill()


def render(res, cmd):
    rows = []
    for r in res["runs"]:
        spread = ", ".join("%s: %d" % (k, v) for k, v in sorted(r["queues_per_primary"].items()))
        rows.append("| %s | %d | %.2f (max %.2f) | %.2f ms | %.2f ms | %d | %s |" % (
            r["backend"], r["queues"], r["round_trips_per_tick"], r["round_trips_max"],
            r["tick_ms_median"], r["tick_ms_max"], r["late_ticks"], spread or "-"))
    return "\n".join([
        "## Waiting room: the tick's round trips over a cluster's primaries",
        "",
        "`%s` (%s; results `perf/results/tick-%s.json`). One ringcast node "
        "(`--admission-tick-ms 1000`) on one redis-server, then on a local Redis Cluster "
        "of three primaries with a replica each; %d queues of %d synthetic waiters "
        "each (rate 1), over %d ticks each. A tick is one script per queue on the "
        "primary of the queue's slot, the waiters' refreshes and the index read: on a "
        "cluster one pipeline per primary, all sent at once; *tick time* is "
        "`ringcast_admission_tick_seconds`, from the first command sent to the last reply."
        % (cmd, res["stamp"], res["stamp"], res["runs"][0]["queues"],
           res["runs"][0]["waiters_per_queue"], res["runs"][0]["ticks"]),
        "",
        "| Redis | queues | round trips per tick (median) | tick time, median | tick time, worst "
        "| late ticks | queues per primary |",
        "|---|---|---|---|---|---|---|",
    ] + rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queues", type=int, default=30)
    ap.add_argument("--waiters", type=int, default=10000, help="per queue")
    ap.add_argument("--ticks", type=int, default=15)
    ap.add_argument("--no-report", action="store_true")
    a = ap.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    runs = []
    with tempfile.TemporaryDirectory(prefix="rc-tickbench-") as tmp:
        r = RedisServer(tmp)
        try:
            with r.client() as c:
                runs.append(measure("one Redis", r.url, c, tmp, a.queues, a.ticks, a.waiters))
        finally:
            r.close()
        cl = clusterhelp.RedisCluster(os.path.join(tmp, "c"))
        try:
            from redishelp import Resp
            with Resp(cl.nodes[0].port, cluster=True) as c:
                def owner_of(slot):
                    n = cl.node_for_slot(slot)
                    return "primary %d" % n.port

                runs.append(measure("cluster, 3 primaries", cl.seeds_url(), c, tmp, a.queues,
                                    a.ticks, a.waiters, owner_of))
        finally:
            cl.stop()
    res = {"stamp": stamp, "runs": runs}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", "tick-%s.json" % stamp)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    cmd = "/usr/bin/python3 perf/tickbench.py" + "".join(" " + x for x in sys.argv[1:])
    text = render(res, cmd)
    print(text)
    if not a.no_report:
        path = os.path.join(ROOT, "BENCHMARKS.md")
        s = open(path).read()
        b, e = "<!-- tick-bench:start -->", "<!-- tick-bench:end -->"
        block = b + "\n" + text + "\n" + e
        if b in s:
            s = s[:s.index(b)] + block + s[s.index(e) + len(e):]
        else:
            s = s.rstrip("\n") + "\n\n" + block + "\n"
        open(path, "w").write(s)


if __name__ == "__main__":
    main()
