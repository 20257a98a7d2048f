#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian packages that `make`, `make demo` and `make install`
# (build), `make check` (test), `make bench` (bench) or `make
# check-aarch64` (aarch64) need, when they are missing and we are root;
# otherwise names them. Never fails the build by itself: a missing package
# shows up as a clear build error later.
# Usage: tools/install-deps.sh [build|test|bench|aarch64]   (default: test)
set -u
what=${1:-test}
# The library and its examples (README: Build); libdw gives dumps their
# file:line.
pkgs="cmake gcc make pkg-config liburing-dev libdw-dev"
# The AArch64 cross build and qemu-user to run it (cmake/
# aarch64-linux-gnu.cmake); python3 for the trace tests. liburing and
# libdw come apart, below.
[ "$what" = aarch64 ] && pkgs="cmake make pkg-config python3
  gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
  qemu-user-static"
if [ "$what" != build ] && [ "$what" != aarch64 ]; then
    # libbz2-dev: libdw.a needs it, for the fully static link test
    # (tests/install).
    pkgs="$pkgs g++ clang libcurl4-openssl-dev gdb valgrind python3 libbz2-dev"
    # The compatibility matrix (tests/compat/): client libraries and the
    # real servers the tests start themselves (never as services, below).
    pkgs="$pkgs libhiredis-dev redis-server libpq-dev postgresql libssl-dev
      openssl libmariadb-dev mariadb-server libmemcached-dev memcached
      libsqlite3-dev"
    # The manual pages' lint (docs/man/check.py).
    pkgs="$pkgs mandoc"
fi
[ "$what" = bench ] && pkgs="$pkgs golang-go libboost-context-dev nginx wrk libuv1-dev
  gnuplot-nox"
# liburing and libdw for arm64: Debian has no cross packages of them.
# Their arm64 packages (and the libraries libdw needs) are fetched and
# unpacked into a root of their own (WEFT_AARCH64_DEPS, default
# /opt/weft-aarch64: the toolchain file looks there), without adding
# arm64 to dpkg's architectures, which would have apt keep every shared
# library of both in step. The root's .packages says what it holds.
arm64_root=${WEFT_AARCH64_DEPS:-/opt/weft-aarch64}
arm64_pkgs="liburing2 liburing-dev libdw1 libdw-dev libelf1 libelf-dev
  zlib1g libbz2-1.0 liblzma5"
arm64_unpack() {
    want=$(echo $arm64_pkgs)
    [ "$(cat "$arm64_root/.packages" 2>/dev/null)" = "$want" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: $arm64_root lacks arm64 packages of: $want" \
            "(run as root to unpack Debian's)" >&2
        return 0
    fi
    echo "install-deps: unpacking arm64 $want into $arm64_root"
    archs="-o APT::Architectures::=$(dpkg --print-architecture)
      -o APT::Architectures::=arm64"
    debs=$(for p in $want; do printf '%s:arm64 ' "$p"; done)
    dir=$(mktemp -d) && chmod 755 "$dir" && (cd "$dir" &&
        apt-get $archs update -q >/dev/null &&
        apt-get $archs download -q $debs >/dev/null 2>&1) &&
        mkdir -p "$arm64_root" &&
        for deb in "$dir"/*.deb; do dpkg-deb -x "$deb" "$arm64_root"; done &&
        echo "$want" >"$arm64_root/.packages"
    rm -rf "$dir"
}
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: not Debian: install the equivalents of:" $pkgs >&2
    exit 0
fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -z "$missing" ]; then
    [ "$what" = aarch64 ] && arm64_unpack
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages:$missing (run as root to install)" >&2
    exit 0
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Packages must not start services (nginx's would take port 80; redis,
# postgresql, mariadb and memcached would run as system services): a
# policy-rc.d that denies every start, for the time of the install, where
# the machine has none of its own.
policy=/usr/sbin/policy-rc.d
if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy
    trap 'rm -f $policy' EXIT
fi
apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null
[ "$what" = aarch64 ] && arm64_unpack
# Where a policy-rc.d of the machine's own let a service start anyway (or
# systemd ignored it), stop the servers the tests start by themselves.
for svc in redis-server postgresql mariadb memcached; do
    if command -v systemctl >/dev/null 2>&1 &&
        systemctl is-active -q $svc 2>/dev/null; then
        systemctl stop $svc
        systemctl disable -q $svc 2>/dev/null
    elif [ -x /etc/init.d/$svc ]; then
        /etc/init.d/$svc stop >/dev/null 2>&1
    fi
done
