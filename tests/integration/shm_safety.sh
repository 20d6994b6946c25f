#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Nothing in /dev/shm can kill or expose a preloaded program (the statistics area,
# src/slub/export.cc):
#  1. a tiny, a small, a full and a read-only /dev/shm: sleep, python3 and the C++ program run
#     to completion with the same output as without the preload, silent unless SLUB_EXPORT=1
#     was asked for (then one line says there is no area); with room, the area works;
#  2. files planted by another user (nobody) at every pid the victim can get: the victim neither
#     adopts nor truncates them, runs to completion, and tools/slabinfo refuses to read them;
#     a stale area of ours at the victim's pid is replaced; another user's stale area is left.
# Each case runs in a private mount namespace with its own tmpfs on /dev/shm (and, for 2, its
# own pid namespace, so that the victim's pid is known); skipped where unshare is not allowed.
# usage: shm_safety.sh PATH/TO/libslub.so PATH/TO/slabinfo PATH/TO/cxx_program
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# -ge 3 && -x "$2" && -x "$3" ]] ||
  fail "usage: $0 PATH/TO/libslub.so PATH/TO/slabinfo PATH/TO/cxx_program"
SLABINFO="$(readlink -f "$2")"
CXX="$(readlink -f "$3")"
PY=/usr/bin/python3
need "$PY" unshare setpriv mount
check_preload
if ! unshare -m -p -f --mount-proc --propagation private true 2>"$TMP/unshare.err"; then
  echo "SKIP: cannot make private mount and pid namespaces ($(cat "$TMP/unshare.err")):" \
    "this test needs root or unprivileged user namespaces" >&2
  exit 77
fi
export PRELOAD SLABINFO CXX PY TMP

# A python3 that lives past the second after which a program makes its area, then computes.
PY_JOB='import time; time.sleep(1.4); print(sum(len(str(i)) for i in range(200000)))'
export PY_JOB

# in_ns SETUP: runs the programs in a new mount namespace whose /dev/shm is set up by SETUP
# (shell commands); each program's output goes to $TMP/<case>.<prog>.{out,err,rc}.
in_ns() {
  local name=$1 setup=$2 export_opt=$3
  NAME=$name SETUP=$setup EXPORT_OPT=$export_opt unshare -m --propagation private bash -c '
    set -u
    mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 90
    eval "$SETUP" || exit 91
    run() {
      local prog=$1; shift
      env $EXPORT_OPT LD_PRELOAD="$PRELOAD" "$@" >"$TMP/$NAME.$prog.out" 2>"$TMP/$NAME.$prog.err" </dev/null
      echo $? >"$TMP/$NAME.$prog.rc"
    }
    run sleep sleep 1.4
    run py "$PY" -c "$PY_JOB"
    run cxx "$CXX"
  ' || fail "$name: could not set up /dev/shm in the namespace (status $?)"
}

"$PY" -c "$PY_JOB" >"$TMP/py.plain.out" || fail "plain python3 failed"
"$CXX" >"$TMP/cxx.plain.out" || fail "plain C++ program failed"

check_case() {
  local name=$1 expect_lines=$2 prog rc lines
  for prog in sleep py cxx; do
    rc=$(cat "$TMP/$name.$prog.rc")
    ((rc == 0)) || {
      cat "$TMP/$name.$prog.err" >&2
      fail "$name: $prog exited with $(describe_status "$rc") under the preload"
    }
  done
  cmp -s "$TMP/py.plain.out" "$TMP/$name.py.out" || fail "$name: python3 output differs"
  cmp -s "$TMP/cxx.plain.out" "$TMP/$name.cxx.out" || fail "$name: C++ program output differs"
  # sleep and python3 live past a second (they try to make the area); the C++ program does not.
  for prog in sleep py; do
    lines=$(grep -c . "$TMP/$name.$prog.err" || true)
    [[ "$lines" == "$expect_lines" ]] || {
      cat "$TMP/$name.$prog.err" >&2
      fail "$name: $prog printed $lines lines on stderr, expected $expect_lines"
    }
    if ((expect_lines == 1)); then
      grep -q '^slub: no statistics area for tools/slabinfo: ' "$TMP/$name.$prog.err" ||
        fail "$name: $prog's line does not say that there is no statistics area"
    fi
  done
  [[ ! -s "$TMP/$name.cxx.err" ]] || fail "$name: the C++ program printed: $(cat "$TMP/$name.cxx.err")"
  echo "ok: $name"
}

fill='dd if=/dev/zero of=/dev/shm/fill bs=4096 2>/dev/null; true'
for opt in "" "SLUB_EXPORT=1"; do
  expect=0
  [[ -n "$opt" ]] && expect=1
  tag=${opt:+asked}
  in_ns "tiny4k$tag" 'mount -o remount,size=4k /dev/shm' "$opt"
  check_case "tiny4k$tag" "$expect"
  in_ns "small64k-full$tag" "mount -o remount,size=64k /dev/shm && $fill" "$opt"
  check_case "small64k-full$tag" "$expect"
  in_ns "readonly$tag" 'mount -o remount,ro /dev/shm' "$opt"
  check_case "readonly$tag" "$expect"
done

# With 64 KiB of room the area is made (it takes only what the caches need) and can be read.
unshare -m -p -f --mount-proc --propagation private bash -c '
  set -u
  mount -t tmpfs -o mode=1777,size=64k tmpfs /dev/shm || exit 90
  LD_PRELOAD="$PRELOAD" "$PY" -c "$PY_JOB" >"$TMP/room.py.out" 2>"$TMP/room.py.err" </dev/null &
  pid=$!
  "$SLABINFO" -T "$pid" >"$TMP/room.slabinfo.out" 2>&1 || exit 92
  wait "$pid" || exit 93
' || {
  cat "$TMP/room.slabinfo.out" "$TMP/room.py.err" >&2 2>/dev/null
  fail "64 KiB /dev/shm: the area was not made or could not be read"
}
grep -q 'Slabcaches' "$TMP/room.slabinfo.out" || fail "64 KiB /dev/shm: slabinfo -T printed no totals"
[[ ! -s "$TMP/room.py.err" ]] || fail "64 KiB /dev/shm: python3 printed $(cat "$TMP/room.py.err")"
echo "ok: 64 KiB /dev/shm: the area is made and read"

# 2. Planted files. In a pid namespace the victim's pid is one of the first few.
unshare -m -p -f --mount-proc --propagation private bash -c '
  set -u
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 90
  # nobody plants an area for every pid up to 400, world-writable, plus one for a dead pid.
  # (Shell builtins only: no process may use up a pid of the range.)
  setpriv --reuid=65534 --regid=65534 --clear-groups bash -c "
    umask 000
    for ((p = 1; p <= 400; p++)); do
      printf \"planted by nobody for pid %s\n\" \$p >/dev/shm/slub.\$p
    done
    printf \"planted by nobody for pid %s\n\" 99999 >/dev/shm/slub.99999" || exit 91
  cp /dev/shm/slub.10 "$TMP/planted.before"
  SLUB_EXPORT=1 LD_PRELOAD="$PRELOAD" "$PY" -c "$PY_JOB" >"$TMP/victim.out" 2>"$TMP/victim.err" </dev/null &
  pid=$!
  echo "$pid" >"$TMP/victim.pid"
  sleep 1.2
  "$SLABINFO" "$pid" >"$TMP/planted.slabinfo.out" 2>&1
  echo $? >"$TMP/planted.slabinfo.rc"
  "$SLABINFO" >"$TMP/planted.list.out" 2>&1
  wait "$pid"
  echo $? >"$TMP/victim.rc"
  for p in $(seq 1 400) 99999; do
    [[ "$(stat -c %U:%a:%s /dev/shm/slub.$p)" == "nobody:666:$(printf "planted by nobody for pid %s\n" $p | wc -c)" ]] ||
      { echo "slub.$p: $(stat -c %U:%a:%s /dev/shm/slub.$p)"; exit 94; }
    [[ "$(cat /dev/shm/slub.$p)" == "planted by nobody for pid $p" ]] || { echo "slub.$p changed"; exit 95; }
  done
' >"$TMP/planted.ns.out" 2>&1 || {
  cat "$TMP/planted.ns.out" >&2
  fail "planted files: a planted file was changed or removed"
}
pid=$(cat "$TMP/victim.pid")
((pid >= 1 && pid <= 400)) || fail "planted files: the victim got pid $pid, outside the planted range"
[[ "$(cat "$TMP/victim.rc")" == 0 ]] || {
  cat "$TMP/victim.err" >&2
  fail "planted files: the victim (pid $pid) exited with $(cat "$TMP/victim.rc")"
}
cmp -s "$TMP/py.plain.out" "$TMP/victim.out" || fail "planted files: the victim's output differs"
grep -qx "slub: no statistics area for tools/slabinfo: another user's file (or not a regular file) is at /dev/shm/slub.$pid (not ours)" \
  "$TMP/victim.err" || fail "planted files: the victim did not say why it has no area: $(cat "$TMP/victim.err")"
[[ "$(cat "$TMP/planted.slabinfo.rc")" != 0 ]] ||
  fail "planted files: tools/slabinfo read the planted file: $(cat "$TMP/planted.slabinfo.out")"
grep -q "not its area" "$TMP/planted.slabinfo.out" ||
  fail "planted files: tools/slabinfo did not say why it refused: $(cat "$TMP/planted.slabinfo.out")"
echo "ok: planted files are neither adopted nor truncated, the victim runs, slabinfo refuses them"

# 3. A stale area of ours at the victim's pid (an earlier process with that pid, killed) is
# replaced by the victim's own, which slabinfo reads.
unshare -m -p -f --mount-proc --propagation private bash -c '
  set -u
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 90
  umask 077
  for ((p = 1; p <= 400; p++)); do printf "stale\n" >/dev/shm/slub.$p; done
  LD_PRELOAD="$PRELOAD" "$PY" -c "$PY_JOB" >"$TMP/stale.out" 2>"$TMP/stale.err" </dev/null &
  pid=$!
  "$SLABINFO" -T "$pid" >"$TMP/stale.slabinfo.out" 2>&1 || exit 92
  wait "$pid" || exit 93
' >"$TMP/stale.ns.out" 2>&1 || {
  cat "$TMP/stale.ns.out" "$TMP/stale.slabinfo.out" >&2
  fail "stale area of ours: not replaced"
}
grep -q 'Slabcaches' "$TMP/stale.slabinfo.out" || fail "stale area: slabinfo -T printed no totals"
[[ ! -s "$TMP/stale.err" ]] || fail "stale area: python3 printed $(cat "$TMP/stale.err")"
echo "ok: a stale area of ours at the pid is replaced"
