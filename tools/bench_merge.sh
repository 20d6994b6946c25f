#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cache merging, measured: builds bench_merge, runs it RUNS times merged and RUNS times with
# SLUB_NOMERGE=1, interleaved, and prints the medians as a markdown table (docs/MERGING.md).
#
#   tools/bench_merge.sh [ops [live [seed]]]      (defaults: 3000000 200000 42)
#   BUILD=build RUNS=3 tools/bench_merge.sh
#
# Memory counts depend only on the seed; throughput depends on the machine, so run it on a
# quiet one. The raw RESULT lines go to stderr.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
runs=${RUNS:-3}
csv=$root/tests/data/linux-6.18-slab-caches.csv

# A build folder configured before bench_merge existed knows no such target: configure again.
if ! cmake --build "$build" --target bench_merge -j"$(nproc)" >/dev/null 2>&1; then
  cmake -S "$root" -B "$build" >/dev/null
  cmake --build "$build" --target bench_merge -j"$(nproc)" >/dev/null
fi
bin=$build/bench/bench_merge

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((i = 1; i <= runs; i++)); do
  for mode in merged nomerge; do
    if [[ $mode == merged ]]; then
      env -u SLUB_NOMERGE "$bin" "$csv" "$@" >"$tmp/out"
    else
      SLUB_NOMERGE=1 "$bin" "$csv" "$@" >"$tmp/out"
    fi
    line=$(grep '^RESULT ' "$tmp/out")
    echo "$mode $line" >&2
    echo "${line#RESULT }" >>"$tmp/$mode"
  done
done

# key=value lines -> median of each key per mode -> table.
awk -v runs="$runs" '
  function median(mode, key,   n, i, j, t, v) {
    n = 0
    for (i = 1; i <= runs; i++) v[++n] = val[mode, i, key]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  FNR == 1 { mode = FILENAME ~ /nomerge$/ ? "nomerge" : "merged"; run = 0 }
  { run++; for (f = 1; f <= NF; f++) { split($f, kv, "="); val[mode, run, kv[1]] = kv[2] } }
  function row(label, key, scale, fmt,   a, b) {
    a = median("merged", key) / scale; b = median("nomerge", key) / scale
    printf "| %s | " fmt " | " fmt " | %s |\n", label, a, b, b != 0 ? sprintf("%.3f", a / b) : "-"
  }
  END {
    print "| median of " runs " runs | merged | SLUB_NOMERGE=1 | merged / nomerge |"
    print "|---|---:|---:|---:|"
    row("distinct caches", "caches", 1, "%d")
    row("slab memory (MiB)", "slab_bytes", 1048576, "%.2f")
    row("slabs", "slabs", 1, "%d")
    row("partial slabs (node lists)", "partial", 1, "%d")
    row("per-CPU slabs", "cpu_slabs", 1, "%d")
    row("live objects", "live_objs", 1, "%d")
    row("live bytes (MiB)", "live_bytes", 1048576, "%.2f")
    em = median("merged", "live_bytes") / median("merged", "slab_bytes")
    en = median("nomerge", "live_bytes") / median("nomerge", "slab_bytes")
    printf "| efficiency (live / slab bytes) | %.1f%% | %.1f%% | %.3f |\n", 100 * em, 100 * en, em / en
    row("throughput (Mops/s)", "ops_per_s", 1e6, "%.2f")
    row("peak RSS (MiB)", "maxrss_kb", 1024, "%.1f")
  }' "$tmp/merged" "$tmp/nomerge"
