#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Where the allocator's reports go (src/pal/os.h, write_report), with real programs:
#  - GNU sort closes its stderr at exit (gnulib's close_stdout), before libslub.so's exit report
#    runs: SLUB_REPORT=1's cache table must still reach the stderr sort started with (the copy
#    of descriptor 2 kept at start-up);
#  - with SLUB_DEBUG_LOG=FILE the table goes to FILE, and nothing to stderr;
#  - a program that puts a file of its own onto descriptor 2 (dup2) gets the table in that file:
#    reports follow descriptor 2 while it is open;
#  - the kept copy is closed on exec: an exec'ed program does not inherit it;
#  - it is used only while it is the same file: not after the program reused its number.
# usage: report_output.sh PATH/TO/libslub.so
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need sort
check_preload
cd "$TMP"

printf '%s\n' pear apple fig banana cherry >input.txt
sort input.txt >expected.txt

# The table's header line (kernel slabinfo columns) and a line of a kmalloc cache.
has_table() {
  grep -q '^Name  *Objects Objsize  *Space Slabs/Part/Cpu' "$1" && grep -q '^kmalloc-' "$1"
}

# 1. stderr, although sort closes it before the report is written.
SLUB_REPORT=1 LD_PRELOAD="$PRELOAD" sort input.txt >sort.out 2>sort.err ||
  fail "sort under SLUB_REPORT=1 exited with $?"
cmp -s expected.txt sort.out || fail "sort's output differs under LD_PRELOAD"
has_table sort.err || {
  cat sort.err >&2
  fail "SLUB_REPORT=1 sort: the cache table did not reach stderr (sort closes it at exit)"
}
echo "ok: SLUB_REPORT=1 sort: the cache table reached stderr ($(wc -l <sort.err) lines)"

# 2. SLUB_DEBUG_LOG takes the table; stderr gets nothing.
SLUB_REPORT=1 SLUB_DEBUG_LOG="$TMP/slub.log" LD_PRELOAD="$PRELOAD" sort input.txt >log.out \
  2>log.err || fail "sort under SLUB_DEBUG_LOG exited with $?"
cmp -s expected.txt log.out || fail "sort's output differs under LD_PRELOAD and SLUB_DEBUG_LOG"
[[ -f slub.log ]] && has_table slub.log || fail "SLUB_DEBUG_LOG=FILE sort: no cache table in FILE"
[[ ! -s log.err ]] || {
  cat log.err >&2
  fail "SLUB_DEBUG_LOG=FILE sort: something still went to stderr"
}
echo "ok: SLUB_REPORT=1 SLUB_DEBUG_LOG=FILE sort: the cache table is in FILE, stderr is empty"

# 3. and 4. need python3 (the real one: a wrapper script would be preloaded too): a dup2 after
# start-up, and an exec that lists the descriptors it inherited.
PY=/usr/bin/python3
if [[ -x "$PY" ]]; then
  cat >redirect.py <<'PY'
import os, sys
fd = os.open("redirected.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(fd, 2)
os.close(fd)
if len(sys.argv) > 1:
    # A program exec'ed from here (without the preload, which would keep a copy of its own)
    # has only the descriptors that are not close-on-exec.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    os.execve("/bin/sh", ["sh", "-c", "ls /proc/$$/fd > fds.txt"], env)
PY
  SLUB_REPORT=1 LD_PRELOAD="$PRELOAD" "$PY" redirect.py >py.out 2>py.err ||
    fail "$PY redirect.py exited with $?"
  has_table redirected.txt || fail "a program's dup2 onto descriptor 2: the table did not follow it"
  ! has_table py.err || fail "a program's dup2 onto descriptor 2: the table went to the old stderr"
  echo "ok: after the program's dup2 onto descriptor 2 the table went there"

  "$PY" redirect.py exec >/dev/null 2>&1 || fail "the exec case failed without the preload"
  mv fds.txt fds.plain.txt
  LD_PRELOAD="$PRELOAD" "$PY" redirect.py exec >/dev/null 2>&1 || fail "the exec case failed"
  [[ -s fds.txt ]] || fail "the exec case listed no descriptors"
  cmp -s fds.plain.txt fds.txt ||
    fail "an exec'ed program inherited descriptors from the preloaded one (the kept stderr is not close-on-exec?): $(tr '\n' ' ' <fds.txt), without the preload: $(tr '\n' ' ' <fds.plain.txt)"
  echo "ok: the kept copy of stderr is not inherited across exec ($(tr '\n' ' ' <fds.txt))"

  # 5. The kept copy is used only while it is the same file: a program that closed its stderr
  #    and put another file on the kept copy's number gets no report in that file.
  cat >reuse.py <<'PY'
import os, sys
def target(n):
    try:
        return os.readlink("/proc/self/fd/%s" % n)
    except OSError:  # listdir's own descriptor, closed by now
        return None
err = target(2)
kept = [int(n) for n in os.listdir("/proc/self/fd") if int(n) > 2 and target(n) == err]
assert kept, "no copy of stderr among the descriptors"
fd = os.open("other.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)  # before: not on 2
os.close(2)
if sys.argv[1] == "reuse":
    os.dup2(fd, max(kept))
PY
  SLUB_REPORT=1 LD_PRELOAD="$PRELOAD" "$PY" reuse.py close >/dev/null 2>closed.err ||
    fail "$PY reuse.py close exited with $?"
  has_table closed.err || fail "python3 closed its stderr: the table did not reach the kept copy"
  SLUB_REPORT=1 LD_PRELOAD="$PRELOAD" "$PY" reuse.py reuse >/dev/null 2>reused.err ||
    fail "$PY reuse.py reuse exited with $?"
  ! has_table other.txt || fail "the table went into a file the program put on the kept copy's number"
  echo "ok: a closed stderr gets the table through the kept copy, a reused number does not"
fi
