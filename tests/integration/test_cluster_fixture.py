"""Issue 16: the local Redis Cluster fixture (clusterhelp.RedisCluster) does
what the cluster tests rely on: three primaries with one replica each and
every slot covered, MOVED from a node that does not own a key, a slot
migration (finished, and stopped halfway with ASK), a reshard with
redis-cli, a SIGKILLed primary replaced by its replica with the replicated
data, and the killed node restarted as a replica. Expected replies follow the Redis Cluster specification."""
import os

import pytest

from clusterhelp import NSLOTS, key_slot
from redishelp import RespError


def moved_or_ask(node, *cmd):
    """The redirection error text a node answers cmd with."""
    with pytest.raises(RespError) as exc:
        node.command(*cmd)
    return str(exc.value)


def test_three_primaries_one_replica_each_all_slots(redis_cluster):
    c = redis_cluster
    prim = c.primaries()
    assert len(prim) == 3
    assert sum(b - a + 1 for ranges in prim.values() for a, b in ranges) == NSLOTS
    for p in prim:
        reps = c.replicas_of(p)
        assert len(reps) == 1, (p, reps)
        assert reps[0].info("replication")["master_port"] == str(p.port)
    assert len(c.seeds) == 6 and len(set(c.seeds)) == 6
    assert c.urls.split(",") == c.seed_list
    assert c.url == c.seed_list[0] and c.url.startswith("redis://127.0.0.1:")
    # the local slot function agrees with the server
    for k in ("a", "ringcast:ch:x", "{user1000}.following", "foo{}{bar}", "{}x", "x{y"):
        assert key_slot(k) == c.slot_of(k), k


def test_moved_from_a_node_that_does_not_own_the_key(redis_cluster):
    c = redis_cluster
    key = "fixture-key"
    slot = c.slot_of(key)
    owner = c.node_for_slot(slot)
    assert owner.command("SET", key, "v1") == "OK"
    assert owner.command("GET", key) == b"v1"
    other = next(p for p in c.primaries() if p is not owner)
    assert moved_or_ask(other, "SET", key, "v2") == "MOVED %d %s" % (slot, owner.addr)
    assert owner.command("GET", key) == b"v1"


def test_slot_migration_halfway_ask_then_finished_moved(redis_cluster):
    c = redis_cluster
    keys = ["{mig}k%d" % i for i in range(20)]
    slot = c.slot_of(keys[0])
    src = c.node_for_slot(slot)
    dst = next(p for p in c.primaries() if p is not src)
    for k in keys:
        src.command("SET", k, k)

    m = c.start_move_slot(slot, dst, keys=5)
    assert len(m.moved) == 5 and m.keys_left() == 15
    gone = m.moved[0].decode()
    here = next(k for k in keys if k.encode() not in m.moved)
    assert moved_or_ask(src, "GET", gone) == "ASK %d %s" % (slot, dst.addr)
    assert src.command("GET", here) == here.encode()
    with dst.client() as t:  # the target serves it only after ASKING
        with pytest.raises(RespError, match="^MOVED"):
            t.command("GET", gone)
        assert t.command("ASKING") == "OK"
        assert t.command("GET", gone) == gone.encode()

    m.finish()
    assert c.node_for_slot(slot) is dst
    assert m.keys_left() == 0 and len(m.moved) == 20
    for k in keys:
        assert dst.command("GET", k) == k.encode()
    assert moved_or_ask(src, "GET", keys[0]) == "MOVED %d %s" % (slot, dst.addr)

    # and a whole-slot move in one call, back to where it was
    c.move_slot(slot, src)
    assert c.node_for_slot(slot) is src
    assert src.command("GET", keys[3]) == keys[3].encode()


def test_reshard_with_redis_cli(redis_cluster):
    c = redis_cluster
    a, b = list(c.primaries())[:2]
    key = c.key_on(a, "resh")
    a.command("SET", key, "kept")
    before_a = sum(y - x + 1 for x, y in c.primaries()[a])
    c.reshard(200, a, b)
    after = c.primaries()
    assert sum(y - x + 1 for x, y in after[a]) == before_a - 200
    owner = c.node_for_key(key)
    assert owner.command("GET", key) == b"kept"


def test_kill_primary_replica_promoted_with_the_data(redis_cluster):
    c = redis_cluster
    key = "survivor"
    slot = c.slot_of(key)
    victim = c.node_for_slot(slot)
    replica = c.replicas_of(victim)[0]
    slots = c.primaries()[victim]
    with victim.client() as v:
        assert v.command("SET", key, "replicated") == "OK"
        assert v.command("WAIT", 1, 5000) == 1
    pid = victim.pid

    promoted = c.kill_primary(for_slot=slot)
    assert promoted is replica
    assert not victim.alive()
    assert replica.info("replication")["role"] == "master"
    assert c.primaries()[replica] == slots
    assert victim not in c.primaries()
    assert replica.command("GET", key) == b"replicated"
    assert c.last_failover_seconds < 30
    for n in c.alive_nodes():
        assert n.cluster_info()["cluster_state"] == "ok"

    # the killed node comes back as a replica of its successor
    c.restart_node(victim)
    assert victim.info("replication")["role"] == "slave"
    assert victim.info("replication")["master_port"] == str(replica.port)
    assert victim.command("READONLY") == "OK"

    pids = [n.pid for n in c.nodes]
    c.stop()
    for p in pids + [pid]:
        assert not os.path.exists("/proc/%d" % p) or \
            open("/proc/%d/stat" % p).read().split()[2] == "Z", p
