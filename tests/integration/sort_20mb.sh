#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# GNU sort of a generated ~20 MB file of random lines, three ways: in memory, numerically with
# two threads, and with a 1 MiB buffer (temporary files and a multi-way merge). Each preloaded
# result must be byte-identical to the plain one.
# usage: sort_20mb.sh PATH/TO/libslub.so
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need sort awk
check_preload
cd "$TMP"

# Deterministic for a given awk: fixed seed. ~400k lines of ~50 bytes.
awk 'BEGIN {
  srand(20240601)
  for (i = 0; i < 480000; i++)
    printf "%d %s-%08x %s line %d\n", int(rand() * 1e9),
      substr("abcdefghijklmnopqrstuvwxyz", int(rand() * 26) + 1, 5), int(rand() * 4e9),
      (rand() < 0.5 ? "even" : "odd"), i
}' >input.txt
size=$(wc -c <input.txt)
((size > 15000000)) || fail "generated input is only $size bytes"

mkdir -p sorttmp
run_pair sort sort input.txt
compare_outputs sort
run_pair sort_n sort -n -k1,1 -k3 --parallel=2 -S 64M input.txt
compare_outputs sort_n
run_pair sort_small sort -S 1M --parallel=2 -T "$TMP/sorttmp" -k2,2 -k4 input.txt
compare_outputs sort_small
