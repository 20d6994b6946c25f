#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# KFENCE on real buggy programs: each mode of kfence_bugs (kfence_bugs.c, built with -O0 -g
# -rdynamic -fno-builtin and not linked against slub) commits one bug on a pool object under
# LD_PRELOAD=libslub.so SLUB_KFENCE_SAMPLE=1 (every allocation that fits a page is sampled).
# Each must give one report in the kernel's KFENCE format, between rules of 66 '=':
#   BUG: KFENCE: <kind> in <function>+0x../0x..    the function doing the access or the free
#   <Access line> at 0x<address> (...kfence-#N):  with the address the program printed
#    <function>+0x../0x.. [slub_kfence_bugs] kfence_bugs.c:<line>   the bad line, first
#   kfence-#N [0x<object>-0x.., size=S, cache=kmalloc-..] allocated by thread <pid> ...:
#    ... find_pool_object+0x.. ... kfence_bugs.c:<the malloc's line>
#   freed by thread <pid> ...: (use-after-free, double free) with the first free's line
#   CPU: C PID: <pid> Comm: ...
# and the program must go on ("survived", exit 0). Then: SLUB_KFENCE_ABORT=1 dies by SIGABRT
# after one report, SLUB_DEBUG_LOG gets the report instead of stderr, a clean workload gives
# no report, SLUB_KFENCE=1 (the service thread's sampling) serves some allocation from the
# pool, and the program's own SIGSEGV handlers (kfence_signals.c) work next to slub's,
# installed before or after it.
# usage: kfence_bugs.sh PATH/TO/libslub.so PATH/TO/kfence_bugs PATH/TO/kfence_signals
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[[ $# -ge 3 && -x "$2" && -x "$3" ]] ||
  fail "usage: $0 PATH/TO/libslub.so PATH/TO/kfence_bugs PATH/TO/kfence_signals"
PROG="$(readlink -f "$2")"
SIGPROG="$(readlink -f "$3")"
SRC="$HERE/kfence/kfence_bugs.c"
unset SLUB_DEBUG SLUB_DEBUG_LOG SLUB_DEBUG_ABORT SLUB_KFENCE SLUB_KFENCE_SAMPLE \
  SLUB_KFENCE_NUM_OBJECTS SLUB_KFENCE_ABORT
check_preload
cd "$TMP" || exit 1
ulimit -c 0 # the abort cases must not leave core files

# Without KFENCE in the library (slub_kfence_object missing) the program says so: skip.
rc=0
LD_PRELOAD="$PRELOAD" SLUB_KFENCE=0 "$PROG" clean >/dev/null 2>probe.err </dev/null || rc=$?
if ((rc == 77)); then
  echo "SKIP: $(cat probe.err)" >&2
  exit 77
fi

RULE='=================================================================='
HEX='0x[0-9a-f]+'
FN="\\+$HEX/$HEX \\[slub_kfence_bugs\\]" # "+0x12/0x39 [program]"

# line NAME: the number of the line of kfence_bugs.c marked "line:NAME".
line() { marked_line "$SRC" "$1"; }

# run NAME PROGRAM MODE [VAR=VALUE...]: the program preloaded with SLUB_KFENCE_SAMPLE=1 and
# the given environment; $TMP/NAME.{out,err}, the status in $RC.
run() {
  local name=$1 prog=$2 mode=$3
  shift 3
  RC=0
  # The outer 2>/dev/null only silences bash's own "Aborted" line for the abort cases.
  { env LD_PRELOAD="$PRELOAD" SLUB_KFENCE_SAMPLE=1 "$@" "$prog" "$mode" \
    </dev/null >"$name.out" 2>"$name.err" || RC=$?; } 2>/dev/null
  LAST_CMD="cd $(printf %q "$TMP") && $(printf '%q ' LD_PRELOAD="$PRELOAD" SLUB_KFENCE_SAMPLE=1 "$@" "$prog" "$mode")"
  REPORT="$name.err"
}

# bad NAME MESSAGE: records a failure of one case and shows what the program printed.
bad() { case_failed "$1" "$2" "$1.out" "$REPORT"; }

# survived NAME [WORD]: exit status 0 and WORD (default "survived") printed.
survived() {
  local name=$1 word=${2:-survived}
  if ((RC != 0)); then
    bad "$name" "exit status $(describe_status "$RC"), expected 0"
    return 1
  fi
  if ! grep -qx "$word" "$name.out"; then
    bad "$name" "the program did not print '$word'"
    return 1
  fi
}

# printed NAME KEY: the hex value the program printed as "KEY 0x..." (object, access), as a
# number.
printed() { printf '%d' "$(sed -n "s/^$2 //p" "$1.out")"; }

# has NAME REGEX WHAT: the report has a line matching the extended REGEX.
has() {
  if ! grep -qE "$2" "$REPORT"; then
    bad "$1" "no line $3 (regex: $2)"
    return 1
  fi
}

# section FILE START: the lines from the first one matching START to the next empty line.
section() { awk -v start="$2" '$0 ~ start { on = 1 } on && $0 == "" { exit } on' "$1"; }

# check_report NAME KIND FUNCTION LINE ACCESS_REGEX [FREE_LINE]: the report of $REPORT, one
# and only one; ACCESS_REGEX is the access line with a group around the address, which must
# be the one the program printed as "access"; FREE_LINE, if given, the line of kfence_bugs.c
# the freed-by stack must name.
check_report() {
  local name=$1 kind=$2 func=$3 at=$4 access=$5 free_at=${6:-} n pid addr obj id
  n=$(grep -c '^BUG: KFENCE: ' "$REPORT" || true)
  if ((n != 1)); then
    bad "$name" "expected exactly one 'BUG: KFENCE:' line, found $n"
    return 1
  fi
  has "$name" "^BUG: KFENCE: $kind in $func$FN\$" "'BUG: KFENCE: $kind in $func+0x../0x.. [slub_kfence_bugs]'" ||
    return 1
  if [[ "$(grep -B1 '^BUG: KFENCE: ' "$REPORT" | head -n 1)" != "$RULE" ]]; then
    bad "$name" "the BUG line does not follow a rule of 66 '='"
    return 1
  fi
  if [[ "$(sed -n '/^CPU: /{n;p;q}' "$REPORT")" != "$RULE" ]]; then
    bad "$name" "the report does not end with 'CPU: ...' and a rule of 66 '='"
    return 1
  fi
  has "$name" "$access" "for the access" || return 1
  addr=$(sed -nE "s/$access/\\1/p" "$REPORT" | head -n 1)
  if (($(printf '%d' "$addr") != $(printed "$name" access))); then
    bad "$name" "the report's address $addr is not the bad access's $(sed -n 's/^access //p' "$name.out")"
    return 1
  fi
  # The access's stack: its first line is the bad line (or the free's call) of the function.
  if [[ ! "$(grep -A1 -E "$access" "$REPORT" | sed -n 2p)" =~ ^\ $func$FN\ kfence_bugs\.c:$at$ ]]; then
    bad "$name" "the stack after the access line does not start with ' $func+0x../0x.. [slub_kfence_bugs] kfence_bugs.c:$at'"
    return 1
  fi
  id=$(grep -oE -m1 'kfence-#[0-9]+' <<<"$(grep -E "$access" "$REPORT")")
  pid=$(sed -n 's/^pid //p' "$name.out")
  has "$name" "^$id \\[($HEX)-$HEX, size=[0-9]+, cache=kmalloc-[0-9]+\\] allocated by thread $pid on cpu [0-9]+ at [0-9]+\\.[0-9]{6}s \\([0-9]+\\.[0-9]{6}s ago\\):\$" \
    "'$id [0x..-0x.., size=.., cache=kmalloc-..] allocated by thread $pid on cpu C at T (T ago):'" ||
    return 1
  obj=$(sed -nE "s/^$id \\[($HEX)-.*/\\1/p" "$REPORT" | head -n 1)
  if (($(printf '%d' "$obj") != $(printed "$name" object))); then
    bad "$name" "$id starts at $obj, not at the object's $(sed -n 's/^object //p' "$name.out")"
    return 1
  fi
  if ! section "$REPORT" '^kfence-#[0-9]+ .* allocated by thread ' |
    grep -qE "^ find_pool_object$FN kfence_bugs\\.c:$(line alloc)\$"; then
    bad "$name" "the allocation stack has no ' find_pool_object+0x.. [slub_kfence_bugs] kfence_bugs.c:$(line alloc)'"
    return 1
  fi
  if [[ "$free_at" == - ]]; then
    : # the object is being freed: whether the report says so is the implementation's choice
  elif [[ -n "$free_at" ]]; then
    has "$name" "^freed by thread $pid on cpu [0-9]+ at [0-9]+\\.[0-9]{6}s \\([0-9]+\\.[0-9]{6}s ago\\):\$" \
      "'freed by thread $pid on cpu C at T (T ago):'" || return 1
    if ! section "$REPORT" '^freed by thread ' | grep -qE "^ $func$FN kfence_bugs\\.c:$free_at\$"; then
      bad "$name" "the free stack has no ' $func+0x.. [slub_kfence_bugs] kfence_bugs.c:$free_at'"
      return 1
    fi
  elif grep -q '^freed by thread ' "$REPORT"; then
    bad "$name" "a 'freed by' part for a live object"
    return 1
  fi
  has "$name" "^CPU: [0-9]+ PID: $pid Comm: slub_kfence_bu" "'CPU: C PID: $pid Comm: slub_kfence_bu...'" ||
    return 1
}

# expect_bug MODE KIND FUNCTION LINE ACCESS_REGEX [FREE_LINE]: the mode's one report, survived.
expect_bug() {
  local mode=$1
  run "$mode" "$PROG" "$mode"
  survived "$mode" || return 0
  check_report "$mode" "${@:2}" || return 0
  echo "ok: $mode: BUG: KFENCE: $2 in $3"
}

oob() { printf '^Out-of-bounds %s at (%s) \\(%sB %s of kfence-#[0-9]+\\):$' "$1" "$HEX" "$2" "$3"; }
UAF_READ="^Use-after-free read at ($HEX) \\(in kfence-#[0-9]+\\):\$"
UAF_WRITE="^Use-after-free write at ($HEX) \\(in kfence-#[0-9]+\\):\$"
INVALID="^Invalid free of ($HEX) \\(in kfence-#[0-9]+\\):\$"
CORRUPT="^Corrupted memory at ($HEX) \\[ (0x[0-9a-f]{2}|\\.)( (0x[0-9a-f]{2}|\\.))* \\] \\(in kfence-#[0-9]+\\):\$"

# --- one report per bug, and the program goes on ---------------------------------------------
# The distances count from the object's first byte (left) or last byte (right), as the
# kernel's: the byte before the object is "1B left", the one after it "1B right".
expect_bug oob-read-left out-of-bounds\ read read_left_of_object "$(line read_left)" "$(oob read 1 left)"
expect_bug oob-read-right out-of-bounds\ read read_right_of_object "$(line read_right)" "$(oob read 1 right)"
expect_bug oob-write-left out-of-bounds\ write write_left_of_object "$(line write_left)" "$(oob write 1 left)"
expect_bug oob-write-right out-of-bounds\ write write_right_of_object "$(line write_right)" "$(oob write 1 right)"
expect_bug uaf-read use-after-free\ read read_after_free "$(line uaf_read)" "$UAF_READ" "$(line uaf_read_free)"
expect_bug uaf-write use-after-free\ write write_after_free "$(line uaf_write)" "$UAF_WRITE" "$(line uaf_write_free)"
expect_bug double-free invalid\ free free_twice "$(line double_second_free)" "$INVALID" "$(line double_first_free)"
expect_bug invalid-free invalid\ free free_middle_of_object "$(line invalid_free)" "$INVALID"
expect_bug canary memory\ corruption write_past_request "$(line canary_free)" "$CORRUPT" -
expect_bug canary-left memory\ corruption write_before_object "$(line canary_left_free)" "$CORRUPT" -

# --- SLUB_KFENCE_ABORT=1: one report, then SIGABRT ---------------------------------------------
for mode in oob-write-right uaf-read canary; do
  name=abort-$mode
  run "$name" "$PROG" "$mode" SLUB_KFENCE_ABORT=1
  n=$(grep -c '^BUG: KFENCE: ' "$REPORT" || true)
  if ((RC != 134)); then
    bad "$name" "SLUB_KFENCE_ABORT=1: exit status $(describe_status "$RC"), expected 134 (SIGABRT)"
  elif grep -qx survived "$name.out"; then
    bad "$name" "SLUB_KFENCE_ABORT=1: the program went on after the report"
  elif ((n != 1)); then
    bad "$name" "SLUB_KFENCE_ABORT=1: expected one 'BUG: KFENCE:' line before the abort, found $n"
  else
    echo "ok: $name: one report, then SIGABRT"
  fi
done

# --- SLUB_DEBUG_LOG: the report goes to the file, not to stderr -------------------------------
run log_file "$PROG" uaf-write SLUB_DEBUG_LOG="$TMP/kfence.log"
if survived log_file; then
  if grep -q 'KFENCE' log_file.err; then
    bad log_file "with SLUB_DEBUG_LOG set the report still went to stderr"
  elif [[ ! -s kfence.log ]]; then
    bad log_file "SLUB_DEBUG_LOG=$TMP/kfence.log: the file is missing or empty"
  else
    REPORT=kfence.log
    if check_report log_file use-after-free\ write write_after_free "$(line uaf_write)" "$UAF_WRITE" \
      "$(line uaf_write_free)"; then
      echo "ok: log_file: the report in SLUB_DEBUG_LOG, not on stderr"
    fi
  fi
fi

# --- no false reports ----------------------------------------------------------------------------
# Every size up to 5000 bytes, more objects than the pool's slots, all bytes written; then a
# pool of 3 slots, full almost at once.
for nobj in 255 3; do
  name=clean-$nobj
  run "$name" "$PROG" clean SLUB_KFENCE_NUM_OBJECTS=$nobj
  if survived "$name"; then
    pooled=$(sed -n 's/^pool objects: //p' "$name.out")
    if [[ -s "$name.err" ]]; then
      bad "$name" "expected nothing on stderr"
    elif [[ ! "$pooled" =~ ^[0-9]+$ ]] || ((pooled == 0)); then
      bad "$name" "no allocation was served from the pool (pool objects: '$pooled')"
    else
      echo "ok: $name: $pooled pool objects, nothing on stderr"
    fi
  fi
done
# Sampling by the service thread (SLUB_KFENCE=1: every millisecond) rather than by count: an
# allocation comes from the pool sooner or later, and nothing is reported.
RC=0
LD_PRELOAD="$PRELOAD" SLUB_KFENCE=1 "$PROG" interval >interval.out 2>interval.err </dev/null || RC=$?
LAST_CMD="cd $(printf %q "$TMP") && LD_PRELOAD=$(printf %q "$PRELOAD") SLUB_KFENCE=1 $(printf %q "$PROG") interval"
REPORT=interval.err
if survived interval; then
  if [[ -s interval.err ]]; then
    bad interval "expected nothing on stderr"
  else
    echo "ok: interval: SLUB_KFENCE=1 $(sed -n 's/^sampled //p' interval.out)"
  fi
fi

# KFENCE off: the bugs' programs find no pool object, and say so.
RC=0
LD_PRELOAD="$PRELOAD" SLUB_KFENCE=0 "$PROG" oob-write-right >off.out 2>off.err </dev/null || RC=$?
LAST_CMD="cd $(printf %q "$TMP") && LD_PRELOAD=$(printf %q "$PRELOAD") SLUB_KFENCE=0 $(printf %q "$PROG") oob-write-right"
REPORT=off.err
if ((RC != 1)) || ! grep -q '^no 32-byte pool object' off.err; then
  bad off "SLUB_KFENCE=0: exit status $(describe_status "$RC"), expected 1 and 'no 32-byte pool object ...'"
elif grep -q 'KFENCE' off.err; then
  bad off "a KFENCE report with KFENCE off"
else
  echo "ok: off: no pool object with SLUB_KFENCE=0"
fi

# --- the program's own SIGSEGV handler, before and after slub's --------------------------------
for mode in before after nodefer ignored; do
  name=signals-$mode
  run "$name" "$SIGPROG" "$mode"
  survived "$name" ok || continue
  if [[ "$mode" == after ]] && ! grep -qx 'previous handler: set' "$name.out"; then
    bad "$name" "after a pool allocation slub's SIGSEGV handler is not installed"
    continue
  fi
  n=$(grep -c '^BUG: KFENCE: ' "$REPORT" || true)
  if ((n != 1)); then
    bad "$name" "expected exactly one 'BUG: KFENCE:' line, found $n"
  elif ! grep -qE "^BUG: KFENCE: out-of-bounds write in overflow_pool_object\\+$HEX/$HEX " "$REPORT"; then
    bad "$name" "no 'BUG: KFENCE: out-of-bounds write in overflow_pool_object+0x../0x..'"
  else
    echo "ok: $name: the program's faults recovered by its handler, the KFENCE bug reported"
  fi
done

((FAILED == 0)) || fail "some KFENCE checks failed (see above); files in $TMP"
echo "all KFENCE checks passed"
