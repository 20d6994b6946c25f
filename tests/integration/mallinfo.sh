#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# glibc's malloc extensions answered by slub under LD_PRELOAD (docs/MALLINFO.md): a C program
# (mallinfo_prog.c, linked normally) allocates 20000 blocks of 256 bytes and reads mallinfo2,
# mallinfo, malloc_trim, malloc_stats and malloc_info. Checked:
#   - uordblks grows by at least the bytes allocated and drops back after the free; mallinfo's
#     ints are mallinfo2's; malloc_trim returns 1 and arena shrinks; malloc_stats prints glibc's
#     lines and the caches; malloc_info is well-formed XML with a heap per node, and
#     malloc_info(1) fails with EINVAL (glibc's own mallinfo2 would see none of these blocks);
#   - tools/slabinfo -T on the live program agrees: its "Used" (objects counted active times
#     object size, parked objects included) is mallinfo2's uordblks + fsmblks exactly, when no
#     flush moves objects between the two reads (SLUB_FLUSH_MS=3600000; the kmalloc classes'
#     slot size is their object size), and between uordblks and uordblks + fsmblks under the
#     SLAB clone, whose reaper drains its arrays every 100 ms.
# usage: mallinfo.sh PATH/TO/libslub.so PATH/TO/slabinfo PATH/TO/slub_mallinfo_prog
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# -ge 3 ]] || { echo "usage: $0 libslub.so slabinfo mallinfo_prog" >&2; exit 2; }
SLABINFO="$(readlink -f "$2")"
PROG="$(readlink -f "$3")"
check_preload
cd "$TMP"

field() { # field LINE_TAG NAME FILE: the value of NAME= on the line starting with LINE_TAG
  sed -n "s/^$1 .*\\b$2=\\([0-9-]*\\).*/\\1/p" "$3" | head -n 1
}

# --- one run: counts, trim, stats, info ---
LD_PRELOAD="$PRELOAD" "$PROG" --trim --report >run.out 2>run.err || fail "mallinfo_prog failed: $(cat run.err)"
before=$(field before uordblks run.out)
allocated=$(field allocated uordblks run.out)
freed=$(field freed uordblks run.out)
[[ -n "$before" && -n "$allocated" && -n "$freed" ]] || fail "no mallinfo2 lines: $(cat run.out)"
((allocated - before >= 20000 * 256)) ||
  fail "uordblks grew by $((allocated - before)) bytes for 20000 x 256 allocated"
((allocated - before < 20000 * 256 + 65536)) ||
  fail "uordblks grew by $((allocated - before)) bytes for 20000 x 256 allocated (too much)"
((freed == before)) || fail "uordblks after the free: $freed, before the allocation: $before"
for when in before allocated freed; do
  for f in arena uordblks fordblks; do
    [[ "$(field "$when-int" "$f" run.out)" == "$(field "$when" "$f" run.out)" ]] ||
      fail "mallinfo().$f differs from mallinfo2().$f ($when)"
  done
done
grep -qx "trim=1" run.out || fail "malloc_trim(0) after freeing 5 MB: $(grep trim= run.out)"
(($(field trimmed arena run.out) + 4000000 < $(field freed arena run.out))) ||
  fail "arena after malloc_trim: $(field trimmed arena run.out), before: $(field freed arena run.out)"
for line in "Arena 0:" "system bytes     = " "in use bytes     = " "Total (incl. mmap):" \
  "max mmap regions = " "max mmap bytes   = " "kmalloc-256 "; do
  grep -qF "$line" run.err || fail "malloc_stats printed no '$line': $(cat run.err)"
done
sed -n '/^<<<$/,/^>>>$/p' run.out | sed '1d;$d' >info.xml
head -n 1 info.xml | grep -qx '<malloc version="1">' || fail "malloc_info: $(head -n 3 info.xml)"
grep -q '^<heap nr="0">$' info.xml || fail "malloc_info has no heap 0: $(cat info.xml)"
if command -v xmllint >/dev/null; then
  xmllint --noout info.xml 2>xml.err || fail "malloc_info's XML is not well-formed: $(cat xml.err)"
fi
grep -qx "info0=0" run.out || fail "malloc_info(0, stdout) did not return 0"
grep -qx "info1=-1 errno=22" run.out || fail "malloc_info(1, stdout): $(grep info1= run.out)"
echo "ok: mallinfo2/mallinfo/malloc_trim/malloc_stats/malloc_info under LD_PRELOAD"

# --- tools/slabinfo -T on the live program ---
mkfifo in.fifo
for mode in slub classic slab; do
  envs=(SLUB_FLUSH_MS=3600000)
  [[ $mode == classic ]] && envs+=(SLUB_SHEAVES=0)
  [[ $mode == slab ]] && envs+=(SLUB_ALLOCATOR=slab)
  env "${envs[@]}" LD_PRELOAD="$PRELOAD" "$PROG" --serve <in.fifo >serve.$mode 2>serve.$mode.err &
  pid=$!
  exec 7>in.fifo
  for _ in $(seq 100); do
    [[ -e /dev/shm/slub.$pid ]] && grep -qx ready serve.$mode && break
    sleep 0.1
  done
  [[ -e /dev/shm/slub.$pid ]] || fail "$mode: no statistics area for pid $pid after 10 s"
  "$SLABINFO" -T -B "$pid" >totals.$mode 2>&1 || fail "$mode: slabinfo -T -B $pid: $(cat totals.$mode)"
  echo >&7 # the fields again, after slabinfo's snapshot
  for _ in $(seq 100); do
    grep -q '^serve ' serve.$mode && break
    sleep 0.1
  done
  exec 7>&-
  wait "$pid" || fail "$mode: mallinfo_prog --serve failed: $(cat serve.$mode.err)"
  used=$(awk '$1 == "Used" { print $5 }' totals.$mode)
  [[ -n "$used" ]] || fail "$mode: no Used line in slabinfo -T: $(cat totals.$mode)"
  u=$(field serve uordblks serve.$mode)
  fs=$(field serve fsmblks serve.$mode)
  ((u == $(field allocated uordblks serve.$mode))) ||
    fail "$mode: uordblks changed while the program only waited: $(grep -E '^(allocated|serve) ' serve.$mode)"
  if [[ $mode == slab ]]; then
    ((u <= used && used <= u + $(field allocated fsmblks serve.$mode))) ||
      fail "$mode: slabinfo Used $used is not within uordblks $u .. + fsmblks"
  else
    ((used == u + fs)) || fail "$mode: slabinfo Used $used != uordblks $u + fsmblks $fs"
  fi
  echo "ok: $mode: slabinfo -T Used $used bytes; mallinfo2 uordblks $u + fsmblks $fs"
done
