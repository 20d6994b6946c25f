# SPDX-License-Identifier: MIT
# Grouped bar chart of the allocator suite's ratios to jemalloc: one group per (workload,
# threads) cell, one bar per allocator, log scale, a line at 1 (= jemalloc). Called by
# tools/bench_suite.py:
#   gnuplot -e "datafile='out/suite/time_ratio.dat'; outfile='out/suite/time_ratio.png'; \
#               ncols=4; charttitle='...'" tools/plot_bench_suite.gp
# The data file: a header line "cell <alloc> ...", then one line per cell: the quoted cell
# name ("larson/2") and the ratio per allocator (NaN where missing).
if (!exists("datafile")) datafile = 'out/suite/time_ratio.dat'
if (!exists("outfile")) outfile = 'out/suite/time_ratio.png'
if (!exists("ncols")) ncols = 4
if (!exists("charttitle")) charttitle = 'ratio to jemalloc'

set terminal pngcairo size 1600,700 enhanced font "sans,10"
set output outfile
set title charttitle noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set ylabel "ratio to jemalloc (log scale)"
set grid ytics
set xtics rotate by -40 noenhanced nomirror
set key top left noenhanced
set datafile missing "NaN"
set bmargin 7
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black" front

plot for [i=2:ncols+1] datafile using i:xtic(1) title columnheader(i)
