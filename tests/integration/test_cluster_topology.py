"""Issue 16: a Redis Cluster's topology changes while messages flow. A local
cluster of three primaries, each with a replica (clusterhelp.RedisCluster),
and two ringcast nodes given every cluster node as a seed. Node A publishes
a numbered message every few milliseconds on two channels, one with
history; node B's subscribers read them. During the traffic the slot of
the channels moves to another primary (a live migration, keys included),
or the primary that owns it is SIGKILLed and its replica takes over.

What must hold: every message reaches B's subscriber once, in order, or the
subscriber is told (a messages_dropped notice) that it may have missed some;
on the channel with history, a recovery from the last offset seen returns
exactly the missing ones; and delivery resumes by itself afterwards."""
import asyncio
import json
import time

from clusterhelp import key_slot
from rchelp import get_metrics, msum, request, subscribe, ws_connect, welcome
from redishelp import Collector, async_wait_until, readyz, wait_until

PREFIX = "rc:"
FLAGS = ("--public", "public:*", "--anonymous-publish", "--msg-rate", "1000000",
         "--msg-burst", "65535", "--history", "public:h-* size=20000 ttl=3600", "--recovery-max", "20000")


def start_pair(start_server, cluster):
    nodes = {}
    for n in ("A", "B"):
        nodes[n] = start_server("--redis", cluster.seeds_url(), "--node-id", "node" + n, *FLAGS)
    for n, srv in nodes.items():
        wait_until(lambda: readyz(srv.port) == (200, "ready"), 20.0, "node %s ready" % n)
    return nodes["A"], nodes["B"]


def slot_of_channel(chan):
    return key_slot(PREFIX + "ch:{" + chan + "}")


async def subscriber(srv, chan):
    ws = await ws_connect(srv)
    await welcome(ws)
    r = await subscribe(ws, chan, "s")
    assert r.get("type") == "subscribed", r
    return ws, Collector(ws, chan)


class Publisher:
    """Publishes {"n": i} on each channel through A's HTTP API every `gap`
    seconds, in a thread; .sent[chan] lists what A accepted (202)."""

    def __init__(self, srv, chans, gap=0.004):
        import threading
        self.srv, self.chans, self.gap = srv, chans, gap
        self.sent = {c: [] for c in chans}
        self.stop_ = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        i = 0
        while not self.stop_.is_set():
            for c in self.chans:
                st, _ = self.srv.publish(c, json.dumps({"n": i}))
                if st == 202:
                    self.sent[c].append(i)


            i += 1
            time.sleep(self.gap)

    def stop(self):
        self.stop_.set()
        self.t.join(10)


def check_told_or_whole(col, sent, what):
    """Each accepted message once, in order; a missing one only with a
    notice. Returns the numbers received."""
    got = [m["data"]["n"] for m in col.messages]
    print("%s: sent %d, got %d, notices %s" % (what, len(sent), len(got),
                                              [n.get("reason") for n in col.notices()]))
    assert got == sorted(set(got)), "%s: duplicates or out of order: %s" % (what, got[:50])
    missing = sorted(set(sent) - set(got))
    if missing:
        assert col.notices(), "%s: %d messages missing (first %s) and no notice" % (
            what, len(missing), missing[:5])
    return got, missing


async def flow(A, B, chans, during):
    subs = {c: await subscriber(B, c) for c in chans}
    pub = Publisher(A, chans)
    try:
        for c in chans:
            await async_wait_until(lambda: len(subs[c][1].messages) >= 20, 10.0,
                                   "traffic on %s before the change" % c)
        await asyncio.get_running_loop().run_in_executor(None, during)
        # delivery resumes by itself: fresh messages arrive after the change
        marks = {c: len(pub.sent[c]) for c in chans}
        for c in chans:
            await async_wait_until(
                lambda: pub.sent[c][marks[c]:] and subs[c][1].messages and
                subs[c][1].messages[-1]["data"]["n"] >= pub.sent[c][min(
                    marks[c] + 50, len(pub.sent[c]) - 1)],
                30.0, "delivery on %s after the change" % c)
    finally:
        pub.stop()
    await asyncio.sleep(1.0)  # the last ones in flight
    return subs, pub


async def recover_rest(srv, chan, col, sent):
    """On the channel with history: a subscriber that lost messages recovers
    them from the last offset it saw, exactly."""
    last = col.messages[-1]
    ws = await ws_connect(srv)
    await welcome(ws)
    r = await request(ws, {"type": "history", "id": "h", "channel": chan, "limit": 20000})
    assert r["type"] == "history", r
    pubs = r["publications"]
    got = [p["data"]["n"] for p in pubs]
    await ws.close()
    return got, last


async def check_moved(B, flowed, chans):
    """After a slot moved with its keys: each message once, in order, or a
    notice; on a channel with history, the history holds what A sent."""
    subs, pub = flowed
    for c in chans:
        ws, col = subs[c]
        check_told_or_whole(col, pub.sent[c], c)
        if c.startswith("public:h-"):
            hist, _ = await recover_rest(B, c, col, pub.sent[c])
            assert hist == pub.sent[c], "the history holds what A sent, once, in order"
        await col.stop()
        await ws.close()


def test_slot_migration_during_traffic(redis_cluster, start_server):
    A, B = start_pair(start_server, redis_cluster)
    chans = ["public:m-plain", "public:h-mig"]
    slots = {c: slot_of_channel(c) for c in chans}
    before = {n: get_metrics(s.port) for n, s in (("A", A), ("B", B))}

    def migrate():
        for c in chans:
            src = redis_cluster.node_for_slot(slots[c])
            dst = next(p for p in redis_cluster.primaries() if p is not src)
            m = redis_cluster.move_slot(slots[c], dst)
            assert redis_cluster.node_for_slot(slots[c]) is dst, m

    async def go():
        await check_moved(B, await flow(A, B, chans, migrate), chans)

    asyncio.run(go())
    after = {n: get_metrics(s.port) for n, s in (("A", A), ("B", B))}
    reads = [msum(after[n], "ringcast_redis_cluster_map_reads_total") -
             msum(before[n], "ringcast_redis_cluster_map_reads_total") for n in after]
    assert all(r >= 1 for r in reads), "each node read the map again: %s" % reads
    assert msum(after["A"], "ringcast_redis_cluster_primaries_up") == 3


def test_reshard_during_traffic(redis_cluster, start_server):
    """redis-cli --cluster reshard moves the lowest 200 slots of one primary
    (keys included) to another while A publishes on channels in them: the
    same guarantees as a single slot's migration."""
    src, ranges = next(iter(redis_cluster.primaries().items()))
    dst = next(p for p in redis_cluster.primaries() if p is not src)
    first = ranges[0][0]
    moving = set(range(first, first + 200))

    def pick(prefix):
        return next(prefix + str(i) for i in range(100000)
                    if slot_of_channel(prefix + str(i)) in moving)

    chans = [pick("public:r-plain-"), pick("public:h-resh-")]
    A, B = start_pair(start_server, redis_cluster)

    def reshard():
        redis_cluster.reshard(200, src, dst)
        for c in chans:
            assert redis_cluster.node_for_slot(slot_of_channel(c)) is dst, c

    async def go():
        await check_moved(B, await flow(A, B, chans, reshard), chans)

    asyncio.run(go())


def test_primary_killed_replica_promoted(redis_cluster, start_server):
    A, B = start_pair(start_server, redis_cluster)
    chans = ["public:k-plain", "public:h-kill"]
    victim = redis_cluster.node_for_slot(slot_of_channel(chans[1]))

    def kill():
        promoted = redis_cluster.kill_primary(victim.port)
        assert promoted is not victim

    async def go():
        subs, pub = await flow(A, B, chans, kill)
        lost_any = False
        for c in chans:
            ws, col = subs[c]
            got, missing = check_told_or_whole(col, pub.sent[c], c)
            lost_any |= bool(missing)
            await col.stop()
            await ws.close()
        return lost_any

    asyncio.run(go())
    wait_until(lambda: msum(get_metrics(A.port), "ringcast_redis_cluster_primaries_up") == 3,
               10.0, "A uses three live primaries again")
    assert msum(get_metrics(A.port), "ringcast_redis_cluster_slots_covered") == 16384


class Seeds:
    """What the waiting-room helpers need of a Redis: its URL (every node of
    the cluster as a seed) and a port (for the nodes' ids)."""

    def __init__(self, cluster):
        self.url = cluster.seeds_url()
        self.port = cluster.nodes[0].port


def test_waiting_room_primary_killed_nobody_admitted_twice(redis_cluster, start_server):
    """The primary that owns a queue's slot is SIGKILLed mid-run and its
    replica takes over: admissions stop while the slot has no primary and
    resume by themselves; every waiter is admitted exactly once, in ticket
    order (the lease and the line live in the queue's slot and moved with
    it)."""
    from test_admission import (User, connect_user, join, put_queue, start_nodes,
                                user_reader)
    N, RATE, TICK, Q = 40, 2, 200, "qk"
    nodes = start_nodes(start_server, Seeds(redis_cluster), "AB", tick_ms=TICK)
    put_queue(nodes["A"], Q, rate=RATE, max_active=1000, active_ttl=600, abandon_timeout=60,
              state="paused")
    victim = redis_cluster.node_for_slot(key_slot(PREFIX + "q:{%s}:wait" % Q))
    users = [User("w%02d" % i, "AB"[i % 2]) for i in range(N)]
    readers = []

    async def go():
        for u in users:
            u.ws = await connect_user(nodes[u.node], u.name)
            r = await join(u.ws, Q)
            assert r["type"] == "queue.joined", r
            u.ticket = r["ticket"]
            readers.append(asyncio.ensure_future(user_reader(u)))
        put_queue(nodes["B"], Q, state="open")
        await async_wait_until(lambda: sum(len(u.admitted) for u in users) >= 3 * RATE, 15.0,
                               "the first admissions")
        assert sum(len(u.admitted) for u in users) <= N - 10 * RATE, "the kill must be mid-run"
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: redis_cluster.kill_primary(victim.port))
        await async_wait_until(lambda: all(u.admitted for u in users), 60.0,
                               "every waiter admitted after the failover", interval=0.1)
        await asyncio.sleep(1.5)  # room for a duplicate to show up
        for u in users:
            await u.ws.close()
        await asyncio.gather(*readers)

    asyncio.run(go())
    for u in users:
        assert len(u.admitted) == 1, (u.name, u.admitted)
    # in ticket order: a lower ticket was never admitted in a later tick
    by_ticket = sorted(users, key=lambda u: u.ticket)
    assert [u.ticket for u in by_ticket] == list(range(1, N + 1))
    exp = [u.admitted[0]["expires"] for u in by_ticket]
    assert exp == sorted(exp), exp
    fenced = 0
    for n in ("A", "B"):
        m = get_metrics(nodes[n].port)
        assert msum(m, "ringcast_redis_cluster_primaries_up") == 3, n
        fenced += msum(m, "ringcast_admission_replicated_ticks_total")
    # the queue's primary has a replica: ticks are announced once it has them
    assert fenced > 0
