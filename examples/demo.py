#!/usr/bin/python3
"""Runs every example at once (`make demo`): a private redis-server, three
ringcast nodes sharing it, the examples' backends, and a web server for the
pages; prints the URLs and runs until Ctrl-C, then stops everything it
started.

  examples/demo.py [--port 8000] [--node-ports 8101,8102,8103] [--redis-port 16400]
  examples/demo.py --free-ports --ready FILE    (the browser tests: free ports,
                                                 the URLs written to FILE as JSON)

The secrets are demo secrets: never use them elsewhere.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import web  # noqa: E402

JWT_SECRET = "demo-jwt-secret"
API_KEY = "demo-api-key"
ADMISSION_SECRET = "demo-admission-secret"
QUEUE = "sale"

# What the nodes keep and where client events go: the same on every node.
NODE_RULES = [
    "--history", "votes:* size=1 ttl=86400",        # the latest tally
    "--history", "seats:* size=1 ttl=86400",        # the latest seat map
    "--history", "stock:* size=1000 ttl=86400",     # every stock change, to recover
    "--history", "chat:* size=100 ttl=86400",       # a room's last 100 messages
    "--history", "user:* size=100 ttl=86400",       # a user's notifications
    "--presence", "votes:* join_leave",
    "--presence", "chat:* join_leave",
    "--event-stream", "vote:* votes",
    "--event-stream", "seat:* tickets",
    "--event-stream", "chat:* chat",
    "--event-stream", "notify:* notify",
    "--lifecycle-stream", "life",
    "--lifecycle-timeout", "5",
]

BACKENDS = ["voting/backend.py", "ticketing/backend.py", "chat/backend.py",
            "notifications/backend.py"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            time.sleep(0.05)
    raise SystemExit("demo: %s did not answer" % url)


def api(port, method, path, body):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + API_KEY})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8000, help="the web server's port")
    ap.add_argument("--node-ports", default="8101,8102,8103")
    ap.add_argument("--redis-port", type=int, default=16400)
    ap.add_argument("--free-ports", action="store_true")
    ap.add_argument("--ready", help="write the URLs here as JSON once all is up")
    ap.add_argument("--bin", default=os.environ.get("RINGCAST_BIN",
                                                    os.path.join(ROOT, "build", "ringcast")))
    args = ap.parse_args()
    node_ports = [int(p) for p in args.node_ports.split(",")]
    if args.free_ports:
        args.port, args.redis_port = free_port(), free_port()
        node_ports = [free_port() for _ in node_ports]

    procs = []

    def stop(*_):
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        os._exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    quiet = {"stdout": subprocess.DEVNULL} if args.ready else {}
    procs.append(subprocess.Popen(
        ["redis-server", "--port", str(args.redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL))
    redis_url = "redis://127.0.0.1:%d" % args.redis_port
    env = dict(os.environ, RINGCAST_JWT_SECRET=JWT_SECRET, RINGCAST_API_KEY=API_KEY,
               RINGCAST_ADMISSION_SECRET=ADMISSION_SECRET)
    for i, port in enumerate(node_ports):
        procs.append(subprocess.Popen(
            [args.bin, "--listen", "127.0.0.1:%d" % port, "--node-id", "edge-%d" % (i + 1),
             "--shards", "1", "--redis", redis_url, "--log-level", "warn"] + NODE_RULES,
            env=env))
    for port in node_ports:
        wait_http("http://127.0.0.1:%d/healthz" % port)
    # The sale's waiting room: 2 people a second, at most 50 in at once.
    for _ in range(100):
        try:
            api(node_ports[0], "PUT", "/api/queues/" + QUEUE,
                {"rate": 2, "max_active": 50, "active_ttl": 600, "abandon_timeout": 30,
                 "state": "open"})
            break
        except Exception:
            time.sleep(0.1)  # Redis not reached yet
    first_api = "http://127.0.0.1:%d" % node_ports[0]
    for b in BACKENDS:
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, b), "--redis", redis_url, "--api", first_api,
             "--api-key", API_KEY], **quiet))

    nodes = ["ws://127.0.0.1:%d/ws" % p for p in node_ports]
    server = web.serve(args.port, nodes, JWT_SECRET, QUEUE)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = "http://127.0.0.1:%d" % args.port
    urls = {"site": site, "nodes": nodes, "api": ["http://127.0.0.1:%d" % p for p in node_ports],
            "redis": redis_url, "api_key": API_KEY}
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            json.dump(urls, f)
        os.rename(args.ready + ".tmp", args.ready)
    print("""
ringcast examples: three nodes (%s), Redis on %d, backends running.
Open two windows with different users (?user=NAME) to see them talk:

  a. live voting           %s/voting/?user=alice
  b. ticketing             %s/ticketing/?user=alice
  c. three nodes, recovery %s/three-nodes/?user=alice
  d. notifications         %s/notifications/?user=alice
  e. chat rooms            %s/chat/?user=alice

Ctrl-C stops everything.""" % (", ".join(str(p) for p in node_ports), args.redis_port,
                                site, site, site, site, site), flush=True)
    while True:
        for p in procs:
            if p.poll() is not None:
                print("demo: %s exited (%s); stopping" % (p.args[0], p.returncode),
                      file=sys.stderr, flush=True)
                stop()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
