#!/usr/bin/python3
"""Cold memory, ringcast against uWebSockets in the same run: RSS of a fresh server
(one shard), with 1k and 10k idle connections, and 12 s after they leave; then ringcast
with 6 shards fresh and at 100k (the fixed cost per shard). The same measurement as
`make bench`'s memory section, without the rest of the bench (~3 min).

  /usr/bin/python3 perf/membench.py [--no-big] [--no-report]

Writes perf/results/mem-<UTC stamp>.json and the block between <!-- mem-bench:start -->
and <!-- mem-bench:end --> of BENCHMARKS.md.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import benchlib as bl  # noqa: E402
import benchreport  # noqa: E402

START, END = "<!-- mem-bench:start -->", "<!-- mem-bench:end -->"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--results", default=os.path.join(bl.REPO, "perf", "results"))
    ap.add_argument("--no-big", action="store_true", help="skip the 100k run on 6 shards")
    ap.add_argument("--no-report", action="store_true", help="leave BENCHMARKS.md alone")
    args = ap.parse_args()
    p = dict(bench.FULL)
    stamp = bl.now_utc_stamp()
    logdir = bl.make_logdir("ringcast-mem-%s-" % stamp)
    rl = bl.Ringload(os.path.join(args.build, "ringload"), cpu=None)
    doc = {"stamp": stamp, "machine": bl.machine_info(args.build), "memory": [],
           "command": "/usr/bin/python3 perf/membench.py" + (" --no-big" if args.no_big else "")}
    runs = [("ringcast", p["mem_levels"], 1), ("uws", p["mem_levels"], 1)]
    if not args.no_big:
        runs.append(("ringcast", p["mem_big"], p["mem_big_shards"]))
    for kind, levels, shards in runs:
        bl.log("%s (%d shards): memory from fresh, %s connections, and after" % (
            kind, shards, levels))
        doc["memory"].append(bench.memory_levels(kind, args, p, rl, logdir, levels,
                                                 shards=shards))
    os.makedirs(args.results, exist_ok=True)
    out = os.path.join(args.results, "mem-%s.json" % stamp)
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    lines = benchreport._memory_section(doc)
    lines[0] = "## Cold memory: ringcast against uWebSockets"
    lines[1:1] = ["", "`%s` (%s; results `%s`). Machine: %s, %s CPUs, kernel %s." % (
        doc["command"], stamp, os.path.relpath(out, bl.REPO), doc["machine"].get("cpu_model"),
        doc["machine"].get("nproc"), doc["machine"].get("kernel"))]
    block = START + "\n" + "\n".join(lines).rstrip("\n") + "\n" + END + "\n"
    print(block)
    if not args.no_report:
        path = os.path.join(bl.REPO, "BENCHMARKS.md")
        text = open(path).read()
        i, j = text.find(START), text.find(END)
        if i >= 0 and j > i:
            text = text[:i] + block + text[j + len(END):].lstrip("\n")
        else:
            text = text.rstrip("\n") + "\n\n" + block
        with open(path, "w") as f:
            f.write(text)
    return 0 if all("error" not in m for m in doc["memory"]) else 1


if __name__ == "__main__":
    sys.exit(main())
