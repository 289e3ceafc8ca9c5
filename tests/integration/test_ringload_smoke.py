"""Smoke runs of the load generator (build/ringload) against a real ringcast.

They check correctness only (every message arrives, in order, nothing lost,
no unexpected close), never speed: speed is measured by `make bench`."""
import json
import os
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RINGLOAD = os.environ.get("RINGLOAD_BIN") or os.path.join(
    os.path.dirname(os.environ.get("RINGCAST_BIN") or os.path.join(REPO, "build", "ringcast")),
    "ringload")

FLAGS = ("--public", "bench:*,echo:*", "--anonymous-publish",
         "--msg-rate", "100000", "--msg-burst", "65535")


def ringload(srv, *args, timeout=60):
    if not os.access(RINGLOAD, os.X_OK):
        pytest.fail("ringload not built at %s: run make" % RINGLOAD)
    p = subprocess.run([RINGLOAD, "--url", "ws://127.0.0.1:%d/ws" % srv.port, "--quiet",
                        "--max-time", str(timeout - 5), *args],
                       capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert p.returncode == 0 and len(lines) == 1, (p.returncode, p.stdout[-2000:],
                                                   p.stderr[-2000:])
    return json.loads(lines[0])


def test_broadcast_no_loss_in_order(start_server):
    srv = start_server(*FLAGS, shards=2)
    r = ringload(srv, "--scenario", "broadcast", "--conns", "300", "--rate", "50",
                 "--duration", "2", "--payload", "200")
    assert r["complete"] is True
    assert r["held"] == 300 and r["failed"] == 0
    assert r["subscribed"] == 300
    assert r["expected"] > 0
    assert r["received"] == r["expected"], r
    assert r["lost"] == 0 and r["out_of_order"] == 0, r
    assert r["unexpected_closes"] == 0 and r["server_errors"] == 0, r
    # and the server counted the same deliveries
    m = srv.metrics()
    assert m["ringcast_deliveries_total"] >= r["received"]


def test_broadcast_over_channels(start_server):
    """--channels: 70 subscribers round-robin over 8 channels (70 = 8 x 8 + 6:
    six channels hold 9, two hold 8); every publish reaches its channel's
    subscribers only, each subscriber's sequence without a gap."""
    srv = start_server(*FLAGS, shards=2)
    r = ringload(srv, "--scenario", "broadcast", "--conns", "70", "--channels", "8",
                 "--channel", "bench:multi", "--rate", "80", "--duration", "2")
    assert r["complete"] is True and r["channels"] == 8
    assert r["held"] == 70 and r["subscribed"] == 70
    assert r["expected"] > 0
    assert r["expected"] < r["publishes"] * 70 / 8 + 10, r
    assert r["received"] == r["expected"], r
    assert r["lost"] == 0 and r["gaps"] == 0 and r["out_of_order"] == 0, r
    m = srv.metrics()
    assert m["ringcast_deliveries_total"] >= r["received"]


def test_echo_round_trips(start_server):
    srv = start_server(*FLAGS, shards=2)
    r = ringload(srv, "--scenario", "echo", "--conns", "20", "--duration", "2", "--acks")
    assert r["complete"] is True
    assert r["held"] == 20 and r["failed"] == 0
    assert r["round_trips"] > 0, r
    # every connection kept its one message going round: none stalled
    assert r["messages_received"] >= r["round_trips"], r
    assert r["unexpected_closes"] == 0 and r["server_errors"] == 0, r
    m = srv.metrics()
    assert m["ringcast_publishes_total"] >= r["round_trips"]


def test_broadcast_deflate_seats(start_server):
    """--deflate negotiates permessage-deflate and inflates what arrives
    compressed; --seats sends realistic JSON; the same messages arrive, in
    fewer bytes on the wire than without compression."""
    wire = {}
    for deflate in (False, True):
        srv = start_server(*FLAGS, shards=2)
        args = ["--scenario", "broadcast", "--conns", "50", "--rate", "50", "--duration", "2",
                "--payload", "2000", "--seats"] + (["--deflate"] if deflate else [])
        r = ringload(srv, *args)
        assert r["complete"] is True and r["received"] == r["expected"] > 0, r
        assert r["lost"] == 0 and r["out_of_order"] == 0, r
        w = r["wire"]
        assert w["deflate"] is deflate and w["inflate_errors"] == 0, w
        if deflate:
            # every subscriber and the publisher negotiated it
            assert w["deflate_conns"] == 51 and w["inflated"] >= r["received"], w
            m = srv.metrics()
            assert m["ringcast_deflate_publications_total"] > 0
        else:
            assert w["deflate_conns"] == 0 and w["inflated"] == 0, w
        wire[deflate] = w["bytes"] / r["received"]
    assert wire[True] < wire[False] / 3, wire
