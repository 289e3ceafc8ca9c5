"""Replies built from values a client or Redis controls are valid JSON that
round-trips the value, however much it needs escaping (user ids of control
characters, which escape to six bytes each), and values in Redis that
ringcast never writes are refused, not copied into an answer."""
import asyncio
import json

from rchelp import make_jwt, ws_connect
from test_admission import AENV, HDR, api, mint, put_queue, start_nodes

NASTY = "".join(chr(c) for c in range(1, 32)) * 2  # 62 control characters
NASTY128 = ("\x01\"\\" * 43)[:128]


def test_verify_and_complete_with_a_user_of_control_characters(redis_server, start_server):
    srv = start_nodes(start_server, redis_server, "A", tick_ms=200)["A"]
    put_queue(srv, "esc", rate=5)
    tok = mint({"sub": NASTY, "queue": "esc", "iat": 1, "exp": 2 ** 40, "typ": "admission"})
    st, _, body = srv.http("POST", "/api/queues/verify", HDR, json.dumps({"token": tok}).encode())
    assert st == 200, (st, body)
    r = json.loads(body)  # valid JSON, no stray bytes
    assert r == {"valid": True, "user": NASTY, "queue": "esc", "iat": 1, "exp": 2 ** 40}, r
    st, _, body = srv.http("POST", "/api/queues/esc/complete", HDR,
                           json.dumps({"user": NASTY128}).encode())
    assert st == 200, (st, body)
    assert json.loads(body) == {"queue": "esc", "user": NASTY128, "freed": False}, body


def test_welcome_for_a_user_of_control_characters(start_server):
    srv = start_server("--public", "public:*")

    async def go():
        ws = await ws_connect(srv, "/ws?token=" + make_jwt({"sub": NASTY128, "exp": 2 ** 40}))
        w = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (w["type"], w["user"]) == ("welcome", NASTY128), w
        await ws.close()
    asyncio.run(go())


def test_queue_config_corrupted_in_redis_is_refused(redis_server, start_server):
    srv = start_nodes(start_server, redis_server, "A", tick_ms=200)["A"]
    put_queue(srv, "bad", rate=5)
    with redis_server.client() as rc:
        rc.command("HSET", "rc:q:{bad}:cfg", "max_active", '1,"x":"injected"')
        st, body = api(srv, "GET", "/api/queues/bad")
        assert st == 503 and body["code"] == "queue_unavailable", (st, body)
        st, body = api(srv, "PUT", "/api/queues/bad", {"rate": 6})
        assert st == 503 and body["code"] == "queue_unavailable", (st, body)
        rc.command("HSET", "rc:q:{bad}:cfg", "max_active", "7")
    st, body = api(srv, "GET", "/api/queues/bad")
    assert st == 200 and (body["rate"], body["max_active"]) == (6, 7), (st, body)


def test_http_api_error_answers(start_server):
    """The HTTP API's own refusals are built like every other answer (the
    builder escapes the message): valid JSON carrying the exact text."""
    srv = start_server(env=AENV)
    cases = [
        ("/api/queues/verify", b'{"token":"a","token":"b"}', 'duplicate member "token"'),
        ("/api/queues/verify", b'{}', 'body must be {"token":"..."}'),
        ("/api/queues/a%20b/complete", b'{"user":"u"}',
         "queue ids are 1..64 characters of A-Z a-z 0-9 _ - . : @ / = +"),
        ("/api/publish", b'{"channel":"queue:x","data":1}',
         "channels queue:* carry waiting-room ticks: not for publishing"),
    ]
    for path, body, text in cases:
        st, _, resp = srv.http("POST", path, HDR, body)
        assert st in (400, 403), (path, st, resp)
        r = json.loads(resp)
        assert r["type"] == "error" and r["message"] == text, (path, r)
