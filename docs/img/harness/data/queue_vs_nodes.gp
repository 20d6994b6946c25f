# SPDX-License-Identifier: MIT
set terminal pngcairo size 900,560 enhanced font 'sans,10'
set grid
set key top left
set output 'docs/img/harness/queue_vs_nodes.png'
DAT='docs/img/harness/data/sweep_nodes.dat'
set title 'Queue memory vs nodes (4096 CPUs, 235 caches)'
set xlabel 'virtual nodes'
set logscale xy 2
set format y '%.0b %BB'
set ylabel 'bytes in queues and per-CPU structures'
plot DAT using 1:4 with lines lw 1 dt 2 lc rgb 'black' title 'SLAB formula (docs/SLAB.md)', DAT using 1:2 with points pt 7 ps 1.5 lc rgb '#d62728' title 'SLAB (measured; formula for caches beyond the budget)', DAT using 1:7 with points pt 6 ps 2.2 lc rgb '#d62728' title 'SLAB, measured caches only', DAT using 1:9 with linespoints pt 4 lw 2 lc rgb '#2ca02c' title 'SLUB classic (CPU slots + node structs)', DAT using 1:3 with linespoints pt 5 lw 2 lc rgb '#1f77b4' title 'SLUB sheaves (CPU slots, sheaves, barns; measured mean x caches beyond the budget)'
