"""Presence on one node without Redis: who is here (with the token's info),
how many (connections and distinct users, kept as members come and go),
pages with a cursor, join and leave events where the rule asks for them,
the HTTP API, metrics, and the errors of bad questions."""
import asyncio
import json

from rchelp import (API_KEY, expect_silence, get_metrics, http_request, recv_json, request,
                    subscribe, token, welcome, ws_connect)

FLAGS = ("--presence", "room:* join_leave", "--presence", "quiet:*", "--public", "room:*",
         "--public", "quiet:*", "--public", "plain:*")


def run(coro):
    return asyncio.run(coro)


async def connect(srv, user=None, **claims):
    ws = await ws_connect(srv, "/ws?token=" + token(sub=user, **claims) if user else "/ws")
    w = await welcome(ws)
    return ws, w


async def ask(ws, q, timeout=5.0):
    """Sends q; returns the next reply that is not a message or a join/leave event."""
    await ws.send(json.dumps(q))
    while True:
        r = await recv_json(ws, timeout)
        if r["type"] not in ("message", "join", "leave"):
            return r


async def stats(ws, channel, rid="st"):
    r = await ask(ws, {"type": "presence_stats", "id": rid, "channel": channel})
    assert r["type"] == "presence_stats" and r["id"] == rid and r["channel"] == channel, r
    return r["connections"], r["users"]


async def members(ws, channel, limit=None):
    """Every member, page by page; returns (members, pages)."""
    out, pages, cursor = [], 0, None
    while True:
        q = {"type": "presence", "id": "p%d" % pages, "channel": channel}
        if limit:
            q["limit"] = limit
        if cursor:
            q["cursor"] = cursor
        r = await ask(ws, q)
        assert r["type"] == "presence" and r["channel"] == channel, r
        pages += 1
        if limit:
            assert len(r["members"]) <= limit, r
        out += r["members"]
        cursor = r.get("cursor")
        if not cursor:
            return out, pages


async def events(ws, n, timeout=5.0, own=None):
    """The next n join/leave events, but for the join of own (the welcome of
    the connection reading: a member may see its own join)."""
    out = []
    while len(out) < n:
        m = await recv_json(ws, timeout)
        if (m["type"] == "join" and own and m["member"]["conn"] == own["conn"]
                and m["member"]["node"] == own["node"]):
            continue
        if m["type"] in ("join", "leave"):
            out.append(m)
    return out


def test_who_is_here_counts_and_events(start_server):
    srv = start_server(*FLAGS, shards=2)

    async def go():
        watch, ww = await connect(srv, "watcher")
        await subscribe(watch, "room:1")
        # The watcher is the first member; it sees the others come and go.
        a1, wa1 = await connect(srv, "alice", info={"name": "Alice", "seat": 12})
        a2, wa2 = await connect(srv, "alice", info={"name": "Alice"})
        b, wb = await connect(srv, "bob")
        anon, wn = await connect(srv)
        for ws in (a1, a2, b, anon):
            await subscribe(ws, "room:1")
        joins = await events(watch, 4, own=ww)
        assert [j["type"] for j in joins] == ["join"] * 4
        assert all(j["channel"] == "room:1" for j in joins)
        got = {j["member"]["conn"]: j["member"] for j in joins}
        assert set(got) == {w["conn"] for w in (wa1, wa2, wb, wn)}, joins
        assert got[wa1["conn"]] == {"user": "alice", "conn": wa1["conn"], "node": wa1["node"],
                                    "info": {"name": "Alice", "seat": 12}}
        assert got[wn["conn"]]["user"] is None and "info" not in got[wn["conn"]]

        # Five connections, three users (the anonymous one is not a user).
        assert await stats(b, "room:1") == (5, 3)
        ms, _ = await members(anon, "room:1")
        by_conn = {m["conn"]: m for m in ms}
        assert len(ms) == 5 and set(by_conn) == {w["conn"] for w in (ww, wa1, wa2, wb, wn)}
        assert by_conn[wb["conn"]] == {"user": "bob", "conn": wb["conn"], "node": wb["node"]}

        # Leaving: by unsubscribe, and by closing.
        r = await ask(a2, {"type": "unsubscribe", "id": "u", "channel": "room:1"})
        assert r["type"] == "unsubscribed", r
        await a1.close()
        leaves = await events(watch, 2)
        assert [e["type"] for e in leaves] == ["leave", "leave"]
        assert {e["member"]["conn"] for e in leaves} == {wa1["conn"], wa2["conn"]}
        assert await stats(b, "room:1") == (3, 2)  # watcher, bob, anonymous
        await b.close()
        await events(watch, 1)
        assert await stats(anon, "room:1") == (2, 1)
        await expect_silence(watch)
        await watch.close()
        await a2.close()
        await anon.close()

    run(go())


def test_no_events_without_join_leave(start_server):
    srv = start_server(*FLAGS)

    async def go():
        watch, _ = await connect(srv, "w")
        await subscribe(watch, "quiet:1")
        other, _ = await connect(srv, "o")
        await subscribe(other, "quiet:1")
        assert await stats(watch, "quiet:1") == (2, 2)
        await other.close()
        await expect_silence(watch, 0.5)
        assert await stats(watch, "quiet:1") == (1, 1)
        await watch.close()

    run(go())


def test_pages_cover_everyone_once(start_server):
    srv = start_server(*FLAGS, "--presence-page-max", "5")

    async def go():
        conns = []
        for i in range(7):
            ws, w = await connect(srv, "u%d" % i)
            await subscribe(ws, "quiet:pages")
            conns.append((ws, w))
        asker = conns[0][0]
        ms, pages = await members(asker, "quiet:pages", limit=3)
        assert pages == 3
        assert sorted(m["conn"] for m in ms) == sorted(w["conn"] for _, w in conns)
        # The default page is the server's cap.
        r = await request(asker, {"type": "presence", "id": 1, "channel": "quiet:pages"})
        assert len(r["members"]) == 5 and r["cursor"], r
        # Someone leaves between pages: the next page goes on from the cursor.
        first = await request(asker, {"type": "presence", "id": 2, "channel": "quiet:pages",
                                      "limit": 2})
        seen = {m["conn"] for m in first["members"]}
        gone = next(w["conn"] for ws, w in conns[1:] if w["conn"] not in seen)
        for ws, w in conns:
            if w["conn"] == gone:
                await ws.close()
        await asyncio.sleep(0.2)
        rest = await request(asker, {"type": "presence", "id": 3, "channel": "quiet:pages",
                                     "limit": 5, "cursor": first["cursor"]})
        rest_conns = {m["conn"] for m in rest["members"]}
        assert gone not in rest_conns and not (rest_conns & seen), rest
        assert len(seen) + len(rest_conns) == 6 and "cursor" not in rest, rest
        for ws, _ in conns:
            await ws.close()

    run(go())


def test_bad_questions(start_server):
    srv = start_server(*FLAGS, "--presence-page-max", "10")

    async def go():
        ws, _ = await connect(srv, "carol", subscribe=["room:1"])
        cases = [
            ({"type": "presence", "channel": "plain:1"}, "no_presence"),
            ({"type": "presence_stats", "channel": "plain:1"}, "no_presence"),
            ({"type": "presence", "channel": "room:2x", "limit": 3}, None),
            ({"type": "presence_stats", "channel": "secret:1"}, "forbidden"),
            ({"type": "presence", "channel": "room:1", "limit": 11}, "bad_request"),
            ({"type": "presence", "channel": "room:1", "limit": 0}, "bad_request"),
            ({"type": "presence", "channel": "room:1", "limit": "5"}, "bad_request"),
            ({"type": "presence", "channel": "room:1", "cursor": 5}, "bad_request"),
            ({"type": "presence", "channel": "room:1", "cursor": ""}, "bad_request"),
            ({"type": "presence", "channel": "room:1", "cursor": "a b"}, "bad_request"),
            ({"type": "presence", "channel": "room:1", "cursor": "x" * 97}, "bad_request"),
            ({"type": "presence_stats"}, "bad_request"),
            ({"type": "presence", "channel": "bad channel"}, "invalid_channel"),
        ]
        for i, (q, code) in enumerate(cases):
            q["id"] = i
            r = await request(ws, q)
            if code is None:
                # room:2x is public, so carol may look even without the token's pattern.
                assert r["type"] == "presence" and r["members"] == [], r
            else:
                assert r["type"] == "error" and r["code"] == code and r["id"] == i, (q, r)
        # A cursor this node never gave is a page after everyone: empty, last.
        r = await request(ws, {"type": "presence", "id": "c", "channel": "room:1",
                               "cursor": "zzz"})
        assert r["type"] == "presence" and r["members"] == [] and "cursor" not in r, r
        # Still answering.
        assert await stats(ws, "room:1") == (0, 0)
        await ws.close()

    run(go())


def test_info_claim_limits(start_server):
    srv = start_server(*FLAGS)

    async def go():
        ws, w = await connect(srv, "dave", info=["any", {"json": True}, 1])
        await subscribe(ws, "quiet:i")
        ms, _ = await members(ws, "quiet:i")
        assert ms == [{"user": "dave", "conn": w["conn"], "node": w["node"],
                       "info": ["any", {"json": True}, 1]}]
        await ws.close()
        # An info past 1024 bytes makes the token malformed: refused at the upgrade.
        status, _, _ = http_request(srv.port, "GET", "/ws?token=" + token(sub="e", info="x" * 1100),
                                    headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                             "Sec-WebSocket-Version": "13"})
        assert status == 401, status

    run(go())


def test_http_api_and_metrics(start_server):
    srv = start_server(*FLAGS)

    async def go():
        a, wa = await connect(srv, "alice", info={"n": 1})
        b, wb = await connect(srv, "bob")
        for ws in (a, b):
            await subscribe(ws, "room:h")
        key = {"Authorization": "Bearer " + API_KEY}
        status, _, body = http_request(srv.port, "GET", "/api/channels/room:h/presence-stats",
                                       headers=key)
        assert status == 200, body
        assert json.loads(body) == {"type": "presence_stats", "channel": "room:h",
                                    "connections": 2, "users": 2}
        status, _, body = http_request(srv.port, "GET", "/api/channels/room:h/presence?limit=1",
                                       headers=key)
        assert status == 200, body
        page = json.loads(body)
        assert len(page["members"]) == 1 and page["cursor"], page
        status, _, body = http_request(
            srv.port, "GET", "/api/channels/room:h/presence?limit=1&cursor=" + page["cursor"],
            headers=key)
        page2 = json.loads(body)
        assert status == 200 and len(page2["members"]) == 1 and "cursor" not in page2, body
        assert {page["members"][0]["conn"], page2["members"][0]["conn"]} == {wa["conn"],
                                                                             wb["conn"]}
        for path, want in [("/api/channels/plain:1/presence", 404),
                           ("/api/channels/room:h/presence?limit=0", 400),
                           ("/api/channels/room:h/presence?limit=1001", 400),
                           ("/api/channels/room:h/presence?cursor=", 400),
                           ("/api/channels/bad%20x/presence-stats", 400),
                           ("/api/channels/room:h/presences", 404)]:
            status, _, body = http_request(srv.port, "GET", path, headers=key)
            assert status == want, (path, status, body)
        status, _, _ = http_request(srv.port, "GET", "/api/channels/room:h/presence")
        assert status in (401, 403)
        status, _, _ = http_request(srv.port, "POST", "/api/channels/room:h/presence",
                                    headers=key, body=b"{}")
        assert status == 405
        m = get_metrics(srv.port)
        assert m["ringcast_presence_members"] == 2
        assert m["ringcast_presence_largest"] == 2
        assert m["ringcast_presence_joins_total"] == 2
        assert m["ringcast_presence_stats_reads_total"] >= 1
        assert m["ringcast_presence_page_reads_total"] >= 2
        assert m['ringcast_protocol_errors_total{code="no_presence"}'] == 0
        await a.close()
        await b.close()
        await asyncio.sleep(0.3)
        m = get_metrics(srv.port)
        assert m["ringcast_presence_members"] == 0
        assert m["ringcast_presence_leaves_total"] == 2

    run(go())


def test_stats_questions_share_one_read(start_server):
    """Connections of one shard that ask while a question is in flight get its
    answer: every request is answered, and each was either a question of its
    own to the relay or shared one."""
    srv = start_server(*FLAGS, shards=1)

    async def go():
        conns = []
        for i in range(30):
            ws, _ = await connect(srv, "s%d" % i)
            conns.append(ws)
        await subscribe(conns[0], "quiet:many")
        before = get_metrics(srv.port)
        for rnd in range(3):
            for i, ws in enumerate(conns):
                await ws.send(json.dumps({"type": "presence_stats", "id": "%d-%d" % (rnd, i),
                                          "channel": "quiet:many"}))
            for i, ws in enumerate(conns):
                r = await recv_json(ws)
                assert r == {"type": "presence_stats", "id": "%d-%d" % (rnd, i),
                             "channel": "quiet:many", "connections": 1, "users": 1}, r
        after = get_metrics(srv.port)

        def d(k):
            return after.get(k, 0) - before.get(k, 0)

        asked = d("ringcast_presence_stats_reads_total")
        shared = d("ringcast_presence_shard_coalesced_total")
        assert asked + shared == 90 and asked >= 1, (asked, shared)
        for ws in conns:
            await ws.close()

    run(go())
