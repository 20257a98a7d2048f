#!/bin/sh
# tests/perf.sh PROG — `perf record -g` sees virtual threads' frames: in a
# sample taken while tests/progs/traced.c's "hog" thread runs, the call
# chain walks the thread's own stack from hog down to its first frame,
# weft__ctx_entry. Skipped (77) where perf is missing or may not sample
# this process.
set -u
prog=$1
command -v perf >/dev/null || { echo "perf not installed: skipped"; exit 77; }
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
timeout 60 perf record -q -e cpu-clock -g -o "$dir/perf.data" "$prog" \
    >"$dir/out" 2>&1 || { cat "$dir/out"; echo "perf record failed: skipped"; exit 77; }
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
