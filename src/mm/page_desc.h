// SPDX-License-Identifier: MIT
// mm/page_desc: the page descriptor, the user-space struct slab / struct page.
//
// Memory comes in 2 MiB chunks aligned on 2 MiB. The first 32 KiB of a chunk hold one PageDesc
// per page of the chunk (512 x 64 bytes), so the descriptor of any address is found in O(1):
// chunk = addr & ~(kChunkSize-1), desc = chunk_descs(chunk)[(addr - chunk) >> kPageShift],
// then, for a tail page, the head of its run. Descriptors live outside the objects.
//
// A run of 2^order pages is one of:
//   kFreeHead  a free buddy block (on a page-allocator free list through `list`)
//   kSlab      a slab of `cache`; the SLUB fields below are valid
//   kLarge     a large malloc block
//   kMeta      the chunk's own descriptor pages
//   kPurging   a free block taken off its list while madvise runs on it outside the lock
// Its other pages are kTail with `head` = page index of the run's first page; pages inside a
// free block are kFreeTail.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/base.h"

namespace slub {

struct KmemCache;

inline constexpr size_t kChunkShift = 21;
inline constexpr size_t kChunkSize = size_t{1} << kChunkShift;
inline constexpr size_t kPagesPerChunk = kChunkSize >> kPageShift;  // 512
inline constexpr unsigned kChunkOrder = kChunkShift - kPageShift;   // 9
inline constexpr unsigned kMetaOrder = 3;                           // 8 pages of descriptors
inline constexpr unsigned kMaxRunOrder = kChunkOrder - 1;           // largest run: 1 MiB
inline constexpr unsigned kMaxObjsPerSlab = 32767;                  // objects is 15 bits

enum class PageKind : uint8_t { kFreeTail = 0, kFreeHead, kSlab, kLarge, kMeta, kTail, kPurging };

// The slab's counters word, as the kernel's {inuse:16, objects:15, frozen:1}.
struct SlabCounters {
  uint64_t raw;

  static constexpr SlabCounters make(unsigned inuse, unsigned objects, bool frozen) {
    return {uint64_t{inuse} | (uint64_t{objects} << 16) | (uint64_t{frozen} << 31)};
  }
  constexpr unsigned inuse() const { return raw & 0xffff; }
  constexpr unsigned objects() const { return (raw >> 16) & 0x7fff; }
  constexpr bool frozen() const { return (raw >> 31) & 1; }
};

struct alignas(64) PageDesc {
  // ---- swapped together by cmpxchg16b; see slub.cc for who may change them ----
  void* freelist;     // first free object of the slab freelist (not the CPU freelist)
  uint64_t counters;  // SlabCounters: inuse + free on slab freelist + on a CPU freelist == objects
  // ----
  KmemCache* cache;  // owning cache (kSlab)
  union {
    ListHead list;  // node partial list (kSlab, on_node_partial) or page-allocator free list
    struct {
      PageDesc* next;  // per-CPU partial chain
      int slabs;       // slabs in the chain from here to its end
    } cpu_partial;
  };
  uint32_t head;  // kTail: page index of the run's head in its chunk
  PageKind kind;
  uint8_t order;            // run order (heads)
  uint8_t on_node_partial;  // on its node's partial list; protected by that node's list_lock
  uint8_t dirty;            // kFreeHead: pages may still be resident (not purged yet)
  uint16_t node;            // NUMA node of the memory
  char* start;              // kSlab: the first object (slab address + the cache's red_left_pad)

  DoubleWord* pair() { return reinterpret_cast<DoubleWord*>(this); }
  SlabCounters ctrs() const { return {__atomic_load_n(&counters, __ATOMIC_ACQUIRE)}; }
  void* slab_freelist() const { return __atomic_load_n(&freelist, __ATOMIC_ACQUIRE); }
  // Debug caches change the pair under the node's list_lock, not by cmpxchg16b, while a free
  // reads ctrs().objects() unlocked (is_object_start): single stores, not torn ones.
  void set_counters(SlabCounters c) { __atomic_store_n(&counters, c.raw, __ATOMIC_RELAXED); }
  void set_freelist(void* fl) { __atomic_store_n(&freelist, fl, __ATOMIC_RELAXED); }
};

static_assert(sizeof(PageDesc) == 64, "one cache line per page descriptor");
static_assert(offsetof(PageDesc, freelist) == 0 && offsetof(PageDesc, counters) == 8,
              "{freelist, counters} must be one 16-byte aligned double word");
static_assert(alignof(PageDesc) % 16 == 0, "cmpxchg16b needs 16-byte alignment");
static_assert(kPagesPerChunk * sizeof(PageDesc) == (kPageSize << kMetaOrder),
              "the descriptors fill exactly the chunk's meta run");

// The descriptor array of a chunk sits at its start.
inline PageDesc* chunk_descs(uintptr_t chunk) {
  return reinterpret_cast<PageDesc*>(chunk);
}
inline uintptr_t chunk_of(const PageDesc* d) {
  return reinterpret_cast<uintptr_t>(d) & ~(kChunkSize - 1);
}
inline size_t page_index(const PageDesc* d) {
  return static_cast<size_t>(d - chunk_descs(chunk_of(d)));
}
// First byte of the run that `d` heads.
inline char* desc_address(const PageDesc* d) {
  return reinterpret_cast<char*>(chunk_of(d) + (page_index(d) << kPageShift));
}

}  // namespace slub
