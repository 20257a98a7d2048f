#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/gdb.sh PROG SCRIPT — tools/weft-gdb.py against tests/progs/parked.c:
# `weft threads` lists the parked thread with its wait, and `weft bt` walks
# its stack down to its own function.
set -u
prog=$1 script=$2
command -v gdb >/dev/null || { echo "gdb not installed"; exit 1; }
out=$(timeout 60 gdb -q -batch -nx -ex 'set debuginfod enabled off' \
    -ex "source $script" -ex 'break all_parked' -ex run \
    -ex 'weft threads' -ex 'weft bt 2' -ex continue "$prog" 2>&1)
echo "$out"
fail=0
expect() {
    echo "$out" | grep -q -- "$1" || { echo "MISSING: $1"; fail=1; }
}
expect "#2 'napper' waiting on sleep"
expect "2 virtual threads"
expect "in weft_sleep at"
expect "in napper at .*parked.c"
exit $fail
