"""A real local Redis Cluster for the integration tests (issue 16): three
primaries with one replica each by default, every node a redis-server on a
loopback port (cluster_port(): port <= 55535, its bus port 10000 above free
too), joined with `redis-cli --cluster create`, plus the operations the
cluster tests need: a reshard with redis-cli, a single-slot migration done
by hand (and one stopped halfway, so that ASK redirections can be seen), and
a primary SIGKILLed with its replica promoted by the automatic failover.

Choices:
- no persistence (--save "", --appendonly no); each node has its own
  directory under tmp_path for its nodes.conf, its log and the RDB files a
  full resynchronisation writes (a shared directory would have the replicas
  rename their dump.rdb over each other).
- --cluster-node-timeout 2000 ms by default: a failover takes about
  node_timeout + 1-2 s. Shorter timeouts make failover quicker but risk
  spurious failovers on a busy machine (a node starved of CPU for longer than
  the timeout is declared failed).
- --cluster-require-full-coverage yes (Redis' default, kept on purpose): while
  a killed primary's slots have no owner, every node answers CLUSTERDOWN,
  as a production cluster does; tests see the outage and the recovery after
  the replica's promotion. RedisCluster(require_full_coverage=False) changes it.
- --cluster-replica-validity-factor 0: a replica always tries to fail over,
  however long its link was down (a busy machine must not leave the slots
  without owner).
- --repl-diskless-sync-delay 0: replicas are in sync right after the create,
  not after Redis' default 5 s wait for more replicas.
- --repl-ping-replica-period 1: Redis 7.0 leaves a replica out of CLUSTER
  SLOTS while its replication offset is 0, and on an idle primary the offset
  only moves with the primary's pings to its replicas (every 10 s by
  default): the cluster would look replica-less for 10 s after the create.
"""
import os
import shutil
import signal
import subprocess
import time

from rchelp import HOST
from redishelp import REDIS_SERVER, Resp, RespError, cluster_port

REDIS_CLI = os.environ.get("REDIS_CLI") or shutil.which("redis-cli") or "/usr/bin/redis-cli"
NSLOTS = 16384
WAIT = 30.0  # the bound of every wait, seconds


class ClusterError(Exception):
    """The cluster did not start or did not reach the expected state; the
    message carries the tail of every node's log."""


# ---- hash slots, computed locally (CRC16/XMODEM of the key or its {tag}) -------

def _crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key):
    """The hash slot of key (str or bytes) as Redis Cluster computes it."""
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return _crc16(key) % NSLOTS


# ---- one node -------------------------------------------------------------------

class ClusterNode:
    """One cluster-enabled redis-server; .id is its cluster node id once
    started."""

    def __init__(self, base_dir, port, node_timeout, full_coverage):
        self.port = port
        self.dir = os.path.join(base_dir, "node-%d" % port)
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "redis.log")
        self.node_timeout = node_timeout
        self.full_coverage = full_coverage
        self.proc = None
        self.id = None

    def __repr__(self):
        return "<node %s:%d %s>" % (HOST, self.port, (self.id or "?")[:8])

    @property
    def addr(self):
        return "%s:%d" % (HOST, self.port)

    @property
    def pid(self):
        return self.proc.pid

    def spawn(self):
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST,
               "--dir", self.dir, "--daemonize", "no", "--loglevel", "notice",
               "--save", "", "--appendonly", "no",
               "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
               "--cluster-announce-ip", HOST,
               "--cluster-node-timeout", str(self.node_timeout),
               "--cluster-require-full-coverage", "yes" if self.full_coverage else "no",
               "--cluster-replica-validity-factor", "0",
               "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1"]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        finally:
            log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def client(self, timeout=5.0):
        return Resp(self.port, timeout)

    def command(self, *args, timeout=5.0):
        with Resp(self.port, timeout) as c:
            return c.command(*args)

    def info(self, section):
        """INFO section as {field: value str}."""
        out = {}
        for ln in self.command("INFO", section).decode().splitlines():
            if ":" in ln and not ln.startswith("#"):
                k, _, v = ln.partition(":")
                out[k] = v
        return out

    def cluster_info(self):
        out = {}
        for ln in self.command("CLUSTER", "INFO").decode().splitlines():
            k, _, v = ln.partition(":")
            out[k] = v.strip()
        return out

    def cluster_nodes(self):
        """CLUSTER NODES parsed: [{id, port, flags (set), master (id or
        None), slots [(a, b)], open (migrating/importing entries)}]."""
        out = []
        for ln in self.command("CLUSTER", "NODES").decode().splitlines():
            f = ln.split()
            if len(f) < 8:
                continue
            addr = f[1].split("@")[0].split(",")[0]
            slots, opened = [], []
            for s in f[8:]:
                if s.startswith("["):
                    opened.append(s)
                elif "-" in s:
                    a, b = s.split("-")
                    slots.append((int(a), int(b)))
                else:
                    slots.append((int(s), int(s)))
            out.append({"id": f[0], "port": int(addr.rpartition(":")[2] or 0),
                        "flags": set(f[2].split(",")),
                        "master": None if f[3] == "-" else f[3],
                        "slots": slots, "open": opened})
        return out

    def slot_map(self):
        """CLUSTER SLOTS normalised: sorted [(start, end, primary port,
        sorted replica ports)]."""
        out = []
        for r in self.command("CLUSTER", "SLOTS"):
            out.append((r[0], r[1], r[2][1], tuple(sorted(n[1] for n in r[3:]))))
        return sorted(out)

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def pause(self):
        """SIGSTOP: the node stops answering (a hung node); resume() undoes it."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGCONT)


# ---- slot migration by hand ----------------------------------------------------------

class SlotMigration:
    """A slot being moved from .source to .target the way redis-cli does it:
    target IMPORTING, source MIGRATING, MIGRATE of the keys in batches, then
    SETSLOT NODE on the target, the source and every other node. Between
    start and finish() the source answers ASK for the keys already moved."""

    def __init__(self, cluster, slot, source, target):
        self.cluster = cluster
        self.slot = slot
        self.source = source
        self.target = target
        self.moved = []  # keys migrated so far
        self.done = False
        target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.id)
        source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id)

    def keys_left(self):
        return self.source.command("CLUSTER", "COUNTKEYSINSLOT", self.slot)

    def move_keys(self, count=None, batch=100):
        """MIGRATE count keys of the slot (all when None) to the target;
        returns the keys moved by this call."""
        moved = []
        while count is None or len(moved) < count:
            n = batch if count is None else min(batch, count - len(moved))
            keys = self.source.command("CLUSTER", "GETKEYSINSLOT", self.slot, n)
            if not keys:
                break
            r = self.source.command("MIGRATE", HOST, self.target.port, "", 0, 5000,
                                    "KEYS", *keys, timeout=10.0)
            if r not in ("OK", "NOKEY"):
                raise ClusterError("MIGRATE of slot %d answered %r" % (self.slot, r))
            moved += keys
        self.moved += moved
        return moved

    def finish(self):
        """Moves the remaining keys, assigns the slot to the target
        everywhere and waits until every node agrees."""
        if self.done:
            return
        self.move_keys()
        self.target.command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target.id)
        self.source.command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target.id)
        for n in self.cluster.alive_nodes():
            if n is not self.source and n is not self.target:
                try:
                    n.command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target.id)
                except RespError:
                    pass  # a replica refuses; it follows its primary's view
        self.done = True
        self.cluster.wait_settled(
            "slot %d owned by %s" % (self.slot, self.target),
            extra=lambda: self.cluster.node_for_slot(self.slot) is self.target)


# ---- the cluster --------------------------------------------------------------------------

class RedisCluster:
    """primaries x (1 + replicas) redis-server processes started as one Redis
    Cluster. Raises ClusterError (with the nodes' logs) when it does not come
    up within start_timeout seconds; everything it started is killed then."""

    def __init__(self, tmp_path, primaries=3, replicas=1, node_timeout=2000,
                 require_full_coverage=True, start_timeout=WAIT):
        self.base_dir = os.path.join(str(tmp_path), "redis-cluster")
        self.n_primaries = primaries
        self.n_replicas = replicas
        self.node_timeout = node_timeout
        self.full_coverage = require_full_coverage
        self.nodes = []
        self.dead = []  # nodes killed by kill_primary, in order
        self.create_output = ""
        self.last_failover_seconds = None  # SIGKILL to settled map, by kill_primary
        for attempt in range(2):
            try:
                self._start(start_timeout)
                return
            except _PortClash:
                self.stop()
                if attempt:
                    raise ClusterError("port clash twice while starting the cluster\n"
                                       + self.logs())
            except BaseException:
                self.stop()
                raise

    # ---- start-up
    def _pick_ports(self, count):
        ports = []
        for _ in range(100 * count):
            if len(ports) == count:
                break
            p = cluster_port()
            taken = set(ports) | {q + 10000 for q in ports}
            if p in taken or p + 10000 in taken:
                continue
            ports.append(p)
        if len(ports) != count:
            raise ClusterError("no %d distinct ports for cluster nodes" % count)
        return ports

    def _start(self, timeout):
        deadline = time.monotonic() + timeout
        count = self.n_primaries * (1 + self.n_replicas)
        self.nodes = [ClusterNode(self.base_dir, p, self.node_timeout, self.full_coverage)
                      for p in self._pick_ports(count)]
        for n in self.nodes:
            n.spawn()
        for n in self.nodes:
            self._wait_ping(n, deadline)
            n.id = n.command("CLUSTER", "MYID").decode()
        cmd = [REDIS_CLI, "--cluster", "create"] + [n.addr for n in self.nodes] + \
            ["--cluster-replicas", str(self.n_replicas), "--cluster-yes"]
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            raise ClusterError("redis-cli --cluster create did not finish in time\n%s\n%s"
                               % (_text(exc.stdout), self.logs()))
        self.create_output = _text(r.stdout)
        if r.returncode != 0 or "[OK] All 16384 slots covered" not in self.create_output:
            raise ClusterError("redis-cli --cluster create failed (exit %d)\n%s\n%s"
                               % (r.returncode, self.create_output, self.logs()))
        self.wait_settled("the new cluster: %d primaries with %d replica(s) each"
                          % (self.n_primaries, self.n_replicas),
                          timeout=max(1.0, deadline - time.monotonic()),
                          extra=self._shape_ok)

    def _wait_ping(self, node, deadline):
        while time.monotonic() < deadline:
            if not node.alive():
                log = node.log()
                if "in use" in log or "Address already" in log:
                    raise _PortClash()
                raise ClusterError("redis-server on port %d exited with %s at start-up\n%s"
                                   % (node.port, node.proc.returncode, log[-3000:]))
            try:
                if node.command("PING", timeout=1.0) == "PONG":
                    return
            except (OSError, RespError, ConnectionError):
                pass
            time.sleep(0.02)
        raise ClusterError("redis-server on port %d did not answer PING\n%s"
                           % (node.port, self.logs()))

    def _shape_ok(self):
        m = self.alive_nodes()[0].slot_map()
        owners = {}
        for a, b, p, reps in m:
            owners.setdefault(p, set()).update(reps)
        if len(owners) != self.n_primaries:
            return False
        if any(len(r) != self.n_replicas for r in owners.values()):
            return False
        for n in self.nodes:  # replicas in sync, so that WAIT and failover work
            if n.port not in owners and n.info("replication").get("master_link_status") != "up":
                return False
        return True

    # ---- state
    def alive_nodes(self):
        return [n for n in self.nodes if n.alive()]

    def node(self, which):
        """A ClusterNode from a port, a node id, "host:port" or a node."""
        if isinstance(which, ClusterNode):
            return which
        for n in self.nodes:
            if which in (n.port, n.id, n.addr, str(n.port)):
                return n
        raise KeyError("no cluster node %r" % (which,))

    def _agreement(self):
        """(True, map) when every live node is reachable, reports
        cluster_state:ok, has no open (migrating/importing) slot and returns
        the same CLUSTER SLOTS covering all slots; else (False, why)."""
        maps = {}
        for n in self.alive_nodes():
            try:
                if n.cluster_info().get("cluster_state") != "ok":
                    return False, "%s: cluster_state not ok" % n
                me = [x for x in n.cluster_nodes() if "myself" in x["flags"]]
                if me and me[0]["open"]:
                    return False, "%s: open slots %s" % (n, me[0]["open"])
                maps[n.port] = n.slot_map()
            except (OSError, RespError, ConnectionError) as exc:
                return False, "%s: %s" % (n, exc)
        distinct = {tuple(m) for m in maps.values()}
        if len(distinct) != 1:
            return False, "slot maps differ: %r" % maps
        m = next(iter(maps.values()))
        if sum(b - a + 1 for a, b, _, _ in m) != NSLOTS:
            return False, "not all slots covered: %r" % m
        return True, m

    def wait_settled(self, what="the cluster to settle", timeout=WAIT, extra=None):
        """Waits until every live node reports cluster_state:ok, no open slot
        and the same full slot map (and extra() is true); returns the map."""
        deadline = time.monotonic() + timeout
        why = None
        while True:
            ok, got = self._agreement()
            if ok:
                try:
                    if extra is None or extra():
                        return got
                    why = "condition not met yet (map %r)" % (got,)
                except (OSError, RespError, ConnectionError) as exc:
                    why = str(exc)
            else:
                why = got
            if time.monotonic() >= deadline:
                raise ClusterError("timed out after %.0fs waiting for %s: %s\n%s"
                                   % (timeout, what, why, self.logs()))
            time.sleep(0.1)

    def slot_map(self):
        return self.alive_nodes()[0].slot_map()

    def primaries(self):
        """{ClusterNode: [(start, end), ...]} of the primaries that own slots
        (as the first live node sees it), in port order."""
        out = {}
        for a, b, p, _ in self.slot_map():
            out.setdefault(self.node(p), []).append((a, b))
        return dict(sorted(out.items(), key=lambda kv: kv[0].port))

    def replicas_of(self, primary):
        """The live replicas of primary, by CLUSTER NODES of a live node."""
        primary = self.node(primary)
        view = self.alive_nodes()[0].cluster_nodes()
        return [self.node(x["id"]) for x in view
                if x["master"] == primary.id and "fail" not in x["flags"]
                and self.node(x["id"]).alive()]

    def node_for_slot(self, slot):
        for a, b, p, _ in self.slot_map():
            if a <= slot <= b:
                return self.node(p)
        raise ClusterError("slot %d has no owner" % slot)

    def slot_of(self, key):
        """CLUSTER KEYSLOT of key, asked of a live node."""
        return self.alive_nodes()[0].command("CLUSTER", "KEYSLOT", key)

    def node_for_key(self, key):
        return self.node_for_slot(key_slot(key))

    def key_on(self, node, prefix="k", start=0):
        """The first prefix+N (N >= start) whose slot node owns."""
        node = self.node(node)
        owned = self.primaries()[node]
        for i in range(start, start + 1000000):
            k = "%s%d" % (prefix, i)
            s = key_slot(k)
            if any(a <= s <= b for a, b in owned):
                return k
        raise ClusterError("no key with prefix %r on %s" % (prefix, node))

    def client(self, port):
        """A Resp connection to the node on port (or a node / node id)."""
        return self.node(port).client()

    # ---- seeds
    @property
    def seeds(self):
        """["127.0.0.1:PORT", ...] of every node started, primaries first."""
        return [n.addr for n in self.nodes]

    @property
    def seed_list(self):
        """["redis://127.0.0.1:PORT", ...] of every node started."""
        return ["redis://" + s for s in self.seeds]

    @property
    def url(self):
        """redis://127.0.0.1:PORT of one node (the first started)."""
        return self.seed_list[0]

    @property
    def urls(self):
        """The seed URLs joined with commas: "redis://h:p,redis://h:p,..."."""
        return ",".join(self.seed_list)

    def seeds_url(self):
        """One URL with every seed: "redis://h:p,h:p,..."."""
        return "redis://" + ",".join(self.seeds)

    # ---- operations
    def reshard(self, slots_count, from_node, to_node, timeout=WAIT):
        """redis-cli --cluster reshard of slots_count slots from from_node to
        to_node (ports, ids or nodes), keys included; returns once every node
        agrees on the new map."""
        src, dst = self.node(from_node), self.node(to_node)
        self.wait_settled("the cluster to settle before a reshard")
        before = sum(b - a + 1 for a, b in self.primaries().get(dst, []))
        cmd = [REDIS_CLI, "--cluster", "reshard", dst.addr, "--cluster-from", src.id,
               "--cluster-to", dst.id, "--cluster-slots", str(slots_count), "--cluster-yes"]
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ClusterError("redis-cli --cluster reshard did not finish in %.0fs\n%s\n%s"
                               % (timeout, _text(exc.stdout)[-3000:], self.logs()))
        out = _text(r.stdout)
        if r.returncode != 0 or "[ERR]" in out:
            raise ClusterError("redis-cli --cluster reshard failed (exit %d)\n%s\n%s"
                               % (r.returncode, out[-3000:], self.logs()))
        self.wait_settled(
            "%d slots moved from %s to %s" % (slots_count, src, dst), timeout=timeout,
            extra=lambda: sum(b - a + 1 for a, b in self.primaries().get(dst, []))
            == before + slots_count)
        return out

    def start_move_slot(self, slot, to, keys=0):
        """Opens the migration of slot to node to, and MIGRATEs keys of its
        keys (all when None); returns the SlotMigration (finish() it)."""
        src, dst = self.node_for_slot(slot), self.node(to)
        if src is dst:
            raise ClusterError("slot %d is already on %s" % (slot, dst))
        m = SlotMigration(self, slot, src, dst)
        if keys is None or keys > 0:
            m.move_keys(keys)
        return m

    def move_slot(self, slot, to):
        """Moves slot (with its keys) to node to; returns once every node
        agrees. Returns the SlotMigration (its .moved lists the keys)."""
        m = self.start_move_slot(slot, to, keys=None)
        m.finish()
        return m

    def kill_primary(self, port=None, for_slot=None, timeout=WAIT):
        """SIGKILLs a primary (given by port/id/node, or as the owner of
        for_slot) and waits for the automatic failover: one of its replicas
        owns its slots and every surviving node reports cluster_state:ok and
        the same map. Returns the promoted replica."""
        victim = self.node(port) if port is not None else self.node_for_slot(for_slot)
        slots = self.primaries().get(victim)
        if not slots:
            raise ClusterError("%s is not a primary owning slots" % victim)
        candidates = self.replicas_of(victim)
        if not candidates:
            raise ClusterError("%s has no live replica to promote" % victim)
        t0 = time.monotonic()
        victim.kill()
        self.dead.append(victim)
        promoted = []

        def took_over():
            p = self.primaries()
            for c in candidates:
                if p.get(c) == slots and c.info("replication").get("role") == "master":
                    promoted.append(c)
                    return True
            return False

        self.wait_settled("a replica of %s to take its slots %s" % (victim, slots),
                          timeout=timeout, extra=took_over)
        self.last_failover_seconds = time.monotonic() - t0
        return promoted[-1]

    def restart_node(self, node, timeout=WAIT):
        """Starts a killed node again on its port with its nodes.conf (no
        data): a former primary whose slots were taken over rejoins as a
        replica of its successor. Waits until it is in sync and every node
        agrees again."""
        node = self.node(node)
        if node.alive():
            raise ClusterError("%s is running" % node)
        deadline = time.monotonic() + timeout
        node.spawn()
        self._wait_ping(node, deadline)
        if node in self.dead:
            self.dead.remove(node)

        def rejoined():
            if node.info("replication").get("role") == "slave" and \
                    node.info("replication").get("master_link_status") != "up":
                return False
            return all(node.port in {m[2] for m in n.slot_map()} | {r for m in n.slot_map()
                                                                       for r in m[3]}
                       for n in self.alive_nodes())

        self.wait_settled("%s to rejoin" % node, timeout=max(1.0, deadline - time.monotonic()),
                          extra=rejoined)
        return node

    # ---- teardown
    def logs(self, tail=2500):
        parts = []
        for n in self.nodes:
            parts.append("--- redis-server %s (pid %s) log ---\n%s"
                         % (n.addr, n.proc.pid if n.proc else "-", n.log()[-tail:]))
        return "\n".join(parts)

    def stop(self):
        """SIGKILLs (stopped or not) and reaps every redis-server this cluster
        started, by PID; nothing is persisted, so nothing is lost. Idempotent."""
        for n in self.nodes:
            if n.alive():
                try:
                    os.kill(n.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
        for n in self.nodes:
            n.kill()  # reaps

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class _PortClash(Exception):
    pass


def _text(b):
    if b is None:
        return ""
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


class ClusterAsRedis:
    """A RedisCluster where the tests want one Redis (RINGCAST_TEST_REDIS_CLUSTER=3,
    the redis_server fixture): url names every node as seeds, client() is a
    connection that follows the cluster's slots as a backend does
    (redishelp.Resp with cluster=True), and what only one Redis can do
    (kill, pause, restart it) skips the test."""

    cluster = True
    one_server = False  # what needs one server (its ACL users) skips

    def __init__(self, tmp_path):
        self.c = RedisCluster(tmp_path)

    def flush(self):
        """Empties every primary (the replicas follow): a test starts on an
        empty cluster, as on a fresh Redis."""
        for p in self.c.primaries():
            p.command("FLUSHALL")
            p.command("SCRIPT", "FLUSH")

    @property
    def url(self):
        return self.c.seeds_url()

    @property
    def port(self):
        return self.c.nodes[0].port

    def client(self, timeout=5.0):
        return Resp(self.port, timeout, cluster=True)

    def alive(self):
        return True

    def close(self):
        self.c.stop()

    def __getattr__(self, name):
        if name in ("kill", "stop", "restart", "pause", "resume", "start", "pid", "log"):
            import pytest
            pytest.skip("a test of one Redis's outages (not run on a cluster)")
        raise AttributeError(name)
