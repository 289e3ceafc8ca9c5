#!/usr/bin/python3
"""The live vote's backend: counts `vote:cast` client events, one vote per
user (voting again changes it), and publishes the tally on votes:talks.

The votes are kept in Redis (the hash demo:votes:talks, user -> option), so
any number of these workers may share the stream.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rcbackend  # noqa: E402

OPTIONS = ("rust", "uring", "redis")
CHANNEL = "votes:talks"
KEY = "demo:votes:talks"


def main():
    args = rcbackend.arguments(__doc__, "votes").parse_args()
    b = rcbackend.Backend(args)

    def on_event(name, data, fields):
        option = data.get("option") if isinstance(data, dict) else None
        if name != "vote:cast" or option not in OPTIONS:
            return b.reply(fields, error={"code": "bad_vote", "message": "no such option"})
        if not fields["user"]:
            return b.reply(fields, error={"code": "forbidden", "message": "sign in to vote"})
        b.r.hset(KEY, fields["user"], option)
        counts = {o: 0 for o in OPTIONS}
        for v in b.r.hvals(KEY):
            counts[v] = counts.get(v, 0) + 1
        b.publish(CHANNEL, {"counts": counts}, event="tally")
        b.reply(fields, {"option": option})

    b.run(on_event)


if __name__ == "__main__":
    main()
