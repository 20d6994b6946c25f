// SPDX-License-Identifier: MIT
// core/reentry: a signal handler that calls malloc while its thread is inside an allocator
// slow path (which may hold locks). Both allocators (slub/, slab/) and the cache layer run
// their slow paths inside a ReentryGuard; a nested allocation is served by a private mapping
// and a nested free is deferred until the outer call leaves.
#pragma once

#include <cstddef>

#include "core/kmem_cache.h"

namespace slub {

class ReentryGuard {
 public:
  ReentryGuard() : nested_(t_thread.slow_depth++ > 0) {}
  ~ReentryGuard();
  bool nested() const { return nested_; }

 private:
  bool nested_;
};

// A nested free: kept for the thread, freed when the outermost guard ends. In a per-thread
// array of 16 while there is room (the object untouched), past that linked through the object.
void defer_free(void* p);
// The array only: false, and nothing kept, when it is full (a KFENCE object is not linked
// through: its page may be made inaccessible under the link).
bool defer_free_kept(void* p);
// Frees what signal handlers deferred on this thread (the guard's end does it; so does a fast
// path that held a slot as a guard would: slub.cc's locked paths).
void drain_deferred();
// A nested allocation's memory: a huge block, freed through the normal paths.
void* emergency_alloc(size_t size);

// How a deferred object of a slab is freed: the cache layer's dispatch to the cache's
// allocator (core cannot name slub/ or slab/). Set once at start-up, before any free.
using SlabObjectFree = void (*)(KmemCache* s, PageDesc* slab, void* object);
void set_deferred_slab_free(SlabObjectFree fn);

}  // namespace slub
