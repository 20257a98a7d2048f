#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/ab.sh REV [BENCH...] — weft against itself at git revision REV:
# builds REV (a worktree under BENCH_AB_DIR, /tmp/weft-ab) and the working
# tree (BENCH_BUILD, <repo>/build-bench), runs each of weft's benchmark
# programs alternately from both, BENCH_RUNS times (5), and prints each
# figure's median for REV and for this tree, and their ratio (this / REV).
# No peers: this is for "did the change cost anything", same run, same
# machine. Benchmarks (default: all): spawn_join pingpong pingpong2 switch
# idle_memory idle_memory_compact chan_throughput ring hogs2 hogs4 http100
# http1000 c10k.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 1 ]] || { echo "usage: $0 REV [BENCH...]" >&2; exit 2; }
rev=$1
shift
RUNS=${BENCH_RUNS:-5}
NEW=${BENCH_BUILD:-$REPO/build-bench}
AB=${BENCH_AB_DIR:-/tmp/weft-ab}
OLD=$AB/build
ALL=(spawn_join pingpong pingpong2 switch idle_memory idle_memory_compact
     chan_throughput ring hogs2 hogs4 http100 http1000 c10k)
BENCHES=("$@")
[[ ${#BENCHES[@]} -gt 0 ]] || BENCHES=("${ALL[@]}")

build() { # SRC BUILD
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DWEFT_TESTS=OFF \
        >/dev/null && cmake --build "$2" -j"$(nproc)" >/dev/null
}
if [[ ! -d $AB/src ]]; then
    git -C "$REPO" worktree add --detach "$AB/src" "$rev" >/dev/null ||
        exit 1
else
    git -C "$AB/src" checkout -q --detach "$rev" || exit 1
fi
build "$AB/src" "$OLD" || { echo "cannot build $rev" >&2; exit 1; }
build "$REPO" "$NEW" || { echo "cannot build the working tree" >&2; exit 1; }

# run BENCH BUILD: the benchmark's figures, from BUILD's programs.
run() {
    local b=$1 d=$2
    case $b in
    pingpong) "$d/bench/pingpong" 1 ;;
    pingpong2) "$d/bench/pingpong" 2 ;;
    idle_memory_compact) WEFT_STACK=2k "$d/bench/idle_memory" ;;
    hogs2) "$d/bench/latency_under_hogs" 2 ;;
    hogs4) "$d/bench/latency_under_hogs" 4 ;;
    http100 | http1000)
        "$REPO/bench/http_hello.sh" "${b#http}" "$d/examples/httpd" 2>/dev/null ;;
    c10k) C10K_CLIENT=$NEW/bench/c10k_client "$REPO/bench/c10k.sh" \
              "$d/examples/echo" 2>/dev/null ;;
    *) "$d/bench/$b" ;;
    esac
}

declare -A VAL
. "$REPO/bench/median.sh"
for ((i = 0; i < RUNS; i++)); do
    for b in "${BENCHES[@]}"; do
        for side in old new; do
            d=$OLD; [[ $side == new ]] && d=$NEW
            out=$(run "$b" "$d") || { echo "$b ($side) failed" >&2; continue; }
            while read -r metric value unit; do
                [[ $value =~ ^[0-9.]+$ ]] || continue
                VAL["$b $metric $side"]+="$value "
            done <<<"$out"
            sleep 1
        done
    done
done
echo "# $(date -u +%F) $(nproc) CPUs, $(uname -r); $RUNS alternating runs"
echo "# old: $rev ($(git -C "$AB/src" rev-parse --short HEAD));" \
     "new: working tree ($(git -C "$REPO" rev-parse --short HEAD))"
printf '%-20s %-24s %12s %12s %8s\n' bench metric old new new/old
for b in "${BENCHES[@]}"; do
    for key in "${!VAL[@]}"; do
        [[ $key == "$b "*" old" ]] || continue
        m=${key#"$b "}; m=${m% old}
        o=$(median <<<"${VAL["$b $m old"]}")
        n=$(median <<<"${VAL["$b $m new"]:-}")
        [[ -n $n ]] || continue
        r=$(awk -v a="$n" -v b="$o" 'BEGIN { printf "%.3f", b ? a / b : 0 }')
        printf '%-20s %-24s %12s %12s %8s\n' "$b" "$m" "$o" "$n" "$r"
    done | sort
done
