"""Drain on SIGTERM, and /metrics counting what happened."""
import asyncio
import json
import signal
import socket
import time

import pytest
import websockets

from rchelp import (API_KEY, HOST, OP_CLOSE, RawWS, http_request, make_jwt, recv_json,
                    request, subscribe, token, welcome, ws_connect)


def run(coro):
    return asyncio.run(coro)


def test_sigterm_drain_1001_after_last_message(start_server):
    srv = start_server("--public", "public:*", "--drain-timeout-ms", "3000", shards=3)

    async def go():
        clients = []
        for i in range(8):
            ws = await ws_connect(srv)
            await welcome(ws)
            base = (await subscribe(ws, "public:bye", "s%d" % i))["seq"]
            clients.append((ws, base))
        raw = RawWS(srv.port)
        assert raw.recv_json()["type"] == "welcome"
        raw.send_json({"type": "subscribe", "id": 1, "channel": "public:bye"})
        raw_base = raw.recv_json()["seq"]
        st, _ = srv.publish("public:bye", '{"last":true}')
        assert st == 202
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        for ws, base in clients:
            m = await recv_json(ws, 5)
            assert m["type"] == "message" and m["data"] == {"last": True}
            assert m["seq"] == base + 1
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await asyncio.wait_for(ws.recv(), 5)
            assert ei.value.rcvd is not None and ei.value.rcvd.code == 1001, ei.value
            assert ei.value.rcvd.reason
        # the raw client sees the same order at the frame level
        m = raw.recv_json()
        assert m["data"] == {"last": True} and m["seq"] == raw_base + 1
        code, reason = raw.wait_close(5)
        assert code == 1001 and reason
        raw.send_frame(OP_CLOSE, b"\x03\xe9")
        assert raw.eof_after(5)
        raw.close()
        rc = await asyncio.get_running_loop().run_in_executor(None, srv.wait, 5)
        return rc, time.monotonic() - t0
    rc, elapsed = run(go())
    assert rc == 0, srv.stderr()
    assert elapsed < 3.0 + 1.0, elapsed


def test_drain_deadline_with_unresponsive_client(start_server):
    srv = start_server("--drain-timeout-ms", "1000")
    # a client that never reads and never answers the close
    mute = RawWS(srv.port, rcvbuf=4096)
    time.sleep(0.1)
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    rc = srv.wait(6)
    elapsed = time.monotonic() - t0
    mute.close()
    assert rc == 0, srv.stderr()
    assert elapsed < 1.0 + 1.5, elapsed
    # and new connections are refused once it is gone
    with pytest.raises(OSError):
        socket.create_connection((HOST, srv.port), timeout=1).close()


def test_idle_server_exits_promptly(start_server):
    srv = start_server("--drain-timeout-ms", "10000")
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    assert srv.wait(5) == 0
    assert time.monotonic() - t0 < 2.0


def test_second_signal_exits_at_once(start_server):
    srv = start_server("--drain-timeout-ms", "20000")
    mute = RawWS(srv.port)  # keeps the drain busy
    srv.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert srv.alive()
    srv.signal(signal.SIGTERM)
    rc = srv.wait(3)
    mute.close()
    assert rc is not None, "no exit after the second signal"
    srv.exit_checked = True  # the status after an abandoned drain is not specified


def test_metrics_count_what_happened(start_server):
    srv = start_server("--no-anonymous", "--public", "public:*", "--max-message-bytes", "512")
    m0 = srv.metrics()
    tok = token(sub="m", subscribe=["*"], publish=["pub:*"])

    async def go():
        # 2 unauthorized handshakes
        for path in ("/ws", "/ws?token=" + make_jwt({"sub": "x"}, secret="bad")):
            c = RawWS(srv.port, path=path, expect_status=401)
            c.close()
        a = await ws_connect(srv, "/ws?token=" + tok)
        b = await ws_connect(srv, "/ws?token=" + tok)
        await welcome(a)
        await welcome(b)
        m = srv.metrics()
        assert sum(v for k, v in m.items() if k.startswith("ringcast_websockets{")) == 2
        # the /metrics request itself is a connection too
        assert sum(v for k, v in m.items() if k.startswith("ringcast_connections{")) >= 2
        await subscribe(b, "pub:x")
        await request(a, {"type": "publish", "id": 1, "channel": "pub:x", "data": 1})  # 1 publish
        assert (await recv_json(b))["type"] == "message"
        await request(a, {"type": "publish", "id": 2, "channel": "nope:x", "data": 1})  # forbidden
        await a.send("{{")                                                      # bad_json
        assert (await recv_json(a))["code"] == "bad_json"
        st, _ = srv.publish("pub:x", "2")                                       # 2nd publish
        assert st == 202
        assert (await recv_json(b))["data"] == 2
        await a.send("x" * 600)                                                 # 1009
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(a.recv(), 5)
        await b.close(code=1000)                                                # 1000 echo
        await asyncio.sleep(0.3)
    run(go())
    m1 = srv.metrics()

    def d(k):
        return m1.get(k, 0) - m0.get(k, 0)

    assert d('ringcast_handshakes_total{outcome="ok"}') == 2
    assert d('ringcast_handshakes_total{outcome="unauthorized"}') == 2
    assert d("ringcast_publishes_total") == 2
    assert d("ringcast_deliveries_total") == 2
    # client messages: sub, 2 publishes, bad json, the big one (which is counted or not:
    # it never completed) -> at least 4
    assert d("ringcast_messages_in_total") >= 4
    assert d('ringcast_protocol_errors_total{code="forbidden"}') == 1
    assert d('ringcast_protocol_errors_total{code="bad_json"}') == 1
    assert d('ringcast_ws_closes_total{code="1009"}') == 1
    assert d('ringcast_ws_closes_total{code="1000"}') == 1
    assert sum(v for k, v in m1.items() if k.startswith("ringcast_websockets{")) == 0
    assert sum(v for k, v in m1.items() if k.startswith("ringcast_subscriptions{")) == 0
    assert d("ringcast_http_requests_total") >= 2  # our /metrics and the API publish
    assert m1["ringcast_draining"] == 0


def test_sigterm_with_requests_waiting_for_a_paused_redis_frees_everything(redis_server,
                                                                          start_server):
    """SIGTERM while subscribes wait for Redis's confirmation, a queue join
    waits for its answer, and requests wait behind them: the node exits 0
    and (in the AddressSanitizer build, where LeakSanitizer runs at exit)
    frees everything it held. The fixture fails the test on any sanitizer
    report or a non-zero exit."""
    from redishelp import readyz, wait_until
    srv = start_server("--public", "public:*", "--redis", redis_server.url,
                       "--redis-ping-ms", "10000", "--drain-timeout-ms", "1000",
                       env={"RINGCAST_ADMISSION_SECRET": "exit-test-admission-secret"})
    wait_until(lambda: readyz(srv.port) == (200, "ready"), 10.0, "node ready")
    st, _, body = srv.http("PUT", "/api/queues/exitq",
                        {"X-API-Key": API_KEY, "Content-Type": "application/json"},
                        b'{"state":"paused"}')
    assert st == 200, (st, body)
    clients = []
    redis_server.pause()
    try:
        for i in range(4):
            c = RawWS(srv.port, "/ws?token=" + token(sub="leaver%d" % i))
            assert c.recv_json()["type"] == "welcome"
            c.send_json({"type": "subscribe", "id": "s", "channel": "public:pending%d" % i})
            c.send_json({"type": "ping", "id": "behind"})
            clients.append(c)
        j = RawWS(srv.port, "/ws?token=" + token(sub="joiner"))
        assert j.recv_json()["type"] == "welcome"
        j.send_json({"type": "queue.join", "id": 1, "queue": "exitq"})
        j.send_json({"type": "ping", "id": 2})
        clients.append(j)
        # and an HTTP API call that waits for Redis
        api = socket.create_connection((HOST, srv.port))
        api.sendall(("GET /api/queues/exitq HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n\r\n"
                     % API_KEY).encode())
        time.sleep(0.5)
        srv.signal(signal.SIGTERM)
        rc = srv.wait(20)
        assert rc == 0, (rc, srv.stderr()[-3000:])
        api.close()
    finally:
        redis_server.resume()
        for c in clients:
            c.close()


def test_sighup_and_usr_signals_keep_serving(start_server):
    """SIGHUP (logrotate, systemctl reload, a closed terminal), SIGUSR1 and
    SIGUSR2 are logged and counted; the node keeps its clients and keeps
    delivering; SIGTERM then still drains with 1001 and exit 0."""
    srv = start_server("--public", "public:*", "--drain-timeout-ms", "3000")

    async def go():
        ws = await ws_connect(srv)
        await welcome(ws)
        base = (await subscribe(ws, "public:hup"))["seq"]
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
            srv.signal(sig)
            await asyncio.sleep(0.2)
            assert srv.alive()
        assert srv.metrics()["ringcast_signals_ignored_total"] == 4
        st, _ = srv.publish("public:hup", '{"after":"hup"}')
        assert st == 202
        m = await recv_json(ws)
        assert (m["type"], m["seq"], m["data"]) == ("message", base + 1, {"after": "hup"}), m
        srv.signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed) as e:
            await asyncio.wait_for(ws.recv(), 5)
        assert e.value.rcvd.code == 1001, e.value
        assert srv.wait(10) == 0
    run(go())
    assert "signal SIGHUP: ignored" in srv.stderr()


def test_busy_port_refused(start_server):
    """A second ringcast on a port where one listens refuses to start (exit
    1, a clear message) instead of sharing the port through SO_REUSEPORT;
    the first keeps every new connection. A plain listener of another
    program holds the port just as well."""
    import subprocess
    from rchelp import binary_path, free_port
    srv = start_server("--public", "public:*")
    p = subprocess.run([binary_path(), "--listen", "%s:%d" % (HOST, srv.port), "--node-id",
                        "intruder"], capture_output=True, timeout=10)
    assert p.returncode == 1, p
    assert b"the port is in use by another process" in p.stderr, p.stderr

    async def go():
        for _ in range(50):
            ws = await ws_connect(srv)
            w = await welcome(ws)
            assert w["node"] == "itest-%d" % srv.port, w
            await ws.close()
    run(go())

    port = free_port()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind((HOST, port))
    holder.listen(4)
    try:
        p = subprocess.run([binary_path(), "--listen", "%s:%d" % (HOST, port)],
                           capture_output=True, timeout=10)
        assert p.returncode == 1, p
        assert b"the port is in use by another process" in p.stderr, p.stderr
    finally:
        holder.close()
