"""Waiting rooms seen from a user's tabs: one queue per connection, a leave
that reaches every tab, the abandon grace the docs promise, a useful first
estimate, and requests answered in order (docs/ADMISSION.md,
docs/PROTOCOL.md sections 12 and 4)."""
import asyncio
import json
import math
import time

from redishelp import async_wait_until, wait_until
from test_admission import connect_user, join, next_of, place, put_queue, start_nodes, wait_ticked


def run(coro):
    return asyncio.run(coro)


def test_second_join_of_another_queue_back_to_back_already_waiting(redis_server, start_server):
    srv = start_nodes(start_server, redis_server, "A", tick_ms=200)["A"]
    put_queue(srv, "qa", state="paused")
    put_queue(srv, "qb", state="paused")
    rc = redis_server.client()

    async def go():
        ws = await connect_user(srv, "twice")
        # both sent before either is answered
        await ws.send(json.dumps({"type": "queue.join", "id": 1, "queue": "qa"}))
        await ws.send(json.dumps({"type": "queue.join", "id": 2, "queue": "qb"}))
        r1 = await next_of(ws, {"queue.joined", "error"})
        r2 = await next_of(ws, {"queue.joined", "error"})
        assert (r1["type"], r1["id"], r1["queue"]) == ("queue.joined", 1, "qa"), r1
        assert (r2["type"], r2["id"], r2["code"]) == ("error", 2, "already_waiting"), r2
        # the second queue never got the user: no place wasted there
        assert rc.command("ZSCORE", "rc:q:{qb}:wait", "twice") is None
        assert rc.command("ZSCORE", "rc:q:{qa}:wait", "twice") == b"1"
        # and leaving qa, then joining qb, works
        await ws.send(json.dumps({"type": "queue.leave", "id": 3, "queue": "qa"}))
        await ws.send(json.dumps({"type": "queue.join", "id": 4, "queue": "qb"}))
        r3 = await next_of(ws, {"queue.left", "error"})
        r4 = await next_of(ws, {"queue.joined", "error"})
        assert (r3["type"], r3["id"]) == ("queue.left", 3), r3
        assert (r4["type"], r4["id"], r4["queue"]) == ("queue.joined", 4, "qb"), r4
        await ws.close()
    run(go())


def test_leave_from_one_tab_reaches_every_tab_on_every_node(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "AB", tick_ms=200)
    A, B = nodes["A"], nodes["B"]
    put_queue(A, "sale", state="paused", rate=5)
    rc = redis_server.client()

    async def go():
        # someone ahead, so that the head stays below the user's ticket
        first = await connect_user(A, "first")
        await join(first, "sale")
        tabs = [await connect_user(A, "u"), await connect_user(A, "u"),
                await connect_user(B, "u")]
        for i, t in enumerate(tabs):
            r = await join(t, "sale", rid=10 + i)
            assert (r["type"], r["ticket"]) == ("queue.joined", 2), r
        wait_ticked(redis_server, "sale")
        # tab 0 leaves: it gets its reply; every other tab, on A and on B, is told
        await tabs[0].send(json.dumps({"type": "queue.leave", "id": 99, "queue": "sale"}))
        r = await next_of(tabs[0], {"queue.left"})
        assert r == {"type": "queue.left", "id": 99, "queue": "sale"}, r
        for t in tabs[1:]:
            m = await next_of(t, {"queue.left", "admitted", "queue.joined"}, timeout=5.0)
            assert m == {"type": "queue.left", "queue": "sale", "reason": "left_elsewhere"}, m
        assert rc.command("ZSCORE", "rc:q:{sale}:wait", "u") is None
        # the queue opens: the user is never admitted, no tab hears of the
        # queue again (no position, no stale reply, no token)
        put_queue(A, "sale", state="open")
        m = await next_of(first, {"admitted"}, timeout=5.0)
        assert m["type"] == "admitted"
        got = []

        async def drain(t):
            try:
                while True:
                    got.append(json.loads(await asyncio.wait_for(t.recv(), 1.5)))
            except asyncio.TimeoutError:
                pass
        await asyncio.gather(*(drain(t) for t in tabs))
        assert got == [], got
        assert rc.command("ZSCORE", "rc:q:{sale}:active", "u") is None
        assert rc.command("ZSCORE", "rc:q:{sale}:wait", "u") is None
        for t in tabs + [first]:
            await t.close()
    run(go())


def test_user_who_left_and_rejoins_keeps_the_new_place(redis_server, start_server):
    """A queue.left for an old ticket does not touch a place taken since."""
    nodes = start_nodes(start_server, redis_server, "AB", tick_ms=200)
    A, B = nodes["A"], nodes["B"]
    put_queue(A, "re", state="paused")

    async def go():
        a = await connect_user(A, "v")
        assert (await join(a, "re"))["ticket"] == 1
        await a.send(json.dumps({"type": "queue.leave", "id": 2, "queue": "re"}))
        assert (await next_of(a, {"queue.left"}))["id"] == 2
        b = await connect_user(B, "v")
        r = await join(b, "re", rid=3)
        assert (r["type"], r["ticket"]) == ("queue.joined", 2), r
        # b keeps waiting with ticket 2 (first in line now: ticket 1 left)
        for _ in range(3):
            m = await next_of(b, {"queue.tick", "queue.left"}, timeout=3.0)
            assert m["type"] == "queue.tick" and place(2, m) == (1, None), m
        await a.close()
        await b.close()
    run(go())


def test_abandon_grace_is_the_whole_timeout(redis_server, start_server):
    """abandon_timeout 5 s: waiters back after 4.5 s keep their tickets; one
    who does not come back is removed, but not before 5 s have passed. With
    16 waiters on the node, each one's seen time is refreshed only every
    second or so, so the grace must not count from the last refresh."""
    srv = start_nodes(start_server, redis_server, "A", tick_ms=200)["A"]
    put_queue(srv, "g", state="paused", abandon_timeout=5)
    rc = redis_server.client()
    users = ["w%02d" % i for i in range(16)]
    back, gone = users[:8], users[8]

    async def go():
        ws = {}
        for u in users:
            ws[u] = await connect_user(srv, u)
            await join(ws[u], "g")
        wait_ticked(redis_server, "g")
        # let the paced refreshes run a few rounds first
        await asyncio.sleep(3.0)
        for u in back + [gone]:
            await ws[u].close()
        t0 = time.monotonic()
        await asyncio.sleep(4.5)
        for u in back:
            assert rc.command("ZSCORE", "rc:q:{g}:wait", u) is not None, \
                "%s lost its place %.1f s after disconnecting" % (u, time.monotonic() - t0)
        for u in back:
            ws[u] = await connect_user(srv, u)
            r = await join(ws[u], "g")
            assert (r["type"], r["ticket"]) == ("queue.joined", users.index(u) + 1), r
        await async_wait_until(lambda: rc.command("ZSCORE", "rc:q:{g}:wait", gone) is None,
                               5.0, "the waiter who did not come back removed")
        waited = time.monotonic() - t0
        assert waited >= 5.0, "removed %.2f s after disconnecting" % waited
        assert int(rc.command("ZCARD", "rc:q:{g}:wait")) == 15
        for u in users:
            if u != gone:
                await ws[u].close()
    run(go())


def test_first_estimate_uses_the_configured_rate(redis_server, start_server):
    tick_ms = 200
    srv = start_nodes(start_server, redis_server, "A", tick_ms=tick_ms)["A"]
    # created open, joined before its first tick has run
    put_queue(srv, "fresh", rate=2, max_active=1000)
    rc = redis_server.client()

    async def go():
        conns = []
        for i in range(5):
            ws = await connect_user(srv, "e%d" % i)
            r = await join(ws, "fresh")
            conns.append(ws)
            head = int(rc.command("HGET", "rc:q:{fresh}:stats", "head") or b"0")
            pos = r["ticket"] - head
            # the estimate is never missing, and before any measurement it
            # is the configured rate's: ceil(position / 2 per tick) ticks
            assert r["eta"] is not None, r
            assert r["eta"] <= math.ceil(max(pos, 1) / 2 * tick_ms / 1000.0) + 1, (r, head)
        for ws in conns:
            await ws.close()
    run(go())
    # the smoothed rate starts at the configured one, not at zero
    wait_until(lambda: rc.command("HGET", "rc:q:{fresh}:stats", "ewma") is not None, 5.0,
               "ewma written")
    assert float(rc.command("HGET", "rc:q:{fresh}:stats", "ewma")) >= 1.5


def test_leave_while_redis_is_away_says_so(redis_server, start_server):
    """A leave that Redis could not take is not answered queue.left (the
    line may still hold the user): queue_unavailable, with its id."""
    srv = start_nodes(start_server, redis_server, "A", tick_ms=200)["A"]
    put_queue(srv, "away", state="paused")

    async def go():
        ws = await connect_user(srv, "stuck")
        assert (await join(ws, "away"))["type"] == "queue.joined"
        redis_server.kill()
        await async_wait_until(lambda: srv.metrics()["ringcast_admission_up"] == 0, 10.0,
                               "admission link down")
        await ws.send(json.dumps({"type": "queue.leave", "id": 5, "queue": "away"}))
        r = await next_of(ws, {"queue.left", "error"})
        assert (r["type"], r["id"], r["code"]) == ("error", 5, "queue_unavailable"), r
        await ws.close()
    run(go())


def test_new_queue_ticked_by_the_next_tick(redis_server, start_server):
    """A queue created on a node is ticked by that node's next tick, which
    takes the queue's lease (nobody holds it yet), not only by the one after
    (which first lists it in the index)."""
    from redishelp import ChannelListener
    srv = start_nodes(start_server, redis_server, "A", tick_ms=1000)["A"]
    wait_until(lambda: srv.metrics()["ringcast_admission_up"] == 1, 10.0, "admission link up")
    assert srv.metrics()["ringcast_admission_leader"] == 0  # no queue, no lease
    lis = ChannelListener(redis_server.port, "rc:ch:queue:soon")
    try:
        # just after a tick, so that none is in flight while the queue is made
        n0 = srv.metrics()["ringcast_admission_ticks_total"]
        wait_until(lambda: srv.metrics()["ringcast_admission_ticks_total"] > n0, 3.0, "a tick",
                   interval=0.01)
        put_queue(srv, "soon", rate=5)
        n1 = srv.metrics()["ringcast_admission_ticks_total"]
        wait_until(lambda: lis.items, 5.0, "the queue's first tick")
        assert srv.metrics()["ringcast_admission_ticks_total"] == n1 + 1
        wait_until(lambda: (srv.metrics()["ringcast_admission_leader"],
                            srv.metrics()["ringcast_admission_leader_queues"]) == (1, 1),
                   3.0, "the node leads the queue")
    finally:
        lis.stop()
