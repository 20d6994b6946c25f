// SPDX-License-Identifier: MIT
#include "core/reentry.h"

#include <signal.h>

#include <cstring>

#include "core/kfence.h"
#include "mm/page_alloc.h"
#include "mm/page_map.h"

namespace slub {

namespace {
constinit SlabObjectFree g_slab_free = nullptr;

// Deferred frees are kept out of the objects while there is room: a list link in an object
// is lost when the interrupted code frees the same object itself (a double free, from the
// signal handler and the code it interrupted): the free writes its free pointer or poison
// over it, or, for a KFENCE object, makes the page inaccessible, and the drain then follows
// garbage. `node` stands for the array on the thread's list while it holds any; past its
// entries, objects are linked through themselves.
constexpr unsigned kKept = 16;
struct Kept {
  void* node;  // a list link, as an object's first word is
  void* objects[kKept];
  unsigned n;  // may pass kKept: those objects were linked instead
};
SLUB_TLS constinit Kept t_kept = {};

void link(void* p) {
  *static_cast<void**>(p) = t_thread.deferred;
  t_thread.deferred = p;
}

void free_one(void* p) {
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

// The array's objects, taken with signals blocked (a handler's deferral meanwhile would write
// an entry being read), then freed.
void drain_kept() {
  void* objects[kKept];
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const unsigned n = t_kept.n < kKept ? t_kept.n : kKept;
  memcpy(objects, t_kept.objects, sizeof(void*) * n);
  t_kept.n = 0;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  for (unsigned k = 0; k < n; ++k) free_one(objects[k]);
}
}  // namespace

void drain_deferred() {
  while (t_thread.deferred != nullptr) {
    void* p = t_thread.deferred;
    t_thread.deferred = *static_cast<void**>(p);
    if (p == &t_kept.node)
      drain_kept();
    else
      free_one(p);
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

bool defer_free_kept(void* p) {
  // One atomic add: a nested handler's deferral in between takes the next entry.
  const unsigned k = __atomic_fetch_add(&t_kept.n, 1u, __ATOMIC_RELAXED);
  if (k >= kKept) return false;
  t_kept.objects[k] = p;
  if (k == 0) link(&t_kept.node);
  return true;
}

void defer_free(void* p) {
  if (!defer_free_kept(p)) link(p);
}

void* emergency_alloc(size_t size) {
  return PageAlloc::huge_alloc(size, 16, nullptr);
}

}  // namespace slub
