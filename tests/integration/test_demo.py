"""The `make run` demo (admission/demo.py) on a port other than 8080: its
banner names the node's real URL and port, and its `join` talks to that
node, gets admitted and completes the purchase, which keeps the line
moving past max_active."""
import os
import subprocess
import sys

from redishelp import readyz, wait_until

DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "admission", "demo.py")
DEMO_ENV = {"RINGCAST_JWT_SECRET": "demo-jwt-secret", "RINGCAST_API_KEY": "demo-api-key",
            "RINGCAST_ADMISSION_SECRET": "demo-admission-secret"}


def demo(*args, timeout=60):
    return subprocess.run([sys.executable, DEMO] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def test_demo_follows_the_port(redis_server, start_server):
    srv = start_server("--redis", redis_server.url, "--public", "demo:*",
                       "--admission-tick-ms", "250", env=DEMO_ENV, auth=False)
    wait_until(lambda: readyz(srv.port) == (200, "ready"), 10.0, "node ready")
    p = demo("--port", str(srv.port), "--redis-port", str(redis_server.port), "setup")
    assert p.returncode == 0, p
    assert "ws://127.0.0.1:%d/ws" % srv.port in p.stdout, p.stdout
    assert "redis-cli -p %d " % redis_server.port in p.stdout, p.stdout
    assert "demo.py --port %d join alice" % srv.port in p.stdout, p.stdout
    assert "8080" not in p.stdout, p.stdout
    # More users than max_active (5): each completes, so the line moves on.
    procs = [subprocess.Popen([sys.executable, DEMO, "--port", str(srv.port), "join", "u%d" % i],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    for i, pr in enumerate(procs):
        out, err = pr.communicate(timeout=60)
        assert pr.returncode == 0, (out, err)
        assert "u%d: admitted" % i in out and "u%d: purchase complete, place freed: True" % i \
            in out, out
    # the environment variable works as well as the flag
    p = subprocess.run([sys.executable, DEMO, "join", "envuser"], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, RINGCAST_DEMO_PORT=str(srv.port)))
    assert p.returncode == 0 and "envuser: admitted" in p.stdout, p
