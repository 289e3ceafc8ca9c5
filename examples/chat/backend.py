#!/usr/bin/python3
"""The chat backend: `chat:send` {room, text} client events are checked and
published to the room's channel chat:ROOM (which keeps the last 100); each
@name mentioned also gets a notification on user:NAME, on whatever node.
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rcbackend  # noqa: E402

ROOMS = ("general", "random", "help")
MENTION = re.compile(r"@([A-Za-z0-9_-]{1,32})")


def main():
    args = rcbackend.arguments(__doc__, "chat").parse_args()
    b = rcbackend.Backend(args)

    def on_event(name, data, fields):
        if name != "chat:send" or not isinstance(data, dict):
            return b.reply(fields, error={"code": "unknown", "message": "no handler for " + name})
        room, text = data.get("room"), data.get("text")
        if room not in ROOMS:
            return b.reply(fields, error={"code": "bad_room", "message": "no such room"})
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= 500:
            return b.reply(fields, error={"code": "bad_text", "message": "1..500 characters"})
        if not fields["user"]:
            return b.reply(fields, error={"code": "forbidden", "message": "sign in to chat"})
        b.publish("chat:" + room, {"user": fields["user"], "text": text})
        for name in sorted(set(MENTION.findall(text)) - {fields["user"]}):
            b.publish("user:" + name, {"room": room, "from": fields["user"], "text": text},
                      event="mention")
        b.reply(fields, {"sent": True})

    b.run(on_event)


if __name__ == "__main__":
    main()
