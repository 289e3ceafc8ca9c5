"""Smoke tests for the benchmark peers (bench_protocol: dialects "ringcast" and
"socketio"): the naive C floor (build/naive), the Node `ws` peer and the
Socket.IO + Redis adapter peer (perf/peers). Each test starts the peer on a
free port, subscribes two clients, publishes from one, and checks that both
receive exactly the message the protocol describes. Expected texts are
written out here from the protocol, not taken from the servers."""
import asyncio
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import time

import pytest
import websockets

HOST = "127.0.0.1"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PEERS = os.path.join(REPO, "perf", "peers")
NAIVE = os.environ.get("NAIVE_BIN") or os.path.join(REPO, "build", "naive")
TIMEOUT = 5.0

# The broadcast payload shape from bench_protocol.md, 64 bytes of data text.
DATA = '{"t":123456789,"i":0,"p":"%s"}'
DATA = DATA % ("x" * (64 - len(DATA % "")))
assert len(DATA) == 64


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Proc:
    """A peer process that prints "listening on PORT" when ready."""

    def __init__(self, cmd, ready, cwd=None):
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT
        self.out = b""
        while ready.encode() not in self.out:
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.stop(check=False)
                raise AssertionError("%s did not start: %r" % (cmd, self.out[-2000:]))
            # os.read, not readline: a buffered reader could hold the line select waits for.
            if select.select([self.p.stdout], [], [], 0.1)[0]:
                self.out += os.read(self.p.stdout.fileno(), 65536)

    def stop(self, check=True):
        """SIGTERM, then wait; a peer must exit 0 within TIMEOUT seconds."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                if check:
                    raise AssertionError("%s ignored SIGTERM" % self.cmd)
        self.out += self.p.stdout.read() or b""
        self.p.stdout.close()
        if check:
            assert self.p.returncode == 0, "%s exited %s: %r" % (
                self.cmd, self.p.returncode, self.out[-2000:])


@pytest.fixture
def procs():
    started = []
    yield started
    errors = []
    for pr in reversed(started):
        try:
            pr.stop()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


def need_node():
    if shutil.which("node") is None:
        pytest.skip("node is not installed (the Node peers need Node.js)")
    if not os.path.isdir(os.path.join(PEERS, "node_modules")):
        pytest.skip("perf/peers/node_modules is missing: run `cd perf/peers && npm ci`")


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


# ---- dialect "ringcast" ----------------------------------------------------

async def ringcast_exchange(port):
    url = "ws://%s:%d/ws" % (HOST, port)
    async with websockets.connect(url, ping_interval=None) as a, \
            websockets.connect(url, ping_interval=None) as b:
        for i, c in enumerate((a, b)):
            await c.send('{"type":"subscribe","id":%d,"channel":"bench.1"}' % (i + 1))
            reply = json.loads(await recv(c))
            assert reply["type"] == "subscribed"
            assert reply["id"] == i + 1 and reply["channel"] == "bench.1"
        # WebSocket ping -> pong (the websockets library checks the payload).
        pong = await a.ping(b"floor")
        await asyncio.wait_for(pong, TIMEOUT)

        await a.send('{"type":"publish","id":7,"channel":"bench.1","data":%s}' % DATA)
        want = ('{"type":"message","channel":"bench.1","event":"message","seq":1,"data":%s}'
                % DATA)
        for c in (a, b):
            got = await recv(c)
            while json.loads(got)["type"] == "published":  # optional ack to the publisher
                got = await recv(c)
            assert got == want

        # A channel nobody else holds reaches nobody: b gets nothing but its own reply.
        await a.send('{"type":"publish","id":8,"channel":"other","data":1}')
        await b.send('{"type":"subscribe","id":3,"channel":"bench.2"}')
        assert json.loads(await recv(b))["type"] == "subscribed"


def test_naive_fanout(procs):
    if not os.access(NAIVE, os.X_OK):
        pytest.skip("build/naive is not built: run `make build/naive`")
    port = free_port()
    procs.append(Proc([NAIVE, "--listen", "%s:%d" % (HOST, port)], "listening on %d" % port))
    asyncio.run(ringcast_exchange(port))


def test_naive_rejects_other_paths(procs):
    if not os.access(NAIVE, os.X_OK):
        pytest.skip("build/naive is not built: run `make build/naive`")
    port = free_port()
    procs.append(Proc([NAIVE, "--listen", "%s:%d" % (HOST, port)], "listening on %d" % port))
    with socket.create_connection((HOST, port), TIMEOUT) as s:
        s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 404 ")


def test_ws_peer_fanout(procs):
    need_node()
    port = free_port()
    procs.append(Proc(["node", "ws-server.js", "--host", HOST, "--port", str(port)],
                      "listening on %d" % port, cwd=PEERS))
    asyncio.run(ringcast_exchange(port))


# ---- dialect "socketio" ----------------------------------------------------

class EngineIO:
    """A hand-written Engine.IO v4 / Socket.IO v5 client over one WebSocket."""

    def __init__(self, ws):
        self.ws = ws
        self.pings = 0

    async def next(self):
        """The next non-ping packet; answers each ping ("2") with a pong ("3")."""
        while True:
            pkt = await recv(self.ws)
            if pkt == "2":
                self.pings += 1
                await self.ws.send("3")
                continue
            return pkt

    async def open(self):
        pkt = await self.next()
        assert pkt[0] == "0", pkt
        hello = json.loads(pkt[1:])
        assert hello["sid"] and hello["pingInterval"] > 0
        await self.ws.send("40")
        pkt = await self.next()
        assert pkt.startswith("40{"), pkt
        assert json.loads(pkt[2:])["sid"]

    async def emit(self, *args):
        await self.ws.send("42" + json.dumps(list(args), separators=(",", ":")))


async def socketio_exchange(port):
    url = "ws://%s:%d/socket.io/?EIO=4&transport=websocket" % (HOST, port)
    async with websockets.connect(url, ping_interval=None) as wa, \
            websockets.connect(url, ping_interval=None) as wb:
        a, b = EngineIO(wa), EngineIO(wb)
        for c in (a, b):
            await c.open()
            await c.emit("subscribe", "bench.1")
            assert await c.next() == '42["subscribed","bench.1"]'

        # The server pings every 200 ms here; answering keeps the session up.
        deadline = time.monotonic() + 0.7
        while a.pings < 2 and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(a.next(), 0.1)
                raise AssertionError("unexpected packet while idle")
            except asyncio.TimeoutError:
                pass
        assert a.pings >= 2

        await wa.send('42["publish",{"channel":"bench.1","data":%s}]' % DATA)
        want = '42["message",{"channel":"bench.1","data":%s}]' % DATA
        assert await a.next() == want
        assert await b.next() == want


def test_socketio_peer_fanout(procs):
    need_node()
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (the Socket.IO peer needs Redis)")
    rport = free_port()
    procs.append(Proc(["redis-server", "--port", str(rport), "--bind", HOST, "--save", "",
                       "--appendonly", "no"], "Ready to accept connections"))
    port = free_port()
    procs.append(Proc(["node", "sio-server.js", "--host", HOST, "--port", str(port),
                       "--redis", "redis://%s:%d" % (HOST, rport), "--ping-interval", "200"],
                      "listening on %d" % port, cwd=PEERS))
    asyncio.run(socketio_exchange(port))
