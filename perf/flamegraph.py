#!/usr/bin/python3
"""Reads `perf script` output (samples recorded with -g), folds each sample's call
stack into one line "root;caller;...;leaf COUNT", and renders an interactive,
self-contained SVG flame graph: one rectangle per frame, width proportional to its
samples, hover for the function and its share, click to zoom into a frame, click
the bottom bar (or press Escape) to zoom out.

  perf script -i perf.data | perf/flamegraph.py --title "ringcast: broadcast" > flame.svg
  perf/flamegraph.py --folded-out stacks.txt < script.txt > flame.svg
  perf/flamegraph.py --folded-in stacks.txt > flame.svg
"""
import argparse
import html
import re
import sys
import zlib

FRAME_RE = re.compile(r"^\s*([0-9a-fA-F]+)\s+(.+?)(?:\s+\((.*)\))?\s*$")
OFFSET_RE = re.compile(r"\+0x[0-9a-fA-F]+$")


def parse_perf_script(lines, with_comm=True):
    """Yields (stack tuple root-first, weight) per sample."""
    header = None
    frames = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            if header is not None:
                yield _finish(header, frames, with_comm)
            header, frames = None, []
            continue
        if line[0] not in " \t":
            if header is not None:
                yield _finish(header, frames, with_comm)
            header, frames = line, []
            continue
        m = FRAME_RE.match(line)
        if not m:
            continue
        sym = m.group(2)
        dso = m.group(3) or ""
        if sym == "[unknown]" and dso and dso != "[unknown]":
            sym = "[%s]" % dso.rsplit("/", 1)[-1]
        sym = OFFSET_RE.sub("", sym)
        if dso.startswith("[kernel"):
            sym += "_[k]"
        frames.append(sym)
    if header is not None:
        yield _finish(header, frames, with_comm)


def _finish(header, frames, with_comm):
    comm = header.split()[0] if header.split() else "?"
    # perf prints the comm first; a thread name may hold spaces, so cut at the pid.
    m = re.match(r"^\s*(.+?)\s+\d+(?:/\d+)?\s", header)
    if m:
        comm = m.group(1)
    stack = list(reversed(frames)) or ["[no stack]"]
    if with_comm:
        stack.insert(0, comm)
    return tuple(stack), 1


def fold(samples):
    folded = {}
    for stack, w in samples:
        folded[stack] = folded.get(stack, 0) + w
    return folded


def read_folded(lines):
    folded = {}
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, n = line.rpartition(" ")
        try:
            folded[tuple(stack.split(";"))] = folded.get(tuple(stack.split(";")), 0) + int(n)
        except ValueError:
            continue
    return folded


class Node:
    __slots__ = ("name", "value", "children")

    def __init__(self, name):
        self.name = name
        self.value = 0
        self.children = {}


def build_tree(folded):
    root = Node("all")
    for stack, n in folded.items():
        root.value += n
        cur = root
        for name in stack:
            nxt = cur.children.get(name)
            if nxt is None:
                nxt = cur.children[name] = Node(name)
            nxt.value += n
            cur = nxt
    return root


def color(name):
    """A warm colour from the name's hash, so a function keeps its colour across graphs;
    kernel frames (marked "_[k]" when folded) get a browner band."""
    h = zlib.crc32(name.encode())
    kernel = name.endswith("_[k]")
    if kernel:
        r, gg, b = 200 + h % 55, 120 + (h >> 8) % 80, 40 + (h >> 16) % 40
    else:
        r, gg, b = 225 + h % 30, 60 + (h >> 8) % 130, (h >> 16) % 55
    return "rgb(%d,%d,%d)" % (r, gg, b)


def render_svg(root, title, width=1200, frame_h=16, min_px=0.1):
    total = root.value or 1
    depth = _depth(root)
    height = (depth + 1) * frame_h + 70
    rects = []

    def walk(node, x, level):
        w = node.value / total * (width - 20)
        if w < min_px:
            return
        y = height - 30 - (level + 1) * frame_h
        pct = 100.0 * node.value / total
        rects.append((x, y, w, node.name, node.value, pct))
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            walk(child, cx, level + 1)
            cx += child.value / total * (width - 20)

    walk(root, 10.0, 0)
    out = []
    out.append('<?xml version="1.0" standalone="no"?>')
    out.append('<svg version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" '
               'xmlns="http://www.w3.org/2000/svg" onload="init(evt)">' % (
                   width, height, width, height))
    out.append("<style>text{font-family:monospace;font-size:11px;pointer-events:none}"
               "rect.f{stroke:#fff;stroke-width:0.5;cursor:pointer}"
               "rect.f:hover{stroke:#000;stroke-width:1}#details{font-size:12px}</style>")
    out.append('<rect x="0" y="0" width="%d" height="%d" fill="#fdfaf3"/>' % (width, height))
    out.append('<text x="%d" y="20" text-anchor="middle" style="font-size:15px">%s</text>' % (
        width // 2, html.escape(title)))
    out.append('<text id="details" x="10" y="%d"> </text>' % (height - 8))
    out.append('<g id="frames">')
    for i, (x, y, w, name, value, pct) in enumerate(rects):
        label = "%s (%d sample%s, %.2f%%)" % (name, value, "" if value == 1 else "s", pct)
        out.append('<g class="fg" data-x="%.3f" data-w="%.3f"><title>%s</title>'
                   '<rect class="f" x="%.3f" y="%d" width="%.3f" height="%d" fill="%s" rx="2"/>'
                   '<text x="%.3f" y="%d" data-n="%s"></text></g>' % (
                       x, w, html.escape(label), x, y, w, frame_h - 1, color(name),
                       x + 3, y + frame_h - 4, html.escape(name, quote=True)))
    out.append("</g>")
    out.append("<script><![CDATA[%s]]></script>" % _JS.replace("__W__", str(width - 20)))
    out.append("</svg>")
    return "\n".join(out)


def _depth(node):
    best = 0
    stack = [(node, 0)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        for c in n.children.values():
            stack.append((c, d + 1))
    return best


_JS = r"""
var W = __W__, groups, details;
function init(evt) {
  groups = Array.prototype.slice.call(document.querySelectorAll('g.fg'));
  details = document.getElementById('details');
  groups.forEach(function (g) {
    g.addEventListener('click', function () { zoom(g); });
    g.addEventListener('mouseover', function () {
      details.textContent = g.querySelector('title').textContent; });
    g.addEventListener('mouseout', function () { details.textContent = ' '; });
  });
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape') reset(); });
  layout(10, W);
}
function fit(g) {
  var r = g.querySelector('rect'), t = g.querySelector('text');
  var w = parseFloat(r.getAttribute('width')), name = t.getAttribute('data-n');
  var chars = Math.floor((w - 6) / 6.6);
  if (chars < 3) { t.textContent = ''; return; }
  t.textContent = name.length <= chars ? name : name.substring(0, chars - 2) + '..';
}
function layout(x0, span) {
  var k = W / span;
  groups.forEach(function (g) {
    var x = parseFloat(g.getAttribute('data-x')), w = parseFloat(g.getAttribute('data-w'));
    var r = g.querySelector('rect'), t = g.querySelector('text');
    var nx = 10 + (x - x0) * k, nw = w * k;
    if (nx + nw < 10 || nx > 10 + W + 0.01) { g.style.display = 'none'; return; }
    g.style.display = '';
    r.setAttribute('x', nx); r.setAttribute('width', nw); t.setAttribute('x', nx + 3);
    fit(g);
  });
}
function zoom(g) {
  var x = parseFloat(g.getAttribute('data-x')), w = parseFloat(g.getAttribute('data-w'));
  var y = parseFloat(g.querySelector('rect').getAttribute('y'));
  layout(x, w);
  groups.forEach(function (o) {
    var oy = parseFloat(o.querySelector('rect').getAttribute('y'));
    if (oy > y) o.style.opacity = '0.5'; else o.style.opacity = '';
  });
}
function reset() { groups.forEach(function (o) { o.style.opacity = ''; }); layout(10, W); }
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--title", default="flame graph")
    ap.add_argument("--folded-in", help="read folded stacks instead of perf script output")
    ap.add_argument("--folded-out", help="also write the folded stacks here")
    ap.add_argument("--no-comm", action="store_true", help="do not root stacks at the thread name")
    ap.add_argument("--width", type=int, default=1200)
    args = ap.parse_args()
    if args.folded_in:
        with open(args.folded_in) as f:
            folded = read_folded(f)
    else:
        folded = fold(parse_perf_script(sys.stdin, with_comm=not args.no_comm))
    if args.folded_out:
        with open(args.folded_out, "w") as f:
            for stack, n in sorted(folded.items()):
                f.write("%s %d\n" % (";".join(stack), n))
    root = build_tree(folded)
    if root.value == 0:
        print("flamegraph: no samples in the input", file=sys.stderr)
        return 1
    title = "%s (%d samples)" % (args.title, root.value)
    sys.stdout.write(render_svg(root, title, width=args.width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
