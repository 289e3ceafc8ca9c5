"""Slow consumers (backlog policies), heartbeats, per-address limits."""
import asyncio
import json
import socket
import time

import websockets

from rchelp import (RawWS, recv_json, request, subscribe, token, welcome, ws_connect)


def run(coro):
    return asyncio.run(coro)


FAST = ("--msg-rate", "100000", "--msg-burst", "10000")
# The kernel grows a loopback socket's send buffer up to tcp_wmem's max
# (4 MB here) even for a peer that does not read, so a slow consumer only
# reaches ringcast's own backlog after several MB: 200 x 32 KB = 6.4 MB.
DATA = '{"pad":"%s","k":%%d}' % ("x" * 32000)
N_BIG = 200


def slow_client(srv, chan):
    """A raw client with a tiny receive buffer that subscribes, then stops
    reading."""
    c = RawWS(srv.port, rcvbuf=2048)
    assert c.recv_json()["type"] == "welcome"
    c.send_json({"type": "subscribe", "id": "slow", "channel": chan})
    r = c.recv_json()
    assert r["type"] == "subscribed", r
    return c, r["seq"]


async def publish_lockstep(srv, chan, n, readers):
    """Publishes n big messages one at a time, and publishes the next only
    when every reading client has received the last one: the readers never
    have more than one message queued, however slow this machine is, while
    the client that never reads overflows its backlog many times over.
    Returns, per reader, the (seq - base, k) pairs it received."""
    pub = await ws_connect(srv, "/ws?token=" + token(sub="pub"))
    await welcome(pub)
    got = [[] for _ in readers]
    for k in range(n):
        await pub.send('{"type":"publish","id":%d,"channel":"%s","data":%s}'
                       % (k, chan, DATA % k))
        r = await recv_json(pub, 10)
        assert r["type"] == "published", r
        for i, (ws, base) in enumerate(readers):
            while len(got[i]) <= k:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if m["type"] == "message":
                    got[i].append((m["seq"] - base, m["data"]["k"]))
    await pub.close()
    return got


def test_slow_consumer_closed_1008(start_server):
    srv = start_server("--public", "public:*", "--send-backlog-bytes", "65536", *FAST)
    chan, n = "public:slow", N_BIG
    slow, slow_base = slow_client(srv, chan)

    async def go():
        readers = []
        for i in range(2):
            ws = await ws_connect(srv)
            await welcome(ws)
            r = await subscribe(ws, chan, "r%d" % i)
            readers.append((ws, r["seq"]))
        results = await publish_lockstep(srv, chan, n, readers)
        for got in results:
            assert got == [(k + 1, k) for k in range(n)]
        for ws, _ in readers:
            await ws.close()
    run(go())
    m = srv.metrics()
    assert m["ringcast_backlog_closes_total"] >= 1
    assert m['ringcast_ws_closes_total{code="1008"}'] >= 1
    # What the slow client gets when it reads again: a gapless prefix of the
    # messages, then close 1008 with a reason (or, once the server gave up
    # on it, the end of the connection).
    seqs = []
    code = reason = None
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        try:
            raw = slow.recv_msg(timeout=deadline - time.monotonic())
        except Exception:
            code, reason = slow.close_code, slow.close_reason
            break
        seqs.append(json.loads(raw)["seq"] - slow_base)
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) < n
    assert code == 1008, (code, reason, len(seqs))
    assert reason
    slow.close()


def test_slow_consumer_drop_policy(start_server):
    srv = start_server("--public", "public:*", "--send-backlog-bytes", "65536",
                       "--backlog-policy", "drop", *FAST)
    chan, n = "public:drop", N_BIG
    slow, slow_base = slow_client(srv, chan)

    async def go():
        ws = await ws_connect(srv)
        await welcome(ws)
        base = (await subscribe(ws, chan))["seq"]
        [got] = await publish_lockstep(srv, chan, n, [(ws, base)])
        assert got == [(k + 1, k) for k in range(n)]
        await ws.close()
    run(go())
    m = srv.metrics()
    assert m["ringcast_backlog_drops_total"] >= 1
    assert m["ringcast_backlog_closes_total"] == 0
    # the slow client reads again: messages in order (with a gap), then a
    # messages_dropped notice; the connection stays usable
    seqs, err = [], None
    while True:
        r = json.loads(slow.recv_msg(timeout=5))
        if r["type"] == "error":
            err = r
            break
        assert r["type"] == "message", r
        seqs.append(r["seq"] - slow_base)
    assert err["code"] == "messages_dropped", err
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len(seqs) < n
    slow.send_json({"type": "ping", "id": "alive"})
    while True:
        r = slow.recv_json(timeout=5)
        if r["type"] == "pong":
            assert r["id"] == "alive"
            break
    slow.close()


def test_heartbeat_timeout_4002(start_server):
    srv = start_server("--public", "public:*", "--ping-interval-ms", "300",
                       "--pong-timeout-ms", "300")

    async def go():
        # the websockets library answers pings by itself
        good = await websockets.connect(srv.url(), ping_interval=None, close_timeout=1)
        w = await welcome(good)
        assert w["ping_interval"] == 300
        mute = RawWS(srv.port)
        assert mute.recv_json()["type"] == "welcome"
        t0 = time.monotonic()
        loop = asyncio.get_running_loop()
        code, reason = await loop.run_in_executor(None, mute.wait_close, 5.0)
        elapsed = time.monotonic() - t0
        assert code == 4002, (code, reason)
        assert reason
        assert elapsed < 3.0, elapsed
        mute.close()
        await asyncio.sleep(1.5 - elapsed if elapsed < 1.5 else 0)
        # the answering client is still there after several ping rounds
        r = await request(good, {"type": "ping", "id": "still"})
        assert r["type"] == "pong" and r["id"] == "still"
        await good.close()
    run(go())
    m = srv.metrics()
    assert m["ringcast_heartbeat_timeouts_total"] == 1
    assert m['ringcast_ws_closes_total{code="4002"}'] == 1
    assert m["ringcast_pings_sent_total"] >= 3


def test_answering_raw_client_survives(start_server):
    srv = start_server("--ping-interval-ms", "200", "--pong-timeout-ms", "300")
    c = RawWS(srv.port)
    assert c.recv_json()["type"] == "welcome"
    deadline = time.monotonic() + 1.5
    pings = 0
    while time.monotonic() < deadline:
        try:
            fin, rsv, op, payload = c.recv_frame(0.1)
        except socket.timeout:
            continue
        assert op == 9, (op, payload)
        pings += 1
        c.send_frame(10, payload)
    assert pings >= 3
    c.send_json({"type": "ping", "id": 1})
    assert c.recv_json(answer_pings=True)["type"] == "pong"
    c.close()


def test_max_conns_per_ip(start_server):
    srv = start_server("--max-conns-per-ip", "4")
    held, statuses = [], []
    for _ in range(12):
        c = RawWS(srv.port, expect_status=None)
        statuses.append(c.status)
        if c.status == 101:
            held.append(c)
        else:
            c.close()
    ok = statuses.count(101)
    # The limit is split between shards, so which of the first few are
    # refused depends on how the kernel spread them; never more than 4.
    assert 2 <= ok <= 4, statuses
    assert statuses.count(429) == 12 - ok, statuses
    for c in held:
        c.close()
    time.sleep(0.3)
    # the slots are given back
    c = RawWS(srv.port, expect_status=101)
    c.close()
    time.sleep(0.2)
    m = srv.metrics()
    assert m['ringcast_handshakes_total{outcome="rate_limited"}'] == 12 - ok


def test_one_big_message_reaches_prompt_readers(start_server):
    """The send backlog bounds what waits behind the message being sent: a
    single message larger than the whole backlog (a backend may publish one)
    reaches every reader that keeps up, under both policies, and so do two
    of them in a row."""
    for policy in ("close", "drop"):
        srv = start_server("--public", "public:*", "--send-backlog-bytes", "65536",
                           "--max-message-bytes", "65536", "--max-body-bytes", str(4 << 20),
                           "--backlog-policy", policy, *FAST)
        chan = "public:big"
        big = '{"pad":"%s"}' % ("y" * (1 << 20))

        async def go():
            readers = []
            for i in range(3):
                ws = await ws_connect(srv)
                await welcome(ws)
                await subscribe(ws, chan, "r%d" % i)
                readers.append(ws)
            for k in range(2):
                st, body = srv.publish(chan, big)
                assert st == 202, (st, body)
            for ws in readers:
                for k in range(2):
                    m = await recv_json(ws, 10)
                    assert m["type"] == "message" and len(m["data"]["pad"]) == 1 << 20, \
                        (policy, str(m)[:200])
                await ws.close()
        run(go())
        m = srv.metrics()
        assert m["ringcast_backlog_closes_total"] == 0, policy
        assert m["ringcast_backlog_drops_total"] == 0, policy
        srv.stop()


def test_backlog_close_reason_says_how_much_waited(start_server):
    srv = start_server("--public", "public:*", "--send-backlog-bytes", "65536", *FAST)
    slow, _ = slow_client(srv, "public:reason")

    async def go():
        for k in range(N_BIG):
            st, _ = srv.publish("public:reason", DATA % k)
            assert st == 202
            if srv.metrics()["ringcast_backlog_closes_total"]:
                return
    run(go())
    code, reason = slow.wait_close(timeout=10)
    assert code == 1008, (code, reason)
    words = reason.split()
    assert reason.startswith("send backlog full: ") and words[-1] == "65536", reason
    assert int(words[3]) > 65536, reason
    slow.close()


def test_max_message_above_backlog_refused(tmp_path):
    import subprocess
    from rchelp import binary_path
    p = subprocess.run([binary_path(), "--max-message-bytes", "200000",
                        "--send-backlog-bytes", "100000"], capture_output=True, timeout=10)
    assert p.returncode == 2, p
    assert b"--max-message-bytes (200000) is above --send-backlog-bytes (100000)" in p.stderr, \
        p.stderr


def test_handshake_rate_per_ip_beyond_32_bits(start_server):
    """--handshake-rate-per-ip goes up to 10,000,000 a second, and an
    address's bucket counts thousandths of a handshake: more than 32 bits
    hold. An address the node has not seen starts with a full bucket, so its
    first handshake passes at any allowed rate (at 4,294,968 a second the
    bucket wrapped to 704 thousandths, under one handshake, and the first
    handshake from a new address was refused with 429)."""
    for k, rate in enumerate(("4294968", "8589935", "10000000")):
        srv = start_server("--handshake-rate-per-ip", rate, shards=1)
        statuses = []
        for i in range(3):
            c = RawWS(srv.port, expect_status=None, source="127.0.%d.%d" % (k + 10, i + 2))
            statuses.append(c.status)
            c.close()
        assert statuses == [101] * 3, (rate, statuses)
