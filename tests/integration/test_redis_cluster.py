"""Issue 4: channels that span nodes through Redis. Each test starts a real
redis-server (Debian's, no persistence, on a free port) and up to three
ringcast nodes on it. Expected values come from the interface in
notes/issue4_spec.md: channel C is the Redis channel <prefix>ch:C, the payload
is {"node"?, "event"?, "data"}, a node drops its own echo, NUMSUB counts nodes
with members, a resubscribe after a reconnect notifies members with
messages_dropped / redis_reconnect."""
import asyncio
import json
import os
import threading
import time

import pytest

from rchelp import (get_metrics, http_request, msum, recv_json, request,
                    subscribe, token, welcome, ws_connect, expect_silence)
from redishelp import Collector, async_wait_until, readyz, vm_rss_bytes, wait_until

PUB_FLAGS = ("--public", "public:*", "--anonymous-publish",
             "--msg-rate", "1000000", "--msg-burst", "65535")
UP_CMD = 'ringcast_redis_up{conn="command"}'
UP_SUB = 'ringcast_redis_up{conn="subscriber"}'


def run(coro):
    return asyncio.run(coro)


def metric(srv, name):
    return msum(get_metrics(srv.port), name)


def start_nodes(start_server, redis, names, prefix=None, extra=(), pub_flags=PUB_FLAGS,
                env=None):
    """Nodes named A, B, ... on redis; returns {name: Server} once each
    answers /readyz 200 (both Redis connections up)."""
    nodes = {}
    for n in names:
        args = ["--redis", redis.url, "--node-id", node_id(n, redis)]
        if prefix is not None:
            args += ["--redis-prefix", prefix]
        nodes[n] = start_server(*args, *pub_flags, *extra, env=env)
    for n, srv in nodes.items():
        wait_until(lambda: readyz(srv.port) == (200, "ready"), 10.0,
                   "node %s /readyz 200 ready" % n)
    return nodes


def node_id(name, redis):
    return "node%s-%d" % (name, redis.port)


async def shard_conns(srv, path="/ws", need=2, max_tries=40):
    """need=2: one connection on each shard (0 and 1) of a 2-shard node;
    need=1: one connection. Returns [(ws, welcome)]; extras are closed."""
    conns = {}
    extra = []
    try:
        for _ in range(max_tries):
            ws = await ws_connect(srv, path)
            w = await welcome(ws)
            if w["shard"] in conns:
                extra.append(ws)
            else:
                conns[w["shard"]] = (ws, w)
            if len(conns) >= need:
                return [conns[k] for k in sorted(conns)]
        raise AssertionError("%d connections all landed on shards %s"
                             % (len(conns) + len(extra), sorted(conns)))
    finally:
        for ws in extra:
            await ws.close()


async def shard_subscribers(srv, channel, need=2):
    """[(ws, shard, base seq)], each subscribed (so, per the spec, Redis has
    confirmed the node's SUBSCRIBE); need=2 covers both shards."""
    out = []
    for i, (ws, w) in enumerate(await shard_conns(srv, need=need)):
        r = await subscribe(ws, channel, "sub%d" % i)
        assert isinstance(r.get("seq"), int), r
        out.append((ws, w["shard"], r["seq"]))
    return out


def check_from(frm):
    """Every publication says who published: a client (user or null, and its
    connection id as a string) or the backend."""
    assert frm == {"backend": True} or (
        set(frm) == {"user", "conn"} and (frm["user"] is None or isinstance(frm["user"], str))
        and isinstance(frm["conn"], str) and frm["conn"].isdigit()), frm


def check_message(msg, channel, event, seq, data, frm=None):
    """frm: the expected "from", or None for any well-formed one."""
    msg = dict(msg)
    got_from = msg.pop("from", None)
    check_from(got_from)
    if frm is not None:
        assert got_from == frm, (got_from, frm)
    want = {"type": "message", "channel": channel, "event": event, "seq": seq, "data": data}
    assert msg == want, "got %r, expected %r" % (msg, want)


async def close_all(wss):
    for ws in wss:
        await ws.close()


# ---- 1. cross-node exactly once, in publish order ----------------------------

@pytest.mark.parametrize("way", ["ws", "http", "redis"])
def test_cross_node_exactly_once_in_order(redis_server, start_server, way):
    n_msgs = 200
    prefix = "t1%s%d:" % (way, redis_server.port)
    nodes = start_nodes(start_server, redis_server, "ABC", prefix=prefix)
    chan = "public:order-" + way
    rkey = prefix + "ch:" + chan

    async def go():
        subs = []  # (node name, shard, ws, base seq)
        for name in "ABC":
            for ws, shard, base in await shard_subscribers(nodes[name], chan):
                subs.append((name, shard, ws, base))
        with redis_server.client() as rc:
            assert rc.numsub(rkey) == 3, "each node subscribes once"

            expect_from = {"backend": True}
            if way == "ws":
                pub = await ws_connect(nodes["A"])
                expect_from = {"user": None, "conn": (await welcome(pub))["conn"]}
                for i in range(n_msgs):
                    await pub.send('{"type":"publish","id":%d,"channel":"%s","event":"e",'
                                   '"data":{"n":%d}}' % (i, chan, i))
                for i in range(n_msgs):
                    r = await recv_json(pub)
                    assert r == {"type": "published", "id": i, "channel": chan}, r
            elif way == "http":
                for i in range(n_msgs):
                    st, body = nodes["A"].publish(chan, '{"n":%d}' % i, event="e")
                    assert st == 202, (st, body)
            else:
                for i in range(n_msgs):
                    got = rc.publish(rkey, '{"event":"e","data":{"n":%d}}' % i)
                    assert got == 3, "PUBLISH %d reached %d subscribers, not 3" % (i, got)

        for name, shard, ws, base in subs:
            for i in range(n_msgs):
                try:
                    msg = await recv_json(ws, 10.0)
                except asyncio.TimeoutError:
                    raise AssertionError("node %s shard %d: message %d of %d missing"
                                         % (name, shard, i, n_msgs))
                # seq +1 per message per node and channel, data counters in order
                check_message(msg, chan, "e", base + 1 + i, {"n": i}, expect_from)
        # exactly once: nothing after the N messages (an echo would come here)
        await asyncio.gather(*(expect_silence(ws, 0.5) for _, _, ws, _ in subs))
        await close_all([s[2] for s in subs])

    run(go())


# ---- 2. only nodes with members subscribe; the prefix is honoured -------------

def test_subscribe_only_with_members(redis_server, start_server):
    prefix = "t2pfx%d/" % redis_server.port
    nodes = start_nodes(start_server, redis_server, "ABC", prefix=prefix)
    A, B = nodes["A"], nodes["B"]
    chan = "public:numsub"
    key = prefix + "ch:" + chan
    rc = redis_server.client()

    def numsub():
        return rc.numsub(key)

    def subs_metric(srv):
        return get_metrics(srv.port).get("ringcast_redis_subscriptions")

    def channels():
        """Redis channels, but the nodes' own (every node holds the control channel)."""
        return [c for c in rc.channels("*") if not c.startswith(prefix + "ch:_rc.")]

    async def go():
        assert numsub() == 0
        wait_until(lambda: rc.channels("*") == [prefix + "ch:_rc.ctl"], 3.0,
                   "one control channel, no pattern")
        assert channels() == [], "nodes without members subscribe nothing"
        assert rc.command("PUBSUB", "NUMPAT") == 0, "no PSUBSCRIBE"
        for n in "ABC":
            assert subs_metric(nodes[n]) == 0, n

        (a1, _), (a2, _) = (await shard_conns(A))[:2]
        (b1, _), = (await shard_conns(B, need=1))[:1]
        await subscribe(a1, chan, "a1")
        assert numsub() == 1  # subscribed comes after Redis confirmed
        assert channels() == [key], "the channel carries the configured prefix"
        wait_until(lambda: subs_metric(A) == 1, 3.0, "A ringcast_redis_subscriptions 1")
        assert subs_metric(B) == 0

        await subscribe(b1, chan, "b1")
        assert numsub() == 2
        wait_until(lambda: subs_metric(B) == 1, 3.0, "B ringcast_redis_subscriptions 1")

        await subscribe(a2, chan, "a2")
        assert numsub() == 2, "a second member on A must not subscribe A again"
        await asyncio.sleep(0.3)
        assert numsub() == 2
        assert subs_metric(A) == 1

        r = await request(a1, {"type": "unsubscribe", "id": "u1", "channel": chan})
        assert r == {"type": "unsubscribed", "id": "u1", "channel": chan}, r
        await asyncio.sleep(0.3)
        assert numsub() == 2, "A still has a member (a2)"
        await a2.close()
        await async_wait_until(lambda: numsub() == 1, 5.0, "NUMSUB 1 after A's members left")
        wait_until(lambda: subs_metric(A) == 0, 3.0, "A ringcast_redis_subscriptions 0")
        assert subs_metric(B) == 1

        r = await request(b1, {"type": "unsubscribe", "id": "u2", "channel": chan})
        assert r == {"type": "unsubscribed", "id": "u2", "channel": chan}, r
        await async_wait_until(lambda: numsub() == 0, 5.0, "NUMSUB 0 after B's member left")
        wait_until(lambda: subs_metric(B) == 0, 3.0, "B ringcast_redis_subscriptions 0")
        assert channels() == []
        await close_all([a1, b1])

    try:
        run(go())
    finally:
        rc.close()


# ---- 3. per-user channels across nodes ----------------------------------------

def test_user_channel_reaches_all_connections(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "AC")  # default prefix rc:
    A, C = nodes["A"], nodes["C"]
    alice = "/ws?token=" + token(sub="alice")
    bob = "/ws?token=" + token(sub="bob")

    async def go():
        alice_a = [ws for ws, _ in await shard_conns(A, path=alice)]  # both shards of A
        alice_c = [ws for ws, _ in await shard_conns(C, path=alice, need=1)]
        bob_a = [ws for ws, _ in await shard_conns(A, path=bob, need=1)]
        bob_c = [ws for ws, _ in await shard_conns(C, path=bob, need=1)]
        with redis_server.client() as rc:
            # the join is automatic and has no reply: wait for both SUBSCRIBEs
            wait_until(lambda: rc.numsub("rc:ch:user:alice") == 2, 5.0,
                       "NUMSUB rc:ch:user:alice == 2 (nodes A and C)")
            wait_until(lambda: rc.numsub("rc:ch:user:bob") == 2, 5.0,
                       "NUMSUB rc:ch:user:bob == 2")
            assert rc.publish("rc:ch:user:alice",
                              '{"event":"dm","data":{"to":"alice","k":1}}') == 2
            seqs = {}
            for name, wss in (("A", alice_a), ("C", alice_c)):
                for ws in wss:
                    m = await recv_json(ws, 5.0)
                    assert isinstance(m.get("seq"), int), m
                    check_message(m, "user:alice", "dm", m["seq"], {"to": "alice", "k": 1})
                    seqs.setdefault(name, set()).add(m["seq"])
            assert len(seqs["A"]) == 1, "one channel seq per node: %r" % seqs
            await asyncio.gather(*(expect_silence(ws, 0.5)
                                   for ws in alice_a + alice_c + bob_a + bob_c))

            assert rc.publish("rc:ch:user:bob", '{"data":"for bob"}') == 2
            for ws in bob_a + bob_c:
                m = await recv_json(ws, 5.0)
                check_message(m, "user:bob", "message", m.get("seq"), "for bob")
            await asyncio.gather(*(expect_silence(ws, 0.3) for ws in alice_a + alice_c))
        await close_all(alice_a + alice_c + bob_a + bob_c)

    run(go())


# ---- 4. a node drops its own echo ---------------------------------------------

def test_own_echo_dropped(redis_server, start_server):
    prefix = "t4%d:" % redis_server.port
    nodes = start_nodes(start_server, redis_server, "AB", prefix=prefix)
    A = nodes["A"]
    chan = "public:echo"
    m_count = 20

    async def go():
        subs = await shard_subscribers(A, chan)
        spy = redis_server.client()
        spy.subscribe(prefix + "ch:" + chan)
        before = get_metrics(A.port)
        pub = await ws_connect(A)
        pub_conn = (await welcome(pub))["conn"]
        for i in range(m_count):
            r = await request(pub, {"type": "publish", "id": i, "channel": chan,
                                    "event": "e", "data": {"n": i}})
            assert r == {"type": "published", "id": i, "channel": chan}, r

        # what A put on Redis: node id first, then the message with who sent it
        for i in range(m_count):
            _, payload = spy.next_message(5.0)
            obj = json.loads(payload)  # a dict keeps the order of the keys
            assert list(obj)[0] == "node", payload
            assert obj == {"node": node_id("A", redis_server), "event": "e",
                           "from": {"user": None, "conn": pub_conn}, "data": {"n": i}}, payload
        spy.close()

        def echoes():
            return delta_of(A, before, "ringcast_redis_echoes_total")
        await async_wait_until(lambda: echoes() >= m_count, 5.0,
                               "%d echoes counted on A" % m_count)
        for ws, shard, base in subs:
            for i in range(m_count):
                check_message(await recv_json(ws, 5.0), chan, "e", base + 1 + i, {"n": i})
        await asyncio.gather(*(expect_silence(ws, 0.5) for ws, _, _ in subs))
        after = get_metrics(A.port)
        assert after["ringcast_redis_echoes_total"] - before["ringcast_redis_echoes_total"] \
            == m_count
        assert after["ringcast_redis_messages_out_total"] \
            - before["ringcast_redis_messages_out_total"] == m_count
        assert after["ringcast_redis_messages_in_total"] \
            - before["ringcast_redis_messages_in_total"] == m_count
        await close_all([pub] + [s[0] for s in subs])

    run(go())


def delta_of(srv, before, name):
    return get_metrics(srv.port).get(name, 0.0) - before.get(name, 0.0)


# ---- 5. Redis killed and restarted mid-traffic --------------------------------

class HttpPublisher(threading.Thread):
    """POST /api/publish {"n": k} on one node, k = 0, 1, ..., every `gap`
    seconds until stopped; records every status."""

    def __init__(self, srv, channel, gap=0.005):
        super().__init__(daemon=True)
        self.srv, self.channel, self.gap = srv, channel, gap
        self.lock = threading.Lock()
        self.count = 0          # publishes started
        self.bad = []           # (n, status, body) of answers other than 202
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            with self.lock:
                n = self.count
                self.count += 1
            try:
                st, body = self.srv.publish(self.channel, '{"n":%d}' % n, event="e")
            except OSError as exc:
                st, body = None, repr(exc)
            if st != 202:
                self.bad.append((n, st, body))
            time.sleep(self.gap)

    def started(self):
        with self.lock:
            return self.count

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        assert not self.is_alive()
        return self.count


def check_seq_run(msgs, where, base=None):
    seqs = [m["seq"] for m in msgs]
    if base is not None and seqs:
        assert seqs[0] == base + 1, "%s: first seq %d after subscribed seq %d" % (
            where, seqs[0], base)
    bad = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    assert not bad, "%s: seq not +1 per message at %r" % (where, bad[:5])


def test_redis_killed_and_restarted(redis_server, start_server):
    prefix = "t5%d:" % redis_server.port
    nodes = start_nodes(start_server, redis_server, "AB", prefix=prefix,
                        extra=("--redis-ping-ms", "200"))
    A, B = nodes["A"], nodes["B"]
    chan = "public:failover"

    async def go():
        a_subs = await shard_subscribers(A, chan)
        b_subs = await shard_subscribers(B, chan)
        cols = [(Collector(ws, "A%d" % sh), base) for ws, sh, base in a_subs] + \
               [(Collector(ws, "B%d" % sh), base) for ws, sh, base in b_subs]
        a_cols = [c for c, _ in cols if c.name.startswith("A")]
        b_cols = [c for c, _ in cols if c.name.startswith("B")]
        m0 = {n: get_metrics(s.port) for n, s in nodes.items()}
        pub = HttpPublisher(A, chan)
        pub.start()
        try:
            await async_wait_until(lambda: all(len(c.messages) >= 20 for c in b_cols), 10.0,
                                   "20 messages on B before the kill")
            redis_server.kill()
            for n, s in nodes.items():
                await async_wait_until(lambda: readyz(s.port) == (503, "redis unreachable"),
                                       5.0, "node %s /readyz 503 with Redis down" % n)
            await async_wait_until(
                lambda: (lambda m: m.get(UP_CMD) == 0 and m.get(UP_SUB) == 0)(
                    get_metrics(A.port)), 5.0, "A ringcast_redis_up 0 for both connections")
            # local delivery goes on while Redis is down
            mark = pub.started()
            await async_wait_until(
                lambda: all(c.messages and c.messages[-1]["data"]["n"] >= mark + 10
                            for c in a_cols), 5.0, "A's subscribers get A's publishes")
            assert readyz(A.port)[0] == 503 and not redis_server.alive()

            redis_server.start()  # same port, nodes not restarted
            for n, s in nodes.items():
                await async_wait_until(lambda: readyz(s.port) == (200, "ready"), 15.0,
                                       "node %s /readyz 200 after the restart" % n)
            await async_wait_until(lambda: all(c.notices() for c, _ in cols), 10.0,
                                   "messages_dropped notice on every subscriber")
            threshold = pub.started()  # these publishes began after all resubscribes
            await async_wait_until(
                lambda: all(c.messages and c.messages[-1]["data"]["n"] >= threshold + 20
                            for c in b_cols), 10.0, "A->B delivery resumes")
        finally:
            total = pub.finish()
        assert not pub.bad, "HTTP publishes not accepted (202): %r" % pub.bad[:5]
        await async_wait_until(
            lambda: all(c.messages and c.messages[-1]["data"]["n"] == total - 1
                        for c, _ in cols), 10.0, "the last publish everywhere")
        await asyncio.sleep(0.3)  # room for a late duplicate to show up

        for c, base in cols:
            assert c.error is None, (c.name, c.error)
            ns = [m["data"]["n"] for m in c.messages]
            for m in c.messages:
                assert m["channel"] == chan and m["event"] == "e", m
            check_seq_run(c.messages, c.name, base)
            notices = c.notices()
            # One redis_reconnect notice from the node's own resubscribe; B's
            # subscribers may also get one publisher_dropped notice, from A
            # announcing the publishes that were in flight when Redis died.
            reasons = sorted(nt["reason"] for nt in notices)
            assert reasons in (["redis_reconnect"], ["publisher_dropped", "redis_reconnect"]), \
                (c.name, c.others)
            if c in a_cols:
                assert reasons == ["redis_reconnect"], (c.name, c.others)
            for nt in notices:
                assert set(nt) == {"type", "code", "message", "channel", "reason"}, nt
                assert nt["channel"] == chan, nt
                assert isinstance(nt["message"], str) and nt["message"], nt
            assert len(c.others) == len(notices), (c.name, c.others)
            if c in a_cols:
                # local delivery: every publish exactly once, in order
                assert ns == list(range(total)), (c.name, _gaps(ns, total))
            else:
                dups = len(ns) - len(set(ns))
                assert dups == 0, "%s: %d duplicates" % (c.name, dups)
                assert ns == sorted(ns), "%s: out of order" % c.name
                missing = sorted(set(range(threshold, total)) - set(ns))
                assert not missing, "%s: lost after recovery: %r" % (c.name, missing[:10])
        for n, s in nodes.items():
            m1 = get_metrics(s.port)
            assert m1["ringcast_redis_reconnects_total"] > \
                m0[n]["ringcast_redis_reconnects_total"], n
            assert m1["ringcast_redis_notices_total"] > m0[n]["ringcast_redis_notices_total"], n
            assert m1[UP_CMD] == 1 and m1[UP_SUB] == 1, n
            assert m1["ringcast_redis_subscriptions"] == 1, n
        with redis_server.client() as rc:
            assert rc.numsub(prefix + "ch:" + chan) == 2
        for c, _ in cols:
            await c.stop()
        await close_all([ws for ws, _, _ in a_subs + b_subs])

    run(go())


def _gaps(ns, total):
    missing = sorted(set(range(total)) - set(ns))
    return {"count": len(ns), "distinct": len(set(ns)), "missing": missing[:10]}


# ---- 6. Redis paused (SIGSTOP): shards keep serving, memory stays bounded ---

def test_redis_paused_shards_serve_and_memory_bounded(redis_server, start_server):
    prefix = "t6%d:" % redis_server.port
    backlog = 1048576
    # An ASan build keeps freed memory in its quarantine (256 MB by default),
    # which RSS would count; a small one keeps RSS about the live memory.
    # No effect on a build without ASan.
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=1"]))
    nodes = start_nodes(start_server, redis_server, "AB", prefix=prefix,
                        extra=("--redis-ping-ms", "500", "--redis-backlog-bytes", str(backlog)),
                        env={"ASAN_OPTIONS": asan})
    A, B = nodes["A"], nodes["B"]
    chan = "public:paused"
    pad = "x" * 16000
    n_msgs = 3072  # 48 MB through A while Redis is stopped

    async def publish_batch(pub, first, count):
        for i in range(first, first + count):
            await pub.send('{"type":"publish","id":%d,"channel":"%s","event":"big",'
                           '"data":{"n":%d,"p":"%s"}}' % (i, chan, i, pad))
        for i in range(first, first + count):
            r = await recv_json(pub, 10.0)
            assert r == {"type": "published", "id": i, "channel": chan}, r

    async def publish_paced(pub, a_col, first, count, batch=64):
        """Batches of 1 MB, each delivered locally before the next, so the
        local subscriber's send backlog stays small and RSS reflects Redis."""
        for b in range(first, first + count, batch):
            k = min(batch, first + count - b)
            await publish_batch(pub, b, k)
            await async_wait_until(lambda: len(a_col.messages) >= b + k, 10.0,
                                   "local delivery on A of message %d" % (b + k - 1))

    async def go():
        (a_ws, _, a_base), = (await shard_subscribers(A, chan, need=1))[:1]
        (b_ws, _, b_base), = (await shard_subscribers(B, chan, need=1))[:1]
        a_col, b_col = Collector(a_ws, "A"), Collector(b_ws, "B")
        pub = await ws_connect(A)
        await welcome(pub)
        pinger = await ws_connect(A)
        await welcome(pinger)
        warm = 64
        await publish_batch(pub, 0, warm)
        await async_wait_until(lambda: len(b_col.messages) == warm, 10.0,
                               "warm-up through Redis")
        dropped0 = metric(A, "ringcast_redis_publish_dropped_total")
        rss0 = vm_rss_bytes(A.pid)
        rss_max = [rss0]
        sampling = True

        async def sample():
            while sampling:
                rss_max[0] = max(rss_max[0], vm_rss_bytes(A.pid))
                await asyncio.sleep(0.02)

        redis_server.pause()
        t0 = time.monotonic()
        try:
            sampler = asyncio.ensure_future(sample())
            await publish_paced(pub, a_col, warm, n_msgs)
            # the shards still serve: a ping request, local delivery, a new handshake
            r = await request(pinger, {"type": "ping", "id": "during"}, timeout=2.0)
            assert r["type"] == "pong" and r["id"] == "during", r
            await async_wait_until(lambda: len(a_col.messages) == warm + n_msgs, 10.0,
                                   "local delivery on A while Redis is stopped")
            fresh = await ws_connect(A, open_timeout=3)
            await welcome(fresh)
            r = await request(fresh, {"type": "ping", "id": "fresh"}, timeout=2.0)
            assert r["type"] == "pong" and r["id"] == "fresh", r
            await fresh.close()
            # past the ping timeout (max(3*500, 2000) ms) the node gives up on Redis
            await async_wait_until(lambda: readyz(A.port)[0] == 503, 6.0,
                                   "A /readyz 503 while Redis is stopped")
            m = get_metrics(A.port)
            assert m["ringcast_redis_backlog_bytes"] <= backlog, m["ringcast_redis_backlog_bytes"]
            assert m["ringcast_redis_publish_dropped_total"] > dropped0, \
                "48 MB published against a 1 MiB backlog, nothing dropped"
            left = 4.0 - (time.monotonic() - t0)
            if left > 0:
                await asyncio.sleep(left)
            r = await request(pinger, {"type": "ping", "id": "late"}, timeout=2.0)
            assert r["type"] == "pong" and r["id"] == "late", r
            sampling = False
            await sampler
        finally:
            sampling = False
            redis_server.resume()

        published = n_msgs * (len(pad) + 40)
        growth = rss_max[0] - rss0
        assert growth < published / 2 and growth < 16 * 1048576, \
            "A's RSS grew by %d bytes (from %d) for %d bytes published" % (
                growth, rss0, published)

        for n, s in nodes.items():
            await async_wait_until(lambda: readyz(s.port) == (200, "ready"), 15.0,
                                   "node %s /readyz 200 after SIGCONT" % n)
        await async_wait_until(lambda: b_col.notices(), 10.0, "messages_dropped on B")
        nt = b_col.notices()[0]
        assert nt["channel"] == chan and nt["reason"] == "redis_reconnect", nt
        # Not necessarily B's last message: PUBLISHes that A wrote before it
        # gave the paused link up sit in Redis's socket buffer and may run
        # when Redis resumes, after newer ones (A counted them as dropped and
        # announced them; see PROTOCOL.md section 10). Up to tens of MB of
        # them reach B at once, which may overflow B's pub/sub output buffer
        # in Redis: Redis drops B's subscriber, B resubscribes (and tells its
        # clients). So A publishes a fresh marker every second until one
        # reaches B: delivery resumes by itself, whatever happened meanwhile.
        last = warm + n_msgs
        deadline = time.monotonic() + 30.0
        while True:
            await publish_batch(pub, last, 1)
            try:
                await async_wait_until(
                    lambda: any(m["data"]["n"] == last for m in b_col.messages), 1.0,
                    "A->B delivery after SIGCONT")
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    # what each node saw, to tell where delivery stopped
                    want = ("up", "publish_dropped", "backlog", "subscriptions",
                            "messages_in", "messages_out", "reconnects")
                    seen = {n: {k: v for k, v in get_metrics(s.port).items()
                                if k.startswith("ringcast_redis_") and
                                any(w in k for w in want)}
                            for n, s in nodes.items()}
                    raise AssertionError(
                        "no marker reached B in 30 s; B has %d messages, %d notices; "
                        "metrics %r\nA's log:\n%s\nB's log:\n%s" % (
                            len(b_col.messages), len(b_col.others), seen,
                            A.stderr()[-2500:], B.stderr()[-2500:]))
                last += 1
        # what reached B from the pause is not specified (lost or late); the
        # warm-up did, in order, and B's seq still counts +1 per delivery
        ns = [m["data"]["n"] for m in b_col.messages]
        assert ns[:warm] == list(range(warm))
        check_seq_run(b_col.messages, "B", b_base)
        assert [m["data"]["n"] for m in a_col.messages] == list(range(last + 1))
        check_seq_run(a_col.messages, "A", a_base)
        assert metric(A, "ringcast_redis_publish_dropped_total") > dropped0
        await a_col.stop()
        await b_col.stop()
        await close_all([a_ws, b_ws, pub, pinger])

    run(go())


# ---- 7. bad payloads from Redis -----------------------------------------------

BAD_PAYLOADS = [
    b"not json",
    b'{"data":1',                 # truncated
    b'[1,2]',                     # JSON, not an object
    b'{"event":"x"}',             # no data
    b'{"event":5,"data":1}',      # event not a string
    b'{"event":"x","data":"\xff"}',  # not UTF-8, so not JSON (and not a text frame)
]


def test_bad_payloads_counted_not_delivered(redis_server, start_server):
    prefix = "t7%d:" % redis_server.port
    A = start_nodes(start_server, redis_server, "A", prefix=prefix)["A"]
    chan = "public:bad"
    key = prefix + "ch:" + chan

    async def go():
        subs = await shard_subscribers(A, chan)
        before = get_metrics(A.port)
        with redis_server.client() as rc:
            for p in BAD_PAYLOADS:
                assert rc.publish(key, p) == 1, p
            assert rc.publish(key, '{"event":"ok","data":{"good":true}}') == 1
        for ws, shard, base in subs:
            check_message(await recv_json(ws, 5.0), chan, "ok", base + 1, {"good": True})
        await asyncio.gather(*(expect_silence(ws, 0.3) for ws, _, _ in subs))
        await async_wait_until(
            lambda: delta_of(A, before, "ringcast_redis_messages_in_total") >= 7, 5.0,
            "7 pub/sub messages counted in")
        after = get_metrics(A.port)
        assert after["ringcast_redis_bad_messages_total"] \
            - before["ringcast_redis_bad_messages_total"] == len(BAD_PAYLOADS)
        assert after["ringcast_redis_messages_in_total"] \
            - before["ringcast_redis_messages_in_total"] == len(BAD_PAYLOADS) + 1
        assert after["ringcast_redis_echoes_total"] == before["ringcast_redis_echoes_total"]
        await close_all([s[0] for s in subs])

    run(go())


# ---- 8. without --redis nothing changes ---------------------------------------

def test_without_redis_single_node(start_server):
    srv = start_server(*PUB_FLAGS)
    st, _, body = http_request(srv.port, "GET", "/metrics")
    assert st == 200
    text = body.decode()
    assert "ringcast_redis_up" not in text, [ln for ln in text.splitlines() if "redis" in ln]
    assert readyz(srv.port) == (200, "ready")

    async def go():
        subs = await shard_subscribers(srv, "public:solo")
        st, resp = srv.publish("public:solo", '{"k":"v"}', event="e")
        assert st == 202, (st, resp)
        for ws, shard, base in subs:
            check_message(await recv_json(ws, 5.0), "public:solo", "e", base + 1, {"k": "v"})
        await asyncio.gather(*(expect_silence(ws, 0.3) for ws, _, _ in subs))
        await close_all([s[0] for s in subs])

    run(go())


# ---- 9. one node's link down: its held or dropped publishes --------------------

@pytest.mark.parametrize("backlog", [0, 1 << 20])
def test_one_node_link_down_publishes_held_or_announced(redis_server, start_server, backlog):
    """Node A authenticates as its own ACL user; changing that user's password
    and killing its connections takes A's link down (reconnects fail AUTH)
    while B's stays up. A's publishes meanwhile are held (backlog 1 MiB) and
    reach B in order once A is back, or dropped (backlog 0), and then B's
    subscribers get one messages_dropped notice with reason
    publisher_dropped, and no message of the lost ones."""
    if not getattr(redis_server, "one_server", True):
        pytest.skip("ACL users are per server: a test of one Redis")
    user = "nodeA%d" % backlog
    with redis_server.client() as rc:
        rc.command("ACL", "SETUSER", user, "on", ">pw-ok", "~*", "&*", "+@all")
    prefix = "t9%d:" % redis_server.port
    chan = "public:lost"
    url_a = "redis://%s:pw-ok@127.0.0.1:%d" % (user, redis_server.port)
    A = start_server("--redis", url_a, "--node-id", "A9", "--redis-prefix", prefix,
                     "--redis-backlog-bytes", str(backlog), *PUB_FLAGS)
    B = start_server("--redis", redis_server.url, "--node-id", "B9", "--redis-prefix", prefix,
                     *PUB_FLAGS)
    for s in (A, B):
        wait_until(lambda: readyz(s.port) == (200, "ready"), 10.0, "node ready")

    async def go():
        (ws, _, base), = await shard_subscribers(B, chan, need=1)
        col = Collector(ws, "B")
        assert A.publish(chan, '{"n":0}', event="e")[0] == 202
        await async_wait_until(lambda: len(col.messages) == 1, 5.0, "message 0 on B")

        dropped0 = metric(A, "ringcast_redis_publish_dropped_total")
        with redis_server.client() as rc:
            rc.command("ACL", "SETUSER", user, "resetpass", ">pw-changed")
            # A's three connections: commands, subscriber, waiting rooms
            assert rc.command("CLIENT", "KILL", "USER", user) == 3
        await async_wait_until(lambda: readyz(A.port) == (503, "redis unreachable"), 5.0,
                               "A not ready while its link is down")
        for n in range(1, 6):
            assert A.publish(chan, '{"n":%d}' % n, event="e")[0] == 202
        assert readyz(B.port) == (200, "ready")
        # a 202 is the shard's; the relay counts the drop a moment later
        if backlog == 0:
            await async_wait_until(
                lambda: metric(A, "ringcast_redis_publish_dropped_total") - dropped0 == 5, 5.0,
                "A's five publishes counted as dropped")
        else:
            await asyncio.sleep(0.3)
        dropped = metric(A, "ringcast_redis_publish_dropped_total") - dropped0
        assert dropped == (5 if backlog == 0 else 0), dropped
        with redis_server.client() as rc:
            rc.command("ACL", "SETUSER", user, "resetpass", ">pw-ok")
        await async_wait_until(lambda: readyz(A.port) == (200, "ready"), 15.0,
                               "A ready again")
        assert A.publish(chan, '{"n":6}', event="e")[0] == 202
        await async_wait_until(lambda: col.messages and col.messages[-1]["data"]["n"] == 6,
                               5.0, "message 6 on B")
        await asyncio.sleep(0.3)  # room for anything that should not come
        got = [m["data"]["n"] for m in col.messages]
        seqs = [m["seq"] for m in col.messages]
        assert seqs == list(range(base + 1, base + 1 + len(got))), seqs
        if backlog:
            assert got == [0, 1, 2, 3, 4, 5, 6], got
            assert col.others == [], col.others
        else:
            assert got == [0, 6], got
            assert len(col.others) == 1, col.others
            nt = col.others[0]
            assert nt["type"] == "error" and nt["code"] == "messages_dropped", nt
            assert nt["channel"] == chan and nt["reason"] == "publisher_dropped", nt
            assert metric(B, "ringcast_redis_notices_total") == 1
        await col.stop()
        await ws.close()

    run(go())

