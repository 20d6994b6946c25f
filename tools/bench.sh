#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/bench.sh: bench_malloc under glibc, jemalloc, mimalloc, tcmalloc and slub, interleaved.
#
#   tools/bench.sh [--quick] [--rounds N] [--filter REGEX] [--out DIR] [--build DIR]
#                  [--min-time SECONDS] [--allocators a,b,...]
#   tools/bench.sh --callgrind [--pairs N] [--out DIR] [--build DIR] [--allocators a,b,...]
#
# Benchmark mode: round r runs build/bench/bench_malloc once per allocator (LD_PRELOAD; glibc
# has none), starting each round one allocator further along the list so that no allocator
# always runs first or last. Then tools/bench_report.py takes the median ns/op of each
# benchmark per allocator and writes results.csv, results.md, samples.csv and plot.dat, and
# gnuplot draws bench.png, all in the output folder (default out/bench). Raw JSON and logs
# are in <out>/raw.
#
# Callgrind mode: instructions per malloc(64)+free pair for each allocator, from
# build/bench/callgrind_pair run under valgrind --tool=callgrind for N and 2N pairs
# ((I(2N) - I(N)) / N); writes callgrind.md and callgrind.csv.
#
# An allocator whose .so is missing is skipped with a note. Exit status: 0, or 1 when the
# slub run failed (crash, non-zero exit, timeout), or 2 for a usage or setup error.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SLUB_BUILD_DIR:-$ROOT/build}
LIBDIR=${SLUB_BENCH_LIBDIR:-/usr/lib/x86_64-linux-gnu}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
OUT=$ROOT/out/bench
ROUNDS=5
MIN_TIME=0.3 # seconds per benchmark per run; the default keeps 5 rounds x 5 allocators ~4 min
FILTER=
MODE=bench
PAIRS=100000
ALLOCATORS=glibc,jemalloc,mimalloc,tcmalloc,slub
RUN_TIMEOUT=${SLUB_BENCH_TIMEOUT:-300} # seconds for one bench_malloc run

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "bench.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) ROUNDS=3; MIN_TIME=0.05 ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --rounds=*) ROUNDS=${1#*=} ;;
    --filter) FILTER=${2?--filter needs a regex}; shift ;;
    --filter=*) FILTER=${1#*=} ;;
    --out) OUT=${2:?--out needs a directory}; shift ;;
    --out=*) OUT=${1#*=} ;;
    --build) BUILD=${2:?--build needs a directory}; shift ;;
    --build=*) BUILD=${1#*=} ;;
    --min-time) MIN_TIME=${2:?--min-time needs seconds}; shift ;;
    --min-time=*) MIN_TIME=${1#*=} ;;
    --allocators) ALLOCATORS=${2:?--allocators needs a list}; shift ;;
    --allocators=*) ALLOCATORS=${1#*=} ;;
    --callgrind) MODE=callgrind ;;
    --pairs) PAIRS=${2:?--pairs needs a number}; shift ;;
    --pairs=*) PAIRS=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds: not a positive number: $ROUNDS"
[[ $PAIRS =~ ^[1-9][0-9]*$ ]] || die "--pairs: not a positive number: $PAIRS"
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)

# The .so for an allocator; empty for glibc (no preload). CMake writes the paths it found
# through pkg-config into build/bench/allocators.env; the Debian paths are the fallback.
so_of() {
  local env_file="$BUILD/bench/allocators.env" found
  if [[ -f $env_file ]] && found=$(grep -m1 "^$1=" "$env_file") && [[ -n ${found#*=} ]]; then
    echo "${found#*=}"
    return 0
  fi
  case $1 in
    glibc) echo "" ;;
    jemalloc) echo "$LIBDIR/libjemalloc.so.2" ;;
    mimalloc) echo "$LIBDIR/libmimalloc.so.2" ;;
    tcmalloc) echo "$LIBDIR/libtcmalloc_minimal.so.4" ;;
    slub) echo "$BUILD/libslub.so" ;;
    *) return 1 ;;
  esac
}

# Builds a bench target if the build folder is configured and the binary is missing.
need_binary() {
  local target=$1 bin=$BUILD/bench/$1
  if [[ ! -x $bin ]]; then
    if [[ -f $BUILD/CMakeCache.txt ]]; then
      echo "bench.sh: building $target in $BUILD" >&2
      cmake --build "$BUILD" --target "$target" >&2 || die "could not build $target"
    fi
  fi
  [[ -x $bin ]] || die "$bin not found; configure and build first:
  cmake -S $ROOT -B $BUILD && cmake --build $BUILD --target $target"
  echo "$bin"
}

# The allocators that will run; a missing .so is skipped with a note.
ACTIVE=()
IFS=, read -r -a WANTED <<<"$ALLOCATORS"
for a in "${WANTED[@]}"; do
  so=$(so_of "$a") || die "unknown allocator: $a (known: glibc jemalloc mimalloc tcmalloc slub)"
  if [[ -n $so && ! -f $so ]]; then
    echo "note: skipping $a: $so not found" >&2
    continue
  fi
  ACTIVE+=("$a")
done
[[ ${#ACTIVE[@]} -gt 0 ]] || die "no allocator to run"

# The env(1) arguments that select an allocator: LD_PRELOAD=its .so, or none for glibc.
env_args() {
  local so
  so=$(so_of "$1")
  if [[ -z $so ]]; then echo "-u LD_PRELOAD"; else echo "LD_PRELOAD=$so"; fi
}
# Runs "$@" with the allocator's LD_PRELOAD (and none for glibc).
with_alloc() {
  local a=$1
  shift
  # shellcheck disable=SC2046 # word splitting intended; .so paths have no spaces
  env $(env_args "$a") "$@"
}

# ------------------------------------------------------------------------------------------
if [[ $MODE == callgrind ]]; then
  command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
  PAIR_BIN=$(need_binary callgrind_pair) || exit 2
  RAW=$OUT/raw
  mkdir -p "$RAW"
  CSV=$RAW/callgrind_counts.csv
  echo "allocator,I_N,I_2N" >"$CSV"
  slub_failed=0
  # valgrind has no rseq, so slub runs its locked paths there; "slub-rseq" counts the rseq
  # sections themselves, emulated (SLUB_RSEQ_EMULATE=1: the same code, no restart).
  RUNS=("${ACTIVE[@]}")
  [[ " ${ACTIVE[*]} " == *" slub "* ]] && RUNS+=(slub-rseq)
  for a in "${RUNS[@]}"; do
    counts=()
    # SLUB_FLUSHER=0, as in tests/perf/fastpath_guard.sh: no service thread, which a slow run
    # (a loaded machine) would start after its first second, and glibc aborts a thread it
    # cannot register with rseq, which it never can under valgrind.
    alloc=$a extra=()
    [[ $a == slub ]] && extra=(SLUB_FLUSHER=0)
    [[ $a == slub-rseq ]] && alloc=slub extra=(SLUB_RSEQ_EMULATE=1 SLUB_FLUSHER=0)
    for n in "$PAIRS" $((2 * PAIRS)); do
      cg=$RAW/callgrind.$a.$n.out
      rm -f "$cg"
      if with_alloc "$alloc" env "${extra[@]}" valgrind --tool=callgrind --toggle-collect=run_pairs \
        --callgrind-out-file="$cg" "$PAIR_BIN" "$n" 64 >"$RAW/callgrind.$a.$n.log" 2>&1 &&
        total=$(awk '/^(summary|totals):/ { print $2; exit }' "$cg" 2>/dev/null) &&
        [[ -n $total ]]; then
        counts+=("$total")
      else
        echo "bench.sh: callgrind run failed for $a (N=$n); log: $RAW/callgrind.$a.$n.log" >&2
        tail -n 20 "$RAW/callgrind.$a.$n.log" >&2
        counts+=("failed")
        [[ $alloc == slub ]] && slub_failed=$n
      fi
    done
    echo "$a,${counts[0]},${counts[1]}" >>"$CSV"
  done
  "$PY" "$ROOT/tools/bench_report.py" callgrind --csv "$CSV" --out "$OUT" --pairs "$PAIRS" \
    --size 64 || exit 2
  if [[ $slub_failed -ne 0 ]]; then
    echo "bench.sh: slub FAILED under callgrind; reproduce with:" >&2
    echo "  LD_PRELOAD=$(so_of slub) valgrind --tool=callgrind --toggle-collect=run_pairs $PAIR_BIN $slub_failed 64" >&2
    exit 1
  fi
  exit 0
fi

# ------------------------------------------------------------------------------------------
BENCH=$(need_binary bench_malloc) || exit 2
RAW=$OUT/raw
rm -rf "$RAW"
mkdir -p "$RAW"

BENCH_ARGS=(--benchmark_min_time="$MIN_TIME")
[[ -n $FILTER ]] && BENCH_ARGS+=(--benchmark_filter="$FILTER")

# After a failed slub run: runs each benchmark alone under slub to name the ones that fail.
locate_slub_failure() {
  local names name rc bad=()
  names=$(env -u LD_PRELOAD "$BENCH" --benchmark_list_tests ${FILTER:+--benchmark_filter="$FILTER"}) ||
    return
  echo "bench.sh: running each benchmark alone under slub to find the failing ones..." >&2
  for name in $names; do
    (timeout -k 10 "$RUN_TIMEOUT" env LD_PRELOAD="$(so_of slub)" "$BENCH" \
      --benchmark_min_time="$MIN_TIME" --benchmark_filter="^${name}\$" \
      >"$RAW/alone_slub_${name//\//_}.log" 2>&1) 2>/dev/null
    rc=$?
    [[ $rc -ne 0 ]] && bad+=("$name (status $rc)")
  done
  if [[ ${#bad[@]} -eq 0 ]]; then
    echo "bench.sh: no benchmark fails alone; the failure needs the whole sequence" >&2
  else
    echo "bench.sh: failing alone under slub: ${bad[*]}" >&2
    echo "  e.g. LD_PRELOAD=$(so_of slub) $BENCH --benchmark_min_time=$MIN_TIME --benchmark_filter='^${bad[0]%% *}\$'" >&2
  fi
}

n=${#ACTIVE[@]}
slub_failed=0
declare -A FAILED=()
note_filter=
[[ -n $FILTER ]] && note_filter=", filter $FILTER"
echo "bench.sh: $ROUNDS rounds of [${ACTIVE[*]}], min_time ${MIN_TIME}s$note_filter; raw output in $RAW" >&2
start=$SECONDS
for ((r = 0; r < ROUNDS; r++)); do
  order=()
  for ((i = 0; i < n; i++)); do order+=("${ACTIVE[$(((i + r) % n))]}"); done
  echo "round $((r + 1))/$ROUNDS: ${order[*]}" >&2
  for a in "${order[@]}"; do
    [[ -n ${FAILED[$a]:-} ]] && continue
    json=$RAW/r${r}_$a.json
    log=$RAW/r${r}_$a.log
    # shellcheck disable=SC2046 # only the benchmark itself runs with the allocator preloaded
    timeout -k 10 "$RUN_TIMEOUT" env $(env_args "$a") "$BENCH" "${BENCH_ARGS[@]}" \
      --benchmark_out="$json" --benchmark_out_format=json >"$log" 2>&1
    rc=$?
    if [[ $rc -ne 0 ]]; then
      FAILED[$a]=$rc
      mv -f "$json" "$json.failed" 2>/dev/null
      what="exit status $rc"
      [[ $rc -gt 128 && $rc -ne 137 ]] && what="killed by signal $((rc - 128))"
      [[ $rc -eq 124 || $rc -eq 137 ]] && what="timed out after ${RUN_TIMEOUT}s"
      echo "bench.sh: $a FAILED in round $((r + 1)) ($what); not run again. Last lines of $log:" >&2
      tail -n 15 "$log" | sed 's/^/    /' >&2
      if [[ $a == slub ]]; then
        slub_failed=1
        echo "bench.sh: reproduce with:" >&2
        echo "  LD_PRELOAD=$(so_of slub) $BENCH ${BENCH_ARGS[*]}" >&2
        locate_slub_failure
      fi
    fi
  done
done
echo "bench.sh: runs took $((SECONDS - start)) s" >&2

"$PY" "$ROOT/tools/bench_report.py" report --raw "$RAW" --out "$OUT" \
  --allocators "$(IFS=,; echo "${ACTIVE[*]}")"
report_rc=$?

if [[ $report_rc -eq 0 ]]; then
  if command -v gnuplot >/dev/null; then
    if gnuplot -e "datafile='$OUT/plot.dat'; outfile='$OUT/bench.png'; nalloc=$n" \
      "$ROOT/tools/plot_bench.gp" 2>"$RAW/gnuplot.log"; then
      echo "bench.sh: wrote $OUT/results.md, results.csv, samples.csv, bench.png" >&2
    else
      echo "bench.sh: gnuplot failed (see $RAW/gnuplot.log); no bench.png" >&2
    fi
  else
    echo "note: gnuplot not found (apt-get install gnuplot-nox); no bench.png" >&2
  fi
fi

[[ $slub_failed -ne 0 ]] && { echo "bench.sh: slub FAILED" >&2; exit 1; }
[[ $report_rc -ne 0 ]] && exit 2
exit 0
