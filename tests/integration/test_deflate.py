"""permessage-deflate (RFC 7692): negotiated in the upgrade, publications
compressed once and shared, small ones plain, client messages inflated with
the message limit on the inflated size, bad input closed with the right code
and counted, the per-channel switch, the option that turns it off, the
Safari 15.0-15.3 rule, and real clients: Python websockets, Node ws and
socket.io-client."""
import asyncio
import json
import os
import shutil
import subprocess
import time
import zlib

import pytest

from rchelp import (OP_TEXT, RawWS, Closed, HOST, msum, ws_connect, welcome, subscribe,
                    recv_json)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def seats(n):
    """A realistic publication payload: a seat map update with repeated keys."""
    return json.dumps({"event": "sale-42", "seats": [
        {"seat": "%s%d" % ("ABCDEFGH"[i % 8], i % 40), "state": ("held", "sold", "free")[i % 3],
         "price": (4500, 6500, 9900)[i % 3]} for i in range(n)]}, separators=(",", ":"))


def inflate(payload):
    d = zlib.decompressobj(-15)
    return (d.decompress(payload + b"\x00\x00\xff\xff") + d.flush()).decode()


def deflate(text):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    z = c.compress(text.encode() if isinstance(text, str) else text) + c.flush(zlib.Z_SYNC_FLUSH)
    assert z.endswith(b"\x00\x00\xff\xff")
    return z[:-4]


def raw_sub(server, channel, headers=None):
    ws = RawWS(server.port, headers=headers)
    assert ws.recv_json()["type"] == "welcome"
    ws.send_json({"type": "subscribe", "id": 1, "channel": channel})
    assert ws.recv_json()["type"] == "subscribed"
    return ws


def next_data_frame(ws):
    """(rsv, text) of the next text frame, inflated when RSV1 is set."""
    while True:
        fin, rsv, op, payload = ws.recv_frame()
        if op == OP_TEXT:
            assert fin
            return rsv, (inflate(payload) if rsv & 4 else payload.decode())


def test_compressed_and_plain_subscribers_get_the_same(server):
    big, small = seats(40), '{"n":1}'
    assert len(big) > 1500

    async def run():
        a = await ws_connect(server)  # websockets offers permessage-deflate by default
        try:
            assert a.response_headers["Sec-WebSocket-Extensions"] == ANSWER
            await welcome(a)
            await subscribe(a, "public:sale")
            plain = raw_sub(server, "public:sale")
            assert "sec-websocket-extensions" not in plain.headers
            comp = raw_sub(server, "public:sale", OFFER)
            assert comp.headers.get("sec-websocket-extensions") == ANSWER
            before = server.metrics()
            for data in (big, small):
                st, _ = server.publish("public:sale", data, event="seats")
                assert st in (200, 202)
            got_a = [json.loads(await a.recv()) for _ in range(2)]
            got_plain = [plain.recv_frame() for _ in range(2)]
            got_comp = [next_data_frame(comp) for _ in range(2)]
            # the plain subscriber: no RSV bit; the compressed one: RSV1 on the
            # big message only (the small one is under --deflate-min-bytes)
            assert [f[1] for f in got_plain] == [0, 0]
            assert [r for r, _ in got_comp] == [4, 0]
            texts_plain = [f[3].decode() for f in got_plain]
            assert [t for _, t in got_comp] == texts_plain
            assert got_a == [json.loads(t) for t in texts_plain]
            assert got_a[0]["data"] == json.loads(big)
            after = server.metrics()
            # compressed once for both compressed subscribers; sent to two
            assert msum(after, "ringcast_deflate_publications_total") - \
                msum(before, "ringcast_deflate_publications_total") == 1
            assert msum(after, "ringcast_deflate_small_total") - \
                msum(before, "ringcast_deflate_small_total") == 1
            assert msum(after, "ringcast_deflate_frames_total") - \
                msum(before, "ringcast_deflate_frames_total") == 2
            assert msum(after, "ringcast_deflate_connections") == 2
            zin = msum(after, "ringcast_deflate_payload_bytes_in_total")
            zout = msum(after, "ringcast_deflate_payload_bytes_out_total")
            assert 0 < zout < zin / 3
            plain.close()
            comp.close()
        finally:
            await a.close()

    asyncio.run(run())


def test_client_compressed_messages_are_understood(server):
    async def run():
        a = await ws_connect(server)
        try:
            await welcome(a)
            await subscribe(a, "public:c")
            before = server.metrics()
            data = json.loads(seats(30))
            # websockets compresses what it sends once negotiated
            await a.send(json.dumps({"type": "publish", "id": 2, "channel": "public:c",
                                     "event": "e", "data": data}))
            got = []
            while len(got) < 2:
                got.append(await recv_json(a))
            kinds = sorted(m["type"] for m in got)
            assert kinds == ["message", "published"], got
            assert [m for m in got if m["type"] == "message"][0]["data"] == data
            after = server.metrics()
            assert msum(after, "ringcast_inflated_total") > msum(before, "ringcast_inflated_total")
        finally:
            await a.close()

    asyncio.run(run())
    # A raw client: one compressed message in two frames (RSV1 on the first).
    ws = raw_sub(server, "public:r", OFFER)
    z = deflate(json.dumps({"type": "publish", "id": 3, "channel": "public:r", "data": {"x": "y" * 300}}))
    ws.send_frame(OP_TEXT, z[:5], fin=False, rsv=4)
    ws.send_frame(0, z[5:], fin=True)
    replies = [next_data_frame(ws)[1] for _ in range(2)]
    assert sorted(json.loads(t)["type"] for t in replies) == ["message", "published"]
    ws.close()


def refused(server, headers, frames, code, reason_part, metric):
    other = raw_sub(server, "public:calm", OFFER)
    before = server.metrics()
    ws = raw_sub(server, "public:x", headers)
    for f in frames:
        ws.send(f)
    got = ws.wait_close()
    assert got[0] == code and reason_part in got[1], got
    after = server.metrics()
    key = 'ringcast_inflate_refused_total{reason="%s"}' % metric
    assert after.get(key, 0) - before.get(key, 0) == 1
    # nobody else is disturbed
    st, _ = server.publish("public:calm", seats(20))
    assert st in (200, 202)
    assert json.loads(next_data_frame(other)[1])["data"] == json.loads(seats(20))
    other.close()
    ws.close()


def test_bad_compressed_message_closes_1007(server):
    from rchelp import encode_frame
    refused(server, OFFER, [encode_frame(OP_TEXT, b"\xff\xfe\xfd\xfc\xfb", rsv=4)], 1007,
            "invalid compressed data", "bad_data")


def test_zip_bomb_closes_1009(server):
    from rchelp import encode_frame
    bomb = deflate(b"[" + b"0," * 500000 + b"0]")  # ~1 MB inflated, ~1 KB on the wire
    assert len(bomb) < 8192
    refused(server, OFFER, [encode_frame(OP_TEXT, bomb, rsv=4)], 1009,
            "inflates past the limit of 65536 bytes", "too_big")


def test_rsv1_without_negotiation_closes_1002(server):
    from rchelp import encode_frame
    refused(server, None, [encode_frame(OP_TEXT, deflate('{"type":"ping"}'), rsv=4)], 1002,
            "not negotiated", "rsv1")


def test_rsv1_on_a_continuation_closes_1002(server):
    from rchelp import encode_frame
    refused(server, OFFER, [encode_frame(OP_TEXT, b'{"type":', fin=False),
                            encode_frame(0, b'"ping"}', rsv=4)], 1002, "continuation", "rsv1")


def test_offers_and_window_bits(server):
    ws = RawWS(server.port, headers={"Sec-WebSocket-Extensions":
                                     "x-foo; a=\"1,2\", permessage-deflate; server_max_window_bits=10, "
                                     "permessage-deflate; server_max_window_bits=15"})
    assert ws.headers.get("sec-websocket-extensions") == ANSWER + "; server_max_window_bits=15"
    ws.close()
    before = server.metrics()
    ws = RawWS(server.port, headers={"Sec-WebSocket-Extensions":
                                     "permessage-deflate; server_max_window_bits=9; foo"})
    assert "sec-websocket-extensions" not in ws.headers
    assert ws.recv_json()["type"] == "welcome"
    ws.close()
    after = server.metrics()
    k = 'ringcast_deflate_declined_total{reason="offer"}'
    assert after[k] - before.get(k, 0) == 1


def test_per_channel_switch(start_server):
    s = start_server("--public", "*", "--deflate", "bin:* off", "--deflate-min-bytes", "64")
    on = raw_sub(s, "news:1", OFFER)
    off = raw_sub(s, "bin:1", OFFER)
    for ch in ("news:1", "bin:1"):
        assert s.publish(ch, seats(10))[0] in (200, 202)
    r_on, t_on = next_data_frame(on)
    r_off, t_off = next_data_frame(off)
    assert (r_on, r_off) == (4, 0)
    assert json.loads(t_on)["data"] == json.loads(t_off)["data"] == json.loads(seats(10))
    # 64-byte threshold: a 100-byte payload is compressed now
    assert s.publish("news:1", json.dumps({"k": "v" * 80}))[0] in (200, 202)
    assert next_data_frame(on)[0] == 4
    on.close()
    off.close()


def test_option_off(start_server):
    s = start_server("--public", "*", "--no-permessage-deflate")
    ws = raw_sub(s, "news:1", OFFER)
    assert "sec-websocket-extensions" not in ws.headers
    assert s.publish("news:1", seats(20))[0] in (200, 202)
    assert next_data_frame(ws)[0] == 0
    m = s.metrics()
    assert m['ringcast_deflate_declined_total{reason="disabled"}'] == 1
    assert msum(m, "ringcast_deflate_negotiated_total") == 0
    ws.close()


SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
          "Gecko) Version/%s Safari/605.1.15")


def test_safari_15_0_to_15_3_gets_no_compression(server):
    h = dict(OFFER, **{"User-Agent": SAFARI % "15.2"})
    ws = raw_sub(server, "public:s", h)
    assert "sec-websocket-extensions" not in ws.headers
    assert server.publish("public:s", seats(20))[0] in (200, 202)
    assert next_data_frame(ws)[0] == 0
    ws.close()
    assert server.metrics()['ringcast_deflate_declined_total{reason="client"}'] == 1
    h = dict(OFFER, **{"User-Agent": SAFARI % "15.4"})
    ws = raw_sub(server, "public:s", h)
    assert ws.headers.get("sec-websocket-extensions") == ANSWER
    ws.close()


NODE_WS = r"""
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[1]);  // perMessageDeflate is on by default
const out = {extensions: null, got: []};
ws.on('open', () => { out.extensions = ws.extensions; });
ws.on('message', (d) => {
  const m = JSON.parse(d.toString());
  if (m.type === 'welcome') ws.send(JSON.stringify({type: 'subscribe', id: 1, channel: 'public:n'}));
  else if (m.type === 'subscribed')
    // over ws's 1024-byte threshold: sent compressed
    ws.send(JSON.stringify({type: 'publish', id: 2, channel: 'public:n', data: JSON.parse(process.argv[2])}));
  else if (m.type === 'message') { out.got.push(m.data); console.log(JSON.stringify(out)); ws.close(); }
});
ws.on('error', (e) => { console.error(e); process.exit(1); });
"""


def test_node_ws_client(server):
    mods = os.path.join(ROOT, "perf", "peers", "node_modules")
    if shutil.which("node") is None or not os.path.isdir(os.path.join(mods, "ws")):
        pytest.skip("node or perf/peers/node_modules/ws is missing (make deps)")
    before = server.metrics()
    data = seats(40)
    r = subprocess.run(["node", "-e", NODE_WS, server.url(), data], capture_output=True,
                       timeout=20, env=dict(os.environ, NODE_PATH=mods))
    assert r.returncode == 0, r.stderr.decode()
    out = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert out["extensions"].startswith("permessage-deflate"), out
    assert out["got"] == [json.loads(data)]
    after = server.metrics()
    assert msum(after, "ringcast_inflated_total") > msum(before, "ringcast_inflated_total")
    assert msum(after, "ringcast_deflate_frames_total") > msum(before, "ringcast_deflate_frames_total")


NODE_SIO = r"""
const { io } = require('socket.io-client');
const s = io(process.argv[1], {transports: ['websocket']});  // Node: ws with perMessageDeflate
const out = {extensions: null, got: null};
s.on('connect', () => {
  out.extensions = s.io.engine.transport.ws.extensions;
  // over the client's 1024-byte threshold: this packet goes compressed
  s.emit('join', 'sio:room', 'x'.repeat(3000));
  console.log('joined');
});
s.on('seats', (d) => { out.got = d; console.log(JSON.stringify(out)); s.close(); });
s.on('connect_error', (e) => { console.error(String(e)); process.exit(1); });
"""


def test_socketio_client_negotiates_cleanly(start_server):
    """socket.io-client (Node) negotiates permessage-deflate: its compressed
    packets are inflated, and what it receives comes plain (the Socket.IO
    frames are never compressed)."""
    mods = os.path.join(ROOT, "tests", "socketio", "node_modules")
    if shutil.which("node") is None or not os.path.isdir(os.path.join(mods, "socket.io-client")):
        pytest.skip("tests/socketio/node_modules is missing (make deps)")
    s = start_server("--public", "*", "--socketio-map", "join subscribe")
    p = subprocess.Popen(["node", "-e", NODE_SIO, "http://%s:%d" % (HOST, s.port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, NODE_PATH=mods))
    try:
        assert p.stdout.readline().strip() == b"joined", p.stderr.read().decode()
        data = seats(20)
        deadline = 50
        while msum(s.metrics(), "ringcast_subscriptions") < 1 and deadline:
            time.sleep(0.1)
            deadline -= 1
        assert s.publish("sio:room", data, event="seats")[0] in (200, 202)
        out = json.loads(p.stdout.readline().decode())
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
    assert out["extensions"].startswith("permessage-deflate"), out
    assert out["got"] == json.loads(data)
    assert msum(s.metrics(), "ringcast_inflated_total") >= 1
