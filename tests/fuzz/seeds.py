#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/NAME/ from real inputs:
requests and frames as the integration tests send them, client messages
from docs/PROTOCOL.md's shapes, tokens signed like rchelp.make_jwt, Redis
replies as a server sends them, config files. Run from the repo root; it
only adds or rewrites its own named files."""
import base64, hashlib, hmac, json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SECRET = b"integration-test-secret-0123456789"
ADM = b"fuzz-admission-secret"


def put(name, fname, data):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, secret=SECRET, header=None):
    h = b64u(json.dumps(header or {"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    p = b64u(json.dumps(claims, separators=(",", ":")).encode())
    s = b64u(hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest())
    return f"{h}.{p}.{s}"


# ---- http -------------------------------------------------------------------
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
up = ("GET {t} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: " + KEY + "\r\nSec-WebSocket-Version: 13\r\n{x}\r\n")
tok = jwt({"sub": "alice", "subscribe": ["*"], "publish": ["*"], "exp": 4102444800})
put("http", "upgrade", up.format(t="/ws", x=""))
put("http", "upgrade_query_token", up.format(t="/ws?token=" + tok, x=""))
put("http", "upgrade_bearer_proto", up.format(t="/ws", x="Sec-WebSocket-Protocol: ringcast.v1, bearer." + tok + "\r\n"))
put("http", "upgrade_auth_header", up.format(t="/ws", x="Authorization: Bearer " + tok + "\r\nOrigin: https://example.com\r\n"))
put("http", "upgrade_lf_only", up.format(t="/ws", x="").replace("\r\n", "\n"))
put("http", "upgrade_v8", up.format(t="/ws", x="").replace("Version: 13", "Version: 8"))
put("http", "healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
put("http", "metrics_10", "GET /metrics HTTP/1.0\r\n\r\n")
put("http", "publish", "POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: integration-api-key\r\n"
    "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n"
    '{"channel":"news","data":{"n":1},"e":1}')
put("http", "chunked_refused", "POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
put("http", "dup_host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
put("http", "list_lines", up.format(t="/ws", x="Connection: keep-alive\r\nUpgrade: h2c\r\n"
    "Sec-WebSocket-Protocol: ringcast.v1\r\nSec-WebSocket-Protocol: , bearer." + tok + "\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Sec-WebSocket-Extensions: x-other\r\n"))
put("http", "expect_continue", "PUT /api/queues/q HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
    "Content-Length: 10\r\n\r\n")
put("http", "http2", "GET / HTTP/2.0\r\n\r\n")
put("http", "query_escapes", "GET /ws?a=1&token=x%2By+z&t=%00 HTTP/1.1\r\nHost: x\r\n\r\n")
put("http", "folded", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n")

# ---- session: first three bytes (mode, chunk seed, limit), then records or raw frames
def rec(first, payload, flags=0):
    n = len(payload)
    if n > 255:
        flags |= 8 | ((n >> 8) << 5)
    return bytes([first, flags, n & 0xff]) + payload


def frame(op, payload, fin=True, key=b"\x12\x34\x56\x78", mask=True):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    m = 0x80 if mask else 0
    h = bytes([b0, m | n]) if n < 126 else struct.pack("!BBH", b0, m | 126, n)
    if not mask:
        return h + payload
    return h + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


sub = json.dumps({"type": "subscribe", "id": 1, "channel": "room:1"}).encode()
put("session", "rec_text", b"\x00\x05\x00" + rec(0x81, sub))
put("session", "rec_ping_text_close", b"\x00\x09\x00" + rec(0x89, b"hb") + rec(0x81, b"hello")
    + rec(0x88, b"\x03\xe8bye"))
put("session", "rec_fragmented", b"\x00\x21\x00" + rec(0x01, b"he") + rec(0x89, b"p") + rec(0x00, b"ll")
    + rec(0x80, b"o"))
put("session", "rec_binary_big", b"\x00\x33\x00" + rec(0x82, bytes(range(256)) * 2))
put("session", "rec_too_big", b"\x00\x44\x90" + rec(0x81, b"x" * 300))
put("session", "raw_header_too_big", b"\x01\x45\x90" + frame(1, b"ok")
    + struct.pack("!BBQ", 0x81, 0xFF, 1 << 40) + b"\x01\x02\x03\x04")
put("session", "rec_bad_utf8", b"\x00\x55\x00" + rec(0x81, b"\xc3\x28"))
put("session", "rec_unmasked", b"\x00\x66\x00" + rec(0x81, b"hi", flags=1))
put("session", "rec_rsv", b"\x00\x67\x00" + rec(0xc1, b"hi"))
put("session", "rec_close_bad_code", b"\x00\x68\x00" + rec(0x88, b"\x03\xed"))
put("session", "rec_close_1byte", b"\x00\x69\x00" + rec(0x88, b"\x03"))
put("session", "rec_ping_long", b"\x00\x6a\x00" + rec(0x89, b"p" * 126))
put("session", "rec_len64", b"\x00\x6b\x00" + rec(0x81, b"abc", flags=2))
put("session", "rec_pong", b"\x00\x6c\x00" + rec(0x8a, b"") + rec(0x81, b"{}"))
put("session", "raw_text_close", b"\x01\x00\x00" + frame(1, sub) + frame(8, b"\x03\xe8"))
put("session", "raw_pings", b"\x01\x07\x00" + b"".join(frame(9, bytes([i]) * i) for i in range(20)))
put("session", "raw_unmasked", b"\x01\x00\x00" + frame(1, b"hi", mask=False))

# ---- proto: client messages, publish bodies, envelopes
msgs = [
    {"type": "subscribe", "id": 1, "channel": "room:1"},
    {"type": "unsubscribe", "id": "u-1", "channel": "user:alice"},
    {"type": "publish", "id": 2, "channel": "chat.general", "event": "msg", "data": {"text": "h\u00e9llo \"q\"", "n": [1, 2.5, -3e-2, True, None]}},
    {"type": "publish", "channel": "a", "data": "plain"},
    {"type": "publish", "channel": "a", "data": [[[[[]]]]]},
    {"type": "ping", "id": "p"},
    {"type": "queue.join", "id": 9, "queue": "sale:2024"},
    {"type": "queue.leave", "queue": "sale:2024"},
    {"type": "nope", "id": 3},
    {"channel": "news", "event": "update", "data": {"v": 1}},
    {"node": "node-a", "event": "message", "data": {"x": 1}},
    {"node": "node-b", "dropped": True},
]
for i, m in enumerate(msgs):
    put("proto", f"msg{i:02d}", json.dumps(m, ensure_ascii=(i % 2 == 0), separators=(",", ":")))
put("proto", "bad_json", '{"type":"subscribe","channel":')
put("proto", "deep", "[" * 40 + "]" * 40)
put("proto", "escapes", r'{"type":"publish","channel":"a","event":"e","data":"\ud83d\ude00\n\u0000","id":"\u0041"}')
put("proto", "dup_type", '{"type":"ping","type":"subscribe","channel":"x"}')
put("proto", "big_id", '{"type":"ping","id":' + "9" * 70 + "}")

# ---- jwt: mode byte (odd = token, even = claims), two position bytes
now_exp = 4102444800
for i, c in enumerate([
        {"sub": "alice", "subscribe": ["*"], "publish": ["*"], "exp": now_exp},
        {"sub": "bob", "subscribe": ["room:*", "user:{sub}"], "nbf": 1, "exp": now_exp},
        {"sub": "carol", "exp": 1},
        {"sub": "", "exp": now_exp},
        {"sub": "d", "publish": "notalist"},
        {"sub": "e" * 129}]):
    put("jwt", f"claims{i}", b"\x00\x07\x05" + json.dumps(c).encode())
    put("jwt", f"token{i}", b"\x01\x00\x00" + jwt(c).encode())
put("jwt", "token_none", b"\x01\x00\x00" + jwt({"sub": "x"}, header={"alg": "none"}).encode())
put("jwt", "token_hs512", b"\x01\x00\x00" + jwt({"sub": "x"}, header={"alg": "HS512", "typ": "JWT"}).encode())
put("jwt", "token_padded", b"\x01\x00\x00" + (jwt({"sub": "x"}) + "=").encode())

# ---- atoken: mode byte (0 mint, 1 raw token, 2 claims), then fields or text
def atok(user, queue, iat, exp, secret=ADM, typ="admission"):
    c = {"sub": user, "queue": queue, "iat": iat, "exp": exp, "typ": typ}
    return jwt(c, secret)


def mintrec(user, queue, iat, exp):
    u, q = user.encode(), queue.encode()
    return bytes([0, len(u)]) + u + bytes([len(q)]) + q + struct.pack("<qq", iat, exp)


put("atoken", "mint_basic", mintrec("alice", "sale", 1700000000, 1700000600))
put("atoken", "mint_utf8", mintrec("j\u00fcrgen \"x\"", "q:1/a=b+c", 1, 4102444800))
put("atoken", "mint_expired", mintrec("u", "q", 1, 2))
put("atoken", "mint_bad_queue", mintrec("u", "q q", 1, 4102444800))
put("atoken", "mint_bad_utf8", b"\x00\x02\xc3\x28\x01q" + struct.pack("<qq", 1, 4102444800))
put("atoken", "raw_ok", b"\x01" + atok("alice", "sale", 1700000000, 4102444800).encode())
put("atoken", "raw_client_typ", b"\x01" + atok("alice", "sale", 1, 4102444800, typ="JWT").encode())
put("atoken", "raw_other_secret", b"\x01" + atok("alice", "sale", 1, 4102444800, secret=b"x").encode())
put("atoken", "claims_adm", b"\x02" + json.dumps({"sub": "a", "queue": "q", "iat": 1, "exp": 4102444800, "typ": "admission"}).encode())
put("atoken", "claims_noqueue", b"\x02" + json.dumps({"sub": "a", "iat": 1, "exp": 4102444800, "typ": "admission"}).encode())
put("atoken", "claims_dup", b"\x02" + b'{"sub":"a","sub":"b","queue":"q","iat":1,"exp":4102444800,"typ":"admission"}')

# ---- redis: chunk seed byte, then RESP as the server sends it
def bulk(s):
    s = s if isinstance(s, bytes) else s.encode()
    return b"$%d\r\n%s\r\n" % (len(s), s)


def arr(*xs):
    return b"*%d\r\n" % len(xs) + b"".join(xs)


env = json.dumps({"node": "node-b", "event": "chat", "data": {"t": "hi"}}).encode()
put("redis_reply", "subscribe_confirm", b"\x00" + arr(bulk("subscribe"), bulk("rc:ch:room:1"), b":1\r\n"))
put("redis_reply", "message", b"\x03" + arr(bulk("message"), bulk("rc:ch:room:1"), bulk(env)))
put("redis_reply", "message_dropped", b"\x05" + arr(bulk("message"), bulk("rc:ch:x"), bulk('{"node":"n2","dropped":true}')))
put("redis_reply", "message_bad", b"\x06" + arr(bulk("message"), bulk("rc:ch:x"), bulk("not json")))
put("redis_reply", "pipeline", b"\x07+OK\r\n-ERR wrong\r\n:42\r\n$-1\r\n*-1\r\n" + arr(bulk("unsubscribe"), bulk("rc:ch:x"), b":0\r\n"))
put("redis_reply", "resp3", b"\x08>3\r\n$7\r\nmessage\r\n$4\r\nrc:a\r\n$2\r\n{}\r\n%1\r\n+k\r\n,1.5\r\n_\r\n#t\r\n(123\r\n=8\r\ntxt:abcd\r\n")
put("redis_reply", "nested", b"\x09" + arr(arr(bulk("a"), arr(b":1\r\n")), bulk("")))
put("redis_reply", "pong_hello", b"\x0a+PONG\r\n" + arr(bulk("server"), bulk("redis"), bulk("proto"), b":2\r\n"))

# ---- config: INI text
put("config", "full", """[server]
listen = 127.0.0.1:9000
ws_path = /socket
shards = 2
pin = no
node_id = edge-1
log_level = debug
[limits]
max_connections = 1000
max_message_bytes = 4096
backlog_policy = drop
[heartbeat]
ping_interval_ms = 0
[auth]
jwt_secret = s3cret
public = news:*
public = demo:*
anonymous = false
[redis]
redis_url = redis://127.0.0.1:6379/0
redis_prefix = rc:
[admission]
admission_tick_ms = 250
[engine]
recv_buf_count = 2048
""")
put("config", "comments", "; comment\n# another\n[server]\nlisten = [::1]:8080 ; inline\n")
put("config", "bad_section", "[nope]\nx = 1\n")
put("config", "outside", "listen = 1.2.3.4:5\n")
put("config", "bad_value", "[limits]\nmax_connections = -1\n")
put("config", "long_line", "[auth]\njwt_secret = " + "a" * 300 + "\n")
put("config", "too_many_public", "[auth]\n" + "".join(f"public = c{i}:*\n" for i in range(40)))
put("config", "crlf", "[server]\r\nlisten = 0.0.0.0:80\r\n")
