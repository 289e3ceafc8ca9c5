"""Close codes for frame-level errors, sent over raw sockets (RFC 6455)."""
import struct
import time

import pytest

from rchelp import OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWS, encode_frame, msum


def opened(srv):
    c = RawWS(srv.port)
    w = c.recv_json()
    assert w["type"] == "welcome"
    return c


def expect_close(c, code, need_reason=True):
    got, reason = c.wait_close(5)
    assert got == code, (got, reason)
    if need_reason:
        assert reason, "close %d without a reason" % code
    # the client answers the close (RFC 6455 5.5.1); the server then ends
    # the TCP connection promptly
    try:
        c.send_frame(OP_CLOSE, struct.pack("!H", code))
    except OSError:
        pass  # it may already have closed, which is allowed too
    t0 = time.monotonic()
    assert c.eof_after(5)
    assert time.monotonic() - t0 < 1.0
    c.close()
    return reason


@pytest.fixture
def srv(start_server):
    return start_server("--public", "public:*", "--max-message-bytes", "1024")


def test_too_big_1009(srv):
    m0 = srv.metrics()
    c = opened(srv)
    c.send_text('{"type":"ping","pad":"' + "x" * 2000 + '"}')
    reason = expect_close(c, 1009)
    assert "1024" in reason
    # also a message assembled from fragments, each under the limit
    c = opened(srv)
    for i in range(3):
        c.send_frame(OP_TEXT if i == 0 else OP_CONT, "y" * 600, fin=False)
    c.send_frame(OP_CONT, "y", fin=True)
    expect_close(c, 1009)
    m1 = srv.metrics()
    k = 'ringcast_ws_closes_total{code="1009"}'
    assert m1[k] - m0[k] == 2


def test_limit_exactly_fits(srv):
    c = opened(srv)
    pad = 1024 - len('{"type":"ping","id":1,"p":""}')
    c.send_text('{"type":"ping","id":1,"p":"%s"}' % ("z" * pad))
    r = c.recv_json()
    assert r["type"] == "pong" and r["id"] == 1
    c.close()


def test_invalid_utf8_1007(srv):
    m0 = srv.metrics()
    c = opened(srv)
    c.send_frame(OP_TEXT, b'{"type":"ping","id":"\xff\xfe"}')
    expect_close(c, 1007)
    # invalid UTF-8 split across fragments (a truncated sequence at the end)
    c = opened(srv)
    c.send_frame(OP_TEXT, b'{"a":"\xe2\x82', fin=False)
    c.send_frame(OP_CONT, b'"}', fin=True)
    expect_close(c, 1007)
    m1 = srv.metrics()
    k = 'ringcast_ws_closes_total{code="1007"}'
    assert m1[k] - m0[k] == 2


def test_valid_utf8_split_across_fragments(srv):
    c = opened(srv)
    c.send_frame(OP_TEXT, b'{"type":"ping","id":"\xe2\x82', fin=False)
    c.send_frame(OP_CONT, b'\xac"}', fin=True)
    r = c.recv_json()
    assert r["type"] == "pong" and r["id"] == "\u20ac"
    c.close()


def test_unmasked_frame_1002(srv):
    c = opened(srv)
    c.send_frame(OP_TEXT, '{"type":"ping"}', mask=False)
    expect_close(c, 1002)


def test_reserved_opcode_1002(srv):
    c = opened(srv)
    c.send_frame(0x3, b"hello")
    expect_close(c, 1002)
    c = opened(srv)
    c.send_frame(0xB, b"")
    expect_close(c, 1002)


def test_rsv_bit_1002(srv):
    for rsv in (4, 2, 1):
        c = opened(srv)
        c.send_frame(OP_TEXT, '{"type":"ping"}', rsv=rsv)
        expect_close(c, 1002)


def test_other_protocol_errors_1002(srv):
    # continuation without a start
    c = opened(srv)
    c.send_frame(OP_CONT, b"x", fin=True)
    expect_close(c, 1002)
    # fragmented control frame
    c = opened(srv)
    c.send_frame(OP_PING, b"x", fin=False)
    expect_close(c, 1002)
    # control frame longer than 125 bytes
    c = opened(srv)
    c.send_frame(OP_PING, b"p" * 126)
    expect_close(c, 1002)
    m = srv.metrics()
    assert m['ringcast_ws_closes_total{code="1002"}'] >= 3


def test_client_close_is_echoed(srv):
    c = opened(srv)
    c.send_frame(OP_CLOSE, struct.pack("!H", 4321) + b"bye")
    code, _ = c.wait_close(5)
    assert code == 4321
    assert c.eof_after(5)
    c.close()
    c = opened(srv)
    c.send_frame(OP_CLOSE, b"")
    code, _ = c.wait_close(5)
    assert code in (1005, 1000)  # an empty close is answered with an empty one (or 1000)
    c.close()


def test_ping_answered_with_pong(srv):
    c = opened(srv)
    c.send_frame(OP_PING, b"are-you-there")
    fin, rsv, op, payload = c.recv_frame(5)
    assert (op, payload) == (OP_PONG, b"are-you-there")
    # an unsolicited pong is ignored
    c.send_frame(OP_PONG, b"x")
    c.send_text('{"type":"ping","id":5}')
    assert c.recv_json()["id"] == 5
    c.close()


def test_frames_in_one_packet_and_split(srv):
    c = opened(srv)
    data = b"".join(encode_frame(OP_TEXT, '{"type":"ping","id":%d}' % i) for i in range(10))
    c.send(data)
    assert [c.recv_json()["id"] for _ in range(10)] == list(range(10))
    one = encode_frame(OP_TEXT, '{"type":"ping","id":"slow"}')
    for b in one:
        c.send(bytes([b]))
        time.sleep(0.002)
    assert c.recv_json()["id"] == "slow"
    c.close()


def test_ping_flood_all_answered(start_server):
    # 3000 pings in one burst, read by the server in large buffers: each gets
    # its pong, on this connection, promptly (RFC 6455 5.5.2).
    srv = start_server("--recv-buf-size", "65536")
    c = opened(srv)
    n = 3000
    c.send(b"".join(encode_frame(OP_PING, b"") for _ in range(n)))
    pongs = 0
    while pongs < n:
        fin, rsv, op, payload = c.recv_frame(5)
        assert op == OP_PONG, op
        pongs += 1
    # and a second connection borrowing the same parser context gets none of them
    d = opened(srv)
    d.send_text('{"type":"ping","id":"d"}')
    fin, rsv, op, payload = d.recv_frame(5)
    assert op == OP_TEXT and b'"d"' in payload, (op, payload)
    c.close()
    d.close()


def test_unanswered_close_still_ends_connection(srv):
    # a client that never answers the close frame is not kept forever
    c = opened(srv)
    c.send_frame(OP_TEXT, b"x", mask=False)
    code, reason = c.wait_close(5)
    assert code == 1002
    assert c.eof_after(8)
    c.close()


def test_table_pages_of_a_passed_wave_are_given_back_and_reused(start_server):
    """After a wave of connections leaves, the pages of the connection table
    whose slots are all free are given back to the kernel (their slots read
    as zeros again, generation included); a second wave that wraps around
    the table onto those slots works as the first did."""
    srv = start_server("--public", "public:*", "--max-connections", "1000",
                       "--ping-interval-ms", "0", shards=1)
    n = 900

    def wave():
        conns = []
        for _ in range(n):
            conns.append(opened(srv))
        return conns

    first = wave()
    for c in first:
        c.sock.close()
    deadline = time.monotonic() + 10
    while srv.metrics().get("ringcast_conn_table_pages_trimmed_total", 0) < 1:
        assert time.monotonic() < deadline, "no page of the connection table was given back"
        time.sleep(0.2)
    m = srv.metrics()
    # 900 slots of 64 bytes span at least 13 whole pages of 4 KiB.
    assert m["ringcast_conn_table_pages_trimmed_total"] >= 13, m[
        "ringcast_conn_table_pages_trimmed_total"]

    second = wave()  # the table holds 1064 slots: this wave wraps onto the first's
    for i, c in enumerate(second):
        c.send_json({"type": "subscribe", "id": i, "channel": "public:again"})
    for i, c in enumerate(second):
        r = c.recv_json()
        assert r["type"] == "subscribed" and r["id"] == i, r
    st, _ = srv.publish("public:again", '{"k":1}')
    assert st == 202
    for c in second:
        m = c.recv_json()
        assert m["type"] == "message" and m["data"] == {"k": 1}, m
    m = srv.metrics()
    assert msum(m, "ringcast_websockets") == n, msum(m, "ringcast_websockets")
    for c in second:
        c.sock.close()
