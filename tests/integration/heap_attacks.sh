#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The heap attacks of issue [sheaves] (heap_attacks.c), each under the preload: a use-after-free
# write over freed blocks' free pointers (with a live block's address, and a one-byte partial
# overwrite), free(p); free(q); free(p), and free(p); free(q); realloc(p, n). By default each
# must be withstood (the program says "safe") and reported on stderr in one "slub:" line or
# more; with SLUB_STRICT=1 each must abort. Before sheaves all four handed out memory they
# must not have (a live block, a misaligned one, the same block twice), silently for the two
# double frees, even with SLUB_STRICT=1.
# usage: heap_attacks.sh PATH/TO/libslub.so PATH/TO/heap_attacks
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=$(readlink -f "$2")
need "$BIN"
check_preload
cd "$TMP"
for attack in uaf-freeptr partial-byte double-free realloc-freed; do
  rc=0
  LD_PRELOAD="$PRELOAD" "$BIN" "$attack" >"$attack.out" 2>"$attack.err" </dev/null || rc=$?
  ((rc == 0)) || fail "$attack: $(cat "$attack.out") (exit status $(describe_status "$rc"))"
  grep -q '^safe: ' "$attack.out" || fail "$attack: no verdict: $(cat "$attack.out")"
  grep -q '^slub: ' "$attack.err" || fail "$attack: withstood but not reported on stderr"
  rc=0
  SLUB_STRICT=1 LD_PRELOAD="$PRELOAD" "$BIN" "$attack" >"$attack.strict.out" \
    2>"$attack.strict.err" </dev/null || rc=$?
  ((rc == 134)) ||
    fail "$attack: SLUB_STRICT=1 exited with $(describe_status "$rc"), not SIGABRT: $(cat "$attack.strict.out")"
  grep -q 'SLUB_STRICT is set: aborting' "$attack.strict.err" ||
    fail "$attack: SLUB_STRICT=1 aborted without saying why"
  echo "$attack: $(cat "$attack.out"); strict: aborted"
done
