"""Helpers for the Redis (issue 4) integration tests: a redis-server process
that can be killed, paused and restarted on the same port, a tiny RESP client
(RESP2, as the Redis protocol documentation describes it), /proc readings, and
an asyncio collector that keeps reading a WebSocket into a list."""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time

from rchelp import HOST, free_port, http_request

REDIS_SERVER = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") \
    or "/usr/bin/redis-server"


class RespError(Exception):
    """An error reply (-ERR ...) from Redis."""


# ---- RESP client -------------------------------------------------------------

def resp_encode(*args):
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def slot_of(key):
    """Redis Cluster's hash slot of key (str or bytes), hash tags included."""
    k = key.encode() if isinstance(key, str) else bytes(key)
    i = k.find(b"{")
    if i >= 0:
        j = k.find(b"}", i + 1)
        if j > i + 1:
            k = k[i + 1:j]
    return _crc16(k) % 16384


def shard_name(name):
    """A ringcast channel's Redis name on a Redis Cluster: PREFIX ch:C is
    PREFIX ch:{C} there (PREFIX ch:queue:{Q} for queue:Q), a shard channel
    in C's slot. Other names are left as they are."""
    raw = isinstance(name, bytes)
    s = name.decode() if raw else name
    i = s.find("ch:")
    if i >= 0 and "{" not in s:
        head, rest = s[:i + 3], s[i + 3:]
        if rest.startswith("queue:") and len(rest) > 6:
            s = head + "queue:{" + rest[6:] + "}"
        else:
            s = head + "{" + rest + "}"
    return s.encode() if raw else s


def plain_name(name):
    """shard_name's inverse: the name as one Redis has it."""
    raw = isinstance(name, bytes)
    s = name.decode() if raw else name
    i = s.find("ch:")
    if i >= 0 and s.endswith("}") and "{" in s[i:]:
        s = s[:i] + s[i:].replace("{", "", 1)[:-1]
    return s.encode() if raw else s


class Resp:
    """One Redis connection. command() sends one command and returns its
    reply: str for +simple, int, bytes (or None) for bulk, list for arrays;
    error replies raise RespError.

    cluster=True: the connection talks to a Redis Cluster as a backend must
    (docs/BACKENDS.md): ringcast's channels (PREFIX ch:C) are shard
    channels named PREFIX ch:{C}. PUBLISH, SUBSCRIBE, PUBSUB NUMSUB and
    PUBSUB CHANNELS on them are sent as their shard forms, and names come
    back in the one-Redis form, so that a test reads the same either way."""

    def __init__(self, port, timeout=5.0, cluster=False):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.cluster = cluster
        self.port = port

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # own buffering: a socket file object is unusable after a timeout, and
    # the tests time out reads on purpose (a paused Redis)
    def _fill(self):
        b = self.sock.recv(65536)
        if not b:
            raise ConnectionError("Redis closed the connection")
        self.buf += b

    def _readline(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _readn(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, *args):
        self.sock.sendall(resp_encode(*args))

    def read_reply(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        line = self._readline()
        kind, body = line[:1], line[1:]
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            raise RespError(body.decode())
        if kind == b":":
            return int(body)
        if kind == b"$":
            n = int(body)
            if n < 0:
                return None
            return self._readn(n + 2)[:-2]
        if kind == b"*":
            n = int(body)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        raise ConnectionError("unexpected RESP type byte in %r" % line)

    def command(self, *args):
        if self.cluster:
            return self._cluster_command(*args)
        self.send(*args)
        return self.read_reply()

    def _cluster_command(self, *args):
        verb = args[0].upper() if isinstance(args[0], str) else args[0].decode().upper()
        sub = (args[1].upper() if len(args) > 1 and isinstance(args[1], str) else "")
        if verb == "PUBLISH" and "ch:" in str(args[1]):
            return self._routed(shard_name(args[1]), "SPUBLISH", shard_name(args[1]), *args[2:])
        if verb == "SUBSCRIBE" and all("ch:" in str(a) for a in args[1:]):
            names = [shard_name(a) for a in args[1:]]
            r = self._routed(names[0], "SSUBSCRIBE", *names)
            return [b"subscribe", plain_name(r[1])] + r[2:]
        if verb == "PUBSUB" and sub == "NUMSUB" and all("ch:" in str(a) for a in args[2:]):
            out = []
            for a in args[2:]:  # each where its slot lives (counts are per node)
                self._goto_slot(slot_of(shard_name(a)))
                r = self._plain("PUBSUB", "SHARDNUMSUB", shard_name(a))
                out += [plain_name(r[0]), r[1]]
            return out
        if verb == "PUBSUB" and sub == "CHANNELS":
            out = []
            for port in self._primaries():
                with Resp(port, self.sock.gettimeout()) as c:
                    out += [plain_name(x) for x in c.command("PUBSUB", "SHARDCHANNELS", *args[2:])]
            return out + self._plain("PUBSUB", "CHANNELS", *args[2:])
        if verb in ("EVAL", "EVALSHA") and len(args) > 3 and str(args[2]) != "0":
            return self._routed(args[3], *args)
        if len(args) > 1 and verb not in ("PUBSUB", "CLUSTER", "INFO", "PING", "CONFIG",
                                          "SCRIPT", "FLUSHALL", "DBSIZE", "KEYS", "SCAN"):
            return self._routed(args[1], *args)
        return self._plain(*args)

    def _plain(self, *args):
        self.send(*args)
        return self.read_reply()

    def _primaries(self):
        return sorted({e[2][1] for e in self._plain("CLUSTER", "SLOTS")})

    def _reconnect(self, port):
        if port == self.port:
            return
        timeout = self.sock.gettimeout()
        self.close()
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.port = port

    def _goto_slot(self, slot):
        for e in self._plain("CLUSTER", "SLOTS"):
            if e[0] <= slot <= e[1]:
                self._reconnect(e[2][1])
                return

    def _routed(self, key, *args):
        """args sent where key's slot lives, following MOVED (a backend's
        cluster client does the same)."""
        self._goto_slot(slot_of(key))
        for _ in range(5):
            try:
                return self._plain(*args)
            except RespError as e:
                if not str(e).startswith(("MOVED", "ASK")):
                    raise
                self._reconnect(int(str(e).rsplit(":", 1)[1]))
        return self._plain(*args)

    def ping(self):
        return self.command("PING")

    def publish(self, channel, payload):
        """PUBLISH; returns the number of subscribers (connections) that got it."""
        return self.command("PUBLISH", channel, payload)

    def numsub(self, channel):
        r = self.command("PUBSUB", "NUMSUB", channel)
        assert len(r) == 2 and r[0] == (channel.encode() if isinstance(channel, str)
                                        else channel), r
        return r[1]

    def channels(self, pattern="*"):
        return sorted(c.decode() for c in self.command("PUBSUB", "CHANNELS", pattern))

    # subscriber mode (this connection then only reads pushes)
    def subscribe(self, channel):
        r = self.command("SUBSCRIBE", channel)
        assert r[0] == b"subscribe", r
        return r

    def next_message(self, timeout=5.0):
        """(channel bytes, payload bytes) of the next pub/sub message;
        socket.timeout when nothing comes."""
        while True:
            r = self.read_reply(timeout)
            if isinstance(r, list) and r and r[0] == b"message":
                return r[1], r[2]
            if isinstance(r, list) and r and r[0] == b"smessage":
                return plain_name(r[1]), r[2]


# ---- the redis-server process -------------------------------------------------

def cluster_port():
    """A free port whose cluster bus port (10000 above, so at most 55535) is
    free too."""
    for _ in range(1000):
        p = free_port()
        if p > 55535:
            continue
        s = socket.socket()
        try:
            s.bind((HOST, p + 10000))
            return p
        except OSError:
            pass
        finally:
            s.close()
    raise RuntimeError("no port for a cluster node")


class RedisServer:
    """redis-server on 127.0.0.1:port, no persistence (unless persist=True). The port stays the
    same across kill()/start() so the nodes' Redis URL keeps pointing at it."""

    def __init__(self, tmp_path, port=None, persist=False, cluster=None):
        # persist=True: an append-only file fsynced on every write, in
        # tmp_path, so that the data survives a SIGKILL and a start()
        # cluster=True (or RINGCAST_TEST_REDIS_CLUSTER=1): a one-node Redis
        # Cluster that owns every slot, which refuses a command or script
        # whose keys are in different slots (CROSSSLOT) as a real cluster does
        self.persist = persist
        self.cluster = cluster if cluster is not None else \
            os.environ.get("RINGCAST_TEST_REDIS_CLUSTER") == "1"
        self.port = port or (cluster_port() if self.cluster else free_port())
        self.dir = str(tmp_path)
        self.log_path = os.path.join(self.dir, "redis-%d.log" % self.port)
        self.proc = None
        self.paused = False
        self.starts = 0
        self.start()

    @property
    def url(self):
        return "redis://%s:%d/0" % (HOST, self.port)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self, timeout=10.0):
        assert self.proc is None or self.proc.poll() is not None, "redis-server already running"
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST,
               "--save", "", "--appendonly", "yes" if self.persist else "no", "--dir", self.dir,
               "--daemonize", "no", "--loglevel", "warning"]
        if self.persist:
            cmd += ["--appendfsync", "always"]
        if self.cluster:
            cmd += ["--cluster-enabled", "yes", "--cluster-announce-ip", HOST,
                    "--cluster-config-file", "nodes-%d.conf" % self.port]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        finally:
            log.close()
        self.paused = False
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %s at start-up\n%s"
                                   % (self.proc.returncode, self.log()[-3000:]))
            try:
                with Resp(self.port, timeout=1.0) as c:
                    if c.ping() == "PONG":
                        if self.cluster:
                            self._own_all_slots(c, deadline)
                        return
            except (OSError, RespError, ConnectionError):
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("redis-server did not answer PING in %.0fs\n%s"
                           % (timeout, self.log()[-3000:]))

    def _own_all_slots(self, c, deadline):
        try:
            c.command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        except RespError:
            pass  # a restart: nodes-PORT.conf kept them
        while time.monotonic() < deadline:
            if "cluster_state:ok" in str(c.command("CLUSTER", "INFO")):
                return
            time.sleep(0.05)
        raise RuntimeError("the one-node cluster did not reach cluster_state:ok")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL and reap (a stopped process dies of SIGKILL too)."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.paused = False

    def stop(self):
        """SIGTERM (no persistence configured, so it exits at once)."""
        if self.alive():
            if self.paused:
                self.resume()
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self):
        self.kill()
        self.start()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def client(self, timeout=5.0):
        return Resp(self.port, timeout, cluster=self.cluster)

    def close(self):
        """For teardown: never leave a stopped or running redis-server behind."""
        if self.alive():
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except OSError:
                pass
            self.stop()


# ---- process and HTTP readings ------------------------------------------------

def vm_rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def readyz(port, timeout=2.0):
    """(status, body text) of GET /readyz."""
    st, _, body = http_request(port, "GET", "/readyz", timeout=timeout)
    return st, body.decode("utf-8", "replace").strip()


def _polls(pred, timeout, what):
    """pred()'s values until one is true (the generator then returns it), or
    an AssertionError naming what and the last value after timeout seconds.
    The caller sleeps between values, blocking or not."""
    deadline = time.monotonic() + timeout
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        yield last


def wait_until(pred, timeout, what, interval=0.02):
    """Polls pred() until it returns a true value (returned), or fails with
    what and the last value after timeout seconds."""
    polls = _polls(pred, timeout, what)
    while True:
        try:
            next(polls)
        except StopIteration as done:
            return done.value
        time.sleep(interval)


async def async_wait_until(pred, timeout, what, interval=0.02):
    """wait_until for coroutines: sleeps without blocking the event loop."""
    polls = _polls(pred, timeout, what)
    while True:
        try:
            next(polls)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(interval)


# ---- a WebSocket reader in the background -------------------------------------

class Collector:
    """Reads a websockets connection in a task after the caller got its
    replies: messages (type "message") go to .messages, everything else to
    .others, both as parsed JSON, in arrival order."""

    def __init__(self, ws, name=""):
        self.ws = ws
        self.name = name
        self.messages = []
        self.others = []
        self.error = None
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                (self.messages if m.get("type") == "message" else self.others).append(m)
        except Exception as exc:  # closed by the test, or a real failure
            self.error = exc

    def notices(self, code="messages_dropped"):
        return [o for o in self.others if o.get("type") == "error" and o.get("code") == code]

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


# ---- a Redis channel reader in the background (waiting-room ticks) -------------

class ChannelListener:
    """Subscribes a plain Redis connection to one channel and keeps reading
    it in a thread: .items holds (monotonic receipt time, parsed JSON payload)
    in arrival order. Payloads that are not JSON are kept as bytes."""

    def __init__(self, port, channel, cluster=None):
        import threading
        if cluster is None:  # as the redis_server fixture's
            cluster = os.environ.get("RINGCAST_TEST_REDIS_CLUSTER") in ("1", "3")
        self.channel = channel
        self.items = []
        self.error = None
        self._stop = threading.Event()
        self._conn = Resp(port, cluster=cluster)
        self._conn.subscribe(channel)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                _, payload = self._conn.next_message(timeout=0.2)
            except socket.timeout:
                continue
            except Exception as exc:  # Redis went away, or closed by stop()
                if not self._stop.is_set():
                    self.error = exc
                return
            try:
                item = json.loads(payload)
            except ValueError:
                item = payload
            self.items.append((time.monotonic(), item))

    def ticks(self):
        """The data of the queue.tick events received so far."""
        return [d["data"] for _, d in list(self.items)
                if isinstance(d, dict) and d.get("event") == "queue.tick"]

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._conn.close()
