// SPDX-License-Identifier: MIT
#include "core/kmalloc.h"

#include <cstdio>

namespace slub {

constinit uint64_t g_kmalloc_pcs[1024 / 8 + 1] = {};

static_assert(kKmallocIndex.small[0] == 0 && kKmallocIndex.small[2] == 0);
static_assert(kKmallocSizes[kKmallocIndex.small[128]] == 1024);
static_assert(kKmallocSizes[kKmallocIndex.big[kKmallocMax / 128]] == kKmallocMax);

bool kmalloc_init(unsigned long flags) {
  for (unsigned i = 0; i < kNumKmalloc; ++i) {
    const uint32_t size = kKmallocSizes[i];
    char name[32];
    if (size >= 1024 && size % 1024 == 0)
      snprintf(name, sizeof name, "kmalloc-%uk", size / 1024);
    else
      snprintf(name, sizeof name, "kmalloc-%u", size);
    KmemCache* s = &g_kmalloc_caches[i];
    s->is_kmalloc = true;
    // malloc promises 16-byte alignment; it matters once red zones shift objects within
    // their slots (debug mode).
    if (!kmem_cache_open(s, name, size, 16, flags, nullptr)) return false;
  }
  // malloc's one-load path is for the rseq sections; without them malloc goes straight to the
  // locked sheaves (malloc_other) instead of trying a section that must fail.
  if (CpuId::rseq_fast())
    for (unsigned i = 0; i <= 1024 / 8; ++i)
      g_kmalloc_pcs[i] = g_kmalloc_caches[kKmallocIndex.small[i]].pcs_base;
  return true;
}

}  // namespace slub
