#!/usr/bin/python3
"""A ringcast backend worker in Python (redis-py): reads client events from
a stream with a consumer group, claims what a dead worker left, answers
each event's connection, and calls the server-side control API.

  python3 worker.py --redis redis://127.0.0.1:6379 --stream seats \
      --api http://127.0.0.1:8080 --api-key KEY --name py-1

Events it knows (a demo of seat selection):
  seat:select {"seat": S}   -> reply {"ok": true, "seat": S, "by": NAME}
  seat:kick   {"user": U}   -> POST /api/disconnect {"user": U, "code": 4100}
  anything else             -> reply with an error {"code": "unknown"}
Every event is acknowledged (XACK) and removed (XDEL) once handled, so the
stream never fills up.
"""
import argparse
import json
import signal
import sys
import urllib.request

import redis


def api_call(args, path, body):
    req = urllib.request.Request(args.api + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + args.api_key,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status


def reply(r, fields, data=None, error=None):
    """Answers the event's connection, on whatever node it is."""
    msg = {"to": fields["reply"]}
    if fields.get("id"):
        msg["id"] = json.loads(fields["id"])
    if error is not None:
        msg["error"] = error
    else:
        msg["data"] = data
    r.publish(fields["reply_channel"], json.dumps(msg))


def handle(args, r, fields):
    event = fields["event"]
    data = json.loads(fields["data"])
    if event == "seat:select":
        reply(r, fields, {"ok": True, "seat": data.get("seat"), "by": args.name,
                          "user": fields["user"]})
    elif event == "seat:kick":
        status = api_call(args, "/api/disconnect", {"user": data["user"], "code": 4100,
                                                    "reason": "kicked by " + args.name})
        reply(r, fields, {"ok": status == 202, "by": args.name})
    else:
        reply(r, fields, error={"code": "unknown", "message": "no handler for " + event})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    ap.add_argument("--prefix", default="rc:", help="ringcast's --redis-prefix")
    ap.add_argument("--stream", default="seats", help="the STREAM of --event-stream")
    ap.add_argument("--group", default="workers")
    ap.add_argument("--name", default="py-1", help="this consumer's name")
    ap.add_argument("--api", default="http://127.0.0.1:8080")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--claim-idle-ms", type=int, default=5000,
                    help="take over events another worker read but did not finish after this")
    args = ap.parse_args()
    r = redis.Redis.from_url(args.redis, decode_responses=True)
    key = args.prefix + "ev:" + args.stream
    try:
        r.xgroup_create(key, args.group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("worker %s reading %s" % (args.name, key), flush=True)
    while True:
        # First what a dead worker left, then new events.
        _, claimed, _ = r.xautoclaim(key, args.group, args.name, args.claim_idle_ms, "0-0",
                                     count=100)
        got = [(key, claimed)] if claimed else r.xreadgroup(
            args.group, args.name, {key: ">"}, count=100, block=1000) or []
        for _, entries in got:
            for eid, fields in entries:
                handle(args, r, fields)
                r.xack(key, args.group, eid)
                r.xdel(key, eid)


if __name__ == "__main__":
    main()
