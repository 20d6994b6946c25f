#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The debug mode (SLUB_DEBUG) on real buggy programs: each mode of `buggy` (buggy.c, built with
# -O0 -g -rdynamic -fno-builtin and not linked against slub) commits one memory bug; under
# LD_PRELOAD=libslub.so SLUB_DEBUG=FZPU the allocator must print one kernel-style report
# ("BUG <cache>: <what>" after a rule of '=', a "FIX <cache>: ..." line, the buggy function's
# name), repair or quarantine, and let the program finish ("survived", exit 0).
# Also: SLUB_DEBUG_LOG sends reports to a file, SLUB_DEBUG_ABORT=1 aborts, per-cache selection
# (SLUB_DEBUG=FZ,kmalloc-64), creation flags plus kmem_cache_validate(), and no report at all
# for clean programs.
# usage: debug_reports.sh PATH/TO/libslub.so PATH/TO/buggy
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[[ $# -ge 2 && -x "$2" ]] || fail "usage: $0 PATH/TO/libslub.so PATH/TO/buggy (got '${2:-}')"
PROG="$(readlink -f "$2")"
unset SLUB_DEBUG SLUB_DEBUG_LOG SLUB_DEBUG_ABORT
check_preload
cd "$TMP" || exit 1
ulimit -c 0 # the abort case must not leave a core file

RULE='============================================================================='
FAILED=0

# run NAME MODE [VAR=VALUE...]: runs the program preloaded with the given environment (after
# SLUB_FLUSHER=0), leaving $TMP/NAME.{out,err} and the status in $RC.
run() {
  local name=$1 mode=$2
  shift 2
  RC=0
  # The outer 2>/dev/null only silences bash's own "Aborted" line for the abort case.
  { env LD_PRELOAD="$PRELOAD" SLUB_FLUSHER=0 "$@" "$PROG" "$mode" \
    </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err" || RC=$?; } 2>/dev/null
  LAST_CMD="cd $(printf %q "$TMP") && $(printf '%q ' LD_PRELOAD="$PRELOAD" SLUB_FLUSHER=0 "$@" "$PROG" "$mode")"
}

# bad NAME MESSAGE: records a failure of one case and shows what the program printed.
bad() {
  local name=$1
  shift
  case_failed "$name" "$*" "$TMP/$name.out" "$TMP/$name.err"
}

# survived NAME: the run exited 0 and printed "survived"; returns 1 (after reporting) if not.
survived() {
  local name=$1
  if ((RC != 0)); then
    bad "$name" "exit status $(describe_status "$RC"), expected 0"
    return 1
  fi
  if ! grep -qx survived "$TMP/$name.out"; then
    bad "$name" "the program did not print 'survived'"
    return 1
  fi
}

# count_bugs FILE: the number of "BUG " header lines.
count_bugs() { grep -c '^BUG ' "$1" || true; }

# check_report NAME FILE CACHE WHAT FUNCTION: FILE holds exactly one report, for CACHE and WHAT
# (a prefix of the text after "BUG <cache>: "), right after a rule of 77 '=', with a FIX line
# for the cache, and FUNCTION is named somewhere in it.
check_report() {
  local name=$1 file=$2 cache=$3 what=$4 func=$5 n
  n=$(count_bugs "$file")
  if ((n != 1)); then
    bad "$name" "expected exactly one 'BUG ' line, found $n"
    return 1
  fi
  if ! grep -qF "BUG $cache: $what" "$file"; then
    bad "$name" "no line 'BUG $cache: $what...'"
    return 1
  fi
  if [[ "$(grep -B1 '^BUG ' "$file" | head -n 1)" != "$RULE" ]]; then
    bad "$name" "the BUG line does not follow a rule of 77 '='"
    return 1
  fi
  if ! grep -q "^FIX $cache: " "$file"; then
    bad "$name" "no line 'FIX $cache: ...'"
    return 1
  fi
  if ! grep -qw "$func" "$file"; then
    bad "$name" "the report does not name the buggy function $func"
    return 1
  fi
}

# expect_bug NAME MODE CACHE WHAT FUNCTION [VAR=VALUE...]: one report on stderr, and survival.
expect_bug() {
  local name=$1 mode=$2 cache=$3 what=$4 func=$5
  shift 5
  run "$name" "$mode" SLUB_DEBUG=FZPU "$@"
  survived "$name" || return 0
  check_report "$name" "$TMP/$name.err" "$cache" "$what" "$func" || return 0
  check_errors "$name" 1 || return 0
  echo "ok: $name: BUG $cache: $what ($func)"
}

# check_errors NAME N: the program printed "slub_debug_errors: N" (the allocator's count).
check_errors() {
  local name=$1 want=$2 got
  got=$(sed -n 's/^slub_debug_errors: //p' "$TMP/$name.out")
  if [[ "$got" != "$want" ]]; then
    bad "$name" "slub_debug_errors() is '$got', expected $want"
    return 1
  fi
}

# expect_silent NAME MODE [VAR=VALUE...]: survival and an empty stderr.
expect_silent() {
  local name=$1 mode=$2
  shift 2
  run "$name" "$mode" "$@"
  survived "$name" || return 0
  if [[ -s "$TMP/$name.err" ]]; then
    bad "$name" "expected nothing on stderr"
    return 0
  fi
  check_errors "$name" 0 || return 0
  echo "ok: $name: nothing on stderr"
}

# --- one report per bug -------------------------------------------------------------------
expect_bug kmalloc_redzone kmalloc_redzone kmalloc-64 'kmalloc Redzone overwritten' overflow_past_request
expect_bug right_redzone right_redzone kmalloc-64 'Right Redzone overwritten' overflow_by_one
expect_bug left_redzone left_redzone kmalloc-64 'Left Redzone overwritten' underflow_by_one
expect_bug use_after_free use_after_free kmalloc-64 'Poison overwritten' write_after_free
expect_bug double_free double_free kmalloc-64 'Object already free' double_free
expect_bug invalid_pointer invalid_pointer kmalloc-64 'Invalid object pointer 0x' free_interior_pointer
# The free pointer of a free kmalloc-64 object: at offset 72 with FZPU (after the 64-byte
# object and its 8-byte right red zone), found when the slab's freelist is next used.
expect_bug freepointer freepointer kmalloc-64 'Freepointer corrupt' corrupt_free_pointer
expect_bug wrong_cache wrong_cache buggy_cache_b \
  'Wrong slab cache. buggy_cache_b but object is from buggy_cache_a' free_to_wrong_cache

# A pointer slub never handed out: the one-line report, no BUG block.
run foreign_pointer foreign_pointer SLUB_DEBUG=FZPU
if survived foreign_pointer; then
  if ! grep -qE '^slub: free\(\): invalid pointer 0x[0-9a-f]+ \(not allocated by slub\); ignored$' \
    "$TMP/foreign_pointer.err"; then
    bad foreign_pointer "no line 'slub: free(): invalid pointer 0x... (not allocated by slub); ignored'"
  elif (($(count_bugs "$TMP/foreign_pointer.err") != 0)); then
    bad foreign_pointer "a BUG report for a pointer slub does not own"
  else
    echo "ok: foreign_pointer: one-line report"
  fi
fi

# --- creation flags and kmem_cache_validate, without SLUB_DEBUG -----------------------------
run cache_flags_validate cache_flags_validate
if survived cache_flags_validate &&
  check_errors cache_flags_validate 1 &&
  check_report cache_flags_validate "$TMP/cache_flags_validate.err" buggy_flags \
    'Right Redzone overwritten' overflow_cache_object; then
  errors=$(sed -n 's/^kmem_cache_validate: \([0-9-]*\) errors$/\1/p' "$TMP/cache_flags_validate.out")
  again=$(sed -n 's/^kmem_cache_validate again: \([0-9-]*\) errors$/\1/p' "$TMP/cache_flags_validate.out")
  if [[ -z "$errors" ]] || ((errors < 1)); then
    bad cache_flags_validate "kmem_cache_validate returned '$errors', expected at least 1"
  elif [[ "$again" != 0 ]]; then
    bad cache_flags_validate "a second kmem_cache_validate returned '$again', expected 0 (repaired)"
  else
    echo "ok: cache_flags_validate: validate found $errors error(s), then 0"
  fi
fi

# --- U: alloc_calls of a cache (kmem_cache_print_calls) ----------------------------------------
run print_calls print_calls
if survived print_calls && check_errors print_calls 0; then
  if ! grep -qx 'call sites: 2' "$TMP/print_calls.out"; then
    bad print_calls "kmem_cache_print_calls did not return 2 call sites"
  elif ! grep -qE '^ *30 make_node\+' "$TMP/print_calls.out" ||
    ! grep -qE '^ *12 make_leaf\+' "$TMP/print_calls.out"; then
    bad print_calls "expected lines '30 make_node+...' and '12 make_leaf+...'"
  else
    echo "ok: print_calls: 30 make_node, 12 make_leaf"
  fi
fi

# --- T: trace of one cache ------------------------------------------------------------------------
run trace right_redzone SLUB_DEBUG=T,kmalloc-64
if survived trace; then
  if ! grep -qE '^TRACE kmalloc-64 alloc 0x[0-9a-f]+ .*overflow_by_one' "$TMP/trace.err" ||
    ! grep -qE '^TRACE kmalloc-64 free 0x[0-9a-f]+ .*overflow_by_one' "$TMP/trace.err"; then
    bad trace "no 'TRACE kmalloc-64 alloc|free 0x... ... overflow_by_one' lines"
  elif grep -qvE '^TRACE kmalloc-64 ' "$TMP/trace.err"; then
    bad trace "SLUB_DEBUG=T,kmalloc-64 printed other lines than TRACE kmalloc-64"
  else
    echo "ok: trace: TRACE lines of kmalloc-64 only"
  fi
fi

# --- SLUB_DEBUG_LOG: the report goes to the file, not to stderr -----------------------------
run log_file right_redzone SLUB_DEBUG=FZPU SLUB_DEBUG_LOG="$TMP/debug.log"
if survived log_file; then
  if [[ ! -s "$TMP/debug.log" ]]; then
    bad log_file "SLUB_DEBUG_LOG=$TMP/debug.log: the file is missing or empty"
  elif grep -qE '^(BUG|FIX) ' "$TMP/log_file.err"; then
    bad log_file "with SLUB_DEBUG_LOG set the report still went to stderr"
  elif check_report log_file "$TMP/debug.log" kmalloc-64 'Right Redzone overwritten' overflow_by_one; then
    echo "ok: log_file: report in SLUB_DEBUG_LOG, not on stderr"
  fi
fi

# --- SLUB_DEBUG_ABORT=1: report, then SIGABRT -----------------------------------------------
run abort right_redzone SLUB_DEBUG=FZPU SLUB_DEBUG_ABORT=1
if ((RC != 134)); then
  bad abort "SLUB_DEBUG_ABORT=1: exit status $(describe_status "$RC"), expected 134 (SIGABRT)"
elif grep -qx survived "$TMP/abort.out"; then
  bad abort "SLUB_DEBUG_ABORT=1: the program went on after the report"
elif ! grep -qF 'BUG kmalloc-64: Right Redzone overwritten' "$TMP/abort.err"; then
  bad abort "SLUB_DEBUG_ABORT=1: no report before the abort"
else
  echo "ok: abort: report, then SIGABRT"
fi

# --- per-cache selection --------------------------------------------------------------------
expect_bug select_cache right_redzone kmalloc-64 'Right Redzone overwritten' overflow_by_one \
  SLUB_DEBUG=FZ,kmalloc-64
expect_bug select_prefix right_redzone kmalloc-64 'Right Redzone overwritten' overflow_by_one \
  'SLUB_DEBUG=FZ,kmalloc-1*,kmalloc-6*'
# kmalloc-64 not selected: no debugging there, so no report (the stray byte lands in the next
# object's first byte, harmless here).
run select_other right_redzone SLUB_DEBUG=FZ,kmalloc-128
if survived select_other; then
  if (($(count_bugs "$TMP/select_other.err") != 0)); then
    bad select_other "SLUB_DEBUG=FZ,kmalloc-128 reported a bug in kmalloc-64"
  else
    echo "ok: select_other: no report outside the selected cache"
  fi
fi
# A '-' block switches debugging off for the listed caches.
run select_minus right_redzone 'SLUB_DEBUG=FZPU;-,kmalloc-64'
if survived select_minus; then
  if (($(count_bugs "$TMP/select_minus.err") != 0)); then
    bad select_minus "SLUB_DEBUG='FZPU;-,kmalloc-64' still reported a bug in kmalloc-64"
  else
    echo "ok: select_minus: '-' switched kmalloc-64 off"
  fi
fi

# --- no false reports -------------------------------------------------------------------------
expect_silent clean_plain clean
expect_silent clean_debug clean SLUB_DEBUG=FZPU
expect_silent clean_debug_empty clean SLUB_DEBUG= # empty value: full debugging, as the kernel's
# Threads freeing each other's blocks, with the flusher running often.
expect_silent clean_threads_debug clean_threads SLUB_DEBUG=FZPU SLUB_FLUSHER=1 SLUB_FLUSH_MS=10

# A real program under full debugging: same output as without slub, nothing on stderr.
if command -v sort >/dev/null 2>&1; then
  awk 'BEGIN { srand(7); for (i = 0; i < 50000; i++) printf "%d %x line %d\n", int(rand() * 1e6), int(rand() * 4e9), i }' \
    >sort_input.txt
  sort -k2,2 sort_input.txt >sort.plain.out
  RC=0
  LD_PRELOAD="$PRELOAD" SLUB_FLUSHER=0 SLUB_DEBUG=FZPU sort -k2,2 sort_input.txt \
    >sort.debug.out 2>sort.debug.err || RC=$?
  LAST_CMD="cd $TMP && LD_PRELOAD=$PRELOAD SLUB_FLUSHER=0 SLUB_DEBUG=FZPU sort -k2,2 sort_input.txt"
  cp sort.debug.err sort_debug.err
  : >sort_debug.out
  if ((RC != 0)); then
    bad sort_debug "sort exited with $(describe_status "$RC")"
  elif [[ -s sort.debug.err ]]; then
    bad sort_debug "sort under SLUB_DEBUG=FZPU wrote to stderr"
  elif ! cmp -s sort.plain.out sort.debug.out; then
    bad sort_debug "sort output differs under SLUB_DEBUG=FZPU"
  else
    echo "ok: sort_debug: identical output, nothing on stderr"
  fi
fi

((FAILED == 0)) || fail "some debug report checks failed (see above); files in $TMP"
echo "all debug report checks passed"
