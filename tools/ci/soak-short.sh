#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/ci/soak-short.sh: the short soak that `tools/slub test` runs (the full one is
# tools/soak.sh; docs/RELIABILITY.md). Builds bench/soak in its own folder (build-ci/soak,
# Release, tests off), then:
#   1. checks that the detectors work: a flipped byte must end in status 1 (content mismatch),
#      a fork child that hangs in status 3, an impossible RSS bound in status 4;
#   2. runs 20 million operations on 8 threads with a fork every 100 ms and live memory in
#      3-second waves (60 s cap); any failure (content, fork child, RSS bound, hang) fails;
#   3. runs 1 million operations on 4 threads under SLUB_DEBUG=FZP (every cache checked by the
#      allocator's debug mode: red zones, poison, consistency); any debug report fails.
# About 20 s after the build on 2 CPUs; every run is bounded by timeout(1).
# Exit status 0 on success, 1 on a failure. Logs stay in build-ci/soak/logs.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${SLUB_CI_SOAK_BUILD:-$ROOT/build-ci/soak}
LOGS=$BUILD/logs
mkdir -p "$LOGS"

fail() { echo "soak-short: FAIL: $*" >&2; exit 1; }

t0=$SECONDS
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSLUB_BUILD_TESTS=OFF \
    >"$LOGS/build.log" 2>&1 || { cat "$LOGS/build.log" >&2; fail "configure failed"; }
else
  cmake -S "$ROOT" -B "$BUILD" >"$LOGS/build.log" 2>&1 ||
    { cat "$LOGS/build.log" >&2; fail "configure failed"; }
fi
cmake --build "$BUILD" --target soak -j"$(nproc)" >>"$LOGS/build.log" 2>&1 ||
  { tail -n 40 "$LOGS/build.log" >&2; fail "build failed (log: $LOGS/build.log)"; }
SOAK=$BUILD/bench/soak
echo "soak-short: built $SOAK in $((SECONDS - t0)) s"

# expect STATUS NAME ARGS...: runs soak (bounded) and checks its exit status.
expect() {
  local want=$1 name=$2
  shift 2
  local rc=0 t=$SECONDS
  timeout -k 5 90 "$SOAK" --quiet --settle 0 "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
  if ((rc != want)); then
    tail -n 30 "$LOGS/$name.log" >&2
    echo "  reproduce: $SOAK $*" >&2
    fail "$name: soak exited with $rc, expected $want (log: $LOGS/$name.log)"
  fi
  echo "soak-short: ok: $name (exit $rc as expected, $((SECONDS - t)) s)"
}

# 1. The detectors.
expect 1 detect-corruption --ops 200000 --threads 4 --inject corrupt
expect 3 detect-hung-child --ops 50000000 --threads 2 --seconds 30 --fork-ms 50 \
  --child-timeout 2 --inject hang-child
expect 4 detect-rss-bound --ops 2000000 --threads 2 --rss-factor 1 --rss-slack-mb 0

# 2. The short soak.
expect 0 soak --ops 20000000 --threads 8 --seconds 60 --fork-ms 100 --period 3 \
  --rss-log "$LOGS/rss.csv"
grep '^RESULT' "$LOGS/soak.log" | sed 's/^/soak-short: /'
grep -q '^RESULT .* complete=1 ' "$LOGS/soak.log" ||
  echo "soak-short: note: the time cap stopped the soak before all operations were done"

# 3. The same under the allocator's debug mode.
SLUB_DEBUG=FZP expect 0 soak-debug --ops 1000000 --threads 4 --seconds 40 --fork-ms 200
echo "soak-short: passed in $((SECONDS - t0)) s"
