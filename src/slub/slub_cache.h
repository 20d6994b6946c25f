// slub: the allocator proper. The fast paths are here, inline; everything else is in slub.cc,
// whose opening comment gives the lock order and the slab states.
//
// Call tree, from malloc down to the page allocator:
//   slub_malloc -> kmalloc_index -> slab_alloc (fast: pop CPU freelist, cmpxchg16b)
//     -> __slab_alloc (slow) -> ___slab_alloc: active slab's freelist (remote frees)
//        -> per-CPU partial -> get_partial (node partial list) -> new_slab -> PageAlloc::alloc
//   slub_free -> PageMap::desc_of -> slab_free (fast: push on CPU freelist if the object is in
//     this CPU's active slab) -> __slab_free (slow: cmpxchg16b on the slab's {freelist,
//     counters}; put_cpu_partial / node partial list / discard_slab -> PageAlloc::free)
#pragma once

#include <cerrno>

#include "core/kmem_cache.h"
#include "mm/page_map.h"

namespace slub {

void ensure_init();
extern std::atomic<int> g_init_state;  // 2 when ready

// `orig_size` is what the user asked for (kept by debug kmalloc caches).
SLUB_SLOW_PATH void* __slab_alloc(KmemCache* s, size_t orig_size);
// The same for an object of node `node` (kmem_cache_alloc_node), or any node if node < 0.
SLUB_SLOW_PATH void* __slab_alloc_node(KmemCache* s, size_t orig_size, int node);
SLUB_SLOW_PATH void __slab_free(KmemCache* s, PageDesc* slab, void* object);

// A free of an object already at the head of its freelist: reported (abort with SLUB_STRICT=1)
// and ignored.
SLUB_SLOW_PATH void report_double_free(const KmemCache* s, const void* object);

// Allocation fast path: about 15 instructions and one locked cmpxchg16b. Reads tid before the
// freelist; a busy tid (a slow path holds the slot) or an empty freelist goes slow. Debug
// caches never get a CPU freelist, so they always go slow without testing anything here.
SLUB_FAST_PATH void* slab_alloc(KmemCache* s, size_t orig_size) {
  for (;;) {
    KmemCacheCpu* c = raw_cpu_ptr(s, CpuId::current());
    if (SLUB_UNLIKELY(c == nullptr)) break;
    uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_ACQUIRE);
    void* object = reinterpret_cast<void*>(__atomic_load_n(&c->freelist_tid.lo, __ATOMIC_ACQUIRE));
    if (SLUB_UNLIKELY(object == nullptr || (tid & kTidBusy))) break;
    void* next = get_freepointer_safe(s, object);
    if (SLUB_UNLIKELY(!freeptr_plausible(object, next))) break;  // the slow path reports it
    DoubleWord expected{reinterpret_cast<uint64_t>(object), tid};
    if (SLUB_LIKELY(cmpxchg16b(&c->freelist_tid, expected,
                               {reinterpret_cast<uint64_t>(next), tid + kTidStep}))) {
      stat(c, ALLOC_FASTPATH);
      return object;
    }
    stat(c, CMPXCHG_DOUBLE_CPU_FAIL);
  }
  return __slab_alloc(s, orig_size);
}

// kmem_cache_alloc_node: the fast path when the CPU slab is on `node` (the kernel's
// node_match); otherwise the slow path deactivates it and finds a slab of that node. The CPU
// slab is read after the tid, so a change of slab fails the swap.
SLUB_FAST_PATH void* slab_alloc_node(KmemCache* s, size_t orig_size, int node) {
  for (;;) {
    KmemCacheCpu* c = raw_cpu_ptr(s, CpuId::current());
    if (SLUB_UNLIKELY(c == nullptr)) break;
    uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_ACQUIRE);
    void* object = reinterpret_cast<void*>(__atomic_load_n(&c->freelist_tid.lo, __ATOMIC_ACQUIRE));
    PageDesc* slab = __atomic_load_n(&c->slab, __ATOMIC_ACQUIRE);
    if (object == nullptr || (tid & kTidBusy) || slab == nullptr || slab->node != node) break;
    void* next = get_freepointer_safe(s, object);
    if (!freeptr_plausible(object, next)) break;
    DoubleWord expected{reinterpret_cast<uint64_t>(object), tid};
    if (cmpxchg16b(&c->freelist_tid, expected,
                   {reinterpret_cast<uint64_t>(next), tid + kTidStep})) {
      stat(c, ALLOC_FASTPATH);
      return object;
    }
    stat(c, CMPXCHG_DOUBLE_CPU_FAIL);
  }
  return __slab_alloc_node(s, orig_size, node);
}

// Free fast path: only for an object of this CPU's active slab. Reads tid, then the active
// slab, then the freelist; the cmpxchg16b fails if any of them changed in between.
SLUB_FAST_PATH void slab_free(KmemCache* s, PageDesc* slab, void* object) {
  for (;;) {
    KmemCacheCpu* c = raw_cpu_ptr(s, CpuId::current());
    if (SLUB_UNLIKELY(c == nullptr)) break;
    uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_ACQUIRE);
    PageDesc* active = __atomic_load_n(&c->slab, __ATOMIC_ACQUIRE);
    if (SLUB_UNLIKELY(active != slab || (tid & kTidBusy))) break;
    uint64_t head = __atomic_load_n(&c->freelist_tid.lo, __ATOMIC_ACQUIRE);
    if (SLUB_UNLIKELY(head == reinterpret_cast<uint64_t>(object))) {
      report_double_free(s, object);  // freed twice in a row: the kernel's naive check
      return;
    }
    set_freepointer(s, object, reinterpret_cast<void*>(head));
    DoubleWord expected{head, tid};
    if (SLUB_LIKELY(cmpxchg16b(&c->freelist_tid, expected,
                               {reinterpret_cast<uint64_t>(object), tid + kTidStep}))) {
      stat(c, FREE_FASTPATH);
      return;
    }
    stat(c, CMPXCHG_DOUBLE_CPU_FAIL);
  }
  __slab_free(s, slab, object);
}

// The cache operations behind the public API (slub.cc).
// Creates a cache, or returns a compatible existing one with `name` as a new alias.
KmemCache* cache_create(const char* name, size_t size, size_t align, unsigned long flags,
                        kmem_ctor_t ctor, size_t useroffset, size_t usersize);
int cache_destroy(KmemCache* s);
int cache_shrink(KmemCache* s);
// Flushes the CPU slabs and checks every slab on the node lists (all slabs, for debug caches,
// which keep full slabs on a list too). Returns the number of errors found.
int cache_validate(KmemCache* s);
// The same two with g_slab_mutex already held.
int cache_validate_locked(KmemCache* s);
int cache_shrink_locked(KmemCache* s);
// Writes the kernel's alloc_calls (or free_calls) summary of `s` to fd (needs U).
int cache_print_calls(KmemCache* s, bool free_calls, int fd);
void cache_get_info(const KmemCache* s, kmem_cache_info* info);
// What the queues and per-CPU structures hold (SLUB or the SLAB clone).
void cache_queue_info(KmemCache* s, kmem_cache_queue_info* info);
// Per-node counts (partial list walked under the node's list_lock).
void cache_node_info(const KmemCache* s, int node, kmem_cache_node_info* info);
// Flushes every CPU's slab and partials of `s` back to the node lists. Returns slabs flushed.
int flush_all(KmemCache* s);
// One pass of the flusher: flushes per-CPU slabs idle since the previous pass.
int flush_idle_pass();

// Reentrancy (a signal handler calling malloc while this thread is inside a slow path that
// holds locks): slow paths run inside a ReentryGuard; a nested allocation is served by a
// private mapping and a nested free is deferred until the outer call leaves.
extern SLUB_TLS int t_slow_depth;
class ReentryGuard {
 public:
  ReentryGuard() : nested_(t_slow_depth++ > 0) {}
  ~ReentryGuard();
  bool nested() const { return nested_; }

 private:
  bool nested_;
};
void defer_free(void* p);
// A nested allocation's memory: a huge block, freed through the normal paths.
void* emergency_alloc(size_t size);

// fork(): take every allocator lock in the fixed order; release on both sides.
void fork_prepare();
void fork_parent();
void fork_child();

// Starts the flusher thread if it is wanted and allowed (SLUB_FLUSHER=0 forbids it). Called
// with no lock held, at the end of slow paths.
void maybe_start_flusher();

}  // namespace slub
