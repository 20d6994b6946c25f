# SPDX-License-Identifier: MIT
# Grouped bar chart of bench_malloc medians: ns/op per benchmark, one bar per allocator.
# Called by tools/bench.sh:
#   gnuplot -e "datafile='out/bench/plot.dat'; outfile='out/bench/bench.png'; nalloc=5" \
#           tools/plot_bench.gp
# plot.dat (from tools/bench_report.py): a header line "benchmark <alloc> ...", then one line
# per benchmark: the quoted name and the median ns/op per allocator (NaN where missing).
if (!exists("datafile")) datafile = 'out/bench/plot.dat'
if (!exists("outfile")) outfile = 'out/bench/bench.png'
if (!exists("nalloc")) nalloc = 5

set terminal pngcairo size 1600,800 enhanced font "sans,10"
set output outfile
set title "bench\\_malloc: median ns per malloc+free (lower is better, log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set ylabel "ns/op"
set grid ytics mytics
set xtics rotate by -30 noenhanced nomirror
set key top left noenhanced
set datafile missing "NaN"
set bmargin 8

plot for [i=2:nalloc+1] datafile using i:xtic(1) title columnheader(i)
