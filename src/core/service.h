// SPDX-License-Identifier: MIT
// core/service: the one service thread of the process, never one per CPU, per cache or per
// allocator. What it does (flushing idle sheaves and CPU slabs, SLAB's reaping, purging free
// pages, the statistics area and its commands) is the cache layer's (cache/service.cc), which
// names both allocators; here is only when it starts, so that SLUB's slow paths below the cache
// layer can ask for it (the cache layer asks for SLAB caches, whose queues must be reaped).
#pragma once

#include <atomic>

#include "base/base.h"

namespace slub {

extern std::atomic<bool> g_service_started;

// Set once at start-up by the cache layer: the thread's body; whether a thread may run at all
// (SLUB_FLUSHER); whether it is wanted at once (the statistics area is exported).
void service_configure(void* (*main)(void*), bool allowed, bool eager);

SLUB_SLOW_PATH void service_request_slow(bool needed);
// Called at the end of slow paths, with no lock held: starts the thread if it is allowed and
// there is work for it: `needed` (a SLAB cache is in use: its queues must be reaped), the
// export, per-CPU state on two CPUs that can go idle, or free pages to purge.
inline void service_request(bool needed = false) {
  if (SLUB_LIKELY(g_service_started.load(std::memory_order_relaxed))) return;
  service_request_slow(needed);
}

// fork child: the thread did not survive the fork; the next request starts the child's own.
void service_forget();

}  // namespace slub
