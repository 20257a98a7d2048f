#!/bin/sh
# Installs the Debian packages that `make check` (test) or `make bench`
# (bench) needs, when they are missing and we are root. Never fails the
# build by itself: a missing package shows up as a clear build error later.
set -u
what=${1:-test}
pkgs="cmake gcc g++ make pkg-config liburing-dev libdw-dev clang libcurl4-openssl-dev gdb valgrind python3"
[ "$what" = bench ] && pkgs="$pkgs golang-go libboost-context-dev nginx wrk"
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
# Packages must not start services (nginx's would take port 80): a
# policy-rc.d that denies every start, for the time of the install, where
# the machine has none of its own.
policy=/usr/sbin/policy-rc.d
if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy
    trap 'rm -f $policy' EXIT
fi
apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null
