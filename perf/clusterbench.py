#!/usr/bin/python3
"""Cross-node fan-out through one Redis against a Redis Cluster, same run.

Two ringcast nodes A and B (`--shards 1 --no-pin`, as the cross-node benchmark
of perf/bench.py), subscribers on B spread over many channels (`ringload
--channels`: connection k on bench:fan:(k mod N)), the one publisher on A,
publish i to bench:fan:(i mod N): every message goes A -> Redis -> B. Two
backends, interleaved round by round (one Redis, cluster, one Redis,
cluster, ...), each started fresh for its round:

  one Redis   one redis-server; channel C is `rc:ch:C` (PUBLISH / SUBSCRIBE)
  cluster     a Redis Cluster of 3 primaries with a replica each
              (tests/integration/clusterhelp.py); channel C is the shard
              channel `rc:ch:{C}` (SPUBLISH / SSUBSCRIBE on the primary that
              owns C's slot), so the channels spread over the primaries

In each round and for each backend: one step at a fixed reference rate (the
same for both: the CPU each process spends for the same traffic), then a step
search for the highest loss-free publish rate (the rule of perf/bench.py: no
loss, every subscriber connected, the publisher kept its rate, median latency
under the limit). Per step: CPU seconds of every redis-server (each primary
and each replica separately), of node A and node B (from /proc/PID/stat,
divided by the time the publisher was publishing, as perf/bench.py does) and
the load generator's own CPU; the publish commands each redis-server
processed (INFO commandstats). Both nodes and every redis-server are pinned
to core 0, the load generator to core 1, as in perf/bench.py (--no-pin
leaves everything to the scheduler).

Writes perf/results/cluster-<UTC stamp>.json and rewrites the block between
<!-- cluster-bench:start --> and <!-- cluster-bench:end --> in BENCHMARKS.md
(--no-report leaves it alone). About 5 to 8 minutes with the defaults.

  /usr/bin/python3 perf/clusterbench.py
  /usr/bin/python3 perf/clusterbench.py --quick --no-report --results /tmp/cb   # smoke run, < 1 min
  /usr/bin/python3 perf/clusterbench.py --render perf/results/cluster-STAMP.json
"""
import argparse
import json
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import bench  # noqa: E402
import benchlib as bl  # noqa: E402
from benchlib import g  # noqa: E402
import clusterhelp  # noqa: E402

START, END = "<!-- cluster-bench:start -->", "<!-- cluster-bench:end -->"
CMD = "/usr/bin/python3 perf/clusterbench.py"
CHANNEL = "bench:fan"
BACKENDS = ("redis", "cluster")
LABEL = {"redis": "one Redis", "cluster": "Redis Cluster"}
# The median latency a sustained step stays under (the cross-node message-rate
# search of perf/bench.py ran with the same 50 ms).
QUEUE_LIMIT_US = bench.QUEUE_FLOOR_US

FULL = dict(channels=128, subs_per_channel=2, rounds=2, warmup=1.0, step_dur=4.0, drain=2.0,
            search_steps=6, start_rate=50000, ref_rate=20000, ref_dur=6.0, idle_dur=5.0)
QUICK = dict(channels=64, subs_per_channel=1, rounds=1, warmup=0.3, step_dur=1.0, drain=0.5,
             search_steps=2, start_rate=2000, ref_rate=1000, ref_dur=1.0, idle_dur=1.0)


# ---- Redis -----------------------------------------------------------------------------

def redis_command(port, *args, timeout=5.0):
    """One command on a fresh connection; the reply as the RESP client decodes it."""
    with clusterhelp.Resp(port, timeout) as c:
        return c.command(*args)


def commandstats(port):
    """{command: (calls, usec)} of INFO commandstats, for the pub/sub commands."""
    out = {}
    try:
        text = redis_command(port, "INFO", "commandstats")
    except (OSError, clusterhelp.RespError, ConnectionError):
        return out
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for line in text.splitlines():
        if not line.startswith("cmdstat_"):
            continue
        name, _, rest = line[8:].partition(":")
        if name not in ("publish", "spublish", "subscribe", "ssubscribe", "evalsha", "eval"):
            continue
        f = dict(kv.split("=", 1) for kv in rest.split(",") if "=" in kv)
        try:
            out[name] = (int(f.get("calls", 0)), int(f.get("usec", 0)))
        except ValueError:
            pass
    return out


def pin_threads(pid, cpus):
    """Sets the affinity of every thread of a running process to the set cpus
    (taskset -a -p)."""
    try:
        tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return
    for t in tids:
        try:
            os.sched_setaffinity(t, cpus)
        except OSError:
            pass


class Backend:
    """One backend with its two ringcast nodes: .procs maps a name (redis,
    primary:PORT, replica:PORT, node_a, node_b) to a PID; stop() ends
    everything it started, by PID."""

    def __init__(self, kind, build, logdir, pin, primaries=3, replicas=1):
        self.kind = kind
        self.redis = None
        self.cluster = None
        self.nodes = []
        self.roles = {}   # name -> {"pid", "port", "role", "primary"}
        self.spread = {}  # primary name -> channels whose slot it owns
        try:
            if kind == "redis":
                self.redis = bl.start_redis(logdir, cpu=bench.SERVER_CPU if pin else None)
                self.url = "redis://%s:%d" % (bl.HOST, self.redis.port)
                self.roles["redis"] = {"pid": self.redis.pid, "port": self.redis.port,
                                       "role": "redis"}
            else:
                t0 = time.monotonic()
                self.cluster = clusterhelp.RedisCluster(
                    os.path.join(logdir, "cluster-%d" % int(time.time() * 1000)),
                    primaries=primaries, replicas=replicas)
                self.start_s = round(time.monotonic() - t0, 2)
                self.url = self.cluster.seeds_url()
                owned = self.cluster.primaries()
                for p in owned:
                    self.roles["primary:%d" % p.port] = {"pid": p.pid, "port": p.port,
                                                         "role": "primary"}
                    for r in self.cluster.replicas_of(p):
                        self.roles["replica:%d" % r.port] = {"pid": r.pid, "port": r.port,
                                                             "role": "replica",
                                                             "primary": "primary:%d" % p.port}
                if pin:
                    for n in self.cluster.nodes:
                        pin_threads(n.pid, {bench.SERVER_CPU})
            for nid in ("A", "B"):
                self.nodes.append(bench.Server("ringcast", build, logdir, redis_url=self.url,
                                               node_id=nid))
                if not pin:  # bench.Server starts it under taskset
                    pin_threads(self.nodes[-1].pid, set(range(os.cpu_count())))
        except BaseException:
            self.stop()
            raise
        a, b = self.nodes
        self.url_b, self.pub_url, self.dialect = b.url, a.url, b.dialect
        self.roles["node_a"] = {"pid": a.pid, "port": a.port, "role": "node"}
        self.roles["node_b"] = {"pid": b.pid, "port": b.port, "role": "node"}

    def channel_spread(self, channels):
        """{redis process name: channels it carries}: on a cluster, by the slot of
        each channel's hash tag (the channel name itself)."""
        if self.kind == "redis":
            return {"redis": channels}
        out = {name: 0 for name, r in self.roles.items() if r["role"] == "primary"}
        for k in range(channels):
            owner = self.cluster.node_for_slot(clusterhelp.key_slot("%s:%d" % (CHANNEL, k)))
            out["primary:%d" % owner.port] = out.get("primary:%d" % owner.port, 0) + 1
        return out

    def redis_names(self):
        return [n for n, r in self.roles.items() if r["role"] in ("redis", "primary", "replica")]

    def alive(self):
        if not all(n.alive() for n in self.nodes):
            return False
        if self.redis is not None:
            return self.redis.alive()
        return all(n.alive() for n in self.cluster.nodes)

    def dead(self):
        out = []
        for name, n in zip(("node A", "node B"), self.nodes):
            if not n.alive():
                out.append("%s exited with %s: %s" % (name, n.proc.proc.returncode,
                                                      n.proc.log_tail(5)))
        if self.redis is not None and not self.redis.alive():
            out.append("redis exited: %s" % self.redis.log_tail(5))
        if self.cluster is not None:
            for n in self.cluster.nodes:
                if not n.alive():
                    out.append("redis-server %d exited: %s" % (n.port, n.log()[-400:]))
        return out

    def quiet(self):
        for r in self.roles.values():
            bl.wait_quiet(r["pid"])

    def cpu_marks(self):
        return {name: bl.cpu_seconds(r["pid"]) for name, r in self.roles.items()}

    def cmd_marks(self):
        return {name: commandstats(self.roles[name]["port"]) for name in self.redis_names()}

    def node_metrics(self):
        out = {}
        for name, n in zip(("node_a", "node_b"), self.nodes):
            m = bl.metrics(n.port)
            out[name] = {k: v for k, v in m.items()
                         if "redis" in k or "cluster" in k or "relay_queue" in k}
        return out

    def stop(self):
        for n in reversed(self.nodes):
            try:
                n.stop()
            except Exception:  # noqa: BLE001 - the rest must still be stopped
                pass
        if self.redis is not None:
            self.redis.stop()
        if self.cluster is not None:
            self.cluster.stop()


# ---- one step ------------------------------------------------------------------------------

def run_step(rl, be, n, rate, p, queue_limit=QUEUE_LIMIT_US, dur=None):
    """One broadcast run at rate publishes/s over p["channels"] channels, n
    subscribers on B; CPU and publish commands of every process over it."""
    dur = dur or p["step_dur"]
    be.quiet()
    cpu0, cmd0 = be.cpu_marks(), be.cmd_marks()
    res = rl.run(be.url_b, be.dialect, "broadcast", conns=n, threads=bench.threads_for(n),
                 src_addrs=bench.src_addrs_for(n), channel=CHANNEL, channels=p["channels"],
                 rate=rate, payload=64, duration=dur, warmup=p["warmup"], drain=p["drain"],
                 pub_url=be.pub_url, timeout=dur + p["warmup"] + p["drain"] + 30 + n / 500)
    cpu1, cmd1 = be.cpu_marks(), be.cmd_marks()
    pub_s = (g(res, "publishes_total", default=0) or 0) / rate if rate else 0
    cpu = {"publishing_s": round(pub_s, 3)}
    for name, b in cpu0.items():
        a = cpu1.get(name)
        if a is None or b is None:
            continue
        cpu[name] = {"cpu_s": round(a - b, 3),
                     "util": round((a - b) / pub_s, 4) if pub_s > 0 else None}
    calls = {}
    for name in be.redis_names():
        d = {}
        for cmd, (c1, u1) in cmd1.get(name, {}).items():
            c0, u0 = cmd0.get(name, {}).get(cmd, (0, 0))
            if c1 - c0:
                d[cmd] = {"calls": c1 - c0, "usec": u1 - u0}
        calls[name] = d
    res["_cpu"] = cpu
    res["_redis_calls"] = calls
    res["_rate"] = rate
    res["_conns"] = n
    ok, why = bench.fanout_verdict(res, n, rate, dur, queue_limit)
    res["_ok"] = ok
    res["_why"] = why
    bl.log("  %-13s rate=%g: %s%s (deliveries/s %s, p50 %s us, Redis CPU %s, nodes A/B %s/%s, "
           "loadgen %s)" % (
               LABEL[be.kind], rate, "ok" if ok else "FAIL", "" if ok else " (%s)" % why,
               bench.fmt_num(g(res, "deliveries_per_s")),
               bench.fmt_num(g(res, "latency_us", "p50")), redis_cpu_text(be, res),
               bench.fmt_pct(g(cpu, "node_a", "util")), bench.fmt_pct(g(cpu, "node_b", "util")),
               bench.fmt_pct(bl.rl_cpu_util(res))))
    return res


def idle_cpu(be, dur):
    """Each process's CPU with no traffic (a cluster's bus and replication pings, the
    nodes' Redis pings), as a share of one core over dur seconds."""
    be.quiet()
    c0 = be.cpu_marks()
    t0 = time.monotonic()
    time.sleep(dur)
    c1 = be.cpu_marks()
    w = time.monotonic() - t0
    return {k: round((c1[k] - c0[k]) / w, 4) for k in c0
            if c0[k] is not None and c1.get(k) is not None}


def short_name(name):
    """redis, p<PORT> (a primary), r<PORT> (a replica)."""
    role, _, port = name.partition(":")
    return role[0] + port if port else role


def redis_cpu_text(be, res):
    return ", ".join("%s %s" % (short_name(n), bench.fmt_pct(g(res, "_cpu", n, "util")))
                     for n in be.redis_names())


def summarize(step, roles, idle=None):
    """The figures of one step for the report."""
    if step is None:
        return None
    cpu = step.get("_cpu", {})
    out = {"rate": step.get("_rate"), "ok": step.get("_ok"), "why": step.get("_why"),
           "publishes_per_s": g(step, "publishes_per_s"),
           "deliveries_per_s": g(step, "deliveries_per_s"),
           "p50_us": g(step, "latency_us", "p50"), "p99_us": g(step, "latency_us", "p99"),
           "node_a": g(cpu, "node_a", "util"), "node_b": g(cpu, "node_b", "util"),
           "loadgen": bl.rl_cpu_util(step), "redis": {}, "publish_calls": {}}
    pubs = g(step, "publishes_total", default=0) or 0
    total_s = 0.0
    for name, r in roles.items():
        if r["role"] not in ("redis", "primary", "replica"):
            continue
        out["redis"][name] = g(cpu, name, "util")
        total_s += g(cpu, name, "cpu_s", default=0) or 0
        calls = step.get("_redis_calls", {}).get(name, {})
        out["publish_calls"][name] = sum(v["calls"] for k, v in calls.items()
                                         if k in ("publish", "spublish"))
    prim = [n for n, r in roles.items() if r["role"] in ("redis", "primary")]
    reps = [n for n, r in roles.items() if r["role"] == "replica"]
    out["redis_primaries_total"] = sum(out["redis"].get(n) or 0 for n in prim)
    out["redis_replicas_total"] = sum(out["redis"].get(n) or 0 for n in reps) if reps else None
    out["redis_busiest_primary"] = max((out["redis"].get(n) or 0 for n in prim), default=None)
    out["redis_us_per_publish"] = 1e6 * total_s / pubs if pubs else None
    if idle is not None and pubs:
        # the CPU the same processes would have spent idle over the run's wall time
        wall = step.get("_wall_s") or 0
        above = 0.0
        for name in out["redis"]:
            above += max(0.0, (g(cpu, name, "cpu_s", default=0) or 0)
                         - (idle.get(name) or 0) * wall)
        out["redis_us_per_publish_above_idle"] = 1e6 * above / pubs
    return out


# ---- the run -------------------------------------------------------------------------------

def one_backend(kind, rnd, args, p, rl, logdir, start_rate):
    out = {"backend": kind, "round": rnd}
    be = None
    try:
        be = Backend(kind, args.build, logdir, pin=not args.no_pin,
                     primaries=args.primaries, replicas=args.replicas)
        out["roles"] = be.roles
        out["redis_url"] = be.url
        out["cluster_start_s"] = getattr(be, "start_s", None)
        out["channel_spread"] = be.channel_spread(p["channels"])
        if be.cluster is not None:
            out["slot_map"] = be.cluster.slot_map()
        n = p["channels"] * p["subs_per_channel"]
        bl.log("%s, round %d: %d subscribers on B over %d channels (%s)" % (
            LABEL[kind], rnd, n, p["channels"], ", ".join(
                "%s: %d" % kv for kv in out["channel_spread"].items())))
        out["idle"] = idle_cpu(be, p["idle_dur"])
        bl.log("%s: idle CPU over %.0f s: %s" % (LABEL[kind], p["idle_dur"], ", ".join(
            "%s %s" % (short_name(k), pct(v)) for k, v in out["idle"].items())))
        bl.log("%s: reference step at %g publishes/s" % (LABEL[kind], p["ref_rate"]))
        out["reference"] = run_step(rl, be, n, p["ref_rate"], p, dur=p["ref_dur"])
        bl.log("%s: rate search from %g publishes/s" % (LABEL[kind], start_rate))
        best, tried = bench.search_rate(rl, be, n, p, start_rate, p["search_steps"],
                                        queue_limit=QUEUE_LIMIT_US, run=run_step)
        out["best"], out["tried"] = best, tried
        out["node_metrics"] = be.node_metrics()
        dead = be.dead()
        if dead:
            out["crashed"] = "; ".join(dead)
    except Exception as e:  # noqa: BLE001 - the other backend is still measured
        out["error"] = "%s: %s" % (type(e).__name__, str(e)[:3000])
        bl.log("%s, round %d: error: %s" % (LABEL[kind], rnd, str(e).splitlines()[0]))
    finally:
        if be is not None:
            # a second Ctrl-C must not leave processes behind
            old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                be.stop()
            finally:
                for s, h in old.items():
                    signal.signal(s, h)
    roles = out.get("roles", {})
    idle = out.get("idle")
    out["summary"] = {"reference": summarize(out.get("reference"), roles, idle),
                      "best": summarize(out.get("best"), roles, idle),
                      "limit": limit_of(out)}
    return out


def limit_of(out):
    """What stopped the search: the lowest failed step above the best one."""
    best = out.get("best")
    b = best["_rate"] if best else 0
    above = sorted((t for t in out.get("tried", []) if not t.get("_ok") and t["_rate"] > b),
                   key=lambda t: t["_rate"])
    if not above:
        return "none failed: a lower bound (more --search-steps find more)"
    t = above[0]
    lg = bl.rl_cpu_util(t)
    who = "load generator (CPU %s)" % bench.fmt_pct(lg) if lg is not None and lg > 0.9 \
        else "servers"
    return "%s: at %s/s %s" % (who, bench.fmt_num(t["_rate"]), t.get("_why"))


def ratios(doc):
    """Cluster / one Redis within each round (and of the rounds' medians)."""
    best = {k: [] for k in BACKENDS}
    for r in doc["rounds"]:
        v = g(r, "summary", "best", "publishes_per_s")
        if v and g(r, "summary", "best", "ok"):
            best[r["backend"]].append(v)
    out = {"best_publishes_per_s": best, "per_round": []}
    for i in range(doc["params"]["rounds"]):
        pair = {r["backend"]: g(r, "summary", "best", "publishes_per_s")
                for r in doc["rounds"] if r["round"] == i + 1}
        if pair.get("redis") and pair.get("cluster"):
            out["per_round"].append(pair["cluster"] / pair["redis"])
    if best["redis"] and best["cluster"]:
        out["median_cluster_over_redis"] = statistics.median(best["cluster"]) / \
            statistics.median(best["redis"])
    return out


# ---- report ---------------------------------------------------------------------------------

def pct(u):
    return "—" if u is None else "%.1f%%" % (100 * u)


def fmt_redis(s, roles):
    """Each redis-server's CPU, primaries then their replicas."""
    if s is None:
        return "—", "—"
    prim = [n for n, r in roles.items() if r["role"] in ("redis", "primary")]
    reps = [n for n, r in roles.items() if r["role"] == "replica"]
    ptxt = " + ".join(pct(s["redis"].get(n)) for n in prim)
    if len(prim) > 1:
        ptxt += " = %s" % pct(s["redis_primaries_total"])
    rtxt = "—"
    if reps:
        order = []
        for pn in prim:
            order += [n for n in reps if roles[n].get("primary") == pn]
        order += [n for n in reps if n not in order]
        rtxt = " + ".join(pct(s["redis"].get(n)) for n in order) + " = %s" % pct(
            s["redis_replicas_total"])
    return ptxt, rtxt


def us_text(s):
    if s.get("redis_us_per_publish") is None:
        return "—"
    t = "%.2f µs" % s["redis_us_per_publish"]
    if s.get("redis_us_per_publish_above_idle") is not None:
        t += " (%.2f µs)" % s["redis_us_per_publish_above_idle"]
    return t


def calls_share(s, roles):
    prim = [n for n, r in roles.items() if r["role"] in ("redis", "primary")]
    c = [s["publish_calls"].get(n, 0) for n in prim]
    tot = sum(c)
    if not tot:
        return "—"
    return " / ".join("%.0f%%" % (100.0 * x / tot) for x in c)


def report(doc, path_json):
    p, m = doc["params"], doc["machine"]
    rel = os.path.relpath(path_json, bl.REPO)
    rt = doc.get("ratios", {})
    lines = [START, "## Cross-node fan-out: one Redis against a Redis Cluster", "",
             "`%s` (%s UTC; raw: [`%s`](%s), %.0f s). Machine: %s, %s CPUs, kernel %s, %s. "
             "Two ringcast nodes (`--shards 1 --no-pin`), %d subscribers on node B spread "
             "round-robin over %d channels `%s:0` … `%s:%d` (`ringload --channels %d`, %d per "
             "channel), the one publisher on node A publishing to the channels in turn, so "
             "every message goes A → Redis → B. Backends, each started fresh for its round and "
             "interleaved (%s): *one Redis* — one redis-server, `PUBLISH`/`SUBSCRIBE`; "
             "*Redis Cluster* — %d primaries with %d replica(s) each "
             "(`tests/integration/clusterhelp.py`), shard channels `rc:ch:{C}` with "
             "`SPUBLISH`/`SSUBSCRIBE` on the primary owning C's slot. %s" % (
                 doc["command"], doc["stamp"], rel, rel, doc.get("elapsed_s", 0),
                 m.get("cpu_model", "?"), m.get("nproc"), m.get("kernel"),
                 m.get("redis") or "redis", p["channels"] * p["subs_per_channel"],
                 p["channels"], CHANNEL, CHANNEL, p["channels"] - 1, p["channels"],
                 p["subs_per_channel"],
                 ", ".join(LABEL[r["backend"]] for r in doc["rounds"]),
                 doc["primaries"], doc["replicas"],
                 "Both nodes and every redis-server are pinned to core 0, the load generator "
                 "to core 1." if doc.get("pinned") else "Nothing pinned."), ""]
    spreads = [(r["round"], r.get("channel_spread")) for r in doc["rounds"]
               if r["backend"] == "cluster" and r.get("channel_spread")]
    if spreads:
        lines += ["Channels per primary (by the slot of each channel): %s." % "; ".join(
            "round %d: %s" % (rn, " / ".join(str(v) for v in sp.values()))
            for rn, sp in spreads), ""]
    idles = []
    for r in doc["rounds"]:
        if r.get("idle"):
            ptxt, rtxt = fmt_redis({"redis": r["idle"], "redis_primaries_total": sum(
                v for k, v in r["idle"].items() if r["roles"][k]["role"] in ("redis", "primary")),
                "redis_replicas_total": sum(v for k, v in r["idle"].items()
                                            if r["roles"][k]["role"] == "replica")}, r["roles"])
            idles.append("%s (round %d): %s%s" % (LABEL[r["backend"]], r["round"], ptxt,
                                                  "; replicas " + rtxt if rtxt != "—" else ""))
    if idles:
        lines += ["Redis CPU with no traffic (%.0f s, both nodes connected): %s. The cluster's "
                  "bus and replication pings cost this much at any rate; the *above idle* "
                  "column takes it out." % (p["idle_dur"], "; ".join(idles)), ""]
    lines += ["### Same traffic: %s publishes/s (%s deliveries/s)" % (
        bench.fmt_num(p["ref_rate"]), bench.fmt_num(p["ref_rate"] * p["subs_per_channel"])), "",
        "CPU of each process as a share of one core over the time the publisher was "
        "publishing (%g s measured after %g s of warm-up); Redis figures listed "
        "primary by primary, replicas in the same order as their primaries." % (
            p["ref_dur"], p["warmup"]), "",
        "| round | backend | sustained | Redis CPU, per primary | replicas | Redis CPU per "
        "publish, all redis-servers (above idle) | publishes per primary | node A | node B | "
        "load gen | p50 | p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in doc["rounds"]:
        s = g(r, "summary", "reference")
        if s is None:
            lines.append("| %d | %s | error: %s | | | | | | | | | |" % (
                r["round"], LABEL[r["backend"]], (r.get("error") or "?").splitlines()[0]))
            continue
        ptxt, rtxt = fmt_redis(s, r["roles"])
        lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["round"], LABEL[r["backend"]], "yes" if s["ok"] else "**no** (%s)" % s["why"],
            ptxt, rtxt, us_text(s),
            calls_share(s, r["roles"]), pct(s["node_a"]), pct(s["node_b"]), pct(s["loadgen"]),
            bench.fmt_num(s["p50_us"]) + " µs", bench.fmt_num(s["p99_us"]) + " µs"))
    lines += ["", "### Highest loss-free rate", "",
              "The step search of `perf/bench.py` (doubling, then bisecting to 12%%; each step "
              "%g s after %g s of warm-up; loss-free, every subscriber connected, the "
              "publisher kept its rate, median latency under %.0f ms); round 2 and later start "
              "from the backend's previous best. CPU columns are at the best step." % (
                  p["step_dur"], p["warmup"], QUEUE_LIMIT_US / 1000), "",
              "| round | backend | publishes/s | deliveries/s | Redis CPU, per primary | "
              "replicas | node A | node B | load gen | p50 | limit |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in doc["rounds"]:
        s = g(r, "summary", "best")
        if s is None:
            why = r.get("error") or "no step sustained"
            lines.append("| %d | %s | — | — | | | | | | | %s |" % (
                r["round"], LABEL[r["backend"]], why.splitlines()[0]))
            continue
        ptxt, rtxt = fmt_redis(s, r["roles"])
        lines.append("| %d | %s | **%s** | %s | %s | %s | %s | %s | %s%s | %s µs | %s |" % (
            r["round"], LABEL[r["backend"]], bench.fmt_num(s["publishes_per_s"]),
            bench.fmt_num(s["deliveries_per_s"]), ptxt, rtxt, pct(s["node_a"]),
            pct(s["node_b"]), pct(s["loadgen"]), " ⚠" if (s["loadgen"] or 0) > 0.9 else "",
            bench.fmt_num(s["p50_us"]), g(r, "summary", "limit") or ""))
    lines.append("")
    pr = rt.get("per_round") or []
    if pr:
        lines.append("Cluster ÷ one Redis, highest loss-free publishes/s: %s%s." % (
            ", ".join("round %d %.2f×" % (i + 1, x) for i, x in enumerate(pr)),
            "; of the rounds' medians %.2f×" % rt["median_cluster_over_redis"]
            if rt.get("median_cluster_over_redis") and len(pr) > 1 else ""))
        lines.append("")
    lines += [
        "Reading: with one Redis every publish and every delivery to B's subscriber link "
        "goes through the one redis-server; on the cluster the channels' slots spread them "
        "over the primaries (the *publishes per primary* column counts the `SPUBLISH` calls "
        "each one processed, from `INFO commandstats`), and the cluster forwards each shard "
        "message to every node of its shard (subscribers may sit on a replica), which is "
        "the replicas' CPU. Here every redis-server shares core 0 with both nodes, so the "
        "cluster is not expected to give more throughput on this machine (*limit* says what "
        "stopped each search); the per-primary split is the figure that carries over to a "
        "machine with a core per primary. Node CPU figures include the "
        "subscribers' connection set-up, so they are upper bounds; ⚠ marks a load "
        "generator above 90% of its core.", END]
    bl.write_block(lines, START, END, "cluster-bench")


# ---- main -------------------------------------------------------------------------------------

def _sigterm(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run under a minute: 1 round, 64 subscribers, low rates")
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--rounds", type=int, help="rounds, each backend once per round")
    ap.add_argument("--channels", type=int)
    ap.add_argument("--subs-per-channel", type=int)
    ap.add_argument("--step-dur", type=float, help="seconds measured per search step")
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--drain", type=float)
    ap.add_argument("--search-steps", type=int)
    ap.add_argument("--start-rate", type=float, help="first search step, publishes/s")
    ap.add_argument("--ref-rate", type=float, help="the reference step, publishes/s")
    ap.add_argument("--ref-dur", type=float, help="seconds measured at the reference rate")
    ap.add_argument("--primaries", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--backends", default="redis,cluster",
                    help="comma-separated, in the order of each round")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--no-report", action="store_true", help="leave BENCHMARKS.md alone")
    ap.add_argument("--results", metavar="DIR",
                    help="write the JSON there instead of perf/results (smoke runs)")
    ap.add_argument("--render", metavar="JSON", help="only rewrite BENCHMARKS.md from a result")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            report(json.load(f), os.path.abspath(args.render))
        return 0

    p = dict(QUICK if args.quick else FULL)
    for k in list(p):
        v = getattr(args, k, None)
        if v is not None:
            p[k] = v
    kinds = [k for k in args.backends.split(",") if k]
    if any(k not in BACKENDS for k in kinds):
        ap.error("--backends: redis, cluster")
    rl_bin = os.path.join(args.build, "ringload")
    if not os.access(rl_bin, os.X_OK):
        print("clusterbench: %s missing; run make first" % rl_bin, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    stamp = bl.now_utc_stamp()
    logdir = bl.make_logdir("ringcast-cluster-%s-" % stamp)
    rl = bl.Ringload(rl_bin, cpu=None if args.no_pin else bench.LOADGEN_CPU)
    argv = " ".join(sys.argv[1:])
    doc = {"stamp": stamp, "command": CMD + (" " + argv if argv else ""), "argv": sys.argv,
           "mode": "quick" if args.quick else "full", "params": p,
           "primaries": args.primaries, "replicas": args.replicas, "pinned": not args.no_pin,
           "server_cpu": bench.SERVER_CPU, "loadgen_cpu": bench.LOADGEN_CPU,
           "queue_limit_us": QUEUE_LIMIT_US, "machine": bl.machine_info(args.build),
           "logdir": logdir, "rounds": []}
    bl.log("cluster bench %s, logs in %s" % (doc["mode"], logdir))
    t0 = time.monotonic()
    interrupted = False
    try:
        prev = {}
        for rnd in range(1, p["rounds"] + 1):
            for kind in kinds:
                start = prev.get(kind) or p["start_rate"]
                r = one_backend(kind, rnd, args, p, rl, logdir, start)
                doc["rounds"].append(r)
                if r.get("best"):
                    prev[kind] = r["best"]["_rate"]
    except KeyboardInterrupt:
        interrupted = True
        doc["interrupted"] = True
        bl.log("interrupted: every process started was stopped")
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    doc["ratios"] = ratios(doc)
    if args.results:
        os.makedirs(args.results, exist_ok=True)
        out = os.path.join(args.results, "cluster-%s.json" % stamp)
        with open(out, "w") as f:
            json.dump(doc, f, indent=1, default=str)
        bl.log("raw results: %s" % out)
    else:
        out = bl.save_results(doc, "cluster", stamp)
    for r in doc["rounds"]:
        s = g(r, "summary", "best")
        ref = g(r, "summary", "reference")
        bl.log("round %d %-13s best %s publishes/s (%s deliveries/s); at %g/s Redis CPU %s, "
               "%s per publish (above idle); limit: %s" % (
                   r["round"], LABEL[r["backend"]], bench.fmt_num(g(s, "publishes_per_s")),
                   bench.fmt_num(g(s, "deliveries_per_s")), p["ref_rate"],
                   ", ".join("%s %s" % (short_name(n), pct(u))
                             for n, u in (g(ref, "redis") or {}).items()),
                   us_text(ref) if ref else "-",
                   g(r, "summary", "limit") or r.get("error")))
    if doc["ratios"].get("per_round"):
        bl.log("cluster / one Redis, highest loss-free publishes/s: %s" % ", ".join(
            "%.2f" % x for x in doc["ratios"]["per_round"]))
    if interrupted:
        return 130
    if not args.no_report:
        report(doc, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
