// SPDX-License-Identifier: MIT
// base/lock_rank: the allocator's lock classes and their order, the one place it is written.
//
// Every SpinLock names its class as a template argument (SpinLock<LockClass::kCpuSlot>), so
// the class costs no byte and no instruction: it exists only for the compiler, and for the
// lock checker when SLUB_LOCKDEP is defined (CMake: SLUB_LOCKDEP=ON, the default of Debug
// builds). What each lock guards is documented where it is declared, and for SLUB's locks in
// the opening comment of slub/slub.cc.
//
// The rule the checker enforces: a thread takes a lock only if its class comes later in the
// list below than the class of every lock the thread already holds. Two exceptions, both as
// Linux's lockdep has them:
//   - try_lock cannot deadlock: a lock taken by a successful try_lock is not checked against
//     the held ones (the SLAB reaper try-locks arrays under g_slab_mutex; a locked fast path
//     try-locks its CPU slot), but is held from then on, and later locks are checked
//     against it.
//   - lock_nest(nest): several locks of one class held at once, as fork_prepare does for
//     every CPU slot, barn and node of every cache (and slab::lock_all for SLAB's arrays,
//     alien caches and nodes). Allowed only while the thread holds
//     `nest` (g_slab_mutex), which makes it the only thread that can hold more than one lock
//     of those classes: the many locks count as one, like lockdep's nest_lock.
// Releasing a lock the thread does not hold is an error too. pal/lockdep.cc has the checker.
#pragma once

#include <cstdint>

namespace slub {

// Outermost first; a class's rank is its position. Where a class is taken under another (the
// nestings the order exists for) is said on its line.
//
// The CPU-area lock comes before g_slab_mutex although nothing is taken under it in normal
// paths: fork_prepare holds it outside all the others, so that no CPU slot can come into use
// between prepare and release (both walk the CPUs in use), and every path that may create an
// area does so before its first lock (get_cpu_area at the slow paths' entry).
enum class LockClass : uint8_t {
  kInit,       // cache/cache.cc g_init_lock: start-up; init_slow holds it while it sets all up
  kCpuArea,    // core/kmem_cache.cc g_area_lock: a CPU's area coming into use
  kSlabMutex,  // g_slab_mutex: the cache list, create, destroy, shrink, the flusher's pass
  kCpuSlot,    // KmemCacheCpu::lock: a CPU's slot of one cache (slow paths, flushes)
  kBarn,       // Barn::lock: taken under a CPU slot's lock by refills and frees
  kNodeList,   // KmemCacheNode::list_lock: under a CPU slot's lock (get_partial_node)
  kSlabArray,  // SLAB's ArrayCache::lock: a CPU's array (slab/slab.h)
  kSlabAlien,  // SLAB's AlienCache::lock
  kSlabList,   // SLAB's SlabNode::list_lock: under an array's or an alien cache's lock
  kReport,     // core/debug.cc g_report_lock: a debug report, under a node's list_lock
  kDepot,      // core/debug.cc g_depot_lock: the stack depot
  kPageAlloc,  // PageAlloc::lock_: under any of the above (new slabs, freed slabs)
  kMeta,       // core/meta.cc g_lock: metadata blocks (sheaves, nodes), under all the above
  kPageClass,  // mm/page_class.cc g_init_lock: the page-entry table; a leaf, as the next two
  kRandom,     // pal/os.cc random_u64's pool: cache keys, slab order; under g_slab_mutex or a slot
  kRcuLoad,    // pal/rcu.cc g_load_lock: liburcu's entry points
  kKfence,     // core/kfence.cc g_lock: the KFENCE pool's slots; a leaf (its fault handler takes
               // it, and a fault may come under any lock)
  kNr
};

// The names reports use, one per class in the order above (checked below).
struct LockClassName {
  LockClass cls;
  const char* name;
};
inline constexpr LockClassName kLockClassNames[] = {
    {LockClass::kInit, "g_init_lock (slub init)"},
    {LockClass::kCpuArea, "g_area_lock (CPU areas)"},
    {LockClass::kSlabMutex, "g_slab_mutex"},
    {LockClass::kCpuSlot, "KmemCacheCpu::lock"},
    {LockClass::kBarn, "Barn::lock"},
    {LockClass::kNodeList, "KmemCacheNode::list_lock"},
    {LockClass::kSlabArray, "ArrayCache::lock (SLAB)"},
    {LockClass::kSlabAlien, "AlienCache::lock (SLAB)"},
    {LockClass::kSlabList, "SlabNode::list_lock (SLAB)"},
    {LockClass::kReport, "g_report_lock (debug reports)"},
    {LockClass::kDepot, "g_depot_lock (stack depot)"},
    {LockClass::kPageAlloc, "PageAlloc::lock_"},
    {LockClass::kMeta, "meta g_lock"},
    {LockClass::kPageClass, "g_init_lock (page entries)"},
    {LockClass::kRandom, "random_u64 lock"},
    {LockClass::kRcuLoad, "g_load_lock (liburcu)"},
    {LockClass::kKfence, "g_lock (KFENCE pool)"},
};
constexpr bool lock_class_names_in_order() {
  constexpr int n = sizeof kLockClassNames / sizeof kLockClassNames[0];
  for (int i = 0; i < n; ++i)
    if (kLockClassNames[i].cls != static_cast<LockClass>(i)) return false;
  return n == static_cast<int>(LockClass::kNr);
}
static_assert(lock_class_names_in_order(), "one name per lock class, in the order of LockClass");

constexpr const char* lock_class_name(LockClass c) {
  return c < LockClass::kNr ? kLockClassNames[static_cast<int>(c)].name : "?";
}

#ifdef SLUB_LOCKDEP
// The checker's entry points (pal/lockdep.cc), called by SpinLock only. `lock` is the lock's
// address; `nest` the lock that allows several of lock's class (kNest only).
namespace lockdep {
enum Mode : uint8_t { kLock, kTry, kNest };
void acquire(LockClass c, const void* lock, Mode mode, const void* nest = nullptr);
void release(LockClass c, const void* lock);
// Locks the calling thread holds (a lock_nest group counts its locks): for tests.
int held_count();
}  // namespace lockdep
#endif

}  // namespace slub
