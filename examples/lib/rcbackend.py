"""What every example backend does with ringcast, through its documented
interfaces only (docs/BACKENDS.md, docs/PROTOCOL.md sections 9 and 10):

- read client events (and lifecycle events) from Redis streams with a
  consumer group, acknowledge and remove each once handled;
- answer the connection that sent an event (PUBLISH on its reply channel);
- publish to channels and call the HTTP API of any node with the API key.

Uses redis-py (Debian's python3-redis) and the standard library.
"""
import argparse
import json
import signal
import sys
import urllib.error
import urllib.request

import redis


def arguments(doc, stream):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:16400")
    ap.add_argument("--prefix", default="rc:", help="the nodes' --redis-prefix")
    ap.add_argument("--api", default="http://127.0.0.1:8101", help="any node's HTTP address")
    ap.add_argument("--api-key", default="demo-api-key")
    ap.add_argument("--stream", default=stream, help="the STREAM of the nodes' --event-stream")
    ap.add_argument("--lifecycle", default="life", help="the nodes' --lifecycle-stream")
    ap.add_argument("--group", default="examples")
    ap.add_argument("--name", default="w1")
    return ap


class Backend:
    def __init__(self, args, lifecycle=False):
        self.args = args
        self.r = redis.Redis.from_url(args.redis, decode_responses=True)
        self.events_key = args.prefix + "ev:" + args.stream
        self.keys = [self.events_key]
        if lifecycle:
            self.keys.append(args.prefix + "lc:{lifecycle}:" + args.lifecycle)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def api(self, method, path, body=None):
        req = urllib.request.Request(
            self.args.api + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + self.args.api_key,
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def publish(self, channel, data, event="message"):
        """Through the HTTP API, so that channels with history keep it."""
        status, _ = self.api("POST", "/api/publish",
                             {"channel": channel, "event": event, "data": data})
        return status == 202

    def reply(self, fields, data=None, error=None):
        msg = {"to": fields["reply"]}
        if fields.get("id"):
            msg["id"] = json.loads(fields["id"])
        if error is not None:
            msg["error"] = error
        else:
            msg["data"] = data
        self.r.publish(fields["reply_channel"], json.dumps(msg))

    def run(self, on_event, on_lifecycle=None):
        """Calls on_event(name, data, fields) for each client event and
        on_lifecycle(fields) for each lifecycle entry, forever."""
        for key in self.keys:
            try:
                self.r.xgroup_create(key, self.args.group, id="0", mkstream=True)
            except redis.ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise
        print("%s reading %s" % (sys.argv[0], " ".join(self.keys)), flush=True)
        while True:
            got = self.r.xreadgroup(self.args.group, self.args.name,
                                    {k: ">" for k in self.keys}, count=100, block=1000)
            for key, entries in got or []:
                for eid, fields in entries:
                    try:
                        if key == self.events_key:
                            on_event(fields["event"], json.loads(fields["data"]), fields)
                        elif on_lifecycle:
                            on_lifecycle(fields)
                    except Exception as e:  # one bad event must not stop the others
                        print("error handling %s: %r" % (eid, e), file=sys.stderr, flush=True)
                        if key == self.events_key:
                            self.reply(fields, error={"code": "internal",
                                                      "message": "the backend failed"})
                    self.r.xack(key, self.args.group, eid)
                    self.r.xdel(key, eid)
