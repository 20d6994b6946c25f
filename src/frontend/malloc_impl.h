// SPDX-License-Identifier: MIT
// frontend/malloc_impl: malloc and free on top of the kmalloc caches, inline so that both the
// prefixed API (api.cc) and the libc entry points (override.cc) get the fast path without an
// extra call. Large (up to 1 MiB) and huge requests, aligned allocation, realloc and the error
// paths are out of line in api.cc.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "core/kmalloc.h"
#include "cache/cache.h"

struct mallinfo;
// glibc's struct mallinfo (int fields, clamped) from slub_mallinfo2 (mallinfo.cc).
struct mallinfo slub_mallinfo_int();

namespace slub::fe {

SLUB_SLOW_PATH void* large_malloc(size_t size, size_t align, int node = -1);
// mallopt(M_MMAP_THRESHOLD): large requests of at least this many bytes get their own mapping
// (mallinfo.cc; SIZE_MAX, the default: only those beyond the page allocator's largest run).
extern size_t g_mmap_threshold;
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

// The kmalloc classes above 1024 bytes, large and huge blocks, and every class in the classic
// mode or before start-up.
SLUB_SLOW_PATH void* malloc_other(size_t size);

// malloc: the main sheaf of the size's class, found by one load from the size (0 when the class
// has no sheaves), popped in an rseq section; the tag the free wrote into the first word is
// cleared.
SLUB_FAST_PATH void* do_malloc(size_t size) {
  if (SLUB_LIKELY(size <= 1024)) {
    const uint64_t base = g_kmalloc_pcs[(size + 7) >> 3];
    if (SLUB_LIKELY(base != 0)) {
      if (void* p = pcs_pop(base); SLUB_LIKELY(p != nullptr)) {
        store_tag(static_cast<uint64_t*>(p), 0);  // kmalloc caches keep it in the first word
        return p;
      }
      return __pcs_kmalloc(size);
    }
  }
  return malloc_other(size);
}

// free: the page's entry names the cache and node of a sheaf cache's object; anything else
// (NULL, other caches, large and huge blocks, pointers that are not ours) goes by descriptor.
SLUB_FAST_PATH void do_free(void* p) {
  const uint32_t e = PageClass::get(p);
  if (SLUB_LIKELY(e != 0)) return pcs_free(p, e);
  if (SLUB_UNLIKELY(p == nullptr)) return;
  free_slow(p, PageMap::desc_of(p));
}

}  // namespace slub::fe
