#!/usr/bin/python3
"""The waiting-room demo of `make run`, with the demo secrets it starts
ringcast with (never use them elsewhere).

  admission/demo.py [--port P] setup       wait for the node, create queue "demo",
                                           print how to use it
  admission/demo.py [--port P] join USER   join "demo" as USER; print each position
                                           until admitted, then the admission token;
                                           then complete the purchase, which frees
                                           the place for the next in line

--port is the node's port (default: $RINGCAST_DEMO_PORT, else 8080): the one
`make run PORT=...` was given. Standard library only, plus Debian's
python3-websockets for `join`."""
import base64
import hashlib
import hmac
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

PORT = int(os.environ.get("RINGCAST_DEMO_PORT") or 8080)
REDIS_PORT = None
JWT_SECRET = "demo-jwt-secret"
API_KEY = "demo-api-key"
QUEUE = "demo"
# A short active_ttl: a demo user who does not complete (Ctrl-C) frees the
# place within seconds, so the line keeps moving.
QUEUE_CFG = {"rate": 2, "max_active": 5, "active_ttl": 15, "abandon_timeout": 60,
             "state": "open"}


def base():
    return "http://127.0.0.1:%d" % PORT


def ws_url():
    return "ws://127.0.0.1:%d/ws" % PORT


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def client_token(user):
    """A client JWT (HS256) for USER, valid for an hour."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": user, "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(JWT_SECRET.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256)
    return "%s.%s.%s" % (head, body, b64url(sig.digest()))


def api(method, path, body):
    req = urllib.request.Request(base() + path, method=method, data=json.dumps(body).encode(),
                                 headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def setup():
    deadline = time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(base() + "/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.time() > deadline:
            sys.exit("demo: the node on port %d did not become ready" % PORT)
        time.sleep(0.2)
    cfg = api("PUT", "/api/queues/" + QUEUE, QUEUE_CFG)
    me = "/usr/bin/python3 admission/demo.py" + ("" if PORT == 8080 else " --port %d" % PORT)
    lines = [
        "ringcast: WebSocket endpoint %s  (metrics: %s/metrics)" % (ws_url(), base()),
        "          try: /usr/bin/python3 -m websockets %s" % ws_url(),
        "               > {\"type\":\"subscribe\",\"id\":1,\"channel\":\"demo:news\"}",
    ]
    if REDIS_PORT:
        lines.append("          publish: redis-cli -p %d PUBLISH rc:ch:demo:news "
                     "'{\"data\":\"hi\"}'" % REDIS_PORT)
    lines += [
        "          waiting room %r open: %d admitted per second, at most %d at a time"
        % (QUEUE, cfg["rate"], cfg["max_active"]),
        "          join it:  %s join alice" % me,
        "          (demo secrets, in admission/demo.py: for this machine only)",
    ]
    print("\n".join(lines), flush=True)


def join(user):
    import asyncio
    import websockets

    async def run():
        async with websockets.connect(ws_url() + "?token=" + client_token(user)) as ws:
            await ws.recv()  # welcome
            await ws.send(json.dumps({"type": "queue.join", "id": 1, "queue": QUEUE}))
            ticket = None
            async for raw in ws:
                m = json.loads(raw)
                if m["type"] == "queue.joined":
                    ticket = m["ticket"]
                    pos, eta = m["position"], m["eta"]
                elif m["type"] == "queue.tick":
                    # one message for every waiter: each works out its own place
                    pos = max(ticket - m["head"], 1)
                    eta = (math.ceil(pos / m["ewma"] * m["tick"] / 1000.0)
                           if m["ewma"] >= 0.01 else None)
                if m["type"] in ("queue.joined", "queue.tick"):
                    print("%s: position %d, about %s s to wait" %
                          (user, pos, eta if eta is not None else "?"))
                elif m["type"] == "admitted":
                    print("%s: admitted; token (valid until %s):\n%s" %
                          (user, time.strftime("%H:%M:%S", time.localtime(m["expires"] / 1000)),
                           m["token"]))
                    # The purchase: the ticketing backend completes it, which
                    # frees the place for the next in line.
                    done = api("POST", "/api/queues/%s/complete" % QUEUE, {"user": user})
                    print("%s: purchase complete, place freed: %s" % (user, done["freed"]))
                    return
                else:
                    print(raw)
                    if m["type"] == "error":
                        return

    asyncio.run(run())


def main(argv):
    global PORT, REDIS_PORT
    while len(argv) >= 2 and argv[0] in ("--port", "--redis-port"):
        if not argv[1].isdigit():
            sys.exit(__doc__)
        if argv[0] == "--port":
            PORT = int(argv[1])
        else:
            REDIS_PORT = int(argv[1])
        argv = argv[2:]
    if argv == ["setup"]:
        setup()
    elif len(argv) == 2 and argv[0] == "join":
        join(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
