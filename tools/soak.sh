#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/soak.sh: the full soak (bench/soak.cc; docs/RELIABILITY.md), run outside CI.
#
#   tools/soak.sh [--out DIR] [--png FILE] [--build DIR] [-- SOAK ARGS...]
#
# Builds the `soak` target in build/ (configuring it if needed), runs
#   soak --ops 100000000 --threads 16 --seconds 600 --rss-log <out>/rss.csv SOAK ARGS...
# (later arguments win, e.g. `tools/soak.sh -- --ops 20000000`), keeps its output in
# <out>/soak.txt, plots RSS, live bytes and the RSS bound over time with gnuplot (pngcairo) into
# docs/img/soak_rss.png, and prints a summary. The output folder defaults to out/soak.
# The run is capped at 600 s by soak itself and at 720 s by timeout(1).
# Exit status: soak's (0 ok; see bench/soak.cc), or 2 for a usage or build error.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SLUB_BUILD_DIR:-$ROOT/build}
OUT=$ROOT/out/soak
PNG=$ROOT/docs/img/soak_rss.png

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "soak.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --png) PNG=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (soak's own arguments go after --)" ;;
  esac
done

mkdir -p "$OUT" "$(dirname "$PNG")" || die "cannot create $OUT"
echo "soak.sh: building the soak target in $BUILD"
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/build.log" 2>&1 ||
    { cat "$OUT/build.log" >&2; die "configure failed"; }
else
  # A cheap re-configure makes sure the target is known in an older build tree.
  cmake -S "$ROOT" -B "$BUILD" >"$OUT/build.log" 2>&1 ||
    { cat "$OUT/build.log" >&2; die "configure failed"; }
fi
cmake --build "$BUILD" --target soak -j"$(nproc)" >>"$OUT/build.log" 2>&1 ||
  { tail -n 40 "$OUT/build.log" >&2; die "build failed (log: $OUT/build.log)"; }

SOAK=$BUILD/bench/soak
CSV=$OUT/rss.csv
echo "soak.sh: $SOAK --ops 100000000 --threads 16 --seconds 600 --rss-log $CSV $*"
timeout -k 10 720 "$SOAK" --ops 100000000 --threads 16 --seconds 600 --rss-log "$CSV" "$@" \
  2>&1 | tee "$OUT/soak.txt"
rc=${PIPESTATUS[0]}

result=$(grep '^RESULT ' "$OUT/soak.txt" | tail -n 1)
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

if [[ -s $CSV ]] && command -v gnuplot >/dev/null 2>&1; then
  title="slub soak: $(awk -v o="$(field ops)" 'BEGIN { printf "%.0fM", o / 1e6 }') ops, $(field threads) threads, $(awk -v r="$(field ops_per_s)" 'BEGIN { printf "%.2fM", r / 1e6 }') ops/s, $(nproc) CPUs"
  gnuplot <<EOF || echo "soak.sh: gnuplot failed; no plot" >&2
set terminal pngcairo size 1200,600 enhanced font "sans,10"
set output "$PNG"
set title "$title" noenhanced
set datafile separator ","
set key top left noenhanced
set xlabel "seconds"
set ylabel "MiB"
set y2label "million operations done"
set ytics nomirror
set y2tics
set grid
set yrange [0:*]
set y2range [0:*]
plot "$CSV" using 1:(\$5/1048576) every ::1 with lines lw 1 dt 2 lc rgb "#c00000" title "RSS bound (3 x peak live + 64 MiB)", \
     "$CSV" using 1:(\$2/1048576) every ::1 with lines lw 2 lc rgb "#0050c0" title "RSS", \
     "$CSV" using 1:(\$3/1048576) every ::1 with lines lw 2 lc rgb "#20a020" title "live bytes (requested)", \
     "$CSV" using 1:(\$6/1e6) every ::1 axes x1y2 with lines lw 1 lc rgb "#909090" title "operations (right axis)"
EOF
  [[ -s $PNG ]] && echo "soak.sh: plot written to $PNG"
else
  echo "soak.sh: no RSS log or no gnuplot; no plot" >&2
fi

echo
echo "== soak summary =="
if [[ -n $result ]]; then
  printf '  status        %s (exit %s), complete=%s\n' "$(field status)" "$rc" "$(field complete)"
  printf '  operations    %s in %s s: %s ops/s, %s threads\n' "$(field ops)" "$(field seconds)" \
    "$(field ops_per_s)" "$(field threads)"
  printf '  RSS           peak %s MiB, at the end %s MiB, after settling %s MiB (start %s MiB)\n' \
    "$(mib "$(field peak_rss)")" "$(mib "$(field rss_end)")" "$(mib "$(field rss_settled)")" \
    "$(mib "$(field rss_start)")"
  printf '  live bytes    peak %s MiB, at the end %s bytes\n' "$(mib "$(field peak_live)")" \
    "$(field live_end)"
  printf '  RSS bound     %s x peak live + %s MiB = %s MiB; closest sample at %s of it\n' \
    "$(field rss_factor)" "$(field rss_slack_mb)" "$(mib "$(field bound)")" \
    "$(field worst_rss_to_bound)"
  printf '  churn         %s threads started, %s forks (%s ok), %s cross-thread frees, %s orphans adopted\n' \
    "$(field threads_started)" "$(field forks)" "$(field forks_ok)" "$(field cross_freed)" \
    "$(field adopted)"
  printf '  files         %s, %s, %s\n' "$CSV" "$OUT/soak.txt" "$PNG"
else
  echo "  soak printed no RESULT line (exit $rc); see $OUT/soak.txt"
fi
exit "$rc"
