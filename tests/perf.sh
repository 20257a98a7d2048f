#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/perf.sh PROG — `perf record -g` sees virtual threads' frames: in a
# sample taken while tests/progs/traced.c's "hog" thread runs, the call
# chain walks the thread's own stack from hog down to its first frame,
# weft__ctx_entry. Skipped (77) where perf is missing or may not sample
# this process; the reason goes to $WT_SKIP_LOG too (tests/skipped.sh).
set -u
prog=$1
skip() {
    echo "SKIPPED: weft.perf ($1)"
    [ -n "${WT_SKIP_LOG:-}" ] && echo "SKIPPED: perf.sh: weft.perf ($1)" \
        >>"$WT_SKIP_LOG"
    exit 77
}
command -v perf >/dev/null || skip "perf not installed"
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
timeout 60 perf record -q -e cpu-clock -g -o "$dir/perf.data" "$prog" \
    >"$dir/out" 2>&1 || { cat "$dir/out"; skip "perf record failed"; }
perf script -i "$dir/perf.data" 2>/dev/null >"$dir/script"
awk 'function end_sample() { if (hog && last == "weft__ctx_entry") found = 1
                            hog = 0; last = "" }
     NF == 0 { end_sample(); next }
     { f = $2; sub(/\+0x[0-9a-f]+$/, "", f)
       if (f == "hog") hog = 1
       last = f }
     END { end_sample(); exit !found }' "$dir/script" && { echo "hog sampled on its own stack"; exit 0; }
echo "no sample walks from hog down to weft__ctx_entry:"
grep -B1 -A3 "hog+" "$dir/script" | head -20
exit 1
