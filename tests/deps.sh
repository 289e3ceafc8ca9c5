#!/bin/sh
# Installs the Debian packages ringcast needs to build and test, when any is
# missing. Run as root (or with sudo available) on Debian 12 or newer.
set -e
pkgs="gcc make pkg-config liburing-dev libwslay-dev libhiredis-dev libjemalloc-dev
      libssl-dev libinih-dev redis-server python3 python3-pytest python3-websockets"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
