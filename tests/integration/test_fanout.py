"""Fan-out across shards: exactly once, in order, byte-identical data."""
import asyncio
import json
import time

import websockets

from rchelp import (API_KEY, RawWS, msum, recv_json, request, subscribe, token, welcome,
                    ws_connect)


def run(coro):
    return asyncio.run(coro)


# Data texts with whitespace, escapes and unicode that a re-encoder would change.
DATA_TEXTS = [
    '{ "a" : 1 ,\n  "b":[1, 2,\t3], "s":"x\\u00e9\\"y" }',
    '  [ true,false , null ]',
    '"just a string \\n with escape"',
    '12.50e+3',
    '{"nested":{"deep":[{"k":"\xe2\x82\xac"}]}, "e": "\u20ac"}',
]


def test_cross_shard_publish(start_server):
    srv = start_server("--public", "public:*", shards=4)
    chan = "room:xs"
    pub_tok = token(sub="pub", subscribe=["room:*"], publish=["room:*"])
    sub_tok = token(sub="sub", subscribe=["room:*"], publish=[])

    async def go():
        subs = []  # (ws, welcome, subscribed reply)
        shards = set()
        for _ in range(40):
            ws = await ws_connect(srv, "/ws?token=" + sub_tok)
            w = await welcome(ws)
            subs.append([ws, w])
            shards.add(w["shard"])
            if len(shards) >= 3 and len(subs) >= 6:
                break
        assert len(shards) >= 2, "all %d connections landed on one shard" % len(subs)
        for i, s in enumerate(subs):
            s.append(await subscribe(s[0], chan, "sub%d" % i))
        base = subs[0][2]["seq"]
        assert all(s[2]["seq"] == base for s in subs)

        pub = await ws_connect(srv, "/ws?token=" + pub_tok)
        pw = await welcome(pub)
        sent = []  # (event, data text)
        for i, d in enumerate(DATA_TEXTS):
            text = '{"type":"publish","id":%d,"channel":"%s","event":"ev%d","data":%s}' % (
                i, chan, i, d)
            await pub.send(text)
            r = await recv_json(pub)
            assert r == {"type": "published", "id": i, "channel": chan}, r
            sent.append(("ev%d" % i, d))
        for i, d in enumerate(DATA_TEXTS):
            st, _ = srv.publish(chan, d, event="api%d" % i)
            assert st == 202
            sent.append(("api%d" % i, d))

        for ws, w, sr in subs:
            frames = []
            for _ in range(len(sent)):
                frames.append(await asyncio.wait_for(ws.recv(), 5))
            try:
                extra = await asyncio.wait_for(ws.recv(), 0.3)
                raise AssertionError("duplicate or extra message on shard %d: %r"
                                     % (w["shard"], extra))
            except asyncio.TimeoutError:
                pass
            for k, (raw, (ev, d)) in enumerate(zip(frames, sent)):
                assert isinstance(raw, str)
                msg = json.loads(raw)
                assert msg["type"] == "message" and msg["channel"] == chan, msg
                assert msg["event"] == ev, (msg, ev)
                assert msg["seq"] == base + 1 + k, (msg["seq"], base, k)
                assert msg["data"] == json.loads(d)
                # byte-identical data text, inner whitespace and escapes included
                # (whitespace around the value is not part of it)
                assert ('"data":' + d.strip() + "}") in raw, (raw, d)
        await pub.close()
        for s in subs:
            await s[0].close()
        return pw["shard"], shards
    pshard, shards = run(go())
    m = srv.metrics()
    assert m["ringcast_publishes_total"] == 2 * len(DATA_TEXTS)


def test_thousand_clients_in_order(start_server):
    srv = start_server("--public", "public:*", "--ping-interval-ms", "0")
    n_clients, n_msgs, chan = 1000, 200, "public:big"

    async def one_client(ready, results, i):
        ws = await websockets.connect(srv.url(), max_size=None, ping_interval=None,
                                      open_timeout=30, close_timeout=1,
                                      max_queue=None)
        try:
            await welcome(ws)
            r = await request(ws, {"type": "subscribe", "id": i, "channel": chan}, timeout=20)
            assert r["type"] == "subscribed", r
            base = r["seq"]
            ready.append(1)
            got = []
            while len(got) < n_msgs:
                m = json.loads(await asyncio.wait_for(ws.recv(), 20))
                assert m["type"] == "message", m
                got.append((m["seq"] - base, m["data"]))
            results[i] = got
        finally:
            await ws.close()

    async def go():
        ready, results = [], {}
        tasks = []
        for i in range(n_clients):
            tasks.append(asyncio.create_task(one_client(ready, results, i)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        t0 = time.monotonic()
        while len(ready) < n_clients:
            done = [t for t in tasks if t.done() and t.exception()]
            if done:
                raise done[0].exception()
            assert time.monotonic() - t0 < 20, "only %d clients subscribed" % len(ready)
            await asyncio.sleep(0.05)
        # publish through the HTTP API from a thread, so the event loop keeps reading
        loop = asyncio.get_running_loop()

        def publish_all():
            for k in range(n_msgs):
                st, _ = srv.publish(chan, '{"k":%d}' % k)
                assert st == 202
        await loop.run_in_executor(None, publish_all)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        return results

    results = run(go())
    assert len(results) == n_clients
    expect = [(k + 1, {"k": k}) for k in range(n_msgs)]
    bad = {i: got for i, got in results.items() if got != expect}
    if bad:
        i, got = next(iter(bad.items()))
        j = next(j for j in range(n_msgs) if got[j] != expect[j])
        raise AssertionError("%d of %d clients got a wrong sequence; client %d, from index %d: "
                             "got (seq-base, k) %r, expected %r"
                             % (len(bad), n_clients, i, j, got[max(0, j - 2):j + 4],
                                expect[max(0, j - 2):j + 4]))
    m = srv.metrics()
    assert m["ringcast_deliveries_total"] >= n_clients * n_msgs


def test_paused_reader_gets_merged_small_frames_whole_and_in_order(start_server):
    """A reader that stops reading while big and then many small messages
    are published: its sends go short (the kernel's buffers are full), and
    the small frames waiting behind them are copied together into single
    segments. When it reads again every frame must arrive whole and in
    order. (tests/unit/test_outq.c covers runs that start part-sent.)"""
    srv = start_server("--msg-rate", "100000", "--msg-burst", "10000",
                       "--send-backlog-bytes", str(64 << 20), shards=1)
    chan = "room:paused"
    n_big, n_small = 200, 3000
    big = '{"k":%d,"pad":"' + "b" * 32000 + '"}'
    c = RawWS(srv.port, "/ws?token=" + token(sub="reader"), rcvbuf=2048)
    assert c.recv_json()["type"] == "welcome"
    c.send_json({"type": "subscribe", "id": "s", "channel": chan})
    r = c.recv_json()
    assert r["type"] == "subscribed", r
    base = r["seq"]
    merged0 = srv.metrics().get("ringcast_send_frames_merged_total", 0)

    async def publish_all():
        pub = await ws_connect(srv, "/ws?token=" + token(sub="pub"))
        await welcome(pub)
        for k in range(n_big + n_small):
            data = big % k if k < n_big else '{"k":%d,"s":"%s"}' % (k, "s" * (k % 90))
            await pub.send('{"type":"publish","id":%d,"channel":"%s","data":%s}'
                           % (k, chan, data))
        for k in range(n_big + n_small):
            r = await recv_json(pub, 20)
            assert r == {"type": "published", "id": k, "channel": chan}, r
        await pub.close()
    run(publish_all())
    # Everything is queued to the reader before it reads a byte.
    deadline = time.monotonic() + 20
    while srv.metrics()["ringcast_deliveries_total"] < n_big + n_small:
        assert time.monotonic() < deadline, "not every message was queued to the reader"
        time.sleep(0.05)
    got = []
    while len(got) < n_big + n_small:
        m = c.recv_json(timeout=20)
        assert m["type"] == "message", m
        got.append((m["seq"] - base, m["data"]["k"], len(m["data"].get("s", m["data"].get("pad")))))
    expect = [(k + 1, k, 32000 if k < n_big else k % 90) for k in range(n_big + n_small)]
    assert got == expect, next((i, got[i], expect[i]) for i in range(len(got)) if got[i] != expect[i])
    m = srv.metrics()
    merged = m["ringcast_send_frames_merged_total"] - merged0
    assert merged >= n_small // 2, "only %d small frames were sent merged" % merged
    assert m["ringcast_sends_total"] < m["ringcast_frames_out_total"]
    assert msum(m, "ringcast_send_waiting_connections") == 0
