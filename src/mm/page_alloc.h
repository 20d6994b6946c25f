// SPDX-License-Identifier: MIT
// mm/page_alloc: the page allocator under the slabs, and the large and huge malloc blocks.
//
// Address space is reserved from the OS (PROT_NONE, uncharged) in 32 MiB regions cut into 2 MiB
// chunks (smaller regions under a tight RLIMIT_AS); each chunk is committed when carved (a
// writable mapping, under the system's overcommit policy), registered in the PageMap and given to
// one NUMA node (real nodes: bound to it with mbind; the chunk's meta descriptor records the node).
// Free runs are listed per node. Inside a chunk a binary buddy system hands out runs of 2^order
// pages (order 0..8), always aligned on their own size; the chunk's first order-3 run holds its
// descriptors. Freed runs coalesce with their buddies and stay mapped (a lockless slab fast path
// may still read a stale free pointer from them); their pages go back to the OS with
// madvise(MADV_DONTNEED): all of them each time the service thread flushes (purge_dirty), and at
// once down to half the budget when more than SLUB_DIRTY_MAX_KB (64 MiB) are free but resident.
// madvise never runs under the lock: runs being purged are off the lists (kPurging) and come back
// clean, merged with their buddies.
//
// Huge blocks (beyond a 1 MiB run) are separate mappings aligned on a chunk, registered in the
// PageMap with a HugeHeader in their first page, and unmapped when freed.
//
// Locking: one spin lock protects the free lists, the descriptors of free runs and the
// counters; it is the innermost lock of the allocator (slab_mutex -> cpu lock -> node
// list_lock -> page lock).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/base.h"
#include "mm/page_desc.h"

namespace slub {

struct HugeHeader {
  uint64_t magic;   // kHugeMagic while live
  size_t map_size;  // bytes mapped, header included
  void* user;       // the pointer handed out
  size_t usable;    // bytes usable from `user`
};

struct PageAllocStats {
  size_t chunks;           // chunks carved from the reservation (never given back)
  size_t free_pages;       // pages in free runs
  size_t dirty_pages;      // free pages not yet given back to the OS
  size_t dirty_runs;       // free runs holding those pages
  size_t purged_pages;     // pages given back with madvise since start
  size_t slab_pages;       // pages of runs handed out as slabs (kSlab)
  size_t large_pages;      // pages of runs handed out as large malloc blocks (kLarge)
  size_t large_blocks;     // those runs
  size_t huge_blocks;      // live huge mappings
  size_t huge_bytes;       // their bytes, headers included
  size_t max_huge_blocks;  // the most huge mappings live at once since start
  size_t max_huge_bytes;   // the most bytes of them
};
// Invariant (under the lock, no purge in progress): chunks * kPagesPerChunk ==
//   chunks * (1 << kMetaOrder) + slab_pages + large_pages + free_pages.

// One node's share of the counts above (the chunks carved for it, their free pages).
struct PageAllocNodeStats {
  size_t chunks;
  size_t free_pages;
  size_t dirty_pages;
  size_t dirty_runs;
};

class PageAlloc {
 public:
  static void init();  // reads SLUB_DIRTY_MAX_KB
  // A run of 2^order pages on `node`, kind set to `kind` and tails marked; nullptr when the OS
  // refuses memory. d->dirty tells whether the pages may hold old data (else they read zero).
  // d->node is the node the run really belongs to: `node`, or, when the OS refuses a new chunk
  // and `node` has no free run, the nearest node that has one.
  static PageDesc* alloc(unsigned order, int node, PageKind kind);
  static void free(PageDesc* d);
  // Gives free but resident pages back to the OS, all but `keep` of them (malloc_trim's pad).
  // Returns pages purged.
  static size_t purge_dirty(size_t keep = 0);
  // The budget of free resident pages (SLUB_DIRTY_MAX_KB, mallopt(M_TRIM_THRESHOLD)): a free
  // that leaves more than this purges down to half of it at once.
  static void set_max_dirty(size_t pages);
  static size_t max_dirty();

  static void* huge_alloc(size_t size, size_t align, size_t* usable);
  // The header of a huge block if `p` is its user pointer, else nullptr.
  static HugeHeader* huge_header(const void* p);
  static void huge_free(HugeHeader* h);

  static PageAllocStats stats();
  // Node `node`'s chunks and free pages (zeros for a node that has none).
  static PageAllocNodeStats node_stats(int node);
  // Fault injection for tests: the next `count` requests (all while count < 0) of order >=
  // min_order fail as if the OS had refused memory; count 0 turns it off.
  static void inject_failures(unsigned min_order, long count);
  static size_t dirty_pages();  // racy read, for heuristics

  // fork(): held across it by the prepare handler.
  static void lock() { lock_.lock(); }
  static void unlock() { lock_.unlock(); }
  // In a fork child: no purge is in progress (a purger thread of the parent did not come along).
  static void fork_child();

 private:
  static uintptr_t new_chunk(int node);
  static void add_free(PageDesc* d, unsigned order, bool dirty, int node);
  static void release_locked(PageDesc* d, unsigned order, bool dirty);
  static size_t purge(size_t keep, bool wait);
  static SpinLock<LockClass::kPageAlloc> lock_;
};

inline constexpr uint64_t kHugeMagic = 0x736c75622d687567ull;  // "slub-hug"

}  // namespace slub
