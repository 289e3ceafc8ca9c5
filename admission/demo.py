#!/usr/bin/python3
"""The waiting-room demo of `make run`, with the demo secrets it starts
ringcast with (never use them elsewhere).

  admission/demo.py setup           wait for the node, create queue "demo"
  admission/demo.py join USER       join "demo" as USER; print each position
                                    until admitted, then the admission token

Standard library only, plus Debian's python3-websockets for `join`."""
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request

BASE = "http://127.0.0.1:8080"
WS = "ws://127.0.0.1:8080/ws"
JWT_SECRET = "demo-jwt-secret"
API_KEY = "demo-api-key"
QUEUE = "demo"
QUEUE_CFG = {"rate": 2, "max_active": 5, "active_ttl": 60, "abandon_timeout": 60,
             "state": "open"}


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def client_token(user):
    """A client JWT (HS256) for USER, valid for an hour."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": user, "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(JWT_SECRET.encode(), ("%s.%s" % (head, body)).encode(), hashlib.sha256)
    return "%s.%s.%s" % (head, body, b64url(sig.digest()))


def setup():
    deadline = time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(BASE + "/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.time() > deadline:
            sys.exit("demo: the node did not become ready")
        time.sleep(0.2)
    req = urllib.request.Request(BASE + "/api/queues/" + QUEUE, method="PUT",
                                 data=json.dumps(QUEUE_CFG).encode(),
                                 headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(req, timeout=5) as r:
        cfg = json.loads(r.read())
    print("demo: waiting room %r open: %d admitted per second, at most %d at a time" %
          (QUEUE, cfg["rate"], cfg["max_active"]))
    print("demo: join it with  /usr/bin/python3 admission/demo.py join alice")


def join(user):
    import asyncio
    import websockets

    async def run():
        async with websockets.connect(WS + "?token=" + client_token(user)) as ws:
            await ws.recv()  # welcome
            await ws.send(json.dumps({"type": "queue.join", "id": 1, "queue": QUEUE}))
            async for raw in ws:
                m = json.loads(raw)
                if m["type"] in ("queue.joined", "queue.position"):
                    print("%s: position %d, about %s s to wait" %
                          (user, m["position"], m["eta"] if m["eta"] is not None else "?"))
                elif m["type"] == "admitted":
                    print("%s: admitted; token (valid until %s):\n%s" %
                          (user, time.strftime("%H:%M:%S", time.localtime(m["expires"] / 1000)),
                           m["token"]))
                    return
                else:
                    print(raw)
                    if m["type"] == "error":
                        return

    asyncio.run(run())


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "setup":
        setup()
    elif len(sys.argv) == 3 and sys.argv[1] == "join":
        join(sys.argv[2])
    else:
        sys.exit(__doc__)
