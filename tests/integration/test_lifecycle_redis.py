"""The lifecycle stream, across three nodes and a real Redis: connect and
disconnect events with the user, connection and reply address the server
knows; disconnects for a clean close (its code and reason), an aborted
connection (1006), a server-side disconnect, and a SIGKILLed node's
connections, written by the others within --lifecycle-timeout plus a
heartbeat."""
import asyncio
import socket
import struct
import time

from rchelp import get_metrics, request, token, welcome, ws_connect
from test_redis_cluster import start_nodes

TIMEOUT = 2
FLAGS = ("--lifecycle-stream", "life", "--lifecycle-timeout", str(TIMEOUT), "--public", "room:*",
         "--lifecycle-subscriptions", "--no-user-channels")
STREAM = "rc:lc:{lifecycle}:life"


def run(coro):
    return asyncio.run(coro)


def entries(cli):
    out = []
    for eid, kv in cli.command("XRANGE", STREAM, "-", "+"):
        kv = [x.decode() for x in kv]
        out.append(dict(zip(kv[0::2], kv[1::2])))
    return out


async def wait_for(cli, pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [e for e in entries(cli) if pred(e)]
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError("no lifecycle entry: %s; stream: %r; keys %r; nodes %r" % (
        what, entries(cli), cli.command("KEYS", "*"),
        cli.command("ZRANGE", "rc:lc:{lifecycle}:nodes", "0", "-1", "WITHSCORES")))


def test_connects_and_disconnects(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "ABC", pub_flags=FLAGS)
    A, B, C = nodes["A"], nodes["B"], nodes["C"]
    cli = redis_server.client()

    async def go():
        a = await ws_connect(A, "/ws?token=" + token(sub="alice"))
        wa = await welcome(a)
        b = await ws_connect(B, "/ws?token=" + token(sub="bob"))
        wb = await welcome(b)
        c1 = await ws_connect(C, "/ws?token=" + token(sub="carol"))
        wc1 = await welcome(c1)
        c2 = await ws_connect(C, "/ws")
        wc2 = await welcome(c2)
        for w in (wa, wb, wc1, wc2):
            got = await wait_for(cli, lambda e, w=w: e["type"] == "connect" and
                                 e["conn"] == w["conn"] and e["node"] == w["node"], 5,
                                 "connect of %r" % w)
            assert got[0]["user"] == (w["user"] or "") and got[0]["reply"].startswith(
                w["conn"] + ":") and got[0]["reply"].endswith(":" + w["node"])
        # Subscribe and unsubscribe, by the client and by the server.
        await request(a, {"type": "subscribe", "id": 1, "channel": "room:1"})
        await request(a, {"type": "unsubscribe", "id": 2, "channel": "room:1"})
        await request(a, {"type": "subscribe", "id": 3, "channel": "room:2"})
        got = await wait_for(cli, lambda e: e["user"] == "alice" and "channel" in e, 5,
                             "alice's subscriptions")
        await asyncio.sleep(0.3)
        subs = [(e["type"], e["channel"]) for e in entries(cli)
                if e["user"] == "alice" and "channel" in e]
        assert subs == [("subscribe", "room:1"), ("unsubscribe", "room:1"),
                        ("subscribe", "room:2")], subs
        # A clean close: the client's code and reason (and no unsubscribe: the
        # disconnect says it).
        await a.close(code=4321, reason="bye now")
        e = (await wait_for(cli, lambda e: e["type"] == "disconnect" and e["user"] == "alice",
                            5, "alice's disconnect"))[0]
        assert (e["code"], e["reason"], e["cause"]) == ("4321", "bye now", "closed"), e
        # An aborted connection: the TCP connection just goes.
        b.transport.abort()
        e = (await wait_for(cli, lambda e: e["type"] == "disconnect" and e["user"] == "bob",
                            5, "bob's disconnect"))[0]
        assert e["code"] == "1006" and e["cause"] == "closed", e
        # A node SIGKILLed: the others write its connections' disconnects.
        C.kill()
        C.exit_checked = True  # SIGKILLed on purpose
        killed = time.monotonic()
        gone = await wait_for(cli, lambda e: e["type"] == "disconnect" and e["node"] == wc1["node"]
                              and e["cause"] == "node_lost", TIMEOUT + 4, "C's disconnects")
        await asyncio.sleep(1.2)  # a beat takes up to 1000 at a time: both are in one
        gone = [e for e in entries(cli) if e["type"] == "disconnect" and e["node"] == wc1["node"]]
        assert sorted(e["conn"] for e in gone) == sorted([wc1["conn"], wc2["conn"]]), gone
        assert all(e["code"] == "1006" and e["cause"] == "node_lost" for e in gone)
        assert {e["user"] for e in gone} == {"carol", ""}
        assert time.monotonic() - killed <= TIMEOUT + 4
        taken = sum(get_metrics(n.port).get("ringcast_lifecycle_node_lost_total", 0)
                    for n in (A, B))
        assert taken == 2
        # Exactly one connect and one disconnect per connection.
        for w in (wa, wb, wc1, wc2):
            mine = [e for e in entries(cli) if e["conn"] == w["conn"] and e["node"] == w["node"]]
            assert [e["type"] for e in mine if "channel" not in e] == ["connect", "disconnect"], mine
        assert not [e for e in entries(cli) if e["type"] == "unsubscribe" and
                    e["channel"] == "room:2"]

    run(go())
