"""The backend guide's workers (examples/backend/worker.py and worker.js),
run as they are against two nodes and a real Redis: together in one consumer
group they answer every event of a client on either node, take over what a
dead worker left, call the control API, and answer unknown events with an
error."""
import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest

from rchelp import API_KEY, recv_json, request, token, welcome, ws_connect
from test_control_redis import closed_with
from test_redis_cluster import start_nodes

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "examples", "backend")
FLAGS = ("--event-stream", "seat:* seats",)


def run(coro):
    return asyncio.run(coro)


def start_worker(kind, redis_server, api_port, name):
    args = ["--redis", redis_server.url, "--stream", "seats", "--name", name,
            "--api", "http://127.0.0.1:%d" % api_port, "--api-key", API_KEY,
            "--claim-idle-ms", "200"]
    if kind == "py":
        cmd = [sys.executable, os.path.join(EXAMPLE, "worker.py")] + args
        env = dict(os.environ, PYTHONPATH="")
    else:
        if not shutil.which("node") or not os.path.isdir(os.path.join(EXAMPLE, "node_modules")):
            pytest.fail("node and examples/backend/node_modules are needed (make deps)")
        cmd = ["node", os.path.join(EXAMPLE, "worker.js")] + args
        env = dict(os.environ)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         cwd=EXAMPLE)
    line = p.stdout.readline().decode()
    assert "reading" in line, line + p.stdout.read().decode()
    return p


def test_workers_answer_claim_and_control(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "AB", pub_flags=FLAGS)
    A, B = nodes["A"], nodes["B"]
    cli = redis_server.client()
    key = "rc:ev:seats"
    workers = []

    async def go():
        ws = await ws_connect(A, "/ws?token=" + token(sub="ann"))
        await welcome(ws)
        # Left by a worker that died: read, never acknowledged.
        cli.command("XGROUP", "CREATE", key, "workers", "$", "MKSTREAM")
        r = await request(ws, {"type": "event", "id": "orphan", "event": "seat:select",
                               "data": {"seat": "Z9"}})
        assert r["type"] == "event_ack", r
        cli.command("XREADGROUP", "GROUP", "workers", "dead", "COUNT", "10", "STREAMS", key, ">")
        workers.append(start_worker("py", redis_server, B.port, "py-1"))
        workers.append(start_worker("js", redis_server, B.port, "js-1"))
        r = await recv_json(ws, timeout=10)
        assert r["type"] == "reply" and r["id"] == "orphan", r
        assert r["data"]["seat"] == "Z9" and r["data"]["user"] == "ann", r
        # Events from both nodes, answered by whichever worker takes them.
        b = await ws_connect(B, "/ws?token=" + token(sub="bea"))
        await welcome(b)
        by = set()
        for i in range(20):
            ws_i = ws if i % 2 else b
            await ws_i.send(json.dumps({"type": "event", "id": i, "event": "seat:select",
                                        "data": {"seat": "A%d" % i}}))
        for ws_i, ids in ((ws, range(1, 20, 2)), (b, range(0, 20, 2))):
            got = {}
            while len(got) < len(ids):
                m = await recv_json(ws_i, timeout=10)
                if m["type"] == "reply":
                    got[m["id"]] = m["data"]
                else:
                    assert m["type"] == "event_ack", m
            assert sorted(got) == list(ids)
            assert all(d["seat"] == "A%d" % i for i, d in got.items())
            by |= {d["by"] for d in got.values()}
        assert by <= {"py-1", "js-1"} and by, by
        # A worker calls the control API.
        mal = await ws_connect(B, "/ws?token=" + token(sub="mallory"))
        await welcome(mal)
        r = await request(ws, {"type": "event", "id": "k", "event": "seat:kick",
                               "data": {"user": "mallory"}})
        while r["type"] != "reply":
            r = await recv_json(ws, timeout=10)
        assert r["data"]["ok"] is True, r
        code, reason = await closed_with(mal)
        assert code == 4100 and reason.startswith("kicked by "), (code, reason)
        # An event no handler knows gets an error reply.
        r = await request(ws, {"type": "event", "id": "u", "event": "seat:other"})
        while r["type"] != "reply":
            r = await recv_json(ws, timeout=10)
        assert r["error"]["code"] == "unknown", r
        # Every event was acknowledged and removed (just after its reply).
        for _ in range(100):
            if cli.command("XLEN", key) == 0:
                break
            await asyncio.sleep(0.05)
        assert cli.command("XLEN", key) == 0
        assert cli.command("XPENDING", key, "workers")[0] == 0

    try:
        run(go())
    finally:
        for p in workers:
            p.terminate()
            p.wait(timeout=10)
