#!/bin/sh
# Runs each libFuzzer driver built in build/fuzz/ for SECONDS on its
# committed corpus (tests/fuzz/corpus/NAME, never written to: new inputs go
# to build/fuzz/corpus/NAME) with its dictionary (tests/fuzz/dict/NAME.dict).
# Prints, per driver, the executions and the time, and appends one JSON line
# per driver to build/fuzz/summary.jsonl. Crashes, leaks and broken
# invariants leave their input in build/fuzz/crashes/NAME-*; the script runs
# every driver, then fails when any of them found something. Before each
# run, the driver replays the reproducers of past findings
# (tests/fuzz/crashes/NAME-*), which must all pass.
#   usage: sh tests/fuzz/run.sh SECONDS NAME...
set -u
secs=$1
shift
out=build/fuzz
mkdir -p "$out/crashes" "$out/logs"
status=0
for name in "$@"; do
    bin=$out/fuzz_$name
    corpus=$out/corpus/$name
    mkdir -p "$corpus"
    dict=""
    [ -f "tests/fuzz/dict/$name.dict" ] && dict="-dict=tests/fuzz/dict/$name.dict"
    log=$out/logs/$name.log
    # Past findings first: each reproducer in tests/fuzz/crashes/ must pass.
    for f in tests/fuzz/crashes/"$name"-*; do
        [ -f "$f" ] || continue
        if ! "$bin" "$f" >"$out/logs/$name-regress.log" 2>&1; then
            status=1
            echo "  fuzz $name: the old finding $f is back; log: $out/logs/$name-regress.log" >&2
        fi
    done
    before=$(ls "$out/crashes" | grep -c "^$name-" || true)
    start=$(date +%s)
    # -rss_limit_mb: ASan's quarantine plus wslay's contexts stay well below.
    "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 \
        -artifact_prefix="$out/crashes/$name-" $dict "$corpus" "tests/fuzz/corpus/$name" \
        >"$log" 2>&1
    rc=$?
    end=$(date +%s)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    after=$(ls "$out/crashes" | grep -c "^$name-" || true)
    crashes=$((after - before))
    [ $rc -ne 0 ] && [ $crashes -eq 0 ] && crashes=1
    size=$(ls "$corpus" | wc -l)
    printf '  fuzz %-12s %10s execs in %4ss, %s new inputs (corpus %s), %s crashes\n' \
        "$name" "${execs:-0}" $((end - start)) "${added:-0}" "$size" "$crashes"
    printf '{"driver":"%s","seconds":%d,"execs":%d,"new_units":%d,"corpus":%d,"crashes":%d}\n' \
        "$name" $((end - start)) "${execs:-0}" "${added:-0}" "$size" "$crashes" \
        >>"$out/summary.jsonl"
    if [ $rc -ne 0 ]; then
        status=1
        echo "  fuzz $name FAILED (exit $rc); its log: $log" >&2
        grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$log" | head -8 >&2
    fi
done
exit $status
