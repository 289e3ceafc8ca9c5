#!/usr/bin/python3
"""Socket.IO benchmark: Socket.IO clients on ringcast against Socket.IO 4 with
the Redis adapter, in the same run.

Both serve the same load generator (build/ringload, its "socketio" dialect:
Engine.IO v4 over WebSocket, `socket.emit("subscribe", room)` with an ack,
`socket.emit("message", room, msg)` to publish, `42["message", msg]` received).
ringcast maps those events itself (--socketio-map 'subscribe subscribe',
'message publish') and publishes through a redis-server of its own, as the
peer does through its adapter. Server and redis-server on core 0, load on
core 1, one shard (the peer is one Node event loop):

  fan-out      10,000 subscribers of one room: the highest publish rate with
               no message lost and no queueing (perf/bench.py's search)
  handshakes   5,000 connections opened (Engine.IO open, CONNECT) per second
  memory       RSS per idle WebSocket connection, marginal (perf/bench.py's
               rss_run) at 19,000 connections (--short: 3,000); and RSS per
               long-polling session (handshake and CONNECT over HTTP, no GET
               waiting), marginal between 2,000 and 4,000 sessions

Writes perf/results/sio-<UTC stamp>.json and the block between
<!-- sio-bench:start --> and <!-- sio-bench:end --> in BENCHMARKS.md.
About 4 minutes (--short: 1).

  /usr/bin/python3 perf/siobench.py [--short]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import benchlib as bl  # noqa: E402

START, END = "<!-- sio-bench:start -->", "<!-- sio-bench:end -->"
KINDS = ("ringcast-sio", "socketio")


def measure(kind, args, p, rl, logdir):
    out = {"server": kind}
    srv = bench.Server(kind, args.build, logdir)
    try:
        n = p["n_fan"]
        bl.log("%s: fan-out search, %d subscribers" % (kind, n))
        best, tried = bench.search_rate(rl, srv, n, p, bench.PRIOR_DELIVERIES[kind] / n,
                                        p["search_steps"])
        out["fanout"] = {"conns": n, "best": best, "tried": tried}
        hs_n = 5000
        srv.quiet()
        out["handshakes"] = rl.run(srv.url, srv.dialect, "idle", conns=hs_n,
                                   threads=bench.threads_for(hs_n),
                                   src_addrs=bench.src_addrs_for(hs_n), duration=1,
                                   timeout=60 + hs_n / 200)
        bl.log("  handshakes/s %s (%s of %d)" % (
            bench.fmt_num(bl.g(out["handshakes"], "handshakes_per_s")),
            bl.g(out["handshakes"], "opened"), hs_n))
    finally:
        srv.stop()
    bl.log("%s: memory per idle connection" % kind)
    out["rss"] = bench.rss_run(kind, args, p, rl, logdir, p["sio_rss_n"])
    bl.log("%s: memory per long-polling session" % kind)
    out["polling"] = polling_rss(kind, args, logdir)
    return out


def polling_rss(kind, args, logdir, n=4000):
    """RSS per long-polling session: n sessions opened over HTTP (the
    handshake GET, then a POST of CONNECT), marginal between n/2 and n."""
    import http.client
    out = {"server": kind, "sessions": n}
    srv = bench.Server(kind, args.build, logdir, extra=("--polling",) if kind == "socketio" else ())
    try:
        def session():
            c = http.client.HTTPConnection(bl.HOST, srv.port, timeout=10)
            c.request("GET", "/socket.io/?EIO=4&transport=polling")
            body = c.getresponse().read().decode()
            c.close()
            sid = json.loads(body[1:body.index("}") + 1])["sid"]
            c = http.client.HTTPConnection(bl.HOST, srv.port, timeout=10)
            c.request("POST", "/socket.io/?EIO=4&transport=polling&sid=" + sid, body="40",
                      headers={"Content-Type": "text/plain;charset=UTF-8"})
            ok = c.getresponse().read() == b"ok"
            c.close()
            return ok
        time.sleep(0.5)
        marks = []
        opened = 0
        for step in range(2):
            for _ in range(n // 2):
                opened += session()
            time.sleep(1.0)
            marks.append({"opened": opened, "rss": bl.rss_bytes(srv.pid)[0]})
        out["marks"] = marks
        if marks[1]["opened"] > marks[0]["opened"]:
            out["rss_per_session"] = (marks[1]["rss"] - marks[0]["rss"]) / (
                marks[1]["opened"] - marks[0]["opened"])
        bl.log("  %s: RSS per polling session %s B (%d opened)" % (
            kind, bench.fmt_num(out.get("rss_per_session")), opened))
    except Exception as e:  # noqa: BLE001
        out["error"] = "%s: %s" % (type(e).__name__, e)
        bl.log("%s polling rss: error: %s" % (kind, e))
    finally:
        srv.stop()
    return out


def report(doc, path_json):
    def num(x, f="%.0f"):
        return "n/a" if x is None else f % x

    r, s = doc["servers"]["ringcast-sio"], doc["servers"]["socketio"]
    fr = bl.g(r, "fanout", "best", "deliveries_per_s")
    fs = bl.g(s, "fanout", "best", "deliveries_per_s")
    hr = bl.g(r, "handshakes", "handshakes_per_s")
    hs = bl.g(s, "handshakes", "handshakes_per_s")
    mr = bl.g(r, "rss", "rss_per_conn")
    ms = bl.g(s, "rss", "rss_per_conn")
    pr = bl.g(r, "polling", "rss_per_session")
    ps = bl.g(s, "polling", "rss_per_session")
    ratio = lambda a, b: num(a / b, "%.1f") if a and b else "n/a"  # noqa: E731
    lines = [START, "## Socket.IO clients: ringcast against Socket.IO 4 with the Redis adapter",
             "",
             "Measured by `%s` at %s UTC (raw: `results/%s`), both in the same run. Server and "
             "redis-server on core 0, load on core 1; ringcast with one shard. The same load "
             "generator speaks Engine.IO v4 over WebSocket to both." % (
                 doc["command"], doc["stamp"], os.path.basename(path_json)), "",
             "| figure | ringcast | Socket.IO 4 + Redis adapter | ratio |",
             "| --- | --- | --- | --- |",
             "| fan-out to %d subscribers, loss-free deliveries/s | %s | %s | %s× |" % (
                 doc["params"]["n_fan"], num(fr), num(fs), ratio(fr, fs)),
             "| handshakes per second (5,000 connections) | %s | %s | %s× |" % (
                 num(hr), num(hs), ratio(hr, hs)),
             "| memory per idle WebSocket connection (RSS, marginal, %d connections) | %s B | "
             "%s B | 1/%s |" % (doc["params"]["sio_rss_n"], num(mr), num(ms), ratio(ms, mr)),
             "| memory per long-polling session (RSS, marginal, 2,000 to 4,000 sessions, each "
             "handshaken and CONNECTed, no GET waiting) | %s B | %s B | 1/%s |" % (
                 num(pr), num(ps), ratio(ps, pr)),
             "",
             "A polling session on ringcast is a virtual connection (a slot without a socket); "
             "its HTTP requests come and go with Connection: close, so their sockets are not "
             "counted in it. Socket.IO runs with polling and WebSocket allowed for that row.",
             END]
    bl.write_block(lines, START, END, "sio-bench")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args()
    p = bench.SHORT if args.short else bench.FULL
    stamp = bl.now_utc_stamp()
    logdir = bl.make_logdir("ringcast-sio-%s-" % stamp)
    rl = bl.Ringload(os.path.join(args.build, "ringload"), cpu=bench.LOADGEN_CPU)
    doc = {"stamp": stamp, "params": p, "machine": bl.machine_info(args.build),
           "command": "/usr/bin/python3 perf/siobench.py" + (" --short" if args.short else ""),
           "logdir": logdir, "servers": {}}
    for kind in KINDS:
        doc["servers"][kind] = measure(kind, args, p, rl, logdir)
    out = bl.save_results(doc, "sio", stamp)
    if not args.no_report:
        report(doc, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
