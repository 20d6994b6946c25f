// slub.cc: the SLUB allocator's slow paths, list management, flushing and the flusher thread.
//
// Lock order (outermost first):
//   g_slab_mutex            the cache list; cache creation, destruction, shrink; the flusher
//   KmemCacheCpu::lock      a CPU slot's active slab, its per-CPU partial chain, and the right
//                           to set kTidBusy and store to {freelist, tid} directly
//   KmemCacheNode::list_lock  a node's partial list, nr_partial and each slab's
//                           on_node_partial
//   PageAlloc lock, meta lock, CPU-area lock  (leaves)
//
// What protects the slab's {freelist, counters}: nothing but cmpxchg16b. Every change of a
// slab's free objects, inuse count or frozen bit is one compare-and-swap of that double word,
// whoever makes it (the owning CPU refilling, a remote free, deactivation).
//
// Slab states (kernel 6.8 naming), and who may move a slab out of each:
//   cpu slab      frozen; c->slab of one CPU; objects come from here only. Its owner (c->lock
//                 held, tid busy) takes remote frees with get_freelist or deactivates it.
//   cpu partial   unfrozen, on one CPU's c->partial chain, not on a node list. Reached by the
//                 freeing CPU adopting a full slab (put_cpu_partial) or by get_partial taking
//                 extra slabs. Left when the CPU takes it as its cpu slab or drains the chain.
//   node partial  unfrozen, on_node_partial, on its node's list (list_lock).
//   full          unfrozen, no free objects, on no list. The first free into it (prior ==
//                 NULL in __slab_free) makes the freeing CPU adopt it as cpu partial.
//   empty         inuse == 0; freed to the page allocator when its node already keeps
//                 min_partial partial slabs, else kept on the node partial list.
// Debug caches (any of F Z P U T) have no cpu slabs and no cpu partials: each alloc and free
// takes the node's list_lock (alloc_single_from_partial, free_to_partial_list), so that the
// checks of the debug mode see a stable slab.
//
// Lockless paths: slab_alloc and slab_free (slub.h) on the CPU slot's {freelist, tid}; the
// cmpxchg16b in __slab_free when no list changes.
#include "slub/export.h"
#include "slub/slub_cache.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <type_traits>

#include "core/debug.h"
#include "core/kmalloc.h"
#include "core/merge.h"
#include "core/meta.h"
#include "mm/page_alloc.h"
#include "pal/os.h"
#include "pal/rcu.h"
#include "slab/slab.h"

namespace slub {

constinit std::atomic<int> g_init_state{0};
SLUB_TLS int t_slow_depth = 0;

namespace {

SLUB_TLS void* t_deferred = nullptr;  // nested frees, linked through their first word
SLUB_TLS bool t_draining = false;     // drain_deferred is running on this thread

constinit SpinLock g_init_lock;
constinit std::atomic<bool> g_atfork_done{false};
constinit std::atomic<bool> g_flusher_started{false};
constinit bool g_flusher_allowed = true;
constinit unsigned g_flush_ms = 2000;
constinit bool g_default_slab = false;       // SLUB_ALLOCATOR=slab
constinit bool g_export = true;              // SLUB_EXPORT: the statistics area for tools/slabinfo
constinit uint64_t g_init_ns = 0;            // when the allocator was initialised (CLOCK_MONOTONIC)
constexpr size_t kFlusherDirtyPages = 1024;  // 4 MiB free but resident

// Calls fn for the slot of `s` on every CPU that has an area.
template <typename F>
void for_each_cpu_slot(const KmemCache* s, F fn) {
  const int used = nr_used_cpus();
  for (int i = 0; i < used; ++i) {
    const int cpu = used_cpu(i);
    if (KmemCacheCpu* c = per_cpu_ptr(s, cpu)) {
      if constexpr (std::is_invocable_v<F, KmemCacheCpu*, int>)
        fn(c, cpu);
      else
        fn(c);
    }
  }
}

// Counts an event on the calling CPU's slot of `s` (slow paths). The entry points of the slow
// paths make sure the CPU has an area (own_cpu_area) before they take any lock.
void stat_here(const KmemCache* s, slub_stat_item item) {
  if (KmemCacheCpu* c = raw_cpu_ptr(s, CpuId::current())) stat(c, item);
}

// ---------------------------------------------------------------------------------------------
// The CPU slot's {freelist, tid}: taking it for a slow path and publishing it again.

// With c->lock held: marks the slot of `cpu` busy and takes its freelist. Compare-and-swap fast
// paths that read the old tid fail their swap; those that read the busy tid go slow and wait
// for the lock. An rseq fast path that read the old tid may still be in its section on `cpu`:
// unless this thread is itself running on `cpu` now (so any such section was preempted and
// will restart), the CPU is fenced before the freelist is taken (pal/cpu_id.h).
void* freeze_cpu_freelist(KmemCacheCpu* c, int cpu) {
  __atomic_fetch_or(&c->freelist_tid.hi, kTidBusy, __ATOMIC_SEQ_CST);
  if (CpuId::rseq_may_be_in_flight() && CpuId::rseq_cpu() != cpu) CpuId::rseq_fence(cpu);
  return reinterpret_cast<void*>(__atomic_exchange_n(&c->freelist_tid.lo, 0, __ATOMIC_ACQ_REL));
}

// With c->lock held and the slot busy: installs `freelist` and a new, non-busy tid. The tid is
// stored last, with release order, so a fast path that sees it also sees c->slab and the list.
void publish_cpu_freelist(KmemCacheCpu* c, void* freelist) {
  // For ThreadSanitizer: the fast paths' cmpxchg16b acquires the pair's address (base.h); these
  // plain stores release the freelist to them through it.
  SLUB_TSAN_RELEASE(&c->freelist_tid);
  const uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_RELAXED);
  __atomic_store_n(&c->freelist_tid.lo, reinterpret_cast<uint64_t>(freelist), __ATOMIC_RELAXED);
  __atomic_store_n(&c->freelist_tid.hi, (tid & ~kTidBusy) + kTidStep, __ATOMIC_RELEASE);
}

// ---------------------------------------------------------------------------------------------
// Slab double-word transitions.

bool cmpxchg_slab(PageDesc* slab, void* old_fl, SlabCounters old_c, void* new_fl,
                  SlabCounters new_c) {
  DoubleWord expected{reinterpret_cast<uint64_t>(old_fl), old_c.raw};
  return cmpxchg16b(slab->pair(), expected, {reinterpret_cast<uint64_t>(new_fl), new_c.raw});
}

// Takes the whole slab freelist of the CPU's own frozen slab (objects freed remotely). The slab
// stays frozen if it had any; otherwise it is full and, from now on, unfrozen.
void* get_freelist(PageDesc* slab) {
  for (;;) {
    void* fl = slab->slab_freelist();
    SlabCounters old = slab->ctrs();
    SlabCounters nw = SlabCounters::make(old.objects(), old.objects(), fl != nullptr);
    if (cmpxchg_slab(slab, fl, old, nullptr, nw)) return fl;
  }
}

// Makes an unfrozen slab with free objects the CPU's slab: takes its freelist, freezes it.
void* freeze_slab(PageDesc* slab) {
  for (;;) {
    void* fl = slab->slab_freelist();
    SlabCounters old = slab->ctrs();
    if (fl == nullptr) return nullptr;
    SlabCounters nw = SlabCounters::make(old.objects(), old.objects(), true);
    if (cmpxchg_slab(slab, fl, old, nullptr, nw)) return fl;
  }
}

// ---------------------------------------------------------------------------------------------
// Node partial lists (list_lock held).

void add_partial(KmemCacheNode* n, PageDesc* slab, bool tail) {
  __atomic_store_n(&n->nr_partial, n->nr_partial + 1, __ATOMIC_RELAXED);  // peeked unlocked
  if (tail)
    n->partial.add_tail(&slab->list);
  else
    n->partial.add_head(&slab->list);
  slab->on_node_partial = 1;
}

void remove_partial(KmemCacheNode* n, PageDesc* slab) {
  ListHead::del(&slab->list);
  slab->on_node_partial = 0;
  __atomic_store_n(&n->nr_partial, n->nr_partial - 1, __ATOMIC_RELAXED);
}

// ---------------------------------------------------------------------------------------------
// Slabs from and to the page allocator.

// SLUB_FREELIST_RANDOM: the kernel's CONFIG_SLAB_FREELIST_RANDOM. The cache's precomputed
// permutation (random_seq) is walked from a random start, skipping indices beyond this slab's
// object count (a fallback-order slab has fewer). Returns the first object.
void* shuffle_freelist(const KmemCache* s, char* base, unsigned objects) {
  const unsigned n = s->objects;  // the permutation covers the preferred order's objects
  unsigned pos = static_cast<unsigned>(os::random_u64() % n);
  void* first = nullptr;
  char* prev = nullptr;
  for (unsigned k = 0; k < n; ++k, pos = pos + 1 == n ? 0 : pos + 1) {
    const unsigned idx = s->random_seq[pos];
    if (idx >= objects) continue;
    char* p = s->object_at(base, idx);
    if (prev != nullptr)
      set_freepointer(s, prev, p);
    else
      first = p;
    prev = p;
  }
  set_freepointer(s, prev, nullptr);
  return first;
}

// A new slab on `node`. With for_cpu, its whole freelist goes to the caller (*freelist) and the
// slab is frozen with inuse == objects; otherwise the freelist stays on the slab (debug caches).
PageDesc* new_slab(KmemCache* s, int node, bool for_cpu, void** freelist) {
  unsigned objects = s->objects;
  PageDesc* slab = PageAlloc::alloc(s->order, node, PageKind::kSlab);
  if (slab == nullptr && s->order != s->min_order) {
    slab = PageAlloc::alloc(s->min_order, node, PageKind::kSlab);
    objects = s->min_objects;
    if (slab != nullptr) stat_here(s, ORDER_FALLBACK);
  }
  if (slab == nullptr) return nullptr;
  slab->cache = s;
  char* base = desc_address(slab);
  slab->start = s->object_at(base, 0);
  if (SLUB_UNLIKELY(s->is_debug())) setup_slab_debug(s, slab, objects);
  if (s->ctor != nullptr)
    for (unsigned i = 0; i < objects; ++i) s->ctor(s->object_at(base, i));
  void* first;
  if (SLUB_UNLIKELY(s->random_seq != nullptr)) {
    first = shuffle_freelist(s, base, objects);
  } else {
    for (unsigned i = 0; i < objects; ++i) {
      char* p = s->object_at(base, i);
      set_freepointer(s, p, i + 1 < objects ? p + s->size : nullptr);
    }
    first = s->object_at(base, 0);
  }
  if (for_cpu) {
    slab->freelist = nullptr;
    slab->counters = SlabCounters::make(objects, objects, true).raw;
    *freelist = first;
  } else {
    slab->freelist = first;
    slab->counters = SlabCounters::make(0, objects, false).raw;
  }
  KmemCacheNode* n = s->get_node(slab->node);
  n->nr_slabs.fetch_add(1, std::memory_order_relaxed);
  n->total_objects.fetch_add(objects, std::memory_order_relaxed);
  return slab;
}

// After a grace period: the pages of a SLAB_TYPESAFE_BY_RCU slab go back to the page allocator.
void rcu_free_slab(RcuHead* head) {
  SLUB_TSAN_ACQUIRE(head);  // from discard_slab, through liburcu (not instrumented)
  PageAlloc::free(
      reinterpret_cast<PageDesc*>(reinterpret_cast<char*>(head) - offsetof(PageDesc, list)));
}

void discard_slab(KmemCache* s, PageDesc* slab) {
  KmemCacheNode* n = s->get_node(slab->node);
  n->nr_slabs.fetch_sub(1, std::memory_order_relaxed);
  n->total_objects.fetch_sub(slab->ctrs().objects(), std::memory_order_relaxed);
  stat_here(s, FREE_SLAB);
  if (SLUB_UNLIKELY(s->flags & SLAB_TYPESAFE_BY_RCU)) {
    // Readers inside rcu_read_lock() may still look at objects of this slab: its memory must
    // stay of this type until they are done. The slab is on no list, so its list link is free
    // to hold the rcu_head.
    static_assert(sizeof(RcuHead) <= sizeof(slab->list));
    SLUB_TSAN_RELEASE(&slab->list);
    rcu::call(reinterpret_cast<RcuHead*>(&slab->list), rcu_free_slab);
    return;
  }
  PageAlloc::free(slab);
}

// Moves a chain of per-CPU partial slabs to their nodes' partial lists (tail), freeing empty
// ones the node does not need (the kernel's __put_partials).
void put_partials(KmemCache* s, PageDesc* chain) {
  KmemCacheNode* n = nullptr;
  PageDesc* discard = nullptr;
  while (chain != nullptr) {
    PageDesc* slab = chain;
    chain = slab->cpu_partial.next;
    KmemCacheNode* n2 = s->get_node(slab->node);
    if (n2 != n) {
      if (n != nullptr) n->list_lock.unlock();
      n = n2;
      n->list_lock.lock();
    }
    if (slab->ctrs().inuse() == 0 && n->nr_partial >= s->min_partial) {
      slab->cpu_partial.next = discard;
      discard = slab;
    } else {
      add_partial(n, slab, true);
    }
  }
  if (n != nullptr) n->list_lock.unlock();
  while (discard != nullptr) {
    PageDesc* slab = discard;
    discard = slab->cpu_partial.next;
    discard_slab(s, slab);
  }
}

// Adopts an unfrozen slab into the calling CPU's partial chain; drains the chain to the node
// lists first when it already holds cpu_partial_slabs slabs.
void put_cpu_partial(KmemCache* s, PageDesc* slab) {
  const int cpu = CpuId::current();
  KmemCacheCpu* c = get_cpu_area(cpu) != nullptr ? per_cpu_ptr(s, cpu) : nullptr;
  if (c == nullptr) {  // no memory for this CPU's area: the node list takes the slab
    KmemCacheNode* n = s->get_node(slab->node);
    LockGuard g(n->list_lock);
    add_partial(n, slab, true);
    return;
  }
  PageDesc* drain = nullptr;
  c->lock.lock();
  PageDesc* old = c->partial;
  int slabs = old != nullptr ? old->cpu_partial.slabs : 0;
  if (old != nullptr && slabs >= static_cast<int>(s->cpu_partial_slabs)) {
    drain = old;
    stat(c, CPU_PARTIAL_DRAIN);
    old = nullptr;
    slabs = 0;
  }
  slab->cpu_partial.next = old;
  slab->cpu_partial.slabs = slabs + 1;
  __atomic_store_n(&c->partial, slab, __ATOMIC_RELAXED);  // the flusher peeks at it unlocked
  c->lock.unlock();
  if (drain != nullptr) put_partials(s, drain);
}

// Retires a CPU slab: gives the CPU freelist `fl` back to the slab, unfreezes it, and puts it
// on the node partial list, frees it, or (full) forgets it.
void deactivate_slab(KmemCache* s, PageDesc* slab, void* fl) {
  void* tail = nullptr;
  unsigned count = 0;
  for (void* p = fl; p != nullptr;) {
    tail = p;
    ++count;
    void* next = get_freepointer(s, p);
    if (SLUB_UNLIKELY(!freeptr_plausible(p, next))) {
      report_bad_freeptr(s, p, next);
      set_freepointer(s, p, nullptr);  // cut here: the objects after it stay allocated
      break;
    }
    p = next;
  }
  void* old_fl;
  SlabCounters nw;
  for (;;) {
    old_fl = slab->slab_freelist();
    SlabCounters old = slab->ctrs();
    if (tail != nullptr) set_freepointer(s, tail, old_fl);
    nw = SlabCounters::make(old.inuse() - count, old.objects(), false);
    if (cmpxchg_slab(slab, old_fl, old, fl != nullptr ? fl : old_fl, nw)) break;
  }
  KmemCacheNode* n = s->get_node(slab->node);
  if (old_fl != nullptr) stat_here(s, DEACTIVATE_REMOTE_FREES);
  // Read without list_lock, as the kernel does: only decides whether an empty slab is kept.
  if (nw.inuse() == 0 && __atomic_load_n(&n->nr_partial, __ATOMIC_RELAXED) >= s->min_partial) {
    stat_here(s, DEACTIVATE_EMPTY);
    discard_slab(s, slab);
  } else if (fl != nullptr || old_fl != nullptr) {
    stat_here(s, old_fl != nullptr ? DEACTIVATE_TO_TAIL : DEACTIVATE_TO_HEAD);
    LockGuard g(n->list_lock);
    add_partial(n, slab, old_fl != nullptr);  // remote frees arrived: tail, else head
  } else {
    stat_here(s, DEACTIVATE_FULL);  // on no list until a free makes it partial
  }
}

// The node's partial list: the first slab becomes the CPU slab (its freelist returned in *fl),
// more go to the CPU partial chain until it holds half its budget. c->lock held.
PageDesc* get_partial_node(KmemCache* s, KmemCacheNode* n, KmemCacheCpu* c, void** fl) {
  if (__atomic_load_n(&n->nr_partial, __ATOMIC_RELAXED) == 0) return nullptr;
  PageDesc* got = nullptr;
  unsigned taken = 0;
  LockGuard g(n->list_lock);
  while (!n->partial.empty()) {
    PageDesc* slab = list_entry<PageDesc, &PageDesc::list>(n->partial.next);
    remove_partial(n, slab);
    if (got == nullptr) {
      *fl = freeze_slab(slab);
      got = slab;
      stat(c, ALLOC_FROM_PARTIAL);
      if (!s->has_cpu_partial()) break;
    } else {
      stat(c, CPU_PARTIAL_NODE);
      PageDesc* old = c->partial;
      slab->cpu_partial.next = old;
      slab->cpu_partial.slabs = (old != nullptr ? old->cpu_partial.slabs : 0) + 1;
      __atomic_store_n(&c->partial, slab, __ATOMIC_RELAXED);
      if (++taken > s->cpu_partial_slabs / 2) break;
    }
  }
  return got;
}

// Other nodes' partial lists, nearest first (the kernel's get_any_partial): tried on a fraction
// remote_node_defrag_ratio/1024 of the misses, and only on nodes that keep more than
// min_partial partial slabs, so that a node's own reserve is not raided and most misses grow
// the local node instead. c->lock held.
PageDesc* get_any_partial(KmemCache* s, KmemCacheCpu* c, int node, void** fl) {
  const unsigned ratio = s->remote_node_defrag_ratio;
  if (ratio == 0 || __builtin_ia32_rdtsc() % 1024 > ratio) return nullptr;
  const int nodes = s->nr_nodes < Topology::nr_nodes() ? s->nr_nodes : Topology::nr_nodes();
  for (int k = 1; k < nodes; ++k) {
    const int m = Topology::nearest(node, k);
    KmemCacheNode* n = s->node[m];
    if (__atomic_load_n(&n->nr_partial, __ATOMIC_RELAXED) <= s->min_partial) continue;
    if (PageDesc* slab = get_partial_node(s, n, c, fl)) return slab;
  }
  return nullptr;
}

// Finds objects for the CPU in SLUB's order. c->lock held, slot busy, CPU freelist empty.
// `node` is the CPU's node; with `exact` (kmem_cache_alloc_node), objects must come from it.
void* ___slab_alloc(KmemCache* s, KmemCacheCpu* c, int node, bool exact) {
  if (c->slab != nullptr) {
    void* fl = get_freelist(c->slab);  // remote frees to our slab
    if (fl != nullptr) {
      stat(c, ALLOC_REFILL);
      return fl;
    }
    // Full, unfrozen, on no list. (Fast-path frees and the flusher read c->slab unlocked.)
    __atomic_store_n(&c->slab, static_cast<PageDesc*>(nullptr), __ATOMIC_RELAXED);
    stat(c, DEACTIVATE_BYPASS);
  }
  PageDesc* wrong_node = nullptr;  // exact: cpu partials of other nodes, given back below
  while (c->partial != nullptr) {
    stat(c, CPU_PARTIAL_ALLOC);
    PageDesc* slab = c->partial;
    __atomic_store_n(&c->partial, slab->cpu_partial.next, __ATOMIC_RELAXED);
    if (slab->cpu_partial.next != nullptr)
      slab->cpu_partial.next->cpu_partial.slabs = slab->cpu_partial.slabs - 1;
    if (exact && slab->node != node) {
      slab->cpu_partial.next = wrong_node;
      wrong_node = slab;
      continue;
    }
    void* fl = freeze_slab(slab);
    if (fl != nullptr) {
      __atomic_store_n(&c->slab, slab, __ATOMIC_RELAXED);
      if (wrong_node != nullptr) put_partials(s, wrong_node);
      return fl;
    }
  }
  if (wrong_node != nullptr) put_partials(s, wrong_node);
  void* fl = nullptr;
  PageDesc* slab = get_partial_node(s, s->get_node(node), c, &fl);
  if (slab == nullptr && !exact) slab = get_any_partial(s, c, node, &fl);
  if (slab == nullptr) {
    slab = new_slab(s, node, true, &fl);
    if (slab != nullptr) stat(c, ALLOC_SLAB);
  }
  if (slab == nullptr) return nullptr;
  __atomic_store_n(&c->slab, slab, __ATOMIC_RELAXED);
  return fl;
}

// Debug caches keep their full slabs on a list so that validation sees every slab.
void add_full(KmemCacheNode* n, PageDesc* slab) {
  n->full.add_tail(&slab->list);
}
void remove_full(PageDesc* slab) {
  ListHead::del(&slab->list);
}

// Debug caches: one object at a time under the node lock, from the first partial slab or a
// new slab (the kernel's alloc_single_from_partial / alloc_single_from_new_slab), checked by
// alloc_debug_processing. A slab that fails the checks is marked full and the next one tried.
void* alloc_single(KmemCache* s, int node, size_t orig_size, const void* caller, uint32_t handle) {
  KmemCacheNode* n = s->get_node(node);
  n->list_lock.lock();
  for (;;) {
    if (n->partial.empty()) {
      n->list_lock.unlock();
      void* unused;
      PageDesc* fresh = new_slab(s, node, false, &unused);
      if (fresh == nullptr) return nullptr;
      n = s->get_node(fresh->node);
      n->list_lock.lock();
      add_partial(n, fresh, false);
    }
    PageDesc* slab = list_entry<PageDesc, &PageDesc::list>(n->partial.next);
    void* object = slab->freelist;
    SlabCounters c = slab->ctrs();
    slab->set_freelist(get_freepointer(s, object));
    slab->set_counters(SlabCounters::make(c.inuse() + 1, c.objects(), false));
    const bool ok = alloc_debug_processing(s, slab, object, orig_size, caller, handle);
    if (!ok || slab->freelist == nullptr) {  // full, or taken out of use
      remove_partial(n, slab);
      add_full(n, slab);
    }
    if (ok) {
      n->list_lock.unlock();
      return object;
    }
  }
}

void free_to_partial_list(KmemCache* s, PageDesc* slab, void* object, const void* caller,
                          uint32_t handle) {
  KmemCacheNode* n = s->get_node(slab->node);
  n->list_lock.lock();
  if (!free_debug_processing(s, slab, object, caller, handle)) {
    n->list_lock.unlock();  // reported; the object stays allocated (quarantined)
    return;
  }
  void* prior = slab->freelist;
  SlabCounters c = slab->ctrs();
  set_freepointer(s, object, prior);
  slab->set_freelist(object);
  slab->set_counters(SlabCounters::make(c.inuse() - 1, c.objects(), false));
  if (c.inuse() == 1 && n->nr_partial >= s->min_partial) {
    if (prior != nullptr)
      remove_partial(n, slab);
    else
      remove_full(slab);
    n->list_lock.unlock();
    discard_slab(s, slab);
    return;
  }
  if (prior == nullptr) {  // full -> partial
    remove_full(slab);
    add_partial(n, slab, true);
  }
  n->list_lock.unlock();
}

// With the slot locked and busy: moves the oldest `max` objects of c's sheaf (all if it holds
// fewer) to out[] and returns how many.
unsigned take_sheaf(KmemCacheCpu* c, void** out, unsigned max) {
  Sheaf* sh = c->sheaf;
  if (sh == nullptr || sh->count == 0) return 0;
  const unsigned n = sh->count < max ? static_cast<unsigned>(sh->count) : max;
  memcpy(out, sh->objs, n * sizeof(void*));
  memmove(sh->objs, sh->objs + n, (sh->count - n) * sizeof(void*));
  __atomic_store_n(&sh->count, sh->count - n, __ATOMIC_RELAXED);  // the flusher peeks at it
  return n;
}

void free_objects(KmemCache* s, void** objs, unsigned n, bool to_node);
void do_slab_free(KmemCache* s, PageDesc* slab, void* object, bool to_node);
bool sheaf_free(KmemCache* s, PageDesc* slab, void* object, int cpu);

// Takes c's active slab, partial chain and sheaf off the CPU and returns them to the node lists.
// c->lock held on entry; released here. Returns 1 if there was anything to flush.
int flush_cpu_slab_locked(KmemCache* s, KmemCacheCpu* c, int cpu) {
  void* fl = freeze_cpu_freelist(c, cpu);
  PageDesc* slab = c->slab;
  PageDesc* partial = c->partial;
  void* sheaf[kSheafMaxCap];
  const unsigned in_sheaf = take_sheaf(c, sheaf, ~0u);
  if (slab != nullptr) stat(c, CPUSLAB_FLUSH);
  __atomic_store_n(&c->slab, static_cast<PageDesc*>(nullptr), __ATOMIC_RELAXED);
  __atomic_store_n(&c->partial, static_cast<PageDesc*>(nullptr), __ATOMIC_RELAXED);
  publish_cpu_freelist(c, nullptr);
  __atomic_store_n(&c->flush_seen, slot_activity(c), __ATOMIC_RELAXED);
  c->lock.unlock();
  if (slab != nullptr) deactivate_slab(s, slab, fl);  // CPUSLAB_FLUSH
  if (partial != nullptr) put_partials(s, partial);
  // To the node lists, not to this CPU's partial chain: a shrink that flushed this CPU
  // already must find them there.
  free_objects(s, sheaf, in_sheaf, true);
  return slab != nullptr || partial != nullptr || in_sheaf != 0;
}

// ---------------------------------------------------------------------------------------------
// The flusher: one thread for the whole process, never one per CPU.

// Every g_flush_ms: idle CPU slabs back to their nodes, free pages back to the OS. Every
// second, and whenever tools/slabinfo asks: a statistics snapshot (slub/export.cc). The
// statistics area is made at the first snapshot, when the process is a second old: most
// processes of a shell script are gone by then and never pay for it.
void* flusher_main(void*) {
  prctl(PR_SET_NAME, "slub-flusher", 0, 0, 0);
  constexpr uint64_t kPublishNs = 1000000000ull;
  uint64_t now = os::now_ns();
  uint64_t next_flush = now + uint64_t{g_flush_ms} * 1000000ull;
  uint64_t next_publish = g_init_ns + kPublishNs > now ? g_init_ns + kPublishNs : now;
  for (;;) {
    const uint64_t next = next_flush < next_publish ? next_flush : next_publish;
    const unsigned wait_ms = next > now ? static_cast<unsigned>((next - now) / 1000000ull) + 1 : 1;
    if (export_wait(wait_ms)) export_serve();
    now = os::now_ns();
    if (now >= next_flush) {
      flush_idle_pass();
      PageAlloc::purge_dirty();
      next_flush = now + uint64_t{g_flush_ms} * 1000000ull;
    }
    if (now >= next_publish) {
      export_publish();
      next_publish = now + kPublishNs;
      // glibc ends a process when its last thread exits; this thread must not keep one alive
      // after main called pthread_exit and the program's other threads ended.
      if (os::only_service_threads_left(1)) exit(0);
    }
  }
  return nullptr;
}

void drain_deferred() {
  while (t_deferred != nullptr) {
    void* p = t_deferred;
    t_deferred = *static_cast<void**>(p);
    PageDesc* d = PageMap::desc_of(p);
    if (d == nullptr) {
      if (HugeHeader* h = PageAlloc::huge_header(p)) PageAlloc::huge_free(h);
    } else if (d->kind == PageKind::kSlab) {
      __slab_free(d->cache, d, p);
    } else if (d->kind == PageKind::kLarge) {
      PageAlloc::free(d);
    }
  }
}

void init_slow() {
  g_init_lock.lock();
  if (g_init_state.load(std::memory_order_relaxed) == 2) {
    g_init_lock.unlock();
    return;
  }
  g_init_state.store(1, std::memory_order_relaxed);
  g_init_ns = os::now_ns();
  CpuId::init();
  Topology::init();
  PageAlloc::init();
  debug_init();  // SLUB_DEBUG applies to the kmalloc caches too
  merge_init();
  g_flusher_allowed = os::env_long("SLUB_FLUSHER", 1) != 0;
  g_export = os::env_long("SLUB_EXPORT", 1) != 0;
  long ms = os::env_long("SLUB_FLUSH_MS", 2000);
  g_flush_ms = ms < 10 ? 10 : static_cast<unsigned>(ms);
  {
    LockGuard g(g_slab_mutex);
    if (!kmalloc_init()) os::fatal("slub: cannot create the kmalloc caches\n");
    // SLUB_ALLOCATOR=slab: the SLAB clone behind malloc and behind every cache created.
    const char* kind = os::env_str("SLUB_ALLOCATOR");
    g_default_slab = kind != nullptr && strcmp(kind, "slab") == 0;
    if (kind != nullptr && !g_default_slab && strcmp(kind, "slub") != 0)
      os::print("slub: SLUB_ALLOCATOR=%s ignored (slub or slab)\n", kind);
    for (unsigned i = 0; g_default_slab && i < kNumKmalloc; ++i)
      if (!slab::open(&g_kmalloc_caches[i])) os::fatal("slub: cannot create the SLAB caches\n");
  }
  g_init_state.store(2, std::memory_order_release);
  g_init_lock.unlock();
  // The real CPU-to-node map and distances from hwloc, which allocates: the allocator is ready
  // and no lock is held. Until it answers, every CPU counts as on node 0.
  if (t_slow_depth == 0) Topology::discover();
  // pthread_atfork may call malloc; everything is ready by now.
  if (!g_atfork_done.exchange(true)) pthread_atfork(fork_prepare, fork_parent, fork_child);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void ensure_init() {
  if (SLUB_LIKELY(g_init_state.load(std::memory_order_acquire) == 2)) return;
  init_slow();
}

ReentryGuard::~ReentryGuard() {
  // The deferred frees run at depth 0, each in its own guard (so each is a normal free); a
  // signal handler that frees meanwhile adds to the list, which the loop keeps draining.
  if (--t_slow_depth == 0 && t_deferred != nullptr && !t_draining) {
    t_draining = true;
    drain_deferred();
    t_draining = false;
  }
}

void defer_free(void* p) {
  *static_cast<void**>(p) = t_deferred;
  t_deferred = p;
}

void* emergency_alloc(size_t size) {
  return PageAlloc::huge_alloc(size, 16, nullptr);
}

void* __slab_alloc(KmemCache* s, size_t orig_size) {
  return __slab_alloc_node(s, orig_size, -1);
}

void* __slab_alloc_node(KmemCache* s, size_t orig_size, int want_node) {
  ensure_init();
  void* object = nullptr;
  {
    ReentryGuard guard;
    if (guard.nested()) return emergency_alloc(s->object_size);
    const int cpu = CpuId::current();
    if (get_cpu_area(cpu) == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    const bool exact = want_node >= 0;
    const int node = exact ? want_node : Topology::node_of(cpu);
    if (s->q != nullptr) {
      // The SLAB clone (its CPU slots never hold a freelist); it counts its own hits and misses.
      object = slab::alloc(s, want_node);
    } else if (stat(per_cpu_ptr(s, cpu), ALLOC_SLOWPATH); SLUB_UNLIKELY(s->is_debug())) {
      uint32_t handle = 0;
      const void* caller = nullptr;  // found by unwinding: only U and T need it
      if (s->track_off != 0 || (s->flags & SLAB_TRACE))
        caller = debug_caller(s->track_off != 0 ? &handle : nullptr);
      object = alloc_single(s, node, orig_size, caller, handle);
    } else {
      KmemCacheCpu* c = per_cpu_ptr(s, cpu);
      c->lock.lock();
      void* fl = freeze_cpu_freelist(c, cpu);  // frees may have refilled it since the fast path
      if (exact && c->slab != nullptr && c->slab->node != node) {
        stat(c, ALLOC_NODE_MISMATCH);  // the kernel deactivates the CPU slab, and so do we
        PageDesc* old = c->slab;
        __atomic_store_n(&c->slab, static_cast<PageDesc*>(nullptr), __ATOMIC_RELAXED);
        deactivate_slab(s, old, fl);
        fl = nullptr;
      }
      Sheaf* sh = c->sheaf;
      if (fl == nullptr && !exact && sh != nullptr && sh->count != 0) {
        // Without rseq the fast paths leave the sheaf alone: the slow path empties it.
        object = sh->objs[sh->count - 1];
        __atomic_store_n(&sh->count, sh->count - 1, __ATOMIC_RELAXED);
        publish_cpu_freelist(c, nullptr);
      } else {
        if (fl == nullptr) fl = ___slab_alloc(s, c, node, exact);
        void* next = nullptr;
        if (fl != nullptr) {
          object = fl;
          next = get_freepointer(s, object);
          if (SLUB_UNLIKELY(!freeptr_plausible(object, next))) {
            report_bad_freeptr(s, object, next);
            next = nullptr;  // the rest of the list is lost, not followed
          }
        }
        publish_cpu_freelist(c, next);
      }
      c->lock.unlock();
    }
  }
  if (object == nullptr) errno = ENOMEM;
  maybe_start_flusher();
  if (s->q != nullptr) slab::maybe_start_reaper();
  return object;
}

// The compare-and-swap fast paths (slub_cache.h): about 15 instructions and one locked
// cmpxchg16b each; used where rseq is not (valgrind, SLUB_RSEQ=0, virtual CPUs). While rseq is
// being stopped an rseq section may still commit on any CPU: they leave the slot alone then
// and go slow (the slow path fences).
void* slab_alloc_cas(KmemCache* s, size_t orig_size) {
  while (SLUB_LIKELY(!CpuId::rseq_may_be_in_flight())) {
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

void slab_free_cas(KmemCache* s, PageDesc* slab, void* object) {
  while (SLUB_LIKELY(!CpuId::rseq_may_be_in_flight())) {
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

void report_double_free(const KmemCache* s, const void* object) {
  os::report("slub: %s: double free of %p (already the first free object); ignored\n", s->name,
             object);
}

void __slab_free(KmemCache* s, PageDesc* slab, void* object) {
  ReentryGuard guard;
  if (guard.nested()) {
    defer_free(object);
    return;
  }
  const int cpu = CpuId::current();
  get_cpu_area(cpu);      // for the counters; no lock is held yet
  if (s->q != nullptr) {  // the SLAB clone
    slab::free(s, slab, object);
    return;
  }
  stat_here(s, FREE_SLOWPATH);
  if (SLUB_UNLIKELY(s->is_debug())) {
    uint32_t handle = 0;
    const void* caller = nullptr;
    if (s->track_off != 0 || (s->flags & SLAB_TRACE))
      caller = debug_caller(s->track_off != 0 ? &handle : nullptr);
    free_to_partial_list(s, slab, object, caller, handle);
    return;
  }
  // The rseq fast path found no room in the sheaf (or none yet, or the slot busy).
  if (s->sheaf_cap != 0 && CpuId::rseq_fast() && sheaf_free(s, slab, object, cpu)) return;
  do_slab_free(s, slab, object, false);
}

namespace {

// Frees `object` to its slab (the kernel's __slab_free proper): one cmpxchg16b, plus list work
// when the slab becomes partial or empty. A full slab that gets its first free object joins the
// calling CPU's partial chain, or with `to_node` (or no CPU partials) its node's partial list.
void do_slab_free(KmemCache* s, PageDesc* slab, void* object, bool to_node) {
  const bool cpu_partial = s->has_cpu_partial() && !to_node;
  KmemCacheNode* n = nullptr;
  bool on_node_partial = false;
  void* prior;
  SlabCounters nw;
  bool was_frozen;
  for (;;) {
    if (n != nullptr) {
      n->list_lock.unlock();
      n = nullptr;
    }
    prior = slab->slab_freelist();
    SlabCounters old = slab->ctrs();
    if (SLUB_UNLIKELY(prior == object)) {
      if (n != nullptr) n->list_lock.unlock();
      report_double_free(s, object);
      return;
    }
    set_freepointer(s, object, prior);
    nw = SlabCounters::make(old.inuse() - 1, old.objects(), old.frozen());
    was_frozen = old.frozen();
    if ((nw.inuse() == 0 || prior == nullptr) && !was_frozen) {
      // Needs list work: empty (maybe freed) or full -> partial without cpu partials.
      if (!cpu_partial || prior != nullptr) {
        n = s->get_node(slab->node);
        n->list_lock.lock();
        on_node_partial = slab->on_node_partial;
      }
    }
    if (cmpxchg_slab(slab, prior, old, object, nw)) break;
    stat_here(s, CMPXCHG_DOUBLE_FAIL);
  }
  if (n == nullptr) {
    if (was_frozen) {
      stat_here(s, FREE_FROZEN);  // the owner picks it up in get_freelist
    } else if (cpu_partial && prior == nullptr) {
      stat_here(s, CPU_PARTIAL_FREE);  // the freeing CPU adopts the full slab
      put_cpu_partial(s, slab);
    }
    return;
  }
  if (prior != nullptr && !on_node_partial) {  // on some CPU's partial chain
    n->list_lock.unlock();
    return;
  }
  if (nw.inuse() == 0 && n->nr_partial >= s->min_partial) {
    if (prior != nullptr) {  // else it was full, on no list
      remove_partial(n, slab);
      stat_here(s, FREE_REMOVE_PARTIAL);
    }
    n->list_lock.unlock();
    discard_slab(s, slab);
    return;
  }
  if (!cpu_partial && prior == nullptr) {
    add_partial(n, slab, true);
    stat_here(s, FREE_ADD_PARTIAL);
  }
  n->list_lock.unlock();
}

// Frees a batch taken from a sheaf. Each free is a locked cmpxchg16b on a slab descriptor that
// is most likely not in the cache (the objects come from random slabs), and a locked
// instruction waits for the misses before it: the descriptors and the objects' free-pointer
// words are fetched first, all at once, so that their misses overlap instead of queueing.
void free_objects(KmemCache* s, void** objs, unsigned n, bool to_node) {
  PageDesc* descs[kSheafMaxCap];
  for (unsigned i = 0; i < n; ++i) {
    descs[i] = PageMap::desc_of(objs[i]);
    __builtin_prefetch(descs[i], 1);
    __builtin_prefetch(static_cast<char*>(objs[i]) + s->offset, 1);
  }
  for (unsigned i = 0; i < n; ++i) do_slab_free(s, descs[i], objs[i], to_node);
}

// The slow half of a free with sheaves: with the slot locked and busy, the object goes on the
// CPU freelist if its slab has become the active one, else on the sheaf, made now if the CPU
// has none; a full sheaf first gives its older half back to the slabs (after the unlock).
// False when there is no memory for a sheaf (the caller frees to the slab).
bool sheaf_free(KmemCache* s, PageDesc* slab, void* object, int cpu) {
  KmemCacheCpu* c = per_cpu_ptr(s, cpu);
  if (c == nullptr) return false;
  // A small object of another CPU's active slab: to the slab, as rseq_free decides.
  if (s->size < kSheafSmallObject && slab->ctrs().frozen() &&
      slab != __atomic_load_n(&c->slab, __ATOMIC_RELAXED))
    return false;
  Sheaf* fresh = nullptr;
  if (__atomic_load_n(&c->sheaf, __ATOMIC_RELAXED) == nullptr) {
    fresh = static_cast<Sheaf*>(meta::alloc(sheaf_bytes(s->sheaf_cap)));
    if (fresh == nullptr) return false;
    fresh->cap = s->sheaf_cap;
    fresh->small = s->size < kSheafSmallObject;
  }
  void* evicted[kSheafMaxCap];
  unsigned n_evicted = 0;
  bool twice = false;
  c->lock.lock();
  void* fl = freeze_cpu_freelist(c, cpu);
  if (c->sheaf == nullptr) {
    __atomic_store_n(&c->sheaf, fresh, __ATOMIC_RELAXED);
    fresh = nullptr;
  }
  Sheaf* sh = c->sheaf;
  if (slab == c->slab) {
    twice = fl == object;
    if (!twice) {
      set_freepointer(s, object, fl);
      fl = object;
    }
  } else {
    twice = sh->count != 0 && sh->objs[sh->count - 1] == object;
    if (!twice) {
      if (sh->count == sh->cap) {
        n_evicted = take_sheaf(c, evicted, static_cast<unsigned>(sh->cap + 1) / 2);
      }
      sh->objs[sh->count] = object;
      __atomic_store_n(&sh->count, sh->count + 1, __ATOMIC_RELAXED);
    }
  }
  publish_cpu_freelist(c, fl);
  c->lock.unlock();
  if (fresh != nullptr) meta::free(fresh, sheaf_bytes(s->sheaf_cap));
  if (twice) report_double_free(s, object);
  free_objects(s, evicted, n_evicted, false);
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Cache operations.

KmemCache* cache_create(const char* name, size_t size, size_t align, unsigned long flags,
                        kmem_ctor_t ctor, size_t useroffset, size_t usersize) {
  ensure_init();
  if ((flags & SLAB_TYPESAFE_BY_RCU) && !rcu::load()) {
    os::print("slub: kmem_cache_create(%s): SLAB_TYPESAFE_BY_RCU needs liburcu (liburcu.so.8)\n",
              name);
    errno = ENOSYS;
    return nullptr;
  }
  if (g_default_slab) flags |= SLAB_QUEUED;
  const unsigned long eff = kmem_cache_flags(name, flags);  // with SLUB_DEBUG, as opened
  {
    LockGuard g(g_slab_mutex);
    if (KmemCache* s = find_mergeable(size, align, eff, ctor, usersize))
      return cache_alias(s, name, size) ? s : nullptr;
  }
  void* m = meta::alloc(sizeof(KmemCache));
  if (m == nullptr) return nullptr;
  auto* s = new (m) KmemCache();
  s->useroffset = static_cast<uint32_t>(useroffset);
  s->usersize = static_cast<uint32_t>(usersize);
  LockGuard g(g_slab_mutex);
  // Another thread may have created a compatible cache meanwhile: merging is a best effort
  // here as in the kernel, where slab_mutex is held across; two caches are still correct.
  if (!kmem_cache_open(s, name, size, align, flags, ctor) ||
      ((flags & SLAB_QUEUED) && !slab::open(s))) {
    slab::close(s);
    kmem_cache_release(s);
    meta::free(s, sizeof(KmemCache));
    return nullptr;
  }
  return s;
}

int flush_all(KmemCache* s) {
  int flushed = 0;
  for_each_cpu_slot(s, [&](KmemCacheCpu* c, int cpu) {
    c->lock.lock();
    flushed += flush_cpu_slab_locked(s, c, cpu);
  });
  return flushed;
}

namespace {
// Frees every empty slab on the node partial lists; g_slab_mutex held. Returns slabs freed.
int shrink_nodes(KmemCache* s) {
  int freed = 0;
  for (int i = 0; i < s->nr_nodes; ++i) {
    KmemCacheNode* n = s->node[i];
    PageDesc* discard = nullptr;
    n->list_lock.lock();
    for (ListHead* h = n->partial.next; h != &n->partial;) {
      PageDesc* slab = list_entry<PageDesc, &PageDesc::list>(h);
      h = h->next;
      if (slab->ctrs().inuse() == 0) {
        remove_partial(n, slab);
        slab->cpu_partial.next = discard;
        discard = slab;
      }
    }
    n->list_lock.unlock();
    while (discard != nullptr) {
      PageDesc* slab = discard;
      discard = slab->cpu_partial.next;
      discard_slab(s, slab);
      ++freed;
    }
  }
  return freed;
}

// Calls fn(slab) for every slab on the node lists of `s` (partial, and full for debug
// caches), each node's list_lock held around its slabs.
template <typename F>
void for_each_listed_slab(KmemCache* s, F fn) {
  for (int i = 0; i < s->nr_nodes; ++i) {
    KmemCacheNode* n = s->node[i];
    LockGuard g(n->list_lock);
    for (ListHead* list : {&n->partial, &n->full})
      for (ListHead* h = list->next; h != list; h = h->next)
        fn(list_entry<PageDesc, &PageDesc::list>(h));
  }
}

// Marks the free objects of `slab` in `map` (one bit per object index).
void fill_free_map(const KmemCache* s, PageDesc* slab, uint64_t* map) {
  char* base = desc_address(slab);
  unsigned guard = slab->ctrs().objects();
  for (void* p = slab->freelist; p != nullptr && guard-- > 0 && freeptr_plausible(base, p);
       p = get_freepointer(s, p)) {
    const size_t idx =
        static_cast<size_t>(static_cast<char*>(p) - base - s->red_left_pad) / s->size;
    if (idx < kMaxObjsPerSlab) map[idx / 64] |= uint64_t{1} << (idx % 64);
  }
}

// Reports the objects still allocated in `s` (kmem_cache_destroy of a busy cache).
void report_leftovers(KmemCache* s, size_t slabs, size_t objects) {
  os::print("slub: kmem_cache_destroy %s: Slab cache still has objects: %zu objects in %zu slabs\n",
            s->name, objects, slabs);
  unsigned shown = 0;
  for_each_listed_slab(s, [&](PageDesc* slab) {
    uint64_t free_map[kMaxObjsPerSlab / 64 + 1] = {};
    fill_free_map(s, slab, free_map);
    for (unsigned idx = 0; idx < slab->ctrs().objects() && shown < 8; ++idx)
      if (!(free_map[idx / 64] >> (idx % 64) & 1)) {
        os::print("slub:   object %p still allocated\n",
                  static_cast<void*>(s->object_at(desc_address(slab), idx)));
        ++shown;
      }
  });
}
}  // namespace

int cache_shrink_locked(KmemCache* s) {
  if (s->q != nullptr) return slab::shrink(s);
  flush_all(s);
  return shrink_nodes(s);
}

int cache_shrink(KmemCache* s) {
  get_cpu_area(CpuId::current());  // counters of the flushes and frees below
  LockGuard g(g_slab_mutex);
  return cache_shrink_locked(s);
}

int cache_validate(KmemCache* s) {
  get_cpu_area(CpuId::current());  // counters of the flushes and frees below
  LockGuard g(g_slab_mutex);
  return cache_validate_locked(s);
}

int cache_validate_locked(KmemCache* s) {
  if (s->q != nullptr) return 0;  // the SLAB clone has no debug checks
  flush_all(s);
  int errors = 0;
  for_each_listed_slab(s, [&](PageDesc* slab) { errors += validate_slab(s, slab); });
  return errors;
}

namespace {
// One line of alloc_calls / free_calls: a call site and what its objects have in common.
struct CallSite {
  const void* addr;
  long count;
  uint64_t min_age, max_age, sum_age;
  int min_tid, max_tid;
  uint64_t cpus;  // CPUs 0..63 seen (a summary, as the kernel's cpus= list)
};
}  // namespace

int cache_print_calls(KmemCache* s, bool free_calls, int fd) {
  if (s->track_off == 0) return -1;
  constexpr int kMaxSites = 256;
  CallSite sites[kMaxSites];
  int nsites = 0;
  long dropped = 0;
  const uint64_t now = os::now_ns();
  {
    LockGuard g(g_slab_mutex);
    flush_all(s);
    for_each_listed_slab(s, [&](PageDesc* slab) {
      uint64_t free_map[kMaxObjsPerSlab / 64 + 1] = {};
      fill_free_map(s, slab, free_map);
      for (unsigned i = 0; i < slab->ctrs().objects(); ++i) {
        const bool is_free = (free_map[i / 64] >> (i % 64)) & 1;
        if (is_free != free_calls) continue;
        const Track* t = get_track(s, s->object_at(desc_address(slab), i),
                                   free_calls ? kTrackFree : kTrackAlloc);
        if (t->addr == nullptr) continue;
        const uint64_t age = (now - t->when_ns) / 1000000;
        int k = 0;
        while (k < nsites && sites[k].addr != t->addr) ++k;
        if (k == nsites) {
          if (nsites == kMaxSites) {
            ++dropped;
            continue;
          }
          sites[nsites++] = {t->addr, 0, age, age, 0, t->tid, t->tid, 0};
        }
        CallSite& c = sites[k];
        c.count++;
        c.sum_age += age;
        if (age < c.min_age) c.min_age = age;
        if (age > c.max_age) c.max_age = age;
        if (t->tid < c.min_tid) c.min_tid = t->tid;
        if (t->tid > c.max_tid) c.max_tid = t->tid;
        if (t->cpu >= 0 && t->cpu < 64) c.cpus |= uint64_t{1} << t->cpu;
      }
    });
  }
  // Most frequent first (insertion sort: a few hundred entries at most).
  for (int i = 1; i < nsites; ++i)
    for (int j = i; j > 0 && sites[j].count > sites[j - 1].count; --j) {
      CallSite tmp = sites[j];
      sites[j] = sites[j - 1];
      sites[j - 1] = tmp;
    }
  for (int i = 0; i < nsites; ++i) {
    char sym[256], line[512];
    symbolize(sites[i].addr, sym, sizeof sym);
    char cpus[128];  // the kernel's cpu list: "0-3,7"
    size_t used = 0;
    cpus[0] = '\0';
    for (int c = 0; c < 64 && used < sizeof cpus - 16; ++c) {
      if (!((sites[i].cpus >> c) & 1)) continue;
      int e = c;
      while (e + 1 < 64 && ((sites[i].cpus >> (e + 1)) & 1)) ++e;
      used += snprintf(cpus + used, sizeof cpus - used, used ? ",%d" : "%d", c);
      if (e > c) used += snprintf(cpus + used, sizeof cpus - used, "-%d", e);
      c = e;
    }
    int n = snprintf(line, sizeof line, "%7ld %s age=%llu/%llu/%llu tid=%d-%d cpus=%s\n",
                     sites[i].count, sym, static_cast<unsigned long long>(sites[i].min_age),
                     static_cast<unsigned long long>(sites[i].sum_age / sites[i].count),
                     static_cast<unsigned long long>(sites[i].max_age), sites[i].min_tid,
                     sites[i].max_tid, cpus);
    if (n > 0 && write(fd, line, static_cast<size_t>(n) < sizeof line ? n : sizeof line - 1) < 0)
      break;
  }
  if (dropped != 0) {
    char line[96];
    int n =
        snprintf(line, sizeof line, "%7ld objects from further call sites not shown\n", dropped);
    if (n > 0 && write(fd, line, n) < 0) return nsites;
  }
  return nsites;
}

int cache_destroy(KmemCache* s) {
  get_cpu_area(CpuId::current());
  g_slab_mutex.lock();
  if (--s->refcount > 0) {
    g_slab_mutex.unlock();
    return 0;
  }
  if (s->q != nullptr) {
    slab::shrink(s);
    if (const size_t busy = slab::busy_slabs(s)) {
      os::report("slub: kmem_cache_destroy(%s): %zu slabs still hold objects; cache kept\n",
                 s->name, busy);
      s->refcount++;
      g_slab_mutex.unlock();
      errno = EBUSY;
      return -1;
    }
    slab::close(s);
  }
  flush_all(s);
  shrink_nodes(s);
  size_t slabs = 0, objects = 0;
  for (int i = 0; i < s->nr_nodes; ++i) {
    slabs += s->node[i]->nr_slabs.load();
    objects += s->node[i]->total_objects.load();
  }
  if (slabs != 0) {
    size_t free_objs = 0;
    for (int i = 0; i < s->nr_nodes; ++i) {
      KmemCacheNode* n = s->node[i];
      LockGuard lg(n->list_lock);
      for (ListHead* h = n->partial.next; h != &n->partial; h = h->next) {
        PageDesc* slab = list_entry<PageDesc, &PageDesc::list>(h);
        free_objs += slab->ctrs().objects() - slab->ctrs().inuse();
      }
    }
    report_leftovers(s, slabs, objects - free_objs);
    s->refcount++;
    g_slab_mutex.unlock();
    errno = EBUSY;
    return -1;
  }
  kmem_cache_release(s);
  free_aliases(s);
  g_slab_mutex.unlock();
  if (s->flags & SLAB_TYPESAFE_BY_RCU) rcu::barrier();  // its slabs' pages come back first
  if (!s->is_kmalloc) meta::free(s, sizeof(KmemCache));
  return 0;
}

void cache_get_info(const KmemCache* s, kmem_cache_info* info) {
  *info = {};
  info->name = s->name;
  info->object_size = s->object_size;
  info->slot_size = s->size;
  info->order = s->order;
  info->objs_per_slab = s->objects;
  info->min_partial = s->min_partial;
  info->aliases = s->refcount - 1;
  unique_id(s, info->unique_id, sizeof info->unique_id);
  info->cpu_partial = s->cpu_partial;
  if (s->q != nullptr) {
    slab::get_info(s, info);
    return;
  }
  size_t free_objs = 0;
  for (int i = 0; i < s->nr_nodes; ++i) {
    KmemCacheNode* n = s->node[i];
    info->nr_slabs += n->nr_slabs.load(std::memory_order_relaxed);
    info->total_objs += n->total_objects.load(std::memory_order_relaxed);
    LockGuard g(n->list_lock);
    info->nr_partial += n->nr_partial;
    for (ListHead* h = n->partial.next; h != &n->partial; h = h->next) {
      PageDesc* slab = list_entry<PageDesc, &PageDesc::list>(h);
      free_objs += slab->ctrs().objects() - slab->ctrs().inuse();
    }
  }
  info->active_objs = info->total_objs - free_objs;
  for_each_cpu_slot(s, [&](KmemCacheCpu* c) {
    LockGuard g(c->lock);
    if (c->slab != nullptr) info->nr_cpu_slabs++;
    for (PageDesc* p = c->partial; p != nullptr; p = p->cpu_partial.next) info->nr_cpu_slabs++;
  });
}

void cache_node_info(const KmemCache* s, int node, kmem_cache_node_info* info) {
  if (s->q != nullptr) {
    slab::node_info(s, node, info);
    return;
  }
  *info = {};
  KmemCacheNode* n = s->node[node];
  info->nr_slabs = n->nr_slabs.load(std::memory_order_relaxed);
  info->total_objs = n->total_objects.load(std::memory_order_relaxed);
  LockGuard g(n->list_lock);
  info->nr_partial = n->nr_partial;
  for (ListHead* h = n->partial.next; h != &n->partial; h = h->next) {
    PageDesc* slab = list_entry<PageDesc, &PageDesc::list>(h);
    info->partial_free += slab->ctrs().objects() - slab->ctrs().inuse();
  }
}

void cache_queue_info(KmemCache* s, kmem_cache_queue_info* info) {
  if (s->q != nullptr) {
    slab::queue_info(s, info);
    return;
  }
  *info = {};
  info->node_bytes = sizeof(KmemCacheNode) * s->nr_nodes;
  info->reaper_ns = 0;
  for_each_cpu_slot(s, [&](KmemCacheCpu* c, int cpu) {
    info->cpu_bytes += sizeof(KmemCacheCpu);
    // Free objects held by the CPU: its freelist (taken and put back under the slot's lock,
    // as a slow path does), remote frees waiting in its slab, and its partial slabs. The
    // slot gets back its very freelist and tid: a fast path that read them before still
    // swaps correctly, and the flusher does not take this read for CPU activity.
    c->lock.lock();
    void* fl = freeze_cpu_freelist(c, cpu);
    const uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_RELAXED) & ~kTidBusy;
    for (void* p = fl; p != nullptr; p = get_freepointer(s, p)) info->parked_cpu++;
    if (c->slab != nullptr) info->parked_cpu += c->slab->ctrs().objects() - c->slab->ctrs().inuse();
    for (PageDesc* p = c->partial; p != nullptr; p = p->cpu_partial.next)
      info->parked_cpu += p->ctrs().objects() - p->ctrs().inuse();
    if (c->sheaf != nullptr) {
      info->parked_cpu += c->sheaf->count;
      info->cpu_bytes += sheaf_bytes(c->sheaf->cap);
    }
    SLUB_TSAN_RELEASE(&c->freelist_tid);  // as publish_cpu_freelist
    __atomic_store_n(&c->freelist_tid.lo, reinterpret_cast<uint64_t>(fl), __ATOMIC_RELAXED);
    __atomic_store_n(&c->freelist_tid.hi, tid, __ATOMIC_RELEASE);  // as it was, not busy
    c->lock.unlock();
  });
  for (int i = 0; i < s->nr_nodes; ++i) {
    KmemCacheNode* n = s->node[i];
    LockGuard g(n->list_lock);
    for (ListHead* h = n->partial.next; h != &n->partial; h = h->next) {
      PageDesc* slab = list_entry<PageDesc, &PageDesc::list>(h);
      if (slab->ctrs().inuse() == 0) info->free_slab_objects += slab->ctrs().objects();
    }
  }
}

int flush_idle_pass() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return 0;
  get_cpu_area(CpuId::current());
  int flushed = 0;
  LockGuard g(g_slab_mutex);
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    for_each_cpu_slot(s, [&](KmemCacheCpu* c, int cpu) {
      const uint32_t tid = slot_activity(c);
      const Sheaf* sh = __atomic_load_n(&c->sheaf, __ATOMIC_RELAXED);
      const bool holds = __atomic_load_n(&c->slab, __ATOMIC_RELAXED) != nullptr ||
                         __atomic_load_n(&c->partial, __ATOMIC_RELAXED) != nullptr ||
                         (sh != nullptr && __atomic_load_n(&sh->count, __ATOMIC_RELAXED) != 0);
      if (!holds || tid != __atomic_load_n(&c->flush_seen, __ATOMIC_RELAXED)) {
        // Used since the last pass (or nothing to flush).
        __atomic_store_n(&c->flush_seen, tid, __ATOMIC_RELAXED);
        return;
      }
      c->lock.lock();
      if (slot_activity(c) != tid) {
        c->lock.unlock();
        return;
      }
      flushed += flush_cpu_slab_locked(s, c, cpu);
    });
  }
  return flushed;
}

void maybe_start_flusher() {
  if (SLUB_LIKELY(g_flusher_started.load(std::memory_order_relaxed))) return;
  // Wanted at once when statistics are exported (it keeps the area), else once there are
  // per-CPU slabs on two CPUs that can go idle, or free pages to purge.
  if (!g_flusher_allowed || t_slow_depth != 0) return;
  if (!g_export && nr_used_cpus() < 2 && PageAlloc::dirty_pages() < kFlusherDirtyPages) return;
  if (g_flusher_started.exchange(true)) return;
  // The thread must not take the program's signals.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t t;
  if (pthread_create(&t, &attr, flusher_main, nullptr) != 0) g_flusher_started.store(false);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// ---------------------------------------------------------------------------------------------
// fork(): every lock in the documented order, so the child finds none held.

void fork_prepare() {
  ensure_init();
  rcu::before_fork();  // liburcu's call_rcu threads pause first: their callbacks free slabs
  cpu_area_lock();
  g_slab_mutex.lock();
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    for_each_cpu_slot(s, [](KmemCacheCpu* c) { c->lock.lock(); });
  }
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    for (int i = 0; i < s->nr_nodes; ++i) s->node[i]->list_lock.lock();
  }
  slab::lock_all();
  PageAlloc::lock();
  meta::lock();
}

namespace {
void fork_release(bool child) {
  meta::unlock();
  PageAlloc::unlock();
  slab::unlock_all(child);
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    for (int i = 0; i < s->nr_nodes; ++i) s->node[i]->list_lock.unlock();
    for_each_cpu_slot(s, [](KmemCacheCpu* c) { c->lock.unlock(); });
  }
  g_slab_mutex.unlock();
  cpu_area_unlock();
}
}  // namespace

void fork_parent() {
  fork_release(false);
  rcu::after_fork_parent();
}

void fork_child() {
  CpuId::after_fork_child();  // alone in the child: no rseq section can be in flight
  fork_release(true);
  rcu::after_fork_child();
  export_forget();  // the parent's area; the child makes its own when its flusher starts
  g_flusher_started.store(false);  // the flusher thread did not survive fork
  g_init_ns = os::now_ns();  // the child's first second starts now: a short child makes no area
}

}  // namespace slub
