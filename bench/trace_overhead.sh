#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/trace_overhead.sh — what the WEFT_TRACE event sites cost.
# Builds weft's switch (Bs), pingpong (B2, procs 1) and ring (B5) programs
# twice in Release: with the event sites compiled in (the default) and with
# -DWEFT_TRACE_EVENTS=OFF (no sites at all). Runs, alternating, RUNS (5)
# times each: "none" (no sites), "off" (sites, WEFT_TRACE unset: the cost
# every program pays) and "on" (WEFT_TRACE set, the trace written to a
# temporary file). Prints medians and the off/none and on/none ratios.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BENCH_BUILD:-$REPO/build-bench-trace}
RUNS=${RUNS:-5}
PROGS=(switch pingpong ring)
declare -A ARGS=([pingpong]=1)

build() { # build DIR FLAG
    cmake -S "$REPO" -B "$1" -DCMAKE_BUILD_TYPE=Release -DWEFT_TESTS=OFF \
        -DWEFT_EXAMPLES=OFF -DWEFT_TRACE_EVENTS="$2" >/dev/null &&
    cmake --build "$1" -j"$(nproc)" \
        --target "${PROGS[@]/#/bench_}" >/dev/null
}
build "$B/with" ON && build "$B/without" OFF || {
    echo "trace_overhead: build failed" >&2; exit 1; }
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT

run() { # run PROG VARIANT -> the metric's value
    local p=$1 dir=with env=()
    case $2 in
    none) dir=without ;;
    on) env=(WEFT_TRACE="$tmp/trace.json") ;;
    esac
    env "${env[@]}" "$B/$dir/bench/$p" ${ARGS[$p]:-} | awk '{print $2; exit}'
}
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

declare -A m
printf '%-10s %10s %10s %10s %9s %9s\n' bench none off on off/none on/none
for p in "${PROGS[@]}"; do
    declare -A got=()
    for ((i = 0; i < RUNS; i++)); do
        for v in none off on; do
            got[$v]+="$(run "$p" $v) "
            sleep 0.5
        done
    done
    for v in none off on; do
        m[$v]=$(tr ' ' '\n' <<<"${got[$v]}" | grep . | median)
    done
    awk -v p="$p" -v n="${m[none]}" -v f="${m[off]}" -v o="${m[on]}" \
        'BEGIN {printf "%-10s %10s %10s %10s %9.3f %9.3f\n", p, n, f, o,
                f / n, o / n}'
    unset got
done
