# SPDX-License-Identifier: MIT
set terminal pngcairo size 900,560 enhanced font 'sans,10'
set grid
set key top left
set output 'docs/img/harness/throughput_vs_cpus.png'
DAT='docs/img/harness/data/sweep_cpus.dat'
set title 'churn throughput vs CPUs (4 nodes; all threads share 2 real cores: relative)'
set xlabel 'virtual CPUs'
set logscale x 2
set ylabel 'M ops/s'
set yrange [0:*]
plot DAT using 1:5 with linespoints lw 2 title 'SLUB sheaves', DAT using 1:10 with linespoints lw 2 title 'SLUB classic', DAT using 1:6 with linespoints lw 2 title 'SLAB'
