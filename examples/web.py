#!/usr/bin/python3
"""The examples' web server: static pages, the JavaScript client, and a
stand-in for your auth service that hands out ringcast tokens.

  GET /voting/ ...            the example pages (this folder)
  GET /client/ringcast.js     the client (clients/js)
  GET /api/config             {"nodes": [ws URLs of the nodes], "queue": "sale"}
  GET /api/token?user=NAME    {"token": a JWT for NAME, valid for an hour}

The token is what a real site's login would issue: HS256 with the nodes'
--jwt-secret, `sub` the user, and the channels the examples use. Standard
library only.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import time
import urllib.parse
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "..", "clients", "js")
USER_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

# What a signed-in user of the examples may subscribe to. Writes go through
# the backends (client events), so nobody may publish directly.
SUBSCRIBE = ["votes:*", "stock:*", "seats:*", "chat:*", "user:{sub}"]


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(secret, claims):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(mac)


class Handler(SimpleHTTPRequestHandler):
    def __init__(self, *a, site=None, **kw):
        self.site = site
        super().__init__(*a, directory=HERE, **kw)

    def log_message(self, *a):
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def json(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/api/config":
            return self.json(200, {"nodes": self.site["nodes"], "queue": self.site["queue"]})
        if url.path == "/api/token":
            user = urllib.parse.parse_qs(url.query).get("user", [""])[0]
            if not USER_RE.match(user):
                return self.json(400, {"error": "user: 1..32 of A-Z a-z 0-9 _ -"})
            now = int(time.time())
            claims = {"sub": user, "iat": now, "exp": now + 3600, "subscribe": SUBSCRIBE,
                      "info": {"name": user}}
            return self.json(200, {"token": sign(self.site["secret"], claims)})
        if url.path.startswith("/client/"):
            name = url.path[len("/client/"):]
            if name not in ("ringcast.js", "react.js"):
                return self.json(404, {"error": "not found"})
            with open(os.path.join(CLIENT, name), "rb") as f:
                raw = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return
        if url.path.endswith(".py") or "/node_modules/" in url.path or "/test/" in url.path:
            return self.json(404, {"error": "not found"})
        return super().do_GET()


def serve(port, nodes, secret, queue="sale", host="127.0.0.1"):
    """A running server (serve_forever it in a thread)."""
    site = {"nodes": nodes, "secret": secret, "queue": queue}
    return ThreadingHTTPServer((host, port), partial(Handler, site=site))
