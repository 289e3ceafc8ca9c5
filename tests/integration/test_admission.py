"""Issue 5: waiting rooms, with a real redis-server and real ringcast nodes.

Expected values come from notes/issue5_spec.md: tickets are INCR'd per queue,
position = ticket - head, each tick admits min(rate, max_active - active)
lowest tickets (none while paused) and publishes its result on Redis channel
<prefix>ch:queue:<q>; admission tokens are HS256 JWTs over
{"sub","queue","iat","exp","typ":"admission"} signed with the admission
secret, checked here with Python's own hmac."""
import asyncio
import base64
import hashlib
import hmac
import json
import math
import threading
import time

import websockets

from rchelp import API_KEY, get_metrics, msum, recv_json, request, token, welcome, ws_connect
from redishelp import ChannelListener, async_wait_until, readyz, wait_until

ASECRET = "admission-test-secret-0123456789"
AENV = {"RINGCAST_ADMISSION_SECRET": ASECRET}
HDR = {"X-API-Key": API_KEY, "Content-Type": "application/json"}


def run(coro):
    return asyncio.run(coro)


# ---- helpers -------------------------------------------------------------------

def start_nodes(start_server, redis, names, tick_ms=1000, extra=()):
    nodes = {}
    for n in names:
        nodes[n] = start_server("--redis", redis.url, "--node-id", nid(n, redis),
                                "--admission-tick-ms", str(tick_ms), *extra, env=AENV)
    for n, srv in nodes.items():
        wait_until(lambda: readyz(srv.port) == (200, "ready"), 10.0, "node %s ready" % n)
    return nodes


def nid(name, redis):
    return "adm%s-%d" % (name, redis.port)


def api(srv, method, path, body=None, headers=HDR):
    data = None if body is None else (body if isinstance(body, bytes) else
                                      json.dumps(body).encode())
    st, _, resp = srv.http(method, path, headers, data)
    try:
        return st, json.loads(resp)
    except ValueError:
        return st, resp.decode("utf-8", "replace")


def put_queue(srv, q, **cfg):
    st, body = api(srv, "PUT", "/api/queues/" + q, cfg)
    assert st == 200, (st, body)
    return body


def wait_ticked(redis, q, timeout=10.0):
    """Until the leader has ticked q (stats hash written by the tick script)."""
    with redis.client() as rc:
        wait_until(lambda: rc.command("HGET", "rc:q:{%s}:stats" % q, "head") is not None,
                   timeout, "first tick of queue %s" % q, interval=0.05)


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(claims, secret=ASECRET):
    si = b64e(b'{"alg":"HS256","typ":"JWT"}') + "." + \
        b64e(json.dumps(claims, separators=(",", ":")).encode())
    return si + "." + b64e(hmac.new(secret.encode(), si.encode(), hashlib.sha256).digest())


def check_token(tok, user, queue, expires_ms):
    """Verifies an admission token independently (HMAC-SHA256 here) and
    returns its claims."""
    h, p, s = tok.split(".")
    want = hmac.new(ASECRET.encode(), (h + "." + p).encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(b64d(s), want), "bad signature on %s's token" % user
    assert json.loads(b64d(h)) == {"alg": "HS256", "typ": "JWT"}
    c = json.loads(b64d(p))
    assert set(c) == {"sub", "queue", "iat", "exp", "typ"}, c
    assert (c["sub"], c["queue"], c["typ"], c["exp"]) == \
        (user, queue, "admission", expires_ms // 1000), (c, expires_ms)
    assert abs(c["iat"] - time.time()) < 120, c
    return c


async def connect_user(srv, user):
    ws = await ws_connect(srv, "/ws?token=" + token(sub=user))
    await welcome(ws)
    return ws


async def next_of(ws, types, timeout=5.0):
    """The next message whose type is in types (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        m = await recv_json(ws, max(0.01, deadline - time.monotonic()))
        if m.get("type") in types:
            return m


async def join(ws, q, rid=1, timeout=5.0):
    """Sends queue.join; returns the reply carrying its id (pushes and
    notices in between are skipped)."""
    await ws.send(json.dumps({"type": "queue.join", "id": rid, "queue": q}))
    deadline = time.monotonic() + timeout
    while True:
        m = await recv_json(ws, max(0.01, deadline - time.monotonic()))
        if m.get("id") == rid:
            return m


TICK_KEYS = {"type", "queue", "head", "ewma", "tick", "paused", "time"}


def place(ticket, t):
    """A waiter's (position, eta) from its ticket and a queue.tick frame t,
    the client's rule in docs/PROTOCOL.md, written here from the text."""
    pos = max(ticket - t["head"], 1)
    ewma = float(t["ewma"])
    return pos, (None if ewma < 0.01 else math.ceil(pos / ewma * t["tick"] / 1000.0))


def metric(srv, name):
    return msum(get_metrics(srv.port), name)


def check_400(what, st, body, not_json):
    """A 400 whose body is the JSON error {"type":"error","code":"bad_request",...};
    bodies that are not JSON are collected (reported at the end of the test)."""
    assert st == 400, (what, st, body)
    if isinstance(body, dict):
        assert body.get("type") == "error" and body.get("code") == "bad_request", (what, body)
    else:
        assert '"code":"bad_request"' in body, (what, body)
        not_json.append("%r -> %s" % (what, body))


# ---- HTTP API --------------------------------------------------------------------

def test_http_api_put_get_complete_verify(redis_server, start_server):
    srv = start_nodes(start_server, redis_server, "A", tick_ms=200)["A"]
    q = "sale-42"
    not_json = []
    # 401 without / with a wrong API key, on every endpoint
    for method, path in (("PUT", "/api/queues/" + q), ("GET", "/api/queues/" + q),
                         ("POST", "/api/queues/%s/complete" % q),
                         ("POST", "/api/queues/verify")):
        for hdr in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            st, _, _ = srv.http(method, path, hdr, b"{}")
            assert st == 401, (method, path, hdr, st)
    # 404 before it exists
    st, body = api(srv, "GET", "/api/queues/" + q)
    assert st == 404 and body["code"] == "queue_not_found", (st, body)

    # PUT with defaults (empty body), then a partial update keeps the rest
    st, body = api(srv, "PUT", "/api/queues/" + q, b"")
    assert (st, body) == (200, {"queue": q, "rate": 10, "max_active": 100, "active_ttl": 600,
                                "abandon_timeout": 120, "state": "open"}), (st, body)
    st, body = api(srv, "PUT", "/api/queues/" + q, {"rate": 7, "state": "paused"},
                   headers={"Authorization": "Bearer " + API_KEY})
    assert (st, body) == (200, {"queue": q, "rate": 7, "max_active": 100, "active_ttl": 600,
                                "abandon_timeout": 120, "state": "paused"}), (st, body)
    with redis_server.client() as rc:
        assert rc.command("HGET", "rc:q:{%s}:cfg" % q, "rate") == b"7"
        assert rc.command("SISMEMBER", "rc:q:index", q) == 1

    # 400 on bad configurations; the stored one is unchanged
    for bad in ({"rate": 0}, {"rate": 1000001}, {"max_active": 0}, {"active_ttl": 0},
                {"active_ttl": 604801}, {"abandon_timeout": 4}, {"state": "closed"},
                {"rate": "5"}, {"rate": 1.5}, {"colour": "red"}, [1, 2]):
        st, body = api(srv, "PUT", "/api/queues/" + q, bad)
        check_400(bad, st, body, not_json)
    st, body = api(srv, "PUT", "/api/queues/" + q, b"not json")
    assert st == 400, (st, body)
    st, body = api(srv, "PUT", "/api/queues/bad%20id!", {"rate": 1})
    assert st == 400, (st, body)
    st, body = api(srv, "PUT", "/api/queues/" + "x" * 65, {"rate": 1})
    assert st == 400, (st, body)
    st, _, _ = srv.http("DELETE", "/api/queues/" + q, HDR)
    assert st == 405
    st, _, _ = srv.http("GET", "/api/queues/%s/complete" % q, HDR)
    assert st == 405
    st, _, _ = srv.http("GET", "/api/queues/verify", HDR)
    assert st == 405

    # two users join (the queue is paused: nobody is admitted)
    async def joins():
        conns = []
        for u in ("ann", "bob"):
            ws = await connect_user(srv, u)
            conns.append((ws, await join(ws, q)))
        try:
            for i, (ws, r) in enumerate(conns):
                assert r == {"type": "queue.joined", "id": 1, "queue": q, "ticket": i + 1,
                             "position": i + 1, "eta": None}, r
            wait_ticked(redis_server, q)
            st, body = api(srv, "GET", "/api/queues/" + q)
            assert st == 200, body
            assert body == {"queue": q, "state": "paused", "rate": 7, "max_active": 100,
                            "active_ttl": 600, "abandon_timeout": 120, "waiting": 2,
                            "active": 0, "head": 0, "last_ticket": 2, "admitted_total": 0,
                            "abandoned_total": 0, "leader": nid("A", redis_server)}, body
        finally:
            for ws, _ in conns:
                await ws.close()

    run(joins())

    # complete: frees an active place (put there as the tick would), once
    with redis_server.client() as rc:
        rc.command("ZADD", "rc:q:{%s}:active" % q, int(time.time() * 1000) + 600000, "carl")
    st, body = api(srv, "GET", "/api/queues/" + q)
    assert body["active"] == 1, body
    st, body = api(srv, "POST", "/api/queues/%s/complete" % q, {"user": "carl"})
    assert (st, body) == (200, {"queue": q, "user": "carl", "freed": True}), (st, body)
    st, body = api(srv, "POST", "/api/queues/%s/complete" % q, {"user": "carl"})
    assert (st, body) == (200, {"queue": q, "user": "carl", "freed": False}), (st, body)
    st, body = api(srv, "POST", "/api/queues/%s/complete" % q, {"nobody": 1})
    check_400("complete without user", st, body, not_json)
    with redis_server.client() as rc:
        assert rc.command("ZSCORE", "rc:q:{%s}:active" % q, "carl") is None

    # verify
    now = int(time.time())
    good = mint({"sub": "ann", "queue": q, "iat": now, "exp": now + 300, "typ": "admission"})
    st, body = api(srv, "POST", "/api/queues/verify", {"token": good})
    assert (st, body) == (200, {"valid": True, "user": "ann", "queue": q, "iat": now,
                                "exp": now + 300}), (st, body)
    cases = [
        (mint({"sub": "ann", "queue": q, "iat": now - 900, "exp": now - 10,
               "typ": "admission"}), "expired"),
        (good[:-2] + ("AA" if good[-2:] != "AA" else "BB"), "bad signature"),
        (mint({"sub": "ann", "queue": q, "iat": now, "exp": now + 300, "typ": "admission"},
              secret=ASECRET + "x"), "bad signature"),
        (mint({"sub": "ann", "queue": q, "iat": now, "exp": now + 300}),
         "not an admission token"),
        ("garbage", "malformed"),
    ]
    for tok, reason in cases:
        st, body = api(srv, "POST", "/api/queues/verify", {"token": tok})
        assert (st, body) == (200, {"valid": False, "reason": reason}), (tok, st, body)
    st, body = api(srv, "POST", "/api/queues/verify", {"tok": good})
    check_400("verify without token", st, body, not_json)
    st, body = api(srv, "PUT", "/api/queues/" + q, {"rate": 0})
    # the 400s changed nothing
    st, body = api(srv, "GET", "/api/queues/" + q)
    assert (body["rate"], body["state"]) == (7, "paused"), body
    assert not not_json, "error bodies that are not valid JSON:\n" + "\n".join(not_json)


# ---- the client protocol ------------------------------------------------------------

def test_join_errors_and_queue_channels_forbidden(redis_server, start_server):
    srv = start_nodes(start_server, redis_server, "A", tick_ms=200)["A"]
    nosecret = start_server("--redis", redis_server.url, "--node-id", nid("N", redis_server))
    put_queue(srv, "q1", state="paused")
    put_queue(srv, "q2", state="paused")

    async def go():
        ws = await connect_user(srv, "ann")
        # queue:* channels are the server's: no subscribe, no publish, even with "*"
        for ch in ("queue:q1", "queue:nope"):
            r = await request(ws, {"type": "subscribe", "id": "s", "channel": ch})
            assert (r["type"], r.get("id"), r.get("code")) == ("error", "s", "forbidden"), r
            r = await request(ws, {"type": "publish", "id": "p", "channel": ch,
                                   "event": "queue.tick",
                                   "data": {"head": 99, "admitted": ["ann"], "exp": 1}})
            assert (r["type"], r.get("id"), r.get("code")) == ("error", "p", "forbidden"), r
        r = await join(ws, "nope")
        assert (r["type"], r.get("id"), r.get("code")) == ("error", 1, "queue_not_found"), r
        r = await join(ws, "q1", rid=2)
        assert (r["type"], r["ticket"], r["position"]) == ("queue.joined", 1, 1), r
        r = await join(ws, "q2", rid=3)
        assert (r["type"], r.get("id"), r.get("code")) == ("error", 3, "already_waiting"), r
        # leave, then another queue is fine
        await ws.send(json.dumps({"type": "queue.leave", "id": 4, "queue": "q1"}))
        r = await next_of(ws, ("queue.left", "error"))
        assert r == {"type": "queue.left", "id": 4, "queue": "q1"}, r
        with redis_server.client() as rc:
            assert rc.command("ZSCORE", "rc:q:{q1}:wait", "ann") is None
        r = await join(ws, "q2", rid=5)
        assert (r["type"], r["ticket"], r["position"]) == ("queue.joined", 1, 1), r
        await ws.close()

        anon = await ws_connect(srv)
        await welcome(anon)
        r = await join(anon, "q1")
        assert (r["type"], r.get("code")) == ("error", "forbidden"), r
        await anon.close()

        ws = await connect_user(nosecret, "bob")
        r = await join(ws, "q1")
        assert (r["type"], r.get("id"), r.get("code")) == ("error", 1, "queue_unavailable"), r
        await ws.close()
        with redis_server.client() as rc:
            assert rc.command("ZSCORE", "rc:q:{q1}:wait", "bob") is None
        st, body = api(nosecret, "POST", "/api/queues/verify", {"token": "x.y.z"})
        assert st == 503, (st, body)

    run(go())


def test_reconnect_keeps_place_admitted_offline_gets_token_abandon(redis_server, start_server):
    nodes = start_nodes(start_server, redis_server, "AB", tick_ms=200)
    A, B = nodes["A"], nodes["B"]
    put_queue(A, "r", state="paused", rate=1, abandon_timeout=60)
    put_queue(A, "ab", state="paused", abandon_timeout=5)
    rc = redis_server.client()

    async def go():
        ws = {}
        for u in ("u1", "u2", "u3"):
            ws[u] = await connect_user(A, u)
            r = await join(ws[u], "r")
            assert (r["type"], r["ticket"]) == ("queue.joined", int(u[1])), r
        # a second tab on another node keeps the ticket
        tab = await connect_user(B, "u2")
        r = await join(tab, "r", rid=7)
        assert r == {"type": "queue.joined", "id": 7, "queue": "r", "ticket": 2, "position": 2,
                     "eta": None}, r
        # a refresh: both tabs go, the user comes back on B, same place
        await tab.close()
        await ws["u2"].close()
        ws["u2"] = await connect_user(B, "u2")
        r = await join(ws["u2"], "r")
        assert (r["type"], r.get("ticket"), r.get("position")) == ("queue.joined", 2, 2), r
        assert rc.command("GET", "rc:q:{r}:seq") == b"3"

        # u1 goes away and is admitted while offline (ticket 1, rate 1 per tick)
        await ws["u1"].close()
        put_queue(A, "r", state="open")
        exp = await async_wait_until(lambda: rc.command("ZSCORE", "rc:q:{r}:active", "u1"), 5.0,
                                     "u1 admitted")
        exp = int(float(exp))
        ws["u1"] = await connect_user(B, "u1")
        r = await join(ws["u1"], "r", rid=9)
        assert set(r) == {"type", "id", "queue", "token", "expires"}, r
        assert (r["type"], r["id"], r["queue"], r["expires"]) == ("admitted", 9, "r", exp), r
        check_token(r["token"], "u1", "r", exp)
        st, body = api(A, "POST", "/api/queues/verify", {"token": r["token"]})
        assert st == 200 and body["valid"] is True and (body["user"], body["queue"], body["exp"]) \
            == ("u1", "r", exp // 1000), body
        # u2 (online, on B) and u3 (on A) get it pushed, one per tick, in ticket order
        for u in ("u2", "u3"):
            m = await next_of(ws[u], ("admitted",), timeout=5.0)
            e = int(float(rc.command("ZSCORE", "rc:q:{r}:active", u)))
            assert set(m) == {"type", "queue", "token", "expires"}, m
            assert (m["queue"], m["expires"]) == ("r", e), m
            check_token(m["token"], u, "r", e)
        e2, e3 = (int(float(rc.command("ZSCORE", "rc:q:{r}:active", u))) for u in ("u2", "u3"))
        assert e3 > e2 > exp, (exp, e2, e3)
        for w in ws.values():
            await w.close()

        # abandon: w2 leaves without a word, w1 stays connected
        w1 = await connect_user(A, "w1")
        w2 = await connect_user(B, "w2")
        assert (await join(w1, "ab"))["ticket"] == 1
        assert (await join(w2, "ab"))["ticket"] == 2
        await w2.close()
        gone_at = time.monotonic()
        await asyncio.sleep(3.0)
        assert rc.command("ZSCORE", "rc:q:{ab}:wait", "w2") == b"2", "removed too early"
        await async_wait_until(lambda: rc.command("ZSCORE", "rc:q:{ab}:wait", "w2") is None,
                               6.0, "w2 abandoned", interval=0.1)
        took = time.monotonic() - gone_at
        assert took <= 5.0 + 2.0, took
        assert rc.command("ZSCORE", "rc:q:{ab}:seen", "w2") is None
        assert rc.command("ZSCORE", "rc:q:{ab}:wait", "w1") == b"1", "w1 is still connected"
        st, body = api(B, "GET", "/api/queues/ab")
        assert (body["waiting"], body["abandoned_total"], body["head"], body["last_ticket"]) \
            == (1, 1, 0, 2), body
        # w1 keeps its place past the abandon timeout (its node refreshes it)
        await asyncio.sleep(max(0.0, 6.5 - (time.monotonic() - gone_at)))
        assert rc.command("ZSCORE", "rc:q:{ab}:wait", "w1") == b"1"
        # an abandoned user who comes back starts at the end
        w2 = await connect_user(A, "w2")
        r = await join(w2, "ab")
        assert (r["ticket"], r["position"]) == (3, 3), r
        st, body = api(A, "GET", "/api/queues/ab")
        assert body["abandoned_total"] == 1, body
        await w1.close()
        await w2.close()

    try:
        run(go())
    finally:
        rc.close()


def test_positions_per_tick_never_up_with_eta(redis_server, start_server):
    tick_ms = 250
    srv = start_nodes(start_server, redis_server, "A", tick_ms=tick_ms)["A"]
    put_queue(srv, "p", state="paused", rate=1, max_active=1000)
    lis = ChannelListener(redis_server.port, "rc:ch:queue:p")
    users = ["p%d" % i for i in range(1, 7)]

    async def reader(ws, got):
        while True:
            m = json.loads(await ws.recv())
            got.append((time.monotonic(), m))
            if m["type"] == "admitted":
                return

    async def go():
        conns, got, tasks = {}, {}, []
        for i, u in enumerate(users):
            conns[u] = await connect_user(srv, u)
            r = await join(conns[u], "p")
            assert (r["type"], r["ticket"], r["position"], r["eta"]) == \
                ("queue.joined", i + 1, i + 1, None), r
            got[u] = []
            tasks.append(asyncio.ensure_future(reader(conns[u], got[u])))
        joined_at = time.monotonic()
        # the last joiner's first push proves the node gets the ticks
        await async_wait_until(lambda: got[users[-1]], 3.0, "first position")
        await asyncio.sleep(1.5)
        opened_at = time.monotonic()
        put_queue(srv, "p", state="open")
        await asyncio.wait_for(asyncio.gather(*tasks), 10.0)
        for ws in conns.values():
            await ws.close()
        return got, joined_at, opened_at

    try:
        got, joined_at, opened_at = run(go())
    finally:
        lis.stop()
    items = list(lis.items)
    ticks = [d["data"] for _, d in items]
    by_time = {t["time"]: t for t in ticks}
    paused = [t for (at, d), t in zip(items, ticks)
              if d["data"]["state"] == "paused" and joined_at + 0.5 < at < opened_at - 0.1]
    assert len(paused) >= 4, paused
    opened = [t for t in ticks if t["state"] == "open" and t["admitted"]]
    assert [t["admitted"] for t in opened] == [[u] for u in users], opened
    assert [t["head"] for t in opened] == [1, 2, 3, 4, 5, 6], opened
    for i, u in enumerate(users):
        ticket = i + 1
        msgs = [m for _, m in got[u]]
        assert msgs[-1]["type"] == "admitted" and msgs[-1]["expires"] == opened[i]["exp"], msgs
        frames = [m for m in msgs if m["type"] == "queue.tick"]
        assert len(frames) == len(msgs) - 1, msgs
        # nothing of one waiter's own in the tick's frame
        assert all(m["queue"] == "p" and set(m) == TICK_KEYS and m["tick"] == tick_ms
                   for m in frames), frames
        ps = [place(ticket, m)[0] for m in frames]
        assert all(b <= a for a, b in zip(ps, ps[1:])), (u, ps)
        # one frame per tick: every paused tick, then every head below the ticket
        assert sum(1 for p in ps if p == ticket) >= len(paused) - 1, (u, ps, len(paused))
        assert sorted(set(p for p in ps if p < ticket), reverse=True) == \
            list(range(ticket - 1, 0, -1)), (u, ps)
        assert ps.count(ticket) + ticket - 1 >= len(ps) >= len(paused) - 1 + ticket - 1
        for m in frames:
            t = by_time[m["time"]]  # the leader's tick this frame came from
            assert m["head"] == t["head"], (m, t)
            pos, eta = place(ticket, m)
            if t["state"] == "paused":
                # the leader keeps its figure; the frame says 0: no estimate
                assert (m["paused"], m["ewma"], eta) == (True, 0, None), (m, t)
            else:
                assert (m["paused"], m["ewma"]) == (False, t["ewma"]), (m, t)
                want = math.ceil(pos / float(t["ewma"]) * tick_ms / 1000.0)
                assert eta == want, (m, t)


def test_shared_tick_same_bytes_exact_places_two_nodes(redis_server, start_server):
    """16 waiters on two nodes, then two more while the line moves: every
    waiter gets every tick until its turn (none missing), the frame of a tick
    is the same bytes for all of them on both nodes, and the place each
    derives from it is exact (one more than the waiters ahead, ticket minus
    head) and never goes up, from its queue.joined on."""
    tick_ms = 250
    nodes = start_nodes(start_server, redis_server, "AB", tick_ms=tick_ms)
    put_queue(nodes["A"], "s", state="paused", rate=2, max_active=1000)
    lis = ChannelListener(redis_server.port, "rc:ch:queue:s")
    names = ["s%02d" % i for i in range(1, 19)]
    node_of = {u: "AB"[i % 2] for i, u in enumerate(names)}
    got = {u: [] for u in names}  # (raw text, parsed), after the join's answer
    joined = {}

    async def reader(u, ws):
        while True:
            raw = await ws.recv()
            m = json.loads(raw)
            got[u].append((raw, m))
            if m["type"] == "admitted":
                return

    async def enter(u):
        ws = await connect_user(nodes[node_of[u]], u)
        r = await join(ws, "s")
        assert r["type"] == "queue.joined", r
        joined[u] = r
        return ws, asyncio.ensure_future(reader(u, ws))

    async def go():
        conns = []
        for u in names[:16]:
            conns.append(await enter(u))
        await async_wait_until(lambda: all(got[u] for u in names[:16]), 3.0, "paused ticks")
        put_queue(nodes["B"], "s", state="open")
        n0 = len(lis.ticks())
        await async_wait_until(lambda: len(lis.ticks()) >= n0 + 2, 3.0, "two open ticks")
        for u in names[16:]:
            conns.append(await enter(u))
        await asyncio.wait_for(asyncio.gather(*(t for _, t in conns)), 15.0)
        for ws, _ in conns:
            await ws.close()

    try:
        run(go())
        ticks = lis.ticks()
    finally:
        lis.stop()
    by_time = {t["time"]: t for t in ticks}
    assert len(by_time) == len(ticks), ticks
    turn = {}  # user -> index in ticks of the tick that admitted it
    for i, t in enumerate(ticks):
        for u in t["admitted"]:
            turn[u] = i
    assert sorted(turn) == names, turn
    assert [joined[u]["ticket"] for u in names] == list(range(1, 19)), joined
    frames_of = {}  # tick time -> the raw frames every waiter got of it
    for u in names:
        ticket = joined[u]["ticket"]
        msgs = [m for _, m in got[u]]
        assert msgs[-1]["type"] == "admitted" and \
            msgs[-1]["expires"] == ticks[turn[u]]["exp"], (u, msgs[-1])
        mine = [(raw, m) for raw, m in got[u] if m["type"] == "queue.tick"]
        assert len(mine) == len(msgs) - 1, (u, msgs)
        idx = [ticks.index(by_time[m["time"]]) for _, m in mine]
        # every tick from the first one it got to the one before its turn
        assert idx == list(range(idx[0], turn[u])), (u, idx, turn[u])
        if u in names[:16]:
            assert ticks[idx[0]]["state"] == "paused", (u, ticks[idx[0]])
        last = joined[u]["position"]
        assert 1 <= last <= ticket, (u, joined[u])
        for (raw, m), i in zip(mine, idx):
            t = ticks[i]
            frames_of.setdefault(m["time"], set()).add(raw)
            assert set(m) == TICK_KEYS and m["queue"] == "s" and m["head"] == t["head"], (m, t)
            pos, eta = place(ticket, m)
            # exact: one more than the waiters with an earlier ticket still in line
            ahead = sum(1 for v in names[:ticket - 1] if turn[v] > i)
            assert pos == ahead + 1 == ticket - t["head"], (u, m, t, ahead)
            assert pos <= last, (u, pos, last)
            last = pos
            if t["state"] == "paused":
                assert (m["paused"], eta) == (True, None), m
            else:
                assert eta == math.ceil(pos / float(t["ewma"]) * tick_ms / 1000.0), (m, t)
    # one frame per tick, byte for byte, for every waiter on both nodes
    assert all(len(f) == 1 for f in frames_of.values()), frames_of
    def got_tick(tm):
        return {u for u in names if any(m.get("time") == tm for _, m in got[u])}
    assert any(got_tick(tm) == set(names[:16]) for tm in frames_of), "a tick all 16 got"
    assert any(set(names[16:]) < got_tick(tm) for tm in frames_of), "a tick the late ones got"


# ---- 2,000 users, three nodes, the leader killed mid-run -------------------------------

class User:
    def __init__(self, name, node):
        self.name, self.node = name, node
        self.ws = None
        self.ticket = None
        self.positions = []
        self.admitted = []  # admitted messages, over all its connections
        self.lost = False
        self.rejoin = None  # the reply to the join after the node died


async def user_reader(u):
    try:
        async for raw in u.ws:
            m = json.loads(raw)
            if m["type"] == "queue.tick":
                u.positions.append(place(u.ticket, m)[0])
            elif m["type"] == "admitted":
                u.admitted.append(m)
    except websockets.exceptions.ConnectionClosed:
        pass
    u.lost = True


class Sampler:
    """Every second, midway between two ticks (as the listener saw them):
    ZCARD of the active set and the admitted_total of the stats."""

    def __init__(self, redis, q, lis):
        self.rc = redis.client()
        self.q, self.lis = q, lis
        self.samples = []  # (monotonic, zcard active, admitted_total)
        self.stop_ev = threading.Event()
        self.error = None
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        try:
            while not self.stop_ev.is_set():
                if not self.lis.items:
                    time.sleep(0.05)
                    continue
                target, now = self.lis.items[-1][0] + 0.5, time.monotonic()
                while target <= now:
                    target += 1.0
                if self.stop_ev.wait(target - now):
                    return
                z = self.rc.command("ZCARD", "rc:q:{%s}:active" % self.q)
                a = int(self.rc.command("HGET", "rc:q:{%s}:stats" % self.q, "admitted_total")
                        or 0)
                self.samples.append((time.monotonic(), z, a))
        except Exception as exc:
            self.error = exc

    def stop(self):
        self.stop_ev.set()
        self.th.join(timeout=5)
        self.rc.close()


def test_2000_users_three_nodes_rate_cap_order_leader_killed(redis_server, start_server):
    N, RATE, MAXA, TTL = 2000, 100, 300, 3
    q = "big"
    nodes = start_nodes(start_server, redis_server, "ABC", tick_ms=1000)
    names = {nid(n, redis_server): n for n in nodes}
    put_queue(nodes["A"], q, rate=RATE, max_active=MAXA, active_ttl=TTL, abandon_timeout=60,
              state="paused")
    lis = ChannelListener(redis_server.port, "rc:ch:queue:" + q)
    sampler = Sampler(redis_server, q, lis)
    rc = redis_server.client()
    users = [User("user%04d" % i, "ABC"[i % 3]) for i in range(N)]
    by_name = {u.name: u for u in users}
    readers = []
    state = {}

    def admitted_so_far():
        return sum(len(t["admitted"]) for t in lis.ticks())

    async def connect_join(u, node):
        u.ws = await connect_user(nodes[node], u.name)
        u.node = node
        return await join(u.ws, q)

    async def go():
        # joins, 100 at a time: a later batch has later tickets
        prev_max = 0
        for b in range(0, N, 100):
            batch = users[b:b + 100]
            replies = await asyncio.gather(*(connect_join(u, u.node) for u in batch))
            for u, r in zip(batch, replies):
                assert r["type"] == "queue.joined" and r["position"] == r["ticket"], r
                u.ticket = r["ticket"]
                readers.append(asyncio.ensure_future(user_reader(u)))
            tickets = [u.ticket for u in batch]
            assert min(tickets) > prev_max, "joins of batch %d got earlier tickets" % b
            prev_max = max(tickets)
        assert sorted(u.ticket for u in users) == list(range(1, N + 1))

        put_queue(nodes["B"], q, state="open")
        await async_wait_until(lambda: admitted_so_far() >= 700, 20.0, "700 admitted",
                               interval=0.05)
        # kill the leader 0.3 s after a tick (its waiters got that tick's pushes)
        n0 = len(lis.items)
        await async_wait_until(lambda: len(lis.items) > n0, 3.0, "a tick")
        await asyncio.sleep(0.3)
        leader = rc.command("GET", "rc:q:{%s}:lease" % q).decode()
        dead = names[leader]
        state["dead"], state["admitted_at_kill"] = dead, admitted_so_far()
        assert state["admitted_at_kill"] <= N - 500, "the kill must be mid-run"
        state["kill_at"] = time.monotonic()
        nodes[dead].kill()
        nodes[dead].exit_checked = True  # SIGKILLed on purpose
        live = [n for n in nodes if n != dead]

        # its users come back on the other nodes
        orphans = [u for u in users if u.node == dead]
        await async_wait_until(lambda: all(u.lost for u in orphans), 10.0,
                               "the dead node's users see the close")
        pending = [u for u in orphans if not u.admitted]
        state["orphans"], state["rejoined"] = len(orphans), len(pending)

        async def rejoin(u, i):
            r = await connect_join(u, live[i % 2])
            u.rejoin = r
            if r["type"] == "admitted":
                u.admitted.append(r)
            readers.append(asyncio.ensure_future(user_reader(u)))

        await asyncio.gather(*(rejoin(u, i) for i, u in enumerate(pending)))
        await async_wait_until(lambda: all(u.admitted for u in users), 60.0,
                               "every user admitted", interval=0.1)
        # the latest tokens are still fresh: every node accepts them
        fresh = [by_name[n] for n in lis.ticks()[-1]["admitted"]
                 if by_name[n].admitted[0]["expires"] // 1000 > time.time() + 1][:10]
        for u in fresh:
            tok = u.admitted[0]["token"]
            st, body = api(nodes[live[u.ticket % 2]], "POST", "/api/queues/verify",
                           {"token": tok})
            assert (st, body["valid"], body["user"], body["queue"], body["exp"]) == \
                (200, True, u.name, q, u.admitted[0]["expires"] // 1000), body
        state["fresh_verified"] = len(fresh)
        await asyncio.sleep(1.5)  # room for a duplicate to show up
        for u in users:
            await u.ws.close()
        await asyncio.gather(*readers)
        return live

    try:
        live = run(go())
    finally:
        sampler.stop()
        lis.stop()
    assert lis.error is None and sampler.error is None, (lis.error, sampler.error)
    dead = state["dead"]
    ticks = lis.ticks()
    times = [at for at, d in lis.items]

    # every tick follows the rule exactly; active never exceeds max_active
    for t in ticks:
        k = len(t["admitted"])
        assert t["active"] <= MAXA, t
        if t["state"] == "paused":
            assert k == 0, t
        else:
            assert k == min(RATE, MAXA - (t["active"] - k), t["waiting"] + k), t
    # admission order is ticket order, everybody exactly once, nobody lost
    order = [by_name[n].ticket for t in ticks for n in t["admitted"]]
    assert order == list(range(1, N + 1)), "admission order differs from ticket order"
    tick_exp = {n: t["exp"] for t in ticks for n in t["admitted"]}

    # the sampled seconds: at most 100 admitted between two samples a second apart
    s = sampler.samples
    assert len(s) >= 15, s
    assert all(z <= MAXA for _, z, _ in s), s
    pairs = [(b[2] - a[2]) for a, b in zip(s, s[1:]) if 0.8 <= b[0] - a[0] <= 1.2]
    assert len(pairs) >= 10, s
    assert max(pairs) <= RATE and max(pairs) == RATE, pairs

    # admission went on after the kill, on another node, within the lease time
    after = [at for at, t in zip(times, ticks) if at > state["kill_at"] and t["admitted"]]
    assert after and after[0] - state["kill_at"] <= 5.0 + 2.5, after[:1]
    new_leader = rc.command("GET", "rc:q:{%s}:lease" % q).decode()
    assert names[new_leader] in live, (new_leader, dead)
    m = {n: get_metrics(nodes[n].port) for n in live}
    assert m[names[new_leader]]["ringcast_admission_leader"] == 1
    assert sum(m[n]["ringcast_admission_leader"] for n in live) == 1
    assert m[names[new_leader]]["ringcast_admission_admitted_total"] >= 1
    st, body = api(nodes[live[0]], "GET", "/api/queues/" + q)
    assert (st, body["waiting"], body["head"], body["last_ticket"], body["admitted_total"],
            body["abandoned_total"], body["leader"]) == \
        (200, 0, N, N, N, 0, new_leader), body

    # the users: one token each, the right one, positions never up
    assert state["rejoined"] > 0, state
    for u in users:
        assert len(u.admitted) == 1, (u.name, u.admitted)
        a = u.admitted[0]
        assert a["queue"] == q and a["expires"] == tick_exp[u.name], (u.name, a)
        check_token(a["token"], u.name, q, a["expires"])
        assert all(y <= x for x, y in zip(u.positions, u.positions[1:])), (u.name, u.positions)
        assert all(1 <= p <= u.ticket for p in u.positions), (u.name, u.positions)
        if u.rejoin is not None:
            r = u.rejoin
            assert (r["type"] == "queue.joined" and r["ticket"] == u.ticket) or \
                r["type"] == "admitted", (u.name, r)
    # tokens from early ticks have expired by now (active_ttl 3 s)
    for u in users[::97]:
        srv = nodes[live[u.ticket % 2]]
        exp_s = u.admitted[0]["expires"] // 1000
        if exp_s > time.time() - 1:
            continue
        st, body = api(srv, "POST", "/api/queues/verify", {"token": u.admitted[0]["token"]})
        assert (st, body) == (200, {"valid": False, "reason": "expired"}), (u.name, body)
    assert state["fresh_verified"] >= 10, state
    rc.close()


# ---- a lease per queue: two nodes lead two queues; one is SIGKILLed -----------------------

def test_two_leaders_two_queues_lease_moves_when_one_is_killed(redis_server, start_server):
    """Each queue has its own lease (rc:q:{q}:lease, in the queue's slot):
    A leads qa and B leads qb at the same time; A is SIGKILLed mid-run and
    B takes qa's lease once it has run out. Every user of both queues is
    admitted exactly once, in ticket order, and a node never commits a
    queue whose lease another node holds."""
    N, RATE, TICK = 30, 2, 200
    nodes = start_nodes(start_server, redis_server, "AB", tick_ms=TICK)
    ida, idb = nid("A", redis_server), nid("B", redis_server)
    rc = redis_server.client()
    # The first node to tick a free lease takes it: hand them out beforehand
    # (each node's first tick renews its own to the lease time, 5 s).
    rc.command("SET", "rc:q:{qa}:lease", ida, "PX", "20000")
    rc.command("SET", "rc:q:{qb}:lease", idb, "PX", "20000")
    for q in ("qa", "qb"):
        put_queue(nodes["A"], q, rate=RATE, max_active=1000, active_ttl=600,
                  abandon_timeout=60, state="paused")
    lis = {q: ChannelListener(redis_server.port, "rc:ch:queue:" + q) for q in ("qa", "qb")}
    # every user waits on B, which lives on: A's death only moves a lease
    users = {q: [User("%s-u%02d" % (q, i), "B") for i in range(N)] for q in ("qa", "qb")}
    readers = []
    state = {}

    def admitted(q):
        return [n for t in lis[q].ticks() for n in t["admitted"]]

    def leaders():
        return {q: (rc.command("GET", "rc:q:{%s}:lease" % q) or b"").decode()
                for q in ("qa", "qb")}

    async def go():
        for q in ("qa", "qb"):
            for u in users[q]:
                u.ws = await connect_user(nodes["B"], u.name)
                r = await join(u.ws, q)
                assert r["type"] == "queue.joined", r
                u.ticket = r["ticket"]
                readers.append(asyncio.ensure_future(user_reader(u)))
        # both nodes lead one queue each, at the same time
        await async_wait_until(
            lambda: all(metric(nodes[n], "ringcast_admission_leader_queues") == 1
                        for n in "AB"), 10.0, "one queue led by each node")
        assert leaders() == {"qa": ida, "qb": idb}
        for q, want in (("qa", ida), ("qb", idb)):
            st, body = api(nodes["B"], "GET", "/api/queues/" + q)
            assert (st, body["leader"]) == (200, want), body
        for q in ("qa", "qb"):
            put_queue(nodes["B"], q, state="open")
        await async_wait_until(lambda: len(admitted("qa")) >= 3 * RATE, 10.0,
                               "qa's first admissions")
        state["qa_at_kill"] = len(admitted("qa"))
        assert state["qa_at_kill"] <= N - 4 * RATE, "the kill must be mid-run"
        state["kill_at"] = time.monotonic()
        nodes["A"].kill()
        nodes["A"].exit_checked = True  # SIGKILLed on purpose
        await async_wait_until(lambda: all(u.admitted for q in users for u in users[q]),
                               30.0, "every user admitted", interval=0.1)
        await asyncio.sleep(1.0)  # room for a duplicate to show up
        for q in users:
            for u in users[q]:
                await u.ws.close()
        await asyncio.gather(*readers)

    try:
        run(go())
        # qa's lease moved to B within the lease time; qb's never moved
        after = [at for at, d in lis["qa"].items
                 if at > state["kill_at"] and isinstance(d, dict) and d["data"]["admitted"]]
        assert after and after[0] - state["kill_at"] <= 5.0 + 2.0, after[:1]
        assert leaders() == {"qa": idb, "qb": idb}
        m = get_metrics(nodes["B"].port)
        assert (m["ringcast_admission_leader"], m["ringcast_admission_leader_queues"]) == \
            (1, 2), m
        for q in ("qa", "qb"):
            assert lis[q].error is None, lis[q].error
            order = admitted(q)
            by_name = {u.name: u for u in users[q]}
            assert [by_name[n].ticket for n in order] == list(range(1, N + 1)), order
            for u in users[q]:
                assert len(u.admitted) == 1, (u.name, u.admitted)
                check_token(u.admitted[0]["token"], u.name, q, u.admitted[0]["expires"])
            st, body = api(nodes["B"], "GET", "/api/queues/" + q)
            assert (st, body["waiting"], body["admitted_total"], body["leader"]) == \
                (200, 0, N, idb), body
    finally:
        for x in lis.values():
            x.stop()
        rc.close()


# ---- Redis away; metrics ------------------------------------------------------------------

def test_redis_unreachable_queue_unavailable_then_resumes(redis_server, start_server):
    srv = start_nodes(start_server, redis_server, "A", tick_ms=200,
                      extra=("--redis-ping-ms", "200"))["A"]
    put_queue(srv, "u", state="paused", rate=10)

    async def go():
        w1 = await connect_user(srv, "w1")
        assert (await join(w1, "u"))["ticket"] == 1
        errs0 = metric(srv, "ringcast_admission_join_errors_total")
        redis_server.pause()
        try:
            await async_wait_until(lambda: metric(srv, "ringcast_admission_up") == 0, 10.0,
                                   "admission link down", interval=0.1)
            w2 = await connect_user(srv, "w2")
            for i in range(3):
                r = await join(w2, "u", rid=i)
                assert (r["type"], r.get("id"), r.get("code")) == \
                    ("error", i, "queue_unavailable"), r
            st, body = api(srv, "GET", "/api/queues/u")
            assert st == 503 and body["code"] == "queue_unavailable", (st, body)
            st, body = api(srv, "PUT", "/api/queues/u", {"state": "open"})
            assert st == 503 and body["code"] == "queue_unavailable", (st, body)
            assert metric(srv, "ringcast_admission_join_errors_total") == errs0 + 3
            assert metric(srv, "ringcast_admission_leader") == 0
        finally:
            redis_server.resume()
        # back by itself: the same connections, no restart
        await async_wait_until(lambda: metric(srv, "ringcast_admission_up") == 1, 10.0,
                               "admission link up", interval=0.1)
        r = await join(w2, "u", rid=9)
        assert (r["type"], r.get("ticket"), r.get("position")) == ("queue.joined", 2, 2), r
        put_queue(srv, "u", state="open")
        for u, ws in (("w1", w1), ("w2", w2)):
            m = await next_of(ws, ("admitted",), timeout=5.0)
            check_token(m["token"], u, "u", m["expires"])
        assert metric(srv, "ringcast_admission_leader") == 1
        await w1.close()
        await w2.close()

    run(go())


def test_metrics_admission_and_queue(redis_server, start_server):
    srv = start_nodes(start_server, redis_server, "A", tick_ms=200)["A"]
    put_queue(srv, "m", state="paused", rate=1)
    names = ["ringcast_admission_" + n for n in (
        "up", "leader", "ticks_total", "round_trips_total", "late_ticks_total", "admitted_total",
        "abandoned_total", "joins_total", "join_errors_total", "local_waiters", "queues",
        "tick_seconds")] + ["ringcast_admission_tokens_total"]

    async def go():
        ws = await connect_user(srv, "mia")
        assert (await join(ws, "m"))["ticket"] == 1
        await next_of(ws, ("queue.tick",))
        # The relay's figures reach /metrics a moment after the tick that
        # sent the frame (slower under the sanitizers).
        m = await async_wait_until(
            lambda: (lambda m: m if m.get("ringcast_admission_leader") == 1 and
                     m.get("ringcast_admission_queues") == 1 else None)(get_metrics(srv.port)),
            5, "the leader's figures")
        for n in names:
            assert n in m, n
        assert (m["ringcast_admission_up"], m["ringcast_admission_leader"],
                m["ringcast_admission_queues"], m["ringcast_admission_local_waiters"],
                m["ringcast_admission_joins_total"], m["ringcast_admission_admitted_total"],
                m["ringcast_admission_tokens_total"]) == (1, 1, 1, 1, 1, 0, 0), m
        assert m["ringcast_admission_ticks_total"] >= 1  # the queue is ticked from the next tick on
        assert msum(m, "ringcast_waiters") == 1
        assert (m['ringcast_queue_waiting{queue="m"}'], m['ringcast_queue_active{queue="m"}'],
                m['ringcast_queue_head{queue="m"}']) == (1, 0, 0), m
        q = lambda n: m['ringcast_queue_%s{queue="m"}' % n]  # noqa: E731
        assert (q("last_ticket"), q("admitted_total"), q("abandoned_total"), q("rate"),
                q("open")) == (1, 0, 0, 1, 0), m
        put_queue(srv, "m", state="open")
        await next_of(ws, ("admitted",))
        await asyncio.sleep(0.5)
        m = get_metrics(srv.port)
        assert (m["ringcast_admission_admitted_total"], m["ringcast_admission_tokens_total"],
                m["ringcast_admission_local_waiters"], msum(m, "ringcast_waiters")) == \
            (1, 1, 0, 0), m
        assert (m['ringcast_queue_waiting{queue="m"}'], m['ringcast_queue_head{queue="m"}']) \
            == (0, 1), m
        q = lambda n: m['ringcast_queue_%s{queue="m"}' % n]  # noqa: E731
        assert (q("admitted_total"), q("active"), q("open")) == (1, 1, 1), m
        await ws.close()

    run(go())
