// SPDX-License-Identifier: MIT
// frontend/override: the libc and glibc-internal names, for LD_PRELOAD. Only in libslub.so.
// The fast paths are inlined here from malloc_impl.h, so malloc is one call deep.
#include <malloc.h>

#include <slub/slub.h>

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

// glibc's malloc extensions, answered by slub (frontend/mallinfo.cc; docs/MALLINFO.md).
SLUB_EXPORT struct mallinfo2 mallinfo2() SLUB_NOTHROW {
  const struct slub_mallinfo2 m = slub_mallinfo2();
  struct mallinfo2 r = {};
  r.arena = m.arena;
  r.ordblks = m.ordblks;
  r.smblks = m.smblks;
  r.hblks = m.hblks;
  r.hblkhd = m.hblkhd;
  r.usmblks = m.usmblks;
  r.fsmblks = m.fsmblks;
  r.uordblks = m.uordblks;
  r.fordblks = m.fordblks;
  r.keepcost = m.keepcost;
  return r;
}
SLUB_EXPORT struct mallinfo mallinfo() SLUB_NOTHROW {
  return slub_mallinfo_int();
}
// Shrinks every cache and gives free pages back to the OS, as glibc's does for its heaps.
SLUB_EXPORT int malloc_trim(size_t pad) SLUB_NOTHROW {
  return slub_malloc_trim(pad);
}
SLUB_EXPORT void malloc_stats() SLUB_NOTHROW {
  slub_malloc_stats();
}
SLUB_EXPORT int malloc_info(int options, FILE* fp) SLUB_NOTHROW {
  return slub_malloc_info(options, fp);
}
SLUB_EXPORT int mallopt(int param, int value) SLUB_NOTHROW {
  return slub_mallopt(param, value);
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
