#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# python3's own regression tests (Debian's libpython3.11-testsuite) for dicts, lists, sets,
# strings, str (test_unicode: 3.11 has no test_str), threading and gc, run by `python3 -m test`
# plain and with the preload library. PYTHONMALLOC=malloc in both runs sends every object
# through malloc instead of pymalloc's arenas, so the allocator sees all of python's traffic;
# a third run keeps python's default (pymalloc, which takes only big blocks from malloc).
# The regrtest workers and the subprocesses the tests start (test_threading forks and runs
# child interpreters) inherit LD_PRELOAD.
#
# The per-test verdicts ("test_dict passed", ...) and the summary must be the same as in the
# plain run, which must itself be "Tests result: SUCCESS". Each test gets at most 120 s
# (--timeout; plain runs take 1-15 s each on 2 CPUs): a test that hangs under the preload
# library fails here instead of running into python's own 5-minute wait_process timeout,
# which would let it pass late. Every run is capped at 300 s.
# Tests failing even without preload are excluded below, with the reason (none on Debian 12's
# python3.11 3.11.2: all 7 pass plain).
# usage: python3_regrtest.sh PATH/TO/libslub.so
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PY=/usr/bin/python3
need "$PY" timeout
"$PY" -c 'import test.libregrtest' 2>/dev/null || {
  echo "SKIP: python3's test package is not installed (Debian: libpython3.11-testsuite)" >&2
  exit 77
}
TESTS=(test_dict test_list test_set test_string test_unicode test_threading test_gc)
for t in "${TESTS[@]}"; do
  "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('test.$t') is None)" ||
    fail "python3 has no test.$t; update TESTS"
done
check_preload
cd "$TMP"

# regrtest prints a clock and the load average on each line; keep the verdicts and the summary.
normalize() {
  sed -nE \
    -e 's/^[0-9:]+ load avg: [0-9.]+ \[ *[0-9]+\/[0-9]+(\/[0-9]+)?\] (test_[a-z_]+ .*)$/\2/p' \
    -e '/^== Tests result/,/^Tests result/{/^Total duration/d;/^$/d;p}' "$1" |
    sed -E 's/ \(([0-9]+ min )?[0-9.]+ (sec|ms)\)$//'
}

# regrtest and the tests work in temporary folders under $TMP/py: a process still running in one
# after a run was left behind (e.g. a forked child that never ends); it is killed, and the run
# fails when that happens under the preload library only.
export TMPDIR=$TMP/py
mkdir -p "$TMPDIR"
# (A process whose main thread has exited is a zombie with no cwd: its threads' are read.)
left_behind() {
  local p t cwd found=()
  for p in /proc/[0-9]*; do
    for t in "$p" "$p"/task/*; do
      cwd=$(readlink "$t/cwd" 2>/dev/null) && break
    done
    [[ $cwd == "$TMPDIR"/* ]] || continue
    found+=("${p#/proc/}")
    echo "  left behind: pid ${p#/proc/}, state $(awk '{print $3}' "$p/stat" 2>/dev/null)," \
      "threads $(for t in "$p"/task/*; do printf '%s(%s) ' "${t##*/}" "$(cat "$t/comm")"; done)" \
      "cmd: $(tr '\0\n' '  ' <"$p/cmdline" 2>/dev/null | tr -s ' ' | cut -c1-80)" >&2
  done
  ((${#found[@]} == 0)) && return 1
  kill -9 "${found[@]}" 2>/dev/null || true
  return 0
}

# When a preloaded run fails, which tests and where (regrtest reports on stdout).
show_failures() {
  local f
  for f in "$TMP"/regrtest.slub.out "$TMP"/pymalloc.slub.out; do
    if [[ ! -s $f ]] || grep -qx 'Tests result: SUCCESS' "$f"; then continue; fi
    echo "--- regrtest's report in $f (failures, timeouts, innermost test frames) ---" >&2
    grep -E '\] test_[a-z_]+ (failed|crashed)|^Timeout|^(FAIL|ERROR):|File ".*/test/test_[a-z_]+\.py", line [0-9]+ in test_' \
      "$f" | head -n 30 >&2
  done
}
# Also when a run fails (run_pair exits): nothing may outlive the test.
trap 'show_failures; left_behind || true; cleanup' EXIT

REGRTEST=("$PY" -m test -j1 --timeout 120 "${TESTS[@]}")
run_pair regrtest env PYTHONMALLOC=malloc timeout -k 10 300 "${REGRTEST[@]}"
left_behind && fail "regrtest: processes were still running after the runs (listed above; killed)"
grep -qx 'Tests result: SUCCESS' "$TMP/regrtest.plain.out" ||
  fail "the plain run did not end with 'Tests result: SUCCESS'; the test list needs an exclusion"
normalize "$TMP/regrtest.plain.out" >"$TMP/regrtest.plain.norm"
normalize "$TMP/regrtest.slub.out" >"$TMP/regrtest.slub.norm"
grep -q 'passed' "$TMP/regrtest.plain.norm" || fail "could not read regrtest's verdicts"
compare_outputs regrtest "$TMP/regrtest.plain.norm" "$TMP/regrtest.slub.norm"

# Python's default allocator (pymalloc) under the preload library, against the same verdicts.
rc=0
LD_PRELOAD="$PRELOAD" timeout -k 10 300 "${REGRTEST[@]}" </dev/null >"$TMP/pymalloc.slub.out" \
  2>"$TMP/pymalloc.slub.err" || rc=$?
if ((rc != 0)); then
  tail -n 40 "$TMP/pymalloc.slub.out" "$TMP/pymalloc.slub.err" >&2
  repro timeout -k 10 300 "${REGRTEST[@]}"
  fail "pymalloc: the preloaded run exited with $(describe_status "$rc")"
fi
left_behind && fail "pymalloc: processes were still running after the run (listed above; killed)"
cp "$TMP/regrtest.plain.err" "$TMP/pymalloc.plain.err"
check_new_stderr pymalloc timeout -k 10 300 "${REGRTEST[@]}"
normalize "$TMP/pymalloc.slub.out" >"$TMP/pymalloc.slub.norm"
compare_outputs pymalloc "$TMP/regrtest.plain.norm" "$TMP/pymalloc.slub.norm"
