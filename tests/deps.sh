#!/bin/sh
# Installs what ringcast needs to build and test, when anything is missing:
# Debian packages (as root, or with sudo), and the Node packages of the
# benchmark peers (perf/peers, from the npm registry). Debian 12 or newer.
# With the argument "bench", also what the benchmarks need; with "fuzz", what
# the libFuzzer drivers (tests/fuzz/) need; with "run", only the Debian
# packages (make run needs no Node package).
set -e
pkgs="gcc make pkg-config liburing-dev libwslay-dev libhiredis-dev libjemalloc-dev
      libssl-dev libinih-dev zlib1g-dev redis-server python3 python3-pytest python3-websockets
      python3-redis python3-cryptography"
# The browser tests (make browser): Debian's chromium, and a font to draw pages with.
[ "$1" != run ] && pkgs="$pkgs chromium fonts-dejavu-core"
[ "$1" = bench ] && pkgs="$pkgs python3-matplotlib linux-perf util-linux"
[ "$1" = fuzz ] && pkgs="$pkgs clang libclang-rt-dev"
if [ "$1" != run ] && ! command -v node >/dev/null 2>&1; then
    pkgs="$pkgs nodejs npm"
fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# make run needs no Node package.
[ "$1" = run ] && exit 0
if [ ! -d perf/peers/node_modules ] || [ perf/peers/package-lock.json -nt perf/peers/node_modules ]; then
    echo "deps: installing the benchmark peers' Node packages (perf/peers)"
    (cd perf/peers && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d clients/js/node_modules ] || [ clients/js/package-lock.json -nt clients/js/node_modules ]; then
    echo "deps: installing the JavaScript client's test packages (clients/js)"
    (cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d examples/backend/node_modules ] ||
    [ examples/backend/package-lock.json -nt examples/backend/node_modules ]; then
    echo "deps: installing the backend example's Node packages (examples/backend)"
    (cd examples/backend && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d tests/socketio/node_modules ] ||
    [ tests/socketio/package-lock.json -nt tests/socketio/node_modules ]; then
    echo "deps: installing the Socket.IO tests' Node packages (tests/socketio)"
    (cd tests/socketio && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d examples/test/node_modules ] ||
    [ examples/test/package-lock.json -nt examples/test/node_modules ]; then
    echo "deps: installing the browser tests' Node packages (examples/test)"
    (cd examples/test && npm ci --no-audit --no-fund --loglevel=error)
fi
