"""Security promises of docs/SECURITY.md, checked against the real binary:
the Origin allow-list, secrets that never reach logs or metrics, and token
patterns that hold on every path a message can take (client, HTTP API,
Redis)."""
import asyncio
import json
import socket

from rchelp import (API_KEY, SECRET, get_metrics, make_jwt, msum, request, subscribe,
                    welcome, ws_connect)
from redishelp import wait_until, readyz

UPGRADE = ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


def status_of_upgrade(port, origin):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        req = UPGRADE + ("Origin: %s\r\n" % origin if origin is not None else "") + "\r\n"
        s.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode()
        body = head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""
        return int(line.split()[1]), body


def test_origin_allow_list(start_server):
    srv = start_server("--allowed-origin", "https://shop.example.com,https://*.cdn.example.com",
                       "--public", "public:*", "--anonymous-publish")
    cases = [
        (None, 101),  # not a browser: judged by its token alone
        ("https://shop.example.com", 101),
        ("HTTPS://Shop.Example.COM", 101),
        ("https://a.cdn.example.com", 101),
        ("https://a.b.cdn.example.com", 101),
        ("https://cdn.example.com", 403),  # the wildcard needs a subdomain
        ("http://shop.example.com", 403),  # another scheme is another origin
        ("https://shop.example.com:8443", 403),
        ("https://evil.com", 403),
        ("https://x.cdn.example.com.evil.com", 403),
        ("https://shop.example.com.evil.com", 403),
        ("null", 403),
        ("", 403),
    ]
    before = get_metrics(srv.port)
    for origin, want in cases:
        got, body = status_of_upgrade(srv.port, origin)
        assert got == want, (origin, got, body)
        if want == 403:
            assert b"origin not allowed" in body, body
    after = get_metrics(srv.port)
    key = 'ringcast_handshakes_total{outcome="forbidden"}'
    assert after[key] - before.get(key, 0) == sum(1 for _, w in cases if w == 403)

    async def healthy():
        ws = await ws_connect(srv, extra_headers={"Origin": "https://shop.example.com"})
        await welcome(ws)
        await subscribe(ws, "public:ok")
        r = await request(ws, {"type": "publish", "id": 1, "channel": "public:ok",
                               "data": {"n": 1}}, skip_messages=False)
        msgs = [r, json.loads(await asyncio.wait_for(ws.recv(), 5))]
        assert {m["type"] for m in msgs} == {"published", "message"}, msgs
        await ws.close()

    asyncio.run(healthy())


def test_secrets_never_logged_or_shown(redis_server, start_server):
    """Every secret ringcast holds, with the logging at debug and a handshake,
    API call, join and Redis link that exercise each one, including failures:
    none of them appears in the log or in /metrics."""
    jwt_secret = "jwt-SECRET-7c1e9a"
    api_key = "api-KEY-52b8f0"
    adm_secret = "adm-SECRET-e04d11"
    redis_pw = "redis-PW-9f3a27"
    with redis_server.client() as rc:
        rc.command("ACL", "SETUSER", "rcnode", "on", ">" + redis_pw, "~*", "&*", "+@all")
    url = "redis://rcnode:%s@127.0.0.1:%d" % (redis_pw, redis_server.port)
    srv = start_server("--log-level", "debug", "--node-id", "sec", auth=False,
                       env={"RINGCAST_JWT_SECRET": jwt_secret, "RINGCAST_API_KEY": api_key,
                            "RINGCAST_ADMISSION_SECRET": adm_secret,
                            "RINGCAST_REDIS_URL": url})
    wait_until(lambda: readyz(srv.port) == (200, "ready"), 10.0, "node ready")
    # a wrong token, a wrong API key, a right one, a queue and a join
    assert status_of_upgrade(srv.port, None)[0] == 101
    bad = make_jwt({"sub": "mallory"}, secret="not-" + jwt_secret)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall((UPGRADE + "Authorization: Bearer %s\r\n\r\n" % bad).encode())
        assert s.recv(100).startswith(b"HTTP/1.1 401")
    assert srv.publish("public:x", "1", key="wrong-" + api_key)[0] == 401
    st, _, _ = srv.http("PUT", "/api/queues/sec", {"X-API-Key": api_key}, b'{"rate":1}')
    assert st == 200

    async def join():
        tok = make_jwt({"sub": "alice"}, secret=jwt_secret)
        ws = await ws_connect(srv, "/ws?token=" + tok)
        await welcome(ws)
        r = await request(ws, {"type": "queue.join", "id": 1, "queue": "sec"})
        assert r["type"] in ("queue.joined", "admitted"), r
        if r["type"] == "queue.joined":
            while r["type"] != "admitted":
                r = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert r["token"].count(".") == 2
        await ws.close()

    asyncio.run(join())
    # the Redis link drops and comes back (a log line about it, with no URL)
    with redis_server.client() as rc:
        rc.command("CLIENT", "KILL", "USER", "rcnode")
    wait_until(lambda: readyz(srv.port) == (200, "ready"), 10.0, "node ready again")
    metrics = srv.http("GET", "/metrics")[2].decode()
    log = srv.stderr()
    assert "redis" in log and "admission" in log  # the log did speak of both
    for secret in (jwt_secret, api_key, adm_secret, redis_pw):
        assert secret not in log, secret
        assert secret not in metrics, secret


def test_config_errors_do_not_echo_secrets(tmp_path):
    """A bad Redis URL or option is reported by name, without the password."""
    import subprocess
    from rchelp import binary_path
    pw = "topsecret-41a9"
    for env in ({"RINGCAST_REDIS_URL": "rediss://u:%s@127.0.0.1" % pw},
                {"RINGCAST_REDIS_URL": "redis://u:%s@127.0.0.1:99999" % pw}):
        p = subprocess.run([binary_path(), "--shards", "1"], env=env, capture_output=True,
                           timeout=10)
        assert p.returncode != 0
        out = (p.stdout + p.stderr).decode()
        assert "RINGCAST_REDIS_URL" in out, out
        assert pw not in out, out


def test_token_patterns_hold_on_every_path(redis_server, start_server):
    """alice may subscribe chat:* and user:{sub}, and publish chat:* only:
    nothing she sends reaches another channel, not locally, not through the
    HTTP-less Redis path, and she receives nothing of channels she may not
    hold, whoever publishes there."""
    prefix = "sec%d:" % redis_server.port
    a = start_server("--redis", redis_server.url, "--node-id", "secA", "--redis-prefix", prefix,
                     "--no-user-channels")
    b = start_server("--redis", redis_server.url, "--node-id", "secB", "--redis-prefix", prefix,
                     "--no-user-channels")
    for s in (a, b):
        wait_until(lambda: readyz(s.port) == (200, "ready"), 10.0, "node ready")
    alice = make_jwt({"sub": "alice", "subscribe": ["chat:*", "user:{sub}"],
                      "publish": ["chat:*"]}, secret=SECRET)
    root = make_jwt({"sub": "ops", "subscribe": ["*"], "publish": ["*"]}, secret=SECRET)

    async def go():
        wa = await ws_connect(a, "/ws?token=" + alice)
        await welcome(wa)
        spy = await ws_connect(b, "/ws?token=" + root)  # sees what reaches other nodes
        await welcome(spy)
        for ch in ("admin:x", "user:bob", "chat:room"):
            await subscribe(spy, ch, "spy-" + ch)
        out0 = msum(get_metrics(a.port), "ringcast_redis_messages_out_total")
        for ch, verb in (("admin:x", "subscribe"), ("user:bob", "subscribe"),
                         ("admin:x", "publish"), ("user:bob", "publish"),
                         ("user:alice", "publish"), ("queue:sale", "subscribe")):
            req = {"type": verb, "id": ch + verb, "channel": ch}
            if verb == "publish":
                req["data"] = {"evil": True}
            r = await request(wa, req)
            assert r["type"] == "error" and r["code"] == "forbidden", (ch, verb, r)
        # nothing left node A for Redis
        assert msum(get_metrics(a.port), "ringcast_redis_messages_out_total") == out0
        # what alice may do works, on both nodes
        await subscribe(wa, "user:alice", "me")
        await subscribe(wa, "chat:room", "room")
        r = await request(wa, {"type": "publish", "id": "ok", "channel": "chat:room",
                               "data": {"n": 1}}, skip_messages=False)
        got = [r] + [json.loads(await asyncio.wait_for(wa.recv(), 5))]
        assert sorted(m["type"] for m in got) == ["message", "published"], got
        m = json.loads(await asyncio.wait_for(spy.recv(), 5))
        assert (m["type"], m["channel"], m["data"]) == ("message", "chat:room", {"n": 1}), m
        # a backend publishes to a channel alice does not hold: only the spy gets it
        assert a.publish("admin:x", '{"n":2}')[0] == 202
        m = json.loads(await asyncio.wait_for(spy.recv(), 5))
        assert (m["channel"], m["data"]) == ("admin:x", {"n": 2}), m
        try:
            extra = await asyncio.wait_for(wa.recv(), 0.5)
        except asyncio.TimeoutError:
            extra = None
        assert extra is None, extra
        await wa.close()
        await spy.close()

    asyncio.run(go())
    m = get_metrics(a.port)
    assert m['ringcast_protocol_errors_total{code="forbidden"}'] >= 6
    assert API_KEY  # the API key of the publishes above is the suite's default


def test_secret_rotation(start_server):
    """During a rotation the node takes tokens signed with the new secret and
    with the previous one, and nothing else; the same for admission tokens
    at /api/queues/verify."""
    import base64
    import hashlib
    import hmac
    import time
    new, old, other = "jwt-new-1b2c", "jwt-old-3d4e", "jwt-other-5f6a"
    srv = start_server("--public", "public:*", auth=False,
                       env={"RINGCAST_JWT_SECRET": new, "RINGCAST_JWT_SECRET_PREVIOUS": old,
                            "RINGCAST_API_KEY": API_KEY,
                            "RINGCAST_ADMISSION_SECRET": "adm-new",
                            "RINGCAST_ADMISSION_SECRET_PREVIOUS": "adm-old"})
    for secret, want in ((new, 101), (old, 101), (other, 401)):
        tok = make_jwt({"sub": "alice"}, secret=secret)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall((UPGRADE + "Authorization: Bearer %s\r\n\r\n" % tok).encode())
            line = s.recv(100).split(b"\r\n", 1)[0]
        assert int(line.split()[1]) == want, (secret, line)

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    def atoken(secret):
        h = b64(b'{"alg":"HS256","typ":"JWT"}')
        now = int(time.time())
        p = b64(json.dumps({"sub": "alice", "queue": "q", "iat": now, "exp": now + 60,
                            "typ": "admission"}).encode())
        sig = hmac.new(secret.encode(), ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest()
        return "%s.%s.%s" % (h, p, b64(sig))

    for secret, valid in (("adm-new", True), ("adm-old", True), ("adm-other", False)):
        st, _, body = srv.http("POST", "/api/queues/verify", {"X-API-Key": API_KEY},
                               json.dumps({"token": atoken(secret)}).encode())
        r = json.loads(body)
        assert st == 200 and r["valid"] is valid, (secret, r)
        if not valid:
            assert r["reason"] == "bad signature", r
    assert SECRET  # the suite's default secret is not in play here
