// SPDX-License-Identifier: MIT
// core/kmem_cache: the cache descriptor and its per-node and per-CPU parts, the cache registry
// and the per-CPU areas. Shared by everything above mm/.
//
// Per-CPU state is allocated lazily: each CPU that runs allocator code gets a CPU area (1 MiB,
// demand-zero) the first time, and every cache owns slots at the same offsets in all areas,
// like the kernel's percpu allocator: a KmemCacheCpu (cpu_off) and, for a cache with sheaves,
// its main sheaf (pcs_off). A zeroed slot is a valid empty one, so a CPU costs nothing until it
// is used. The areas of the real CPUs sit in one reservation, one every kCpuAreaSize bytes
// after two read-only dummy areas (for the rseq cpu_id values -1 and -2: not registered), so
// that the fast paths find a CPU's slot by arithmetic, without a table load; virtual CPUs
// beyond the real ones (the harness) get areas of their own, found through g_cpu_area.
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

// ---- Sheaves (the kernel's 6.18/7.0 design) ----
// A sheaf is an array of free objects of one cache. Each CPU has a main sheaf (Pcs, in its CPU
// area: the fast paths pop and push it) and a spare one (a Sheaf in meta memory, empty or
// not); each node has a barn of full and empty Sheafs that its CPUs exchange.
//
// The main sheaf, as the fast paths see it: one 64-bit word, the slot's address, with the
// objects below it and three null words above (the lowest object slot is a null word too):
//
//   [null][objs[0] .. objs[cap - 1]][word][null][null][null]
//                                    ^ pcs_base + cpu * kCpuAreaSize
//
// The word says whether the rseq sections may use the slot and how full it is:
//   open    high half `expect` (this cache's page entry on this CPU's node, mm/page_class.h),
//           low half count - cap as a signed int: objs[count - 1] is one word below the word
//           plus 8 * (count - cap). When count reaches cap the low half wraps to 0 and carries:
//           the high half reads expect + 1, which is no entry of this cache.
//   closed  high half kPcsClosed | count, low half 3: a slow path holds the slot, rseq is off,
//           or the slot was never used (the word is 0 then).
// An allocation loads objs[count - 1] at word + 8 * (low - 1) and takes it unless it is null:
// open and empty reads the null word below objs[0]; closed (or a late commit's 3 +- 1) reads
// one of the nulls above; a zero word reads objs[cap - 1] of a slot never used, also null.
// A free compares the object's entry with the high half (full, closed and zero all differ)
// and stores at word + 8 * low. Both commit with one instruction, the 64-bit add or subtract
// of 1 on the word. Lock holders close the word by compare-and-swap, so that a section that
// commits late (it read an open word before the close; at most one per slot, on the slot's
// CPU, until the holder's fence) only moves the low half by one: count() folds it in.
struct Pcs {
  uint64_t word;

  static constexpr uint32_t kClosed = 0x80000000u;  // no entry has this bit
  static constexpr int32_t kClosedLow = 3;
  static bool is_open(uint64_t w) {
    const uint32_t hi = static_cast<uint32_t>(w >> 32);
    return hi != 0 && (hi & kClosed) == 0;
  }
  static uint64_t closed_word(unsigned n) {
    return (uint64_t{kClosed | n} << 32) | static_cast<uint32_t>(kClosedLow);
  }
  static uint64_t open_word(unsigned n, uint32_t cap, uint32_t expect) {
    return (uint64_t{expect} << 32) + (uint64_t{1} << 32) - cap + n;
  }
  // Objects in a word: open, closed (with a late commit's difference), or zero.
  static unsigned count_of(uint64_t w, uint32_t cap) {
    const int32_t low = static_cast<int32_t>(w);
    if (w == 0) return 0;
    if (is_open(w)) return static_cast<unsigned>(low + static_cast<int32_t>(cap));
    return (static_cast<uint32_t>(w >> 32) & ~kClosed) + static_cast<unsigned>(low - kClosedLow);
  }
  uint64_t load() const { return __atomic_load_n(&word, __ATOMIC_ACQUIRE); }
  unsigned count(uint32_t cap) const { return count_of(load(), cap); }
  // A lock holder's new count (the slot closed; after its fence).
  void set_count(unsigned n) { __atomic_store_n(&word, closed_word(n), __ATOMIC_RELEASE); }
  void** objs(uint32_t cap) { return reinterpret_cast<void**>(this) - cap; }
  void* const* objs(uint32_t cap) const { return reinterpret_cast<void* const*>(this) - cap; }
  // The slot's first byte and its size in a CPU area.
  static size_t below(uint32_t cap) { return sizeof(void*) * (cap + 1); }
  static size_t bytes(uint32_t cap) { return below(cap) + sizeof(uint64_t) + 3 * sizeof(void*); }
};
static_assert(sizeof(Pcs) == 8, "the rseq sections address the word and the objects so");

// A spare or barn sheaf (meta memory).
struct Sheaf {
  Sheaf* next;     // on a barn list
  uint32_t count;  // objects in objs[0..count)
  uint32_t cap;
  void* objs[];
};
inline size_t sheaf_bytes(uint32_t cap) {
  return sizeof(Sheaf) + sizeof(void*) * cap;
}
// The kernel's sheaf capacities (calculate_sheaf_capacity, 7.0): 60 objects below 256 bytes,
// 28 below 1 KiB, 12 below a page, 4 above; a cache may ask for more, up to kSheafMaxCap.
inline constexpr uint32_t kSheafSmallCap = 60;
inline constexpr uint32_t kSheafMaxCap = 128;
inline constexpr uint32_t kBarnMaxFull = 10;   // the kernel's MAX_FULL_SHEAVES
inline constexpr uint32_t kBarnMaxEmpty = 10;  // MAX_EMPTY_SHEAVES

// The per-CPU part of a cache (the kernel's struct kmem_cache_cpu).
// Classic mode (no sheaves): {freelist, tid} is one double word, changed only by cmpxchg16b or,
// while kTidBusy is set in tid by the holder of `lock`, by plain stores; fast paths never take
// `lock`. With sheaves the CPU slab and its freelist are the sheaves' refill source, changed
// only under `lock`, which also guards the CPU's sheaves outside the fast paths.
struct alignas(64) KmemCacheCpu {
  DoubleWord freelist_tid;  // lo: CPU freelist head; hi: transaction id (kTidBusy = bit 0)
  PageDesc* slab;           // the active (frozen) slab, or nullptr; changed under lock + busy
  PageDesc* partial;        // per-CPU partial chain (unfrozen slabs); protected by lock
  SpinLock<LockClass::kCpuSlot> lock;  // slow paths and the flusher
  uint32_t expect;  // sheaves: the page entry the main sheaf takes (Pcs), under lock
  // slot_activity() at the last idle check or flush (g_slab_mutex), its low 32 bits: a
  // coincidence costs one needless flush, no more.
  uint32_t flush_seen;
  // Statistics (include/slub/stats.h), counted without atomics and summed when read. The two
  // classic fast-path counters come first, in the line the classic fast path touches anyway.
  uint64_t stat[NR_SLUB_STAT_ITEMS];
  Sheaf* spare;  // sheaves: the spare sheaf (empty or not), or nullptr; under lock
  // Sheaves: the active slab's objects never handed out, [fresh, fresh_end): a new slab's
  // objects go to sheaves without a freelist written through them (its pages are touched
  // only as objects are used). Given back as a freelist when the slab is deactivated.
  char* fresh;
  char* fresh_end;
  uint64_t events;  // slow-path events on this slot (the flusher's activity signal)
};
static_assert(offsetof(KmemCacheCpu, stat) + 2 * sizeof(uint64_t) <= 64,
              "the classic fast-path counters share the freelist's cache line");
static_assert(sizeof(KmemCacheCpu) == 384, "kmem_cache_queue_info's comment and the docs say so");

// Counts an event in a CPU slot: one unlocked increment (a count may be lost when two threads
// share the slot at that instant, as the kernel accepts). Written as an instruction because a
// relaxed atomic load and store cost three, which the fast path noticed (+5 instructions a
// malloc+free pair against +2).
SLUB_FAST_PATH void stat(KmemCacheCpu* c, slub_stat_item item) {
  __asm__("incq %0" : "+m"(c->stat[item]));
}
inline void stat(KmemCacheCpu* c, slub_stat_item item, uint64_t n) {
  __asm__("addq %1, %0" : "+m"(c->stat[item]) : "r"(n));
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
// (With sheaves the slow paths count `events`; the flusher adds the main sheaf's state.)
inline uint32_t slot_activity(const KmemCacheCpu* c) {
  return static_cast<uint32_t>(__atomic_load_n(&c->freelist_tid.hi, __ATOMIC_ACQUIRE) +
                               __atomic_load_n(&c->stat[ALLOC_FASTPATH], __ATOMIC_RELAXED) +
                               __atomic_load_n(&c->stat[FREE_FASTPATH], __ATOMIC_RELAXED) +
                               __atomic_load_n(&c->events, __ATOMIC_RELAXED));
}

// A node's barn (the kernel's struct node_barn): full and empty sheaves its CPUs exchange, at
// most kBarnMaxFull and kBarnMaxEmpty.
struct Barn {
  SpinLock<LockClass::kBarn> lock;  // protects the lists and counts
  uint32_t nr_full;                 // sheaves on `full`
  uint32_t nr_empty;                // sheaves on `empty`
  Sheaf* full;
  Sheaf* empty;
  uint64_t uses;       // gets and puts (the flusher's activity signal); under lock
  uint64_t uses_seen;  // `uses` at the flusher's last pass (g_slab_mutex)
};

// The per-node part of a cache (the kernel's struct kmem_cache_node).
struct alignas(64) KmemCacheNode {
  SpinLock<LockClass::kNodeList> list_lock;  // protects partial, nr_partial, on_node_partial
  size_t nr_partial;                         // slabs on `partial`
  ListHead partial;                          // partial slabs of this node, unfrozen
  ListHead full;                             // debug caches only: full slabs (list_lock)
  std::atomic<size_t> nr_slabs{0};           // all slabs of the cache on this node
  std::atomic<size_t> total_objects{0};      // objects in those slabs
  alignas(64) Barn barn;                     // sheaves: this node's barn
};

struct SlabCache;  // slab/slab.h

// The cache descriptor. All of them live in g_caches[] (index 0 unused), 512 bytes apart, so
// that the free fast path finds a cache from its index in a page's entry by arithmetic.
struct alignas(512) KmemCache {
  // ---- read by the sheaves' fast paths (one cache line) ----
  uint64_t pcs_base;   // CPU 0's main sheaf (g_pcs_base + pcs_off); 0: no sheaves
  uint64_t tag;        // written into a freed object at tag_off, checked by the next free
  uint64_t div_inv;    // inverse of size >> div_shift (odd) modulo 2^64: the object-start test
  uint32_t slab_mask;  // (kPageSize << order) - 1
  uint32_t tag_off;    // 0, or offset (objects of 8 bytes, or that must keep their contents)
  uint64_t max_index;  // objects - 1
  uint8_t div_shift;   // trailing zero bits of size
  uint8_t pad0[3];
  uint32_t pcs_off;    // offset of the main sheaf (Pcs) in every CPU area
  uint32_t sheaf_cap;  // objects a sheaf holds (0: no sheaves, the classic design)
  // ---- read by the classic fast paths ----
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

// Every cache descriptor, index 0 unused (a page entry of 0 means "no cache"); the kmalloc
// caches come first. The index is what a page's entry names (mm/page_class.h).
inline constexpr unsigned kMaxCaches = 2048;
extern SLUB_HIDDEN KmemCache g_caches[kMaxCaches];
inline unsigned cache_index(const KmemCache* s) {
  return static_cast<unsigned>(s - g_caches);
}
static_assert(offsetof(KmemCache, sheaf_cap) + sizeof(uint32_t) <= 64,
              "what the sheaves' fast paths read shares one cache line");
static_assert(sizeof(KmemCache) == 512, "the free fast path finds a cache at g_caches + 512 * i");

// One per used CPU: a demand-zero mapping holding every cache's slots, 1 MiB; smaller under a
// tight RLIMIT_AS (cpu_area_size(), at least 64 KiB), where the areas are mapped one by one
// and there are no sheaves. Slots are allocated in units of kCpuAreaUnit bytes.
inline constexpr size_t kCpuAreaSize = size_t{1} << 20;
inline constexpr size_t kCpuAreaUnit = 64;
size_t cpu_area_size();

extern SLUB_HIDDEN std::atomic<char*> g_cpu_area[kMaxCpus];
// CPU 0's area in the reservation of the real CPUs' areas (CPU k's at g_pcs_base + k *
// kCpuAreaSize, the two dummies below it), or nullptr when there is none (no sheaves then).
extern char* g_pcs_base;
// The real CPUs whose areas are in the reservation (the possible CPUs).
int pcs_cpus();

// Caches whose slabs carry an owner in their page entries (mm/page_class.h): objects under
// 128 bytes that share cache lines with their neighbours (not a multiple of the line).
inline bool owner_tracked(const KmemCache* s) {
  return s->size < 2 * kCacheLine && s->size % kCacheLine != 0;
}

// The main sheaf of `s` on `cpu` (nullptr if the CPU has no area yet); for the slow paths,
// which find the area by the table.
inline Pcs* pcs_ptr(const KmemCache* s, int cpu) {
  char* base = g_cpu_area[cpu].load(std::memory_order_acquire);
  return base != nullptr ? reinterpret_cast<Pcs*>(base + s->pcs_off) : nullptr;
}

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
extern SpinLock<LockClass::kSlabMutex> g_slab_mutex;
extern ListHead g_cache_list;
// The allocator's start-up (cache/cache.cc, ensure_init): 0 not started, 1 starting, 2 ready.
extern std::atomic<int> g_init_state;
// For the slow paths below the cache layer: another thread may be starting the allocator (a
// kmalloc cache's pcs_base is set before the cache is complete, and malloc may see it); wait
// until it is done, as ensure_init does.
SLUB_SLOW_PATH void wait_for_init();
inline void await_init() {
  if (SLUB_UNLIKELY(g_init_state.load(std::memory_order_acquire) != 2)) wait_for_init();
}

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
// sheaf_capacity: < 0 the default (the kernel's capacities, or none with SLUB_SHEAVES=0),
// 0 none (the classic per-CPU slab design), else at least that many (at most kSheafMaxCap).
bool kmem_cache_open(KmemCache* s, const char* name, size_t size, size_t align, unsigned long flags,
                     kmem_ctor_t ctor, int sheaf_capacity = -1);
// A free index of g_caches (g_slab_mutex held), or -1; and giving one back.
long alloc_cache_index();
void free_cache_index(unsigned i);
// Reserves the real CPUs' areas (at start-up, once the possible CPUs are known).
void cpu_areas_init();
// SLUB_SHEAVES (default 1): whether caches get sheaves.
bool sheaves_enabled();
uint32_t default_sheaf_capacity(size_t size);
void kmem_cache_release(KmemCache* s);  // undo open: slot, nodes, registry entry

// Free pointers are stored encoded, as the kernel's CONFIG_SLAB_FREELIST_HARDENED does:
// pointer ^ the cache's random ^ the byte-swapped address where it is stored. A pointer an
// attacker writes over a free object (or a stray write) then decodes to garbage, which
// freeptr_valid() catches before it is followed. On unless built with
// -DSLUB_FREELIST_HARDENED=OFF (CMake).
#ifndef SLUB_FREELIST_HARDENED
#define SLUB_FREELIST_HARDENED 1
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
  return off < (size_t{1} << 21) && idx * s->size == off && idx < d->ctrs().objects();
}
// What a slow path follows (a refill's freelist walk, deactivation, validation) must be NULL or
// an object start of the same slab: a free pointer a use-after-free write aimed elsewhere (a
// live object of another slab, the middle of a block, a misaligned address) is caught here,
// reported, and the rest of that freelist dropped.
inline bool freeptr_valid(const KmemCache* s, const PageDesc* slab, const void* next) {
  return next == nullptr || is_object_start(s, slab, next);
}

}  // namespace slub
