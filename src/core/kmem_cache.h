// core/kmem_cache: the cache descriptor and its per-node and per-CPU parts, the cache registry
// and the per-CPU areas. Shared by everything above mm/.
//
// Per-CPU state is allocated lazily: each CPU that runs allocator code gets a CpuArea (a
// 1 MiB reservation, demand-zero) the first time, and every cache owns one 256-byte slot at
// the same offset (cpu_off) in all areas, like the kernel's percpu allocator. A zeroed slot is
// a valid empty KmemCacheCpu, so a CPU costs nothing until it is used, and 4096 possible CPUs
// cost one 32 KiB pointer table.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <slub/slub.h>
#include <slub/stats.h>

#include "base/base.h"
#include "mm/page_desc.h"
#include "pal/cpu_id.h"
#include "pal/topology.h"

namespace slub {

// The per-CPU part of a cache (the kernel's struct kmem_cache_cpu).
// {freelist, tid} is one double word, changed only by cmpxchg16b or, while kTidBusy is set in
// tid by the holder of `lock`, by plain stores. Fast paths never take `lock`.
// A CPU's sheaf (the kernel 6.18 name): a bounded stack of free objects of any slab of the
// cache, so that a free of an object whose slab is not the CPU's active slab, and the
// allocations after it, need no slab compare-and-swap and no list work. Made for a CPU the
// first time it frees such an object (never for debug caches or the SLAB clone). The rseq
// fast paths push and pop it, committing with the store of `count`; the compare-and-swap
// paths leave it alone, and a slow path touches it only with the slot locked and busy
// (freeze_cpu_freelist), which keeps the rseq sections off it.
struct Sheaf {
  uint64_t count;  // objects in objs[0..count), the newest last
  uint32_t cap;    // KmemCache::sheaf_cap when made
  uint32_t small;  // 1: objects smaller than two cache lines (see rseq_free)
  void* objs[];    // cap entries
};
inline constexpr uint32_t kSheafSmallObject = 128;
inline constexpr uint32_t kSheafMaxCap = 30;  // 16 + 30 * 8 = 256 bytes of meta memory
inline size_t sheaf_bytes(uint32_t cap) {
  return sizeof(Sheaf) + sizeof(void*) * cap;
}

struct alignas(64) KmemCacheCpu {
  DoubleWord freelist_tid;  // lo: CPU freelist head; hi: transaction id (kTidBusy = bit 0)
  PageDesc* slab;           // the active (frozen) slab, or nullptr; changed under lock + busy
  PageDesc* partial;        // per-CPU partial chain (unfrozen slabs); protected by lock
  SpinLock lock;            // slow paths and the flusher
  // slot_activity() at the last idle check or flush (g_slab_mutex), its low 32 bits: a
  // coincidence costs one needless flush, no more.
  uint32_t flush_seen;
  Sheaf* sheaf;  // free objects of other slabs, or nullptr; see Sheaf
  // Statistics (include/slub/stats.h), counted without atomics and summed when read. The two
  // fast-path counters come first, in the line the fast path touches anyway.
  uint64_t stat[NR_SLUB_STAT_ITEMS];
};
static_assert(sizeof(KmemCacheCpu) == 256);
static_assert(offsetof(KmemCacheCpu, stat) + 2 * sizeof(uint64_t) <= 64,
              "the fast-path counters share the freelist's cache line");

// Counts an event in a CPU slot: one unlocked increment (a count may be lost when two threads
// share the slot at that instant, as the kernel accepts). Written as an instruction because a
// relaxed atomic load and store cost three, which the fast path noticed (+5 instructions a
// malloc+free pair against +2).
SLUB_FAST_PATH void stat(KmemCacheCpu* c, slub_stat_item item) {
  __asm__("incq %0" : "+m"(c->stat[item]));
}

// tid: bit 0 marks a slow path in progress (fast paths must not commit); each committed change
// adds kTidStep. Every fast-path compare-and-swap compares the tid, so any change of the slot
// in between makes it fail. The step is a power of two >= the CPU count, as in the kernel,
// so tid % kTidStep / 2 would name the CPU; here the CPU is implied by the slot's address
// because the swap is a locked instruction on that slot, not a CPU-local one.
inline constexpr uint64_t kTidBusy = 1;
inline constexpr uint64_t kTidStep = 2 * kMaxCpus;

// What the flusher compares between two passes to tell a used slot from an idle one: the tid
// (slow paths, and the compare-and-swap fast paths) plus the fast-path counters (the rseq fast
// paths leave the tid alone).
inline uint32_t slot_activity(const KmemCacheCpu* c) {
  return static_cast<uint32_t>(__atomic_load_n(&c->freelist_tid.hi, __ATOMIC_ACQUIRE) +
                               __atomic_load_n(&c->stat[ALLOC_FASTPATH], __ATOMIC_RELAXED) +
                               __atomic_load_n(&c->stat[FREE_FASTPATH], __ATOMIC_RELAXED));
}

// The per-node part of a cache (the kernel's struct kmem_cache_node).
struct alignas(64) KmemCacheNode {
  SpinLock list_lock;                    // protects partial, nr_partial, on_node_partial
  size_t nr_partial;                     // slabs on `partial`
  ListHead partial;                      // partial slabs of this node, unfrozen
  ListHead full;                         // debug caches only: full slabs (list_lock)
  std::atomic<size_t> nr_slabs{0};       // all slabs of the cache on this node
  std::atomic<size_t> total_objects{0};  // objects in those slabs
};

struct SlabCache;  // slab/slab.h

struct KmemCache {
  // ---- read by the fast paths ----
  uint32_t cpu_off;       // offset of this cache's KmemCacheCpu in every CpuArea
  uint32_t size;          // slot size: object + free pointer (if outside) + padding
  uint32_t offset;        // where the free pointer sits in a free slot
  uint32_t object_size;   // what the user asked for
  uint32_t objects;       // objects in a slab of the preferred order
  uint64_t reciprocal;    // ceil(2^40 / size): exact object index for offsets < 1 MiB
  uint32_t red_left_pad;  // left red zone (Z): the object starts this far into its slot
  uint64_t random;        // free pointer encoding key (SLUB_FREELIST_HARDENED), per cache
  uint16_t* random_seq;   // SLUB_FREELIST_RANDOM=1: a permutation of 0..objects-1, or null
  // ---- slow paths ----
  unsigned long flags;
  uint32_t align;
  uint32_t inuse;              // object_size to a word (+ right red zone): metadata start
  uint32_t track_off;          // U: offset of the alloc and free Tracks from the object, or 0
  uint32_t orig_off;           // kmalloc with Z or U: offset of the requested size, or 0
  uint8_t order;               // preferred slab order (the kernel's oo)
  uint8_t min_order;           // fallback order (the kernel's min)
  uint16_t min_objects;        // objects in a slab of min_order
  uint32_t min_partial;        // node partial slabs kept before empty ones are freed
  uint32_t cpu_partial;        // per-CPU partial budget in objects (sysfs compatible)
  uint32_t cpu_partial_slabs;  // the same in slabs, what is enforced
  uint32_t sheaf_cap;          // objects in a CPU's sheaf (0: no sheaves); <= kSheafMaxCap
  // Misses that may take other nodes' partial slabs, out of 1024 (the kernel's field, stored
  // as 1000 by default; its sysfs file shows and takes a tenth of it, 0..100).
  uint32_t remote_node_defrag_ratio;
  kmem_ctor_t ctor;
  uint32_t useroffset;  // usercopy region (kmem_cache_create_usercopy): keeps a cache unmerged
  uint32_t usersize;
  int refcount;  // creators: the first plus its aliases (merged caches)
  int nr_nodes;
  KmemCacheNode** node;  // nr_nodes entries
  ListHead list;         // registry, in creation order
  struct AliasName {
    char name[48];
  };
  AliasName* aliases;  // names of the caches merged into this one (meta memory)
  int nr_aliases;
  int aliases_cap;
  SlabCache* q;  // the SLAB clone's part (SLAB_QUEUED), or nullptr for a SLUB cache
  bool is_kmalloc;
  bool has_cpu_slot;  // cpu_off is allocated (kmem_cache_release frees it only then)
  char name[47];

  bool has_cpu_partial() const { return cpu_partial_slabs != 0; }
  bool is_debug() const { return (flags & SLAB_DEBUG_FLAGS) != 0; }
  bool freeptr_outside() const { return offset >= inuse; }
  // The object in slot `idx` of a slab starting at `base`.
  char* object_at(char* base, size_t idx) const { return base + idx * size + red_left_pad; }
  KmemCacheNode* get_node(int n) const { return node[n < nr_nodes ? n : 0]; }
};

inline constexpr size_t kTrackSize = 32;  // sizeof(Track), core/debug.h

// One per used CPU: a demand-zero mapping holding every cache's KmemCacheCpu slot, 1 MiB (4096
// caches); smaller under a tight RLIMIT_AS (cpu_area_size(), at least 64 KiB: 256 caches).
inline constexpr size_t kCpuAreaSize = size_t{1} << 20;
inline constexpr size_t kMaxCaches = kCpuAreaSize / sizeof(KmemCacheCpu);
size_t cpu_area_size();

extern std::atomic<char*> g_cpu_area[kMaxCpus];

// The calling CPU's slot of `s`, or nullptr if this CPU has no area yet (slow path makes it).
SLUB_FAST_PATH KmemCacheCpu* raw_cpu_ptr(const KmemCache* s, int cpu) {
  char* base = g_cpu_area[cpu].load(std::memory_order_acquire);
  if (SLUB_UNLIKELY(base == nullptr)) return nullptr;
  return reinterpret_cast<KmemCacheCpu*>(base + s->cpu_off);
}
inline KmemCacheCpu* per_cpu_ptr(const KmemCache* s, int cpu) {
  return raw_cpu_ptr(s, cpu);
}

// Makes the area of `cpu` if needed. Returns nullptr when memory is exhausted.
char* get_cpu_area(int cpu);
// CPUs that have an area, in the order they got it; stable once written.
int nr_used_cpus();
int used_cpu(int i);
void cpu_area_lock();  // fork: no area is created while held
void cpu_area_unlock();

// Sums the statistics of `s` over its CPU slots into out[NR_SLUB_STAT_ITEMS] (core/stats.cc).
void cache_stats(const KmemCache* s, uint64_t* out);

// Registry (slab_mutex protects the list, creation and destruction).
extern SpinLock g_slab_mutex;
extern ListHead g_cache_list;

// Computes sizes, free pointer offset, order, min_partial and cpu_partial for a cache whose
// object_size, align, flags and ctor are set; nr_cpus is the CPU count for the kernel's
// min_objects formula. Returns false if the object cannot be placed in a slab.
bool calculate_sizes(KmemCache* s, int nr_cpus);
// The kernel's calculate_order for objects of `size` bytes with `nr_cpus` CPUs.
unsigned calculate_order(size_t size, int nr_cpus);
unsigned order_objects(unsigned order, size_t size);
// The kernel's calculate_alignment: HWCACHE_ALIGN halves a cache line while the object fits
// twice, then at least a word.
size_t calculate_alignment(unsigned long flags, size_t align, size_t size);

// Initialises `s` (already zeroed or static) and registers it. Caller holds g_slab_mutex.
// Returns false on failure (no per-CPU slot or no memory).
bool kmem_cache_open(KmemCache* s, const char* name, size_t size, size_t align, unsigned long flags,
                     kmem_ctor_t ctor);
void kmem_cache_release(KmemCache* s);  // undo open: slot, nodes, registry entry

// Free pointers are stored encoded, as the kernel's CONFIG_SLAB_FREELIST_HARDENED does:
// pointer ^ the cache's random ^ the byte-swapped address where it is stored. A pointer an
// attacker writes over a free object (or a stray write) then decodes to garbage, which
// freeptr_plausible() catches before it is followed. Off unless built with
// -DSLUB_FREELIST_HARDENED=ON (CMake): it costs more than the 3% we allow a default.
#ifndef SLUB_FREELIST_HARDENED
#define SLUB_FREELIST_HARDENED 0
#endif

SLUB_FAST_PATH uintptr_t freeptr_key(const KmemCache* s, const void* where) {
  if constexpr (SLUB_FREELIST_HARDENED)
    return s->random ^ __builtin_bswap64(reinterpret_cast<uintptr_t>(where));
  return 0;
}

SLUB_FAST_PATH void* get_freepointer(const KmemCache* s, const void* object) {
  // May race with the object being handed out elsewhere (fast path): a stale value only makes
  // the following compare-and-swap fail. The memory is always mapped.
  const auto* where =
      reinterpret_cast<const uintptr_t*>(static_cast<const char*>(object) + s->offset);
  return reinterpret_cast<void*>(__atomic_load_n(where, __ATOMIC_RELAXED) ^ freeptr_key(s, where));
}
// The allocation fast path's read (the kernel's get_freepointer_safe): the object may be handed
// out and written by its new owner meanwhile; the stale value only makes the swap fail. Under
// ThreadSanitizer that read is hidden from it (not a reportable race: see docs/RELIABILITY.md).
#ifdef SLUB_TSAN
__attribute__((noinline, no_sanitize("thread"))) inline void* get_freepointer_safe(
    const KmemCache* s, const void* object) {
  const char* where = static_cast<const char*>(object) + s->offset;
  const uintptr_t raw = *reinterpret_cast<const volatile uintptr_t*>(where);
  return reinterpret_cast<void*>(raw ^ freeptr_key(s, where));
}
#else
SLUB_FAST_PATH void* get_freepointer_safe(const KmemCache* s, const void* object) {
  return get_freepointer(s, object);
}
#endif
SLUB_FAST_PATH void set_freepointer(const KmemCache* s, void* object, void* fp) {
  auto* where = reinterpret_cast<uintptr_t*>(static_cast<char*>(object) + s->offset);
  __atomic_store_n(where, reinterpret_cast<uintptr_t>(fp) ^ freeptr_key(s, where),
                   __ATOMIC_RELAXED);
}

// A free pointer is NULL or another object of the same slab, hence of the same 2 MiB chunk.
// Three instructions; what a forged or damaged encoded pointer decodes to fails it.
SLUB_FAST_PATH bool freeptr_plausible(const void* object, const void* next) {
  return next == nullptr ||
         ((reinterpret_cast<uintptr_t>(next) ^ reinterpret_cast<uintptr_t>(object)) >>
          kChunkShift) == 0;
}

// Reports a free pointer that fails freeptr_plausible (core/kmem_cache.cc); aborts under
// SLUB_STRICT=1.
SLUB_SLOW_PATH void report_bad_freeptr(const KmemCache* s, const void* object, const void* next);

// Internal flag: the object body is poisoned while free (P without ctor or RCU).
inline constexpr unsigned long kObjectPoison = 1ul << 63;

inline bool is_object_start(const KmemCache* s, const PageDesc* d, const void* p) {
  const size_t off = static_cast<const char*>(p) - d->start;
  const size_t idx = (off * s->reciprocal) >> 40;
  return idx * s->size == off && idx < d->ctrs().objects();
}

}  // namespace slub
