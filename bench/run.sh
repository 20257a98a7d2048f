#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh [benchmark...] — builds weft's benchmarks (bench/*.c) and their
# peers (bench/peers/), runs each benchmark BENCH_RUNS times (default 3),
# alternating weft and the peers, and prints a table of medians and the
# weft/peer ratios (lower is better for every metric but requests/s). The
# table is also written to <build dir>/results.txt, and a chart of the
# ratios against their targets to results.png (bench/chart.sh). A peer
# that cannot be built or run is shown as "missing (reason)"; that alone
# does not make the script fail.
# Which benchmarks there are, their peers, metrics (the headline one and any
# secondary ones), and the environment and arguments their programs run
# with: the maps below (ALL ... WEFT_PROG).
#
# One more line comes after the table, with no ratio target: rss_burst
# (bench/rss_burst.sh), the resident memory of weft's httpd and of nginx
# before, at the peak of and after a burst of 10,000 connections, run once
# each (in the default set; name it to run it alone).
#
# Environment: BENCH_RUNS (3), BENCH_TIMEOUT (seconds per run, 300),
# BENCH_SETTLE (seconds of pause after each program, 1),
# BENCH_BUILD (build directory, <repo>/build-bench); for the server
# benchmarks, BENCH_HTTP_SECONDS (wrk's duration, 10), BENCH_C10K_CONNS
# (10000) and BENCH_PROCS (the servers' procs, 2): see bench/http_hello.sh
# and bench/c10k.sh.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BENCH_BUILD:-$REPO/build-bench}
RUNS=${BENCH_RUNS:-3}
TIMEOUT=${BENCH_TIMEOUT:-300}
SETTLE=${BENCH_SETTLE:-1}
# spawn_join1 is B1 at one P against weft itself at this revision (the
# tree before the spawn path was reworked; issue "B1 at procs 1"), built
# from this repository's history in a worktree under the build directory.
# It runs first in each round, away from spawn_join's pthread peer (100,000
# threads): run just after it, weft's figures were a quarter or more above
# those it gave alone minutes before (bench/RESULTS.md).
BASELINE=7ebf6a8

ALL=(spawn_join1 spawn_join pingpong pingpong2 switch idle_memory idle_memory_compact
     chan_throughput ring hogs2 hogs4 http100 http1000 c10k getspecific
     mutex_pair idle_wakeups)
declare -A PEERS=([spawn_join]="go pthread" [spawn_join1]="$BASELINE"
                  [pingpong]="go" [pingpong2]="go"
                  [switch]="go boost" [idle_memory]="go"
                  [idle_memory_compact]="go" [chan_throughput]="go" [ring]="go"
                  [hogs2]="go" [hogs4]="go" [http100]="go nginx libuv"
                  [http1000]="go nginx libuv" [c10k]="go libuv" [getspecific]="glibc"
                  [mutex_pair]="glibc" [idle_wakeups]="nginx")
# The headline metric: its weft/peer ratio is the one that counts.
declare -A METRIC=([spawn_join]=spawn_join_ns [spawn_join1]=spawn_join_ns
                   [pingpong]=pingpong_ns
                   [pingpong2]=pingpong_ns [switch]=switch_ns
                   [idle_memory]=idle_memory_bytes
                   [idle_memory_compact]=idle_memory_bytes
                   [chan_throughput]=chan_throughput_ns [ring]=ring_ns
                   [hogs2]=latency_p99_us [hogs4]=latency_p99_us
                   [http100]=server_cpu_us_per_req
                   [http1000]=server_cpu_us_per_req [c10k]=c10k_bytes
                   [getspecific]=getspecific_ns [mutex_pair]=mutex_pair_ns
                   [idle_wakeups]=idle_wakeups)
# Ratio targets (weft/peer of the headline metric; bench/RESULTS.md): a
# ceiling, as every headline metric is better lower. Pairs with no ratio
# target (the OS-thread baselines, B3's absolute one, B10 against nginx's
# zero) are drawn grey in the chart.
declare -A TARGET=([spawn_join/go]=0.5 [spawn_join1/$BASELINE]=0.6
                   [pingpong/go]=0.5 [pingpong2/go]=0.7
                   [switch/go]=0.5 [switch/boost]=3
                   [idle_memory_compact/go]=1.0 [chan_throughput/go]=0.7
                   [ring/go]=0.5 [hogs2/go]=0.25 [hogs4/go]=0.25
                   [http100/nginx]=0.9 [http100/go]=0.5 [http100/libuv]=1.0
                   [http1000/nginx]=0.9 [http1000/go]=0.5
                   [http1000/libuv]=1.0 [c10k/go]=1.0 [c10k/libuv]=1.0
                   [getspecific/glibc]=2 [mutex_pair/glibc]=1.3)
# Metrics where higher is better (the ratio's target is then a floor).
declare -A HIGHER=([http_rps]=1)
# Secondary metrics, shown beneath the headline one with their medians and,
# in parentheses, their ratio. A run that lacks one of them fails.
declare -A EXTRA=([hogs2]="latency_p50_us latency_max_us"
                  [hogs4]="latency_p50_us latency_max_us"
                  [http100]="http_rps latency_p99_us client_cpu_pct"
                  [http1000]="http_rps latency_p99_us client_cpu_pct")
# A benchmark that reuses another's programs (SRC), the environment weft's
# program runs with there (WEFT_ENV), and the arguments given to weft's
# program and to every peer's alike (ARGS):
# - idle_memory_compact is B3 in weft's compact mode (2 KiB guard-less stacks);
# - pingpong and pingpong2 are B2 with procs (weft_config.procs, GOMAXPROCS)
#   = 1 and 2: the programs take procs as their first argument;
# - hogs2 and hogs4 are B6 (latency_under_hogs, procs = 2) with 2 and 4
#   hogs: the programs take the number of hogs as their argument;
# - http100 and http1000 are B7 (http_hello) with 100 and 1000 connections,
#   c10k is B8: their programs are servers, run by a driver (DRIVER, given
#   ARGS and then the server program) that loads them and prints the
#   figures; weft's servers are examples (WEFT_PROG, a path in the build
#   directory whose name is the CMake target);
# - idle_wakeups is B10: context switches per second of a runtime whose
#   threads all wait on pipes and channels (target: at most 1; its nginx
#   peer is B7's server with no connection);
# - getspecific and mutex_pair are B9 (foreign_calls): the program takes the
#   case as its argument; its glibc peer is the same program with --glibc
#   (glibc's own functions on a plain OS thread, found past libweft's).
declare -A SRC=([spawn_join1]=spawn_join
                [idle_memory_compact]=idle_memory [pingpong2]=pingpong
                [hogs2]=latency_under_hogs [hogs4]=latency_under_hogs
                [http100]=http_hello [http1000]=http_hello [c10k]=echo
                [getspecific]=foreign_calls [mutex_pair]=foreign_calls)
declare -A WEFT_ENV=([idle_memory_compact]="WEFT_STACK=2k")
# The environment of weft's program and every peer's alike.
declare -A BOTH_ENV=([spawn_join1]="WEFT_PROCS=1")
declare -A ARGS=([pingpong]=1 [pingpong2]=2 [hogs2]=2 [hogs4]=4
                 [http100]=100 [http1000]=1000 [getspecific]=getspecific
                 [mutex_pair]=mutex)
declare -A DRIVER=([http_hello]=bench/http_hello.sh [echo]=bench/c10k.sh)
declare -A WEFT_PROG=([http_hello]=examples/httpd [echo]=examples/echo)
src_of() { echo "${SRC[$1]:-$1}"; }
# weft_prog BENCH: weft's program for it, relative to the build directory.
weft_prog() { local s; s=$(src_of "$1"); echo "${WEFT_PROG[$s]:-bench/$s}"; }
# weft_target BENCH: the CMake target that builds weft_prog.
weft_target() {
    local s; s=$(src_of "$1")
    if [[ -n ${WEFT_PROG[$s]:-} ]]; then basename "${WEFT_PROG[$s]}"
    else echo "bench_$s"; fi
}
declare -A BIN     # "bench/impl" -> program to run
declare -A MISSING # "bench/impl" -> why it cannot be run
declare -A VALUES  # "bench/impl" -> values, one per successful run
declare -A UNIT    # bench -> unit printed after the value
declare -A XVALUES # "bench/impl metric" -> values of a secondary metric
declare -A XUNIT   # "bench metric" -> unit of a secondary metric

RSS_BURST=1
if [[ $# -gt 0 ]]; then
    SELECTED=() RSS_BURST=0
    for b in "$@"; do
        if [[ $b == rss_burst ]]; then
            RSS_BURST=1
        elif [[ -n ${METRIC[$b]+x} ]]; then
            SELECTED+=("$b")
        else
            echo "usage: $0 [${ALL[*]} rss_burst]..." >&2
            exit 2
        fi
    done
else
    SELECTED=("${ALL[@]}")
fi
mkdir -p "$B/peers" || exit 1

# A log's first error-looking line (else its last line), for "missing (reason)".
reason_from() {
    local r
    r=$(grep -iE 'error|fatal|cannot|not found|undefined' "$1" | head -n 1)
    [[ -n $r ]] || r=$(tail -n 1 "$1")
    echo "${r:0:100}"
}

# --------------------------------------------------------------- install
# As root, tools/install-deps.sh installs the peers' Debian packages
# (golang-go, libboost-context-dev, nginx, wrk, libuv1-dev, gnuplot-nox)
# that are missing.
if [[ $(id -u) == 0 ]]; then
    "$REPO/tools/install-deps.sh" bench >"$B/apt.log" 2>&1 ||
        echo "installing packages failed, see $B/apt.log" >&2
fi

# ----------------------------------------------------------------- build
# Weft's programs are built together; if that fails, one by one, so that
# one that does not build makes only its own benchmarks missing.
echo "building weft benchmarks in $B..." >&2
targets=() examples=OFF
((RSS_BURST)) && targets+=(httpd) examples=ON
for b in "${SELECTED[@]}"; do
    targets+=("$(weft_target "$b")")
    [[ $(weft_prog "$b") == examples/* ]] && examples=ON
    [[ ${DRIVER[$(src_of "$b")]:-} == bench/c10k.sh ]] &&
        targets+=(bench_c10k_client)
done
# build_weft LOG TARGET...: builds them, the output in LOG.
build_weft() {
    local log=$1
    shift
    cmake --build "$B" -j"$(nproc)" --target "$@" >>"$log" 2>&1
}
if ! cmake -S "$REPO" -B "$B" -DCMAKE_BUILD_TYPE=Release -DWEFT_TESTS=OFF \
        -DWEFT_EXAMPLES=$examples >"$B/weft-build.log" 2>&1; then
    why="build failed: $(reason_from "$B/weft-build.log"); see $B/weft-build.log"
    for b in "${SELECTED[@]}"; do MISSING[$b/weft]=$why; done
elif build_weft "$B/weft-build.log" "${targets[@]}"; then
    for b in "${SELECTED[@]}"; do BIN[$b/weft]=$B/$(weft_prog "$b"); done
else
    for b in "${SELECTED[@]}"; do
        t=$(weft_target "$b")
        rm -f "$B/weft-build-$t.log"
        if build_weft "$B/weft-build-$t.log" "$t"; then
            BIN[$b/weft]=$B/$(weft_prog "$b")
        else
            why=$(reason_from "$B/weft-build-$t.log")
            MISSING[$b/weft]="build failed: $why; see $B/weft-build-$t.log"
        fi
    done
fi
# The c10k driver runs this load generator (and says so if it is missing).
export C10K_CLIENT=$B/bench/c10k_client

# build_peer BENCH PEER OUT LOG: builds one peer program.
build_peer() {
    local b=$1 p=$2 out=$3 log=$4
    case $p in
    go)
        command -v go >/dev/null || { echo "go not installed" >"$log"; return 1; }
        (cd "$REPO/bench/peers/go" &&
            GOCACHE=$B/peers/go/cache GOPATH=$B/peers/go/path GOPROXY=off \
                GOFLAGS='' go build -o "$out" "./$b") >"$log" 2>&1 ;;
    boost)
        g++ -O2 -o "$out" "$REPO/bench/peers/boost/$b.cpp" -lboost_context \
            >"$log" 2>&1 ;;
    pthread)
        gcc -O2 -pthread -o "$out" "$REPO/bench/peers/pthread/$b.c" \
            >"$log" 2>&1 ;;
    libuv)
        # http_hello parses requests with examples/httpd's parser.
        local d=$REPO/bench/peers/libuv extra=()
        [[ $b == http_hello ]] && extra=("$REPO/examples/http_parse.c")
        gcc -O2 -pthread -I"$REPO/examples" -o "$out" "$d/$b.c" \
            "$d/loops.c" "${extra[@]}" -luv >"$log" 2>&1 ;;
    glibc)
        [[ -x $B/bench/$b ]] ||
            { echo "weft's $b program was not built" >"$log"; return 1; }
        printf '#!/bin/sh\nexec "%s" --glibc "$@"\n' "$B/bench/$b" \
            >"$out" 2>"$log" && chmod +x "$out" ;;
    "$BASELINE")
        # weft at an earlier revision: its own program for this benchmark.
        local src=$B/peers/$p/src bld=$B/peers/$p/build
        { if [[ -d $src ]]; then git -C "$src" checkout -q --detach "$p"
          else git -C "$REPO" worktree add --detach "$src" "$p"; fi &&
          cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release \
              -DWEFT_TESTS=OFF -DWEFT_EXAMPLES=OFF &&
          cmake --build "$bld" -j"$(nproc)" --target "bench_$b" &&
          cp "$bld/bench/$b" "$out"; } >"$log" 2>&1 ;;
    nginx)
        { command -v nginx || [[ -x /usr/sbin/nginx ]]; } >/dev/null ||
            { echo "nginx not installed" >"$log"; return 1; }
        # A wrapper: the scripts use their neighbours (server.sh, B7's).
        printf '#!/bin/sh\nexec "%s" "$@"\n' \
            "$REPO/bench/peers/nginx/$b.sh" >"$out" 2>"$log" &&
            chmod +x "$out" ;;
    esac
}

echo "building peers..." >&2
mkdir -p "$B/peers/go" "$B/peers/boost" "$B/peers/pthread" "$B/peers/nginx" \
    "$B/peers/glibc" "$B/peers/libuv" "$B/peers/$BASELINE"
for b in "${SELECTED[@]}"; do
    for p in ${PEERS[$b]}; do
        s=$(src_of "$b")
        if build_peer "$s" "$p" "$B/peers/$p/$s" "$B/peers/$p/$s.log"; then
            BIN[$b/$p]=$B/peers/$p/$s
        else
            MISSING[$b/$p]="build failed: $(reason_from "$B/peers/$p/$s.log")"
        fi
    done
done

# ------------------------------------------------------------------- run
# run_one BENCH IMPL: runs it once and records its figure or why it failed.
run_one() {
    local b=$1 impl=$2 key=$1/$2 out rc line m x lost=
    [[ -n ${BIN[$key]:-} ]] || return
    echo "  $b/$impl" >&2
    local envs=()
    [[ $impl == weft && -n ${WEFT_ENV[$b]:-} ]] && envs=(${WEFT_ENV[$b]})
    envs+=(${BOTH_ENV[$b]:-})
    local args=(${ARGS[$b]:-})
    local cmd=("${BIN[$key]}" "${args[@]}")
    local drv=${DRIVER[$(src_of "$b")]:-}
    [[ -n $drv ]] && cmd=("$REPO/$drv" "${args[@]}" "${BIN[$key]}")
    out=$(env "${envs[@]}" timeout "$TIMEOUT" "${cmd[@]}" 2>&1)
    rc=$?
    line=$(awk -v m="${METRIC[$b]}" '$1 == m { print $2, $3; exit }' <<<"$out")
    for m in ${EXTRA[$b]:-}; do
        awk -v m="$m" '$1 == m { f = 1 } END { exit !f }' <<<"$out" ||
            lost+=" $m"
    done
    if [[ $rc == 0 && -n $line && -z $lost ]]; then
        VALUES[$key]+="${line%% *} "
        UNIT[$b]=${line#* }
        for m in ${EXTRA[$b]:-}; do
            x=$(awk -v m="$m" '$1 == m { print $2, $3; exit }' <<<"$out")
            XVALUES[$key $m]+="${x%% *} "
            XUNIT[$b $m]=${x#* }
        done
    elif [[ $rc == 0 && -n $line ]]; then
        MISSING[$key]="no line for$lost"
    elif [[ $rc == 124 ]]; then
        MISSING[$key]="timed out after ${TIMEOUT}s"
    else
        MISSING[$key]="exit $rc: $(tail -n 1 <<<"$out" | cut -c1-100)"
    fi
}

for ((run = 1; run <= RUNS; run++)); do
    echo "run $run/$RUNS" >&2
    for b in "${SELECTED[@]}"; do
        read -ra peers <<<"${PEERS[$b]}"
        impls=(weft "${peers[@]}")
        # Alternate who goes first, so neither side always runs on a
        # machine the other has just warmed (or heated).
        ((run % 2 == 0)) && impls=("${peers[@]}" weft)
        # A pause after each program lets the kernel finish cleaning up
        # after it (the pthread peer's 100,000 threads slow whatever runs
        # next by a factor of two).
        for impl in "${impls[@]}"; do
            run_one "$b" "$impl"
            sleep "$SETTLE"
        done
    done
done

# ----------------------------------------------------------------- table
median() {
    tr ' ' '\n' <<<"$1" | grep . | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.4g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# A failure in any run makes the figure missing: medians of fewer runs
# than asked for would read as equally solid.
figure() {
    if [[ -n ${MISSING[$1]:-} ]]; then
        echo "missing (${MISSING[$1]})"
    else
        median "${VALUES[$1]:-}"
    fi
}

# higher_note: which of the selected metrics (headline or secondary) are
# better higher, if any.
higher_note() {
    local b x m=()
    for b in "${SELECTED[@]}"; do
        for x in ${METRIC[$b]} ${EXTRA[$b]:-}; do
            [[ -n ${HIGHER[$x]:-} && " ${m[*]} " != *" $x "* ]] && m+=("$x")
        done
    done
    [[ ${#m[@]} -gt 0 ]] && echo ", except ${m[*]} (higher is better)"
}

report() {
    echo "weft benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo |
        cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r)"
    echo "command: BENCH_RUNS=$RUNS bench/run.sh ${SELECTED[*]}"
    echo "compilers: $(gcc --version | head -n 1)$(command -v go >/dev/null &&
        echo "; $(go version | cut -d' ' -f3)")"
    echo
    printf '%-12s %-18s %-12s %-12s %-12s %s\n' \
        benchmark metric "weft median" peer "peer median" "weft/peer"
    for b in "${SELECTED[@]}"; do
        local w
        w=$(figure "$b/weft")
        if [[ $w == missing* ]]; then
            printf '%-12s %-18s %s\n' "$b" "${METRIC[$b]}" "weft: $w"
        fi
        for p in ${PEERS[$b]}; do
            local v r=-
            v=$(figure "$b/$p")
            if [[ $v == missing* ]]; then
                printf '%-12s %-18s %-12s %-12s %s\n' "$b" "${METRIC[$b]}" \
                    "${w%% *}" "$p" "$v"
                continue
            fi
            [[ $w != missing* ]] && r=$(awk -v a="$w" -v b="$v" \
                'BEGIN { if (b > 0) printf "%.3g", a / b; else printf "-" }')
            printf '%-12s %-18s %-12s %-12s %-12s %s\n' "$b" "${METRIC[$b]}" \
                "${w%% *}" "$p" "$v" "$r"
        done
        extra_rows "$b" "$w"
    done
    echo
    # Each metric's unit once, however many benchmarks report it.
    echo "units: $(for b in "${SELECTED[@]}"; do
        printf '%s %s\n' "${METRIC[$b]}" "${UNIT[$b]:-?}"
        for m in ${EXTRA[$b]:-}; do
            printf '%s %s\n' "$m" "${XUNIT[$b $m]:-?}"; done
        done | awk '$2 != "?" && !seen[$1]++ { printf "%s; ", $0 }')medians of $RUNS runs; lower is better$(higher_note)"
    for b in "${SELECTED[@]}"; do
        if [[ -n ${EXTRA[$b]:-} ]]; then
            local note= c
            for c in "${SELECTED[@]}"; do
                [[ " ${EXTRA[$c]:-} " == *" client_cpu_pct "* ]] &&
                    note=" (client_cpu_pct: how busy the load generator was, no better direction)"
            done
            echo "secondary metrics: indented, their ratio in parentheses$note"
            break
        fi
    done
    echo "raw values:"
    for key in $(printf '%s\n' "${!VALUES[@]}" | sort); do
        echo "  $key: ${VALUES[$key]}"
        local b=${key%/*} m
        for m in ${EXTRA[$b]:-}; do
            echo "  $key $m: ${XVALUES[$key $m]:-}"
        done
    done
}

# extra_rows BENCH WEFT_FIGURE: a row per secondary metric and peer, beneath
# the headline rows; where weft's or the peer's figure is missing the
# headline rows say why, so a missing peer gets no rows and weft shows "-".
extra_rows() {
    local b=$1 w=$2 m p wx v r
    for m in ${EXTRA[$b]:-}; do
        wx=-
        [[ $w != missing* ]] && wx=$(median "${XVALUES[$b/weft $m]:-}")
        for p in ${PEERS[$b]}; do
            [[ $(figure "$b/$p") == missing* ]] && continue
            v=$(median "${XVALUES[$b/$p $m]:-}")
            r=-
            [[ $wx != - ]] && r=$(awk -v a="$wx" -v b="$v" \
                'BEGIN { if (b > 0) printf "(%.3g)", a / b; else printf "-" }')
            printf '%-12s %-18s %-12s %-12s %-12s %s\n' "$b" "  $m" \
                "$wx" "$p" "$v" "$r"
        done
    done
}

# rss_burst_lines: bench/rss_burst.sh for weft's httpd and for nginx, one
# line each (KiB before, at the peak, after), or why it could not run.
rss_burst_lines() {
    local impl cmd out
    echo
    echo "rss_burst (KiB of resident memory, 10,000 connections; no target):"
    for impl in weft nginx; do
        cmd=("$B/examples/httpd")
        [[ $impl == nginx ]] && cmd=("$REPO/bench/peers/nginx/http_hello.sh")
        out=$(timeout "$TIMEOUT" "$REPO/bench/rss_burst.sh" "${cmd[@]}" 2>&1)
        if [[ $? == 0 ]]; then
            awk -v i="$impl" '/^rss_(before|peak|after)_kib / {
                    sub(/^rss_/, "", $1); sub(/_kib$/, "", $1)
                    v = v " " $1 " " $2 }
                END { printf "  %-6s%s\n", i, v }' <<<"$out"
        else
            echo "  $impl  missing ($(tail -n 1 <<<"$out" | cut -c1-100))"
        fi
    done
}

# chart_data: "BENCH/PEER RATIO TARGET" for each pair with both figures.
chart_data() {
    local b p w v
    for b in "${SELECTED[@]}"; do
        w=$(figure "$b/weft")
        [[ $w == missing* ]] && continue
        for p in ${PEERS[$b]}; do
            v=$(figure "$b/$p")
            [[ $v == missing* ]] && continue
            awk -v k="$b/$p" -v a="$w" -v b="$v" -v t="${TARGET[$b/$p]:--}" \
                'BEGIN { if (b > 0) printf "%s %.4g %s\n", k, a / b, t }'
        done
    done
}

{
    ((${#SELECTED[@]})) && report
    ((RSS_BURST)) && rss_burst_lines
} | tee "$B/results.txt"
# The chart beside the table (results.png); no chart is no failure.
if ((${#SELECTED[@]})); then
    chart_data >"$B/results.dat"
    "$REPO/bench/chart.sh" "$B/results.dat" "$B/results.png" \
        "weft / peer, medians of $RUNS runs, $(date -u '+%Y-%m-%d'), nproc $(nproc)" &&
        echo "chart: $B/results.png" >&2
fi
# Peers may be missing; weft itself may not.
for b in "${SELECTED[@]}"; do
    [[ -z ${MISSING[$b/weft]:-} ]] || exit 1
done
exit 0
