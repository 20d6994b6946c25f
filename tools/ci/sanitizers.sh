#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/ci/sanitizers.sh: the allocator's own tests (tests/unit, tests/func, tests/merge: the
# ones linked with libslub.a) built and run under ThreadSanitizer, UndefinedBehaviorSanitizer
# and the lock checker (a Debug build: SLUB_LOCKDEP, src/base/lock_rank.h), each in its own
# build folder (build-tsan, build-ubsan, build-lockdep). Run by `tools/slub test` after the
# normal tests, or alone. Exits non-zero if a build fails, a test fails or a checker reports.
#
#   SANITIZERS="tsan ubsan lockdep"  which stages to run (default all three)
#   JOBS=2                           build jobs
#
# Not run here, on purpose:
#   - tests that load libslub.so with LD_PRELOAD (func.preload, func.debug_fzpu.preload, the
#     integration and slabinfo tests): a sanitizer's runtime intercepts malloc itself, and a
#     preloaded allocator does not combine with it. Their executables are not even built.
#   - the benchmarks (SLUB_BUILD_BENCH=OFF).
# Under TSan a few gtest cases and one ctest entry are left out as well (TSAN_SKIP and
# TSAN_EXCLUDE below, with the reasons).
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
JOBS="${JOBS:-2}"
read -r -a STAGES <<<"${SANITIZERS:-tsan ubsan lockdep}"

TEST_DIRS=(tests/unit tests/func tests/merge)
LABELS='^(unit|func|merge)$'
# ctest names: nothing preloaded is built anyway; unit.unaligned_mmap.* preload a shim whose
# mmap would stand in front of the sanitizer's own (and they rerun tests that run here anyway).
EXCLUDE='preload|integration|unaligned_mmap'

# gtest cases that cannot run under ThreadSanitizer. Passed as GTEST_FILTER, which applies both
# to ctest's test discovery (--gtest_list_tests) and to the ctest entries that run a whole
# executable (func.debug_fzp.stress_test); the discovered per-case entries are then absent.
#   StressFork.ForkWhileOtherThreadsAllocate, Hardening.OutOfAddressSpaceFailsCleanlyAndRecovers:
#     they fork a multi-threaded process (the flusher thread at least) and the child starts
#     threads (its own flusher, the test's thread): TSan does not support that and kills the
#     child ("starting new threads after multi-threaded fork is not supported"). The second
#     also sets RLIMIT_AS, which TSan's shadow reservations do not fit under.
#   Stats.AForkChildMakesItsAreaAfterItsFirstSecond: the same (the child starts its flusher).
#   Hardening.AHugeFirstRequestStartsTheAllocator: forks and sets RLIMIT_AS, as the second.
#   DebugFork.ForkWhileAnotherThreadReportsAndTracks: forks 200 times while a second thread runs;
#     each child's slow paths may start its own service thread, as in the first.
#   Oom.FullCpuAreasFailCreateWithOneLine: fills the CPU areas in a child, whose cache creations
#     may start its service thread, as in the first.
TSAN_SKIP='StressFork.ForkWhileOtherThreadsAllocate:Hardening.OutOfAddressSpaceFailsCleanlyAndRecovers:Stats.AForkChildMakesItsAreaAfterItsFirstSecond:Hardening.AHugeFirstRequestStartsTheAllocator:DebugFork.ForkWhileAnotherThreadReportsAndTracks:Oom.FullCpuAreasFailCreateWithOneLine'
# ctest entries left out under TSan only, for time (the stage must stay within ~6 minutes on a
# 2-core machine):
#   func.debug_fzpu.malloc_api_test: the malloc API tests again with every debug check; they
#     are single-threaded (only the flusher runs beside them), so there is little for TSan to
#     find, and U (an unwind per operation) makes them take 36 s under TSan. They still run
#     under UBSan, and func.debug_fzp.stress_test (threads + debug caches) runs under both.
TSAN_EXCLUDE="$EXCLUDE|^func\.debug_fzpu\.malloc_api_test\$"

say() { printf '%s\n' "$*"; }
die() {
  printf 'sanitizers: %s\n' "$*" >&2
  exit 1
}

# The test executables of TEST_DIRS, from each folder's generated Makefile, less the preloaded
# ones. New tests are picked up without editing this script.
test_targets() {
  local dir="$1" d
  for d in "${TEST_DIRS[@]}"; do
    make -s -C "$dir/$d" help | sed -n 's/^\.\.\. \([A-Za-z0-9_]*\)$/\1/p' |
      grep -vxE 'all|clean|depend|edit_cache|rebuild_cache|test|install.*|list_install_components' |
      grep -v preload || true
  done
}

# build <folder> <flags> [cmake args] [build type]: configures and builds the test
# executables (RelWithDebInfo unless told); the log is shown only on failure.
build() {
  local dir="$ROOT/$1" flags="$2" extra="${3:-}" type="${4:-RelWithDebInfo}" targets
  local log="$dir/sanitizers-build.log"
  mkdir -p "$dir"
  {
    cmake -S "$ROOT" -B "$dir" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE="$type" \
      -DSLUB_BUILD_TESTS=ON -DSLUB_BUILD_BENCH=OFF $extra \
      "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" \
      "-DCMAKE_EXE_LINKER_FLAGS=$flags" "-DCMAKE_SHARED_LINKER_FLAGS=$flags" &&
      mapfile -t targets < <(test_targets "$dir") &&
      ((${#targets[@]} > 0)) &&
      echo "targets: ${targets[*]}" &&
      cmake --build "$dir" -j"$JOBS" --target "${targets[@]}"
  } >"$log" 2>&1 || {
    cat "$log" >&2
    die "$1: build failed (log: $log)"
  }
}

# run_tests <folder> <exclude regex> [VAR=value...]: ctest on the unit, func and merge labels.
run_tests() {
  local dir="$ROOT/$1" exclude="$2"
  shift 2
  env "$@" ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 \
    -L "$LABELS" -E "$exclude"
}

stage() {
  local name="$1" t0 t1
  t0=$SECONDS
  case "$name" in
    tsan)
      build build-tsan "-fsanitize=thread"
      t1=$SECONDS
      say "build-tsan: built in $((t1 - t0)) s"
      # atexit_sleep_ms: TSan keeps the main thread 1 s at exit (by default) while other
      # threads run, to catch races with exit; the flusher thread is alive in most of the ~115
      # processes, so that second alone costs about 35 s of this stage. 200 ms still lets the
      # flusher be caught touching what the exit-time destructor releases some of the time.
      local opts="halt_on_error=1 second_deadlock_stack=1 atexit_sleep_ms=200"
      [[ -f "$ROOT/tools/ci/tsan.supp" ]] && opts+=" suppressions=$ROOT/tools/ci/tsan.supp"
      run_tests build-tsan "$TSAN_EXCLUDE" "TSAN_OPTIONS=$opts" "GTEST_FILTER=-$TSAN_SKIP" ||
        die "ThreadSanitizer stage failed (build-tsan)"
      ;;
    ubsan)
      # With encoded free pointers (off by default for speed), so that their code and
      # Hardening.FreePointersAreStoredEncoded run in CI.
      build build-ubsan "-fsanitize=undefined -fno-sanitize-recover=undefined" \
        "-DSLUB_FREELIST_HARDENED=ON"
      t1=$SECONDS
      say "build-ubsan: built in $((t1 - t0)) s"
      run_tests build-ubsan "$EXCLUDE" "UBSAN_OPTIONS=halt_on_error=1 print_stacktrace=1" ||
        die "UndefinedBehaviorSanitizer stage failed (build-ubsan)"
      ;;
    lockdep)
      # Debug (-O0, frame pointers): every lock operation goes through the checker, which
      # aborts on a lock taken against the order or released without being held. No runtime
      # intercepts mmap here, so the unaligned-mmap shim's entries run too; the preloaded
      # tests are not built (test_targets leaves them out for every flavour).
      build build-lockdep "" "-DSLUB_LOCKDEP=ON" Debug
      grep -qx 'SLUB_LOCKDEP:BOOL=ON' "$ROOT/build-lockdep/CMakeCache.txt" ||
        die "build-lockdep: configured without the lock checker"
      t1=$SECONDS
      say "build-lockdep: built in $((t1 - t0)) s"
      run_tests build-lockdep 'preload|integration' || die "lock checker stage failed (build-lockdep)"
      ;;
    *) die "unknown stage '$name' (SANITIZERS: tsan, ubsan, lockdep)" ;;
  esac
  say "$name: tests ran in $((SECONDS - t1)) s"
}

for s in "${STAGES[@]}"; do
  stage "$s"
done
say "sanitizers: passed (${STAGES[*]})"
