# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared by the integration tests; sourced, not run. Each test script takes the path of the
# preload library (normally build/libslub.so) as $1 and runs real programs twice: plain, and
# with LD_PRELOAD set to it. A test fails when the outputs differ, when the preloaded run exits
# non-zero or dies from a signal, or when it prints something on stderr that the plain run did
# not. Exit status 77 means "skipped" (a program the test needs is missing).
set -euo pipefail

[[ $# -ge 1 ]] || { echo "usage: $0 PATH/TO/libslub.so [...]" >&2; exit 2; }
PRELOAD="$(readlink -f "$1")"
[[ -f "$PRELOAD" ]] || { echo "FAIL: preload library not found: $1" >&2; exit 1; }

# shellcheck disable=SC2034 # used by the test scripts
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/slub-it.XXXXXX")"
# The directory is kept when a test fails (so the reproduce line works) or SLUB_IT_KEEP=1.
KEEP_TMP=${SLUB_IT_KEEP:-0}
cleanup() {
  if [[ "$KEEP_TMP" == 1 ]]; then
    echo "note: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

# The environment must not leak a preload or allocator report into the plain runs.
unset LD_PRELOAD SLUB_REPORT
export LC_ALL=C PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1

fail() {
  echo "FAIL: $*" >&2
  KEEP_TMP=1
  exit 1
}

need() {
  local p
  for p in "$@"; do
    [[ -x "$p" ]] || command -v "$p" >/dev/null 2>&1 || {
      echo "SKIP: $p is not installed" >&2
      exit 77
    }
  done
}

# Checks that the dynamic loader accepts the library and really maps it into the process.
check_preload() {
  LD_PRELOAD="$PRELOAD" /bin/true 2>"$TMP/true.err" ||
    fail "LD_PRELOAD=$PRELOAD /bin/true failed: $(cat "$TMP/true.err")"
  [[ ! -s "$TMP/true.err" ]] || fail "LD_PRELOAD=$PRELOAD /bin/true printed: $(cat "$TMP/true.err")"
  LD_PRELOAD="$PRELOAD" cat /proc/self/maps >"$TMP/maps" ||
    fail "LD_PRELOAD=$PRELOAD cat /proc/self/maps failed"
  grep -qF "$PRELOAD" "$TMP/maps" ||
    fail "$PRELOAD is not mapped in a preloaded process (see /proc/self/maps)"
}

# Prints how to reproduce a preloaded run of the command.
repro() {
  printf '  reproduce: cd %q && LD_PRELOAD=%q' "$PWD" "$PRELOAD" >&2
  printf ' %q' "$@" >&2
  printf '\n' >&2
}

describe_status() {
  local rc=$1
  if ((rc > 128)); then
    echo "$rc (killed by signal $((rc - 128)): $(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
  else
    echo "$rc"
  fi
}

# run_pair NAME CMD ARGS...: runs CMD plain and preloaded, stdin from /dev/null, leaving
# $TMP/NAME.{plain,slub}.{out,err,rc}; fails on non-zero status of either run or on new
# stderr output under preload. The outputs are compared by compare_outputs.
run_pair() {
  local name=$1
  shift
  local rc=0
  "$@" </dev/null >"$TMP/$name.plain.out" 2>"$TMP/$name.plain.err" || rc=$?
  echo "$rc" >"$TMP/$name.plain.rc"
  if ((rc != 0)); then
    cat "$TMP/$name.plain.err" >&2
    fail "$name: the plain run (no preload) exited with $(describe_status "$rc"); the test itself is broken"
  fi
  rc=0
  LD_PRELOAD="$PRELOAD" "$@" </dev/null >"$TMP/$name.slub.out" 2>"$TMP/$name.slub.err" || rc=$?
  echo "$rc" >"$TMP/$name.slub.rc"
  if ((rc != 0)); then
    echo "--- stderr of the preloaded run (last 40 lines) ---" >&2
    tail -n 40 "$TMP/$name.slub.err" >&2
    repro "$@"
    fail "$name: the preloaded run exited with $(describe_status "$rc") (plain run: 0)"
  fi
  check_new_stderr "$name" "$@"
}

# Fails when the preloaded run printed stderr lines the plain run did not.
check_new_stderr() {
  local name=$1
  shift
  local extra
  # With an empty pattern file grep -v prints every line, as wanted.
  extra="$(grep -vxF -f "$TMP/$name.plain.err" "$TMP/$name.slub.err" || true)"
  if [[ -n "$extra" ]]; then
    echo "--- stderr lines only in the preloaded run (first 40) ---" >&2
    head -n 40 <<<"$extra" >&2
    repro "$@"
    fail "$name: the preloaded run wrote to stderr what the plain run did not"
  fi
}

# compare_outputs NAME [FILE_PLAIN FILE_SLUB]: fails with a diff when they differ.
compare_outputs() {
  local name=$1
  local a=${2:-$TMP/$name.plain.out} b=${3:-$TMP/$name.slub.out}
  if ! cmp -s "$a" "$b"; then
    echo "--- diff plain vs preloaded (first 60 lines) ---" >&2
    diff -u --label plain --label "LD_PRELOAD=$PRELOAD" "$a" "$b" | head -n 60 >&2 || true
    fail "$name: output differs with LD_PRELOAD=$PRELOAD"
  fi
  echo "ok: $name ($(wc -c <"$a") bytes of output identical with and without preload)"
}

# For scripts that check many cases and report each failure before failing at the end: they
# set LAST_CMD (how to reproduce the case) before calling these, and end with
# ((FAILED == 0)) || fail "...".
FAILED=0

# case_failed NAME MESSAGE OUT ERR: records a failure of case NAME, with how to reproduce it
# and the head of the program's stdout (OUT) and stderr or report file (ERR).
case_failed() {
  echo "FAIL: $1: $2" >&2
  echo "  reproduce: $LAST_CMD" >&2
  echo "--- stdout of $1 ---" >&2
  head -n 20 "$3" >&2
  echo "--- $(basename "$4") (first 80 lines) ---" >&2
  head -n 80 "$4" >&2
  echo "---" >&2
  # shellcheck disable=SC2034 # read by the scripts that source this file
  FAILED=1
  KEEP_TMP=1
}

# marked_line FILE NAME: the number of the one line of FILE marked with a "line:NAME */"
# comment (a C source whose reports a test checks line by line).
marked_line() {
  local n
  n=$(grep -n "line:$2 \*/" "$1" | cut -d: -f1)
  [[ "$n" =~ ^[0-9]+$ ]] || fail "no single 'line:$2' mark in $1"
  printf '%s' "$n"
}
