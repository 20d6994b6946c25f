// SPDX-License-Identifier: MIT
// slab: a faithful clone of the kernel's queue-heavy SLAB allocator (mm/slab.c, removed in
// 6.8), behind the same KmemCache as SLUB so that the cache API, malloc, the tests and the
// harness run on either. docs/SLAB.md describes it and gives every parameter and queue
// formula.
//
// A cache created with SLAB_QUEUED (or any cache under SLUB_ALLOCATOR=slab) has `q` set. Its
// SLUB CPU slots stay empty, so the classic fast paths miss and the cache layer's slow paths
// (cache/cache.cc) hand the operation to slab::alloc/slab::free here. Nothing here knows SLUB.
//
// Structures (per cache): one array_cache per possible CPU (16 + 8 x limit bytes, allocated
// for every CPU at creation, as alloc_percpu does), and per node: three slab lists (partial,
// full, free) with free_objects and free_limit, a shared array, and an alien cache for every
// other node. Slabs keep their free-index array on the slab (OBJFREELIST: inside a free
// object; ON_SLAB: at the end), with cache colouring.
//
// Locks, outermost first: a CPU's array lock -> an alien cache's lock -> a node's list_lock ->
// the page allocator. The reaper only try-locks arrays and alien caches.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kmem_cache.h"

namespace slub {

// The kernel's struct array_cache: a LIFO stack of object pointers. 16 bytes of header (the
// lock is packed where the kernel had padding) and `limit` entries.
struct ArrayCache {
  uint32_t avail;                        // entries held
  uint16_t limit;                        // capacity
  uint16_t batchcount;                   // transfer unit
  uint8_t touched;                       // used since the last reap
  SpinLock<LockClass::kSlabArray> lock;  // a CPU's array: see the lock order above
  uint8_t pad[6];
  void** entry() { return reinterpret_cast<void**>(this + 1); }
};
static_assert(sizeof(ArrayCache) == 16, "the kernel's array_cache header");

// The kernel's struct alien_cache: a lock and a 12-entry array (24 + 96 bytes).
struct AlienCache {
  SpinLock<LockClass::kSlabAlien> lock;
  uint8_t pad[7];
  ArrayCache ac;
};
static_assert(sizeof(AlienCache) == 24);

// SLAB's struct kmem_cache_node.
struct SlabNode {
  SpinLock<LockClass::kSlabList> list_lock;
  ListHead slabs_partial;
  ListHead slabs_full;
  ListHead slabs_free;
  size_t total_slabs;
  size_t free_slabs;
  size_t free_objects;  // in partial and free slabs
  uint32_t free_limit;  // (1 + CPUs of the node) x batchcount + objects per slab
  uint32_t colour_next;
  uint8_t free_touched;
  uint64_t next_reap_ns;
  ArrayCache* shared;  // nullptr when shared == 0
  AlienCache** alien;  // nr_nodes pointers, nullptr for this node; nullptr with one node
};

// Byte counts of the queue structures, kept as they are allocated (kernel kmalloc sizes).
struct SlabBytes {
  size_t cpu;     // per-CPU arrays
  size_t shared;  // shared arrays
  size_t alien;   // alien caches and their pointer tables
  size_t node;    // SlabNode structures
};

// The SLAB part of a cache.
struct SlabCache {
  uint32_t limit, batchcount, shared;  // the kernel's tunables
  uint32_t num;                        // objects per slab
  uint32_t gfporder;
  uint32_t colour;      // colours available
  uint32_t colour_off;  // bytes per colour (a cache line, or align if larger)
  bool objfreelist;     // index array inside a free object, else at the slab's end (ON_SLAB)
  int nr_cpus;          // per-CPU arrays allocated
  int nr_nodes;
  uint32_t cpu_stride;  // 16 + 8 x limit
  char* cpu_arrays;     // nr_cpus x cpu_stride
  size_t cpu_arrays_bytes;
  SlabNode** node;
  SlabBytes bytes;
  std::atomic<uint64_t> grown{0}, reaped{0}, node_allocs{0}, node_frees{0}, alien_overflow{0};

  ArrayCache* cpu_ac(int cpu) {
    return reinterpret_cast<ArrayCache*>(cpu_arrays + size_t(cpu) * cpu_stride);
  }
};

namespace slab {

// Makes `s` (opened by kmem_cache_open with SLUB's sizes) a SLAB cache: recomputes size,
// order and objects with SLAB's rules and allocates every queue. g_slab_mutex held. False on
// failure (the caller releases the cache).
bool open(KmemCache* s);
// Frees the queue structures of a cache with no objects left. g_slab_mutex held.
void close(KmemCache* s);

// `node` < 0: the CPU's node through the per-CPU array; else that node (kmem_cache_alloc_node:
// the local node through the array, a remote one straight from its lists).
void* alloc(KmemCache* s, int node);
void free(KmemCache* s, PageDesc* slab, void* object);

// Empties every queue of `s` and frees its free slabs. Returns slabs freed.
int shrink(KmemCache* s);
// Slabs still holding objects after shrink (destroy refuses a busy cache).
size_t busy_slabs(KmemCache* s);

void get_info(const KmemCache* s, kmem_cache_info* info);
void node_info(const KmemCache* s, int node, kmem_cache_node_info* info);
void queue_info(const KmemCache* s, kmem_cache_queue_info* info);

// The reaper, run by the one service thread (cache/service.cc): cache_reap for CPU `cpu` now,
// as the kernel's per-CPU work item would run it. g_slab_mutex is try-locked; false if it was
// busy.
bool reap_cpu(int cpu, uint64_t now_ns);
// One pass of the service thread (every 100 ms while reap_wanted): the CPUs whose reap is due.
void reap_pass(uint64_t now_ns);
bool reap_wanted();        // a SLAB cache is open
uint64_t reaper_cpu_ns();  // CPU time the reaping has used

// fork(): every SLAB lock, in the lock order; after g_slab_mutex.
void lock_all();
void unlock_all(bool child);

}  // namespace slab
}  // namespace slub
