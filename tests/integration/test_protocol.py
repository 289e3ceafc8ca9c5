"""The JSON protocol: every error code a client can reach, replies echoing
ids, subscribe/unsubscribe semantics, app-level ping."""
import asyncio
import json

from rchelp import (OP_BINARY, RawWS, expect_silence, recv_json, request, subscribe, token,
                    welcome, ws_connect)


def run(coro):
    return asyncio.run(coro)


def test_welcome_fields(start_server):
    srv = start_server("--public", "public:*", "--ping-interval-ms", "12345",
                       "--max-message-bytes", "4096")

    async def go():
        ws = await ws_connect(srv)
        w = await welcome(ws)
        assert w["node"] == "itest-%d" % srv.port
        assert w["shard"] in (0, 1)
        assert w["user"] is None
        assert w["ping_interval"] == 12345
        assert w["max_message_bytes"] == 4096
        assert "conn" in w
        ws2 = await ws_connect(srv, "/ws?token=" + token(sub="bob"))
        w2 = await welcome(ws2)
        assert w2["user"] == "bob"
        assert w2["conn"] != w["conn"] or w2["shard"] != w["shard"]
        await ws.close()
        await ws2.close()
    run(go())


def test_error_codes_with_ids(start_server):
    srv = start_server("--public", "public:*", "--max-channels", "2")

    async def go():
        ws = await ws_connect(srv)
        await welcome(ws)

        async def expect_err(text, code, rid, channel=None):
            await ws.send(text)
            r = await recv_json(ws)
            assert r["type"] == "error" and r["code"] == code, (text, r)
            if rid is None:
                assert "id" not in r, r
            else:
                assert r["id"] == rid, (text, r)
            if channel is not None:
                assert r.get("channel") == channel, r
            assert isinstance(r.get("message", ""), str)
            return r

        await expect_err('{"type":"subscribe",', "bad_json", None)
        await expect_err("not json at all", "bad_json", None)
        await expect_err('{"type":"subscribe","id":"r1"}', "bad_request", "r1")
        await expect_err('{"type":"subscribe","id":7}', "bad_request", 7)
        await expect_err('{"type":"frobnicate","id":"r2"}', "unknown_type", "r2")
        await expect_err('{"type":"subscribe","id":"r3","channel":"bad channel!"}',
                         "invalid_channel", "r3")
        await expect_err('{"type":"subscribe","id":"r4","channel":""}', "invalid_channel", "r4")
        await expect_err('{"type":"subscribe","id":"r5","channel":"private:x"}', "forbidden",
                         "r5", "private:x")
        # anonymous publish is off by default
        await expect_err('{"type":"publish","id":"r6","channel":"public:a","data":1}',
                         "forbidden", "r6", "public:a")
        await expect_err('{"type":"unsubscribe","id":"r7","channel":"public:nope"}',
                         "not_subscribed", "r7", "public:nope")
        await subscribe(ws, "public:a", "a")
        await subscribe(ws, "public:b", "b")
        await expect_err('{"type":"subscribe","id":"r8","channel":"public:c"}',
                         "channel_limit", "r8", "public:c")
        # an id is echoed exactly as sent (integer or string)
        r = await request(ws, {"type": "ping", "id": 123456789})
        assert r["type"] == "pong" and r["id"] == 123456789 and isinstance(r["time"], int), r
        # binary frames carry no protocol
        await ws.send(b'{"type":"ping"}')
        r = await recv_json(ws)
        assert r["type"] == "error" and r["code"] == "binary_unsupported", r
        # still usable after all that
        r = await request(ws, {"type": "ping", "id": "last"})
        assert r == {"type": "pong", "id": "last", "time": r["time"]}, r
        await ws.close()
    m0 = srv.metrics()
    run(go())
    m1 = srv.metrics()
    for code, n in [("bad_json", 2), ("bad_request", 2), ("unknown_type", 1),
                    ("invalid_channel", 2), ("forbidden", 2), ("not_subscribed", 1),
                    ("channel_limit", 1), ("binary_unsupported", 1)]:
        k = 'ringcast_protocol_errors_total{code="%s"}' % code
        assert m1[k] - m0[k] == n, (k, m1[k] - m0[k])


def test_channel_of_wrong_type_is_bad_request(server):
    # proto.h: bad_request is "a member missing or of the wrong type";
    # invalid_channel is for a string that is not a valid name.
    async def go():
        ws = await ws_connect(server)
        await welcome(ws)
        r = await request(ws, {"type": "subscribe", "id": 9, "channel": 5})
        assert r["type"] == "error" and r["code"] == "bad_request" and r["id"] == 9, r
        await ws.close()
    run(go())


def test_rate_limited(start_server):
    srv = start_server("--public", "public:*", "--msg-rate", "1", "--msg-burst", "2")

    async def go():
        ws = await ws_connect(srv)
        await welcome(ws)
        for i in range(5):
            await ws.send(json.dumps({"type": "ping", "id": i}))
        got = [await recv_json(ws) for _ in range(5)]
        pongs = [g for g in got if g["type"] == "pong"]
        errs = [g for g in got if g["type"] == "error"]
        # a burst of 2 passes, the rest (sent within well under a second) is refused
        assert [p["id"] for p in pongs] == [0, 1], got
        assert len(errs) == 3 and all(e["code"] == "rate_limited" for e in errs), got
        # the bucket refills at 1/s
        await asyncio.sleep(1.2)
        r = await request(ws, {"type": "ping", "id": "again"})
        assert r["type"] == "pong" and r["id"] == "again", r
        await ws.close()
    run(go())
    m = srv.metrics()
    assert m['ringcast_protocol_errors_total{code="rate_limited"}'] == 3


def test_rate_limited_echoes_id(start_server):
    srv = start_server("--public", "public:*", "--msg-rate", "1", "--msg-burst", "2")

    async def go():
        ws = await ws_connect(srv)
        await welcome(ws)
        for i in range(3):
            await ws.send(json.dumps({"type": "ping", "id": "p%d" % i}))
        got = [await recv_json(ws) for _ in range(3)]
        assert got[2]["type"] == "error" and got[2]["code"] == "rate_limited", got
        # the issue asks for the request id to be echoed with every error code
        assert got[2].get("id") == "p2", got
        await ws.close()
    run(go())


def test_subscribe_idempotent_and_unsubscribe(server):
    async def go():
        ws = await ws_connect(server)
        await welcome(ws)
        r1 = await subscribe(ws, "public:idem", "x1")
        r2 = await subscribe(ws, "public:idem", "x2")
        assert r2["seq"] == r1["seq"]
        m = server.metrics()
        assert sum(v for k, v in m.items() if k.startswith("ringcast_subscriptions{")) == 1
        st, _ = server.publish("public:idem", '{"n":1}')
        assert st == 202
        msg = await recv_json(ws)
        assert msg["type"] == "message" and msg["data"] == {"n": 1}
        assert msg["seq"] == r1["seq"] + 1
        await expect_silence(ws, 0.3)  # exactly once despite two subscribes
        r = await request(ws, {"type": "unsubscribe", "id": "u1", "channel": "public:idem"})
        assert r == {"type": "unsubscribed", "id": "u1", "channel": "public:idem"}, r
        st, _ = server.publish("public:idem", '{"n":2}')
        assert st == 202
        await expect_silence(ws, 0.4)
        r = await request(ws, {"type": "unsubscribe", "id": "u2", "channel": "public:idem"})
        assert r["type"] == "error" and r["code"] == "not_subscribed" and r["id"] == "u2"
        # resubscribe: delivery resumes, seq continuing from the reply's
        r3 = await subscribe(ws, "public:idem", "x3")
        server.publish("public:idem", '{"n":3}')
        msg = await recv_json(ws)
        assert msg["data"] == {"n": 3} and msg["seq"] == r3["seq"] + 1
        await ws.close()
    run(go())


def test_ping_pong_app_level(server):
    async def go():
        ws = await ws_connect(server)
        await welcome(ws)
        r = await request(ws, {"type": "ping", "id": "abc"})
        assert r["type"] == "pong" and r["id"] == "abc"
        r = await request(ws, {"type": "ping"})
        assert r["type"] == "pong" and "id" not in r
        await ws.close()
    run(go())


def test_publish_reply_and_event_default(server):
    async def go():
        ws = await ws_connect(server)
        await welcome(ws)
        await subscribe(ws, "public:ev")
        r = await request(ws, {"type": "publish", "id": "p", "channel": "public:ev",
                               "data": [1, 2]})
        assert r == {"type": "published", "id": "p", "channel": "public:ev"}, r
        m = await recv_json(ws)
        assert m["type"] == "message" and m["event"] == "message" and m["data"] == [1, 2], m
        # without an id a publish is fire and forget: the message, no reply
        await ws.send(json.dumps({"type": "publish", "channel": "public:ev", "event": "chat",
                                  "data": None, "extra": "ignored"}))
        m = await recv_json(ws)
        assert m["type"] == "message" and m["event"] == "chat" and m["data"] is None, m
        await ws.send(json.dumps({"type": "ping", "id": "after"}))
        r = await recv_json(ws)  # the next frame is the pong: no "published" came between
        assert r["type"] == "pong" and r["id"] == "after" and isinstance(r["time"], int), r
        await ws.close()
    run(go())


def test_binary_unsupported_raw(server):
    c = RawWS(server.port)
    w = c.recv_json()
    assert w["type"] == "welcome"
    c.send_frame(OP_BINARY, b"\x00\x01\x02")
    r = c.recv_json()
    assert r["type"] == "error" and r["code"] == "binary_unsupported"
    c.close()
