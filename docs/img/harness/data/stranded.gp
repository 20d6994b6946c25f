# SPDX-License-Identifier: MIT
set terminal pngcairo size 900,560 enhanced font 'sans,10'
set grid
set key top left
set output 'docs/img/harness/stranded.png'
set title 'Objects stranded on idle CPUs after half the CPUs stop (one cache of 256 B)'
set xlabel 'seconds since the CPUs went idle'
set ylabel 'MiB parked in per-CPU slabs / arrays / shared / alien'
set key top right
set yrange [0:*]
plot 'docs/img/harness/data/idle_slab_4096_4.dat' using 1:($2/1048576) with linespoints lw 2 title 'slab, 4096 CPUs, 4 nodes', \
     'docs/img/harness/data/idle_slub-classic_4096_4.dat' using 1:($2/1048576) with linespoints lw 2 title 'slub-classic, 4096 CPUs, 4 nodes', \
     'docs/img/harness/data/idle_slub_4096_4.dat' using 1:($2/1048576) with linespoints lw 2 title 'slub, 4096 CPUs, 4 nodes', \
     'docs/img/harness/data/idle_slab_4096_1024.dat' using 1:($2/1048576) with linespoints lw 2 title 'slab, 4096 CPUs, 1024 nodes', \
     'docs/img/harness/data/idle_slub-classic_4096_1024.dat' using 1:($2/1048576) with linespoints lw 2 title 'slub-classic, 4096 CPUs, 1024 nodes', \
     'docs/img/harness/data/idle_slub_4096_1024.dat' using 1:($2/1048576) with linespoints lw 2 title 'slub, 4096 CPUs, 1024 nodes'
