#!/usr/bin/python3
"""Recovery storm: a node dies, and its clients recover their channels on another.

Two ringcast nodes (A, B) on one private redis-server, all on core 0; the
clients (Python, asyncio) on core 1. N clients connect to A, each
subscribed to one of C channels with history (`--history 'storm:* size=1000
ttl=600'`), and keep the offset and epoch of the last message they saw. A
publisher (on B) publishes to every channel, P times a second, the whole
time. A is SIGKILLed; every client reconnects to B at once and subscribes
with `since`. Reported:

  - clients that recovered (recovered:true), and those that did not;
  - the time from the kill until the last client had its recovery answer;
  - every client's offsets from before the kill through the end, checked
    for gaps and duplicates;
  - Redis commands spent during the storm (INFO stats
    total_commands_processed, less the publisher's own), and B's reads of
    Redis history (ringcast_redis_history_reads_total).

Writes perf/results/storm-<UTC stamp>.json and rewrites the block between
<!-- storm-bench:start --> and <!-- storm-bench:end --> in BENCHMARKS.md
(--no-report leaves it alone).

  /usr/bin/python3 perf/stormbench.py             # 10,000 clients, 10 channels
  /usr/bin/python3 perf/stormbench.py --clients 2000 --no-report
"""
import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import sys
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import benchlib as bl  # noqa: E402

START, END = "<!-- storm-bench:start -->", "<!-- storm-bench:end -->"
CMD = "/usr/bin/python3 perf/stormbench.py"
HIST = ("--history", "storm:* size=1000 ttl=600", "--public", "storm:*",
        "--max-channels", "4")


def redis_info(port):
    """total_commands_processed from INFO stats."""
    with socket.create_connection((bl.HOST, port), timeout=5) as s:
        s.sendall(b"INFO stats\r\n")
        data = b""
        while b"\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n")
        need = int(head[1:]) + 2
        while len(body) < need:
            body += s.recv(65536)
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":", 1)[1])
    return 0


class Client:
    def __init__(self, i, chan):
        self.i, self.chan = i, chan
        self.offsets = []
        self.epoch = None
        self.ws = None
        self.recovered = None
        self.answer_t = None

    async def reader(self):
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                if m.get("type") == "message":
                    self.offsets.append(m["offset"])
                    self.epoch = m["epoch"]
                elif m.get("type") == "subscribed":
                    if self.epoch is None:
                        self.epoch = m.get("epoch")
                    if "recovered" in m:
                        self.recovered = m["recovered"]
                        self.reason = m.get("reason")
                        self.answer_t = time.monotonic()
        except (websockets.ConnectionClosed, OSError):
            pass

    async def connect(self, url, since=None):
        self.ws = await websockets.connect(url, max_size=None, ping_interval=None,
                                           open_timeout=60, close_timeout=1)
        await self.ws.recv()  # welcome
        req = {"type": "subscribe", "id": 1, "channel": self.chan}
        if since is not None:
            req["since"] = since
        await self.ws.send(json.dumps(req))
        return asyncio.ensure_future(self.reader())


async def publisher(url, chans, rate, stop):
    ws = await websockets.connect(url, max_size=None, ping_interval=None)
    await ws.recv()
    n = 0
    while not stop.is_set():
        t = time.monotonic()
        for c in chans:
            await ws.send(json.dumps({"type": "publish", "channel": c, "data": n}))
        n += 1
        await asyncio.sleep(max(0.0, 1.0 / rate - (time.monotonic() - t)))
    await ws.close()
    return n


async def storm(args, a, b, redis_port):
    chans = ["storm:%d" % k for k in range(args.channels)]
    clients = [Client(i, chans[i % len(chans)]) for i in range(args.clients)]
    url_a, url_b = a.url, b.url
    bl.log("connecting %d clients to A" % len(clients))
    sem = asyncio.Semaphore(200)

    async def first(c):
        async with sem:
            return await c.connect(url_a)
    readers = await asyncio.gather(*(first(c) for c in clients))
    stop = asyncio.Event()
    pub = asyncio.ensure_future(publisher(url_b, chans, args.rate, stop))
    await asyncio.sleep(args.before)
    have = sum(1 for c in clients if c.offsets)
    bl.log("%d of %d clients have messages; SIGKILL A" % (have, len(clients)))
    cmds0 = redis_info(redis_port)
    m0 = bl.metrics(b.port)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    os.kill(a.pid, signal.SIGKILL)
    t_kill = time.monotonic()
    await asyncio.gather(*readers, return_exceptions=True)
    before = {c.i: list(c.offsets) for c in clients}

    async def back(c):
        since = {"offset": c.offsets[-1], "epoch": c.epoch} if c.offsets else None
        async with sem:
            return await c.connect(url_b, since)
    readers = await asyncio.gather(*(back(c) for c in clients), return_exceptions=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(c.answer_t is None for c in clients if c.offsets):
        await asyncio.sleep(0.05)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    answers = sorted(c.answer_t - t_kill for c in clients if c.answer_t)
    t_all = answers[-1] if answers else 0.0
    client_cpu = ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) / max(t_all, 1e-3)
    cmds1 = redis_info(redis_port)
    m1 = bl.metrics(b.port)
    await asyncio.sleep(args.after)
    stop.set()
    published = await pub
    await asyncio.sleep(1.0)
    for c in clients:
        if c.ws is not None:
            await c.ws.close()
    await asyncio.gather(*[r for r in readers if asyncio.isfuture(r)], return_exceptions=True)
    gaps = dups = 0
    for c in clients:
        offs = c.offsets
        if not offs:
            continue
        if len(set(offs)) != len(offs):
            dups += 1
        elif offs != list(range(offs[0], offs[0] + len(offs))):
            gaps += 1
    rec = sum(1 for c in clients if c.recovered)
    not_rec = sum(1 for c in clients if c.recovered is False)
    no_answer = sum(1 for c in clients if c.offsets and c.recovered is None)
    return {
        "clients": len(clients), "channels": len(chans), "rate_per_channel": args.rate,
        "had_messages_before_kill": sum(1 for v in before.values() if v),
        "recovered": rec, "not_recovered": not_rec, "no_answer": no_answer,
        "seconds_until_all_answered": round(t_all, 3),
        "seconds_until_half_answered": round(answers[len(answers) // 2], 3) if answers else None,
        "clients_cpu_during_storm": round(client_cpu, 3),
        "clients_with_gaps": gaps, "clients_with_duplicates": dups,
        # The publisher's own commands during the storm are subtracted: one
        # EVALSHA per publish.
        "redis_commands_during_storm": cmds1 - cmds0,
        "publisher_commands_estimate": None,
        "redis_history_reads": (m1.get("ringcast_redis_history_reads_total", 0) -
                                m0.get("ringcast_redis_history_reads_total", 0)),
        "coalesced": (m1.get("ringcast_history_coalesced_total", 0) -
                      m0.get("ringcast_history_coalesced_total", 0)),
        "cached": (m1.get("ringcast_history_cached_total", 0) -
                   m0.get("ringcast_history_cached_total", 0)),
        "published_per_channel": published,
    }


def report(doc, path_json):
    r = doc["result"]
    lines = [START, "## Recovery storm", "",
             "Measured by `%s --clients %d --channels %d` at %s UTC (raw: `results/%s`): %d "
             "clients on node A, each subscribed to one of %d channels with history, while a "
             "publisher on node B publishes %d times a second to each channel; A is SIGKILLed "
             "and every client reconnects to B at once with `since`. Both nodes and Redis on "
             "core 0, the clients (Python asyncio) on core 1." % (
                 CMD, r["clients"], r["channels"], doc["stamp"], os.path.basename(path_json),
                 r["clients"], r["channels"], r["rate_per_channel"]), "",
             "| figure | value |", "| --- | --- |",
             "| clients that recovered (`recovered:true`) | %d of %d |" % (
                 r["recovered"], r["had_messages_before_kill"]),
             "| not recovered / no answer | %d / %d |" % (r["not_recovered"], r["no_answer"]),
             "| time from the kill until the last recovery answer (half of them) | %.2f s "
             "(%.2f s) |" % (r["seconds_until_all_answered"], r["seconds_until_half_answered"]),
             "| the clients' process CPU meanwhile (its one core) | %.0f%% |" % (
                 100 * r["clients_cpu_during_storm"]),
             "| clients whose offsets show a gap / a duplicate, before the kill through the end "
             "| %d / %d |" % (r["clients_with_gaps"], r["clients_with_duplicates"]),
             "| B's reads of Redis history during the storm | %d (for %d channels) |" % (
                 r["redis_history_reads"], r["channels"]),
             "| recoveries that waited for a read already asked / answered from memory "
             "| %d / %d |" % (r["coalesced"], r["cached"]),
             "| Redis commands processed during the storm (the publisher's included) | %d |" % (
                 r["redis_commands_during_storm"]),
             "", "The clients are one Python process on one core: above about 90% of it, the "
             "time is the clients' reconnection speed rather than the node's.", END]
    bl.write_block(lines, START, END, "storm-bench")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--rate", type=float, default=2.0, help="publishes/s per channel")
    ap.add_argument("--before", type=float, default=3.0)
    ap.add_argument("--after", type=float, default=3.0)
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--render", metavar="JSON")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            report(json.load(f), args.render)
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.sched_setaffinity(0, {bench.LOADGEN_CPU})
    stamp = bl.now_utc_stamp()
    logdir = bl.make_logdir("ringcast-storm-%s-" % stamp)
    cl = bench.Cluster("ringcast", args.build, logdir, extra=HIST)
    try:
        b, a = cl.nodes[1], cl.nodes[0]
        result = asyncio.run(storm(args, a, b, cl.redis.port))
    finally:
        cl.stop()
    doc = {"stamp": stamp, "command": CMD, "argv": sys.argv, "result": result,
           "machine": bl.machine_info(args.build)}
    out = os.path.join(bl.REPO, "perf", "results", "storm-%s.json" % stamp)
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    bl.log("raw results: %s" % out)
    bl.log(json.dumps(result))
    if not args.no_report:
        report(doc, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
