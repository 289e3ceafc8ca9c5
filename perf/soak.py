#!/usr/bin/python3
"""Soak: SOAK_CONNS connections (default 100000) held by one ringcast process for
SOAK_MINUTES (default 10), with a broadcast to everyone every SOAK_BROADCAST_S seconds
(default 10), server heartbeats every 5 s, and 1% of the connections churned per minute.

Fails (exit 1) when a connection closes unexpectedly, a broadcast is lost, ringcast
exits, or ringcast's RSS grows more than 5% after warm-up. Prints progress every 10 s,
writes perf/results/soak-<UTC stamp>.json.

  SOAK_MINUTES=1 SOAK_CONNS=30000 /usr/bin/python3 perf/soak.py [--build build]
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

CONNS_PER_SHARD = 19000  # each shard's ring holds about RLIMIT_NOFILE (20000) descriptors
RSS_GROWTH_LIMIT = 0.05
API_KEY = "soak-api-key"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--results", default=os.path.join(bl.REPO, "perf", "results"))
    args = ap.parse_args()

    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    conns = int(os.environ.get("SOAK_CONNS", "100000"))
    bcast_every = float(os.environ.get("SOAK_BROADCAST_S", "10"))
    churn_per_min = float(os.environ.get("SOAK_CHURN_PCT", "1")) / 100.0
    duration = minutes * 60.0
    churn_rate = conns * churn_per_min / 60.0          # connections replaced per second
    churn_stay = 50                                   # the churn process's own steady set
    # A churner stays subscribed for churn_hold seconds, so about churn_rate * churn_hold
    # connections (1% of the target at the defaults) are being replaced at any time.
    churn_hold = min(60.0, max(1.0, duration / 2))
    subs = conns - churn_stay - int(math.ceil(churn_rate * (churn_hold + 2))) - 1
    shards = max(1, math.ceil(conns / CONNS_PER_SHARD))
    rl_threads = max(1, math.ceil(subs / 16000))
    src_addrs = max(1, math.ceil(conns / 24000))
    ramp_allow = 60 + subs / 2000.0

    stamp = bl.now_utc_stamp()
    os.makedirs(args.results, exist_ok=True)
    logdir = bl.make_logdir("ringcast-soak-%s-" % stamp)
    out_path = os.path.join(args.results, "soak-%s.json" % stamp)
    doc = {"stamp": stamp, "minutes": minutes, "conns_target": conns, "subscribers": subs,
           "shards": shards, "broadcast_every_s": bcast_every, "churn_per_s": churn_rate,
           "ping_interval_ms": 5000, "machine": bl.machine_info(args.build), "progress": [],
           "logdir": logdir, "failures": []}
    bl.log("soak: %d connections (%d subscribers + churn) on %d shards for %.1f min, "
           "broadcast every %g s, churn %.1f/s; logs in %s" % (
               conns, subs, shards, minutes, bcast_every, churn_rate, logdir))

    srv = bcast = churn = None
    rc = 1
    try:
        port = bl.free_port()
        env = dict(os.environ)
        env.pop("RINGCAST_JWT_SECRET", None)
        env["RINGCAST_API_KEY"] = API_KEY
        cmd = [os.path.join(args.build, "ringcast"), "--listen", "%s:%d" % (bl.HOST, port),
               "--shards", str(shards), "--public", "soak:*", "--anonymous-publish",
               "--ping-interval-ms", "5000", "--pong-timeout-ms", "10000",
               "--max-connections", str(conns + 10000), "--log-level", "warn"]
        srv = bl.Proc("ringcast", cmd, logdir, port=port, env=env, timeout=30)
        doc["ringcast_cmd"] = " ".join(cmd)
        time.sleep(0.5)
        rss0, _ = bl.rss_bytes(srv.pid)
        sock0 = bl.sockstat()
        slab0 = bl.slab_tcp()
        doc["rss_idle_server"] = rss0
        doc["sockstat_before"] = sock0

        rl = bl.Ringload(os.path.join(args.build, "ringload"), cpu=None)
        url = "ws://%s:%d/ws" % (bl.HOST, port)
        bcast = rl.spawn(url, "ringcast", "broadcast", os.path.join(logdir, "broadcast.out"),
                         conns=subs, threads=rl_threads, src_addrs=src_addrs,
                         channel="soak:all", rate=1.0 / bcast_every, payload=64,
                         duration=duration, warmup=min(10.0, duration / 6), drain=5,
                         max_time=duration + ramp_allow + 60)
        churn = rl.spawn(url, "ringcast", "churn", os.path.join(logdir, "churn.out"),
                         conns=churn_stay, threads=1, src_addrs=1, channel="soak:churn",
                         churn_rate="%.3f" % churn_rate, churn_hold=churn_hold,
                         duration=duration, warmup=5,
                         max_time=duration + ramp_allow + 60)

        # Warm-up ends when the subscribers are all connected (or the ramp time is up).
        t0 = time.monotonic()
        warm_rss = None
        warm_at = None
        max_rss = 0
        next_tick = t0
        deadline = t0 + duration + ramp_allow + 90
        while time.monotonic() < deadline:
            if bcast.poll() is not None and churn.poll() is not None:
                break
            if not srv.alive():
                doc["failures"].append("ringcast exited with %s: %s" % (
                    srv.proc.returncode, srv.log_tail(5)))
                break
            now = time.monotonic()
            if now < next_tick:
                time.sleep(min(1.0, next_tick - now))
                continue
            next_tick += 10
            est = bl.established(port)
            rss, _ = bl.rss_bytes(srv.pid)
            ss = bl.sockstat()
            m = bl.metrics(port)
            msgs = {k: v for k, v in m.items() if "{" not in k and k in (
                "ringcast_connections", "ringcast_websockets", "ringcast_subscriptions",
                "ringcast_publishes_total", "ringcast_deliveries_total", "ringcast_pings_sent_total",
                "ringcast_ws_closes_total", "ringcast_heartbeat_timeouts_total",
                "ringcast_backlog_closes_total", "ringcast_accepted_total")}
            slab = bl.slab_tcp()
            pt = {"t": round(now - t0, 1), "established": est, "rss": rss, "sockstat": ss,
                  "tcp_slab": slab, "metrics": msgs}
            doc["progress"].append(pt)
            # Warm-up covers the whole workload once: every subscriber connected and
            # two broadcasts sent to all of them (the first one allocates what each
            # later one reuses), so later growth is growth, not first use.
            bcasts = m.get("ringcast_publishes_total") or 0
            if (warm_rss is None and (est >= subs or now - t0 > ramp_allow) and bcasts >= 2
                    and now - t0 > 20):
                warm_rss, warm_at = rss, now - t0
                doc["warm_rss"], doc["warm_at_s"], doc["warm_established"] = rss, warm_at, est
            if warm_rss is not None and rss:
                max_rss = max(max_rss, rss)
            bl.log("t=%4.0fs conns=%d websockets=%s rss=%.1f MiB (%s B/conn) sockstat tcp inuse=%s "
                   "mem=%.1f MiB publishes=%s deliveries=%s pings=%s closes=%s" % (
                       now - t0, est, _n(m, "ringcast_websockets"), (rss or 0) / 2 ** 20,
                       "%.0f" % ((rss - rss0) / est) if est > 0 and rss else "-",
                       ss.get("inuse"), ss.get("mem_bytes", 0) / 2 ** 20,
                       _n(m, "ringcast_publishes_total"), _n(m, "ringcast_deliveries_total"),
                       _n(m, "ringcast_pings_sent_total"), _n(m, "ringcast_ws_closes_total")))
            if pt["t"] > 0 and est > 0 and rss:
                doc["rss_per_conn_last"] = (rss - rss0) / est
                doc["sockstat_mem_per_conn_last"] = (
                    (ss.get("mem_bytes", 0) - sock0.get("mem_bytes", 0)) / est)
                if slab is not None and slab0 is not None:
                    doc["tcp_slab_per_conn_last"] = (slab - slab0) / est
        doc["broadcast"] = bl.finish_spawned(bcast, timeout=ramp_allow + 120)
        bcast = None
        doc["churn"] = bl.finish_spawned(churn, timeout=60)
        churn = None
        doc["max_rss_after_warmup"] = max_rss

        b, c = doc["broadcast"], doc["churn"]
        for name, res in (("broadcast", b), ("churn", c)):
            if "error" in res:
                doc["failures"].append("%s load generator: %s" % (name, res["error"]))
            elif (g(res, "unexpected_closes", default=0) or 0) > 0:
                doc["failures"].append("%s: %d unexpected closes" % (name,
                                                                      res["unexpected_closes"]))
        if "error" not in b:
            if (g(b, "held", default=0) or 0) < subs or (g(b, "failed", default=0) or 0) > 0:
                doc["failures"].append("only %s of %d subscribers held (%s failed to open)" % (
                    g(b, "held"), subs, g(b, "failed")))
            if (g(b, "lost", default=0) or 0) > 0:
                doc["failures"].append("%d broadcast deliveries lost" % b["lost"])
            if (g(b, "publishes", default=0) or 0) < max(1, duration / bcast_every / 2):
                doc["failures"].append("only %s broadcasts published" % g(b, "publishes"))
        if warm_rss is None:
            doc["failures"].append("never warmed up (connections never reached the target)")
        elif max_rss > warm_rss * (1 + RSS_GROWTH_LIMIT):
            doc["failures"].append("RSS grew %.1f%% after warm-up (%d -> %d B)" % (
                100.0 * (max_rss - warm_rss) / warm_rss, warm_rss, max_rss))
        if srv.alive() is False and not any("exited" in f for f in doc["failures"]):
            doc["failures"].append("ringcast exited with %s" % srv.proc.returncode)
        rc = 1 if doc["failures"] else 0
    except Exception as e:  # noqa: BLE001
        doc["failures"].append("%s: %s" % (type(e).__name__, e))
        rc = 1
    finally:
        bl.kill_pid(bcast)
        bl.kill_pid(churn)
        if srv is not None:
            doc["ringcast_exit"] = srv.stop(grace=15)
        doc["result"] = "FAIL" if rc else "PASS"
        with open(out_path, "w") as f:
            json.dump(doc, f, indent=1, default=str)
    _summary(doc)
    bl.log("soak %s; result: %s" % (doc["result"], out_path))
    return rc


def _n(m, name):
    v = m.get(name)
    return "-" if v is None else "%.0f" % v


def _summary(doc):
    b = doc.get("broadcast", {})
    print("soak summary: %d target connections, %s subscribers connected, broadcasts %s, "
          "deliveries expected %s received %s lost %s, unexpected closes %s (churn: %s), "
          "churned %s" % (
              doc["conns_target"], g(b, "held"), g(b, "publishes"), g(b, "expected"),
              g(b, "received"), g(b, "lost"), g(b, "unexpected_closes"),
              g(doc.get("churn", {}), "unexpected_closes"),
              g(doc.get("churn", {}), "churn_done", default=g(doc.get("churn", {}), "churned"))))
    if doc.get("rss_per_conn_last") is not None:
        print("  user-space RSS per connection %.0f B (ringcast RSS, warm %s B, max after "
              "warm-up %s B); kernel, per connection with both loopback ends: socket buffers "
              "(sockstat TCP mem) %.0f B, TCP socket slabs %s B" % (
                  doc["rss_per_conn_last"], doc.get("warm_rss"), doc.get("max_rss_after_warmup"),
                  doc.get("sockstat_mem_per_conn_last", 0),
                  "%.0f" % doc["tcp_slab_per_conn_last"] if doc.get("tcp_slab_per_conn_last")
                  is not None else "-"))
    for f in doc["failures"]:
        print("  FAIL: " + f)


if __name__ == "__main__":
    sys.exit(main())
