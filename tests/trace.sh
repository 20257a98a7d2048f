#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/trace.sh PROG CHECKER — runs tests/progs/traced.c with WEFT_TRACE
# and checks the file it writes (tests/trace_check.py).
set -u
prog=$1 checker=$2
command -v python3 >/dev/null || { echo "python3 not installed"; exit 1; }
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
out=$(WEFT_TRACE="$dir/trace.json" timeout 60 "$prog")
rc=$?
[ $rc = 77 ] && exit 77 # io_uring asked for and refused: a skip
[ $rc = 0 ] || { echo "traced program failed ($rc): $out"; exit 1; }
fd=$(echo "$out" | sed -n 's/^reader fd //p')
python3 "$checker" "$dir/trace.json" "$fd"
