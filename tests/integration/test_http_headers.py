"""Request heads as RFC 9110 reads them, against the real server over raw
sockets: list headers on several lines are one list (Connection, Upgrade,
Sec-WebSocket-Protocol), every HTTP/1.1 request names its Host, "Expect:
100-continue" is answered before the body is sent, JSON bodies with a
member twice are refused; every refusal has a status, a reason and a count."""
import base64
import json
import os
import select
import socket
import time

from rchelp import (API_KEY, HOST, RawWS, http_request, parse_http_response, recv_all,
                    token)
from redishelp import readyz, wait_until


def raw_upgrade(port, lines):
    """Sends an upgrade of /ws with Host, key and version plus the given
    header lines (repeats allowed); returns (status, headers, body, ws) where
    ws is a RawWS over the same socket after a 101, else None."""
    key = base64.b64encode(os.urandom(16)).decode()
    head = ("GET /ws HTTP/1.1\r\nHost: %s:%d\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n" % (HOST, port, key))
    head += "".join(ln + "\r\n" for ln in lines) + "\r\n"
    s = socket.create_connection((HOST, port), timeout=5)
    s.sendall(head.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            break
        buf += b
    top, _, rest = buf.partition(b"\r\n\r\n")
    st, h, _ = parse_http_response(top + b"\r\n\r\n")
    if st != 101:
        while True:
            b = s.recv(65536)
            if not b:
                break
            rest += b
        s.close()
        return st, h, rest, None
    ws = RawWS.__new__(RawWS)  # the handshake is done: only its frame reading is wanted
    ws.sock, ws.buf, ws.close_code, ws.close_reason = s, rest, None, None
    return st, h, b"", ws


def welcome_user(ws):
    w = ws.recv_json()
    assert w["type"] == "welcome", w
    ws.close()
    return w.get("user")


def test_bearer_on_second_protocol_line_authenticates(server):
    st, h, body, ws = raw_upgrade(server.port, [
        "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Protocol: ringcast.v1",
        "Sec-WebSocket-Protocol: bearer." + token("dave")])
    assert st == 101, (st, body)
    assert h.get("sec-websocket-protocol") == "ringcast.v1"
    assert welcome_user(ws) == "dave"


def test_bad_bearer_on_second_protocol_line_is_401(server):
    # Not dropped either when it is wrong: the client is refused, not let in
    # anonymously.
    st, h, body, _ = raw_upgrade(server.port, [
        "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Protocol: ringcast.v1",
        "Sec-WebSocket-Protocol: bearer.not-a-token"])
    assert st == 401, (st, body)


def test_two_connection_lines_upgrade(server):
    st, _, body, ws = raw_upgrade(server.port, [
        "Upgrade: websocket", "Connection: keep-alive", "Connection: Upgrade"])
    assert st == 101, (st, body)
    assert welcome_user(ws) is None


def test_two_upgrade_lines_upgrade(server):
    st, _, body, ws = raw_upgrade(server.port, [
        "Upgrade: h2c", "Upgrade: websocket", "Connection: Upgrade"])
    assert st == 101, (st, body)
    welcome_user(ws)


def test_list_header_on_too_many_lines_400(server):
    m0 = server.metrics()
    st, _, body, _ = raw_upgrade(server.port, ["Upgrade: websocket"] +
                                 ["Connection: Upgrade"] * 9)
    assert st == 400
    assert b"on more than 8 lines" in body, body
    k = 'ringcast_handshakes_total{outcome="bad_request"}'
    assert server.metrics()[k] - m0[k] == 1
    # Eight are still one list.
    st, _, body, ws = raw_upgrade(server.port, ["Upgrade: websocket"] +
                                  ["Connection: Upgrade"] * 8)
    assert st == 101, (st, body)
    welcome_user(ws)


# ---- Host ----------------------------------------------------------------------

def test_http11_without_host_400(server):
    k = 'ringcast_handshakes_total{outcome="bad_request"}'
    body = b'{"channel":"public:h","data":1}'
    heads = [b"GET /healthz HTTP/1.1\r\n\r\n",
             b"GET /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n",
             b"GET /nope HTTP/1.1\r\n\r\n",
             ("POST /api/publish HTTP/1.1\r\nX-API-Key: %s\r\nContent-Length: %d\r\n\r\n"
              % (API_KEY, len(body))).encode() + body,
             ("PUT /api/queues/q HTTP/1.1\r\nX-API-Key: %s\r\n\r\n" % API_KEY).encode()]
    for raw in heads:
        m0 = server.metrics()
        st, _, resp = http_request(server.port, None, None, raw_head=raw)
        assert (st, resp) == (400, b"missing Host\n"), (raw, st, resp)
        assert server.metrics()[k] - m0[k] == 1, raw
    # HTTP/1.0 has no Host requirement.
    st, _, resp = http_request(server.port, None, None, raw_head=b"GET /healthz HTTP/1.0\r\n\r\n")
    assert (st, resp) == (200, b"ok\n")


# ---- Expect: 100-continue -------------------------------------------------------

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def expect_exchange(port, method, path, body, headers=(), send_body=True):
    """Sends the head with Expect: 100-continue and no body; returns what came
    within a second (the interim answer, or a final one), then, when that was
    100 Continue and send_body, sends the body and returns (first, final)."""
    head = ("%s %s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n"
            % (method, path, len(body)))
    head += "".join("%s: %s\r\n" % kv for kv in headers) + "\r\n"
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(head.encode())
        first = b""
        t0 = time.monotonic()
        while b"\r\n\r\n" not in first and time.monotonic() - t0 < 1:
            r, _, _ = select.select([s], [], [], 1 - (time.monotonic() - t0))
            if not r:
                break
            b = s.recv(65536)
            if not b:
                break
            first += b
        if first != CONTINUE:
            return first + recv_all(s, timeout=2), None
        if not send_body:
            return first, None
        s.sendall(body)
        return first, recv_all(s)


def test_expect_100_continue_publish(server):
    m0 = server.metrics()
    body = b'{"channel":"public:exp","data":{"k":1}}'
    first, final = expect_exchange(server.port, "POST", "/api/publish", body,
                                   [("X-API-Key", API_KEY)])
    assert first == CONTINUE, first
    st, _, resp = parse_http_response(final)
    assert st == 202 and json.loads(resp)["type"] == "published", (st, resp)
    k = "ringcast_http_requests_total"
    assert server.metrics()[k] - m0[k] >= 1


def test_expect_refused_at_once_without_continue(start_server):
    srv = start_server("--max-body-bytes", "1024", "--public", "public:*")
    body = b'{"channel":"public:exp","data":1}'
    # Wrong key: 401 at once, the body never asked for.
    first, _ = expect_exchange(srv.port, "POST", "/api/publish", body, [("X-API-Key", "wrong")])
    st, h, _ = parse_http_response(first)
    assert st == 401 and "bearer" in h.get("www-authenticate", "").lower()
    # Too large: 413 at once.
    first, _ = expect_exchange(srv.port, "POST", "/api/publish", b"x" * 2000,
                               [("X-API-Key", API_KEY)])
    assert parse_http_response(first)[0] == 413
    # Wrong method: 405; unknown path: 404; neither waits for the body.
    first, _ = expect_exchange(srv.port, "PUT", "/api/publish", body, [("X-API-Key", API_KEY)])
    assert parse_http_response(first)[0] == 405
    first, _ = expect_exchange(srv.port, "POST", "/nope", body)
    assert parse_http_response(first)[0] == 404


def test_expect_unknown_417(server):
    m0 = server.metrics()
    raw = ("POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
           "Expect: 100-continue, x-fast\r\nContent-Length: 2\r\n\r\n" % API_KEY).encode()
    st, _, resp = http_request(server.port, None, None, raw_head=raw)
    assert st == 417 and b"100-continue" in resp, (st, resp)
    k = "ringcast_http_requests_total"
    assert server.metrics()[k] - m0[k] == 2  # the 417 and the GET /metrics before this read
    # HTTP/1.0 ignores 100-continue (RFC 9110 10.1.1): the body is simply read.
    body = b'{"channel":"public:e10","data":1}'
    raw = ("POST /api/publish HTTP/1.0\r\nX-API-Key: %s\r\nExpect: 100-continue\r\n"
           "Content-Length: %d\r\n\r\n" % (API_KEY, len(body))).encode() + body
    st, _, resp = http_request(server.port, None, None, raw_head=raw)
    assert st == 202, (st, resp)


# ---- JSON bodies with a member twice ----------------------------------------------

def test_verify_duplicate_token_400(server):
    raw_body = b'{"token":"a.b.c","token":"d.e.f"}'
    st, _, resp = server.http("POST", "/api/queues/verify", {"X-API-Key": API_KEY}, raw_body)
    r = json.loads(resp)
    assert st == 400 and r["code"] == "bad_request" and "duplicate" in r["message"], (st, r)


def queue_node(redis_server, start_server):
    srv = start_server("--redis", redis_server.url)
    wait_until(lambda: readyz(srv.port) == (200, "ready"), 10.0, "ready")
    return srv


QHDR = [("X-API-Key", API_KEY), ("Content-Type", "application/json")]


def test_queue_put_expect_100_continue(redis_server, start_server):
    srv = queue_node(redis_server, start_server)
    first, final = expect_exchange(srv.port, "PUT", "/api/queues/exp", b'{"rate":5}', QHDR)
    assert first == CONTINUE, first
    st, _, resp = parse_http_response(final)
    assert st == 200 and json.loads(resp)["rate"] == 5, (st, resp)


def test_queue_put_duplicate_members_400(redis_server, start_server):
    srv = queue_node(redis_server, start_server)
    st, _, resp = srv.http("PUT", "/api/queues/dup", dict(QHDR), b'{"rate":5}')
    assert st == 200, resp
    for dup in (b'{"rate":5,"rate":500}', b'{"state":"open","rate":6,"state":"paused"}'):
        st, _, resp = srv.http("PUT", "/api/queues/dup", dict(QHDR), dup)
        r = json.loads(resp)
        assert st == 400 and r["code"] == "bad_request" and "duplicate" in r["message"], (dup, r)
    st, _, resp = srv.http("GET", "/api/queues/dup", dict(QHDR))
    assert (json.loads(resp)["rate"], json.loads(resp)["state"]) == (5, "open"), resp


def test_queue_complete_duplicate_user_400(redis_server, start_server):
    srv = queue_node(redis_server, start_server)
    st, _, resp = srv.http("PUT", "/api/queues/dupc", dict(QHDR), b'{"rate":5}')
    assert st == 200, resp
    st, _, resp = srv.http("POST", "/api/queues/dupc/complete", dict(QHDR),
                           b'{"user":"a","user":"b"}')
    r = json.loads(resp)
    assert st == 400 and r["code"] == "bad_request", (st, r)
    st, _, resp = srv.http("POST", "/api/queues/dupc/complete", dict(QHDR), b'{"user":"a"}')
    assert st == 200 and json.loads(resp) == {"queue": "dupc", "user": "a", "freed": False}, resp
