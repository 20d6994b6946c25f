#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Debug reports name a program's own functions, static ones too, with file:line: buggy_static
# (buggy_static.c, built with -O0 -g and WITHOUT -rdynamic, so dladdr names none of its
# functions) commits its bugs in static functions under LD_PRELOAD=libslub.so SLUB_DEBUG=FZPU.
#   - "Allocated in", "Freed in" and the stack lines name the static functions with the lines
#     of buggy_static.c that the source marks with "line:NAME" comments (from the program's
#     .symtab and .debug_line, read in the process by pal/elf.cc);
#   - a stripped copy's report has unnamed frames and says once how to get names;
#   - `tools/slub decode PROGRAM` on that report restores names and file:line (addr2line).
# usage: symbol_names.sh PATH/TO/libslub.so PATH/TO/buggy_static
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[[ $# -ge 2 && -x "$2" ]] || fail "usage: $0 PATH/TO/libslub.so PATH/TO/buggy_static (got '${2:-}')"
PROG="$(readlink -f "$2")"
SRC="$HERE/debug/buggy_static.c"
SLUB_TOOL="$HERE/../../tools/slub"
need strip addr2line readelf
unset SLUB_DEBUG SLUB_DEBUG_LOG SLUB_DEBUG_ABORT
check_preload
cd "$TMP" || exit 1
FAILED=0

# line NAME: the number of the line of buggy_static.c marked "line:NAME".
line() { marked_line "$SRC" "$1"; }

# run NAME COMMAND...: the preloaded run's stderr in NAME.err; it must survive.
run() {
  local name=$1 rc=0
  shift
  env LD_PRELOAD="$PRELOAD" SLUB_FLUSHER=0 SLUB_DEBUG=FZPU "$@" \
    </dev/null >"$name.out" 2>"$name.err" || rc=$?
  LAST_CMD="cd $(printf %q "$TMP") && LD_PRELOAD=$(printf %q "$PRELOAD") SLUB_DEBUG=FZPU $(printf '%q ' "$@")"
  if ((rc != 0)) || ! grep -qx survived "$name.out"; then
    bad "$name" "exit status $(describe_status "$rc"), expected 0 and 'survived'" "$name.err"
    return 1
  fi
}

# bad NAME MESSAGE FILE: records a failure and shows FILE.
bad() {
  echo "FAIL: $1: $2" >&2
  echo "  reproduce: $LAST_CMD" >&2
  echo "--- $3 ---" >&2
  grep -vE '^(Object|Redzone|Padding|Bytes b4) ' "$3" | head -n 60 >&2
  echo "---" >&2
  FAILED=1
  KEEP_TMP=1 # read by the exit trap of lib.sh
}

# has NAME FILE REGEX WHAT: FILE has a line matching the extended REGEX.
has() {
  if ! grep -qE "$3" "$2"; then
    bad "$1" "no line $4 (regex: $3)" "$2"
    return 1
  fi
}

FN='\+0x[0-9a-f]+/0x[0-9a-f]+ \[slub_debug_buggy_static\]'  # "+0x12/0x39 [object]"

# --- in process: names from .symtab, lines from .debug_line ---------------------------------
if run double_free "$PROG" double_free &&
  has double_free double_free.err "^BUG kmalloc-64: Object already free" "'BUG kmalloc-64: Object already free'" &&
  has double_free double_free.err "^Allocated in double_free_in_static$FN buggy_static\.c:$(line double_alloc) age=" \
    "'Allocated in double_free_in_static+... buggy_static.c:$(line double_alloc)'" &&
  has double_free double_free.err "^Freed in double_free_in_static$FN buggy_static\.c:$(line double_first_free) age=" \
    "'Freed in double_free_in_static+... buggy_static.c:$(line double_first_free)'" &&
  has double_free double_free.err "^ run_mode$FN buggy_static\.c:$(line run_double_free)\$" \
    "' run_mode+... buggy_static.c:$(line run_double_free)' (a stack line)" &&
  has double_free double_free.err "^ double_free_in_static$FN buggy_static\.c:$(line double_second_free)\$" \
    "' double_free_in_static+... buggy_static.c:$(line double_second_free)' (the call trace)"; then
  if grep -q '^slub: frames without names' double_free.err; then
    bad double_free "a hint about unnamed frames, but the program's frames are all named" double_free.err
  else
    echo "ok: double_free: static functions named, with buggy_static.c lines"
  fi
fi

if run overflow "$PROG" overflow &&
  has overflow overflow.err "^BUG kmalloc-64: Right Redzone overwritten" "'BUG kmalloc-64: Right Redzone overwritten'" &&
  has overflow overflow.err "^Allocated in overflow_in_static$FN buggy_static\.c:$(line overflow_alloc) age=" \
    "'Allocated in overflow_in_static+... buggy_static.c:$(line overflow_alloc)'" &&
  has overflow overflow.err "^ overflow_in_static$FN buggy_static\.c:$(line overflow_free)\$" \
    "' overflow_in_static+... buggy_static.c:$(line overflow_free)' (the call trace)"; then
  echo "ok: overflow: static function named, with buggy_static.c lines"
fi

# Started by running the dynamic loader (then /proc/self/exe is ld.so, not the program): the
# names still come from the program's own file.
LDSO=$(readelf -lW "$PROG" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
if [[ -x "$LDSO" ]]; then
  if run ldso "$LDSO" "$PROG" double_free &&
    has ldso ldso.err "^Allocated in double_free_in_static$FN buggy_static\.c:$(line double_alloc) age=" \
      "'Allocated in double_free_in_static+... buggy_static.c:$(line double_alloc)' (run as $LDSO PROGRAM)"; then
    echo "ok: ldso: names and lines when started as $LDSO PROGRAM"
  fi
fi

# --- stripped: no names, one hint, then tools/slub decode -----------------------------------
mkdir -p stripped
strip -o stripped/slub_debug_buggy_static "$PROG"
if run stripped stripped/slub_debug_buggy_static both &&
  has stripped stripped.err '^Allocated in 0x[0-9a-f]+ \[slub_debug_buggy_static\+0x[0-9a-f]+\] age=' \
    "'Allocated in 0x... [slub_debug_buggy_static+0x...]' (an unnamed frame)"; then
  bugs=$(grep -c '^BUG ' stripped.err || true)
  hints=$(grep -c '^slub: frames without names .*tools/slub decode' stripped.err || true)
  if grep -q 'overflow_in_static\|double_free_in_static' stripped.err; then
    bad stripped "the stripped program's report names its static functions" stripped.err
  elif ((bugs != 2)); then
    bad stripped "expected 2 reports, found $bugs" stripped.err
  elif ((hints != 1)); then
    bad stripped "expected the line 'slub: frames without names ... tools/slub decode ...' once, found $hints" stripped.err
  else
    echo "ok: stripped: unnamed frames, one hint for two reports"
  fi
  # The unstripped build has the same code: decode the stripped run's report with it.
  if ! bash "$SLUB_TOOL" decode "$PROG" <stripped.err >decoded.err 2>decode.stderr; then
    bad decode "tools/slub decode failed: $(cat decode.stderr)" decoded.err
  elif [[ -s decode.stderr ]]; then
    bad decode "tools/slub decode wrote to stderr: $(cat decode.stderr)" decoded.err
  elif has decode decoded.err "^Allocated in double_free_in_static \[slub_debug_buggy_static\+0x[0-9a-f]+\] buggy_static\.c:$(line double_alloc) age=" \
    "'Allocated in double_free_in_static [slub_debug_buggy_static+0x...] buggy_static.c:$(line double_alloc)'" &&
    has decode decoded.err "^Freed in double_free_in_static \[slub_debug_buggy_static\+0x[0-9a-f]+\] buggy_static\.c:$(line double_first_free) age=" \
      "'Freed in double_free_in_static [...] buggy_static.c:$(line double_first_free)'" &&
    has decode decoded.err "^ overflow_in_static \[slub_debug_buggy_static\+0x[0-9a-f]+\] buggy_static\.c:$(line overflow_free)\$" \
      "' overflow_in_static [...] buggy_static.c:$(line overflow_free)' (a call trace line)" &&
    has decode decoded.err "^ run_mode \[slub_debug_buggy_static\+0x[0-9a-f]+\] buggy_static\.c:$(line run_both_double_free)\$" \
      "' run_mode [...] buggy_static.c:$(line run_both_double_free)' (a stack line)"; then
    if (($(wc -l <stripped.err) != $(wc -l <decoded.err))) ||
      ! cmp -s <(grep -v '\[' stripped.err) <(grep -v '\[' decoded.err); then
      bad decode "decode changed lines without frames, or the number of lines" decoded.err
    else
      echo "ok: decode: tools/slub decode names the stripped run's frames with file:line"
    fi
  fi
fi

# A frame of an object whose name holds '+' (libstdc++.so.6): named from its dynamic symbols,
# at the offset after the last "+0x" (the frame pattern once stopped at the first '+').
STDCXX=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}' || true)
SYM_OFF=""
[[ -n "$STDCXX" ]] &&
  SYM_OFF=$(nm -D --defined-only "$STDCXX" 2>/dev/null | awk '$2 == "T" {print $1; exit}' || true)
if [[ -z "$SYM_OFF" ]]; then
  echo "skip: stdcxx_frame: no libstdc++.so.6 with dynamic symbols"
else
  printf ' 0x7f0000001000 [libstdc++.so.6+0x%x]\n' $((0x$SYM_OFF + 1)) >stdcxx.err
  bash "$SLUB_TOOL" decode <stdcxx.err >stdcxx_decoded.err 2>&1 || true
  if grep -q '^ 0x7f0000001000 ' stdcxx_decoded.err || ! grep -q '\[libstdc++\.so\.6+0x' stdcxx_decoded.err; then
    bad stdcxx_frame "tools/slub decode left a libstdc++.so.6 frame unnamed" stdcxx_decoded.err
  else
    echo "ok: stdcxx_frame: a frame of libstdc++.so.6 is named"
  fi
fi

# Bad input to decode: a clear one-line error.
if bash "$SLUB_TOOL" decode "$TMP/no-such-object" </dev/null >/dev/null 2>decode_bad.err ||
  ! grep -q "^slub decode: no such file or directory" decode_bad.err; then
  bad decode_bad "tools/slub decode with a missing object: expected status 1 and one error line" decode_bad.err
else
  echo "ok: decode_bad: a missing object is a one-line error"
fi

((FAILED == 0)) || fail "some symbol name checks failed (see above); files in $TMP"
echo "all symbol name checks passed"
