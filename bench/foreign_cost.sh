#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/foreign_cost.sh — what weft's handling of foreign code costs,
# measured A/B in one run, alternating (BENCH_RUNS pairs, 5):
#   B6 with 2 hogs, the ticker sleeping with weft_sleep (B6 as defined)
#      against usleep through the hook, and usleep called from a separately
#      built shared library (so the ticker is bound to its carrier while it
#      sleeps): p99 and max lateness (latency_under_hogs, BENCH_TICK_SLEEP);
#   B7 at 100 connections, httpd with weft_read/weft_write against the
#      same server with libc's read/write (examples/httpd_plain, through the
#      hooks, whose writes are never batched): requests/s and p99.
# Prints each figure's median per variant and the ratio to the first one.
# Runs in the build directory BENCH_BUILD (<repo>/build-bench).
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BENCH_BUILD:-$REPO/build-bench}
RUNS=${BENCH_RUNS:-5}
cmake -S "$REPO" -B "$B" -DCMAKE_BUILD_TYPE=Release -DWEFT_TESTS=OFF \
    >/dev/null || exit 1
cmake --build "$B" -j"$(nproc)" --target bench_latency_under_hogs httpd \
    httpd_plain >/dev/null || exit 1

declare -A VAL # "variant metric" -> space-separated values

# record VARIANT OUTPUT: keeps every `metric value unit` line of OUTPUT.
record() {
    local variant=$1 metric value unit
    while read -r metric value unit; do
        [[ $value =~ ^[0-9.]+$ ]] || continue
        VAL["$variant $metric"]+="$value "
    done <<<"$2"
}

. "$REPO/bench/median.sh"

# report TITLE METRIC VARIANT...: medians and ratios to the first variant.
report() {
    local title=$1 metric=$2 base="" v m
    shift 2
    for v in "$@"; do
        m=$(median <<<"${VAL["$v $metric"]:-}")
        [[ -z $m ]] && { echo "$title $metric $v: no figures"; continue; }
        [[ -z $base ]] && base=$m
        printf '%-6s %-16s %-14s %10s  x%.3f\n' "$title" "$metric" "$v" "$m" \
            "$(awk -v a="$m" -v b="$base" 'BEGIN { print b ? a / b : 0 }')"
    done
}

for ((i = 0; i < RUNS; i++)); do
    for t in weft usleep foreign; do
        out=$(BENCH_TICK_SLEEP=$t "$B/bench/latency_under_hogs" 2) ||
            { echo "B6 $t failed" >&2; exit 1; }
        record "b6_$t" "$out"
        sleep 1
    done
    for s in httpd httpd_plain; do
        out=$("$REPO/bench/http_hello.sh" 100 "$B/examples/$s") ||
            { echo "B7 $s failed" >&2; exit 1; }
        record "b7_$s" "$out"
        sleep 1
    done
done
echo "# $(date -u +%F) $(nproc) CPUs, $(uname -r), $RUNS runs each, alternating"
for m in latency_p99_us latency_max_us; do
    report B6 "$m" b6_weft b6_usleep b6_foreign
done
for m in http_rps latency_p99_us; do
    report B7 "$m" b7_httpd b7_httpd_plain
done
