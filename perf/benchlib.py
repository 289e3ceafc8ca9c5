"""Shared helpers for perf/bench.py and perf/soak.py: server processes that are
always stopped by PID, a private redis-server, the load generator runner, and
readings of /proc (RSS, socket memory) and of the machine.

Everything runs on 127.0.0.1. Every child process gets a timeout."""
import base64
import glob
import hashlib
import hmac
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time

HOST = "127.0.0.1"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PAGE = os.sysconf("SC_PAGE_SIZE")


class BenchError(Exception):
    pass


def now_utc_stamp():
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port, timeout=0.3):
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---- processes ---------------------------------------------------------------

class Proc:
    """A long-running child (a server under test, redis). Output goes to a log file;
    stop() ends it by its PID: SIGTERM, then SIGKILL after a grace period."""

    def __init__(self, name, cmd, logdir, ready_text=None, port=None, timeout=20.0, env=None):
        self.name = name
        self.cmd = list(cmd)
        self.port = port
        self.log_path = os.path.join(logdir, "%s-%d.log" % (name, port or 0))
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self.pid = self.proc.pid
        try:
            self._wait_ready(ready_text, timeout)
        except BaseException:
            self.stop()
            raise

    def log_tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def _wait_ready(self, ready_text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("%s exited with %s at start-up: %s\n%s" % (
                    self.name, self.proc.returncode, " ".join(map(shlex.quote, self.cmd)),
                    self.log_tail()))
            text_ok = True
            if ready_text:
                with open(self.log_path, "rb") as f:
                    text_ok = ready_text.encode() in f.read()
            if text_ok and (self.port is None or port_open(self.port)):
                return
            time.sleep(0.05)
        raise BenchError("%s not ready within %.0f s\n%s" % (self.name, timeout, self.log_tail()))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, grace=5.0):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        self._log.close()
        return self.proc.returncode


def start_redis(logdir, cpu=None):
    port = free_port()
    cmd = ([] if cpu is None else ["taskset", "-c", str(cpu)]) + [
        "redis-server", "--port", str(port), "--bind", HOST, "--save", "",
        "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
        "--loglevel", "warning"]
    return Proc("redis", cmd, logdir, ready_text=None, port=port)


def run(cmd, timeout, **kw):
    """Runs a short command; returns (rc, stdout, stderr); rc None on timeout."""
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, **kw)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode(
            "utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode("utf-8", "replace"), (e.stderr or b"").decode(
            "utf-8", "replace")
    except OSError as e:
        return 127, "", str(e)


def last_json_line(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


class Ringload:
    """Runs build/ringload and returns its one JSON result line as a dict. A failed
    run returns {"error": "..."} instead of raising, so a bench keeps going."""

    def __init__(self, binary, cpu=1):
        self.binary = binary
        self.cpu = cpu

    def command(self, url, dialect, scenario, **opts):
        cmd = [self.binary, "--url", url, "--dialect", dialect, "--scenario", scenario,
               "--quiet"]
        if self.cpu is not None:
            cmd += ["--cpu", str(self.cpu)]
        for k, v in opts.items():
            if v is None or v is False:
                continue
            flag = "--" + k.replace("_", "-")
            cmd += [flag] if v is True else [flag, str(v)]
        return cmd

    def run(self, url, dialect, scenario, timeout=None, **opts):
        cmd = self.command(url, dialect, scenario, **opts)
        if timeout is None:
            timeout = 60.0
        t0 = time.monotonic()
        rc, out, err = run(cmd, timeout)
        res = last_json_line(out)
        wall = time.monotonic() - t0
        if res is None:
            why = "timed out after %.0f s" % timeout if rc is None else "exit %s" % rc
            tail = " | ".join(err.strip().splitlines()[-3:])
            return {"error": "ringload %s, no JSON result: %s" % (why, tail),
                    "cmd": cmd, "wall_s": round(wall, 2)}
        res["_cmd"] = " ".join(map(shlex.quote, cmd))
        res["_rc"] = rc
        res["_wall_s"] = round(wall, 2)
        if rc not in (0, None) and "error" not in res:
            res["_stderr_tail"] = " | ".join(err.strip().splitlines()[-3:])
        return res

    def spawn(self, url, dialect, scenario, logpath, **opts):
        """Starts ringload in the background (stdout to logpath) for runs whose server
        side is measured while the connections are held."""
        cmd = self.command(url, dialect, scenario, **opts)
        f = open(logpath, "wb")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, start_new_session=True)
        p._rl_log = f
        p._rl_path = logpath
        p._rl_cmd = cmd
        return p


def finish_spawned(p, timeout):
    """Waits for a spawned ringload (killing it by PID after timeout); returns its result."""
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.kill(p.pid, signal.SIGTERM)
            p.wait(timeout=5)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)
    p._rl_log.close()
    with open(p._rl_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    res = last_json_line(text)
    if res is None:
        return {"error": "ringload exit %s, no JSON result: %s" % (
            p.returncode, " | ".join(text.strip().splitlines()[-3:])),
            "cmd": p._rl_cmd}
    res["_cmd"] = " ".join(map(shlex.quote, p._rl_cmd))
    res["_rc"] = p.returncode
    return res


def kill_pid(p):
    if p is not None and p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


# ---- result accessors (tolerant of absent keys) -------------------------------

def g(res, *path, default=None):
    cur = res
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return default
        cur = cur[k]
    return cur


def rl_cpu_util(res):
    """The load generator's CPU use as a fraction of the cores it ran on."""
    u = g(res, "cpu", "utilisation", default=g(res, "cpu", "util"))
    return float(u) if isinstance(u, (int, float)) else None


# ---- /proc readings --------------------------------------------------------------

def rss_bytes(pid):
    """(VmRSS, smaps_rollup Rss) in bytes; None where unreadable."""
    vm = sm = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    vm = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    sm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return vm, sm


def cpu_seconds(pid):
    """user + system CPU seconds of a process (all its threads), None when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def wait_quiet(pid, limit=0.10, window=0.3, timeout=15.0):
    """Waits until the process uses under limit of a core over window seconds (an
    overloaded step leaves a server busy flushing to closed sockets); returns the
    seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        a = cpu_seconds(pid)
        time.sleep(window)
        b = cpu_seconds(pid)
        if a is None or b is None or (b - a) / window < limit:
            break
    return time.monotonic() - t0


def sockstat():
    """/proc/net/sockstat's TCP line: inuse, orphan, tw, alloc, mem (pages) and mem_bytes."""
    out = {}
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()[1:]
                    for k, v in zip(parts[0::2], parts[1::2]):
                        out[k] = int(v)
    except OSError:
        return out
    if "mem" in out:
        out["mem_bytes"] = out["mem"] * PAGE
    return out


def slab_tcp():
    """Active objects x object size of the TCP socket slabs, when readable (root)."""
    total = 0
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                name = line.split(" ", 1)[0]
                if name in ("TCP", "TCPv6", "tcp_bind_bucket", "request_sock_TCP"):
                    p = line.split()
                    total += int(p[1]) * int(p[3])
    except (OSError, ValueError, IndexError):
        return None
    return total


def established(port):
    """Established TCP connections whose local port is port (server side)."""
    rc, out, _ = run(["ss", "-Htn", "state", "established", "( sport = :%d )" % port], 20)
    if rc != 0:
        return -1
    return sum(1 for line in out.splitlines() if line.strip())


def wait_established(port, n, timeout, settle=0.5):
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        last = established(port)
        if last >= n:
            time.sleep(settle)
            return established(port)
        time.sleep(0.25)
    return last


def http_get(port, path, timeout=5.0):
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (path, HOST)).encode())
        buf = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    return body.decode("utf-8", "replace")


def metrics(port):
    """ringcast's /metrics as {name{labels}: value}, summed per bare name under name."""
    out = {}
    try:
        text = http_get(port, "/metrics")
    except OSError:
        return out
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)", line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        out[m.group(1) + (m.group(2) or "")] = v
        out[m.group(1)] = out.get(m.group(1), 0.0) + v if m.group(2) else v
    return out


# ---- JWT ---------------------------------------------------------------------------

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_hs256(claims, secret):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


# ---- machine -------------------------------------------------------------------------

def _first_line(cmd):
    rc, out, err = run(cmd, 10)
    text = (out or err).strip()
    return text.splitlines()[0] if text else None


def node_pkg_version(name):
    p = os.path.join(REPO, "perf", "peers", "node_modules", name, "package.json")
    try:
        with open(p) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def machine_info(build_dir):
    info = {"kernel": platform.release(), "nproc": os.cpu_count(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["mem_total_bytes"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
        info["rlimit_nofile"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
    except Exception:  # noqa: BLE001 - best effort
        pass
    info["ringcast"] = _first_line([os.path.join(build_dir, "ringcast"), "--version"])
    info["node"] = _first_line(["node", "--version"])
    info["redis"] = _first_line(["redis-server", "--version"])
    info["gcc"] = _first_line(["gcc", "--version"])
    for pkg in ("socket.io", "ws", "@socket.io/redis-adapter", "redis", "engine.io"):
        info["npm:" + pkg] = node_pkg_version(pkg)
    for deb in ("liburing2", "libwslay1", "libjemalloc2"):
        rc, out, _ = run(["dpkg-query", "-W", "-f=${Version}", deb], 10)
        info["deb:" + deb] = out.strip() if rc == 0 else None
    try:
        rc, out, _ = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], 10)
        info["git_head"] = out.strip() if rc == 0 else None
        rc, out, _ = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], 10)
        info["git_dirty"] = bool(out.strip()) if rc == 0 else None
    except Exception:  # noqa: BLE001 - best effort
        pass
    return info


def save_results(doc, name, stamp):
    """Writes a benchmark's raw results to perf/results/NAME-STAMP.json and
    returns the path."""
    os.makedirs(os.path.join(REPO, "perf", "results"), exist_ok=True)
    out = os.path.join(REPO, "perf", "results", "%s-%s.json" % (name, stamp))
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    log("raw results: %s" % out)
    return out


def make_logdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def files_matching(pattern):
    return sorted(glob.glob(pattern))


def write_block(lines, start, end, what):
    """Puts lines (starting with start, ending with end) in BENCHMARKS.md in
    place of the block between start and end, or at its end when absent."""
    block = "\n".join(lines) + "\n"
    path = os.path.join(REPO, "BENCHMARKS.md")
    with open(path) as f:
        text = f.read()
    i, j = text.find(start), text.find(end)
    if i >= 0 and j > i:
        rest = text[j + len(end):].lstrip("\n")
        text = text[:i] + block + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(text)
    log("updated the %s block of %s" % (what, path))
