"""Fixtures for the ringcast integration tests: every test starts the real
binary (RINGCAST_BIN, default build/ringcast) with the flags it needs, and the
fixture stops it with SIGTERM at teardown and checks that it exited 0."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from rchelp import API_KEY, SECRET, Server, ServerError, binary_path  # noqa: E402


def pytest_configure(config):
    b = binary_path()
    if not os.access(b, os.X_OK):
        raise pytest.UsageError("ringcast binary not found at %s: run make, or set RINGCAST_BIN"
                                % b)


@pytest.fixture
def start_server(tmp_path):
    """start_server(*flags, shards=2, env=None, auth=True, preexec_fn=None) -> Server.
    auth=True adds the test JWT secret and API key (via the environment);
    preexec_fn runs in the child before exec (resource limits, say)."""
    servers = []

    def start(*args, shards=2, env=None, auth=True, preexec_fn=None):
        e = {}
        if auth:
            e = {"RINGCAST_JWT_SECRET": SECRET, "RINGCAST_API_KEY": API_KEY}
        e.update(env or {})
        s = Server(tmp_path, args, shards=shards, env=e, name="ringcast%d" % len(servers),
                   preexec_fn=preexec_fn)
        servers.append(s)
        return s

    yield start

    problems = []
    for s in servers:
        try:
            if s.alive():
                rc = s.stop()
            else:
                rc = s.proc.returncode
            if rc != 0 and not s.exit_checked:
                problems.append("ringcast pid %d exited with %s (signal if negative)\n"
                                "--- its output ---\n%s" % (s.pid, rc, s.stderr()[-6000:]))
            else:
                log = s.stderr()
                for bad in ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer",
                            "runtime error:", "assertion", "Assertion"):
                    if bad in log:
                        problems.append("ringcast pid %d logged %r\n%s" % (s.pid, bad, log[-6000:]))
                        break
        except ServerError as exc:
            problems.append(str(exc))
        finally:
            s.close_log()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(start_server):
    """A default server: 2 shards, JWT secret and API key set, public channel
    pattern "public:*", anonymous clients allowed to publish there."""
    return start_server("--public", "public:*", "--anonymous-publish")


@pytest.fixture
def redis_server(tmp_path, request):
    """A redis-server on a free port of 127.0.0.1 without persistence
    (redishelp.RedisServer). Request it before start_server so the nodes are
    stopped first; teardown resumes it if paused and stops it."""
    from redishelp import RedisServer
    if os.environ.get("RINGCAST_TEST_REDIS_CLUSTER") == "3":
        # three primaries, one replica each, shared by the session's tests
        # and emptied before each
        r = request.getfixturevalue("_shared_cluster")
        r.flush()
        yield r
        return
    r = RedisServer(tmp_path)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="session")
def _shared_cluster(tmp_path_factory):
    from clusterhelp import ClusterAsRedis
    c = ClusterAsRedis(tmp_path_factory.mktemp("shared-cluster"))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def redis_cluster(tmp_path):
    """A local Redis Cluster (clusterhelp.RedisCluster): three primaries with
    one replica each on loopback ports, settled (cluster_state:ok, the same
    slot map on every node) before the test runs; start-up is bounded (30 s,
    one retry on a port clash) and fails with the nodes' logs. Request it
    before start_server so the nodes are stopped first; teardown stops every
    redis-server it started."""
    from clusterhelp import RedisCluster
    c = RedisCluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()
