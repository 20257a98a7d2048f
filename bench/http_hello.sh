#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/http_hello.sh CONNS SERVER [ARGS...] — B7 http_hello: starts the
# HTTP server SERVER ARGS --port 0 --procs 2 (weft's examples/httpd or a
# peer: bench/peers/go/http_hello, bench/peers/nginx/http_hello.sh), warms
# it up with wrk for BENCH_HTTP_WARMUP seconds (1), then runs
# `wrk -t2 -cCONNS -dBENCH_HTTP_SECONDS --latency` (10 s) against
# http://127.0.0.1:PORT/hello and prints
#   server_cpu_us_per_req N us (the headline: the server's and its
#                               processes' CPU time over the measured run,
#                               per request)
#   http_rps N req/s
#   latency_p99_us N us
#   client_cpu_pct N %
# Fails if wrk reports any error (connect, read, write, timeout, non-2xx).
# The server gets BENCH_PROCS carriers (2); wrk's BENCH_HTTP_CLIENT_THREADS
# threads (2, B7's definition) share the two CPUs with them, so req/s
# measures whichever side saturates first, and CPU per request is what
# says what the server costs. client_cpu_pct is wrk's CPU time over the
# run's wall time (up to 100 per wrk thread).
set -u
# bash prints `times` and $EPOCHREALTIME with the locale's decimal point.
export LC_ALL=C
. "$(dirname "${BASH_SOURCE[0]}")/server.sh"

[[ $# -ge 2 ]] || { echo "usage: $0 CONNS SERVER [ARGS...]" >&2; exit 2; }
conns=$1
shift
secs=${BENCH_HTTP_SECONDS:-10}
warmup=${BENCH_HTTP_WARMUP:-1}
command -v wrk >/dev/null || { echo "wrk not installed" >&2; exit 1; }
raise_nofile $((conns + 1024)) || exit 1
start_server "${BENCH_PROCS:-2}" "$@" || exit 1
url=http://127.0.0.1:$SERVER_PORT/hello

# to_us VALUE: one of wrk's latencies (850.00us, 1.23ms, 1.02s) in µs.
to_us() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1e3;
        else if (v ~ /s$/) m = 1e6; else exit 1;
        sub(/[a-z]+$/, "", v); printf "%.1f\n", v * m }'
}

# errors WRK_OUTPUT: the sum of wrk's error counts (socket errors and
# non-2xx/3xx responses).
errors() {
    awk '/^ *Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
         /^ *Non-2xx or 3xx responses:/ { n += $NF }
         END { print n + 0 }' <<<"$1"
}

# server_ticks: CPU time (utime + stime, clock ticks) of the server and
# every process under it (nginx's workers), now.
server_ticks() {
    local p t=0
    for p in $(server_pids); do
        # Fields after the command's closing parenthesis: utime is the
        # 12th, stime the 13th.
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null |
                    awk '{ print $12 + $13 }') + 0))
    done
    echo "$t"
}

log=$SERVER_DIR/wrk
threads=${BENCH_HTTP_CLIENT_THREADS:-2}
run_client "$log" wrk -t"$threads" -c"$conns" -d"${warmup}s" "$url" ||
    { echo "wrk (warm-up) failed: $(cat "$log")" >&2; exit 1; }
children_cpu; cpu0=$CHILDREN_CPU wall0=$EPOCHREALTIME
srv0=$(server_ticks)
run_client "$log" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$url" ||
    { echo "wrk failed: $(cat "$log")" >&2; exit 1; }
wall1=$EPOCHREALTIME; children_cpu; cpu1=$CHILDREN_CPU
srv1=$(server_ticks)
cpu0=$(cpu_seconds "$cpu0") cpu1=$(cpu_seconds "$cpu1")
out=$(cat "$log")
echo "$out" >&2
rps=$(awk '$1 == "Requests/sec:" { print $2 }' <<<"$out")
p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
[[ -n $rps && -n $p99 ]] || { echo "cannot parse wrk's output" >&2; exit 1; }
p99=$(to_us "$p99") || { echo "unknown latency unit in wrk's output" >&2; exit 1; }
n=$(errors "$out")
reqs=$(awk '$2 == "requests" && $3 == "in" { print $1 }' <<<"$out")
echo "http_rps $rps req/s"
echo "latency_p99_us $p99 us"
awk -v c="$cpu1" -v c0="$cpu0" -v w="$wall1" -v w0="$wall0" \
    'BEGIN { printf "client_cpu_pct %.1f %%\n", 100 * (c - c0) / (w - w0) }'
[[ -n $reqs && $reqs -gt 0 ]] && awk -v t="$((srv1 - srv0))" \
    -v hz="$(getconf CLK_TCK)" -v n="$reqs" \
    'BEGIN { printf "server_cpu_us_per_req %.2f us\n", t / hz * 1e6 / n }'
[[ $n == 0 ]] || { echo "wrk counted $n errors" >&2; exit 1; }
