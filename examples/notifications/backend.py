#!/usr/bin/python3
"""The notifications backend: `notify:send` {to, text} client events become
a notification on channel user:TO, which every node joins each of TO's
connections to, so it reaches the user on whichever node they are.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rcbackend  # noqa: E402

USER_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def main():
    args = rcbackend.arguments(__doc__, "notify").parse_args()
    b = rcbackend.Backend(args)

    def on_event(name, data, fields):
        if name != "notify:send" or not isinstance(data, dict):
            return b.reply(fields, error={"code": "unknown", "message": "no handler for " + name})
        to, text = data.get("to"), data.get("text")
        if not isinstance(to, str) or not USER_RE.match(to):
            return b.reply(fields, error={"code": "bad_user", "message": "no such user"})
        if not isinstance(text, str) or not 1 <= len(text) <= 280:
            return b.reply(fields, error={"code": "bad_text", "message": "1..280 characters"})
        note = {"from": fields["user"] or "someone", "text": text, "sent_via": fields["node"],
                "time": int(time.time() * 1000)}
        ok = b.publish("user:" + to, note, event="notification")
        b.reply(fields, {"sent": ok})

    b.run(on_event)


if __name__ == "__main__":
    main()
