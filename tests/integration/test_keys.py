"""Tokens signed with public-key algorithms: RS256 and ES256 verified with
keys made by openssl here, from a PEM file and from a JWKS file (kid picks
the key); a wrong key, an unknown kid, alg confusion (an HS256 token whose
secret is the public key) and "none" refused; key files reread when they
change and on SIGHUP."""
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from rchelp import make_jwt, token, welcome, ws_connect

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def openssl_key(path, kind):
    args = (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if kind == "rsa"
            else ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    subprocess.run(["openssl", "genpkey", *args, "-out", str(path)], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout", "-out", str(path) + ".pub"],
                   check=True, capture_output=True)
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def sign(key, claims, alg, kid=None):
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    msg = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
    if alg == "RS256":
        sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return msg.decode() + "." + b64(sig)


def jwk(key, kid):
    pub = key.public_key().public_numbers()
    if hasattr(pub, "n"):
        n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
        e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "kid": kid, "use": "sig", "n": b64(n), "e": b64(e)}
    return {"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(pub.x.to_bytes(32, "big")),
            "y": b64(pub.y.to_bytes(32, "big"))}


def claims(sub):
    return {"sub": sub, "exp": int(time.time()) + 3600, "subscribe": ["*"]}


def handshake(srv, tok):
    """The upgrade's status and body; a 101 is closed at once."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(("GET /ws?token=%s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
            tok, "".join("%s: %s\r\n" % kv for kv in UPGRADE.items()))).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = sock.recv(4096)
            if not d:
                break
            buf += d
        status = int(buf.split(b" ", 2)[1])
        if status != 101:
            while True:
                d = sock.recv(4096)
                if not d:
                    break
                buf += d
        return status, buf.partition(b"\r\n\r\n")[2]


def test_rs256_es256_from_jwks_and_pem(tmp_path, start_server):
    rsa1 = openssl_key(tmp_path / "rsa1.pem", "rsa")
    rsa_other = openssl_key(tmp_path / "other.pem", "rsa")
    ec1 = openssl_key(tmp_path / "ec1.pem", "ec")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk(rsa1, "rsa-1"), jwk(ec1, "ec-1")]}))
    srv = start_server("--jwks", str(jwks))
    pem_srv = start_server("--jwt-public-key", str(tmp_path / "ec1.pem.pub"), auth=False)

    async def ok(server, tok, user):
        ws = await ws_connect(server, "/ws?token=" + tok)
        w = await welcome(ws)
        assert w["user"] == user, w
        await ws.close()

    async def go():
        await ok(srv, sign(rsa1, claims("rita"), "RS256", "rsa-1"), "rita")
        await ok(srv, sign(ec1, claims("eve"), "ES256", "ec-1"), "eve")
        await ok(srv, sign(ec1, claims("eve2"), "ES256"), "eve2")  # no kid: any EC key
        await ok(srv, token(sub="hs"), "hs")  # HS256 keeps working
        await ok(pem_srv, sign(ec1, claims("pem"), "ES256"), "pem")

    run(go())
    pub_pem = (tmp_path / "rsa1.pem.pub").read_bytes()
    refused = [
        (sign(rsa_other, claims("x"), "RS256", "rsa-1"), b"bad token signature"),
        (sign(rsa1, claims("x"), "RS256", "nobody"), b"unknown token key id"),
        (sign(ec1, claims("x"), "ES256", "rsa-1"), b"unknown token key id"),
        # alg confusion: HS256 with the public key as the secret
        (make_jwt(claims("x"), secret=pub_pem.decode()), b"bad token signature"),
        (make_jwt(claims("x"), alg="none", sign=False), b"unsupported token algorithm"),
        (make_jwt(claims("x"), alg="PS256"), b"unsupported token algorithm"),
        (sign(rsa1, dict(claims("x"), exp=int(time.time()) - 5), "RS256", "rsa-1"),
         b"token expired"),
    ]
    for tok, why in refused:
        status, body = handshake(srv, tok)
        assert status == 401 and why in body, (status, body, why)
    # A server without public keys refuses RS256 and ES256 clearly.
    status, body = handshake(pem_srv, sign(rsa1, claims("x"), "RS256"))
    assert status == 401 and b"no public key" in body, body
    status, body = handshake(pem_srv, token(sub="hs"))
    assert status == 401 and b"no token secret" in body, body


def test_keys_reloaded(tmp_path, start_server):
    k1 = openssl_key(tmp_path / "k1.pem", "ec")
    k2 = openssl_key(tmp_path / "k2.pem", "ec")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk(k1, "one")]}))
    srv = start_server("--jwks", str(jwks))
    assert handshake(srv, sign(k1, claims("a"), "ES256", "one"))[0] == 101
    assert handshake(srv, sign(k2, claims("a"), "ES256", "two"))[0] == 401
    # The file changes: read again within about a second.
    tmp = tmp_path / "jwks.tmp"
    tmp.write_text(json.dumps({"keys": [jwk(k2, "two")]}))
    os.replace(tmp, jwks)
    deadline = time.monotonic() + 5
    while handshake(srv, sign(k2, claims("a"), "ES256", "two"))[0] != 101:
        assert time.monotonic() < deadline, "the new key was not picked up"
        time.sleep(0.2)
    assert handshake(srv, sign(k1, claims("a"), "ES256", "one"))[0] == 401
    # A broken file leaves the keys in place; SIGHUP reads a good one again.
    jwks.write_text("{not json")
    time.sleep(1.5)
    assert handshake(srv, sign(k2, claims("a"), "ES256", "two"))[0] == 101
    assert "not reloaded" in srv.stderr()
    (tmp_path / "jwks.tmp").write_text(json.dumps({"keys": [jwk(k1, "one")]}))
    os.replace(tmp_path / "jwks.tmp", jwks)
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while handshake(srv, sign(k1, claims("a"), "ES256", "one"))[0] != 101:
        assert time.monotonic() < deadline, "SIGHUP did not reload"
        time.sleep(0.2)


def test_bad_key_files_refused_at_start(tmp_path):
    from rchelp import binary_path, free_port
    weak = tmp_path / "weak.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
                    "-out", str(weak)], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(weak), "-pubout", "-out", str(weak) + ".pub"],
                   check=True, capture_output=True)
    for args, why in [(["--jwt-public-key", str(weak) + ".pub"], "2048"),
                      (["--jwks", str(tmp_path / "missing.json")], "cannot be read"),
                      (["--jwt-public-key", str(weak)], "no PEM public key")]:
        p = subprocess.run([binary_path(), "--listen", "127.0.0.1:%d" % free_port(), *args],
                           capture_output=True, timeout=10)
        assert p.returncode == 2 and why in p.stderr.decode(), (args, p.returncode, p.stderr)


def run(coro):
    return asyncio.run(coro)


def test_refresh_keeps_the_connection(start_server):
    from rchelp import recv_json, request
    from test_control_redis import closed_with
    srv = start_server("--token-refresh-notice", "2", "--ping-interval-ms", "0")

    async def go():
        keep = await ws_connect(srv, "/ws?token=" + token(sub="kim", exp_in=4))
        await welcome(keep)
        lapse = await ws_connect(srv, "/ws?token=" + token(sub="lou", exp_in=4))
        await welcome(lapse)
        r = await recv_json(keep, timeout=6)
        assert r["type"] == "refresh" and 0 <= r["expires_in"] <= 2, r
        # Refused: another user's token, a bad one.
        r = await request(keep, {"type": "refresh", "id": 1, "token": token(sub="other")})
        assert r["type"] == "error" and r["code"] == "forbidden" and r["id"] == 1, r
        r = await request(keep, {"type": "refresh", "id": 2, "token": "a.b.c"})
        assert r["type"] == "error" and r["code"] == "bad_token", r
        r = await request(keep, {"type": "refresh", "id": 3, "token": 5})
        assert r["type"] == "error" and r["code"] == "bad_request", r
        new = token(sub="kim", exp_in=3600)
        r = await request(keep, {"type": "refresh", "id": 4, "token": new})
        assert r["type"] == "refreshed" and r["id"] == 4 and r["exp"] > time.time() + 3000, r
        # Past the first token's exp: the refreshed one stays, the other is closed.
        assert await closed_with(lapse, timeout=8) == (4001,
                                                        "token expired: reconnect with a new token")
        await asyncio.sleep(1.0)
        r = await request(keep, {"type": "ping", "id": "p"})
        assert r["type"] == "pong", r
        await keep.close()

    run(go())
