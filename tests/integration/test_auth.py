"""JWT authentication at the handshake, permissions on channels, expiry."""
import asyncio
import json
import time

import pytest
import websockets

from rchelp import (SECRET, RawWS, b64url, make_jwt, recv_json, request, subscribe, token,
                    welcome, ws_connect)


def run(coro):
    return asyncio.run(coro)


def status_of(srv, path="/ws", headers=None):
    c = RawWS(srv.port, path=path, headers=headers, expect_status=None)
    st = c.status
    c.close()
    return st


@pytest.fixture
def closed_server(start_server):
    return start_server("--no-anonymous", "--public", "public:*")


def test_refusals_are_401(closed_server):
    srv = closed_server
    now = int(time.time())
    m0 = srv.metrics()
    good_claims = {"sub": "u1", "exp": now + 600}
    cases = {
        "no token": None,
        "bad signature": make_jwt(good_claims, secret="not-the-secret"),
        "expired": make_jwt({"sub": "u1", "exp": now - 10}),
        "not yet valid": make_jwt({"sub": "u1", "nbf": now + 600}),
        "alg none": make_jwt(good_claims, header={"alg": "none", "typ": "JWT"}, sign=False),
        "alg HS512": make_jwt(good_claims, header={"alg": "HS512", "typ": "JWT"}),
        "malformed": "not.a.jwt",
        "two parts": "abc.def",
        "garbage": "%%%%",
        "no sub": make_jwt({"exp": now + 600}),
    }
    for name, tok in cases.items():
        path = "/ws" if tok is None else "/ws?token=" + tok
        st = status_of(srv, path)
        assert st == 401, (name, st)
    # the same through the other two carriers
    bad = make_jwt(good_claims, secret="nope")
    assert status_of(srv, headers={"Authorization": "Bearer " + bad}) == 401
    assert status_of(srv, headers={"Sec-WebSocket-Protocol": "ringcast.v1, bearer." + bad}) == 401
    m1 = srv.metrics()
    k = 'ringcast_handshakes_total{outcome="unauthorized"}'
    assert m1[k] - m0[k] == len(cases) + 2
    assert m1['ringcast_handshakes_total{outcome="ok"}'] == m0['ringcast_handshakes_total{outcome="ok"}']


def test_401_body_and_header(closed_server):
    c = RawWS(closed_server.port, expect_status=401)
    assert "bearer" in c.headers.get("www-authenticate", "").lower()
    c.close()


def test_three_token_carriers(closed_server):
    srv = closed_server
    tok = token(sub="carol")

    async def go():
        ws = await ws_connect(srv, "/ws?token=" + tok)
        assert (await welcome(ws))["user"] == "carol"
        await ws.close()
        ws = await ws_connect(srv, extra_headers={"Authorization": "Bearer " + tok})
        assert (await welcome(ws))["user"] == "carol"
        await ws.close()
        ws = await ws_connect(srv, subprotocols=["ringcast.v1", "bearer." + tok])
        assert ws.subprotocol == "ringcast.v1"
        assert (await welcome(ws))["user"] == "carol"
        await ws.close()
    run(go())
    # and at the raw level: exactly one protocol selected, and it is ringcast.v1
    c = RawWS(srv.port, headers={"Sec-WebSocket-Protocol": "ringcast.v1, bearer." + tok})
    assert c.headers.get("sec-websocket-protocol") == "ringcast.v1"
    assert c.recv_json()["user"] == "carol"
    c.close()


def test_secret_from_flag(start_server):
    srv = start_server("--jwt-secret", "flag-secret", "--no-anonymous", auth=False)
    assert status_of(srv, "/ws?token=" + make_jwt({"sub": "x"}, secret="flag-secret")) == 101
    assert status_of(srv, "/ws?token=" + make_jwt({"sub": "x"}, secret=SECRET)) == 401


def test_token_without_secret_is_refused(start_server):
    srv = start_server(auth=False)
    assert status_of(srv, "/ws?token=" + token()) == 401
    assert status_of(srv, "/ws") == 101  # anonymous is on by default


def test_forbidden_channel_keeps_connection(server):
    tok = token(sub="dave", subscribe=["room:*", "user:{sub}"], publish=["room:chat"])

    async def go():
        ws = await ws_connect(server, "/ws?token=" + tok)
        await welcome(ws)
        r = await request(ws, {"type": "subscribe", "id": 1, "channel": "secret:x"})
        assert r["type"] == "error" and r["code"] == "forbidden" and r["id"] == 1, r
        r = await request(ws, {"type": "subscribe", "id": 2, "channel": "user:eve"})
        assert r["code"] == "forbidden", r
        await subscribe(ws, "user:dave", "3")
        await subscribe(ws, "room:chat", "4")
        await subscribe(ws, "public:any", "5")  # public patterns apply to users too
        r = await request(ws, {"type": "publish", "id": 6, "channel": "room:other", "data": 1})
        assert r["type"] == "error" and r["code"] == "forbidden" and r["id"] == 6, r
        r = await request(ws, {"type": "publish", "id": 7, "channel": "room:chat",
                               "data": {"ok": True}}, skip_messages=False)
        got = [r, await recv_json(ws)]
        types = sorted(g["type"] for g in got)
        assert types == ["message", "published"], got
        msg = [g for g in got if g["type"] == "message"][0]
        assert msg["channel"] == "room:chat" and msg["data"] == {"ok": True}
        await ws.close()
    run(go())


def test_anonymous_publish_needs_flag(start_server):
    srv = start_server("--public", "public:*")
    srv2 = start_server("--public", "public:*", "--anonymous-publish")

    async def go():
        ws = await ws_connect(srv)
        await welcome(ws)
        r = await request(ws, {"type": "publish", "id": "a", "channel": "public:x", "data": 1})
        assert r["code"] == "forbidden"
        ws2 = await ws_connect(srv2)
        await welcome(ws2)
        r = await request(ws2, {"type": "publish", "id": "a", "channel": "public:x", "data": 1})
        assert r["type"] == "published"
        r = await request(ws2, {"type": "publish", "id": "b", "channel": "other:x", "data": 1})
        assert r["code"] == "forbidden"
        await ws.close()
        await ws2.close()
    run(go())


def test_token_expiry_closes_4001(server):
    tok = make_jwt({"sub": "shortlived", "exp": int(time.time()) + 2, "subscribe": ["*"]})

    async def go():
        ws = await ws_connect(server, "/ws?token=" + tok)
        await welcome(ws)
        t0 = time.monotonic()
        with pytest.raises(websockets.ConnectionClosed) as ei:
            while True:
                await asyncio.wait_for(ws.recv(), 6)
        assert ei.value.rcvd is not None, "no close frame"
        assert ei.value.rcvd.code == 4001
        assert ei.value.rcvd.reason
        assert time.monotonic() - t0 < 4.5
    run(go())
    assert server.metrics()["ringcast_token_expiries_total"] == 1
    assert server.metrics()['ringcast_ws_closes_total{code="4001"}'] == 1


@pytest.mark.parametrize("claims", [
    {"exp": 2 ** 62}, {"exp": 2 ** 63 - 1}, {"exp": 2 ** 63 - 1, "nbf": -2 ** 63},
    {"nbf": -2 ** 63}, {"exp": 2 ** 63 - 1, "iat": -2 ** 63},
], ids=["exp-2^62", "exp-int64max", "exp-max-nbf-min", "nbf-min", "iat-min"])
def test_far_times_in_tokens(start_server, claims):
    """A validly signed token whose times sit at the ends of the int64 range
    ("never expires") connects, and its expiry timer neither overflows (the
    AddressSanitizer + UndefinedBehaviorSanitizer build aborts on signed
    overflow) nor fires: the node keeps serving, that client included."""
    srv = start_server("--public", "public:*", "--ping-interval-ms", "300")

    async def go():
        c = dict(claims, sub="forever", subscribe=["*"], publish=["*"])
        ws = await ws_connect(srv, "/ws?token=" + make_jwt(c))
        assert (await welcome(ws))["user"] == "forever"
        await subscribe(ws, "public:forever")
        await asyncio.sleep(1.0)  # a few timer rounds (pings every 300 ms)
        other = await ws_connect(srv)
        await welcome(other)
        r = await request(ws, {"type": "ping", "id": "still"})
        assert (r["type"], r["id"]) == ("pong", "still"), r
        await ws.close()
        await other.close()
    run(go())
    assert srv.alive()


def test_far_past_exp_refused(start_server):
    srv = start_server("--public", "public:*")
    for exp in (-2 ** 63, 0, 1):
        assert status_of(srv, "/ws?token=" + make_jwt({"sub": "old", "exp": exp})) == 401, exp
