"""Helpers for the ringcast integration tests: the server process, JWTs,
HTTP and metrics, a raw-socket WebSocket client, and websockets-library
shortcuts. Written independently of the C code: everything here follows the
RFCs (6455, 7519) and the documented protocol, not ringcast's sources."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import struct
import subprocess
import time

import websockets

HOST = "127.0.0.1"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SECRET = "integration-test-secret-0123456789"
API_KEY = "integration-api-key"


def binary_path():
    return os.environ.get("RINGCAST_BIN") or os.path.join(REPO, "build", "ringcast")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---- the server process ----------------------------------------------------

class ServerError(Exception):
    pass


class Server:
    """One ringcast process on a free port of 127.0.0.1."""

    def __init__(self, tmp_path, args=(), shards=2, env=None, name="ringcast", preexec_fn=None):
        self.port = free_port()
        self.args = list(args)
        self.stderr_path = os.path.join(str(tmp_path), "%s-%d.log" % (name, self.port))
        cmd = [binary_path(), "--listen", "%s:%d" % (HOST, self.port),
               "--shards", str(shards), "--no-pin", "--node-id", "itest-%d" % self.port]
        cmd += self.args
        self.cmd = cmd
        full_env = dict(os.environ)
        full_env.pop("RINGCAST_JWT_SECRET", None)
        full_env.pop("RINGCAST_API_KEY", None)
        if env:
            full_env.update(env)
        self._log = open(self.stderr_path, "wb")
        # preexec_fn: run in the child before exec, e.g. to set resource
        # limits (RLIMIT_NOFILE) for this process only
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=full_env,
                                     preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        self.exit_checked = False
        self._wait_healthy()

    def stderr(self):
        self._log.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _wait_healthy(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError("ringcast exited with %s at start-up\ncmd: %s\n%s"
                                  % (self.proc.returncode, " ".join(self.cmd), self.stderr()))
            try:
                st, _, _ = http_request(self.port, "GET", "/healthz", timeout=1.0)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise ServerError("ringcast did not answer /healthz in %.0fs\n%s" % (timeout, self.stderr()))

    def url(self, path="/ws"):
        return "ws://%s:%d%s" % (HOST, self.port, path)

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Waits for the exit; returns the exit status, or None on timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout=20.0):
        """SIGTERM, then wait; returns the exit status (SIGKILL after timeout)."""
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            raise ServerError("ringcast (pid %d) did not exit within %.0fs of SIGTERM\n%s"
                              % (self.pid, timeout, self.stderr()[-4000:]))
        return rc

    def close_log(self):
        try:
            self._log.close()
        except Exception:
            pass

    # conveniences
    def metrics(self):
        return get_metrics(self.port)

    def http(self, method, path, headers=None, body=None, timeout=5.0):
        return http_request(self.port, method, path, headers, body, timeout)

    def publish(self, channel, data_text, event=None, key=API_KEY):
        body = '{"channel":%s,%s"data":%s}' % (
            json.dumps(channel), ('"event":%s,' % json.dumps(event)) if event else "", data_text)
        st, _, resp = self.http("POST", "/api/publish",
                                {"X-API-Key": key, "Content-Type": "application/json"},
                                body.encode())
        return st, resp


# ---- JWT (RFC 7519, HS256) -------------------------------------------------

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_jwt(claims, secret=SECRET, alg="HS256", header=None, sign=True):
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    h = b64url(json.dumps(hdr, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = (h + "." + p).encode()
    if not sign:
        return h + "." + p + "."
    sig = hmac.new(secret.encode() if isinstance(secret, str) else secret,
                   signing_input, hashlib.sha256).digest()
    return h + "." + p + "." + b64url(sig)


def token(sub="alice", subscribe=("*",), publish=("*",), exp_in=3600, **extra):
    claims = {"sub": sub}
    if subscribe is not None:
        claims["subscribe"] = list(subscribe)
    if publish is not None:
        claims["publish"] = list(publish)
    if exp_in is not None:
        claims["exp"] = int(time.time()) + exp_in
    claims.update(extra)
    return make_jwt(claims)


# ---- HTTP and metrics ------------------------------------------------------

def recv_all(sock, timeout=5.0):
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def parse_http_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def http_request(port, method, path, headers=None, body=None, timeout=5.0, raw_head=None):
    """One HTTP/1.1 request on a new connection; returns (status, headers, body).
    The server closes the connection after each answer."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        if raw_head is not None:
            req = raw_head
        else:
            h = {"Host": "%s:%d" % (HOST, port)}
            if body is not None:
                h["Content-Length"] = str(len(body))
            h.update(headers or {})
            req = "%s %s HTTP/1.1\r\n" % (method, path)
            req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
            req = req.encode() + (body or b"")
        s.sendall(req)
        raw = recv_all(s, timeout)
    if not raw:
        raise ConnectionError("empty HTTP response")
    return parse_http_response(raw)


def parse_metrics(text):
    out = {}
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        name, _, val = ln.rpartition(" ")
        out[name] = float(val)
    return out


def get_metrics(port):
    st, _, body = http_request(port, "GET", "/metrics")
    assert st == 200, "GET /metrics answered %d" % st
    return parse_metrics(body.decode())


def msum(m, name):
    """Sum of a metric over all its label sets (e.g. per shard)."""
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def delta(after, before, key):
    return after.get(key, 0.0) - before.get(key, 0.0)


# ---- raw WebSocket client (RFC 6455) ---------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def encode_frame(opcode, payload, fin=True, mask=True, rsv=0, mask_key=None):
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return hdr + key + masked


class Closed(Exception):
    pass


class RawWS:
    """A WebSocket client over a plain socket: nothing hidden, nothing
    answered unless asked (pings are not answered by default)."""

    def __init__(self, port, path="/ws", headers=None, rcvbuf=None, timeout=5.0,
                 expect_status=101, source=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        if source:  # another loopback address: a client the node has not seen
            self.sock.bind((source, 0))
        self.sock.connect((HOST, port))
        key = base64.b64encode(os.urandom(16)).decode()
        h = {"Host": "%s:%d" % (HOST, port), "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items())
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            try:
                b = self.sock.recv(65536)
            except ConnectionResetError:
                raise ConnectionError("connection reset before the upgrade answer of %s: %r"
                                      % (path[:60], self.buf))
            if not b:
                break
            self.buf += b
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            raise ConnectionError("no HTTP response to the upgrade of %s (headers %r): %r"
                                  % (path[:60], headers, self.buf))
        self.status, self.headers, _ = parse_http_response(head + b"\r\n\r\n")
        self.buf = rest
        if expect_status is not None and self.status != expect_status:
            raise AssertionError("upgrade answered %d, expected %d" % (self.status, expect_status))
        if self.status == 101:
            expect = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            assert self.headers.get("sec-websocket-accept") == expect
        self.close_code = None
        self.close_reason = None

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload, **kw):
        self.sock.sendall(encode_frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def _need(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(65536)
            if not b:
                raise Closed("EOF")
            self.buf += b

    def recv_frame(self, timeout=5.0):
        """(fin, rsv, opcode, payload); raises Closed on EOF, socket.timeout."""
        self.sock.settimeout(timeout)
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert not (b1 & 0x80), "server frames must not be masked"
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload

    def recv_msg(self, timeout=5.0, answer_pings=False):
        """The next text message (str). Skips pings/pongs; on a close frame
        records code and reason and raises Closed."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.01, deadline - time.monotonic())
            fin, rsv, op, payload = self.recv_frame(left)
            if op == OP_CLOSE:
                self._on_close(payload)
                raise Closed("close %s %r" % (self.close_code, self.close_reason))
            if op == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            assert fin, "ringcast sends whole messages"
            return payload.decode("utf-8") if op == OP_TEXT else payload

    def recv_json(self, timeout=5.0, answer_pings=False):
        return json.loads(self.recv_msg(timeout, answer_pings))

    def _on_close(self, payload):
        if len(payload) >= 2:
            self.close_code = struct.unpack("!H", payload[:2])[0]
            self.close_reason = payload[2:].decode("utf-8")
        else:
            self.close_code = 1005
            self.close_reason = ""

    def wait_close(self, timeout=5.0, answer_pings=False):
        """Reads until the server's close frame; returns (code, reason), or
        (None, None) when the connection ended without one."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no close within %.1fs" % timeout)
            try:
                fin, rsv, op, payload = self.recv_frame(left)
            except (Closed, ConnectionResetError):
                return self.close_code, self.close_reason
            except socket.timeout:
                continue
            if op == OP_CLOSE:
                self._on_close(payload)
                return self.close_code, self.close_reason
            if op == OP_PING and answer_pings:
                self.send_frame(OP_PONG, payload)

    def eof_after(self, timeout=5.0):
        """True when the server ends the TCP connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                b = self.sock.recv(65536)
                if not b:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- websockets-library shortcuts ------------------------------------------

async def ws_connect(server, path="/ws", **kw):
    kw.setdefault("max_size", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 2)
    return await websockets.connect(server.url(path), **kw)


async def recv_json(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def welcome(ws):
    w = await recv_json(ws)
    assert w["type"] == "welcome", w
    return w


async def request(ws, obj, timeout=5.0, skip_messages=True):
    """Sends obj and returns the next reply that is not a channel message."""
    await ws.send(json.dumps(obj))
    while True:
        r = await recv_json(ws, timeout)
        if skip_messages and r.get("type") == "message":
            continue
        return r


async def subscribe(ws, channel, rid="s1"):
    r = await request(ws, {"type": "subscribe", "id": rid, "channel": channel})
    assert r.get("type") == "subscribed" and r.get("channel") == channel and r.get("id") == rid, r
    return r


async def expect_silence(ws, seconds=0.3):
    """Asserts that nothing arrives for a while."""
    try:
        m = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError("unexpected message: %r" % (m,))
