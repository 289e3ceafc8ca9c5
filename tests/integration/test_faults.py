"""Issue 6, part 4: faults injected into real processes (redis-server and
ringcast), each test asserting what was delivered and what the clients were
told. Expected behaviour comes from docs/PROTOCOL.md and docs/ADMISSION.md.

The whole list, with the cases that live in other modules:

| case | test | asserts |
|---|---|---|
| Redis SIGKILLed and restarted mid-broadcast | test_redis_cluster.py::test_redis_killed_and_restarted | local delivery exactly once in order; remote delivery no duplicates, in order, nothing lost after recovery; one redis_reconnect notice (plus at most one publisher_dropped); reconnect metrics; NUMSUB back |
| Redis paused (SIGSTOP) mid-broadcast | test_redis_cluster.py::test_redis_paused_shards_serve_and_memory_bounded | shards keep serving (ping, local delivery, new handshakes); /readyz 503 past the ping timeout; backlog bounded, drops counted; RSS bounded; redis_reconnect notice; delivery after SIGCONT |
| one node's Redis link down | test_redis_cluster.py::test_one_node_link_down_publishes_held_or_announced | held publishes arrive in order, or dropped ones are announced once (publisher_dropped) |
| leader SIGKILLed mid-admission | test_admission.py::test_2000_users_three_nodes_rate_cap_order_leader_killed | another node takes the lease within the lease time; ticket order, everybody admitted exactly once, tokens valid |
| one of two queue leaders SIGKILLed mid-admission | test_admission.py::test_two_leaders_two_queues_lease_moves_when_one_is_killed | two nodes lead one queue each at once (a lease per queue); the survivor takes the dead node's queue within the lease time and keeps its own; per queue, ticket order and everybody admitted exactly once, tokens valid |
| Redis paused during admission joins | test_admission.py::test_redis_unreachable_queue_unavailable_then_resumes | joins get queue_unavailable, HTTP API 503; resumes by itself on the same connections |
| Redis SIGKILLed and restarted mid-admission (append-only file, so the queue survives) | test_redis_killed_mid_admission_resumes_same_head | no admission while down, waiters stay connected, joins get queue_unavailable; the queue's data survives; admission continues from the same head: ticket order, each user admitted (and told) exactly once; a new join gets the next ticket |
| Redis paused (SIGSTOP) mid-admission past the ping timeout | test_redis_paused_mid_admission_past_ping_timeout | no admission while paused, admission link down, joins get queue_unavailable, waiters stay connected; after SIGCONT every user told exactly once, in ticket order, and Redis's active set is exactly the users told |
| direct-descriptor table full | test_descriptor_table_full_503_old_clients_unaffected | RLIMIT_NOFILE 64: new clients get 503 `server full: try another node` with Retry-After 5, counted in ringcast_handshakes_total{outcome="full"}; the HTTP API and /metrics get the same 503 while full; the old connections still ping, subscribe, receive; after closing some, new clients are accepted |
| a shard's relay queue full | test_relay_queue_full_overloaded_counted_nothing_lost | --queue-size 2 under a flood: refused publishes get `overloaded` (and are counted), the server stays up; subscribes all complete; every acknowledged publish reaches every subscriber exactly once, in each publisher's order, and nothing refused is delivered |
| a node SIGKILLed mid-broadcast across nodes | test_node_killed_mid_broadcast | the dead node's clients see the TCP connection end without a close frame; the other nodes' subscribers get every publish of the surviving node exactly once in order, and a gapless prefix of the dead node's; no notice; NUMSUB drops to the surviving nodes at once |
"""
import asyncio
import json
import resource
import socket
import threading
import time

import pytest
import websockets

from rchelp import (RawWS, encode_frame, get_metrics, http_request, msum, parse_metrics,
                    subscribe, welcome, ws_connect)
from redishelp import ChannelListener, Collector, RedisServer, async_wait_until, readyz, \
    wait_until
from test_admission import AENV, api, check_token, connect_user, join, nid, put_queue

PUB_FLAGS = ("--public", "public:*", "--anonymous-publish",
             "--msg-rate", "1000000", "--msg-burst", "65535")


def run(coro):
    return asyncio.run(coro)


def metric(srv, name):
    return msum(get_metrics(srv.port), name)


@pytest.fixture
def aof_redis(tmp_path):
    """A redis-server whose data survives SIGKILL (appendonly, fsync always).
    Request it before start_server so the nodes are stopped first."""
    d = tmp_path / "aof"
    d.mkdir()
    r = RedisServer(d, persist=True)
    try:
        yield r
    finally:
        r.close()


# ---- waiting rooms with Redis away ---------------------------------------------

class Waiter:
    """One user waiting on one node; a task records what it is told."""

    def __init__(self, name, node):
        self.name, self.node = name, node
        self.ws = None
        self.ticket = None
        self.admitted = []   # (monotonic receipt time, message)
        self.others = []     # everything else but queue.tick
        self.closed = False
        self.task = None

    async def start(self, srv, q):
        self.ws = await connect_user(srv, self.name)
        r = await join(self.ws, q)
        assert r["type"] == "queue.joined", (self.name, r)
        self.ticket = r["ticket"]
        self.task = asyncio.ensure_future(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                if m["type"] == "admitted":
                    self.admitted.append((time.monotonic(), m))
                elif m["type"] != "queue.tick":
                    self.others.append(m)
        except websockets.exceptions.ConnectionClosed:
            pass
        self.closed = True


def admitted_count(waiters):
    return sum(len(w.admitted) for w in waiters)


async def start_waiters(nodes, q, n):
    """n users, alternately on each node, joined one after the other:
    tickets 1..n."""
    names = sorted(nodes)
    ws = [Waiter("w%02d" % i, names[i % len(names)]) for i in range(n)]
    for w in ws:
        await w.start(nodes[w.node], q)
    assert [w.ticket for w in ws] == list(range(1, n + 1)), [w.ticket for w in ws]
    return ws


async def after_a_tick(lis, delay):
    """Returns delay seconds after the next tick the listener sees: the tick
    (script and publish) is done, the next one is far."""
    n0 = len(lis.items)
    await async_wait_until(lambda: len(lis.items) > n0, 3.0, "a tick", interval=0.01)
    await asyncio.sleep(delay)


def check_admissions(waiters, q, down_from, down_to):
    """Everybody told exactly once, with a valid token; nothing told while
    Redis was away; ticket order = admission order (expiry never decreases
    with the ticket, since each tick's expiry is later than the last)."""
    for w in waiters:
        assert len(w.admitted) == 1, (w.name, w.admitted)
        at, m = w.admitted[0]
        assert m["queue"] == q, m
        check_token(m["token"], w.name, q, m["expires"])
        assert not (down_from < at < down_to), \
            "%s admitted %.2fs into the outage" % (w.name, at - down_from)
        assert not w.closed, "%s lost its connection" % w.name
    by_ticket = sorted(waiters, key=lambda w: w.ticket)
    exps = [w.admitted[0][1]["expires"] for w in by_ticket]
    assert exps == sorted(exps), [(w.ticket, e) for w, e in zip(by_ticket, exps)]


def paused_queue_on_two_nodes(start_server, redis, q, tick_ms):
    """Nodes A and B on redis (ticks of tick_ms, Redis pings every 200 ms),
    queue q created paused (2 a tick), and a listener on its ticks:
    returns ({name: Server}, listener)."""
    nodes = {}
    for name in "AB":
        nodes[name] = start_server("--redis", redis.url, "--node-id", nid(name, redis),
                                   "--admission-tick-ms", str(tick_ms),
                                   "--redis-ping-ms", "200", env=AENV)
    for s in nodes.values():
        wait_until(lambda: readyz(s.port) == (200, "ready"), 10.0, "node ready")
    put_queue(nodes["A"], q, rate=2, max_active=1000, active_ttl=600, abandon_timeout=60,
              state="paused")
    return nodes, ChannelListener(redis.port, "rc:ch:queue:" + q)


def test_redis_killed_mid_admission_resumes_same_head(aof_redis, start_server):
    redis = aof_redis
    tick_ms, n = 500, 16
    q = "kq"
    nodes, lis = paused_queue_on_two_nodes(start_server, redis, q, tick_ms)
    A, B = nodes["A"], nodes["B"]
    st = {}

    async def go():
        waiters = await start_waiters(nodes, q, n)
        put_queue(B, q, state="open")
        await async_wait_until(lambda: admitted_count(waiters) >= 4, 10.0, "4 admitted")
        await after_a_tick(lis, 0.15)
        with redis.client() as rc:
            st["stats"] = rc.command("HMGET", "rc:q:{%s}:stats" % q, "head", "admitted_total")
            st["active"] = sorted(x.decode() for x in
                                  rc.command("ZRANGE", "rc:q:{%s}:active" % q, 0, -1))
        told = sorted(w.name for w in waiters if w.admitted)
        redis.kill()
        t_kill = time.monotonic()
        # what was told before the kill is exactly what Redis had recorded
        assert told == st["active"], (told, st["active"])
        k = len(told)
        assert 4 <= k <= n - 6 and st["stats"] == [b"%d" % k, b"%d" % k], (k, st)

        for s in (A, B):
            await async_wait_until(lambda: metric(s, "ringcast_admission_up") == 0, 5.0,
                                   "admission link down", interval=0.05)
        late = await connect_user(A, "late")
        for i in range(2):
            r = await join(late, q, rid=i)
            assert (r["type"], r.get("id"), r.get("code")) == \
                ("error", i, "queue_unavailable"), r
        st_, body = api(B, "GET", "/api/queues/" + q)
        assert st_ == 503 and body["code"] == "queue_unavailable", (st_, body)
        left = 2.5 - (time.monotonic() - t_kill)
        if left > 0:
            await asyncio.sleep(left)
        assert admitted_count(waiters) == k, "admissions while Redis was dead"
        assert not any(w.closed for w in waiters), "waiters lost their connections"

        redis.start()  # same port, same directory: the append-only file is read
        t_up = time.monotonic()
        with redis.client() as rc:
            # the line survived: the last ticket, everybody who waits, the
            # admitted ones (a tick may already have run: nothing goes back)
            assert rc.command("GET", "rc:q:{%s}:seq" % q) == b"%d" % n
            active = set(x.decode() for x in rc.command("ZRANGE", "rc:q:{%s}:active" % q, 0, -1))
            wait = set(x.decode() for x in rc.command("ZRANGE", "rc:q:{%s}:wait" % q, 0, -1))
            assert set(told) <= active, (told, active)
            assert active | wait == set(w.name for w in waiters), (active, wait)
        await async_wait_until(lambda: metric(A, "ringcast_admission_up") == 1, 10.0,
                               "admission link up again", interval=0.05)
        r = await join(late, q, rid=9)
        assert (r["type"], r.get("ticket")) == ("queue.joined", n + 1), r
        await async_wait_until(lambda: admitted_count(waiters) == n, 20.0, "all admitted",
                               interval=0.05)
        m = await asyncio.wait_for(_next_admitted(late), 10.0)
        check_token(m["token"], "late", q, m["expires"])
        await asyncio.sleep(1.2)  # room for a second admission to show up
        check_admissions(waiters, q, t_kill + 0.05, t_up)
        # the ones admitted after the restart came after the ones before
        first_after = min(w.ticket for w in waiters if w.admitted[0][0] > t_up)
        assert first_after == k + 1, (first_after, k)
        st_, body = api(A, "GET", "/api/queues/" + q)
        assert (st_, body["head"], body["admitted_total"], body["active"], body["waiting"],
                body["last_ticket"]) == (200, n + 1, n + 1, n + 1, 0, n + 1), body
        for w in waiters:
            await w.ws.close()
            await w.task
        await late.close()

    try:
        run(go())
    finally:
        lis.stop()


async def _next_admitted(ws):
    while True:
        m = json.loads(await ws.recv())
        if m["type"] == "admitted":
            return m


def test_redis_paused_mid_admission_past_ping_timeout(redis_server, start_server):
    redis = redis_server
    tick_ms, n = 500, 12
    q = "pq"
    nodes, lis = paused_queue_on_two_nodes(start_server, redis, q, tick_ms)
    A, B = nodes["A"], nodes["B"]

    async def go():
        waiters = await start_waiters(nodes, q, n)
        put_queue(A, q, state="open")
        await async_wait_until(lambda: admitted_count(waiters) >= 2, 10.0, "2 admitted")
        await after_a_tick(lis, 0.15)
        k = admitted_count(waiters)
        redis.pause()
        t_pause = time.monotonic()
        try:
            # the ping timeout is max(3 x 200 ms, 2 s)
            for s in (A, B):
                await async_wait_until(lambda: metric(s, "ringcast_admission_up") == 0, 5.0,
                                       "admission link down", interval=0.05)
            assert time.monotonic() - t_pause >= 1.5
            late = await connect_user(B, "late")
            r = await join(late, q, rid="j", timeout=8.0)
            assert (r["type"], r.get("id"), r.get("code")) == \
                ("error", "j", "queue_unavailable"), r
            left = 3.0 - (time.monotonic() - t_pause)
            if left > 0:
                await asyncio.sleep(left)
            assert admitted_count(waiters) == k, "admissions while Redis was stopped"
            assert not any(w.closed for w in waiters)
        finally:
            redis.resume()
        t_up = time.monotonic()
        await async_wait_until(lambda: admitted_count(waiters) == n, 20.0,
                               "every waiter told it is admitted (told %d of %d)"
                               % (admitted_count(waiters), n), interval=0.05)
        # The join answered queue_unavailable may still have reached Redis:
        # a node whose reconnect's TCP handshake completed against the
        # stopped Redis sends it, and answers queue_unavailable only at the
        # next ping timeout; Redis runs it after SIGCONT. Its outcome was
        # unknown, so, as PROTOCOL.md says, the user joins again, and gets
        # the place (or the admission) that join made, or a new one: the
        # next ticket either way.
        r = await join(late, q, rid="again")
        if r["type"] == "admitted":
            m_late = r
        else:
            assert (r["type"], r.get("ticket")) == ("queue.joined", n + 1), r
            m_late = await asyncio.wait_for(_next_admitted(late), 10.0)
        check_token(m_late["token"], "late", q, m_late["expires"])
        await asyncio.sleep(1.2)
        check_admissions(waiters, q, t_pause + 0.05, t_up)
        with redis.client() as rc:
            active = sorted(x.decode() for x in rc.command("ZRANGE", "rc:q:{%s}:active" % q,
                                                           0, -1))
            assert rc.command("GET", "rc:q:{%s}:seq" % q) == b"%d" % (n + 1)
        assert active == sorted([w.name for w in waiters] + ["late"]), \
            "admitted in Redis but never told: %r" % active
        await late.close()
        for w in waiters:
            await w.ws.close()
            await w.task

    try:
        run(go())
    finally:
        lis.stop()


# ---- the direct-descriptor table full -------------------------------------------

NOFILE = 64


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def test_descriptor_table_full_503_old_clients_unaffected(start_server):
    srv = start_server(*PUB_FLAGS, shards=1, preexec_fn=low_nofile)
    log = srv.stderr()
    assert "capacity %d connections: 1 shards x %d direct descriptors" % (NOFILE, NOFILE) \
        in log, log
    assert "slots=%d" % NOFILE in log, log
    full0 = get_metrics(srv.port).get('ringcast_handshakes_total{outcome="full"}', 0)
    ok0 = get_metrics(srv.port).get('ringcast_handshakes_total{outcome="ok"}', 0)
    old, refused = [], []
    try:
        while len(old) <= NOFILE:
            c = RawWS(srv.port, expect_status=None)
            if c.status != 101:
                refused.append(c)
                break
            assert json.loads(c.recv_msg())["type"] == "welcome"
            old.append(c)
        assert refused, "%d connections and never refused" % len(old)
        # some slots stay free to answer the refusal: fewer accepted than slots
        assert NOFILE // 4 <= len(old) < NOFILE, len(old)
        for _ in range(4):
            c = RawWS(srv.port, expect_status=None)
            refused.append(c)
            assert c.status == 503, c.status
        for c in refused:
            assert c.status == 503
            assert c.headers.get("retry-after") == "5", c.headers
            assert c.headers.get("connection", "").lower() == "close", c.headers
            body = c.buf
            c.sock.settimeout(2.0)
            try:
                while True:
                    b = c.sock.recv(4096)
                    if not b:
                        break
                    body += b
            except (socket.timeout, ConnectionResetError):
                pass
            # recv returned EOF (or reset): the server closed it
            assert body == b"server full: try another node\n", body
        # the old connections are unaffected: ping, subscribe, receive
        for i, c in enumerate(old):
            c.send_json({"type": "ping", "id": i})
            r = c.recv_json()
            assert (r["type"], r["id"]) == ("pong", i), r
        subs = old[:3]
        for i, c in enumerate(subs):
            c.send_json({"type": "subscribe", "id": "s%d" % i, "channel": "public:full"})
            r = c.recv_json()
            assert (r["type"], r["id"], r["seq"]) == ("subscribed", "s%d" % i, 0), r
        pub = old[-1]
        pub.send_json({"type": "publish", "id": "p", "channel": "public:full",
                       "data": {"k": 1}})
        assert pub.recv_json() == {"type": "published", "id": "p", "channel": "public:full"}
        for c in subs:
            m = c.recv_json()
            assert m.pop("from")["conn"].isdigit(), m  # the publisher, a client
            assert m == {"type": "message", "channel": "public:full",
                         "event": "message", "seq": 1, "data": {"k": 1}}
        # a new connection is refused before its request is read, so the
        # HTTP API and /metrics are refused too while the node is full
        st, hdrs, body = http_request(srv.port, "GET", "/metrics")
        assert (st, hdrs.get("retry-after"), body) == \
            (503, "5", b"server full: try another node\n"), (st, hdrs, body)
        refused_http = 1

        # room again after some leave
        for c in old[3:6]:
            c.send_frame(8, b"\x03\xe8")  # close 1000
            assert c.wait_close(5.0) == (1000, ""), c.close_reason
            c.close()
        old = old[:3] + old[6:]

        def try_metrics():
            st, _, body = http_request(srv.port, "GET", "/metrics")
            return parse_metrics(body.decode()) if st == 200 else None
        m = wait_until(try_metrics, 5.0, "GET /metrics answered once three left")
        assert m['ringcast_handshakes_total{outcome="full"}'] - full0 == \
            len(refused) + refused_http, m
        assert m['ringcast_handshakes_total{outcome="ok"}'] - ok0 == len(old) + 3, m

        def new_client():
            c = RawWS(srv.port, expect_status=None)
            if c.status == 101:
                return c
            c.close()
            return None
        fresh = wait_until(new_client, 5.0, "a new client accepted after three left")
        assert json.loads(fresh.recv_msg())["type"] == "welcome"
        st, body = srv.publish("public:full", '{"k":2}')
        assert st == 202, (st, body)
        for c in subs:
            assert c.recv_json()["data"] == {"k": 2}
        fresh.send_json({"type": "ping", "id": "fresh"})
        assert fresh.recv_json()["id"] == "fresh"
        old.append(fresh)
    finally:
        for c in old + refused:
            c.close()


# ---- a shard's relay queue full ----------------------------------------------------

def test_relay_queue_full_overloaded_counted_nothing_lost(start_server):
    srv = start_server("--queue-size", "2", *PUB_FLAGS, shards=2)
    chan = "public:flood"
    n_pubs, per_pub, n_subchans = 24, 60, 40

    subs = []
    shards = set()
    while len(shards) < 2 or len(subs) < 2:
        c = RawWS(srv.port)
        sh = json.loads(c.recv_msg())["shard"]
        if sh in shards and len(subs) >= 2:
            c.close()
            continue
        shards.add(sh)
        c.send_json({"type": "subscribe", "id": "s", "channel": chan})
        r = c.recv_json()
        assert (r["type"], r["seq"]) == ("subscribed", 0), r
        subs.append(c)
        if len(subs) > 8:
            raise AssertionError("all connections on one shard")
    pubs = [RawWS(srv.port) for _ in range(n_pubs)]
    for p in pubs:
        assert json.loads(p.recv_msg())["type"] == "welcome"
    joiner = RawWS(srv.port)
    json.loads(joiner.recv_msg())
    m0 = get_metrics(srv.port)

    # each publisher's messages in one write: a shard takes them in one batch,
    # far more than a queue of 2 holds
    bursts = []
    for i in range(n_pubs):
        bursts.append(b"".join(
            encode_frame(1, json.dumps(
                {"type": "publish", "id": k, "channel": chan, "data": {"p": i, "n": k}}))
            for k in range(per_pub)))
    sub_burst = b"".join(encode_frame(1, json.dumps(
        {"type": "subscribe", "id": j, "channel": "public:flood-%d" % j}))
        for j in range(n_subchans))
    for i, p in enumerate(pubs):
        p.send(bursts[i])
        if i == n_pubs // 2:
            joiner.send(sub_burst)

    acked = {}  # publisher -> [n acknowledged]
    refused = {}
    for i, p in enumerate(pubs):
        acked[i], refused[i] = [], []
        for _ in range(per_pub):
            r = p.recv_json(10.0)
            if r["type"] == "published":
                assert r == {"type": "published", "id": r["id"], "channel": chan}, r
                acked[i].append(r["id"])
            else:
                assert (r["type"], r["code"], r["channel"]) == ("error", "overloaded", chan), r
                assert isinstance(r["message"], str) and r["message"], r
                refused[i].append(r["id"])
        assert sorted(acked[i] + refused[i]) == list(range(per_pub)), (i, acked[i], refused[i])
    replies = [joiner.recv_json(10.0) for _ in range(n_subchans)]
    for r in replies:
        assert r == {"type": "subscribed", "id": r["id"],
                     "channel": "public:flood-%d" % r["id"], "seq": 0}, r
    got = sorted(r["id"] for r in replies)
    n_acked = sum(len(v) for v in acked.values())
    n_refused = sum(len(v) for v in refused.values())
    assert got == list(range(n_subchans)), got
    assert n_refused > 0, "the flood never filled a queue of 2"
    assert n_acked > 0
    print("relay queue full: %d publishes acknowledged, %d refused" % (n_acked, n_refused))

    m1 = get_metrics(srv.port)
    full = msum(m1, "ringcast_relay_queue_full_total") - msum(m0, "ringcast_relay_queue_full_total")
    assert full >= n_refused, (full, n_refused)
    st, _, _ = http_request(srv.port, "GET", "/healthz")
    assert st == 200 and srv.alive()

    # every acknowledged publish, once each, in each publisher's order;
    # nothing refused
    for si, c in enumerate(subs):
        msgs = [c.recv_json(10.0) for _ in range(n_acked)]
        assert [m["seq"] for m in msgs] == list(range(1, n_acked + 1)), si
        per = {}
        for m in msgs:
            assert (m["type"], m["channel"], m["event"]) == ("message", chan, "message"), m
            per.setdefault(m["data"]["p"], []).append(m["data"]["n"])
        for i in range(n_pubs):
            assert per.get(i, []) == acked[i], (si, i, per.get(i), acked[i], refused[i])
        c.sock.settimeout(0.5)
        try:
            extra = c.recv_frame(0.5)
            raise AssertionError("subscriber %d: more than the acknowledged: %r" % (si, extra))
        except socket.timeout:
            pass
    # the subscriptions made during the flood work
    joiner.send_json({"type": "ping", "id": "after"})
    assert joiner.recv_json()["id"] == "after"
    st, body = srv.publish("public:flood-7", '{"late":1}')
    assert st == 202
    assert joiner.recv_json() == {"type": "message", "channel": "public:flood-7",
                                  "event": "message", "seq": 1, "from": {"backend": True},
                                  "data": {"late": 1}}
    assert srv.alive()
    for c in subs + pubs + [joiner]:
        c.close()


# ---- a node SIGKILLed mid-broadcast across nodes ----------------------------------

class Publisher(threading.Thread):
    """POST /api/publish {"n": k} to one node until stopped or refused;
    records the n of every 202."""

    def __init__(self, srv, channel, src, gap=0.01):
        super().__init__(daemon=True)
        self.srv, self.channel, self.src, self.gap = srv, channel, src, gap
        self.acked = []
        self.failed = []
        self.stop_ev = threading.Event()

    def run(self):
        n = 0
        while not self.stop_ev.is_set():
            try:
                st, body = self.srv.publish(self.channel, '{"src":"%s","n":%d}' % (self.src, n),
                                           event="e")
            except OSError as exc:
                self.failed.append((n, repr(exc)))
                return
            if st == 202:
                self.acked.append(n)
            else:
                self.failed.append((n, st, body))
            n += 1
            time.sleep(self.gap)

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        assert not self.is_alive()


def test_node_killed_mid_broadcast(redis_server, start_server):
    redis = redis_server
    prefix = "tf%d:" % redis.port
    nodes = {}
    for name in "ABC":
        nodes[name] = start_server("--redis", redis.url, "--node-id",
                                   "f%s-%d" % (name, redis.port), "--redis-prefix", prefix,
                                   *PUB_FLAGS)
    for s in nodes.values():
        wait_until(lambda: readyz(s.port) == (200, "ready"), 10.0, "node ready")
    A, B, C = nodes["A"], nodes["B"], nodes["C"]
    chan = "public:kill"
    key = prefix + "ch:" + chan
    rc = redis.client()

    async def go():
        cols = {}
        for name in "ABC":
            for i in range(2):
                ws = await ws_connect(nodes[name])
                await welcome(ws)
                r = await subscribe(ws, chan, "s%d" % i)
                assert r["seq"] == 0, r
                cols[name + str(i)] = Collector(ws, name + str(i))
        assert rc.numsub(key) == 3
        pa, pc = Publisher(A, chan, "A"), Publisher(C, chan, "C")
        pa.start()
        pc.start()
        await async_wait_until(lambda: len(pc.acked) >= 50 and len(pa.acked) >= 50, 10.0,
                               "50 publishes on A and C")
        C.kill()
        C.exit_checked = True  # SIGKILLed on purpose
        t_kill = time.monotonic()
        # the kernel closes the dead node's sockets: Redis sees it at once
        wait_until(lambda: rc.numsub(key) == 2, 2.0, "NUMSUB 2 after C died")
        numsub_after = time.monotonic() - t_kill
        pc.join(5)
        await asyncio.sleep(1.0)  # A keeps publishing after the kill
        pa.finish()
        pc.finish()
        assert not pa.failed, pa.failed[:3]
        n_a = len(pa.acked)
        assert pa.acked == list(range(n_a))
        c_acked = len(pc.acked)
        assert pc.failed and pc.acked == list(range(c_acked)), pc.failed[:2]

        for name in ("A0", "A1", "B0", "B1"):
            await async_wait_until(
                lambda: any(m["data"] == {"src": "A", "n": n_a - 1}
                            for m in cols[name].messages), 10.0, "A's last publish on " + name)
        await asyncio.sleep(0.5)  # room for a duplicate or a late notice
        for name, col in cols.items():
            if name[0] == "C":
                # no close frame from a dead process: the connection just ends
                assert col.error is not None, name
                assert isinstance(col.error, websockets.exceptions.ConnectionClosedError), \
                    (name, col.error)
                assert col.error.rcvd is None, (name, col.error.rcvd)
                continue
            assert col.error is None, (name, col.error)
            assert col.others == [], (name, col.others)
            seqs = [m["seq"] for m in col.messages]
            assert seqs == list(range(1, len(seqs) + 1)), name
            for m in col.messages:
                assert (m["type"], m["channel"], m["event"]) == ("message", chan, "e"), m
            from_a = [m["data"]["n"] for m in col.messages if m["data"]["src"] == "A"]
            from_c = [m["data"]["n"] for m in col.messages if m["data"]["src"] == "C"]
            assert len(from_a) + len(from_c) == len(col.messages)
            # the surviving node's publishes: every one, once, in order
            assert from_a == list(range(n_a)), (name, len(from_a), n_a)
            # the dead node's: a gapless prefix of what it acknowledged, in
            # order (202 means queued for Redis; the queue died with it)
            assert from_c == list(range(len(from_c))), (name, from_c[-5:])
            assert 40 <= len(from_c) <= c_acked, (name, len(from_c), c_acked)
        for name in "AB":
            assert readyz(nodes[name].port) == (200, "ready")
        assert rc.numsub(key) == 2
        assert numsub_after < 1.0, numsub_after
        for col in cols.values():
            await col.stop()
            await col.ws.close()

    try:
        run(go())
    finally:
        rc.close()


# ---- a paused Redis is not ready -------------------------------------------------

def test_paused_redis_not_ready_one_notice(redis_server, start_server):
    """Redis SIGSTOPped for 6 s: once the ping timeout has noticed it, the
    node's reconnects (whose TCP handshakes the kernel completes for the
    stopped Redis) never count as ready, so /readyz answers 503 on every poll
    until Redis is back, a subscribe during the outage is answered at once
    (local delivery goes on), and each subscriber gets exactly one
    redis_reconnect notice for the whole outage."""
    srv = start_server("--redis", redis_server.url, "--redis-ping-ms", "200", *PUB_FLAGS)
    wait_until(lambda: readyz(srv.port) == (200, "ready"), 10.0, "node ready")

    async def go():
        subs = []
        for i in range(3):
            ws = await ws_connect(srv)
            await welcome(ws)
            await subscribe(ws, "public:out", "s%d" % i)
            subs.append(ws)
        redis_server.pause()
        t_pause = time.monotonic()
        try:
            # noticed within the ping timeout: max(3 x 200 ms, 2 s)
            await async_wait_until(lambda: readyz(srv.port)[0] == 503, 5.0, "readyz 503",
                                   interval=0.05)
            statuses = []
            late = await ws_connect(srv)
            await welcome(late)
            t0 = time.monotonic()
            r = await subscribe(late, "public:fresh", "late")
            answered = time.monotonic() - t0
            subs.append(late)
            while time.monotonic() - t_pause < 6.0:
                statuses.append(readyz(srv.port)[0])
                await asyncio.sleep(0.05)
            assert answered < 0.5, "a subscribe during the outage took %.2f s" % answered
            assert statuses and set(statuses) == {503}, statuses
        finally:
            redis_server.resume()
        await async_wait_until(lambda: readyz(srv.port) == (200, "ready"), 15.0, "ready again",
                               interval=0.05)
        await asyncio.sleep(1.0)
        for i, ws in enumerate(subs):
            notices = []
            try:
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    if m.get("code") == "messages_dropped":
                        notices.append(m)
            except asyncio.TimeoutError:
                pass
            assert len(notices) == 1 and notices[0]["reason"] == "redis_reconnect", (i, notices)
            await ws.close()
    run(go())
