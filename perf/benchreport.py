"""Turns one bench result (perf/results/<stamp>.json) into PNG plots and BENCHMARKS.md.
Every figure written comes from that result: nothing is carried over from other runs."""
import json
import os

from benchlib import g

NAMES = {"ringcast": "ringcast", "uws": "uWebSockets (uWebSockets.js 20.30)",
         "naive": "naive C (one send per frame)",
         "ws": "Node ws", "socketio": "Socket.IO 4 + Redis adapter"}
ORDER = ["ringcast", "uws", "naive", "ws", "socketio"]
LOADGEN_BUSY = 0.90


def _util(res):
    u = g(res, "cpu", "utilisation", default=g(res, "cpu", "util"))
    return float(u) if isinstance(u, (int, float)) else None


def _busy(res):
    u = _util(res)
    return u is not None and u > LOADGEN_BUSY


def _fmt(v, unit=""):
    if v is None:
        return "—"
    if isinstance(v, float) and abs(v) < 10:
        s = "%.2f" % v
    elif abs(v) >= 1e6:
        s = "%.2fM" % (v / 1e6)
    elif abs(v) >= 1e4:
        s = "%.0fk" % (v / 1e3)
    else:
        s = "%.0f" % v
    return s + unit


def _us(v):
    if v is None:
        return "—"
    return "%.2f ms" % (v / 1000) if v >= 1000 else "%.0f µs" % v


def _pct(res):
    u = _util(res)
    if u is None:
        return "—"
    return ("**%.0f%%** ⚠" if u > LOADGEN_BUSY else "%.0f%%") % (100 * u)


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def _not_measured(srv):
    if srv is None:
        return "not run"
    if "error" in srv:
        return "not measured (%s)" % srv["error"].splitlines()[0][:160]
    return None


# ---- plots ------------------------------------------------------------------------

def plots(doc, outdir):
    """Two PNGs; returns {name: path} of those written (matplotlib may be missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    stamp = doc["stamp"]
    written = {}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    any_line = False
    for kind in ORDER:
        srv = doc["servers"].get(kind)
        pts = [c for c in (srv or {}).get("latency_curve", []) if c.get("p99") is not None]
        if not pts:
            continue
        xs = [c["rate"] for c in pts]
        line, = ax.plot(xs, [c["p99"] / 1000 for c in pts], marker="o", label=NAMES[kind] + " p99")
        ax.plot(xs, [c["p50"] / 1000 for c in pts], marker=".", linestyle="--",
                color=line.get_color(), label=NAMES[kind] + " p50")
        bad = [c for c in pts if not c["ok"]]
        if bad:
            ax.scatter([c["rate"] for c in bad], [c["p99"] / 1000 for c in bad], marker="x",
                       s=60, color=line.get_color())
        any_line = True
    if any_line:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("publishes per second (%d subscribers, 64 B data)" % doc["params"]["n_fan"])
        ax.set_ylabel("publish → receive latency (ms)")
        ax.set_title("Latency against publish rate (x: run not sustained or lossy)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(outdir, "latency-vs-rate-%s.png" % stamp)
        fig.savefig(path, dpi=110)
        written["latency"] = path
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    any_line = False
    for kind in ORDER:
        srv = doc["servers"].get(kind)
        pts = [(s["conns"], g(s, "best", "deliveries_per_s")) for s in (srv or {}).get(
            "subs_curve", [])]
        pts = [(x, y) for x, y in pts if y]
        if not pts:
            continue
        ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=NAMES[kind])
        any_line = True
    if any_line:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("subscribers of the channel")
        ax.set_ylabel("highest loss-free deliveries per second")
        ax.set_title("Fan-out throughput against subscriber count (one server core)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(outdir, "deliveries-vs-subscribers-%s.png" % stamp)
        fig.savefig(path, dpi=110)
        written["deliveries"] = path
    plt.close(fig)
    return written


# ---- markdown --------------------------------------------------------------------------

def _target_rows(doc):
    S = doc["servers"]
    rows = []

    def fan(kind):
        return g(S.get(kind), "fanout", "best", "deliveries_per_s")

    def verdict(ok, busy=False):
        if ok is None:
            return "not measured"
        s = "**met**" if ok else "**not met**"
        return s + (" (load generator above 90%: a lower bound)" if busy else "")

    rc_best = g(S.get("ringcast"), "fanout", "best")
    busy = _busy(rc_best)
    for peer, k in (("naive", 7.0), ("socketio", 20.0)):
        r = _ratio(fan("ringcast"), fan(peer))
        rows.append(("fan-out, %d subscribers, highest loss-free deliveries/s ≥ %.0f× %s"
                     % (doc["params"]["n_fan"], k, NAMES[peer]),
                     "%s vs %s = %s" % (_fmt(fan("ringcast")), _fmt(fan(peer)),
                                         "—" if r is None else "%.1f×" % r),
                     verdict(None if r is None else r >= k, busy and r is not None and r < k)))
    rc99 = g(S.get("ringcast"), "latency", "latency_us", "p99")
    nv99 = g(S.get("naive"), "latency", "latency_us", "p99")
    rows.append(("p99 publish → receive at %g/s to %d subscribers ≤ naive's p99"
                 % (doc["params"]["lat_rate"], doc["params"]["n_fan"]),
                 "%s vs %s" % (_us(rc99), _us(nv99)),
                 verdict(None if rc99 is None or nv99 is None else rc99 <= nv99)))
    for sub, limit in ((False, 128), (True, 256)):
        r = [x for x in doc.get("rss", []) if x["server"] == "ringcast"
             and x["subscribed"] == sub and "rss_per_conn" in x]
        v = r[0]["rss_per_conn"] if r else None
        rows.append(("user-space RSS per idle connection ≤ %d B (%s)" % (
            limit, "one channel and a user id" if sub else "unsubscribed"),
            "—" if v is None else "%.0f B" % v,
            verdict(None if v is None else v <= limit)))
    rows.extend(_uws_rows(doc))
    for what, key, scen in (("echo round trips/s", "round_trips_per_s", "echo"),
                            ("handshakes/s", "handshakes_per_s", "handshakes")):
        a = g(S.get("ringcast"), scen, key)
        b = g(S.get("naive"), scen, key)
        rows.append(("%s ≥ naive's" % what, "%s vs %s" % (_fmt(a), _fmt(b)),
                     verdict(None if a is None or b is None else a >= b,
                             _busy(g(S.get("ringcast"), scen)))))
    return rows


def _curve_point(srv, rate):
    for c in (srv or {}).get("latency_curve", []):
        if c["rate"] == rate:
            return c
    return None


INF = float("inf")


def _heavy(doc, kind, rate):
    """Median p50 and p99 over a server's interleaved rounds at one rate, with a
    round that lost messages counted as infinitely late (its percentiles cover only
    what arrived); the count of loss-free rounds; the median load generator CPU."""
    runs = g(doc, "heavy", "runs", kind, str(rate)) or []
    if not runs:
        return None

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if xs else None
    clean = [r for r in runs if r.get("ok")]
    base = g(doc, "heavy", "runs", kind, str(g(doc, "heavy", "base_rate"))) or []
    cost = []  # server CPU seconds per delivery, over the base step of the same round
    for r, b in zip(runs, base):
        if r.get("ok") and b.get("ok") and r.get("server_cpu_s") is not None and \
                b.get("server_cpu_s") is not None and (r["received"] or 0) > (b["received"] or 0):
            cost.append((r["server_cpu_s"] - b["server_cpu_s"]) / (r["received"] - b["received"]))
    return {"cpu_per_delivery": med(cost), "cost_rounds": len(cost),"p50": med([r["p50"] if r.get("ok") and r.get("p50") is not None else INF
                        for r in runs]),
            "p99": med([r["p99"] if r.get("ok") and r.get("p99") is not None else INF
                        for r in runs]),
            "ok": len(clean), "n": len(runs),
            "util": med([r["loadgen_util"] for r in runs if r.get("loadgen_util") is not None]),
            "runs": runs}


def _usi(v):
    return "lost" if v == INF else _us(v)


def _heavy_section(doc):
    h = doc.get("heavy") or {}
    kinds = [k for k in ORDER if k in (h.get("runs") or {})]
    if not h.get("rates") or len(kinds) < 2:
        return []
    L = ["## Latency under heavy fan-out, interleaved rounds", "",
         "%d subscribers, 64 B data, each step %.0f s after 1.0 s of warm-up; both servers "
         "take turns, started afresh each round, %d rounds, so the machine's noise falls on "
         "both. *Median* "
         "is over the rounds, a round that lost messages counting as lost (its percentiles "
         "cover only what arrived, so they are shown per round but not used). The load "
         "generator's CPU is per round. *Server CPU per delivery*: the server's CPU seconds "
         "over the step less those over the round's step at %g publishes/s (the same "
         "connections, set-up and teardown), divided by the extra deliveries; the median of "
         "the rounds where both steps were loss-free. It is what the fan-out costs the "
         "server, which the one-core load generator does not cap." % (
             h["n"], h["dur"], h["rounds"], h.get("base_rate") or 0), "",
         "| server | publishes/s | median p50 | median p99 | loss-free rounds | "
         "server CPU per delivery | rounds: p50 / p99 (load generator CPU) |",
         "| --- | --- | --- | --- | --- | --- | --- |"]
    for rate in h["rates"]:
        for k in kinds:
            x = _heavy(doc, k, rate)
            if x is None:
                continue
            cells = []
            for r in x["runs"]:
                lat = "%s / %s" % (_us(r.get("p50")), _us(r.get("p99")))
                if not r.get("ok"):
                    lat += " ✗ %s" % (r.get("why") or "")[:60]
                u = r.get("loadgen_util")
                cells.append("%s (%s)" % (lat, "—" if u is None else "%.0f%%" % (100 * u)))
            c = x["cpu_per_delivery"]
            L.append("| %s | %d | %s | %s | %d of %d | %s | %s |" % (
                NAMES[k], rate, _usi(x["p50"]), _usi(x["p99"]), x["ok"], x["n"],
                "—" if c is None else "%.3f µs" % (c * 1e6), "; ".join(cells)))
    L.append("")
    return L


def _uws_rows(doc):
    """Issue 17's targets: ringcast against uWebSockets in the same run."""
    S = doc["servers"]
    rc, uw = S.get("ringcast"), S.get("uws")
    if uw is None:
        return []
    rows = []

    def verdict(ok, busy=False):
        if ok is None:
            return "not measured"
        return ("**met**" if ok else "**not met**") + (
            " (load generator above 90%: a lower bound)" if busy else "")

    a = g(rc, "fanout", "best", "deliveries_per_s")
    b = g(uw, "fanout", "best", "deliveries_per_s")
    r = _ratio(a, b)

    def above(srv):
        """The failed step just above the best, why, and the load generator's CPU
        there: near 100% it, not the server, ended the search."""
        best = g(srv, "fanout", "best", "_rate")
        fails = sorted((t["_rate"], _util(t), t.get("_why") or "")
                       for t in g(srv, "fanout", "tried") or []
                       if not t.get("_ok") and best is not None and t["_rate"] > best)
        return fails[0] if fails else None
    why = []
    for nm, srv in (("ringcast", rc), ("uWebSockets", uw)):
        x = above(srv)
        if x and x[1] is not None:
            why.append("%s at %g/s: %s, load generator %.0f%%" % (nm, x[0], x[2][:60],
                                                                100 * x[1]))
    rows.append(("fan-out, %d subscribers, loss-free deliveries/s ≥ 2× uWebSockets"
                 % doc["params"]["n_fan"], "%s vs %s = %s%s" % (
                     _fmt(a), _fmt(b), "—" if r is None else "%.2f×" % r,
                     "" if not why else " (%s)" % "; ".join(why)),
                 verdict(None if r is None else r >= 2.0)))
    for rate in (200, 300):
        hx, hy = _heavy(doc, "ringcast", rate), _heavy(doc, "uws", rate)
        if hx is not None and hy is not None:
            for q in ("p50", "p99"):
                va, vb = hx[q], hy[q]
                rows.append(("%s at %d publishes/s to %d subscribers ≤ uWebSockets' (median "
                             "of %d interleaved rounds)" % (q, rate, doc["params"]["n_fan"],
                                                            hx["n"]),
                             "%s vs %s (loss-free rounds %d and %d of %d)" % (
                                 _usi(va), _usi(vb), hx["ok"], hy["ok"], hx["n"]),
                             verdict(None if va == INF and vb == INF else va <= vb,
                                     hx["util"] is not None and hx["util"] > LOADGEN_BUSY)))
            continue
        x, y = _curve_point(rc, rate), _curve_point(uw, rate)
        for q in ("p50", "p99"):
            va, vb = g(x, q), g(y, q)
            ok = None
            if va is not None and vb is not None:
                ok = va <= vb and bool(g(x, "ok"))
            rows.append(("%s at %d publishes/s to %d subscribers ≤ uWebSockets'" % (
                q, rate, doc["params"]["n_fan"]), "%s vs %s%s" % (
                    _us(va), _us(vb), "" if x is None or x.get("ok") else " (ringcast's step "
                    "not loss-free)"), verdict(ok)))
    ra = g(rc, "rpc", "round_trips_per_s")
    for scen, what in (("echo", "echo"), ("rpc", "JSON ping/pong")):
        rb = g(uw, scen, "round_trips_per_s")
        rows.append(("JSON ping/pong round trips/s, %d connections ≥ uWebSockets' %s" % (
            doc["params"]["echo_conns"], what), "%s vs %s" % (_fmt(ra), _fmt(rb)),
            verdict(None if ra is None or rb is None else ra >= rb,
                    _busy(g(rc, "rpc")))))
    mem = {(m["server"], m["shards"]): m for m in doc.get("memory", []) if "error" not in m}
    ma, mb = mem.get(("ringcast", 1)), mem.get(("uws", 1))

    def cold(m, n):
        for lv in (m or {}).get("levels", []):
            if lv["conns"] == n:
                return lv["cold_per_conn"]
        return None
    ca, cb = cold(ma, 10000), cold(mb, 10000)
    rows.append(("cold memory at 10k connections, one shard (RSS over the fresh server's, per "
                 "connection) ≤ uWebSockets'", "%s vs %s" % (
                     "—" if ca is None else "%.0f B" % ca, "—" if cb is None else "%.0f B" % cb),
                 verdict(None if ca is None or cb is None else ca <= cb)))
    return rows


def _memory_section(doc):
    mem = doc.get("memory") or []
    if not mem:
        return []
    L = ["## Memory from a fresh server, and after the connections leave", "",
         "Idle connections are added in steps (none leave in between); *over fresh* = (RSS "
         "there − RSS of the fresh server) ÷ connections, the fixed pools the first "
         "connections touch included. *After* is the RSS %s s after the last connection "
         "closed. uWebSockets (one process, one fd per connection) stops short of 100k under "
         "RLIMIT_NOFILE." % (mem[0].get("leave_s"),), "",
         "| server | fresh RSS | " + " | ".join(
             "%s connections: RSS (over fresh, per connection)" % c for c in ("1k", "10k", "100k"))
         + " | after they left |", "| --- | --- | --- | --- | --- | --- |"]
    for m in mem:
        name = "%s (%d shard%s)" % (NAMES.get(m["server"], m["server"]), m["shards"],
                                    "" if m["shards"] == 1 else "s")
        if "error" in m:
            L.append("| %s | not measured (%s) | | | | |" % (name, m["error"].splitlines()[0][:120]))
            continue
        by = {lv["conns"]: lv for lv in m["levels"]}
        cells = []
        for c in (1000, 10000, 100000):
            lv = by.get(c)
            cells.append("—" if lv is None else "%.1f MiB (%s B)" % (
                lv["rss"] / 2 ** 20, "—" if lv["cold_per_conn"] is None
                else "%.0f" % lv["cold_per_conn"]))
        L.append("| %s | %.1f MiB | %s | %s |" % (
            name, m["fresh"] / 2 ** 20, " | ".join(cells),
            "—" if m.get("after_leave") is None else "%.1f MiB" % (m["after_leave"] / 2 ** 20)))
    one = [m for m in mem if m["server"] == "ringcast" and "error" not in m and m["shards"] == 1]
    many = [m for m in mem if m["server"] == "ringcast" and "error" not in m and m["shards"] > 1]
    if one and many:
        k = many[0]["shards"]
        L.append("")
        L.append("Fixed cost per shard: (fresh RSS with %d shards − fresh RSS with 1) ÷ %d = "
                 "%.0f KiB." % (k, k - 1, (many[0]["fresh"] - one[0]["fresh"]) / (k - 1) / 1024))
    L.append("")
    return L


def _rpc_rows(S):
    L = ["## Request/response: JSON ping/pong", "",
         "Each of 100 connections sends `{\"type\":\"ping\",\"id\":..}` and waits for its "
         "pong (`ringload --scenario rpc`); servers that speak ringcast's dialect only.", "",
         "| server | round trips/s | p50 | p99 | load generator CPU |", "| --- | --- | --- | --- | --- |"]
    for kind in ORDER:
        r = g(S.get(kind), "rpc")
        if r is None:
            continue
        if "error" in r:
            L.append("| %s | %s | | | |" % (NAMES[kind], r["error"][:80]))
            continue
        L.append("| %s | %s | %s | %s | %s |" % (
            NAMES[kind], _fmt(g(r, "round_trips_per_s")), _us(g(r, "latency_us", "p50")),
            _us(g(r, "latency_us", "p99")), _pct(r)))
    L.append("")
    return L


def markdown(doc, json_path, pngs, md_path):
    m = doc["machine"]
    p = doc["params"]
    S = doc["servers"]
    rel = lambda path: os.path.relpath(path, os.path.dirname(os.path.abspath(md_path)))  # noqa
    L = []
    L.append("# Benchmarks")
    L.append("")
    L.append("Generated by `perf/bench.py` (%s run) at %s UTC. Every figure below was measured by "
             "that one run; raw results: [`%s`](%s). Do not edit by hand: rerun the bench." % (
                 doc["mode"], doc["stamp"], rel(json_path), rel(json_path)))
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("| --- | --- |")
    for k, label in (("cpu_model", "CPU"), ("nproc", "cores"), ("mem_total_bytes", "memory"),
                     ("kernel", "kernel"), ("rlimit_nofile", "RLIMIT_NOFILE"),
                     ("ringcast", "ringcast"), ("git_head", "git HEAD"), ("node", "node"),
                     ("npm:socket.io", "socket.io"), ("npm:@socket.io/redis-adapter",
                                                      "redis adapter"),
                     ("npm:ws", "ws"), ("redis", "redis"), ("gcc", "gcc"),
                     ("deb:liburing2", "liburing")):
        v = m.get(k)
        if k == "mem_total_bytes" and v:
            v = "%.1f GiB" % (v / 2 ** 30)
        if k == "git_head" and v and m.get("git_dirty"):
            v += " (uncommitted changes)"
        L.append("| %s | %s |" % (label, "—" if v is None else str(v).replace("|", "/")))
    L.append("")
    L.append("Each server runs pinned to core %d (`taskset -c %d`; ringcast with `--shards 1 "
             "--no-pin`, so its relay thread shares that core; Socket.IO's redis-server too). "
             "The load generator `build/ringload` runs on core %d (`--cpu %d`). Everything is on "
             "127.0.0.1. The load generator's CPU use is given next to each figure; above 90%% "
             "(⚠) the figure may be the load generator's limit, not the server's." % (
                 doc["server_cpu"], doc["server_cpu"], doc["loadgen_cpu"], doc["loadgen_cpu"]))
    L.append("")
    L.append("## Reproduce")
    L.append("")
    L.append("```sh")
    L.append("make %s        # /usr/bin/python3 perf/bench.py%s" % (
        "bench-short" if doc["mode"] == "short" else "bench",
        " --short" if doc["mode"] == "short" else ""))
    L.append("/usr/bin/python3 perf/bench.py --render %s   # rewrite this file from the JSON"
             % os.path.relpath(json_path, os.path.dirname(os.path.abspath(md_path))))
    L.append("```")
    L.append("")
    L.append("Every load-generator command line is in the JSON (`_cmd`). The run took %.0f s."
             % doc.get("elapsed_s", 0))
    L.append("")
    L.append("## Targets (DESIGN.md section 7)")
    L.append("")
    L.append("| target | measured (ringcast vs peer) | verdict |")
    L.append("| --- | --- | --- |")
    for what, val, ver in _target_rows(doc):
        L.append("| %s | %s | %s |" % (what, val, ver))
    L.append("")

    L.append("## Fan-out: highest loss-free publish rate, %d subscribers, 64 B data" % p["n_fan"])
    L.append("")
    L.append("A rate counts when every subscriber stayed connected, nothing was lost, the "
             "publisher kept its rate, and the median latency stayed under the server's limit: "
             "%g× its own median at %g publishes/s, at least %.0f ms and at most %.0f ms (a queue "
             "that grows during the step moves the median; the p99 is not part of the verdict "
             "because one retransmitted loopback segment moves it by 200 ms or more). Found by "
             "doubling then bisecting, each step "
             "%.1f s after %.1f s of warm-up." % (
                 doc.get("limit_factor", 3), p["lat_rate"], doc.get("queue_floor_us", 50000) / 1000,
                 doc["queue_limit_us"] / 1000, p["step_dur"], p["warmup"]))
    L.append("")
    L.append("| server | publishes/s | deliveries/s | ringcast ÷ this | p50 | p99 | p50 limit | "
             "load generator CPU |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rc = g(S.get("ringcast"), "fanout", "best", "deliveries_per_s")
    for kind in ORDER:
        srv = S.get(kind)
        nm = _not_measured(srv)
        if nm:
            L.append("| %s | %s | | | | | | |" % (NAMES[kind], nm))
            continue
        b = g(srv, "fanout", "best")
        if b is None:
            tried = g(srv, "fanout", "tried") or []
            why = tried[-1]["_why"] if tried else "no run"
            L.append("| %s | no loss-free rate found (%s) | | | | | | |" % (NAMES[kind], why))
            continue
        d = g(b, "deliveries_per_s")
        r = _ratio(rc, d)
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            NAMES[kind], _fmt(b["_rate"]), _fmt(d), "—" if r is None else "%.1f×" % r,
            _us(g(b, "latency_us", "p50")), _us(g(b, "latency_us", "p99")),
            _us(srv.get("queue_limit_us")), _pct(b)))
    L.append("")

    L.append("## Latency at %g publishes/s, %d subscribers" % (p["lat_rate"], p["n_fan"]))
    L.append("")
    L.append("| server | p50 | p90 | p99 | p99.9 | max | lost | load generator CPU |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in ORDER:
        srv = S.get(kind)
        nm = _not_measured(srv)
        lat = g(srv, "latency")
        if nm or lat is None or "error" in lat:
            L.append("| %s | %s | | | | | | |" % (NAMES[kind], nm or g(lat, "error") or "—"))
            continue
        q = lat.get("latency_us", {})
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            NAMES[kind], _us(q.get("p50")), _us(q.get("p90")), _us(q.get("p99")),
            _us(q.get("p999")), _us(q.get("max")), g(lat, "lost", default="—"), _pct(lat)))
    L.append("")
    rates = sorted({c["rate"] for k in ORDER for c in (S.get(k) or {}).get("latency_curve", [])})
    if rates:
        L.append("### Latency against publish rate, %d subscribers" % p["n_fan"])
        L.append("")
        L.append("p50 / p99 publish → receive; ✗: the step was not loss-free and sustained; "
                 "blank: above the server's loss-free rate, not run.")
        L.append("")
        L.append("| server | " + " | ".join("%g/s" % r for r in rates) + " |")
        L.append("| --- |" + " --- |" * len(rates))
        for kind in ORDER:
            srv = S.get(kind)
            if not srv or not srv.get("latency_curve"):
                continue
            cells = []
            for r in rates:
                c = _curve_point(srv, r)
                cells.append("" if c is None else "%s / %s%s" % (
                    _us(c["p50"]), _us(c["p99"]), "" if c["ok"] else " ✗"))
            L.append("| %s | %s |" % (NAMES[kind], " | ".join(cells)))
        L.append("")
    if "latency" in pngs:
        L.append("![latency against publish rate](%s)" % rel(pngs["latency"]))
        L.append("")

    L.append("## Fan-out against subscriber count")
    L.append("")
    L.append("| server | " + " | ".join("%d subs" % c for c in p["subs"]) + " |")
    L.append("| --- |" + " --- |" * len(p["subs"]))
    for kind in ORDER:
        srv = S.get(kind)
        nm = _not_measured(srv)
        if nm:
            L.append("| %s | %s |" % (NAMES[kind], nm) + " |" * (len(p["subs"]) - 1))
            continue
        cells = []
        by = {s["conns"]: s for s in srv.get("subs_curve", [])}
        for c in p["subs"]:
            b = g(by.get(c), "best")
            cells.append("—" if b is None else "%s/s (%s)" % (
                _fmt(g(b, "deliveries_per_s")), _pct(b)))
        L.append("| %s | %s |" % (NAMES[kind], " | ".join(cells)))
    L.append("")
    L.append("Cells: highest loss-free deliveries per second (load generator CPU).")
    L.append("")
    if "deliveries" in pngs:
        L.append("![deliveries against subscriber count](%s)" % rel(pngs["deliveries"]))
        L.append("")

    L.append("## Echo and handshakes")
    L.append("")
    L.append("| server | echo round trips/s (%d conns) | ringcast ÷ this | load gen CPU | "
             "handshakes/s (%d conns) | ringcast ÷ this | load gen CPU |" % (
                 p["echo_conns"], p["hs_conns"]))
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    rc_e = g(S.get("ringcast"), "echo", "round_trips_per_s")
    rc_h = g(S.get("ringcast"), "handshakes", "handshakes_per_s")
    for kind in ORDER:
        srv = S.get(kind)
        nm = _not_measured(srv)
        if nm:
            L.append("| %s | %s | | | | | |" % (NAMES[kind], nm))
            continue
        e = g(srv, "echo")
        h = g(srv, "handshakes")
        ev = g(e, "round_trips_per_s")
        hv = g(h, "handshakes_per_s")
        re_, rh = _ratio(rc_e, ev), _ratio(rc_h, hv)
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            NAMES[kind], _fmt(ev) if ev is not None else (g(e, "error") or "—")[:80],
            "—" if re_ is None else "%.2f×" % re_, _pct(e),
            _fmt(hv) if hv is not None else (g(h, "error") or "—")[:80],
            "—" if rh is None else "%.2f×" % rh, _pct(h)))
    L.append("")

    L.extend(_heavy_section(doc))
    L.extend(_rpc_rows(S))
    L.extend(_memory_section(doc))
    L.append("## Memory per idle connection")
    L.append("")
    L.append("User-space, from the server's `VmRSS`: *marginal* = (RSS with N connections − RSS "
             "with N/2) ÷ (N/2), the cost of one more connection, which the targets use; *cold* "
             "= (RSS with N − RSS of the fresh server) ÷ N, which also counts fixed pools touched "
             "for the first time (receive buffers, handshake scratch). Kernel, per connection and "
             "outside any RSS: the change of `/proc/net/sockstat` TCP `mem` (pages × page size: "
             "socket buffers, near zero for idle sockets) and of the TCP socket slabs from "
             "`/proc/slabinfo`; both ends of each loopback connection are on this machine, so "
             "the kernel figures include the client's socket.")
    L.append("")
    L.append("| server | connections | subscribed | RSS before | RSS after | RSS / conn, "
             "marginal | RSS / conn, cold | sockstat mem / conn | TCP slab / conn |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in doc.get("rss", []):
        if "error" in r:
            L.append("| %s | %d | %s | not measured (%s) | | | | | |" % (
                NAMES[r["server"]], r["conns_target"], "yes" if r["subscribed"] else "no",
                r["error"].splitlines()[0][:120]))
            continue
        sub = ("one channel + JWT user id" if r["server"] == "ringcast" else "one channel") \
            if r["subscribed"] else "no"
        L.append("| %s (%d shard%s) | %s | %s | %s | %s | **%s** | %s | %s | %s |" % (
            NAMES[r["server"]], r.get("shards", 1), "" if r.get("shards", 1) == 1 else "s",
            r.get("established"), sub, _fmt(r.get("rss_before"), " B"),
            _fmt(r.get("rss_after"), " B"), _fmt(r.get("rss_per_conn"), " B"),
            _fmt(r.get("rss_per_conn_cold"), " B"), _fmt(r.get("sockstat_mem_per_conn"), " B"),
            _fmt(r.get("slab_per_conn"), " B")))
    L.append("")

    notes = []
    for kind in ORDER:
        srv = S.get(kind)
        if srv and srv.get("crashed"):
            notes.append("- %s exited during the run: %s" % (NAMES[kind], srv["crashed"]))
        for t in (g(srv, "fanout", "tried") or []):
            if g(t, "out_of_order"):
                notes.append("- %s delivered %s messages out of order at %g/s." % (
                    NAMES[kind], t["out_of_order"], t["_rate"]))
    if doc.get("warning"):
        notes.append("- " + doc["warning"])
    L.extend(_cross_section(doc, json_path, rel))
    cluster = _kept_block(md_path, CLUSTER_START, CLUSTER_END)
    if cluster:
        L.append(cluster)
        L.append("")
    L.extend(_soak_section(os.path.dirname(os.path.abspath(json_path)), rel))
    extra = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-notes.md")
    if os.path.exists(extra):
        # Hand-written analysis (why a target is missed, what a profile shows);
        # it names the files it relies on and holds no figure of its own.
        with open(extra) as f:
            L.extend(f.read().rstrip("\n").split("\n"))
        L.append("")
    if notes:
        L.append("## Notes")
        L.append("")
        L.extend(notes)
        L.append("")
    # every other script's section (waiting room, ETA, history, storm,
    # presence, events, Socket.IO, tick...), in the order the file has them
    for kept in _other_blocks(md_path, skip=("cluster",)):
        L.append(kept)
        L.append("")
    with open(md_path, "w") as f:
        f.write("\n".join(L))


QUEUE_START, QUEUE_END = "<!-- queue-bench:start -->", "<!-- queue-bench:end -->"
CLUSTER_START, CLUSTER_END = "<!-- cluster-bench:start -->", "<!-- cluster-bench:end -->"


def _kept_block(md_path, start=QUEUE_START, end=QUEUE_END):
    """The section another script writes into BENCHMARKS.md between its
    markers (by default perf/queuebench.py's waiting room; perf/clusterbench.py's
    one Redis against a cluster, right after the cross-node section): kept as
    it is when this report is rewritten."""
    try:
        with open(md_path) as f:
            text = f.read()
    except OSError:
        return ""
    a, b = text.find(start), text.find(end)
    if a < 0 or b < a:
        return ""
    return text[a:b + len(end)]


def _other_blocks(md_path, skip=()):
    """Every `<!-- NAME-bench:start -->...<!-- NAME-bench:end -->` section of
    md_path (another script writes each), NAME not in skip, in file order."""
    import re
    try:
        with open(md_path) as f:
            text = f.read()
    except OSError:
        return []
    return [m.group(0) for m in re.finditer(
        r"<!-- ([a-z]+)-bench:start -->.*?<!-- \1-bench:end -->", text, re.S)
        if m.group(1) not in skip]


def _newest_cross(doc, json_path):
    """(cross result, its JSON path): the run's own cross-node part or the newest
    `bench.py --cross` file next to it, whichever is newer; (None, None) if neither."""
    import glob
    best = (None, None)
    if doc.get("cross"):
        best = (doc["cross"], json_path)
    files = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(json_path)),
                                          "cross-*.json")))
    if files:
        try:
            with open(files[-1]) as f:
                c = json.load(f).get("cross")
        except (OSError, ValueError):
            c = None
        if c and (best[0] is None or str(c.get("stamp")) > str(best[0].get("stamp"))):
            best = (c, files[-1])
    return best


def _cross_section(doc, json_path, rel):
    c, path = _newest_cross(doc, json_path)
    if c is None:
        return []
    S = c.get("servers", {})
    target = c.get("p99_target_us", 2000)
    cp = c.get("params", {})
    L = ["## Cross-node: two nodes through Redis", ""]
    L.append("Run %s UTC; raw: [`%s`](%s); reproduce: `%s`%s." % (
        c.get("stamp"), rel(path), rel(path), c.get("command"),
        "" if c.get("command", "").endswith("--cross") or "--cross " in c.get("command", "")
        else " (the cross-node part alone: `/usr/bin/python3 perf/bench.py --cross%s`)" % (
            " --short" if "short" in c.get("command", "") else "")))
    L.append("")
    L.append("Two nodes of each server share one private `redis-server --save '' --appendonly "
             "no`: ringcast as `build/ringcast --redis redis://127.0.0.1:PORT --node-id A` and "
             "`B` (`--shards 1 --no-pin`), Socket.IO 4 as two `perf/peers/sio-server.js --redis "
             "...` (`@socket.io/redis-adapter`). The subscribers connect to node B, the one "
             "publisher to node A (`build/ringload --url ws://B --pub-url ws://A`), so every "
             "message goes A → Redis → B and the latency is publish on A → receive from B. "
             "Both nodes and Redis are pinned to core %s, the load generator to core %s. "
             "*Redis CPU* is the redis-server's CPU seconds over the run divided by the time the "
             "publisher was publishing (warm-up + measured), as a share of one core." % (
                 c.get("server_cpu", 0), c.get("loadgen_cpu", 1)))
    L.append("")
    L.append("### Latency (target: ringcast p99 ≤ %s)" % _us(target))
    L.append("")
    L.append("Rows *one node* are the same points, same durations, on a single node in the same "
             "run (ringcast without `--redis`; Socket.IO as in the single-node runs): what the "
             "second node and Redis add is the difference.")
    L.append("")
    L.append("| server | path | publishes/s | subscribers | p50 | p90 | p99 | p99.9 | max | lost "
             "| p99 ≤ %s | Redis CPU | load gen CPU |" % _us(target))
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    verdicts = []
    for kind in ORDER:
        if kind not in S:
            continue
        srv = S[kind]
        nm = _not_measured(srv)
        if nm:
            L.append("| %s | A → Redis → B | %s | | | | | | | | | | |" % (NAMES[kind], nm))
            continue
        rows = [("A → Redis → B", r) for r in srv.get("latency", [])]
        rows += [("one node", r) for r in srv.get("single_latency", [])]
        for path_name, r in rows:
            if "error" in r:
                L.append("| %s | %s | %s | %s | %s | | | | | | | | |" % (
                    NAMES[kind], path_name, _fmt(r.get("_rate")), r.get("_conns", ""),
                    r["error"].splitlines()[0][:120]))
                continue
            q = r.get("latency_us", {})
            if not q.get("count"):  # nothing received: no latency to show
                q = {}
            p99 = q.get("p99")
            if not r.get("_ok"):
                v = "not met (run not sustained: %s)" % r.get("_why")
            elif p99 is not None and p99 <= target:
                v = "**met**"
            else:
                v = "**not met**"
            if kind == "ringcast" and path_name != "one node":
                verdicts.append("%s at %s/s to %s subscribers (p99 %s)" % (
                    "met" if v == "**met**" else "not met", _fmt(r["_rate"]), r["_conns"],
                    _us(p99)))
            L.append("| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                NAMES[kind], path_name, _fmt(r["_rate"]),
                " (%.0f s, above its loss-free rate)" % r.get("measured_s", 0)
                if r.get("_over_max_rate") else "", r["_conns"],
                _us(q.get("p50")), _us(q.get("p90")), _us(p99), _us(q.get("p999")),
                _us(q.get("max")), g(r, "lost", default="—"), v,
                _share(g(r, "_server_cpu", "redis")) if path_name != "one node" else "—",
                _pct(r)))
    L.append("")
    if verdicts:
        L.append("ringcast against the target: " + "; ".join(verdicts) + ".")
        L.append("")
    L.append("### Highest loss-free cross-node rate, %s subscribers on B" % cp.get(
        "search_subs", "?"))
    L.append("")
    L.append("The same search and the same rule as the single-node fan-out above (no loss, "
             "every subscriber connected, the publisher kept its rate, median under the limit), "
             "each step %.1f s after %.1f s of warm-up." % (cp.get("step_dur", 0),
                                                            cp.get("warmup", 0)))
    L.append("")
    L.extend(_cross_rate_table(S, "max_rate", "fan-out search"))
    if any("msg_rate" in s for s in S.values()):
        L.append("### Highest loss-free cross-node message rate, %s subscribers on B" % cp.get(
            "msg_subs", "?"))
        L.append("")
        L.append("The same search with few subscribers, so each message costs little fan-out: "
                 "the publishes per second that cross A → Redis → B, from the load generator's "
                 "one publisher connection (ringcast's nodes admit up to %s messages/s from it, "
                 "`--msg-rate`/`--msg-burst`); *limit* says what stopped the search." % (
                     _fmt(_first_cap(S))))
        L.append("")
        L.extend(_cross_rate_table(S, "msg_rate", "message-rate search"))
    return L


def _first_cap(S):
    for s in S.values():
        v = g(s, "msg_rate", "publisher_cap")
        if v:
            return v
    return None


def _search_limit(best, tried, cap):
    """What stopped a rate search: the lowest failed step above the best one, and
    whether the load generator (its CPU, or its publisher falling behind) or the
    servers were the limit there."""
    if best is None:
        return "—"
    above = sorted((t for t in tried if not t.get("_ok") and t["_rate"] > best["_rate"]),
                   key=lambda t: t["_rate"])
    if cap and best["_rate"] >= 0.9 * cap:
        return "⚠ the nodes' `--msg-rate` (%s/s)" % _fmt(cap)
    if not above:
        return "not bracketed: the search ran out of steps (a lower bound)"
    f = above[0]
    why = f.get("_why", "")
    at = "%s/s" % _fmt(f["_rate"])
    if why.startswith("publisher sent only"):
        return "⚠ load generator: its publisher fell behind at %s (%s; CPU %s)" % (
            at, why[len("publisher "):], _plain_pct(f))
    if _busy(best) or _busy(f):
        return "⚠ load generator CPU (%s at %s, where %s): a lower bound" % (
            _plain_pct(f), at, why)
    c = g(f, "_server_cpu") or {}
    return "servers: at %s %s (CPU there: node A %s, node B %s, Redis %s)" % (
        at, why, _share(c.get("node_a")), _share(c.get("node_b")), _share(c.get("redis")))


def _plain_pct(res):
    u = _util(res)
    return "—" if u is None else "%.0f%%" % (100 * u)


def _cross_rate_table(S, key, label):
    """One result table of a cross-node rate search (key: "max_rate" or "msg_rate"),
    with each server's steps below it."""
    L = []
    L.append("| server | publishes/s | deliveries/s | ringcast ÷ this | p50 | p99 | p50 limit | "
             "Redis CPU | node A CPU | node B CPU | load gen CPU | limit |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rc = g(S.get("ringcast"), key, "best", "deliveries_per_s")
    notes = []
    for kind in ORDER:
        if kind not in S:
            continue
        srv = S[kind]
        nm = _not_measured(srv)
        if nm:
            L.append("| %s | %s | | | | | | | | | | |" % (NAMES[kind], nm))
            continue
        if key not in srv:
            L.append("| %s | not run | | | | | | | | | | |" % NAMES[kind])
            continue
        b = g(srv, key, "best")
        tried = g(srv, key, "tried") or []
        if b is None:
            why = tried[-1]["_why"] if tried else "no run"
            L.append("| %s | no loss-free rate found (%s) | | | | | | | | | | |" % (
                NAMES[kind], why))
        else:
            d = g(b, "deliveries_per_s")
            r = _ratio(rc, d)
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                NAMES[kind], _fmt(b["_rate"]), _fmt(d), "—" if r is None else "%.1f×" % r,
                _us(g(b, "latency_us", "p50")), _us(g(b, "latency_us", "p99")),
                _us(srv.get("queue_limit_us")), _share(g(b, "_server_cpu", "redis")),
                _share(g(b, "_server_cpu", "node_a")), _share(g(b, "_server_cpu", "node_b")),
                _pct(b), _search_limit(b, tried, g(srv, key, "publisher_cap"))))
        steps = ", ".join("%s/s %s" % (_fmt(t["_rate"]), "ok" if t["_ok"] else "✗ " + t["_why"])
                          for t in tried)
        if steps:
            notes.append("- %s, %s steps: %s." % (NAMES[kind], label, steps))
        kept = [t["_rate"] for t in tried if "error" not in t
                and not t.get("_why", "").startswith("publisher sent only")
                and (g(t, "publishes_per_s") or 0) >= 0.9 * t["_rate"]]
        behind = [t["_rate"] for t in tried if t.get("_why", "").startswith("publisher sent only")]
        if key == "msg_rate" and tried:
            notes.append("- %s: the load generator's publisher kept its rate in %s (highest "
                         "%s/s)%s." % (
                             NAMES[kind], "every step" if not behind else "the steps",
                             _fmt(max(kept)) if kept else "—",
                             "" if not behind else "; it fell behind at %s" % ", ".join(
                                 "%s/s" % _fmt(r) for r in behind)))
        if key == "max_rate" and srv.get("crashed"):
            notes.append("- %s: a process exited during the run: %s" % (
                NAMES[kind], srv["crashed"]))
        for t in tried + (srv.get("latency", []) if key == "max_rate" else []):
            if g(t, "out_of_order"):
                notes.append("- %s delivered %s messages out of order at %g/s." % (
                    NAMES[kind], t["out_of_order"], t["_rate"]))
            a = g(t, "_redis_metrics", "node_a", "ringcast_redis_publish_dropped_total")
            if a:
                notes.append("- %s node A dropped %.0f publishes for Redis at %g/s "
                             "(backlog full)." % (NAMES[kind], a, t["_rate"]))
    L.append("")
    L.append("Node CPU figures include the subscribers' connection set-up, so they are upper "
             "bounds. The search's steps:")
    L.append("")
    L.extend(notes)
    L.append("")
    return L

def _share(u):
    return "—" if u is None else "%.0f%%" % (100 * u)


def _soak_section(results_dir, rel):
    """The newest `make soak` result, if there is one: a run of its own, with its
    own JSON and command, reported as it is."""
    import glob
    files = sorted(glob.glob(os.path.join(results_dir, "soak-*.json")))
    if not files:
        return []
    with open(files[-1]) as f:
        d = json.load(f)
    b = d.get("broadcast", {}) or {}
    c = d.get("churn", {}) or {}
    L = ["## Soak: %s connections for %g minutes (`make soak`)" % (
        "{:,}".format(d.get("conns_target", 0)), d.get("minutes", 0)), ""]
    L.append("Run %s UTC, result **%s**; raw: [`%s`](%s). Command: `SOAK_MINUTES=%g "
             "SOAK_CONNS=%d make soak` (ringcast: `%s`)." % (
                 d.get("stamp"), d.get("result"), rel(files[-1]), rel(files[-1]),
                 d.get("minutes", 0), d.get("conns_target", 0), d.get("ringcast_cmd", "?")))
    L.append("")
    L.append("| | |")
    L.append("| --- | --- |")
    rows = [
        ("subscribers held (of %s)" % d.get("subscribers"), g(b, "held")),
        ("connections that failed to open", g(b, "failed")),
        ("broadcasts published", g(b, "publishes")),
        ("deliveries expected / received / lost", "%s / %s / %s" % (
            g(b, "expected"), g(b, "received"), g(b, "lost"))),
        ("unexpected closes (subscribers / churn set)", "%s / %s" % (
            g(b, "unexpected_closes"), g(c, "unexpected_closes"))),
        ("churn connects done / failed", "%s / %s" % (g(c, "churn_done"), g(c, "churn_failed"))),
        ("server pings sent (heartbeats every %s ms)" % d.get("ping_interval_ms"),
         _last_metric(d, "ringcast_pings_sent_total")),
        ("RSS after warm-up / highest after", "%s / %s" % (
            _mib(d.get("warm_rss")), _mib(d.get("max_rss_after_warmup")))),
        ("user-space RSS per connection (incl. fixed pools)", _b(d.get("rss_per_conn_last"))),
        ("kernel TCP memory per connection (sockstat mem)", _b(d.get("sockstat_mem_per_conn_last"))),
        ("kernel TCP slab per connection (both loopback ends)", _b(d.get("tcp_slab_per_conn_last"))),
    ]
    for k, v in rows:
        L.append("| %s | %s |" % (k, "—" if v is None else v))
    if d.get("failures"):
        L.append("")
        L.append("Failures: " + "; ".join(d["failures"]))
    L.append("")
    return L


def _last_metric(d, name):
    for pt in reversed(d.get("progress", [])):
        v = (pt.get("metrics") or {}).get(name)
        if v is not None:
            return "%.0f" % v
    return None


def _mib(v):
    return None if not v else "%.1f MiB" % (v / 2 ** 20)


def _b(v):
    return None if v is None else "%.0f B" % v


def write_all(doc, json_path, md_path):
    pngs = plots(doc, os.path.dirname(os.path.abspath(json_path)))
    markdown(doc, json_path, pngs, md_path)
