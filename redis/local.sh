#!/bin/sh
# Runs a command next to a local Redis, for `make run`:
#   redis/local.sh PORT COMMAND [ARG]...
# Uses the Redis already answering on 127.0.0.1:PORT, or starts Debian's
# redis-server there (no persistence) and stops it, by its PID, when the
# command ends. Any "{redis}" argument becomes redis://127.0.0.1:PORT.
set -e
port=$1
shift
url="redis://127.0.0.1:$port"
pid=""
if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
    echo "redis: using the Redis already on 127.0.0.1:$port"
else
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --daemonize no --loglevel warning &
    pid=$!
    trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' EXIT
    trap 'exit 130' INT TERM
    i=0
    until redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 50 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "redis: redis-server did not start on port $port" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "redis: started redis-server pid $pid on 127.0.0.1:$port (stopped on exit)"
fi
cmd=$1
shift
for a in "$@"; do
    shift
    [ "$a" = "{redis}" ] && a=$url
    set -- "$@" "$a"
done
"$cmd" "$@"
