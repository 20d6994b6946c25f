#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.cli: the command lines of harness, soak, bench_numa and bench_merge (bench/cli.h).
# Every mistake (a bad number, an unknown option, a missing value, an operand too many) must
# exit with status 2 and print exactly one line on stderr, "PROG: ..." naming the option and the
# value given; --help must print the usage on stdout and exit 0; valid values must be taken
# (a tiny run of bench_numa, soak and bench_merge, and SLUB_NOMERGE spelled "yes" read as the
# library reads it). No timing.
# usage: cli_test.sh BIN_DIR CSV     (BIN_DIR: build/bench)
set -uo pipefail
[[ $# -eq 2 && -d $1 && -f $2 ]] || { echo "usage: $0 BIN_DIR CSV" >&2; exit 2; }
BIN=$1
CSV=$2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/slub-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
checks=0    # checks run
failures=0  # of them, those with a problem
problems=0  # FAIL lines so far

bad() { echo "FAIL: $*" >&2; problems=$((problems + 1)); }

# check FUNCTION ARGS...: one check; it failed if it printed a FAIL line.
check() {
  local before=$problems
  checks=$((checks + 1))
  "$@"
  ((problems == before)) || failures=$((failures + 1))
}

# expect_error PROG "WORD..." ARGS...: PROG ARGS exits 2 with one line on stderr that starts
# with "PROG: " and contains every WORD (space-separated; each as a fixed string).
expect_error() {
  local prog=$1 words=$2
  shift 2
  local rc=0
  timeout 20 "$BIN/$prog" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
  local what="$prog $*"
  if ((rc != 2)); then
    bad "$what: exit status $rc, expected 2 (stderr: $(head -c 300 "$TMP/err"))"
    return
  fi
  local lines
  lines=$(wc -l <"$TMP/err")
  if ((lines != 1)); then
    bad "$what: $lines lines on stderr, expected 1:"$'\n'"$(cat "$TMP/err")"
    return
  fi
  local line
  line=$(cat "$TMP/err")
  [[ $line == "$prog: "* ]] || bad "$what: stderr does not start with '$prog: ': $line"
  local w
  for w in $words; do
    [[ $line == *"$w"* ]] || bad "$what: stderr does not name '$w': $line"
  done
  [[ -s $TMP/out ]] && bad "$what: printed on stdout: $(head -c 200 "$TMP/out")"
}

# expect_help PROG: --help and -h print "usage: PROG" on stdout, nothing on stderr, exit 0.
expect_help() {
  local prog=$1 flag
  for flag in --help -h; do
    local rc=0
    "$BIN/$prog" "$flag" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
    ((rc == 0)) || bad "$prog $flag: exit status $rc, expected 0"
    grep -q "^usage: $prog" "$TMP/out" || bad "$prog $flag: no 'usage: $prog' on stdout"
    [[ -s $TMP/err ]] && bad "$prog $flag: printed on stderr: $(cat "$TMP/err")"
  done
}

# expect_ok "GREP" PROG ARGS...: exits 0 and stdout matches the extended regex GREP.
expect_ok() {
  local pattern=$1 prog=$2
  shift 2
  local rc=0
  timeout 60 "$BIN/$prog" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
  if ((rc != 0)); then
    bad "$prog $*: exit status $rc, expected 0 (stderr: $(head -c 300 "$TMP/err"))"
    return
  fi
  grep -Eq -- "$pattern" "$TMP/out" || bad "$prog $*: stdout does not match '$pattern'"
}

for p in harness soak bench_numa bench_merge; do
  [[ -x $BIN/$p ]] || { echo "FAIL: $BIN/$p not built" >&2; exit 1; }
done

# ---- harness
check expect_error harness "--cpus -1 16..4096" --cpus -1
check expect_error harness "--cpus abc" --cpus abc
check expect_error harness "--cpus 99999999999999999999" --cpus 99999999999999999999
check expect_error harness "--cpus 64x" --cpus 64x
check expect_error harness "--ops 1e3" --ops 1e3
check expect_error harness "--seed -1" --seed -1
check expect_error harness "--idle-secs nan" --idle-secs nan
check expect_error harness "--budget-gib inf" --budget-gib inf
check expect_error harness "--budget-gib abc" --budget-gib abc
check expect_error harness "--allocator slob" --allocator slob
check expect_error harness "--workload nosuch" --workload nosuch
check expect_error harness "--nodes 32 --cpus" --cpus 16 --nodes 32
check expect_error harness "--no-such-option" --no-such-option
check expect_error harness "--check takes no value" --check=yes
check expect_error harness "--cpus needs a value" --cpus
check expect_error harness "--json needs a value" --json
check expect_error harness "stray" stray
check expect_help harness

# ---- soak
check expect_error soak "--threads 99999999999999999999 1..256" --threads 99999999999999999999
check expect_error soak "--threads 0" --threads 0
check expect_error soak "--ops abc" --ops abc
check expect_error soak "--ops -5" --ops -5
check expect_error soak "--seed 18446744073709551616" --seed 18446744073709551616
check expect_error soak "--seconds inf" --seconds inf
check expect_error soak "--period 0" --period 0
check expect_error soak "--inject nothing" --inject nothing
check expect_error soak "--no-such-option" --no-such-option
check expect_error soak "--settle needs a value" --quiet --settle
check expect_help soak

# ---- bench_numa
check expect_error bench_numa "--rounds abc 1..1000000" --rounds abc
check expect_error bench_numa "--rounds 0" --rounds 0
check expect_error bench_numa "--rounds -1" --rounds -1
check expect_error bench_numa "--objects 99999999999999999999" --objects 99999999999999999999
check expect_error bench_numa "--objects 10" --objects 10
check expect_error bench_numa "--no-such-option" --no-such-option
check expect_error bench_numa "--rounds needs a value" --rounds
check expect_error bench_numa "--topology needs a value" --topology
check expect_help bench_numa

# ---- bench_merge (operands: CSV [OPS [LIVE [SEED]]])
check expect_error bench_merge "CSV" # no operand
check expect_error bench_merge "OPS abc" "$CSV" abc
check expect_error bench_merge "OPS 0" "$CSV" 0
check expect_error bench_merge "LIVE -1" "$CSV" 1000 -1
check expect_error bench_merge "SEED 99999999999999999999" "$CSV" 1000 100 99999999999999999999
check expect_error bench_merge "unexpected extra" "$CSV" 1 1 1 extra
check expect_error bench_merge "--no-such-option" --no-such-option "$CSV"
check expect_help bench_merge

# ---- valid values are taken (tiny runs, nothing timed)
check expect_ok '^bench_numa: .*1 rounds, 256 objects' bench_numa --rounds 1 --objects 256
check expect_ok '^RESULT .*complete=1' soak --quiet --ops 20000 --threads 2 --seconds 20 \
  --fork-ms 0 --settle 0 --seed 0x2a --period 0.5
check expect_ok '^RESULT caches=' bench_merge "$CSV" 2000 200 7
# The label follows the library's reading of SLUB_NOMERGE, which takes yes/on/true too.
SLUB_NOMERGE=yes check expect_ok '\[SLUB_NOMERGE=1\]' bench_merge "$CSV" 2000 200 7
unlabelled='^bench_merge: [0-9]+ names -> [0-9]+ caches \([0-9]+ shared by several names\)$'
SLUB_NOMERGE=0 check expect_ok "$unlabelled" bench_merge "$CSV" 2000 200 7

echo "bench.cli: $((checks - failures)) passed, $failures failed"
((failures == 0))
