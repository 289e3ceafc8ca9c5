"""One reply per request, in request order (docs/PROTOCOL.md section 4):
requests sent back to back, in one TCP segment, each get exactly one reply,
and the replies come in the order the requests were sent, with and without
Redis (where a subscribe waits for Redis's confirmation)."""
import json

import pytest

from rchelp import OP_TEXT, RawWS, encode_frame
from redishelp import readyz, wait_until

FAST = ("--msg-rate", "1000000", "--msg-burst", "65535")


def batch(ws, *reqs):
    """Sends every request in one sendall: they reach the server together."""
    ws.send(b"".join(encode_frame(OP_TEXT, json.dumps(r).encode()) for r in reqs))


def replies(ws, n, timeout=5.0):
    """The next n frames that are not channel messages."""
    out = []
    while len(out) < n:
        m = ws.recv_json(timeout=timeout)
        if m["type"] != "message":
            out.append(m)
    return out


def open_ws(srv):
    ws = RawWS(srv.port)
    assert ws.recv_json()["type"] == "welcome"
    return ws


def node(start_server, redis_server, *extra):
    if redis_server is None:
        return start_server("--public", "public:*", "--anonymous-publish", *FAST, *extra)
    srv = start_server("--public", "public:*", "--anonymous-publish", "--redis", redis_server.url,
                       *FAST, *extra)
    wait_until(lambda: readyz(srv.port) == (200, "ready"), 10.0, "node ready")
    return srv


@pytest.fixture(params=["single", "redis"])
def any_node(request, start_server):
    redis = request.getfixturevalue("redis_server") if request.param == "redis" else None
    return node(start_server, redis), redis


def test_subscribe_then_unsubscribe_at_once(any_node):
    srv, _ = any_node
    ws = open_ws(srv)
    for k in range(20):  # a new channel each time: every subscribe waits for the relay
        ch = "public:su%d" % k
        batch(ws, {"type": "subscribe", "id": "s%d" % k, "channel": ch},
              {"type": "unsubscribe", "id": "u%d" % k, "channel": ch})
        got = replies(ws, 2)
        assert [(m["type"], m.get("id")) for m in got] == \
            [("subscribed", "s%d" % k), ("unsubscribed", "u%d" % k)], got
    # and nothing else arrives: one reply each
    ws.send_json({"type": "ping", "id": "end"})
    r = replies(ws, 1)[0]
    assert (r["type"], r["id"]) == ("pong", "end"), r
    ws.close()


def test_replies_in_request_order(any_node):
    srv, _ = any_node
    ws = open_ws(srv)
    other = open_ws(srv)
    other.send_json({"type": "subscribe", "id": 1, "channel": "public:old"})
    assert replies(other, 1)[0]["type"] == "subscribed"
    reqs = [
        {"type": "subscribe", "id": 1, "channel": "public:new1"},    # waits for the relay
        {"type": "ping", "id": 2},                                   # answered at once
        {"type": "publish", "id": 3, "channel": "public:new1", "data": {"k": 1}},
        {"type": "subscribe", "id": 4, "channel": "public:old"},     # room exists already
        {"type": "subscribe", "id": 5, "channel": "bad channel"},    # an error reply
        {"type": "subscribe", "id": 6, "channel": "public:new2"},    # waits again
        {"type": "unsubscribe", "id": 7, "channel": "public:new1"},
        {"type": "frobnicate", "id": 8},
        {"type": "unsubscribe", "id": 9, "channel": "public:new2"},
        {"type": "ping", "id": 10},
    ]
    batch(ws, *reqs)
    got = replies(ws, len(reqs))
    assert [m.get("id") for m in got] == list(range(1, 11)), got
    assert [m["type"] for m in got] == [
        "subscribed", "pong", "published", "subscribed", "error", "subscribed", "unsubscribed",
        "error", "unsubscribed", "pong"], got
    # the publish (sent after the subscribe to its channel) reached the subscriber
    ws.sock.settimeout(2)
    msgs = []
    ws.send_json({"type": "ping", "id": "after"})
    while True:
        m = ws.recv_json()
        if m["type"] == "pong":
            break
        msgs.append(m)
    assert [(m["channel"], m["data"]) for m in msgs] in ([], [("public:new1", {"k": 1})]), msgs
    m = srv.metrics()
    assert m["ringcast_deferred_requests_total"] >= 1
    ws.close()
    other.close()


def test_requests_piling_up_behind_a_held_one_close_1008(redis_server, start_server):
    """A client that keeps sending while its subscribe waits for a paused
    Redis is closed with 1008 once 256 requests wait, and told why; nothing
    it sent is dropped silently. Others are not disturbed."""
    srv = node(start_server, redis_server, "--redis-ping-ms", "5000")
    bystander = open_ws(srv)
    bystander.send_json({"type": "subscribe", "id": 1, "channel": "public:by"})
    assert replies(bystander, 1)[0]["type"] == "subscribed"
    ws = open_ws(srv)
    redis_server.pause()
    try:
        ws.send_json({"type": "subscribe", "id": "held", "channel": "public:held"})
        batch(ws, *({"type": "ping", "id": i} for i in range(300)))
        code = ws.wait_close(timeout=5)
        assert (ws.close_code, ws.close_reason) == \
            (1008, "too many requests sent while an earlier one waits: wait for replies"), \
            (code, ws.close_code, ws.close_reason)
        # the bystander still talks to the node
        bystander.send_json({"type": "ping", "id": "ok"})
        assert replies(bystander, 1)[0]["id"] == "ok"
        m = srv.metrics()
        assert m["ringcast_deferred_closes_total"] == 1
        assert m['ringcast_ws_closes_total{code="1008"}'] >= 1
    finally:
        redis_server.resume()
    bystander.close()
