"""HTTP endpoints on the listener port."""
import json
import socket
import time

from rchelp import API_KEY, HOST, RawWS, http_request, parse_http_response, recv_all


def test_healthz_readyz_metrics(server):
    st, h, body = server.http("GET", "/healthz")
    assert st == 200 and body == b"ok\n"
    st, _, body = server.http("GET", "/readyz")
    assert st == 200
    st, h, body = server.http("GET", "/metrics")
    assert st == 200 and h["content-type"].startswith("text/plain")
    assert b"# TYPE ringcast_handshakes_total counter" in body
    assert 'ringcast_info{version="0.1.0",node="itest-%d",shards="2"} 1' % server.port \
        in body.decode()


def test_not_found_and_methods(server):
    st, _, _ = server.http("GET", "/nope")
    assert st == 404
    st, h, _ = server.http("POST", "/healthz", body=b"")
    assert st == 405 and "GET" in h.get("allow", "")
    st, h, _ = server.http("GET", "/api/publish")
    assert st == 405 and "POST" in h.get("allow", "")


def test_plain_get_ws_is_426(server):
    m0 = server.metrics()
    st, h, body = server.http("GET", "/ws")
    assert st == 426
    assert h.get("upgrade", "").lower() == "websocket"
    assert body.strip()
    m1 = server.metrics()
    k = 'ringcast_handshakes_total{outcome="upgrade_required"}'
    assert m1[k] - m0[k] == 1


def test_oversized_header_431(start_server):
    srv = start_server("--max-header-bytes", "2048")
    big = "x" * 4000
    st, _, _ = srv.http("GET", "/healthz", {"X-Big": big})
    assert st == 431
    st, _, _ = srv.http("GET", "/ws", {"X-Big": big, "Upgrade": "websocket"})
    assert st == 431
    # a request just under the limit is fine
    st, _, _ = srv.http("GET", "/healthz", {"X-Small": "y" * 1500})
    assert st == 200


def test_api_publish_auth_and_body(server):
    body = b'{"channel":"public:h","data":{"a":1}}'
    st, h, _ = server.http("POST", "/api/publish", {}, body)
    assert st == 401 and "bearer" in h.get("www-authenticate", "").lower()
    st, _, _ = server.http("POST", "/api/publish", {"X-API-Key": "wrong"}, body)
    assert st == 401
    st, _, _ = server.http("POST", "/api/publish", {"Authorization": "Bearer wrong"}, body)
    assert st == 401
    st, _, resp = server.http("POST", "/api/publish", {"X-API-Key": API_KEY}, body)
    assert st == 202 and json.loads(resp)["type"] == "published"
    st, _, resp = server.http("POST", "/api/publish", {"Authorization": "Bearer " + API_KEY},
                              body)
    assert st == 202
    for bad in (b"{", b'{"data":1}', b'{"channel":"bad chan","data":1}',
                b'{"channel":"public:h"}', b'[1,2]'):
        st, _, resp = server.http("POST", "/api/publish", {"X-API-Key": API_KEY}, bad)
        assert st == 400, bad
        r = json.loads(resp)
        assert r["type"] == "error" and r["code"] in ("bad_json", "bad_request",
                                                      "invalid_channel"), (bad, r)


def test_api_publish_disabled_without_key(start_server):
    srv = start_server(auth=False)
    st, _, _ = srv.http("POST", "/api/publish", {"X-API-Key": "anything"},
                        b'{"channel":"c","data":1}')
    assert st == 403


def test_api_publish_length_limits(start_server):
    srv = start_server("--max-body-bytes", "1024")
    big = b'{"channel":"c","data":"' + b"x" * 2000 + b'"}'
    st, _, _ = srv.http("POST", "/api/publish", {"X-API-Key": API_KEY}, big)
    assert st == 413
    # no Content-Length at all
    raw = ("POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n\r\n" % API_KEY).encode()
    st, _, _ = http_request(srv.port, None, None, raw_head=raw)
    assert st == 411


def test_body_split_across_packets(server):
    body = b'{"channel":"public:split","data":{"k":"v"}}'
    head = ("POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Length: %d\r\n\r\n"
            % (API_KEY, len(body))).encode()
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        s.sendall(head + body[:10])
        time.sleep(0.2)
        s.sendall(body[10:])
        st, _, _ = parse_http_response(recv_all(s))
    assert st == 202


def test_handshake_timeout_408(start_server):
    srv = start_server("--handshake-timeout-ms", "300")
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpg")
        t0 = time.monotonic()
        raw = recv_all(s, timeout=5)
        el = time.monotonic() - t0
    st, _, _ = parse_http_response(raw)
    assert st == 408
    assert 0.2 <= el < 2.5, el
    m = srv.metrics()
    assert m['ringcast_handshakes_total{outcome="timeout"}'] >= 1
    # a silent connection is dropped after the same deadline
    with socket.create_connection((HOST, srv.port), timeout=5) as s:
        raw = recv_all(s, timeout=3)
    assert raw == b""


def test_bad_upgrade_requests(server):
    # wrong version -> 426, missing key -> 400
    c = RawWS(server.port, headers={"Sec-WebSocket-Version": "8"}, expect_status=None)
    assert c.status == 426
    c.close()
    c = RawWS(server.port, headers={"Sec-WebSocket-Key": "short"}, expect_status=None)
    assert c.status == 400
    c.close()
    c = RawWS(server.port, path="/other", expect_status=None)
    assert c.status == 404
    c.close()
