#!/usr/bin/python3
"""The ticketing backend: seats are selected, released and bought through
client events (`seat:select`, `seat:release`, `seat:buy`), each checked
against the buyer's admission token from the waiting room. Seats held by a
connection are released when it disconnects (the lifecycle stream, which
also reports the connections of a node that died). Every change publishes
the seat map on seats:show and the stock on stock:show.

State is in Redis (the hash demo:seats:show, seat -> holder), so any number
of these workers may share the streams.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rcbackend  # noqa: E402

QUEUE = "sale"
SEATS = [r + str(n) for r in "ABCD" for n in range(1, 9)]
HOLD_MAX = 4  # seats one user may hold at once
KEY = "demo:seats:show"


def main():
    args = rcbackend.arguments(__doc__, "tickets").parse_args()
    b = rcbackend.Backend(args, lifecycle=True)

    def seats():
        return {s: json.loads(v) for s, v in b.r.hgetall(KEY).items()}

    def announce(stock=False, last=None):
        """The seat map; and the stock when it changed (at start, on a sale)."""
        taken = seats()
        b.publish("seats:show", {"seats": {s: {"state": v["state"], "user": v["user"]}
                                           for s, v in taken.items()}}, event="seats")
        if not stock:
            return
        sold = sum(1 for v in taken.values() if v["state"] == "sold")
        stock = {"total": len(SEATS), "sold": sold, "left": len(SEATS) - sold}
        if last:
            stock["last"] = last
        b.publish("stock:show", stock, event="stock")

    def admitted(fields, data):
        """The admission token is the buyer's, for this sale, and valid."""
        token = data.get("admission") if isinstance(data, dict) else None
        if not token or not fields["user"]:
            return False
        status, v = b.api("POST", "/api/queues/verify", {"token": token})
        return (status == 200 and v.get("valid") and v.get("queue") == QUEUE
                and v.get("user") == fields["user"])

    def on_event(name, data, fields):
        if not admitted(fields, data):
            return b.reply(fields, error={"code": "not_admitted",
                                          "message": "wait in line for an admission first"})
        user = fields["user"]
        seat = data.get("seat")
        if name in ("seat:select", "seat:release") and seat not in SEATS:
            return b.reply(fields, error={"code": "bad_seat", "message": "no such seat"})
        if name == "seat:select":
            mine = [s for s, v in seats().items() if v["user"] == user and v["state"] == "held"]
            if len(mine) >= HOLD_MAX:
                return b.reply(fields, error={"code": "too_many",
                                              "message": "hold at most %d seats" % HOLD_MAX})
            hold = {"state": "held", "user": user, "reply": fields["reply"]}
            if not b.r.hsetnx(KEY, seat, json.dumps(hold)):
                return b.reply(fields, error={"code": "taken", "message": seat + " is taken"})
            announce()
            return b.reply(fields, {"seat": seat, "held": True})
        if name == "seat:release":
            v = b.r.hget(KEY, seat)
            if v and json.loads(v)["user"] == user and json.loads(v)["state"] == "held":
                b.r.hdel(KEY, seat)
                announce()
            return b.reply(fields, {"seat": seat, "held": False})
        if name == "seat:buy":
            mine = [s for s, v in seats().items() if v["user"] == user and v["state"] == "held"]
            if not mine:
                return b.reply(fields, error={"code": "nothing_held",
                                              "message": "select seats first"})
            for s in mine:
                b.r.hset(KEY, s, json.dumps({"state": "sold", "user": user}))
            announce(stock=True, last={"user": user, "seats": sorted(mine)})
            # The purchase is done: the next person in line may come in.
            b.api("POST", "/api/queues/%s/complete" % QUEUE, {"user": user})
            return b.reply(fields, {"bought": sorted(mine)})
        b.reply(fields, error={"code": "unknown", "message": "no handler for " + name})

    def on_lifecycle(fields):
        if fields.get("type") != "disconnect":
            return
        freed = [s for s, v in seats().items()
                 if v["state"] == "held" and v.get("reply") == fields.get("reply")]
        if freed:
            b.r.hdel(KEY, *freed)
            announce()

    announce(stock=True)  # the opening state, for the first viewers
    b.run(on_event, on_lifecycle)


if __name__ == "__main__":
    main()
