#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/skipped.sh LOG — weft.skipped, the last test of a ctest run: lists
# each test that skipped in the run (the SKIPPED: lines that the test
# programs and scripts appended to LOG) and exits 77 if there is any, so
# that ctest's summary names weft.skipped under "did not run" instead of
# letting a program that skipped some of its tests pass for complete.
set -u
log=$1
if [ ! -s "$log" ]; then
    echo "no test skipped"
    exit 0
fi
cat "$log"
echo "$(wc -l <"$log") skipped in this run (listed above)"
exit 77
