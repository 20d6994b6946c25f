// SPDX-License-Identifier: MIT
// cache: the cache layer, above the two allocators (the kernel's mm/slab_common.c). It owns
// what every cache has whichever allocator runs it: start-up, creation (with merging), destroy,
// shrink, validate, the statistics and reports, fork, the one service thread; and it hands each
// operation to the cache's allocator: slub/ (the product) or slab/ (the SLAB clone, a cache with
// SLAB_QUEUED, or every cache under SLUB_ALLOCATOR=slab). slub/ and slab/ know nothing of each
// other or of this layer.
//
// The fast paths stay SLUB's (slub/slub_cache.h): a cache with sheaves is served by its rseq
// sections without a test of the allocator; the classic mode's compare-and-swap misses for a
// SLAB cache (its SLUB CPU slots never hold a freelist), and only the slow path looks at `q`.
#pragma once

#include <cstddef>

#include "core/kmem_cache.h"
#include "core/reentry.h"
#include "core/service.h"
#include "slub/slub_cache.h"

namespace slub {

// Starts the allocator the first time anything asks (idempotent; other threads wait for the
// one that starts it; a signal handler that allocates on that thread meanwhile would wait for
// itself, as before).
void ensure_init();

// The classic mode and SLAB caches, out of line (as one call from the fast paths, like the
// sheaves' slow paths): SLUB's compare-and-swap on the CPU freelist, and on a miss the slow
// path of the cache's allocator. `node` < 0 for any node.
SLUB_NOINLINE void* cache_alloc_classic(KmemCache* s, size_t orig_size);
SLUB_NOINLINE void* cache_alloc_node_classic(KmemCache* s, size_t orig_size, int node);
SLUB_NOINLINE void cache_free_classic(KmemCache* s, PageDesc* slab, void* object);
SLUB_SLOW_PATH void* cache_alloc_slow(KmemCache* s, size_t orig_size, int node);
SLUB_SLOW_PATH void cache_free_slow(KmemCache* s, PageDesc* slab, void* object);

// Allocation from any cache.
SLUB_FAST_PATH void* cache_alloc(KmemCache* s, size_t orig_size) {
  if (SLUB_LIKELY(s->pcs_base != 0)) return pcs_alloc(s, orig_size);
  return cache_alloc_classic(s, orig_size);
}

// kmem_cache_alloc_node: sheaves hold any node's objects, so an allocation for a node goes to
// the slabs (the kernel does the same); the classic mode checks the CPU slab's node in its
// compare-and-swap path.
SLUB_FAST_PATH void* cache_alloc_node(KmemCache* s, size_t orig_size, int node) {
  if (s->pcs_base != 0) return __slab_alloc_node(s, orig_size, node);
  return cache_alloc_node_classic(s, orig_size, node);
}

// Free of `object` of `s`, whose descriptor is `slab` (an object start, checked).
SLUB_FAST_PATH void cache_free(KmemCache* s, PageDesc* slab, void* object) {
  if (s->pcs_base != 0) return pcs_free_desc(s, slab, object);
  cache_free_classic(s, slab, object);
}

// Creates a cache, or returns a compatible existing one with `name` as a new alias.
KmemCache* cache_create(const char* name, size_t size, size_t align, unsigned long flags,
                        kmem_ctor_t ctor, size_t useroffset, size_t usersize,
                        int sheaf_capacity = -1);
int cache_destroy(KmemCache* s);
int cache_shrink(KmemCache* s);
// Flushes the CPU slabs and checks every slab on the node lists. Returns the errors found.
int cache_validate(KmemCache* s);
// The same two with g_slab_mutex already held (the service thread's commands).
int cache_validate_locked(KmemCache* s);
int cache_shrink_locked(KmemCache* s);
// alloc_calls and free_calls (needs U): the kernel's summary of the live (or free) objects of
// a cache by the call site of their last alloc (or free), one line per site, most frequent first:
//   "<count> <sym+0xoff/0xsize [module]> age=<min>/<avg>/<max> tid=<min>-<max> cpus=<list>"
// (ages in ms; the kernel's pid= is the thread id range here).
struct CallSite {
  const void* addr;
  long count;
  uint64_t min_age, max_age, sum_age;
  int min_tid, max_tid;
  uint64_t cpus;  // CPUs 0..63 seen (a summary, as the kernel's cpus= list)
};
struct CallSites {
  static constexpr int kMax = 256;
  CallSite site[kMax];
  int n = 0;
  long dropped = 0;  // objects of further call sites
  uint64_t now = 0;
};
// One line of a report (with its newline); false stops the report (the output is gone or full).
using LineSink = bool (*)(const char* line, size_t len, void* arg);
// Gathers the call sites of `s` with g_slab_mutex held (flushes its CPU slabs); false without U.
bool cache_collect_calls_locked(KmemCache* s, bool free_calls, CallSites* sites);
// Sorts the sites and writes their lines to sink; names the call sites, so call it without locks.
void cache_emit_calls(CallSites* sites, LineSink sink, void* arg);
// The summary of `s` to fd, or to the report output (pal/os.h write_report): the number of
// call sites, or -1 without U.
int cache_print_calls(KmemCache* s, bool free_calls, int fd);
int cache_report_calls(KmemCache* s, bool free_calls);
void cache_get_info(const KmemCache* s, kmem_cache_info* info);
// What the queues and per-CPU structures hold (SLUB or the SLAB clone).
void cache_queue_info(KmemCache* s, kmem_cache_queue_info* info);
// Per-node counts.
void cache_node_info(const KmemCache* s, int node, kmem_cache_node_info* info);

// Calls fn(s) for every cache, g_slab_mutex held, inside a ReentryGuard (a signal handler's
// malloc meanwhile is a nested one, never a wait for a lock this thread holds).
template <typename F>
void for_each_cache(F fn) {
  ensure_init();
  ReentryGuard guard;
  LockGuard g(g_slab_mutex);
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next)
    fn(list_entry<KmemCache, &KmemCache::list>(h));
}

// ---------------------------------------------------------------------------------------------
// Sums over every cache, for glibc's mallinfo2, malloc_stats and malloc_info (cache/totals.cc;
// docs/MALLINFO.md maps them to glibc's fields). Gathered under g_slab_mutex inside a
// ReentryGuard, as the other statistics, without calling malloc; the caller formats and writes
// them afterwards, with no lock held. Bytes are slot bytes (s->size: what an object occupies).
struct CacheTotals {
  size_t caches;             // caches in the list
  size_t in_use_objs;        // objects the program holds: in use, minus those parked below
  size_t in_use_bytes;       //   their slot bytes
  size_t parked_objs;        // free objects held per CPU and per node in front of the slabs:
  size_t parked_bytes;       //   SLUB sheaves, CPU slabs, CPU partials, barns; SLAB arrays
  size_t node_free_objs;     // free objects on the node lists (partial and free slabs)
  size_t node_free_bytes;    //   their slot bytes
  size_t slab_bytes;         // slabs of the caches (nr_slabs * slab size)
  size_t empty_slab_bytes;   // wholly free slabs on node lists (what a shrink frees at once)
  size_t active_user_bytes;  // objects counted active (parked ones too) * object size: the
                             // "Used" of tools/slabinfo -T
};
void cache_totals(CacheTotals* t);

// One line of a node's free objects: `count` objects of slot size `size` (caches of equal slot
// sizes added together).
struct FreeBucket {
  size_t size, count;
};
struct NodeFree {
  static constexpr int kMax = 128;
  FreeBucket bucket[kMax];  // ascending sizes
  int n;
  size_t other_count, other_bytes, other_min, other_max;  // sizes beyond the kMax first ones
  size_t objs, bytes;                                     // all of them
};
// The free objects on node `node`'s lists, by slot size (the SLAB clone: those of partial
// slabs; its wholly free slabs are counted in CacheTotals only).
void cache_node_free(int node, NodeFree* out);

// Flushes the per-CPU layers of every cache and releases every empty slab (kmem_cache_shrink
// on each cache). Returns the slabs released.
int cache_shrink_all();

// The service thread (cache/service.cc): its body, and the start of the statistics area's
// first second (a fork child's starts at the fork).
void service_init();  // at start-up: its options, then core/service.h's configuration
void* service_main(void*);
void service_reset_clock();

}  // namespace slub
