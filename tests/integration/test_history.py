"""Channel history on one node without Redis: offsets and epochs on every
publication, recovery after a reconnect (all or nothing), history requests,
who published, and the errors of bad positions."""
import asyncio
import json

from rchelp import (API_KEY, expect_silence, get_metrics, http_request, recv_json, request, subscribe,
                    token, welcome, ws_connect)

HIST = ("--history", "chat:* size=5 ttl=3600", "--public", "chat:*", "--public", "plain:*",
        "--anonymous-publish")


def run(coro):
    return asyncio.run(coro)


async def connect(srv, user=None):
    ws = await ws_connect(srv, "/ws?token=" + token(sub=user) if user else "/ws")
    w = await welcome(ws)
    return ws, w


async def publish(ws, channel, data, rid=None):
    msg = {"type": "publish", "channel": channel, "data": data}
    if rid is not None:
        msg["id"] = rid
        r = await request(ws, msg)
        assert r["type"] == "published", r
    else:
        await ws.send(json.dumps(msg))


async def messages(ws, n, timeout=5.0):
    out = []
    while len(out) < n:
        m = await recv_json(ws, timeout)
        assert m["type"] == "message", m
        out.append(m)
    return out


def test_offsets_epoch_and_recovery(start_server):
    srv = start_server(*HIST, shards=2)

    async def go():
        pub, _ = await connect(srv, "poster")
        sub, _ = await connect(srv)
        r = await subscribe(sub, "chat:1")
        # A channel with history gives its position; nothing was published yet.
        assert r["offset"] == 0 and len(r["epoch"]) == 16 and "recovered" not in r, r
        epoch = r["epoch"]
        for i in range(1, 4):
            await publish(pub, "chat:1", {"n": i}, rid=i)
        got = await messages(sub, 3)
        assert [m["offset"] for m in got] == [1, 2, 3]
        assert all(m["epoch"] == epoch for m in got)
        assert [m["data"]["n"] for m in got] == [1, 2, 3]
        await sub.close()
        # Published while the subscriber is away.
        for i in range(4, 7):
            await publish(pub, "chat:1", {"n": i}, rid=i)
        back, _ = await connect(srv)
        r = await request(back, {"type": "subscribe", "id": "r", "channel": "chat:1",
                                 "since": {"offset": 3, "epoch": epoch}}, skip_messages=False)
        assert r["type"] == "subscribed" and r["recovered"] is True and r["missed"] == 3, r
        assert r["offset"] == 6 and r["epoch"] == epoch
        missed = await messages(back, 3)
        assert [m["offset"] for m in missed] == [4, 5, 6]
        assert [m["data"]["n"] for m in missed] == [4, 5, 6]
        # Then live ones, with no gap and no duplicate.
        await publish(pub, "chat:1", {"n": 7}, rid=7)
        live = await messages(back, 1)
        assert live[0]["offset"] == 7
        await expect_silence(back)
        # Nothing missed: recovered with none to replay.
        again, _ = await connect(srv)
        r = await request(again, {"type": "subscribe", "id": 1, "channel": "chat:1",
                                  "since": {"offset": 7, "epoch": epoch}}, skip_messages=False)
        assert r["recovered"] is True and r["missed"] == 0, r
        await expect_silence(again)
        for ws in (pub, back, again):
            await ws.close()
    run(go())


def test_recovery_is_never_partial(start_server):
    srv = start_server(*HIST, "--recovery-max", "3", shards=1)

    async def go():
        pub, _ = await connect(srv, "poster")
        sub, _ = await connect(srv)
        epoch = (await subscribe(sub, "chat:t"))["epoch"]
        await sub.close()
        for i in range(1, 9):  # 8 publications, the history keeps the last 5
            await publish(pub, "chat:t", i, rid=i)

        async def recover(since, ep=epoch):
            ws, _ = await connect(srv)
            r = await request(ws, {"type": "subscribe", "id": "x", "channel": "chat:t",
                                   "since": {"offset": since, "epoch": ep}},
                              skip_messages=False)
            assert r["type"] == "subscribed", r
            return ws, r

        # 8 - 1 = 7 missed: over the cap of 3, and beyond what is kept.
        ws, r = await recover(1)
        assert r["recovered"] is False and r["reason"] == "too_many", r
        assert "missed" not in r and r["offset"] == 8
        await expect_silence(ws)  # nothing replayed: all or nothing
        await ws.close()
        ws, r = await recover(5)  # 3 missed, within the cap and kept
        assert r["recovered"] is True and r["missed"] == 3
        got = await messages(ws, 3)
        assert [m["data"] for m in got] == [6, 7, 8]
        await ws.close()
        # Another epoch: everything it knew is gone.
        ws, r = await recover(5, "0123456789abcdef")
        assert r["recovered"] is False and r["reason"] == "epoch_changed", r
        await expect_silence(ws)
        await ws.close()
        await pub.close()
    run(go())


def test_trimmed(start_server):
    srv = start_server(*HIST, "--recovery-max", "100", shards=1)

    async def go():
        pub, _ = await connect(srv, "poster")
        sub, _ = await connect(srv)
        epoch = (await subscribe(sub, "chat:trim"))["epoch"]
        await sub.close()
        for i in range(1, 11):
            await publish(pub, "chat:trim", i, rid=i)
        ws, _ = await connect(srv)
        r = await request(ws, {"type": "subscribe", "id": "x", "channel": "chat:trim",
                               "since": {"offset": 2, "epoch": epoch}}, skip_messages=False)
        assert r["recovered"] is False and r["reason"] == "trimmed", r
        await expect_silence(ws)
        # Live messages still flow after a failed recovery.
        await publish(pub, "chat:trim", 11, rid=11)
        assert (await messages(ws, 1))[0]["offset"] == 11
        await ws.close()
        await pub.close()
    run(go())


def test_history_request(start_server):
    srv = start_server(*HIST, "--recovery-max", "4", shards=2)

    async def go():
        pub, _ = await connect(srv, "poster")
        reader, _ = await connect(srv)
        r = await request(reader, {"type": "history", "id": 1, "channel": "chat:h"})
        assert r["type"] == "history" and r["publications"] == [] and r["offset"] == 0, r
        for i in range(1, 7):
            await publish(pub, "chat:h", {"i": i}, rid=i)
        r = await request(reader, {"type": "history", "id": 2, "channel": "chat:h"})
        # The cap (4) of the 5 kept, oldest first, as they went out live.
        assert [p["data"]["i"] for p in r["publications"]] == [3, 4, 5, 6], r
        assert [p["offset"] for p in r["publications"]] == [3, 4, 5, 6]
        assert all(p["type"] == "message" and p["channel"] == "chat:h"
                   for p in r["publications"])
        assert r["offset"] == 6
        r = await request(reader, {"type": "history", "id": 3, "channel": "chat:h", "limit": 2})
        assert [p["data"]["i"] for p in r["publications"]] == [5, 6]
        epoch = r["epoch"]
        r = await request(reader, {"type": "history", "id": 4, "channel": "chat:h",
                                   "since": {"offset": 4, "epoch": epoch}})
        assert r["recovered"] is True and [p["offset"] for p in r["publications"]] == [5, 6]
        # The reader subscribed to nothing: no live messages reach it.
        await expect_silence(reader)
        # Errors.
        r = await request(reader, {"type": "history", "id": 5, "channel": "plain:x"})
        assert r["type"] == "error" and r["code"] == "no_history" and r["id"] == 5, r
        r = await request(reader, {"type": "history", "id": 6, "channel": "chat:h",
                                   "limit": 5})
        assert r["type"] == "error" and r["code"] == "bad_request" and "1..4" in r["message"]
        r = await request(reader, {"type": "history", "id": 7, "channel": "secret:x"})
        assert r["type"] == "error" and r["code"] == "forbidden", r
        for ws in (pub, reader):
            await ws.close()
    run(go())


def test_bad_since(start_server):
    srv = start_server(*HIST, shards=1)

    async def go():
        pub, _ = await connect(srv, "poster")
        await publish(pub, "chat:b", 1, rid=1)
        ws, _ = await connect(srv)
        epoch = (await request(ws, {"type": "history", "channel": "chat:b"}))["epoch"]
        bad = [
            ("x", "since must be an object"),
            ({"offset": -1, "epoch": epoch}, "since.offset"),
            ({"offset": 1.5, "epoch": epoch}, "since.offset"),
            ({"offset": "1", "epoch": epoch}, "since.offset"),
            ({"offset": 2 ** 53, "epoch": epoch}, "since.offset"),
            ({"offset": 10 ** 30, "epoch": epoch}, "since.offset"),
            ({"epoch": epoch}, "since.offset"),
            ({"offset": 1}, "since.epoch"),
            ({"offset": 1, "epoch": 7}, "since.epoch"),
            ({"offset": 1, "epoch": ""}, "since.epoch"),
            ({"offset": 1, "epoch": "e" * 65}, "since.epoch"),
        ]
        for i, (since, words) in enumerate(bad):
            r = await request(ws, {"type": "subscribe", "id": i, "channel": "chat:b",
                                   "since": since})
            assert r["type"] == "error" and r["code"] == "bad_since" and r["id"] == i, (since, r)
            assert words in r["message"], (since, r)
        # A future offset in the channel's own epoch: refused, not subscribed.
        r = await request(ws, {"type": "subscribe", "id": "f", "channel": "chat:b",
                               "since": {"offset": 99, "epoch": epoch}})
        assert r["type"] == "error" and r["code"] == "bad_since", r
        assert "99" in r["message"] and "last offset 1" in r["message"]
        await publish(pub, "chat:b", 2, rid=2)
        await expect_silence(ws)  # the refused subscribe left no membership
        r = await request(ws, {"type": "history", "id": "h", "channel": "chat:b",
                               "since": {"offset": 99, "epoch": epoch}})
        assert r["type"] == "error" and r["code"] == "bad_since", r
        # Since on a channel without history: subscribed, not recovered.
        r = await request(ws, {"type": "subscribe", "id": "p", "channel": "plain:1",
                               "since": {"offset": 3, "epoch": epoch}})
        assert r["type"] == "subscribed" and r["recovered"] is False, r
        assert r["reason"] == "no_history"
        m = get_metrics(srv.port)
        assert m.get('ringcast_protocol_errors_total{code="bad_since"}', 0) >= len(bad) + 2
        await ws.close()
        await pub.close()
    run(go())


def test_from_is_the_servers(start_server):
    srv = start_server(*HIST, shards=2)

    async def go():
        alice, wa = await connect(srv, "alice")
        anon, wn = await connect(srv)
        sub, _ = await connect(srv)
        await subscribe(sub, "chat:f")
        await subscribe(sub, "plain:f", rid="s2")
        # The client claims to be someone else: the claim is ignored.
        await alice.send(json.dumps({"type": "publish", "id": 1, "channel": "chat:f",
                                     "data": 1, "from": {"user": "mallory", "conn": "1"}}))
        assert (await recv_json(alice))["type"] == "published"
        m = (await messages(sub, 1))[0]
        assert m["from"] == {"user": "alice", "conn": wa["conn"]}, m
        await publish(anon, "plain:f", 2, rid=2)
        m = (await messages(sub, 1))[0]
        assert m["from"] == {"user": None, "conn": wn["conn"]} and "offset" not in m, m
        # The backend, through the HTTP API.
        st, _, body = http_request(srv.port, "POST", "/api/publish",
                                   headers={"Authorization": "Bearer " + API_KEY},
                                   body=json.dumps({"channel": "chat:f", "data": 3}).encode())
        assert st == 202, body
        m = (await messages(sub, 1))[0]
        assert m["from"] == {"backend": True} and m["offset"] == 2, m
        for ws in (alice, anon, sub):
            await ws.close()
    run(go())


def test_history_metrics(start_server):
    srv = start_server(*HIST, shards=1)

    async def go():
        pub, _ = await connect(srv, "poster")
        for i in range(3):
            await publish(pub, "chat:m", i, rid=i)
        r = await request(pub, {"type": "history", "id": "h", "channel": "chat:m"})
        assert len(r["publications"]) == 3
        await pub.close()
    run(go())
    import time
    time.sleep(1.2)  # the gauges are set once a second
    m = get_metrics(srv.port)
    assert m["ringcast_history_writes_total"] == 3
    assert m["ringcast_history_reads_total"] >= 1
    assert m["ringcast_history_channels"] == 1
    assert m["ringcast_history_publications"] == 3
    assert m["ringcast_history_bytes"] > 0


def test_http_api_history(start_server):
    srv = start_server(*HIST, "--recovery-max", "4", shards=2)
    auth = {"Authorization": "Bearer " + API_KEY}

    def get(path, headers=auth):
        st, _, body = http_request(srv.port, "GET", path, headers=headers)
        return st, (json.loads(body) if body.startswith(b"{") else body)

    for i in range(1, 7):
        st, _, _ = http_request(srv.port, "POST", "/api/publish", headers=auth,
                                body=json.dumps({"channel": "chat:api", "data": i}).encode())
        assert st == 202
    st, r = get("/api/channels/chat:api/history")
    assert st == 200 and r["type"] == "history" and r["channel"] == "chat:api", r
    assert [p["data"] for p in r["publications"]] == [3, 4, 5, 6]
    assert r["offset"] == 6 and all(p["from"] == {"backend": True} for p in r["publications"])
    st, r2 = get("/api/channels/chat:api/history?limit=1")
    assert st == 200 and [p["data"] for p in r2["publications"]] == [6]
    st, r3 = get("/api/channels/chat:api/history?since_offset=4&since_epoch=" + r["epoch"])
    assert st == 200 and r3["recovered"] is True and [p["data"] for p in r3["publications"]] == [5, 6]
    st, r4 = get("/api/channels/chat:api/history?since_offset=1&since_epoch=" + r["epoch"])
    # 5 followed offset 1: all kept, but more than the cap of 4.
    assert st == 200 and r4["recovered"] is False and r4["reason"] == "too_many"
    assert r4["publications"] == []
    # Errors, each with a code.
    for path, want_st, code in [
        ("/api/channels/plain:x/history", 404, "no_history"),
        ("/api/channels/chat:api/history?limit=5", 400, "bad_request"),
        ("/api/channels/chat:api/history?limit=0", 400, "bad_request"),
        ("/api/channels/chat:api/history?limit=x", 400, "bad_request"),
        ("/api/channels/chat:api/history?since_offset=1", 400, "bad_since"),
        ("/api/channels/chat:api/history?since_offset=-1&since_epoch=e", 400, "bad_since"),
        ("/api/channels/chat:api/history?since_offset=99&since_epoch=" + r["epoch"], 400,
         "bad_since"),
        ("/api/channels/bad%20name/history", 400, "invalid_channel"),
    ]:
        st, body = get(path)
        assert st == want_st and body["code"] == code, (path, st, body)
    st, body = get("/api/channels/chat:api/history", headers={})
    assert st == 401
    st, _ = get("/api/channels/chat:api/other")
    assert st == 404
    st, _, _ = http_request(srv.port, "POST", "/api/channels/chat:api/history", headers=auth,
                            body=b"{}")
    assert st == 405


def test_user_channel_subscribed_gives_position_and_recovers(start_server):
    """The server joins each token holder to user:<sub> quietly. Subscribing
    to it explicitly, when it keeps history, answers with its position like
    any channel with history, and recovers with since: the connection is
    held from the request to the answer, so what follows the answer is the
    missed publications, then live ones, each once."""
    srv = start_server(*HIST, "--history", "user:* size=10 ttl=3600", shards=2)

    def api_publish(n):
        st, _, _ = http_request(srv.port, "POST", "/api/publish",
                                headers={"X-API-Key": API_KEY},
                                body=json.dumps({"channel": "user:ann", "data": {"n": n}}).encode())
        assert st == 202

    async def go():
        ws, _ = await connect(srv, "ann")
        for n in (1, 2):
            api_publish(n)
        assert [m["offset"] for m in await messages(ws, 2)] == [1, 2]  # the quiet join's
        r = await subscribe(ws, "user:ann")
        assert r["offset"] == 2 and len(r["epoch"]) == 16 and "recovered" not in r, r
        epoch = r["epoch"]
        api_publish(3)
        assert [m["offset"] for m in await messages(ws, 1)] == [3]
        await expect_silence(ws)  # one membership, one copy
        await ws.close()
        for n in (4, 5):
            api_publish(n)
        back, _ = await connect(srv, "ann")
        r = await request(back, {"type": "subscribe", "id": "r", "channel": "user:ann",
                                 "since": {"offset": 3, "epoch": epoch}}, skip_messages=False)
        assert r["type"] == "subscribed" and r["recovered"] is True and r["missed"] == 2, r
        assert r["offset"] == 5
        assert [m["offset"] for m in await messages(back, 2)] == [4, 5]
        api_publish(6)
        assert [m["offset"] for m in await messages(back, 1)] == [6]
        await expect_silence(back)

    run(go())
