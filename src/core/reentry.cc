// SPDX-License-Identifier: MIT
#include "core/reentry.h"

#include "core/kfence.h"
#include "mm/page_alloc.h"
#include "mm/page_map.h"

namespace slub {

namespace {
constinit SlabObjectFree g_slab_free = nullptr;
}  // namespace

void drain_deferred() {
  while (t_thread.deferred != nullptr) {
    void* p = t_thread.deferred;
    t_thread.deferred = *static_cast<void**>(p);
    if (kfence::is_deferred_node(p)) {
      kfence::drain_deferred();
      continue;
    }
    PageDesc* d = PageMap::desc_of(p);
    if (d == nullptr) {
      if (kfence::is_kfence_address(p))
        kfence::free(p);
      else if (HugeHeader* h = PageAlloc::huge_header(p))
        PageAlloc::huge_free(h);
    } else if (d->kind == PageKind::kSlab) {
      g_slab_free(d->cache, d, p);
    } else if (d->kind == PageKind::kLarge) {
      PageAlloc::free(d);
    }
  }
}

void set_deferred_slab_free(SlabObjectFree fn) {
  g_slab_free = fn;
}

ReentryGuard::~ReentryGuard() {
  // The deferred frees run at depth 0, each in its own guard (so each is a normal free); a
  // signal handler that frees meanwhile adds to the list, which the loop keeps draining.
  if (--t_thread.slow_depth == 0 && t_thread.deferred != nullptr && !t_thread.draining) {
    t_thread.draining = true;
    drain_deferred();
    t_thread.draining = false;
  }
}

void defer_free(void* p) {
  *static_cast<void**>(p) = t_thread.deferred;
  t_thread.deferred = p;
}

void* emergency_alloc(size_t size) {
  return PageAlloc::huge_alloc(size, 16, nullptr);
}

}  // namespace slub
