#!/bin/sh
# Installs the Debian packages that `make check` (test) or `make bench`
# (bench) needs, when they are missing and we are root. Never fails the
# build by itself: a missing package shows up as a clear build error later.
set -u
what=${1:-test}
pkgs="cmake gcc g++ make pkg-config libcriterion-dev clang"
[ "$what" = bench ] && pkgs="$pkgs golang-go libboost-context-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages:$missing (run as root to install)" >&2
    exit 0
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null
