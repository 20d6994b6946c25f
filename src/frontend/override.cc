// frontend/override: the libc and glibc-internal names, for LD_PRELOAD. Only in libslub.so.
// The fast paths are inlined here from malloc_impl.h, so malloc is one call deep.
#include <malloc.h>

#include "frontend/malloc_impl.h"
#include "mm/page_alloc.h"
#include "pal/options.h"

using namespace slub;

#define SLUB_NOTHROW noexcept

SLUB_EXPORT void* malloc(size_t size) SLUB_NOTHROW {
  return fe::do_malloc(size);
}
SLUB_EXPORT void free(void* p) SLUB_NOTHROW {
  fe::do_free(p);
}
SLUB_EXPORT void* calloc(size_t n, size_t size) SLUB_NOTHROW {
  return fe::do_calloc(n, size);
}
SLUB_EXPORT void* realloc(void* p, size_t size) SLUB_NOTHROW {
  return fe::do_realloc(p, size);
}
SLUB_EXPORT void* reallocarray(void* p, size_t n, size_t size) SLUB_NOTHROW {
  return fe::do_reallocarray(p, n, size);
}
SLUB_EXPORT int posix_memalign(void** out, size_t align, size_t size) SLUB_NOTHROW {
  return fe::do_posix_memalign(out, align, size);
}
SLUB_EXPORT void* aligned_alloc(size_t align, size_t size) SLUB_NOTHROW {
  return fe::do_aligned_alloc(align, size);
}
SLUB_EXPORT void* memalign(size_t align, size_t size) SLUB_NOTHROW {
  return fe::do_memalign(align, size);
}
SLUB_EXPORT void* valloc(size_t size) SLUB_NOTHROW {
  return fe::do_valloc(size);
}
SLUB_EXPORT void* pvalloc(size_t size) SLUB_NOTHROW {
  return fe::do_pvalloc(size);
}
SLUB_EXPORT size_t malloc_usable_size(void* p) SLUB_NOTHROW {
  return fe::usable_size(p);
}
SLUB_EXPORT void free_sized(void* p, size_t) SLUB_NOTHROW {
  fe::do_free(p);
}
SLUB_EXPORT void free_aligned_sized(void* p, size_t, size_t) SLUB_NOTHROW {
  fe::do_free(p);
}
SLUB_EXPORT void cfree(void* p) SLUB_NOTHROW {
  fe::do_free(p);
}

// Gives free pages back to the OS, as glibc's malloc_trim does for its heaps.
SLUB_EXPORT int malloc_trim(size_t) SLUB_NOTHROW {
  return PageAlloc::purge_dirty() != 0;
}

// glibc-internal names, called by parts of glibc and by programs that wrap malloc.
SLUB_EXPORT void* __libc_malloc(size_t size) {
  return fe::do_malloc(size);
}
SLUB_EXPORT void __libc_free(void* p) {
  fe::do_free(p);
}
SLUB_EXPORT void* __libc_calloc(size_t n, size_t size) {
  return fe::do_calloc(n, size);
}
SLUB_EXPORT void* __libc_realloc(void* p, size_t size) {
  return fe::do_realloc(p, size);
}
SLUB_EXPORT void* __libc_memalign(size_t align, size_t size) {
  return fe::do_memalign(align, size);
}
SLUB_EXPORT void* __libc_valloc(size_t size) {
  return fe::do_valloc(size);
}
SLUB_EXPORT void* __libc_pvalloc(size_t size) {
  return fe::do_pvalloc(size);
}
SLUB_EXPORT int __posix_memalign(void** out, size_t align, size_t size) {
  return fe::do_posix_memalign(out, align, size);
}

// SLUB_REPORT=1 prints the cache table when the program exits.
__attribute__((destructor)) static void slub_exit_report() {
  if (options::flag(options::kOptReport)) {
    slub_print_report();
    slub_print_alloc_calls();
  }
}
