#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/c10k.sh SERVER [ARGS...] — B8 c10k: starts the echo server
# SERVER ARGS --port 0 --procs 2 (weft's examples/echo or
# bench/peers/go/echo), reads its RSS once it listens, opens
# BENCH_C10K_CONNS (10,000) connections to it with bench/c10k_client, waits
# until the server holds them all and a further BENCH_C10K_SETTLE seconds
# (1) with nothing sent, reads its RSS again, then has the client send one
# echo on each connection and check them all. Prints
#   c10k_bytes N bytes/conn      (RSS connected - RSS before) / connections
# and fails if any connection or echo failed.
# Environment: C10K_CLIENT (the client program, default
# <BENCH_BUILD or repo/build-bench>/bench/c10k_client), BENCH_PROCS (2).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/server.sh"

[[ $# -ge 1 ]] || { echo "usage: $0 SERVER [ARGS...]" >&2; exit 2; }
n=${BENCH_C10K_CONNS:-10000}
settle=${BENCH_C10K_SETTLE:-1}
client=${C10K_CLIENT:-${BENCH_BUILD:-$HERE/../build-bench}/bench/c10k_client}
[[ -x $client ]] || { echo "no c10k client at $client" >&2; exit 1; }
raise_nofile $((n + 4096)) || exit 1
start_server "${BENCH_PROCS:-2}" "$@" || exit 1
pause 0.5
before=$(server_rss)

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 10 ms until it
# succeeds; fails saying so after SECONDS, or at once if the client or the
# server has ended.
wait_for() {
    local what=$1 secs=$2
    shift 2
    for _ in $(seq $((secs * 100))); do
        "$@" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null ||
            { echo "the server ended while $what" >&2; return 1; }
        kill -0 "$CLIENT_PID" 2>/dev/null ||
            { echo "the client ended while $what: $(cat "$out")" >&2; return 1; }
        sleep 0.01
    done
    echo "timed out after ${secs} s while $what" >&2
    return 1
}
client_connected() { grep -q "^connected $n\$" "$out"; }
server_holds_all() { [[ $(server_sockets) -gt $n ]]; }  # + the listener

out=$SERVER_DIR/client
mkfifo "$SERVER_DIR/go" || exit 1
"$client" "$SERVER_PORT" "$n" <"$SERVER_DIR/go" >"$out" 2>&1 &
CLIENT_PID=$!
exec 3>"$SERVER_DIR/go"
wait_for "connecting" 120 client_connected || exit 1
wait_for "waiting for the server to accept" 60 server_holds_all || exit 1
pause "$settle"
connected=$(server_rss)

echo go >&3
exec 3>&-
wait "$CLIENT_PID"
rc=$?
CLIENT_PID=
cat "$out" >&2
echo "server RSS: $before bytes before, $connected with $n connections" >&2
awk -v a="$before" -v b="$connected" -v n="$n" 'BEGIN {
    printf "c10k_bytes %.0f bytes/conn\n", (b - a) / n }'
[[ $rc == 0 ]] || { echo "c10k_client failed (exit $rc)" >&2; exit 1; }
