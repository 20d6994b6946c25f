// frontend/malloc_impl: malloc and free on top of the kmalloc caches, inline so that both the
// prefixed API (api.cc) and the libc entry points (override.cc) get the fast path without an
// extra call. Large (up to 1 MiB) and huge requests, aligned allocation, realloc and the error
// paths are out of line in api.cc.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "core/kmalloc.h"
#include "slub/slub_cache.h"

namespace slub::fe {

SLUB_SLOW_PATH void* large_malloc(size_t size, size_t align, int node = -1);
SLUB_SLOW_PATH void free_slow(void* p, PageDesc* d);
void* do_realloc(void* p, size_t size);
void* do_calloc(size_t nmemb, size_t size);
void* do_aligned(size_t align, size_t size);
size_t usable_size(const void* p);
int do_posix_memalign(void** out, size_t align, size_t size);
void* do_aligned_alloc(size_t align, size_t size);
void* do_memalign(size_t align, size_t size);
void* do_valloc(size_t size);
void* do_pvalloc(size_t size);
void* do_reallocarray(void* p, size_t nmemb, size_t size);

SLUB_FAST_PATH void* do_malloc(size_t size) {
  if (SLUB_LIKELY(size <= kKmallocMax))
    return slab_alloc(&g_kmalloc_caches[kmalloc_index(size)], size);
  return large_malloc(size, 0);
}

SLUB_FAST_PATH void do_free(void* p) {
  if (SLUB_UNLIKELY(p == nullptr)) return;
  PageDesc* d = PageMap::desc_of(p);
  if (SLUB_LIKELY(d != nullptr && d->kind == PageKind::kSlab && is_object_start(d->cache, d, p))) {
    slab_free(d->cache, d, p);
    return;
  }
  free_slow(p, d);
}

}  // namespace slub::fe
