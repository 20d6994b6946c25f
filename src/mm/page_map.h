// SPDX-License-Identifier: MIT
// mm/page_map: a two-level radix tree from 2 MiB chunk number to what owns the chunk: one of
// our slab/large chunks (whose first pages hold the descriptors) or a huge mapping (whose first
// page holds a HugeHeader). Leaves are mapped on demand and installed with a compare-and-swap,
// so lookups take no lock: two dependent loads.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/base.h"
#include "mm/page_desc.h"

namespace slub {

class PageMap {
 public:
  enum Tag : uintptr_t { kNone = 0, kChunk = 1, kHuge = 2, kTagMask = 3 };

  // Entry for the chunk containing `addr`: owner base | tag, or 0.
  static uintptr_t lookup(const void* addr) {
    uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    if (SLUB_UNLIKELY(a >> kAddrBits)) return 0;
    uintptr_t ci = a >> kChunkShift;
    std::atomic<uintptr_t>* leaf = root_[ci >> kLeafBits].load(std::memory_order_acquire);
    if (SLUB_UNLIKELY(leaf == nullptr)) return 0;
    return leaf[ci & (kLeafSize - 1)].load(std::memory_order_acquire);
  }
  // Records that the chunks covering [base, base+size) belong to `owner` with `tag`.
  // Returns false if a leaf could not be mapped.
  static bool set(uintptr_t base, size_t size, uintptr_t owner, Tag tag);
  static void clear(uintptr_t base, size_t size);

  // The descriptor heading the run that contains `addr`, or nullptr if `addr` is not in one of
  // our chunks. The caller checks the kind.
  static PageDesc* desc_of(const void* addr) {
    uintptr_t e = lookup(addr);
    if (SLUB_UNLIKELY((e & kTagMask) != kChunk)) return nullptr;
    uintptr_t chunk = e & ~kTagMask;
    PageDesc* d = chunk_descs(chunk) + ((reinterpret_cast<uintptr_t>(addr) - chunk) >> kPageShift);
    if (d->kind == PageKind::kTail) d = chunk_descs(chunk) + d->head;
    return d;
  }

 private:
  static constexpr unsigned kAddrBits = 47;
  static constexpr unsigned kLeafBits = 13;
  static constexpr uintptr_t kLeafSize = uintptr_t{1} << kLeafBits;
  static constexpr uintptr_t kRootSize = uintptr_t{1} << (kAddrBits - kChunkShift - kLeafBits);
  static std::atomic<uintptr_t>* leaf_for(uintptr_t ci);
  static std::atomic<std::atomic<uintptr_t>*> root_[kRootSize];
};

}  // namespace slub
