#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/ci/fuzz.sh: builds the libFuzzer targets of tests/fuzz with clang into build-fuzz/ and
# runs each for a bounded time on a copy of its seed corpus (tests/fuzz/corpus/<target>/; the
# copy may grow, the repository's corpus does not). Run by `tools/slub test` after the normal
# tests, or alone. Exits non-zero if the build fails, a known crash input (tests/fuzz/crashes/)
# still crashes, or a target finds a crash, a timeout or an out-of-memory.
# Skips (exit 0) only when clang or libFuzzer is not installed.
#
#   FUZZ_SECONDS=40      seconds per target (0: build and replay the corpora only)
#   FUZZ_TARGETS="..."   which targets (default: fuzz_malloc fuzz_cache fuzz_malloc_debug)
#   FUZZ_KEEP_CORPUS=1   keep build-fuzz/corpus-run/ from the last run instead of a fresh copy
#   FUZZ_BUILD_DIR=...   build folder (default build-fuzz/); one run at a time per folder
#   JOBS=2               build jobs
#
# A finding leaves under build-fuzz/findings/<target>/: the crash input, the run's log, and
# fuzz-history-<pid>/, the inputs the process ran before it (the allocator keeps state across
# inputs; replay them in order when the crash input alone does not reproduce). Reproduce with
#   build-fuzz/<target> <crash file>          (FUZZ_TRACE=1 prints every operation)
# and shrink with  build-fuzz/<target> -minimize_crash=1 -runs=2000 <crash file>.
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${JOBS:-2}"
SECS="${FUZZ_SECONDS:-40}"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-fuzz_malloc fuzz_cache fuzz_malloc_debug}"
FUZZ_FLAGS=(-timeout=10 -rss_limit_mb=2048 -max_len=1024 -print_final_stats=1)

say() { printf 'fuzz: %s\n' "$*"; }
die() {
  printf 'fuzz: FAILED: %s\n' "$*" >&2
  exit 1
}

skip() {
  local ver
  ver="$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)"
  say "SKIPPED: $*"
  say "install clang and libFuzzer with: sudo apt-get install -y clang libclang-rt-${ver:-14}-dev"
  exit 0
}

[[ "$SECS" =~ ^[0-9]+$ ]] || die "FUZZ_SECONDS must be a number of seconds, not '$SECS'"

# ---- toolchain --------------------------------------------------------------------------------
command -v clang >/dev/null && command -v clang++ >/dev/null || skip "clang/clang++ not found"
command -v cmake >/dev/null || die "cmake not found"
mkdir -p "$BUILD/probe"
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
  >"$BUILD/probe/probe.cc"
if ! clang++ -fsanitize=fuzzer "$BUILD/probe/probe.cc" -o "$BUILD/probe/probe" \
  >"$BUILD/probe/log" 2>&1; then
  sed 's/^/  /' "$BUILD/probe/log" | tail -5
  skip "clang++ cannot link a libFuzzer program (libFuzzer runtime missing)"
fi

# One run at a time in a build folder: a second one would rebuild under the first and write
# into its logs.
exec 9>"$BUILD/.fuzz.lock"
if ! flock -n 9; then
  say "another fuzz.sh run uses $BUILD; waiting for it"
  flock 9
fi

# ---- build ------------------------------------------------------------------------------------
log="$BUILD/fuzz-build.log"
start=$SECONDS
if ! {
  cmake -S "$ROOT/tests/fuzz" -B "$BUILD" -G "Unix Makefiles" \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ &&
    cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}"
} >"$log" 2>&1; then
  cat "$log" >&2
  die "build failed (log: $log)"
fi
say "built ${TARGETS[*]} in $((SECONDS - start)) s (clang $(clang -dumpversion), -fsanitize=fuzzer,undefined)"

failures=()
rm -rf "$BUILD/findings" "$BUILD"/run/*/fuzz-history-*

# record_finding <target> <log> <what>: keeps the crash input, the log and the input history.
record_finding() {
  local t="$1" runlog="$2" what="$3" dir="$BUILD/findings/$1" crash
  mkdir -p "$dir"
  cp "$runlog" "$dir/"
  crash="$(grep -a 'Test unit written to ' "$runlog" | tail -1 | sed 's/.*Test unit written to //' || true)"
  [[ -n "$crash" && -f "$crash" ]] && cp "$crash" "$dir/"
  local h
  for h in "$BUILD/run/$t"/fuzz-history-*; do [[ -d "$h" ]] && cp -r "$h" "$dir/"; done
  grep -a -E '==fuzz==|^slub:|SUMMARY|runtime error' "$runlog" | head -12 | sed 's/^/  /' >&2 || true
  failures+=("$t: $what${crash:+: crash input $crash}; log and history in $dir/")
}

# ---- known crash inputs ------------------------------------------------------------------------
# tests/fuzz/crashes/<target>/ holds the reproducers of bugs the fuzzer found: each must run
# clean once its bug is fixed.
for t in "${TARGETS[@]}"; do
  crashes=("$ROOT/tests/fuzz/crashes/$t"/*)
  [[ -e "${crashes[0]}" ]] || continue
  mkdir -p "$BUILD/run/$t"
  runlog="$BUILD/run/$t/replay.log"
  if (cd "$BUILD/run/$t" && FUZZ_HISTORY=0 "$BUILD/$t" -artifact_prefix="$BUILD/run/$t/" \
    "${crashes[@]}") >"$runlog" 2>&1; then
    say "$t: ${#crashes[@]} known crash input(s) from tests/fuzz/crashes/$t/ run clean"
  else
    record_finding "$t" "$runlog" "a known crash input (tests/fuzz/crashes/$t/) still crashes"
  fi
done

# ---- fuzzing ----------------------------------------------------------------------------------
for t in "${TARGETS[@]}"; do
  seeds="$ROOT/tests/fuzz/corpus/$t"
  corpus="$BUILD/corpus-run/$t"
  [[ -d "$seeds" ]] || die "no seed corpus $seeds"
  if [[ "${FUZZ_KEEP_CORPUS:-0}" != 1 || ! -d "$corpus" ]]; then
    rm -rf "$corpus"
    mkdir -p "$corpus"
    cp "$seeds"/* "$corpus/"
  fi
  rm -rf "$BUILD/run/$t"/fuzz-history-*
  mkdir -p "$BUILD/run/$t"
  runlog="$BUILD/run/$t/fuzz.log"
  if ((SECS == 0)); then
    args=(-runs=0)
  else
    args=(-max_total_time="$SECS")
  fi
  start=$SECONDS
  rc=0
  (cd "$BUILD/run/$t" && "$BUILD/$t" "${FUZZ_FLAGS[@]}" "${args[@]}" \
    -artifact_prefix="$BUILD/run/$t/" "$corpus") >"$runlog" 2>&1 || rc=$?
  modules="$(grep -a -m1 'inline 8-bit counters' "$runlog" | sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' || true)"
  final="$(grep -a -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$runlog" | tail -1 || true)"
  rate="$(grep -a '^stat::average_exec_per_sec:' "$runlog" | tail -1 | tr -dc '0-9' || true)"
  say "$t: $((SECONDS - start)) s, ${rate:-?} exec/s, edges of ${modules:-?}: ${final:-no stats line}"
  if ((rc != 0)); then
    what="exit status $rc"
    grep -aq 'ERROR: libFuzzer: timeout' "$runlog" && what="timeout (an input ran over 10 s)"
    grep -aq 'out-of-memory' "$runlog" && what="out of memory (over 2048 MB)"
    grep -aq 'deadly signal\|runtime error' "$runlog" && what="crash"
    record_finding "$t" "$runlog" "$what"
  fi
done

if ((${#failures[@]} > 0)); then
  printf 'fuzz: FAILED: %s\n' "${failures[@]}" >&2
  exit 1
fi
say "no findings"
