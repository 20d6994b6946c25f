#include "core/kmalloc.h"

#include <cstdio>

namespace slub {

constinit KmemCache g_kmalloc_caches[kNumKmalloc] = {};

static_assert(kKmallocIndex.small[0] == 0 && kKmallocIndex.small[1] == 0);
static_assert(kKmallocSizes[kKmallocIndex.small[128]] == 1024);
static_assert(kKmallocSizes[kKmallocIndex.big[kKmallocMax / 128]] == kKmallocMax);

bool kmalloc_init() {
  for (unsigned i = 0; i < kNumKmalloc; ++i) {
    const uint32_t size = kKmallocSizes[i];
    char name[32];
    if (size >= 1024 && size % 1024 == 0)
      snprintf(name, sizeof name, "kmalloc-%uk", size / 1024);
    else
      snprintf(name, sizeof name, "kmalloc-%u", size);
    KmemCache* s = &g_kmalloc_caches[i];
    s->is_kmalloc = true;
    // malloc promises 16-byte alignment from 16 bytes on; it matters once red zones shift
    // objects within their slots (debug mode).
    const size_t align = size >= 16 ? 16 : 8;
    if (!kmem_cache_open(s, name, size, align, 0, nullptr)) return false;
  }
  return true;
}

}  // namespace slub
