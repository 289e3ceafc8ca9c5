"""The backend verification code in docs/ADMISSION.md works as printed.

The standard-library Python and Node blocks (each preceded by an
<!-- admission-doc-test: NAME --> comment) are run as they are, in a child
process, against admission tokens minted here with Python's own hmac, so the
check is independent of ringcast's C code and needs no running server."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import time

import pytest

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "ADMISSION.md")
SECRET = "doc-test-admission-secret-0123456789"
QUEUE = "sale-42"
USER = 'bob "the\\builder" \u00e9\u20ac\U0001F600'


def doc_block(name):
    """The code of the fenced block right after <!-- admission-doc-test: name -->."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"<!-- admission-doc-test: %s -->\s*\n```[a-z]*\n(.*?)\n```" % re.escape(name),
                  text, re.S)
    assert m, "no block marked %r in docs/ADMISSION.md" % name
    return m.group(1)


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint(claims, secret=SECRET, header=None):
    h = header or {"alg": "HS256", "typ": "JWT"}
    si = b64(json.dumps(h, separators=(",", ":")).encode()) + "." + \
        b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    return si + "." + b64(hmac.new(secret.encode(), si.encode(), hashlib.sha256).digest())


def claims(**kw):
    now = int(time.time())
    c = {"sub": USER, "queue": QUEUE, "iat": now, "exp": now + 600, "typ": "admission"}
    c.update(kw)
    return c


def cases():
    """(name, token, queue, accepted) for each check."""
    now = int(time.time())
    valid = mint(claims())
    head, payload, sig = valid.split(".")
    other = mint(claims(sub="mallory")).split(".")[1]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    return [
        ("valid", valid, QUEUE, True),
        ("tampered payload", head + "." + other + "." + sig, QUEUE, False),
        ("tampered signature", head + "." + payload + "." + flipped, QUEUE, False),
        ("wrong secret", mint(claims(), secret=SECRET + "x"), QUEUE, False),
        ("expired", mint(claims(iat=now - 700, exp=now - 100)), QUEUE, False),
        ("expires now", mint(claims(exp=now)), QUEUE, False),
        ("wrong queue", valid, "sale-43", False),
        ("client token", mint(claims(typ="client")), QUEUE, False),
        ("no typ", mint({k: v for k, v in claims().items() if k != "typ"}), QUEUE, False),
        ("alg none", b64(b'{"alg":"none","typ":"JWT"}') + "." + payload + ".", QUEUE, False),
        ("two parts", head + "." + payload, QUEUE, False),
        ("junk", "not a token", QUEUE, False),
    ]


PY_HARNESS = r'''

if __name__ == "__main__":
    import sys
    out = []
    for token, secret, queue in json.load(sys.stdin):
        try:
            out.append({"user": verify(token, secret, queue)})
        except InvalidAdmission as e:
            out.append({"error": str(e)})
    json.dump(out, sys.stdout)
'''

NODE_HARNESS = r'''

let input = "";
process.stdin.on("data", (d) => { input += d; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([token, secret, queue]) => {
    try {
      return { user: verify(token, secret, queue) };
    } catch (e) {
      return { error: e.message };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
'''


def run_block(argv, path, code, cs):
    with open(path, "w", encoding="utf-8") as f:
        f.write(code)
    inp = json.dumps([[tok, SECRET, queue] for _, tok, queue, _ in cs])
    p = subprocess.run(argv + [path], input=inp.encode(), capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return json.loads(p.stdout)


def check(results, cs):
    assert len(results) == len(cs)
    for (name, _, _, accepted), r in zip(cs, results):
        if accepted:
            assert r == {"user": USER}, name
        else:
            assert "error" in r and r["error"], (name, r)


def test_python_stdlib_block(tmp_path):
    cs = cases()
    code = doc_block("python-stdlib") + PY_HARNESS
    check(run_block(["/usr/bin/python3"], str(tmp_path / "verify.py"), code, cs), cs)


def test_python_stdlib_block_reasons(tmp_path):
    """The reasons it gives are the documented ones, so a backend can log them."""
    cs = cases()
    code = doc_block("python-stdlib") + PY_HARNESS
    r = run_block(["/usr/bin/python3"], str(tmp_path / "verify.py"), code, cs)
    got = {name: x.get("error") for (name, _, _, _), x in zip(cs, r)}
    assert got["tampered payload"] == "bad signature"
    assert got["wrong secret"] == "bad signature"
    assert got["expired"] == "expired"
    assert got["wrong queue"] == "wrong queue"
    assert got["client token"] == "not an admission token"
    assert got["alg none"] == "bad algorithm"
    assert got["two parts"] == "malformed"


def test_node_stdlib_block(tmp_path):
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed: the Node.js block of docs/ADMISSION.md is not run")
    cs = cases()
    code = doc_block("node-stdlib") + NODE_HARNESS
    r = run_block([node], str(tmp_path / "verify.js"), code, cs)
    check(r, cs)
    got = {name: x.get("error") for (name, _, _, _), x in zip(cs, r)}
    assert got["tampered signature"] == "bad signature"
    assert got["expires now"] == "expired"
    assert got["wrong queue"] == "wrong queue"
    assert got["no typ"] == "not an admission token"
    assert got["alg none"] == "bad algorithm"
