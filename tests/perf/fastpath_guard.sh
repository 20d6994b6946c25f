#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fastpath_guard.sh: the fast-path guard. Counts, with valgrind's callgrind, the instructions
# of one malloc and one free on the fast path (the inclusive cost of the preloaded library's
# malloc and free inside callgrind_pair's loop of malloc(SIZE)+free pairs, (I(2N) - I(N)) / N
# so that warm-up and slow paths cancel) for a few sizes, in each mode, and compares them with
# the checked-in golden file. Fails when any count grows by more than 10 %: a change that
# makes a fast path longer must update the golden file in the same commit (--update), which
# makes the growth visible in review.
#
#   fastpath_guard.sh PAIR_BIN LIBSLUB_SO GOLDEN [--update]
#
# The modes (the golden file's first column):
#   rseq     sheaves, their rseq sections. Valgrind has no rseq: SLUB_RSEQ_EMULATE=1 gives the
#            one thread a private cpu_id 0 and runs the same sections, never restarted.
#   locked   sheaves without rseq (valgrind, TSan, old kernels): the per-slot lock paths.
#   classic  SLUB_SHEAVES=0: the CPU freelist's tid + cmpxchg16b path.
# Exit status 0 pass, 1 growth or a failed run, 77 (CTest: skipped) when valgrind is missing.
set -uo pipefail

PAIR=$1 SO=$2 GOLDEN=$3 UPDATE=${4:-}
N=50000
SIZES="16 64 256 1024"
MODES="rseq locked classic"
mode_env() {
  case $1 in
    rseq) echo "SLUB_RSEQ_EMULATE=1 SLUB_FLUSHER=0" ;;
    locked) echo "SLUB_FLUSHER=0" ;;
    classic) echo "SLUB_SHEAVES=0 SLUB_FLUSHER=0" ;;
  esac
}
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
  { echo "fastpath_guard: valgrind is not installed; skipped"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Inclusive Ir of malloc, free and the whole loop, from one callgrind run of n pairs.
counts() {  # mode size n
  local mode=$1 out=$TMP/cg.$1.$2.$3
  shift
  # shellcheck disable=SC2046
  env $(mode_env "$mode") LD_PRELOAD="$SO" valgrind --tool=callgrind --toggle-collect=run_pairs --callgrind-out-file="$out" \
    "$PAIR" "$2" "$1" >"$out.log" 2>&1 || { cat "$out.log" >&2; return 1; }
  callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null | awk -v so="$SO" '
    { gsub(",", "", $1) }
    /PROGRAM TOTALS/ { total = $1 }
    index($0, so) && $3 ~ /:malloc$/ { m = $1 }
    index($0, so) && $3 ~ /:free$/ { f = $1 }
    END { if (m == "" || f == "") exit 1; print m, f, total }'
}

fail=0
new=$TMP/golden
echo "# mode size malloc free pair: instructions per call on the fast path (callgrind)" >"$new"
printf '%8s %6s %10s %10s %10s   %s\n' mode size malloc free pair "golden (malloc free pair)"
for mode in $MODES; do
for size in $SIZES; do
  read -r m1 f1 t1 < <(counts "$mode" "$size" "$N") || { echo "fastpath_guard: run failed"; exit 1; }
  read -r m2 f2 t2 < <(counts "$mode" "$size" $((2 * N))) || { echo "fastpath_guard: run failed"; exit 1; }
  m=$(awk -v a="$m1" -v b="$m2" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')
  f=$(awk -v a="$f1" -v b="$f2" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')
  t=$(awk -v a="$t1" -v b="$t2" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')
  echo "$mode $size $m $f $t" >>"$new"
  read -r gm gf gt < <(awk -v o="$mode" -v s="$size" '$1 == o && $2 == s { print $3, $4, $5 }' \
    "$GOLDEN" 2>/dev/null)
  printf '%8s %6s %10s %10s %10s   %s\n' "$mode" "$size" "$m" "$f" "$t" "${gm:-none} ${gf:-} ${gt:-}"
  [[ -n $UPDATE ]] && continue
  if [[ -z ${gm:-} ]]; then
    echo "fastpath_guard: no golden line for $mode size $size in $GOLDEN"; fail=1; continue
  fi
  for pair in "malloc $m $gm" "free $f $gf" "pair $t $gt"; do
    read -r what got want <<<"$pair"
    if awk -v g="$got" -v w="$want" 'BEGIN { exit !(g > w * 1.10) }'; then
      echo "fastpath_guard: FAIL: $mode $what($size) takes $got instructions, golden $want (+10 % allowed)"
      fail=1
    elif awk -v g="$got" -v w="$want" 'BEGIN { exit !(g < w * 0.90) }'; then
      echo "fastpath_guard: $mode $what($size) is down to $got from $want: update the golden (--update)"
    fi
  done
done
done
if [[ -n $UPDATE ]]; then
  cp "$new" "$GOLDEN" && echo "fastpath_guard: wrote $GOLDEN"
  exit 0
fi
((fail == 0)) && echo "fastpath_guard: passed"
exit $fail
