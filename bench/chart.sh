#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/chart.sh DATA PNG TITLE — draws bench/run.sh's weft/peer ratios as
# a bar chart (gnuplot, PNG): one bar per benchmark and peer on a log
# scale, green where the ratio meets its target, red where it does not,
# grey where the pair has no ratio target; each target a black line over
# its bar. DATA has one line per bar: "LABEL RATIO TARGET" (TARGET "-" for
# none), as run.sh writes it.
set -u
[[ $# == 3 ]] || { echo "usage: $0 DATA PNG TITLE" >&2; exit 2; }
data=$1 png=$2 title=$3
command -v gnuplot >/dev/null || { echo "gnuplot not installed" >&2; exit 1; }
[[ -s $data ]] || { echo "no ratios in $data" >&2; exit 1; }
# gnuplot wants numbers: a missing target becomes NaN (no line, grey bar).
plot=$(mktemp /tmp/weft-chart.XXXXXX) || exit 1
trap 'rm -f "$plot"' EXIT
# Columns: x, label, ratio, target, colour, the height of the ratio's
# text (above the bar or its target line, whichever is higher).
awk '{ t = $3 == "-" ? "NaN" : $3
       c = t == "NaN" ? "0x999999" : ($2 <= t ? "0x2e8b57" : "0xcc3333")
       y = (t != "NaN" && t + 0 > $2 + 0 ? t : $2) * 1.3
       print NR - 1, $1, $2, t, c, y }' "$data" >"$plot"
n=$(wc -l <"$plot")
gnuplot <<EOF2
set terminal pngcairo size $((300 + 45 * n)),640 font "sans,10"
set output "$png"
set title "$title" noenhanced
set ylabel "weft / peer (lower is better; log scale)"
set logscale y
set yrange [0.0001:30]
set bmargin 11
set grid ytics
set xrange [-0.7:$n - 0.3]
set xtics rotate by 50 right noenhanced
set style fill solid 0.8 border -1
set boxwidth 0.7
set key off
plot "$plot" using 1:3:(0.7):5:xtic(2) with boxes lc rgb variable, \
     "" using (\$1 - 0.4):4:(0.8):(0) with vectors nohead lw 3 lc rgb "black", \
     "" using 1:6:(sprintf("%.2g", \$3)) with labels font ",9", \
     1 with lines dt 2 lc rgb "gray40"
EOF2
