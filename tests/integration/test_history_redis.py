"""Channel history with Redis, across three nodes: offsets given out by
Redis (the same on every node), recovery on another node with no gap and no
duplicate, a Redis restarted empty (new epoch), a gap past the history's
size, one Redis read per channel for a storm of recoveries, and who
published across nodes."""
import asyncio
import json

from rchelp import (API_KEY, expect_silence, get_metrics, http_request, recv_json, request,
                    subscribe, token, welcome, ws_connect)
from redishelp import readyz, wait_until
from test_redis_cluster import start_nodes

FLAGS = ("--history", "chat:* size=50 ttl=3600", "--public", "chat:*", "--anonymous-publish")


def run(coro):
    return asyncio.run(coro)


async def connect(srv, user=None):
    ws = await ws_connect(srv, "/ws?token=" + token(sub=user) if user else "/ws")
    w = await welcome(ws)
    return ws, w


async def publish(ws, channel, data, rid):
    r = await request(ws, {"type": "publish", "id": rid, "channel": channel, "data": data})
    assert r["type"] == "published", r


async def messages(ws, n, timeout=5.0):
    out = []
    while len(out) < n:
        m = await recv_json(ws, timeout)
        assert m["type"] == "message", m
        out.append(m)
    return out


async def recover(srv, channel, offset, epoch, rid="r"):
    ws, _ = await connect(srv)
    r = await request(ws, {"type": "subscribe", "id": rid, "channel": channel,
                           "since": {"offset": offset, "epoch": epoch}}, skip_messages=False)
    assert r["type"] == "subscribed", r
    return ws, r


def test_recovery_on_another_node(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "ABC", pub_flags=FLAGS)
    A, B, C = nodes["A"], nodes["B"], nodes["C"]

    async def go():
        chan = "chat:move"
        sub, _ = await connect(A)
        r = await subscribe(sub, chan)
        epoch = r["epoch"]
        assert r["offset"] == 0, r
        pub_b, wb = await connect(B, "bob")
        for i in range(1, 6):
            await publish(pub_b, chan, i, i)
        got = await messages(sub, 5)
        assert [m["offset"] for m in got] == [1, 2, 3, 4, 5]
        assert all(m["epoch"] == epoch for m in got)
        # Who published travels with it across nodes.
        assert all(m["from"] == {"user": "bob", "conn": wb["conn"]} for m in got), got
        # The connection is cut; B goes on publishing.
        await sub.close()
        for i in range(6, 11):
            await publish(pub_b, chan, i, i)
        # Back, on C, with the position it had.
        back, r = await recover(C, chan, 5, epoch)
        assert r["recovered"] is True and r["missed"] == 5 and r["offset"] == 10, r
        missed = await messages(back, 5)
        assert [m["data"] for m in missed] == [6, 7, 8, 9, 10]
        assert [m["offset"] for m in missed] == [6, 7, 8, 9, 10]
        # Then live, no duplicate at the seam; a publish from C's own client too.
        pub_c, _ = await connect(C, "carol")
        await publish(pub_c, chan, 11, 11)
        await publish(pub_b, chan, 12, 12)
        live = await messages(back, 2)
        assert [m["offset"] for m in live] == [11, 12], live
        await expect_silence(back)
        # The same positions on every node.
        on_a, _ = await connect(A)
        r = await request(on_a, {"type": "history", "id": 1, "channel": chan, "limit": 3})
        assert [p["offset"] for p in r["publications"]] == [10, 11, 12], r
        assert r["epoch"] == epoch and r["offset"] == 12
        for ws in (pub_b, back, pub_c, on_a):
            await ws.close()
    run(go())


def test_new_epoch_and_gap(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "AB",
                        pub_flags=("--history", "chat:* size=3 ttl=3600", "--public", "chat:*",
                                   "--anonymous-publish"))
    A, B = nodes["A"], nodes["B"]

    async def go():
        chan = "chat:gap"
        pub, _ = await connect(A)
        for i in range(1, 4):
            await publish(pub, chan, i, i)
        r = await request(pub, {"type": "history", "id": "h", "channel": chan})
        epoch = r["epoch"]
        assert [p["offset"] for p in r["publications"]] == [1, 2, 3]
        for i in range(4, 9):
            await publish(pub, chan, i, i)
        # 7 followed offset 1 and the history keeps 3: trimmed.
        ws, r = await recover(B, chan, 1, epoch)
        assert r["recovered"] is False and r["reason"] == "trimmed", r
        await expect_silence(ws)
        await ws.close()
        await pub.close()
        # Redis comes back empty: another epoch.
        redis_server.restart()
        for n in (A, B):
            wait_until(lambda n=n: readyz(n.port) == (200, "ready"), 15.0, "node ready again")
        pub, _ = await connect(A)
        await publish(pub, chan, "after", "x")
        ws, r = await recover(B, chan, 8, epoch)
        assert r["recovered"] is False and r["reason"] == "epoch_changed", r
        assert r["epoch"] != epoch and r["offset"] == 1, r
        await expect_silence(ws)
        await ws.close()
        await pub.close()
    run(go())


def test_recovery_storm_reads_once_per_channel(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "AB", pub_flags=FLAGS)
    A, B = nodes["A"], nodes["B"]
    n_clients, n_chans = 40, 2

    async def go():
        pub, _ = await connect(A)
        chans = ["chat:storm%d" % k for k in range(n_chans)]
        epochs = {}
        for c in chans:
            for i in range(1, 11):
                await publish(pub, c, i, "%s-%d" % (c, i))
            r = await request(pub, {"type": "history", "channel": c, "limit": 1})
            epochs[c] = r["epoch"]
        before = get_metrics(B.port)
        # Everyone comes back to B at once, from offset 4, on two channels.
        wss = []
        for i in range(n_clients):
            ws, _ = await connect(B)
            wss.append(ws)

        async def one(i, ws):
            c = chans[i % n_chans]
            r = await request(ws, {"type": "subscribe", "id": i, "channel": c,
                                   "since": {"offset": 4, "epoch": epochs[c]}},
                              skip_messages=False)
            assert r["recovered"] is True and r["missed"] == 6, r
            got = await messages(ws, 6)
            assert [m["data"] for m in got] == [5, 6, 7, 8, 9, 10]
        await asyncio.gather(*(one(i, ws) for i, ws in enumerate(wss)))
        after = get_metrics(B.port)
        reads = (after["ringcast_redis_history_reads_total"]
                 - before["ringcast_redis_history_reads_total"])
        assert 1 <= reads <= 2 * n_chans, reads  # on the order of channels, not clients
        ok = 'ringcast_recoveries_total{outcome="recovered"}'
        assert after[ok] - before[ok] == n_clients
        # Live after the storm: once each.
        await publish(pub, chans[0], 11, "live")
        for i, ws in enumerate(wss):
            if i % n_chans == 0:
                assert (await messages(ws, 1))[0]["offset"] == 11
        for ws in wss + [pub]:
            await ws.close()
    run(go())


def test_backend_publishes(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "AB", pub_flags=FLAGS)
    A, B = nodes["A"], nodes["B"]

    async def go():
        chan = "chat:backend"
        sub, _ = await connect(B)
        epoch = (await subscribe(sub, chan))["epoch"]
        # Through the HTTP API: kept, with an offset, from the backend.
        st, _, _ = http_request(A.port, "POST", "/api/publish",
                                headers={"Authorization": "Bearer " + API_KEY},
                                body=json.dumps({"channel": chan, "data": "api"}).encode())
        assert st == 202
        m = (await messages(sub, 1))[0]
        assert m["offset"] == 1 and m["from"] == {"backend": True} and m["epoch"] == epoch
        # A plain PUBLISH on Redis: delivered live, not kept, no offset.
        with redis_server.client() as rc:
            rc.publish("rc:ch:" + chan, json.dumps({"data": "plain"}))
        m = (await messages(sub, 1))[0]
        assert m["data"] == "plain" and "offset" not in m and m["from"] == {"backend": True}
        r = await request(sub, {"type": "history", "id": 1, "channel": chan})
        assert [p["data"] for p in r["publications"]] == ["api"]
        st, _, body = http_request(B.port, "GET", "/api/channels/%s/history" % chan,
                                   headers={"Authorization": "Bearer " + API_KEY})
        assert st == 200 and [p["data"] for p in json.loads(body)["publications"]] == ["api"]
        await sub.close()
    run(go())


def test_recovery_while_redis_is_away(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "A", pub_flags=FLAGS)
    A = nodes["A"]

    async def go():
        chan = "chat:away"
        pub, _ = await connect(A)
        for i in range(1, 4):
            await publish(pub, chan, i, i)
        epoch = (await request(pub, {"type": "history", "channel": chan}))["epoch"]
        redis_server.kill()
        wait_until(lambda: readyz(A.port) == (503, "redis unreachable"), 10.0, "A sees Redis away")
        # Nothing to read the history from: said so, never a partial answer.
        ws, r = await recover(A, chan, 1, epoch)
        assert r["recovered"] is False and r["reason"] == "unavailable", r
        await expect_silence(ws)
        r = await request(ws, {"type": "history", "id": "h", "channel": chan})
        assert r["type"] == "error" and r["code"] == "history_unavailable" and r["id"] == "h", r
        r = await request(ws, {"type": "history", "id": "s", "channel": chan,
                               "since": {"offset": 1, "epoch": epoch}})
        assert r["type"] == "history" and r["recovered"] is False, r
        assert r["reason"] == "unavailable" and r["publications"] == [], r
        st, _, body = http_request(A.port, "GET", "/api/channels/%s/history" % chan,
                                   headers={"Authorization": "Bearer " + API_KEY})
        assert st == 503 and json.loads(body)["code"] == "history_unavailable", (st, body)
        await ws.close()
        await pub.close()
        m = get_metrics(A.port)
        assert m['ringcast_recoveries_total{outcome="unavailable"}'] >= 1
        # Redis back (empty: no persistence): the channel starts a new epoch.
        redis_server.start()
        wait_until(lambda: readyz(A.port) == (200, "ready"), 15.0, "A ready again")
        pub, _ = await connect(A)
        await publish(pub, chan, "new", "n")
        ws, r = await recover(A, chan, 3, epoch)
        assert r["recovered"] is False and r["reason"] == "epoch_changed", r
        await ws.close()
        await pub.close()
    run(go())


def test_a_node_that_left_a_channel_does_not_recover_from_what_it_saw(redis_server,
                                                                      start_server):
    """A node sees a channel's publications go by only while it has members
    of it. After its last member leaves (or after a history request without
    a subscription), what it kept falls behind: a recovery there must ask
    Redis, and find what was published through another node meanwhile."""
    nodes = start_nodes(start_server, redis_server, "AB", pub_flags=FLAGS)
    A, B = nodes["A"], nodes["B"]

    async def go():
        pub_b, _ = await connect(B, "bob")
        for chan in ("chat:left", "chat:read"):
            first, _ = await connect(A)
            r = await subscribe(first, chan)
            epoch = r["epoch"]
            for i in (1, 2):
                await publish(pub_b, chan, i, rid=i)
            assert [m["offset"] for m in await messages(first, 2)] == [1, 2]
            await first.close()  # A leaves the channel
            if chan == "chat:read":
                # A history request on A, without a subscription, reads Redis.
                ws, _ = await connect(A)
                h = await request(ws, {"type": "history", "id": 1, "channel": chan})
                assert [p["offset"] for p in h["publications"]] == [1, 2], h
                await ws.close()
            for i in (3, 4, 5):
                await publish(pub_b, chan, i, rid=i)
            back, r = await recover(A, chan, 2, epoch)
            assert r["recovered"] is True and r["missed"] == 3 and r["offset"] == 5, r
            assert [m["data"] for m in await messages(back, 3)] == [3, 4, 5]
            await expect_silence(back)
            await back.close()

    run(go())
