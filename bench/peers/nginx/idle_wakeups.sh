#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/peers/nginx/idle_wakeups.sh [SECONDS] — B10's nginx peer: nginx
# started as for B7 (http_hello.sh beside this script: 2 workers, one
# listening socket), left without a connection. After a second to settle,
# prints the context switches (voluntary and involuntary) of its processes
# over SECONDS (10), per second:
#   idle_wakeups N switches/s
set -u
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../../server.sh"

secs=${1:-10}
start_server 2 "$here/http_hello.sh" || exit 1
pause 1

# switches: the sum over the server's processes and their threads.
switches() {
    local p
    for p in $(server_pids); do
        cat /proc/"$p"/task/*/status 2>/dev/null
    done | awk '$1 ~ /^(non)?voluntary_ctxt_switches:$/ { n += $2 }
                END { print n + 0 }'
}

s0=$(switches)
pause "$secs"
s1=$(switches)
awk -v n="$((s1 - s0))" -v s="$secs" \
    'BEGIN { printf "idle_wakeups %.2f switches/s\n", n / s }'
