#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One service thread for all periodic work, whichever allocator runs the caches: a preloaded
# python3 that allocates on its main thread and on a second thread of its own, and then lives
# past the first second (when the statistics area and every periodic job are running), shows
# exactly one thread that is not the program's in /proc/PID/task: slub-service. Under
# SLUB_ALLOCATOR=slab the SLAB clone's reaping runs on that thread too (there was a separate
# slab-reaper thread before), and with SLUB_FLUSHER=0 there is none.
# usage: service_thread.sh PATH/TO/libslub.so
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PY=/usr/bin/python3
need "$PY"
check_preload
cd "$TMP"
cat >tasks.py <<'PY'
import os, threading, time
def churn():
    x = [str(i) * 3 for i in range(200000)]
    del x[::2]
t = threading.Thread(target=churn, name="worker")
t.start(); churn(); t.join()
time.sleep(2.5)
for tid in sorted(os.listdir("/proc/self/task")):
    with open("/proc/self/task/%s/comm" % tid) as f:
        print(f.read().strip())
PY
for mode in slub slab; do
  for flusher in 1 0; do
    out="$TMP/tasks.$mode.$flusher"
    SLUB_ALLOCATOR=$mode SLUB_FLUSHER=$flusher LD_PRELOAD="$PRELOAD" "$PY" tasks.py >"$out" ||
      fail "python3 failed under SLUB_ALLOCATOR=$mode SLUB_FLUSHER=$flusher"
    # The program's own thread: python3 (the worker has ended). Everything else is ours.
    ours=$({ grep -vx python3 "$out" || true; } | sort | tr '\n' ' ')
    want="slub-service "
    [[ $flusher == 0 ]] && want=""
    [[ "$ours" == "$want" ]] ||
      fail "SLUB_ALLOCATOR=$mode SLUB_FLUSHER=$flusher: threads besides the program's: '${ours}' (want '${want}'): $(tr '\n' ' ' <"$out")"
  done
done
echo "one service thread (slub-service) under SLUB and under the SLAB clone; none with SLUB_FLUSHER=0"
