# SPDX-License-Identifier: MIT
# bench/median.sh — sourced by bench/ab.sh and bench/foreign_cost.sh.
# median: the median of the numbers on standard input (separated by spaces
# or newlines); the mean of the two middle ones for an even count.
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {
    if (NR) print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2) }'; }
