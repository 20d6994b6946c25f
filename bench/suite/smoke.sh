#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.suite.smoke: runs each workload program of the allocator suite once in its tiny mode
# (--quick, 4 threads) under LD_PRELOAD=libslub.so, and checks that it exits 0 and prints the
# same checksum as the same run without preload (glibc). Correctness only, never timing.
# usage: smoke.sh PATH/TO/libslub.so PROGRAM...
set -uo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 PATH/TO/libslub.so PROGRAM..." >&2; exit 2; }
SO=$(readlink -f "$1")
shift
[[ -f $SO ]] || { echo "FAIL: $SO not found" >&2; exit 1; }
unset LD_PRELOAD
ARGS=(--quick --threads 4)

checksum_of() { sed -n 's/^RESULT .*checksum=\([0-9a-f]*\).*/\1/p' <<<"$1"; }

failed=0
for prog in "$@"; do
  name=$(basename "$prog")
  plain=$(timeout -k 5 20 "$prog" "${ARGS[@]}" 2>&1)
  rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "FAIL: $name (no preload) exited with status $rc: $plain" >&2
    failed=1
    continue
  fi
  out=$(LD_PRELOAD=$SO timeout -k 5 20 "$prog" "${ARGS[@]}" 2>&1)
  rc=$?
  want=$(checksum_of "$plain")
  got=$(checksum_of "$out")
  if [[ $rc -ne 0 ]]; then
    echo "FAIL: $name under $SO exited with status $rc:" >&2
    echo "$out" | tail -n 10 >&2
    echo "  reproduce: LD_PRELOAD=$SO $prog ${ARGS[*]}" >&2
    failed=1
  elif [[ -z $got || $got != "$want" ]]; then
    echo "FAIL: $name under $SO: checksum '${got}', without preload '${want}'" >&2
    echo "  reproduce: LD_PRELOAD=$SO $prog ${ARGS[*]}" >&2
    failed=1
  else
    echo "ok   $name checksum=$got"
  fi
done
exit "$failed"
