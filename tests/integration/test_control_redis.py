"""Server-side control from backends, across three nodes and a real Redis:
subscribe and unsubscribe a user's connections on every node, disconnect a
user everywhere or one connection (by an event's reply address) with a code
and a reason; the same on one node without Redis; bad commands refused."""
import asyncio
import json

import websockets

from rchelp import API_KEY, expect_silence, http_request, recv_json, request, token, welcome, ws_connect
from test_redis_cluster import start_nodes

FLAGS = ("--event-stream", "seat:* seats", "--public", "room:*")
KEY = {"Authorization": "Bearer " + API_KEY}


def run(coro):
    return asyncio.run(coro)


async def connect(srv, user):
    ws = await ws_connect(srv, "/ws?token=" + token(sub=user))
    return ws, await welcome(ws)


def api(srv, path, body):
    status, _, out = http_request(srv.port, "POST", path, body=json.dumps(body).encode(),
                                  headers=KEY)
    return status, out


async def closed_with(ws, timeout=5.0):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.exceptions.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else None


def test_control_across_nodes(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "ABC", pub_flags=FLAGS)
    A, B, C = nodes["A"], nodes["B"], nodes["C"]

    async def go():
        a1, _ = await connect(A, "alice")
        a2, _ = await connect(B, "alice")
        b, wb = await connect(C, "bob")
        assert api(C, "/api/subscribe", {"user": "alice", "channel": "room:srv"})[0] == 202
        await asyncio.sleep(0.5)  # the command reaches every node, the joins reach Redis
        status, _ = api(A, "/api/publish", {"channel": "room:srv", "data": "hi"})
        assert status == 202
        for ws in (a1, a2):
            m = await recv_json(ws)
            assert m["type"] == "message" and m["channel"] == "room:srv" and m["data"] == "hi", m
        await expect_silence(b)
        # Unsubscribed by the server: told, and nothing more arrives.
        assert api(B, "/api/unsubscribe", {"user": "alice", "channel": "room:srv"})[0] == 202
        for ws in (a1, a2):
            m = await recv_json(ws)
            assert m == {"type": "unsubscribed", "channel": "room:srv"}, m
        api(A, "/api/publish", {"channel": "room:srv", "data": "again"})
        await expect_silence(a1)
        await expect_silence(a2)
        # One connection, by the address its event carried.
        cli = redis_server.client()
        r = await request(b, {"type": "event", "id": 1, "event": "seat:x", "data": 1})
        assert r["type"] == "event_ack", r
        entry = cli.command("XRANGE", "rc:ev:seats", "-", "+")[-1][1]
        f = dict(zip([x.decode() for x in entry[0::2]], [x.decode() for x in entry[1::2]]))
        assert api(A, "/api/disconnect", {"conn": f["reply"]})[0] == 202
        assert await closed_with(b) == (4003, "disconnected by the server")
        # A user everywhere, with a code and a reason.
        assert api(B, "/api/disconnect", {"user": "alice", "code": 4100,
                                          "reason": "banned"})[0] == 202
        assert await closed_with(a1) == (4100, "banned")
        assert await closed_with(a2) == (4100, "banned")

    run(go())


def test_control_on_one_node_and_bad_commands(start_server):
    srv = start_server("--public", "room:*")

    async def go():
        c, _ = await connect(srv, "carol")
        d, _ = await connect(srv, "dave")
        for path, body in [("/api/disconnect", {}),
                           ("/api/disconnect", {"user": "carol", "conn": "1:1:x"}),
                           ("/api/disconnect", {"user": "carol", "code": 1000}),
                           ("/api/disconnect", {"user": "carol", "code": 5000}),
                           ("/api/disconnect", {"user": "carol", "reason": "x" * 121}),
                           ("/api/disconnect", {"conn": "nope"}),
                           ("/api/subscribe", {"user": "carol"}),
                           ("/api/subscribe", {"user": "carol", "channel": "queue:x"}),
                           ("/api/subscribe", {"user": "carol", "channel": "_rc.ctl"}),
                           ("/api/unsubscribe", {"user": "carol", "channel": "bad name"})]:
            status, out = api(srv, path, body)
            assert status == 400 and b"bad_request" in out, (path, body, status, out)
        status, _, _ = http_request(srv.port, "POST", "/api/disconnect", body=b"{}")
        assert status in (401, 403)
        assert api(srv, "/api/subscribe", {"user": "carol", "channel": "room:1"})[0] == 202
        await asyncio.sleep(0.2)
        api(srv, "/api/publish", {"channel": "room:1", "data": 1})
        m = await recv_json(c)
        assert m["type"] == "message" and m["data"] == 1, m
        assert api(srv, "/api/disconnect", {"user": "carol"})[0] == 202
        assert await closed_with(c) == (4003, "disconnected by the server")
        r = await request(d, {"type": "ping", "id": 1})
        assert r["type"] == "pong"
        await d.close()

    run(go())
