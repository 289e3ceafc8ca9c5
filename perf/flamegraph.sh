#!/bin/sh
# Records ringcast under one load-generator scenario with `perf record -g` and
# renders an interactive SVG flame graph into perf/results/.
#
#   perf/flamegraph.sh [SCENARIO] [BUILD_DIR]     SCENARIO: broadcast (default), idle, echo, churn
#   FLAME_SECONDS=10 FLAME_CONNS=2000 FLAME_RATE=200 perf/flamegraph.sh broadcast
#
# ringcast runs on core 0 with one shard, ringload on core 1. Both are stopped by
# PID at the end, on errors too. Needs linux-perf (Debian package linux-perf).
set -eu

SCENARIO=${1:-broadcast}
BUILD=${2:-build}
SECONDS_REC=${FLAME_SECONDS:-10}
PY=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${FLAME_RESULTS:-$HERE/results}
HOST=127.0.0.1

case "$SCENARIO" in
broadcast) CONNS=${FLAME_CONNS:-2000}; EXTRA="--rate ${FLAME_RATE:-200} --payload 64" ;;
idle)      CONNS=${FLAME_CONNS:-15000}; EXTRA="" ;;
echo)      CONNS=${FLAME_CONNS:-100}; EXTRA="--payload 64" ;;
churn)     CONNS=${FLAME_CONNS:-100}; EXTRA="--churn-rate ${FLAME_CHURN:-2000}" ;;
*) echo "flamegraph: unknown scenario '$SCENARIO' (broadcast, idle, echo, churn)" >&2; exit 2 ;;
esac

command -v perf >/dev/null 2>&1 || {
    echo "flamegraph: perf not found (Debian package linux-perf)" >&2; exit 2; }
for b in ringcast ringload; do
    [ -x "$BUILD/$b" ] || { echo "flamegraph: $BUILD/$b missing; run make" >&2; exit 2; }
done

# Hardware cycles are often unavailable in VMs; the cpu-clock software event works.
EVENT="-e cycles"
if perf stat -e cycles true 2>&1 | grep -q -e "not supported" -e "not counted"; then
    EVENT="-e cpu-clock"
elif ! perf stat -e cycles true >/dev/null 2>&1; then
    EVENT="-e cpu-clock"
fi

TMP=$(mktemp -d /tmp/ringcast-flame.XXXXXX)
RC_PID=""; RL_PID=""
cleanup() {
    [ -n "$RL_PID" ] && kill "$RL_PID" 2>/dev/null || true
    if [ -n "$RC_PID" ]; then
        kill "$RC_PID" 2>/dev/null || true
        i=0
        while kill -0 "$RC_PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$RC_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 "$BUILD/ringcast" --listen "$HOST:$PORT" --shards 1 --no-pin \
    --public 'bench:*,echo:*' --anonymous-publish --msg-rate 1000000 --msg-burst 65535 \
    --log-level warn >"$TMP/ringcast.log" 2>&1 &
RC_PID=$!
i=0
until $PY -c "import socket,sys; socket.create_connection(('$HOST',$PORT),0.2)" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$RC_PID" 2>/dev/null; then
        echo "flamegraph: ringcast did not start:" >&2; tail -5 "$TMP/ringcast.log" >&2; exit 1
    fi
    sleep 0.1
done

# The load runs a little longer than the recording on both sides.
DUR=$((SECONDS_REC + 4))
# shellcheck disable=SC2086
timeout $((DUR + 120)) "$BUILD/ringload" --url "ws://$HOST:$PORT/ws" --dialect ringcast \
    --scenario "$SCENARIO" --conns "$CONNS" --channel bench:flame --duration "$DUR" \
    --warmup 1 --cpu 1 --quiet $EXTRA >"$TMP/ringload.json" 2>"$TMP/ringload.err" &
RL_PID=$!
# Let connections open (idle: record the ramp itself, where handshakes happen).
[ "$SCENARIO" = idle ] || sleep 2

echo "flamegraph: recording ringcast (pid $RC_PID) for ${SECONDS_REC}s, $EVENT, scenario $SCENARIO"
# shellcheck disable=SC2086
# -g walks frame pointers; the -O2 build omits them, so user-space frames of ringcast
# show as [unknown] unless it is built with -fno-omit-frame-pointer, or
# FLAME_CALLGRAPH=dwarf is set (bigger perf.data, slower perf script).
CG="-g"
[ "${FLAME_CALLGRAPH:-fp}" = dwarf ] && CG="--call-graph dwarf,16384"
# shellcheck disable=SC2086
timeout $((SECONDS_REC + 30)) perf record -F 999 $CG $EVENT -p "$RC_PID" -o "$TMP/perf.data" \
    -- sleep "$SECONDS_REC" >"$TMP/perf-record.log" 2>&1 || {
    echo "flamegraph: perf record failed:" >&2; tail -5 "$TMP/perf-record.log" >&2; exit 1; }

wait "$RL_PID" 2>/dev/null || true
RL_PID=""
cleanup
RC_PID=""

mkdir -p "$RESULTS"
TS=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$RESULTS/flame-$SCENARIO-$TS.svg"
timeout 300 perf script -i "$TMP/perf.data" 2>"$TMP/perf-script.err" \
    | $PY "$HERE/flamegraph.py" --title "ringcast, scenario $SCENARIO ($EVENT, 999 Hz)" \
        --folded-out "$TMP/folded.txt" >"$OUT"
tail -n 1 "$TMP/ringload.json" 2>/dev/null | cut -c1-300 | sed 's/^/ringload: /' || true
echo "flamegraph: folded stacks in $TMP/folded.txt"
echo "$OUT"
