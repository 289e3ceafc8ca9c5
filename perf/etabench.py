#!/usr/bin/python3
"""Waiting-room ETA benchmark: how good is the first estimated wait a waiter sees?

For each waiter, the first estimate E is the `eta` of its `queue.joined` (seconds)
and the actual wait A the time from sending `queue.join` to receiving `admitted`,
both measured by the client. Relative error = |E - A| / A; an estimate of null
counts as a miss with error 100%. Target: median within 25%.

Scenarios, each on a fresh queue of one ringcast node (1 s admission ticks) with a
private Redis; every waiter is its own WebSocket connection and user:

  crowd          queue open, rate 50 per tick; 1500 waiters join within its first second
  crowd-paused   the same crowd joins a paused queue (eta null at join), which is opened
                 2 s later; E is the first non-null eta (the first queue.tick after
                 opening) and A counts from that message
  steady-below   rate 50; 40 arrivals a second for 25 s (the line stays short)
  steady-above   rate 50; 75 arrivals a second for 20 s (a line builds)
  max-active     rate 50, max_active 100, active_ttl 5 s; 25 arrivals a second for 16 s:
                 places open only as admissions expire (20 a second on average)

Writes perf/results/eta-<UTC stamp>.json and rewrites the block between
<!-- eta-bench:start --> and <!-- eta-bench:end --> in BENCHMARKS.md (appended when
absent; --no-report leaves BENCHMARKS.md alone). About 3 minutes.

  /usr/bin/python3 perf/etabench.py
  /usr/bin/python3 perf/etabench.py --scenario crowd --no-report
"""
import argparse
import asyncio
import json
import math
import os
import shlex
import socket
import statistics
import sys
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

API_KEY = "eta-bench-api-key"
JWT_SECRET = "eta-bench-jwt-secret"
ADM_SECRET = "eta-bench-admission-secret"
TICK_MS = 1000
TARGET = 0.25
START, END = "<!-- eta-bench:start -->", "<!-- eta-bench:end -->"
CMD = "/usr/bin/python3 perf/etabench.py"
BIG = 100000000

# name: queue configuration, arrivals (waiters, over seconds), and what it shows.
SCENARIOS = [
    {"name": "crowd", "cfg": {"rate": 50, "max_active": BIG, "active_ttl": 600},
     "waiters": 1500, "over_s": 1.0,
     "what": "queue created open, rate 50 per tick; 1500 waiters join within its first "
             "second"},
    {"name": "crowd-paused", "cfg": {"rate": 50, "max_active": BIG, "active_ttl": 600},
     "waiters": 1500, "over_s": 1.0, "paused": True, "open_after_s": 2.0,
     "what": "the same crowd joins the queue while it is paused (eta null), opened 2 s "
             "later; E = first non-null eta (first queue.tick after opening), A from "
             "that message"},
    {"name": "steady-below", "cfg": {"rate": 50, "max_active": BIG, "active_ttl": 600},
     "waiters": 1000, "over_s": 25.0,
     "what": "rate 50 per tick; 40 arrivals a second for 25 s (below the rate)"},
    {"name": "steady-above", "cfg": {"rate": 50, "max_active": BIG, "active_ttl": 600},
     "waiters": 1500, "over_s": 20.0,
     "what": "rate 50 per tick; 75 arrivals a second for 20 s (1.5x the rate: a line "
             "builds)"},
    {"name": "max-active", "cfg": {"rate": 50, "max_active": 100, "active_ttl": 5},
     "waiters": 400, "over_s": 16.0,
     "what": "rate 50 per tick but max_active 100 and active_ttl 5 s, so places open only "
             "as admissions expire (20 a second on average); 25 arrivals a second for 16 s"},
]


def http(port, method, path, body=None, timeout=10.0):
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
    return int(head.split(b" ", 2)[1]), rest.decode("utf-8", "replace")


def put_queue(port, q, cfg):
    st, body = http(port, "PUT", "/api/queues/%s" % q, cfg)
    if st != 200:
        raise bl.BenchError("PUT /api/queues/%s: %d %s" % (q, st, body))
    return json.loads(body)


def pct(xs, q):
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(math.ceil(q * len(s))) - 1)]


class Waiter:
    __slots__ = ("user", "ws", "join_at", "t_join", "ticket", "joined", "first_num",
                 "t_admitted", "error", "positions")

    def __init__(self, user, join_at):
        self.user, self.join_at = user, join_at
        self.ws = None
        self.t_join = self.t_admitted = None
        self.ticket = None
        self.joined = None     # (t, position, eta) of queue.joined
        self.first_num = None  # (t, position, eta) of the first message with a numeric eta
        self.error = None
        self.positions = 0


async def connect(port, w, sem):
    tok = bl.jwt_hs256({"sub": w.user, "exp": int(time.time()) + 3600}, JWT_SECRET)
    async with sem:
        w.ws = await websockets.connect("ws://%s:%d/ws?token=%s" % (bl.HOST, port, tok),
                                        max_size=None, ping_interval=None, open_timeout=20,
                                        close_timeout=2, compression=None)
        first = json.loads(await asyncio.wait_for(w.ws.recv(), 10))
        if first.get("type") != "welcome":
            raise bl.BenchError("expected welcome, got %s" % first)


async def wait_turn(w, q, t0, deadline):
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 + w.join_at - loop.time()))
    w.t_join = loop.time()
    await w.ws.send(json.dumps({"type": "queue.join", "id": 1, "queue": q}))
    try:
        while True:
            m = json.loads(await asyncio.wait_for(w.ws.recv(), max(0.1, deadline - loop.time())))
            now = loop.time()
            t = m.get("type")
            if t == "queue.joined":
                w.ticket = m.get("ticket")
                w.joined = (now, m.get("position"), m.get("eta"))
                if m.get("eta") is not None and w.first_num is None:
                    w.first_num = w.joined
            elif t == "queue.tick" and w.ticket is not None:
                # the same frame for every waiter: the place and ETA are the client's sums
                w.positions += 1
                pos = max(w.ticket - m["head"], 1)
                eta = math.ceil(pos / m["ewma"] * m["tick"] / 1000.0) if m["ewma"] >= 0.01 \
                    else None
                if eta is not None and w.first_num is None:
                    w.first_num = (now, pos, eta)
            elif t == "admitted":
                w.t_admitted = now
                return
            elif t in ("error", "queue.left"):
                w.error = m
                return
    except asyncio.TimeoutError:
        w.error = {"type": "timeout"}
    except websockets.exceptions.ConnectionClosed as e:
        w.error = {"type": "closed", "code": e.code, "reason": e.reason}


async def run_scenario(port, sc, idx):
    loop = asyncio.get_running_loop()
    q = "eta-%d-%s" % (idx, sc["name"])
    n, over = sc["waiters"], sc["over_s"]
    ws_ = [Waiter("%s-u%d" % (q, i), over * i / n) for i in range(n)]
    sem = asyncio.Semaphore(200)
    t_c = loop.time()
    await asyncio.gather(*(connect(port, w, sem) for w in ws_))
    connect_s = loop.time() - t_c
    cfg = dict(sc["cfg"], abandon_timeout=86400,
               state="paused" if sc.get("paused") else "open")
    qcfg = put_queue(port, q, cfg)
    t0 = loop.time()
    # the line moves at least as fast as the slowest admission pace of the scenario
    pace = min(cfg["rate"], cfg["max_active"] / cfg["active_ttl"]) * 1000.0 / TICK_MS
    deadline = t0 + sc.get("open_after_s", 0) + over + n / pace + 20
    tasks = [asyncio.ensure_future(wait_turn(w, q, t0, deadline)) for w in ws_]
    t_open = None
    if sc.get("paused"):
        await asyncio.sleep(max(0.0, t0 + sc["open_after_s"] - loop.time()))
        t_open = loop.time() - t0
        put_queue(port, q, {"state": "open"})
    await asyncio.gather(*tasks)
    st, body = http(port, "GET", "/api/queues/%s" % q)
    after = json.loads(body) if st == 200 else {"status": st, "body": body}
    await asyncio.gather(*(w.ws.close() for w in ws_), return_exceptions=True)
    return q, qcfg, t0, t_open, connect_s, ws_, after


def measure(sc, ws_, t0):
    """Per waiter: [join s (from queue creation), position, E, A, opening-tick flag]."""
    rows = []
    for w in ws_:
        if w.t_admitted is None:
            rows.append({"join_s": round(w.t_join - t0, 4), "error": w.error,
                         "joined": w.joined and [w.joined[1], w.joined[2]]})
            continue
        if sc.get("paused"):
            if w.first_num is None:  # admitted by the opening tick: never saw an estimate
                rows.append({"join_s": round(w.t_join - t0, 4), "position": None, "E": None,
                             "A": None, "opening_tick": True,
                             "joined": w.joined and [w.joined[1], w.joined[2]]})
                continue
            start, pos, e = w.first_num
        else:
            start = w.t_join
            pos, e = (w.joined[1], w.joined[2]) if w.joined else (None, None)
        rows.append({"join_s": round(w.t_join - t0, 4), "position": pos, "E": e,
                     "A": round(w.t_admitted - start, 4)})
    return rows


def summarize(sc, rows):
    meas = [r for r in rows if r.get("A") is not None]
    rel, signed, abs_s, short, long_ = [], [], [], [], []
    nulls = 0
    for r in meas:
        if r["E"] is None:
            nulls += 1
            err = 1.0
        else:
            a = max(r["A"], 1e-3)
            err = abs(r["E"] - a) / a
            signed.append((r["E"] - a) / a)
            abs_s.append(abs(r["E"] - a))
        rel.append(err)
        (short if r["A"] < 2.0 else long_).append(err)
    s = {"waiters": len(rows), "measured": len(meas), "null_estimates": nulls,
         "not_admitted": sum(1 for r in rows if "error" in r),
         "admitted_by_opening_tick": sum(1 for r in rows if r.get("opening_tick"))}
    if rel:
        s.update({
            "median_rel_error": round(statistics.median(rel), 4),
            "p90_rel_error": round(pct(rel, 0.9), 4),
            "within_25pct": round(sum(1 for x in rel if x <= TARGET) / len(rel), 4),
            "median_signed_rel_error": round(statistics.median(signed), 4) if signed else None,
            "median_abs_error_s": round(statistics.median(abs_s), 3) if abs_s else None,
            "median_A_s": round(statistics.median(r["A"] for r in meas), 3),
            "max_A_s": round(max(r["A"] for r in meas), 3),
            "median_E_s": statistics.median(r["E"] for r in meas if r["E"] is not None)
            if signed else None,
            "short_waits": {"n": len(short), "median_rel_error":
                            round(statistics.median(short), 4) if short else None},
            "long_waits": {"n": len(long_), "median_rel_error":
                           round(statistics.median(long_), 4) if long_ else None},
        })
        s["verdict"] = "meets" if s["median_rel_error"] <= TARGET else "misses"
    return s


async def run_all(port, scenarios, doc):
    for i, sc in enumerate(scenarios):
        bl.log("scenario %s: %s" % (sc["name"], sc["what"]))
        q, qcfg, t0, t_open, connect_s, ws_, after = await run_scenario(port, sc, i)
        rows = measure(sc, ws_, t0)
        summ = summarize(sc, rows)
        doc["scenarios"].append({
            "name": sc["name"], "what": sc["what"], "queue": q, "queue_cfg": qcfg,
            "arrivals": {"waiters": sc["waiters"], "over_s": sc["over_s"]},
            "open_after_s": t_open, "connect_s": round(connect_s, 2),
            "queue_after": after, "summary": summ, "waiters": rows})
        bl.log("  %s" % json.dumps(summ))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", action="append", choices=[s["name"] for s in SCENARIOS],
                    help="run only this scenario (repeatable; default all)")
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--results", default=os.path.join(bl.REPO, "perf", "results"))
    ap.add_argument("--no-report", action="store_true", help="leave BENCHMARKS.md alone")
    ap.add_argument("--report-from", metavar="JSON",
                    help="only rewrite the BENCHMARKS.md block from an earlier results file")
    args = ap.parse_args()
    if args.report_from:
        with open(args.report_from) as f:
            doc = json.load(f)
        write_report(doc, os.path.relpath(os.path.abspath(args.report_from), bl.REPO))
        return 0
    scenarios = [s for s in SCENARIOS if not args.scenario or s["name"] in args.scenario]
    stamp = bl.now_utc_stamp()
    os.makedirs(args.results, exist_ok=True)
    logdir = bl.make_logdir("ringcast-eta-%s-" % stamp)
    out_path = os.path.join(args.results, "eta-%s.json" % stamp)
    doc = {"stamp": stamp, "tick_ms": TICK_MS, "target_rel_error": TARGET,
           "machine": bl.machine_info(args.build), "logdir": logdir, "failures": [],
           "command": CMD + "".join(" --scenario " + s["name"] for s in scenarios
                                    if args.scenario),
           "scenarios": []}
    bl.log("eta bench: %d scenarios; logs in %s" % (len(scenarios), logdir))
    redis = srv = None
    t_start = time.monotonic()
    try:
        redis = bl.start_redis(logdir)
        port = bl.free_port()
        env = dict(os.environ)
        env.update({"RINGCAST_API_KEY": API_KEY, "RINGCAST_JWT_SECRET": JWT_SECRET,
                    "RINGCAST_ADMISSION_SECRET": ADM_SECRET})
        cmd = [os.path.join(args.build, "ringcast"), "--listen", "%s:%d" % (bl.HOST, port),
               "--redis", "redis://%s:%d" % (bl.HOST, redis.port),
               "--admission-tick-ms", str(TICK_MS), "--max-connections", "10000",
               "--log-level", "warn"]
        srv = bl.Proc("ringcast", cmd, logdir, port=port, env=env, timeout=30)
        doc["ringcast_cmd"] = " ".join(map(shlex.quote, cmd)) + \
            "  (env RINGCAST_API_KEY, RINGCAST_JWT_SECRET, RINGCAST_ADMISSION_SECRET)"
        asyncio.run(run_all(port, scenarios, doc))
        if not srv.alive():
            doc["failures"].append("ringcast exited with %s: %s" % (
                srv.proc.returncode, srv.log_tail(5)))
    except (bl.BenchError, OSError, asyncio.TimeoutError,
            websockets.exceptions.WebSocketException) as e:
        doc["failures"].append("%s: %s" % (type(e).__name__, e))
        bl.log("failed: %s" % e)
    finally:
        for p in (srv, redis):
            if p is not None:
                p.stop()
    doc["run_s"] = round(time.monotonic() - t_start, 1)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    bl.log("wrote %s (%.0f s)" % (out_path, doc["run_s"]))
    ok = bool(doc["scenarios"]) and not doc["failures"]
    if ok and not args.no_report:
        write_report(doc, os.path.relpath(out_path, bl.REPO))
    print(json.dumps({s["name"]: s["summary"] for s in doc["scenarios"]}, indent=1))
    return 0 if ok else 1


def fmt(x, unit=""):
    return "-" if x is None else ("%s%s" % (x, unit))


def pc(x):
    if x is None:
        return "-"
    return ("%.1f%%" if abs(x) < 0.1 else "%.0f%%") % (100 * x)


def write_report(doc, rel_json):
    m = doc["machine"]
    lines = [
        START,
        "## Waiting room: how good the first estimated wait is",
        "",
        "`%s` (%s; results `%s`, %.0f s). One ringcast node (`--admission-tick-ms %d`) and a "
        "private Redis; each scenario is a fresh queue, each waiter its own WebSocket "
        "connection and user (Python `websockets` clients on the same machine). For each "
        "waiter the first estimate E is the `eta` of its `queue.joined` and the actual wait "
        "A the time from sending `queue.join` to receiving `admitted`, both measured by the "
        "client; relative error |E - A| / A, an estimate of `null` counting as 100%%. "
        "Target: median within %.0f%%. Machine: %s, %s CPUs, kernel %s, %s." % (
            doc["command"], doc["stamp"], rel_json, doc.get("run_s") or 0, doc["tick_ms"],
            100 * doc["target_rel_error"], m.get("cpu_model", "?"), m.get("nproc"),
            m.get("kernel"), m.get("redis") or "redis"),
        "",
        "| scenario | waiters | median error | p90 error | within 25% | null estimates "
        "| median (E - A) / A | median \\|E - A\\| | median A | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in doc["scenarios"]:
        s = sc["summary"]
        lines.append("| %s | %d | %s | %s | %s | %d | %s | %s | %s | %s |" % (
            sc["name"], s["measured"], pc(s.get("median_rel_error")),
            pc(s.get("p90_rel_error")), pc(s.get("within_25pct")), s["null_estimates"],
            "-" if s.get("median_signed_rel_error") is None else "%+.1f%%" % (
                100 * s["median_signed_rel_error"]),
            fmt(s.get("median_abs_error_s") and round(s["median_abs_error_s"], 2), " s"), fmt(s.get("median_A_s") and round(s["median_A_s"], 2), " s"),
            "**%s**" % s.get("verdict", "-")))
    lines += [
        "",
        "`crowd` measures the figure defined above: the `eta` on the user's screen as soon as "
        "the join is answered, for a crowd that arrives as the sale opens (before any tick has "
        "measured the line, so it is the configured rate that counts). `crowd-paused` is what "
        "people who gather before the opening see instead: no figure (`null`) until the "
        "opening tick, then the `eta` of their first `queue.tick`; there the wait is "
        "counted from that message.",
        ""]
    for sc in doc["scenarios"]:
        s = sc["summary"]
        extra = []
        if s["not_admitted"]:
            extra.append("%d not admitted by the deadline" % s["not_admitted"])
        if s["admitted_by_opening_tick"]:
            extra.append("%d admitted by the opening tick before any estimate (not counted)"
                         % s["admitted_by_opening_tick"])
        lines.append("- **%s**: %s. Waits under 2 s: %d, median error %s; 2 s and longer: "
                     "%d, median error %s; longest wait %s s%s." % (
                         sc["name"], sc["what"], s["short_waits"]["n"],
                         pc(s["short_waits"]["median_rel_error"]), s["long_waits"]["n"],
                         pc(s["long_waits"]["median_rel_error"]), fmt(s.get("max_A_s") and round(s["max_A_s"], 1)),
                         ("; " + "; ".join(extra)) if extra else ""))
    lines.append(END)
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
    bl.log("updated the eta-bench block of %s" % path)


if __name__ == "__main__":
    sys.exit(main())
