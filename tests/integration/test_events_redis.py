"""Client events to backends through Redis streams, and replies to one
connection, across three nodes and a real Redis: every event exactly once in
a consumer group of two workers, with the identity the server verified; a
dead worker's pending events claimed by the other; a request/response round
trip across nodes (through Redis and through the HTTP API); and the errors
of bad events, a full stream, and bad replies."""
import asyncio
import json

from rchelp import (API_KEY, get_metrics, http_request, recv_json, request, token, welcome,
                    ws_connect)
from redishelp import shard_name
from test_redis_cluster import node_id, start_nodes

FLAGS = ("--event-stream", "seat:* seats", "--event-stream", "tiny:* tiny maxlen=3",
         "--event-max-bytes", "256", "--public", "room:*")
PREFIX = "rc:"


def run(coro):
    return asyncio.run(coro)


async def connect(srv, user=None):
    ws = await ws_connect(srv, "/ws?token=" + token(sub=user) if user else "/ws")
    w = await welcome(ws)
    return ws, w


def fields(entry):
    """An XREADGROUP/XAUTOCLAIM entry [id, [k, v, ...]] as (id, {k: v})."""
    eid, kv = entry
    kv = [x.decode() for x in kv]
    return eid.decode(), dict(zip(kv[0::2], kv[1::2]))


def read_group(cli, stream, group, consumer, count=100):
    r = cli.command("XREADGROUP", "GROUP", group, consumer, "COUNT", str(count), "STREAMS",
                    stream, ">")
    if not r:
        return []
    return [fields(e) for e in r[0][1]]


def test_events_once_in_a_group_with_the_servers_identity(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "ABC", pub_flags=FLAGS)
    stream = PREFIX + "ev:seats"
    cli = redis_server.client()
    assert cli.command("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM") == "OK"

    async def go():
        sent = {}
        conns = []
        for name, srv in nodes.items():
            ws, w = await connect(srv, "user-" + name)
            conns.append((ws, w))
            for i in range(5):
                rid = "%s-%d" % (name, i)
                # A client that claims another identity in its event is not believed.
                r = await request(ws, {"type": "event", "id": rid, "event": "seat:select",
                                       "data": {"seat": i}, "user": "mallory", "conn": "1",
                                       "node": "evil"})
                assert r["type"] == "event_ack" and r["id"] == rid and "-" in r["entry"], r
                sent[rid] = (w, r["entry"])
        anon, wn = await connect(nodes["B"])
        r = await request(anon, {"type": "event", "id": 9, "event": "seat:hold"})
        assert r["type"] == "event_ack", r
        sent["9"] = (wn, r["entry"])

        got = {}
        consumers = ["w1", "w2"]
        for k in range(20):
            batch = read_group(cli, stream, "workers", consumers[k % 2], count=4)
            for eid, f in batch:
                assert eid not in got, "an event given twice in the group"
                got[eid] = f
            if len(got) == len(sent):
                break
        assert len(got) == len(sent) == 16
        for rid, (w, entry) in sent.items():
            f = got[entry]
            assert json.loads(f["id"]) == (9 if rid == "9" else rid)
            assert f["conn"] == w["conn"] and f["node"] == w["node"], f
            assert f["user"] == (w["user"] or "")
            conn, gen, node = f["reply"].split(":", 2)
            assert conn == w["conn"] and node == w["node"] and gen.isdigit(), f
            want = PREFIX + "ch:_rc.reply:" + w["node"]
            assert f["reply_channel"] == (shard_name(want) if redis_server.cluster else want)
            assert int(f["time"]) > 0
        assert got[sent["9"][1]]["data"] == "null" and got[sent["9"][1]]["user"] == ""
        assert {json.loads(got[sent["A-3"][1]]["data"])["seat"]} == {3}
        assert got[sent["A-3"][1]]["event"] == "seat:select"
        for ws, _ in conns:
            await ws.close()
        await anon.close()

    run(go())


def test_dead_workers_events_are_claimed(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "A", pub_flags=FLAGS)
    stream = PREFIX + "ev:seats"
    cli = redis_server.client()
    cli.command("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM")

    async def go():
        ws, _ = await connect(nodes["A"], "ann")
        for i in range(6):
            r = await request(ws, {"type": "event", "id": i, "event": "seat:select",
                                   "data": i})
            assert r["type"] == "event_ack", r
        # w1 reads three and dies without acknowledging; w2 reads the rest.
        taken = read_group(cli, stream, "workers", "w1", count=3)
        rest = read_group(cli, stream, "workers", "w2")
        for eid, _ in rest:
            cli.command("XACK", stream, "workers", eid)
        assert len(taken) == 3 and len(rest) == 3
        await asyncio.sleep(0.05)
        claimed = cli.command("XAUTOCLAIM", stream, "workers", "w2", "10", "0-0")
        got = [fields(e) for e in claimed[1]]
        assert [e for e, _ in got] == [e for e, _ in taken]
        assert [json.loads(f["data"]) for _, f in got] == [0, 1, 2]
        for eid, _ in got:
            assert cli.command("XACK", stream, "workers", eid) == 1
        pending = cli.command("XPENDING", stream, "workers")
        assert pending[0] == 0, pending
        await ws.close()

    run(go())


def test_reply_across_nodes(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "ABC", pub_flags=FLAGS)
    stream = PREFIX + "ev:seats"
    cli = redis_server.client()
    cli.command("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM")

    async def go():
        ws, w = await connect(nodes["A"], "ann")
        r = await request(ws, {"type": "event", "id": "rpc-1", "event": "seat:select",
                               "data": {"seat": "A1"}})
        assert r["type"] == "event_ack", r
        (eid, f), = read_group(cli, stream, "workers", "w1")
        # The worker answers through Redis, on the reply channel the event names.
        answer = {"to": f["reply"], "id": json.loads(f["id"]), "data": {"ok": True, "seat": "A1"}}
        assert cli.command("PUBLISH", f["reply_channel"], json.dumps(answer)) == 1
        r = await recv_json(ws)
        assert r == {"type": "reply", "id": "rpc-1", "data": {"ok": True, "seat": "A1"}}, r
        # Or through the HTTP API of another node, with an error.
        r = await request(ws, {"type": "event", "id": 2, "event": "seat:select", "data": 1})
        (eid, f), = read_group(cli, stream, "workers", "w1")
        body = json.dumps({"to": f["reply"], "id": 2,
                           "error": {"code": "taken", "message": "seat taken"}}).encode()
        status, _, out = http_request(nodes["C"].port, "POST", "/api/reply", body=body,
                                      headers={"Authorization": "Bearer " + API_KEY,
                                               "Content-Type": "application/json"})
        assert status == 202, out
        r = await recv_json(ws)
        assert r == {"type": "reply", "id": 2,
                     "error": {"code": "taken", "message": "seat taken"}}, r
        # A timeout is the client's: nothing comes while no worker answers, and
        # a late answer still carries its id, so the client can drop it.
        r = await request(ws, {"type": "event", "id": "slow", "event": "seat:select", "data": 3})
        assert r["type"] == "event_ack", r
        try:
            m = await asyncio.wait_for(ws.recv(), 0.5)
            raise AssertionError("nothing was answered yet: %r" % m)
        except asyncio.TimeoutError:
            pass
        (eid, f), = read_group(cli, stream, "workers", "w1")
        cli.command("PUBLISH", f["reply_channel"], json.dumps(
            {"to": f["reply"], "id": "slow", "data": "late"}))
        r = await recv_json(ws)
        assert r == {"type": "reply", "id": "slow", "data": "late"}, r
        # A reply to a connection that is gone is dropped and counted.
        await ws.close()
        await asyncio.sleep(0.2)
        before = get_metrics(nodes["A"].port)["ringcast_event_replies_gone_total"]
        assert cli.command("PUBLISH", f["reply_channel"], json.dumps(
            {"to": f["reply"], "id": 3, "data": None})) == 1
        for _ in range(50):
            m = get_metrics(nodes["A"].port)
            if m["ringcast_event_replies_gone_total"] > before:
                break
            await asyncio.sleep(0.05)
        assert m["ringcast_event_replies_gone_total"] == before + 1
        assert m["ringcast_event_replies_delivered_total"] == 3

    run(go())


def test_bad_events_and_replies(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "A", pub_flags=FLAGS)
    A = nodes["A"]
    single = start_server(*FLAGS)

    async def go():
        ws, w = await connect(A, "ann")
        cases = [
            ({"type": "event", "event": "other:x", "data": 1}, "unknown_event"),
            ({"type": "event", "event": "seat:x", "data": "x" * 300}, "event_too_large"),
            ({"type": "event", "data": 1}, "bad_request"),
            ({"type": "event", "event": "bad name", "data": 1}, "bad_request"),
            ({"type": "event", "event": 5, "data": 1}, "bad_request"),
        ]
        for i, (q, code) in enumerate(cases):
            q["id"] = i
            r = await request(ws, q)
            assert r["type"] == "error" and r["code"] == code and r["id"] == i, (q, r)
        # A full stream refuses until a backend makes room.
        for i in range(3):
            r = await request(ws, {"type": "event", "id": i, "event": "tiny:x", "data": i})
            assert r["type"] == "event_ack", r
        r = await request(ws, {"type": "event", "id": "f", "event": "tiny:x", "data": 3})
        assert r["type"] == "error" and r["code"] == "stream_full" and r["id"] == "f", r
        cli = redis_server.client()
        cli.command("XTRIM", PREFIX + "ev:tiny", "MAXLEN", "0")
        r = await request(ws, {"type": "event", "id": "g", "event": "tiny:x", "data": 4})
        assert r["type"] == "event_ack", r
        m = get_metrics(A.port)
        assert m["ringcast_events_stream_full_total"] == 1
        assert m["ringcast_events_stored_total"] == 4
        assert m['ringcast_protocol_errors_total{code="unknown_event"}'] == 1
        # Without Redis there is nowhere to put events.
        s1, _ = await connect(single, "bob")
        r = await request(s1, {"type": "event", "id": 1, "event": "seat:x", "data": 1})
        assert r["type"] == "error" and r["code"] == "events_unavailable", r
        await s1.close()
        # Bad replies: refused by the HTTP API, dropped and counted from Redis.
        key = {"Authorization": "Bearer " + API_KEY}
        for body in (b"{}", b"[1]", b'{"to":"x","data":1}', b'{"to":"1:2:n"}',
                     b'{"to":"1:2:n","data":1,"error":2}', b'{"to":"1:99999:n","data":1}'):
            status, _, out = http_request(A.port, "POST", "/api/reply", body=body, headers=key)
            assert status == 400 and b"bad_request" in out, (body, status, out)
        status, _, _ = http_request(A.port, "POST", "/api/reply", body=b"{}")
        assert status in (401, 403)
        before = get_metrics(A.port)["ringcast_event_replies_bad_total"]
        chan = PREFIX + "ch:_rc.reply:" + node_id("A", redis_server)
        cli.command("PUBLISH", chan, "not json")
        cli.command("PUBLISH", chan, json.dumps({"to": "5:1:someone-else", "data": 1}))
        for _ in range(50):
            m = get_metrics(A.port)
            if m["ringcast_event_replies_bad_total"] >= before + 2:
                break
            await asyncio.sleep(0.05)
        assert m["ringcast_event_replies_bad_total"] == before + 2
        # Clients cannot reach the internal channels.
        r = await request(ws, {"type": "subscribe", "id": "s", "channel": "_rc.reply:x"})
        assert r["type"] == "error" and r["code"] == "forbidden", r
        r = await request(ws, {"type": "ping", "id": "p"})
        assert r["type"] == "pong"
        await ws.close()

    run(go())
