// SPDX-License-Identifier: MIT
// core/kfence: sampled memory-safety checks that can stay on in production, as the kernel's
// KFENCE (mm/kfence/). Now and then one allocation is served from a pool of guarded slots
// instead of its slab: each object alone on a page between two inaccessible guard pages, set
// against the page's end or its start (alternately), the rest of the page filled with canary
// bytes. An access past either end faults in a guard page, an access after free faults in the
// object's page (made inaccessible by the free until the slot is reused, oldest first), a
// write into the page's spare bytes is found by the canary check on free, and a free of
// anything but a live pool object's start is an invalid free. Each is reported once, in the
// kernel's format, with the access's stack and the object's allocation (and free) stacks;
// then the program goes on (the faulting page made accessible) or, with SLUB_KFENCE_ABORT=1,
// aborts.
//
// Sampling costs the fast paths nothing: every SLUB_KFENCE ms the service thread arms the
// sampler (arm(): a token) and closes the CPU slots of every cache on 16 of the CPUs in use
// (the next 16 the next time) to the fast paths (slub.cc slub_kfence_arm, the way a slot's
// lock holder stops it), so that the next allocation or free there takes its slow path; the
// first slow-path allocation that finds the token takes it and serves the allocation from the
// pool (when the object fits a page). A free's slow path opens the slot again without
// sampling: the slots are closed again at every interval. SLUB_KFENCE_SAMPLE=N instead samples
// every Nth slow-path allocation and keeps the slots closed, so that every allocation is a
// slow path: a test mode, slow.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/kmem_cache.h"

namespace slub::kfence {

// The pool's address range ([g_start, g_start + g_bytes)), set once when the pool is made.
extern std::atomic<uintptr_t> g_start;
extern size_t g_bytes;
// The service thread's token: 1 when the next compatible slow-path allocation is sampled.
extern std::atomic<int> g_armed;
// SLUB_KFENCE_SAMPLE > 0: every slow path asks (sample()), and the slots stay closed.
extern bool g_every;

// Reads the options; makes the pool if sampling is on. At start-up, no lock held.
void init();
// SLUB_KFENCE's interval in ms, 0 when off or in the SLUB_KFENCE_SAMPLE mode.
unsigned interval_ms();
// Whether slow paths should keep the CPU slots closed to the fast paths (SLUB_KFENCE_SAMPLE).
inline bool keep_slots_closed() {
  return SLUB_UNLIKELY(g_every);
}

// Whether `p` is in the pool (one compare; false while there is no pool).
inline bool is_kfence_address(const void* p) {
  return reinterpret_cast<uintptr_t>(p) - g_start.load(std::memory_order_relaxed) < g_bytes;
}

// The slow paths of both allocators ask first: an object of `s` of `size` bytes (what the user
// asked for) from the pool, or nullptr (not armed, not sampled, does not fit, pool full).
SLUB_SLOW_PATH void* alloc_slow(KmemCache* s, size_t size);
inline void* maybe_alloc(KmemCache* s, size_t size) {
  if (SLUB_LIKELY(g_armed.load(std::memory_order_relaxed) == 0 && !g_every)) return nullptr;
  return alloc_slow(s, size);
}

// Free of a pool address (is_kfence_address): checks, canaries, reports; the page becomes
// inaccessible. From inside a slow path (a signal handler's free) a live object's free is
// deferred, anything else ignored without a report (the pool's lock may be held).
SLUB_SLOW_PATH void free(void* p);
// The size the user asked for of the live pool object `p` starts, 0 if p is not one. Like
// cache_of and stats, safe in a signal handler that interrupted the pool's lock holder.
size_t ksize(const void* p);
// The cache of the live pool object `p` starts, nullptr if p is not one.
const KmemCache* cache_of(const void* p);
// How many pool objects of `s` are live; the first `max` of them into found[]. A cache is
// destroyed only without any (as without live slab objects): whether an object was sampled
// does not change what kmem_cache_destroy does.
unsigned live_objects(const KmemCache* s, void** found, unsigned max);

// The service thread, every interval_ms(): sets the token; false if it was still set (no
// allocation took it since).
bool arm();

// The kernel's /sys/kernel/debug/kfence/stats.
struct Stats {
  bool enabled;
  unsigned interval_ms;   // 0: SLUB_KFENCE_SAMPLE mode or off
  unsigned sample_every;  // SLUB_KFENCE_SAMPLE
  unsigned objects;       // the pool's slots
  uint64_t allocated;     // currently allocated
  uint64_t allocs, frees;
  uint64_t bugs;
  uint64_t skip_incompatible;  // too large for a page, or a cache the pool cannot serve
  uint64_t skip_capacity;      // every slot in use
  uint64_t pool_bytes;         // address space (guard pages included)
  uint64_t resident_bytes;     // pages of live objects, and pages a report opened
  uint64_t meta_bytes;         // the slots' descriptors
};
void stats(Stats* out);
// The stats and then every used slot (the kernel's stats and objects files) as text into
// buf[0..cap); returns the bytes written. Slots are written whole: at the first that does not
// fit, it stops and sets *cut.
size_t describe(char* buf, size_t cap, bool* cut);

// fork(): the pool's lock, taken by fork_prepare after every other lock, released on both
// sides.
void fork_lock();
void fork_unlock();

}  // namespace slub::kfence
