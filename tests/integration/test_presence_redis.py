"""Presence with Redis, across three nodes: who is here and how many, from
any node; join and leave events that cross nodes; distinct users counted
once whatever node their connections are on; a SIGKILLed node's members
gone (and announced as leaves) within --presence-ttl plus one refresh
period; a Redis restarted empty refilled by the nodes' refreshes; and a
clear error while Redis is away."""
import asyncio
import json
import time

from rchelp import API_KEY, get_metrics, http_request, recv_json, subscribe, token, welcome, ws_connect
from redishelp import readyz, wait_until
from test_presence import ask, events, members, stats
from test_redis_cluster import start_nodes

TTL = 3  # seconds: a dead node's members go within TTL + TTL/3
FLAGS = ("--presence", "room:* join_leave", "--public", "room:*", "--presence-ttl", str(TTL))


def run(coro):
    return asyncio.run(coro)


async def connect(srv, user=None, **claims):
    ws = await ws_connect(srv, "/ws?token=" + token(sub=user, **claims) if user else "/ws")
    w = await welcome(ws)
    return ws, w


def test_presence_across_nodes(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "ABC", pub_flags=FLAGS)
    A, B, C = nodes["A"], nodes["B"], nodes["C"]

    async def go():
        chan = "room:x"
        watch, ww = await connect(A, "watcher")
        await subscribe(watch, chan)
        # alice on A and on B (one user, two connections), bob on C, someone anonymous on B.
        a1, wa1 = await connect(A, "alice", info={"name": "Alice"})
        a2, wa2 = await connect(B, "alice", info={"name": "Alice"})
        b, wb = await connect(C, "bob")
        n, wn = await connect(B)
        for ws in (a1, a2, b, n):
            await subscribe(ws, chan)
        joins = await events(watch, 4, own=ww)
        assert {(j["member"]["node"], j["member"]["conn"]) for j in joins} == {
            (w["node"], w["conn"]) for w in (wa1, wa2, wb, wn)}, joins
        assert len({j["member"]["node"] for j in joins}) == 3, joins
        # The same answer from every node.
        for ws in (watch, a2, b):
            assert await stats(ws, chan) == (5, 3), ws
        ms, pages = await members(n, chan, limit=2)
        assert pages == 3
        got = {(m["node"], m["conn"]): m for m in ms}
        assert len(ms) == 5 and set(got) == {(w["node"], w["conn"])
                                             for w in (ww, wa1, wa2, wb, wn)}
        assert got[(wa2["node"], wa2["conn"])] == {"user": "alice", "conn": wa2["conn"],
                                                   "node": wa2["node"], "info": {"name": "Alice"}}
        assert got[(wn["node"], wn["conn"])]["user"] is None
        # The HTTP API of any node says the same.
        key = {"Authorization": "Bearer " + API_KEY}
        status, _, body = http_request(C.port, "GET", "/api/channels/room:x/presence-stats",
                                       headers=key)
        assert status == 200 and json.loads(body)["connections"] == 5, body
        status, _, body = http_request(B.port, "GET", "/api/channels/room:x/presence",
                                       headers=key)
        assert status == 200 and len(json.loads(body)["members"]) == 5, body

        # alice leaves on B: still a user (on A); then on A: gone.
        await a2.close()
        ev = await events(watch, 1)
        assert ev[0]["type"] == "leave" and ev[0]["member"]["conn"] == wa2["conn"], ev
        assert await stats(b, chan) == (4, 3)
        r = await ask(a1, {"type": "unsubscribe", "id": "u", "channel": chan})
        assert r["type"] == "unsubscribed", r
        ev = await events(watch, 1)
        assert ev[0]["type"] == "leave" and ev[0]["member"]["user"] == "alice", ev
        assert await stats(b, chan) == (3, 2)
        m = get_metrics(A.port)
        assert m["ringcast_presence_joins_total"] == 2  # watcher and alice on A
        assert m["ringcast_presence_members"] == 1
        assert m["ringcast_presence_redis_calls_total"] >= 4
        for ws in (watch, a1, b, n):
            await ws.close()

    run(go())


def test_dead_node_members_expire(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "ABC", pub_flags=FLAGS)
    A, B, C = nodes["A"], nodes["B"], nodes["C"]

    async def go():
        chan = "room:dead"
        watch, ww = await connect(A, "watcher")
        await subscribe(watch, chan)
        doomed = []
        for i in range(3):
            ws, w = await connect(B, "b%d" % i)
            await subscribe(ws, chan)
            doomed.append(w["conn"])
        c, wc = await connect(C, "carol")
        await subscribe(c, chan)
        await events(watch, 4, own=ww)
        assert await stats(c, chan) == (5, 5)
        # Several refresh periods go by: nobody alive expires.
        await asyncio.sleep(TTL * 1.5)
        assert await stats(c, chan) == (5, 5)
        B.kill()
        B.exit_checked = True  # SIGKILLed on purpose
        killed = time.monotonic()
        # Within TTL plus one refresh period (TTL/3) of A or C, and a little slack.
        leaves = await events(watch, 3, timeout=TTL + TTL / 3 + 3)
        took = time.monotonic() - killed
        assert {e["member"]["conn"] for e in leaves} == set(doomed), leaves
        assert all(e["type"] == "leave" for e in leaves)
        assert took <= TTL + TTL / 3 + 3, took
        assert await stats(c, chan) == (2, 2)
        ms, _ = await members(watch, chan)
        assert {m["conn"] for m in ms} == {ww["conn"], wc["conn"]}
        await watch.close()
        await c.close()

    run(go())


def test_redis_restarted_empty_is_refilled(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "AB", pub_flags=FLAGS)
    A, B = nodes["A"], nodes["B"]

    async def go():
        chan = "room:refill"
        a, _ = await connect(A, "ann")
        b, _ = await connect(B, "ben")
        for ws in (a, b):
            await subscribe(ws, chan)
        assert await stats(a, chan) == (2, 2)
        redis_server.restart()  # no persistence: every key is gone
        # While it is away or empty, a question gets an answer, never a hang.
        # Once both nodes are back, their refreshes put their members back.
        for srv in (A, B):
            wait_until(lambda: readyz(srv.port) == (200, "ready"), 15.0, "node back on Redis")

        deadline = time.monotonic() + TTL + 8
        last = None
        while time.monotonic() < deadline:
            last = await ask(a, {"type": "presence_stats", "id": "r", "channel": chan})
            while last.get("code") == "messages_dropped":  # the reconnect's notice
                last = await recv_json(a)
            assert last["type"] in ("presence_stats", "error") and last["id"] == "r", last
            if last["type"] == "error":
                assert last["code"] == "presence_unavailable", last
            elif (last["connections"], last["users"]) == (2, 2):
                break
            await asyncio.sleep(0.1)
        assert last["type"] == "presence_stats" and last["connections"] == 2, last
        await a.close()
        await b.close()

    run(go())


def test_redis_away_is_an_error(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "A", pub_flags=FLAGS)
    A = nodes["A"]

    async def go():
        a, _ = await connect(A, "ann")
        await subscribe(a, "room:away")
        redis_server.kill()
        wait_until(lambda: readyz(A.port)[0] == 503, 10.0, "node sees Redis gone")
        for q in ({"type": "presence_stats", "id": 1, "channel": "room:away"},
                  {"type": "presence", "id": 2, "channel": "room:away"}):
            r = await ask(a, q)
            assert r["type"] == "error" and r["code"] == "presence_unavailable", r
            assert r["id"] == q["id"]
        status, headers, body = http_request(A.port, "GET",
                                             "/api/channels/room:away/presence-stats",
                                             headers={"Authorization": "Bearer " + API_KEY})
        assert status == 503 and b"presence_unavailable" in body, (status, body)
        m = get_metrics(A.port)
        assert m["ringcast_presence_unavailable_total"] >= 3
        await a.close()

    run(go())
