"""Request heads as RFC 9110 reads them, against the real server over raw
sockets: list headers on several lines are one list (Connection, Upgrade,
Sec-WebSocket-Protocol), every refusal has a status, a reason and a count."""
import base64
import os
import socket

from rchelp import HOST, RawWS, parse_http_response, token


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
