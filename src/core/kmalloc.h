// SPDX-License-Identifier: MIT
// core/kmalloc: the size-class caches behind malloc (kmalloc-8 ... kmalloc-32k). Four classes
// per doubling from 32 bytes on, as jemalloc and mimalloc do, which wastes at most 25% of a
// block instead of the 50% of powers of two (the kernel's classes are 8, 16, 32, 64, 96, 128,
// 192, 256, ...). Every class is a multiple of 16 from 16 on, so blocks keep malloc's 16-byte
// alignment; power-of-two classes are naturally aligned, which the aligned allocators use.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kmem_cache.h"

namespace slub {

inline constexpr size_t kKmallocMax = 32768;  // larger requests go to the page allocator
// From 16 bytes: every block has two words, so that the tag a free writes into its first word
// (the double-free check) and the free pointer at its middle never share one.
inline constexpr unsigned kNumKmalloc = 40;
inline constexpr uint32_t kKmallocSizes[kNumKmalloc] = {
    16,   32,   48,   64,   80,    96,    112,   128,   160,   192,   224,   256,  320,  384,
    448,  512,  640,  768,  896,   1024,  1280,  1536,  1792,  2048,  2560,  3072, 3584, 4096,
    5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768};

struct KmallocIndex {
  uint8_t small[1024 / 8 + 1];         // by (size + 7) / 8, for size <= 1024
  uint8_t big[kKmallocMax / 128 + 1];  // (size + 127) / 128
};

constexpr KmallocIndex make_kmalloc_index() {
  KmallocIndex t{};
  unsigned c = 0;
  for (unsigned i = 0; i < 129; ++i) {
    while (kKmallocSizes[c] < i * 8) ++c;
    t.small[i] = static_cast<uint8_t>(c);
  }
  c = 0;
  for (unsigned i = 0; i <= kKmallocMax / 128; ++i) {
    while (kKmallocSizes[c] < i * 128) ++c;
    t.big[i] = static_cast<uint8_t>(c);
  }
  return t;
}
inline constexpr KmallocIndex kKmallocIndex = make_kmalloc_index();

// Class index of a request of `size` <= kKmallocMax bytes (0 maps to the 16-byte class).
SLUB_FAST_PATH unsigned kmalloc_index(size_t size) {
  return size <= 1024 ? kKmallocIndex.small[(size + 7) >> 3] : kKmallocIndex.big[(size + 127) >> 7];
}

// The kmalloc caches, g_caches[1 .. kNumKmalloc].
inline constexpr KmemCache* g_kmalloc_caches = &g_caches[1];
// The main sheaf base (KmemCache::pcs_base) of the class of each size up to 1024 bytes, by
// (size + 7) / 8, for malloc's fast path: one load from the size. 0 where the class has no
// sheaves (classic mode, debug).
extern SLUB_HIDDEN uint64_t g_kmalloc_pcs[1024 / 8 + 1];

// Opens the kmalloc caches with `flags` (SLAB_QUEUED under SLUB_ALLOCATOR=slab); called once
// from ensure_init, slab_mutex held.
bool kmalloc_init(unsigned long flags);

}  // namespace slub
