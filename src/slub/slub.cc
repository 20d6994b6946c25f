// SPDX-License-Identifier: MIT
// slub.cc: the SLUB allocator's slow paths, the sheaves and barns, list management and
// flushing. The cache layer above (cache/cache.cc) creates, shrinks, validates and destroys
// caches through the slub_* functions at the end, and the one service thread (cache/service.cc)
// runs flush_idle_pass; nothing here knows the SLAB clone or starts a thread.
//
// Two per-CPU layers in front of the slabs (core/kmem_cache.h has the structures):
//   sheaves (the default, today's kernel): per CPU and cache a main sheaf (Pcs, in the CPU
//     area: the rseq sections of slub_cache.h pop and push it) and a spare (a Sheaf), per node
//     a barn of full and empty sheaves. Behind them, as in Linux 6.18 with sheaves on, the
//     CPU's active slab, its per-CPU partial slabs and the node's partial list, which refills
//     take objects from and flushes give them back to.
//   classic (SLUB_SHEAVES=0, a cache created with sheaf capacity 0, debug and SLAB caches):
//     the 2007 design, the CPU freelist of the active slab changed by tid + cmpxchg16b.
//
// The object's path with sheaves:
//   alloc: main sheaf (rseq section, or pcs_locked_pop without rseq) -> __pcs_alloc ->
//     pcs_alloc_slow: the spare if it holds objects (swap), a full sheaf from the node's barn
//     (the empty spare goes to the barn), else refill_from_slabs: the CPU slab's freelist and
//     never-used objects (`fresh`), then ___slab_alloc's sources one slab at a time.
//   free: main sheaf (rseq section: the page's entry names the cache and node, the object-start
//     and tag tests passed) -> __pcs_free -> pcs_free_slow: an object of another node, or a
//     small object of a slab another CPU's sheaf took (the page entry's owner), goes to its
//     slab (do_slab_free); else the spare if empty (swap), else the full spare to the barn
//     and an empty sheaf from it (or a new one), else, barn full, the spare's objects flushed
//     to their slabs (flush_objects: grouped by slab, one cmpxchg16b per slab).
//
// "The flusher" below is the service thread's SLUB pass (flush_idle_pass, every SLUB_FLUSH_MS).
//
// Lock order (outermost first; base/lock_rank.h orders every lock, SLUB_LOCKDEP checks it):
//   CPU-area lock           taken with no other lock held, except by fork_prepare, which holds
//                           it outside all the others so that no CPU slot appears between
//                           prepare and release (both walk the CPUs in use)
//   g_slab_mutex            the cache list; cache creation, destruction, shrink; the flusher
//   KmemCacheCpu::lock      a CPU slot: its sheaves (the main sheaf closed to the rseq sections
//                           while held: pcs_stop), active slab, per-CPU partial chain, and in
//                           the classic mode the right to set kTidBusy and store to
//                           {freelist, tid} directly
//   Barn::lock              a node's barn of one cache (taken under a CPU slot's lock by
//                           refills and frees; by the flusher alone)
//   KmemCacheNode::list_lock  a node's partial list, nr_partial and each slab's
//                           on_node_partial
//   PageAlloc lock, meta lock  (leaves)
// fork takes them in this order (fork_prepare), every slot and barn of every cache.
//
// The main sheaf's word (Pcs) is open to the rseq sections or closed. Only a holder of the
// slot's lock closes it, by compare-and-swap, then fences the slot's CPU unless it runs there,
// then reads it again: a section's commit (a read-modify-write of the word, not locked) that
// straddled the compare-and-swap writes the open word back, and the holder closes it again
// (pcs_stop). With rseq off the word stays closed and the locked paths work on it.
//
// What protects the slab's {freelist, counters}: nothing but cmpxchg16b. Every change of a
// slab's free objects, inuse count or frozen bit is one compare-and-swap of that double word,
// whoever makes it (the owning CPU refilling, a remote free, a flush, deactivation).
//
// Slab states (kernel 6.8 naming), and who may move a slab out of each:
//   cpu slab      frozen; c->slab of one CPU; objects come from here only (with sheaves: into
//                 the CPU's sheaves, by refills). Its owner (c->lock held, tid busy) takes
//                 remote frees with get_freelist or deactivates it.
//   cpu partial   unfrozen, on one CPU's c->partial chain, not on a node list. Reached by the
//                 freeing CPU adopting a full slab (put_cpu_partial) or by get_partial taking
//                 extra slabs. Left when the CPU takes it as its cpu slab or drains the chain.
//   node partial  unfrozen, on_node_partial, on its node's list (list_lock).
//   full          unfrozen, no free objects, on no list. The first free into it (prior ==
//                 NULL in do_slab_free) makes the freeing CPU adopt it as cpu partial (or, for
//                 a flush to the node, puts it on the node's list).
//   empty         inuse == 0; freed to the page allocator when its node already keeps
//                 min_partial partial slabs, else kept on the node partial list.
// Objects in sheaves and barns count as in use in their slabs (the kernel's accounting).
// Debug caches (any of F Z P U T) have no cpu slabs, cpu partials or sheaves: each alloc and
// free takes the node's list_lock (alloc_single_from_partial, free_to_partial_list), so that
// the checks of the debug mode see a stable slab.
//
// Lockless paths: the rseq sections on the main sheaf (slub_cache.h); in the classic mode
// slab_alloc_cas and slab_free_cas on the CPU slot's {freelist, tid}; the cmpxchg16b in
// do_slab_free when no list changes.
#include "slub/slub_cache.h"

#include <cstring>
#include <type_traits>

#include "core/debug.h"
#include "core/kfence.h"
#include "core/kmalloc.h"
#include "core/meta.h"
#include "core/reentry.h"
#include "core/service.h"
#include "mm/page_alloc.h"
#include "pal/os.h"
#include "pal/rcu.h"

namespace slub {

namespace {

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
void stat_here(const KmemCache* s, slub_stat_item item, uint64_t n = 1) {
  if (KmemCacheCpu* c = raw_cpu_ptr(s, CpuId::current())) stat(c, item, n);
}

constexpr unsigned kMaxFlush = 64;  // objects grouped by slab at a time (flush_objects)

// ---------------------------------------------------------------------------------------------
// The CPU slot's {freelist, tid}: taking it for a slow path and publishing it again.

// With c->lock held: marks the slot busy and takes its freelist. Compare-and-swap fast paths
// that read the old tid fail their swap; those that read the busy tid go slow and wait for the
// lock. (No rseq section uses this double word: the sheaves' sections use the Pcs slot only.)
void* freeze_cpu_freelist(KmemCacheCpu* c) {
  __atomic_fetch_or(&c->freelist_tid.hi, kTidBusy, __ATOMIC_SEQ_CST);
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
  // SLUB_KFENCE_SAMPLE keeps the slot busy, so that every allocation takes the slow path.
  const uint64_t busy = kfence::keep_slots_closed() ? kTidBusy : 0;
  __atomic_store_n(&c->freelist_tid.hi, ((tid & ~kTidBusy) + kTidStep) | busy, __ATOMIC_RELEASE);
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

// The page entries of a slab (mm/page_class.h): only sheaf caches' slabs of the preferred
// order have one (the free fast path's object-start test assumes that order), and only if the
// cache's tag is in the object's first word (the free fast path's tag test assumes that).
void set_page_entries(const KmemCache* s, PageDesc* slab) {
  if (s->sheaf_cap != 0 && slab->order == s->order && s->tag_off == 0 &&
      cache_index(s) < PageClass::kEntryCaches)
    PageClass::set(desc_address(slab), slab->order, PageClass::make(cache_index(s), slab->node));
}

// A new slab on `node`. With for_cpu, its objects go to the caller, the slab frozen with
// inuse == objects: as a freelist (*freelist), or with `fresh` (sheaves, objects in order) as
// the range [*fresh, *fresh_end) of objects never used, without a freelist written through
// them. Otherwise the freelist stays on the slab (debug caches, kmem_cache_alloc_node with
// sheaves).
PageDesc* new_slab(KmemCache* s, int node, bool for_cpu, void** freelist, char** fresh = nullptr,
                   char** fresh_end = nullptr) {
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
  if (fresh != nullptr && s->random_seq == nullptr) {
    first = nullptr;
    *fresh = s->object_at(base, 0);
    *fresh_end = s->object_at(base, objects);
  } else if (SLUB_UNLIKELY(s->random_seq != nullptr)) {
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
  set_page_entries(s, slab);
  return slab;
}

// After a grace period: the pages of a SLAB_TYPESAFE_BY_RCU slab go back to the page allocator.
void rcu_free_slab(RcuHead* head) {
  SLUB_TSAN_ACQUIRE(head);  // from discard_slab, through liburcu (not instrumented)
  PageAlloc::free(
      reinterpret_cast<PageDesc*>(reinterpret_cast<char*>(head) - offsetof(PageDesc, list)));
}

void discard_slab(KmemCache* s, PageDesc* slab) {
  if (s->sheaf_cap != 0) PageClass::set(desc_address(slab), slab->order, 0);  // frees go slow
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
    if (SLUB_UNLIKELY(!freeptr_valid(s, slab, next))) {
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

// Sheaves: the active slab's never-used objects go back as part of its freelist `fl` (their
// free pointers are written now, at deactivation).
void* take_fresh(const KmemCache* s, KmemCacheCpu* c, void* fl) {
  for (char* p = c->fresh_end; p > c->fresh;) {
    p -= s->size;
    set_freepointer(s, p, fl);
    fl = p;
  }
  c->fresh = c->fresh_end = nullptr;
  return fl;
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
// With `fresh` (sheaves), a new slab's objects come as the range c->fresh (nullptr returned).
void* ___slab_alloc(KmemCache* s, KmemCacheCpu* c, int node, bool exact, bool fresh = false) {
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
    slab = fresh ? new_slab(s, node, true, &fl, &c->fresh, &c->fresh_end)
                 : new_slab(s, node, true, &fl);
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

void flush_objects(KmemCache* s, void** objs, unsigned n, bool to_node);
void do_slab_free(KmemCache* s, PageDesc* slab, void* object, bool to_node);
void pcs_stop(const KmemCache* s, Pcs* pcs, int cpu);
// The spare sheaf is changed under c->lock and read without it by the flusher (cpu_holds).
inline void set_spare(KmemCacheCpu* c, Sheaf* sh) {
  __atomic_store_n(&c->spare, sh, __ATOMIC_RELAXED);
}
void pcs_start(const KmemCache* s, KmemCacheCpu* c, Pcs* pcs, int cpu);
void free_sheaf(KmemCache* s, Sheaf* sh);

// Takes c's active slab, partial chain and sheaves off the CPU and returns them to the node
// lists. c->lock held on entry; released here. Returns 1 if there was anything to flush.
int flush_cpu_slab_locked(KmemCache* s, KmemCacheCpu* c, int cpu) {
  void* fl = freeze_cpu_freelist(c);
  PageDesc* slab = c->slab;
  PageDesc* partial = c->partial;
  void* sheaved[2 * kSheafMaxCap];
  unsigned in_sheaves = 0;
  Sheaf* spare = nullptr;
  if (s->sheaf_cap != 0) {
    Pcs* pcs = pcs_ptr(s, cpu);
    pcs_stop(s, pcs, cpu);
    in_sheaves = pcs->count(s->sheaf_cap);
    memcpy(sheaved, pcs->objs(s->sheaf_cap), in_sheaves * sizeof(void*));
    pcs->set_count(0);
    if ((spare = c->spare) != nullptr) {
      memcpy(sheaved + in_sheaves, spare->objs, spare->count * sizeof(void*));
      in_sheaves += spare->count;
      set_spare(c, nullptr);
    }
    fl = take_fresh(s, c, fl);
    __atomic_store_n(&c->events, c->events + 1, __ATOMIC_RELAXED);  // the flusher reads it
    pcs_start(s, c, pcs, cpu);
  }
  if (slab != nullptr) stat(c, CPUSLAB_FLUSH);
  __atomic_store_n(&c->slab, static_cast<PageDesc*>(nullptr), __ATOMIC_RELAXED);
  __atomic_store_n(&c->partial, static_cast<PageDesc*>(nullptr), __ATOMIC_RELAXED);
  publish_cpu_freelist(c, nullptr);
  __atomic_store_n(&c->flush_seen, slot_activity(c), __ATOMIC_RELAXED);
  c->lock.unlock();
  if (spare != nullptr) free_sheaf(s, spare);
  if (slab != nullptr) deactivate_slab(s, slab, fl);  // CPUSLAB_FLUSH
  if (partial != nullptr) put_partials(s, partial);
  // To the node lists, not to this CPU's partial chain: a shrink that flushed this CPU
  // already must find them there.
  flush_objects(s, sheaved, in_sheaves, true);
  return slab != nullptr || partial != nullptr || in_sheaves != 0;
}

// Flushes the barns of `s`: their full sheaves' objects to the slabs, their sheaves freed.
// With `idle_only`, only barns not used since the last call (the flusher). g_slab_mutex held.
void flush_barns(KmemCache* s, bool idle_only) {
  if (s->sheaf_cap == 0) return;
  for (int i = 0; i < s->nr_nodes; ++i) {
    Barn* barn = &s->node[i]->barn;
    Sheaf* full;
    Sheaf* empty;
    {
      LockGuard g(barn->lock);
      if (idle_only && barn->uses != barn->uses_seen) {
        barn->uses_seen = barn->uses;
        continue;
      }
      full = barn->full;
      empty = barn->empty;
      barn->full = barn->empty = nullptr;
      __atomic_store_n(&barn->nr_full, 0u, __ATOMIC_RELAXED);
      __atomic_store_n(&barn->nr_empty, 0u, __ATOMIC_RELAXED);
    }
    while (full != nullptr) {
      Sheaf* next = full->next;
      flush_objects(s, full->objs, full->count, true);
      free_sheaf(s, full);
      full = next;
    }
    while (empty != nullptr) {
      Sheaf* next = empty->next;
      free_sheaf(s, empty);
      empty = next;
    }
  }
}

}  // namespace

namespace {
// kmem_cache_alloc_node with sheaves (which hold objects of any node): one object of `node`
// from its partial list, or from a new slab of that node, which then joins the list. No lock
// held on entry.
void* alloc_from_node(KmemCache* s, int node) {
  KmemCacheNode* n = s->get_node(node);
  {
    LockGuard g(n->list_lock);
    while (!n->partial.empty()) {
      PageDesc* slab = list_entry<PageDesc, &PageDesc::list>(n->partial.next);
      for (;;) {
        void* object = slab->slab_freelist();
        const SlabCounters old = slab->ctrs();
        if (object == nullptr) break;  // taken full meanwhile (remote frees refill it later)
        void* next = get_freepointer(s, object);
        if (SLUB_UNLIKELY(!freeptr_valid(s, slab, next))) {
          report_bad_freeptr(s, object, next);
          next = nullptr;
        }
        const SlabCounters nw = SlabCounters::make(old.inuse() + 1, old.objects(), false);
        if (cmpxchg_slab(slab, object, old, next, nw)) {
          if (next == nullptr) remove_partial(n, slab);
          stat_here(s, ALLOC_FROM_PARTIAL);
          return object;
        }
      }
      remove_partial(n, slab);
    }
  }
  void* object = nullptr;
  PageDesc* slab = new_slab(s, node, false, &object);
  if (slab == nullptr) return nullptr;
  stat_here(s, ALLOC_SLAB);
  // The new slab is ours alone until it is listed: its first object is taken first.
  object = slab->freelist;
  slab->freelist = get_freepointer(s, object);
  slab->counters = SlabCounters::make(1, slab->ctrs().objects(), false).raw;
  if (slab->freelist != nullptr) {
    KmemCacheNode* m = s->get_node(slab->node);
    LockGuard g(m->list_lock);
    add_partial(m, slab, false);
  }
  return object;
}
}  // namespace

void* __slab_alloc_node(KmemCache* s, size_t orig_size, int want_node) {
  await_init();
  if (s->pcs_base != 0) {  // sheaves (cache_alloc_slow gets here for them before start-up)
    if (want_node < 0) return __pcs_alloc(s, orig_size);
    void* object = nullptr;
    {
      ReentryGuard guard;
      if (guard.nested()) return emergency_alloc(s->object_size);
      const int cpu = CpuId::current();
      get_cpu_area(cpu);  // for the counters
      if (want_node != Topology::node_of(cpu)) stat_here(s, ALLOC_NODE_MISMATCH);
      object = alloc_from_node(s, want_node);
    }
    if (object != nullptr)
      store_tag(pcs_tag_word(s, object), 0);
    else
      errno = ENOMEM;
    service_request();
    return object;
  }
  if (want_node < 0) {
    if (void* p = kfence::maybe_alloc(s, orig_size); SLUB_UNLIKELY(p != nullptr)) return p;
  }
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
    if (stat(per_cpu_ptr(s, cpu), ALLOC_SLOWPATH); SLUB_UNLIKELY(s->is_debug())) {
      uint32_t handle = 0;
      const void* caller = nullptr;  // found by unwinding: only U and T need it
      if (s->track_off != 0 || (s->flags & SLAB_TRACE))
        caller = debug_caller(s->track_off != 0 ? &handle : nullptr);
      object = alloc_single(s, node, orig_size, caller, handle);
    } else {
      KmemCacheCpu* c = per_cpu_ptr(s, cpu);
      c->lock.lock();
      void* fl = freeze_cpu_freelist(c);  // frees may have refilled it since the fast path
      if (exact && c->slab != nullptr && c->slab->node != node) {
        stat(c, ALLOC_NODE_MISMATCH);  // the kernel deactivates the CPU slab, and so do we
        PageDesc* old = c->slab;
        __atomic_store_n(&c->slab, static_cast<PageDesc*>(nullptr), __ATOMIC_RELAXED);
        deactivate_slab(s, old, fl);
        fl = nullptr;
      }
      if (fl == nullptr) fl = ___slab_alloc(s, c, node, exact);
      void* next = nullptr;
      if (fl != nullptr) {
        object = fl;
        next = get_freepointer(s, object);
        if (SLUB_UNLIKELY(!freeptr_valid(s, c->slab, next))) {
          report_bad_freeptr(s, object, next);
          next = nullptr;  // the rest of the list is lost, not followed
        }
      }
      publish_cpu_freelist(c, next);
      c->lock.unlock();
    }
  }
  if (object == nullptr) errno = ENOMEM;
  service_request();
  return object;
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
  get_cpu_area(CpuId::current());  // for the counters; no lock is held yet
  stat_here(s, FREE_SLOWPATH);
  if (SLUB_UNLIKELY(s->is_debug())) {
    uint32_t handle = 0;
    const void* caller = nullptr;
    if (s->track_off != 0 || (s->flags & SLAB_TRACE))
      caller = debug_caller(s->track_off != 0 ? &handle : nullptr);
    free_to_partial_list(s, slab, object, caller, handle);
    return;
  }
  // (A cache with sheaves gets here for a free deferred from a signal handler: to the slab.)
  do_slab_free(s, slab, object, false);
}

namespace {

// Frees the chain head..tail of `cnt` objects of `slab`, linked through their free pointers,
// to the slab (the kernel's __slab_free proper, for a detached freelist as its bulk free does):
// one cmpxchg16b, plus list work when the slab becomes partial or empty. A full slab that gets
// free objects joins the calling CPU's partial chain, or with `to_node` (or no CPU partials)
// its node's partial list.
void do_slab_free(KmemCache* s, PageDesc* slab, void* head, void* tail, unsigned cnt,
                  bool to_node) {
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
    if (SLUB_UNLIKELY(prior == head)) {
      report_double_free(s, head);
      return;
    }
    set_freepointer(s, tail, prior);
    nw = SlabCounters::make(old.inuse() - cnt, old.objects(), old.frozen());
    was_frozen = old.frozen();
    if ((nw.inuse() == 0 || prior == nullptr) && !was_frozen) {
      // Needs list work: empty (maybe freed) or full -> partial without cpu partials.
      if (!cpu_partial || prior != nullptr) {
        n = s->get_node(slab->node);
        n->list_lock.lock();
        on_node_partial = slab->on_node_partial;
      }
    }
    if (cmpxchg_slab(slab, prior, old, head, nw)) break;
    stat_here(s, CMPXCHG_DOUBLE_FAIL);
  }
  if (n == nullptr) {
    if (was_frozen) {
      stat_here(s, FREE_FROZEN);  // the owner picks them up in get_freelist
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

void do_slab_free(KmemCache* s, PageDesc* slab, void* object, bool to_node) {
  do_slab_free(s, slab, object, object, 1, to_node);
}

// The slab of an object a sheaf held (ours for sure: it came from one of our slabs), found by
// arithmetic: chunks are aligned on their size and hold their pages' descriptors first, and a
// slab of the cache's preferred order is aligned on its size, so its head is the object's
// page rounded down to that order. One descriptor load instead of the page map's three; an
// object of a fallback-order slab (the descriptor there is not such a head) takes the page's
// own descriptor and, for a tail page, its head.
PageDesc* sheaf_object_slab(const KmemCache* s, const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t chunk = a & ~(kChunkSize - 1);
  const size_t page = (a - chunk) >> kPageShift;
  PageDesc* d = chunk_descs(chunk) + (page & ~((size_t{1} << s->order) - 1));
  if (SLUB_LIKELY(d->kind == PageKind::kSlab && d->order == s->order && d->cache == s)) return d;
  d = chunk_descs(chunk) + page;
  return d->kind == PageKind::kTail ? chunk_descs(chunk) + d->head : d;
}

// Frees `n` objects of `s` (a flushed sheaf: of random slabs) to their slabs, one freelist
// update per slab, as the kernel's bulk free does (build_detached_freelist): the first object
// left heads a chain of the objects after it of the same slab, looked for until 3 of the
// others in a row are not (objects freed in allocation order group in full, random ones are
// not sorted for nothing), linked through their free pointers and given to the slab by one
// cmpxchg16b. The descriptors are found first, all at once, and they and the objects'
// free-pointer words fetched for writing, so that their misses overlap (rfree: 7 % less time).
// No lock held.
void flush_objects(KmemCache* s, void** objs, unsigned n, bool to_node) {
  if (n == 0) return;
  stat_here(s, SHEAF_FLUSH, n);
  constexpr unsigned kLookahead = 3;
  PageDesc* descs[kMaxFlush];
  for (unsigned done = 0; done < n;) {
    const unsigned k = n - done < kMaxFlush ? n - done : kMaxFlush;
    void** o = objs + done;
    for (unsigned i = 0; i < k; ++i) {
      descs[i] = sheaf_object_slab(s, o[i]);
      __builtin_prefetch(descs[i], 1);
      __builtin_prefetch(static_cast<char*>(o[i]) + s->offset, 1);  // its free pointer
    }
    for (unsigned i = 0; i < k; ++i) {
      PageDesc* d = descs[i];
      if (d == nullptr) continue;  // taken into an earlier chain
      void* tail = o[i];
      unsigned cnt = 1;
      for (unsigned j = i + 1, misses = 0; j < k && misses < kLookahead; ++j) {
        if (descs[j] != d) {
          misses += descs[j] != nullptr;
          continue;
        }
        set_freepointer(s, tail, o[j]);
        tail = o[j];
        descs[j] = nullptr;
        ++cnt;
        misses = 0;
      }
      do_slab_free(s, d, o[i], tail, cnt, to_node);
    }
    done += k;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Sheaves: the slow paths of the rseq fast paths in slub_cache.h.
//
// A CPU's sheaves of a cache are guarded by its KmemCacheCpu's lock (the refill source, the
// CPU slab, is under it too). A lock holder first closes the main sheaf's word to the rseq
// sections (pcs_stop: compare-and-swap to closed, then, unless it runs on that CPU itself, a
// membarrier fence of that CPU, after which no section in flight there can commit, and a
// second look in case a commit reopened it), works on the count and objects, and opens the
// word again (pcs_start, unless rseq is off). With rseq off (valgrind, ThreadSanitizer,
// SLUB_RSEQ=0, virtual CPUs) the word stays closed and pcs_locked_pop/push work on it.

namespace {

// Closes the slot's word to the rseq sections: an open word is replaced by a closed one with
// the same count (compare-and-swap). True if it was open.
bool pcs_close(const KmemCache* s, Pcs* pcs) {
  uint64_t w = pcs->load();
  while (Pcs::is_open(w)) {
    if (__atomic_compare_exchange_n(&pcs->word, &w,
                                    Pcs::closed_word(Pcs::count_of(w, s->sheaf_cap)), false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE))
      return true;
  }
  return false;
}

// Closes the slot and makes sure no section can commit to it any more: unless running on the
// slot's CPU, fences it. A section in flight at the close may have committed before the fence:
// its add or subtract then either moved the closed word's low half by one (count() folds that
// in), or, when its read-modify-write straddled the compare-and-swap, wrote back the open word
// it had read, changed by one. That undoes the close, so the word is read again after the
// fence and closed again if it is open.
void pcs_stop(const KmemCache* s, Pcs* pcs, int cpu) {
  for (;;) {
    pcs_close(s, pcs);
    if (CpuId::rseq_may_be_in_flight() && CpuId::rseq_cpu() != cpu) CpuId::rseq_fence(cpu);
    if (!Pcs::is_open(pcs->load())) return;
  }
}

// KFENCE's arming of a sheaf slot (slub_kfence_arm, and pcs_start in SLUB_KFENCE_SAMPLE):
// Without the slot's lock (no one must wait for the service thread here), a compare-and-swap
// that keeps the count and only makes the fast paths miss:
//   rseq on: an open word becomes the closed word of the same count (as pcs_close; a section
//     in flight that commits after it only moves the closed word's low half, which count()
//     folds in, and one whose commit straddles the swap writes the open word back: that CPU
//     is not armed this time, which sampling can afford);
//   rseq off: the closed word's count n moves to (n - 1 in the high half, kClosedLow + 1 in
//     the low half), or for an empty slot to (1, kClosedLow - 1): the same count for count(),
//     which the locked fast paths refuse as a word to normalize (a lock holder's next
//     set_count writes it plainly again).
// A slot a slow path holds at the moment is closed anyway and stays as the holder leaves it.
bool pcs_arm(const KmemCache* s, Pcs* pcs) {
  uint64_t w = pcs->load();
  if (w == 0) return false;  // never used: the first allocation is a slow path anyway
  uint64_t armed;
  if (Pcs::is_open(w)) {
    armed = Pcs::closed_word(Pcs::count_of(w, s->sheaf_cap));
  } else if (!CpuId::rseq_fast() && static_cast<uint32_t>(w) == Pcs::kClosedLow) {
    const bool empty = (static_cast<uint32_t>(w >> 32) & ~Pcs::kClosed) == 0;
    armed = empty ? w + (uint64_t{1} << 32) - 1 : w - (uint64_t{1} << 32) + 1;
  } else {
    return false;  // closed to the fast paths already (held, empty, or armed)
  }
  return __atomic_compare_exchange_n(&pcs->word, &w, armed, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_RELAXED);
}

// Opens the slot again (c->lock held), unless rseq is off: its node may have changed (hwloc's
// answer came late).
void pcs_start(const KmemCache* s, KmemCacheCpu* c, Pcs* pcs, int cpu) {
  const unsigned n = pcs->count(s->sheaf_cap);
  c->expect = PageClass::make(cache_index(s), static_cast<unsigned>(Topology::node_of(cpu)));
  if (owner_tracked(s)) c->expect = PageClass::with_owner(c->expect, PageClass::owner_of_cpu(cpu));
  SLUB_TSAN_RELEASE(pcs);
  // KFENCE's SLUB_KFENCE_SAMPLE: every allocation takes the slow path, where it samples; the
  // word stays closed, and without rseq in the armed form the locked fast paths refuse.
  if (SLUB_UNLIKELY(kfence::keep_slots_closed())) {
    pcs->set_count(n);
    if (!CpuId::rseq_fast()) pcs_arm(s, pcs);
    return;
  }
  if (!CpuId::rseq_fast()) return pcs->set_count(n);
  __atomic_store_n(&pcs->word, Pcs::open_word(n, s->sheaf_cap, c->expect), __ATOMIC_RELEASE);
}

Sheaf* new_sheaf(KmemCache* s) {
  auto* sh = static_cast<Sheaf*>(meta::alloc(sheaf_bytes(s->sheaf_cap)));
  if (sh == nullptr) return nullptr;
  sh->cap = s->sheaf_cap;
  stat_here(s, SHEAF_ALLOC);
  return sh;
}

void free_sheaf(KmemCache* s, Sheaf* sh) {
  meta::free(sh, sheaf_bytes(sh->cap));
  stat_here(s, SHEAF_FREE);
}

void copy_objects(void** dst, void* const* src, unsigned n) {
  memcpy(dst, src, n * sizeof(void*));
}

// Refills the empty main sheaf from the slabs (c->lock held, slot stopped): the CPU slab's
// freelist and never-used objects, then the slabs ___slab_alloc finds (its remote frees, CPU
// partial slabs, the node's and other nodes' partial lists, a new slab, whose objects come as a
// range: no freelist walk). A freelist is walked once, each free pointer checked before it is
// followed (freeptr_valid) and the next object's free-pointer word fetched ahead.
// The CPU's slab becomes `cpu`'s in its page entries (an owner-tracked cache, a slab with
// entries): frees of its objects by other CPUs then go to the slab (page_class.h).
static_assert(kMaxNodes <= 1024, "a page entry's node field has 10 bits");
void claim_slab(const KmemCache* s, PageDesc* slab, int cpu) {
  if (slab == nullptr || !owner_tracked(s)) return;
  const void* start = desc_address(slab);
  const uint32_t e = PageClass::get(start);
  const unsigned owner = PageClass::owner_of_cpu(cpu);
  if (e != 0 && PageClass::owner(e) != owner)
    PageClass::set(start, slab->order, PageClass::with_owner(e, owner));
}

unsigned refill_from_slabs(KmemCache* s, KmemCacheCpu* c, void** out, unsigned want, int node,
                           int cpu) {
  unsigned n = 0;
  claim_slab(s, c->slab, cpu);
  while (n < want) {
    void* fl = reinterpret_cast<void*>(c->freelist_tid.lo);
    if (fl != nullptr) {
      PageDesc* slab = c->slab;
      while (fl != nullptr && n < want) {
        void* next = get_freepointer(s, fl);
        if (SLUB_UNLIKELY(!freeptr_valid(s, slab, next))) {
          report_bad_freeptr(s, fl, next);
          next = nullptr;  // the rest of the list is dropped, not followed
        }
        if (next != nullptr) __builtin_prefetch(static_cast<char*>(next) + s->offset);
        out[n++] = fl;
        fl = next;
      }
      c->freelist_tid.lo = reinterpret_cast<uint64_t>(fl);
      continue;
    }
    if (c->fresh < c->fresh_end) {
      while (c->fresh < c->fresh_end && n < want) {
        out[n++] = c->fresh;
        c->fresh += s->size;
      }
      continue;
    }
    fl = ___slab_alloc(s, c, node, false, true);
    if (fl == nullptr && c->fresh == c->fresh_end) break;  // no memory
    c->freelist_tid.lo = reinterpret_cast<uint64_t>(fl);
    claim_slab(s, c->slab, cpu);
  }
  if (n != 0) stat(c, SHEAF_REFILL, n);
  return n;
}

// The main sheaf is empty (c->lock held, slot stopped): the spare's objects if it has any,
// else a full sheaf from the barn (the spare, empty, goes to the barn in its place), else a
// refill from the slabs.
void pcs_fill_main(KmemCache* s, KmemCacheCpu* c, Pcs* pcs, int node, int cpu) {
  Sheaf* spare = c->spare;
  if (spare != nullptr && spare->count != 0) {
    copy_objects(pcs->objs(s->sheaf_cap), spare->objs, spare->count);
    pcs->set_count(spare->count);
    spare->count = 0;
    stat(c, SHEAF_SWAP);
    return;
  }
  Barn* barn = &s->get_node(node)->barn;
  Sheaf* full = nullptr;
  Sheaf* unwanted = nullptr;  // an empty spare the barn has no room for
  if (__atomic_load_n(&barn->nr_full, __ATOMIC_RELAXED) != 0) {
    LockGuard g(barn->lock);
    if ((full = barn->full) != nullptr) {
      barn->full = full->next;
      __atomic_store_n(&barn->nr_full, barn->nr_full - 1, __ATOMIC_RELAXED);
      barn->uses++;
      if (spare != nullptr) {
        set_spare(c, nullptr);
        if (barn->nr_empty < kBarnMaxEmpty) {
          spare->next = barn->empty;
          barn->empty = spare;
          __atomic_store_n(&barn->nr_empty, barn->nr_empty + 1, __ATOMIC_RELAXED);
        } else {
          unwanted = spare;
        }
      }
    }
  }
  if (full != nullptr) {
    copy_objects(pcs->objs(s->sheaf_cap), full->objs, full->count);
    pcs->set_count(full->count);
    full->count = 0;
    set_spare(c, full);  // now empty
    stat(c, BARN_GET);
    if (unwanted != nullptr) free_sheaf(s, unwanted);
    return;
  }
  stat(c, BARN_GET_FAIL);
  pcs->set_count(refill_from_slabs(s, c, pcs->objs(s->sheaf_cap), s->sheaf_cap, node, cpu));
}

// The main sheaf is full (c->lock held, slot stopped): its objects go to an empty spare; a
// spare that holds objects goes to the barn first and an empty sheaf from the barn (or a new
// one) takes its place; when the barn is full, the spare's objects are flushed to their slabs
// instead (into flush[], which the caller frees after the unlock; the count returned).
unsigned pcs_make_room(KmemCache* s, KmemCacheCpu* c, Pcs* pcs, int node, void** flush) {
  unsigned flushed = 0;
  const unsigned n = pcs->count(s->sheaf_cap);
  void** objs = pcs->objs(s->sheaf_cap);
  Sheaf* spare = c->spare;
  if (spare == nullptr || spare->count != 0) {
    Barn* barn = &s->get_node(node)->barn;
    Sheaf* empty = nullptr;
    bool put = false;
    {
      LockGuard g(barn->lock);
      if (spare != nullptr && barn->nr_full < kBarnMaxFull) {
        spare->next = barn->full;
        barn->full = spare;
        __atomic_store_n(&barn->nr_full, barn->nr_full + 1, __ATOMIC_RELAXED);
        barn->uses++;
        put = true;
      }
      if ((put || spare == nullptr) && (empty = barn->empty) != nullptr) {
        barn->empty = empty->next;
        __atomic_store_n(&barn->nr_empty, barn->nr_empty - 1, __ATOMIC_RELAXED);
      }
    }
    if (spare != nullptr && !put) {  // the barn is full: the spare's objects to their slabs
      stat(c, BARN_PUT_FAIL);
      copy_objects(flush, spare->objs, spare->count);
      flushed = spare->count;
      spare->count = 0;
      empty = spare;
    } else {
      if (put) stat(c, BARN_PUT);
      if (empty == nullptr) empty = new_sheaf(s);
    }
    set_spare(c, empty);
    if (empty == nullptr) {  // no memory for a sheaf: the main sheaf's objects to the slabs
      copy_objects(flush + flushed, objs, n);
      flushed += n;
      pcs->set_count(0);
      return flushed;
    }
    empty->count = 0;
  }
  copy_objects(c->spare->objs, objs, n);
  c->spare->count = n;
  pcs->set_count(0);
  stat(c, SHEAF_SWAP);
  return flushed;
}

}  // namespace

namespace {
// Frees a signal handler deferred while the thread held a slot (out of line).
SLUB_NOINLINE void drain_after_locked() {
  if (t_thread.deferred == nullptr || t_thread.draining) return;
  t_thread.draining = true;
  drain_deferred();
  t_thread.draining = false;
}

// Without rseq (valgrind, ThreadSanitizer, SLUB_RSEQ=0, old kernels, virtual CPUs) the sheaves
// are used under the slot's lock: the slot of the thread's CPU as last looked up (t_thread.area,
// kept for a few hundred calls, as the CPU id itself is without rseq), a trylock, a pop or push
// on the closed word (Pcs: the count in its high half, its low half kClosedLow), the unlock.
// Marked as a slow path in progress, so that a signal handler's allocation goes to the slow
// path's reentrant branch instead of waiting for this lock. nullptr or false when the caller
// must take the slow path: no area looked up, a recheck due, contended, empty or full, a
// word to normalize, or another node's object.
SLUB_FAST_PATH Pcs* locked_slot(const KmemCache* s, KmemCacheCpu** cp) {
  ThreadState& t = t_thread;
  char* area = t.area;
  if (SLUB_UNLIKELY(area == nullptr || --t.cached_left <= 0 || t.slow_depth != 0)) return nullptr;
  auto* c = reinterpret_cast<KmemCacheCpu*>(area + s->cpu_off);
  t.slow_depth = 1;
  if (SLUB_UNLIKELY(!c->lock.try_lock_now())) {
    t.slow_depth = 0;
    return nullptr;
  }
  *cp = c;
  return reinterpret_cast<Pcs*>(area + s->pcs_off);
}

SLUB_FAST_PATH void locked_slot_done(KmemCacheCpu* c) {
  c->lock.unlock();
  t_thread.slow_depth = 0;
  if (SLUB_UNLIKELY(t_thread.deferred != nullptr)) drain_after_locked();
}

SLUB_FAST_PATH void* pcs_locked_pop(const KmemCache* s) {
  KmemCacheCpu* c;
  Pcs* pcs = locked_slot(s, &c);
  if (SLUB_UNLIKELY(pcs == nullptr)) return nullptr;
  const uint64_t w = __atomic_load_n(&pcs->word, __ATOMIC_RELAXED);
  const unsigned n = static_cast<uint32_t>(w >> 32) & ~Pcs::kClosed;
  void* object = nullptr;
  if (SLUB_LIKELY(static_cast<uint32_t>(w) == Pcs::kClosedLow && n != 0)) {
    object = pcs->objs(s->sheaf_cap)[n - 1];
    __atomic_store_n(&pcs->word, w - (uint64_t{1} << 32), __ATOMIC_RELAXED);  // count - 1
  }
  locked_slot_done(c);
  return object;
}

SLUB_FAST_PATH bool pcs_locked_push(const KmemCache* s, void* p, uint32_t entry) {
  KmemCacheCpu* c;
  Pcs* pcs = locked_slot(s, &c);
  if (SLUB_UNLIKELY(pcs == nullptr)) return false;
  const uint64_t w = __atomic_load_n(&pcs->word, __ATOMIC_RELAXED);
  const unsigned n = static_cast<uint32_t>(w >> 32) & ~Pcs::kClosed;
  const bool ok =
      static_cast<uint32_t>(w) == Pcs::kClosedLow && n < s->sheaf_cap && c->expect == entry;
  if (SLUB_LIKELY(ok)) {
    pcs->objs(s->sheaf_cap)[n] = p;
    __atomic_store_n(&pcs->word, w + (uint64_t{1} << 32), __ATOMIC_RELAXED);  // count + 1
  }
  locked_slot_done(c);
  return ok;
}

constexpr int kLockedAreaCalls = 256;  // locked fast paths before the CPU is looked up again

// After a slow path on `cpu`'s slot: the locked fast paths use that CPU's area for a while.
void note_thread_area(int cpu) {
  if (CpuId::rseq_fast()) return;
  t_thread.area = g_cpu_area[cpu].load(std::memory_order_acquire);
  if (t_thread.cached_left <= 0) t_thread.cached_left = kLockedAreaCalls;
}

SLUB_SLOW_PATH void* pcs_alloc_slow(KmemCache* s, size_t orig_size);
SLUB_SLOW_PATH void pcs_free_slow(KmemCache* s, void* p, uint32_t entry);
}  // namespace

void* __pcs_alloc(KmemCache* s, size_t orig_size) {
  if (!CpuId::rseq_fast()) {
    if (void* object = pcs_locked_pop(s); SLUB_LIKELY(object != nullptr)) {
      store_tag(pcs_tag_word(s, object), 0);
      return object;
    }
  }
  return pcs_alloc_slow(s, orig_size);
}

void __pcs_free(void* p, uint32_t entry, KmemCache* s) {
  if (!CpuId::rseq_fast() && pcs_locked_push(s, p, entry)) return;
  pcs_free_slow(s, p, entry);
}

namespace {
void* pcs_alloc_slow(KmemCache* s, size_t orig_size) {
  await_init();
  // KFENCE: an armed slot (or SLUB_KFENCE_SAMPLE's closed one) sent this allocation here.
  if (void* p = kfence::maybe_alloc(s, orig_size); SLUB_UNLIKELY(p != nullptr)) return p;
  void* object = nullptr;
  {
    ReentryGuard guard;
    if (guard.nested()) return emergency_alloc(s->object_size);
    const int cpu = CpuId::current();
    if (get_cpu_area(cpu) == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    KmemCacheCpu* c = per_cpu_ptr(s, cpu);
    Pcs* pcs = pcs_ptr(s, cpu);
    c->lock.lock();
    pcs_stop(s, pcs, cpu);
    __atomic_store_n(&c->events, c->events + 1, __ATOMIC_RELAXED);  // the flusher reads it
    if (pcs->count(s->sheaf_cap) == 0) {
      stat(c, ALLOC_SLOWPATH);
      pcs_fill_main(s, c, pcs, Topology::node_of(cpu), cpu);
    }
    if (const unsigned n = pcs->count(s->sheaf_cap); n != 0) {
      object = pcs->objs(s->sheaf_cap)[n - 1];
      pcs->set_count(n - 1);
    }
    pcs_start(s, c, pcs, cpu);
    note_thread_area(cpu);
    c->lock.unlock();
  }
  if (object != nullptr) {
    store_tag(pcs_tag_word(s, object), 0);
  } else {
    errno = ENOMEM;
  }
  (void)orig_size;
  service_request();
  return object;
}

}  // namespace

void* __pcs_kmalloc(size_t size) {
  return __pcs_alloc(&g_kmalloc_caches[kmalloc_index(size)], size);
}

namespace {
void pcs_free_slow(KmemCache* s, void* p, uint32_t entry) {
  void* flush[2 * kSheafMaxCap + 1];
  unsigned flushed = 0;
  KmemCache* cache = s;
  {
    // Held through the flush below too: it frees slabs under the page allocator's and the
    // node's locks, and a signal handler's allocation there must not wait for them.
    ReentryGuard guard;
    if (guard.nested()) {
      defer_free(p);  // the deferred free goes to the slab (__slab_free)
      return;
    }
    const int cpu = CpuId::current();
    if (get_cpu_area(cpu) == nullptr) {  // no memory for this CPU's area: to the slab
      do_slab_free(s, PageMap::desc_of(p), p, true);
      return;
    }
    const int node = Topology::node_of(cpu);
    if (static_cast<int>(PageClass::node(entry)) != node) {
      // Another node's object goes to its slab, never into this node's sheaves or barn.
      stat_here(s, FREE_REMOTE);
      do_slab_free(s, PageMap::desc_of(p), p, true);
      return;
    }
    if (const unsigned owner = PageClass::owner(entry);
        owner != 0 && owner != PageClass::owner_of_cpu(cpu)) {
      // A small object of a slab another CPU's sheaf takes from: to its slab, so that no
      // thread here is handed a cache line the other CPU's threads write (page_class.h).
      stat_here(s, FREE_REMOTE);
      do_slab_free(s, PageMap::desc_of(p), p, true);
      return;
    }
    KmemCacheCpu* c = per_cpu_ptr(s, cpu);
    Pcs* pcs = pcs_ptr(s, cpu);
    c->lock.lock();
    pcs_stop(s, pcs, cpu);
    __atomic_store_n(&c->events, c->events + 1, __ATOMIC_RELAXED);  // the flusher reads it
    if (pcs->count(s->sheaf_cap) >= s->sheaf_cap) {
      stat(c, FREE_SLOWPATH);
      flushed = pcs_make_room(s, c, pcs, node, flush);
    }
    if (const unsigned n = pcs->count(s->sheaf_cap); n < s->sheaf_cap) {
      pcs->objs(s->sheaf_cap)[n] = p;
      pcs->set_count(n + 1);
    } else
      flush[flushed++] = p;  // no memory for a spare sheaf
    pcs_start(s, c, pcs, cpu);
    note_thread_area(cpu);
    c->lock.unlock();
    flush_objects(cache, flush, flushed, false);
  }
  service_request();
}
}  // namespace

void pcs_free_rejected(KmemCache* s, void* p) {
  if (!pcs_object_start(s, p)) {
    os::report("slub: %s: free of %p, which is not the start of an object; ignored\n", s->name, p);
    return;
  }
  // Its tag: the object was freed already (and not allocated since), or a use-after-free write
  // copied a freed object's first word into it.
  os::report("slub: %s: double free of %p (the tag of a free object is in it); ignored\n", s->name,
             p);
}

void pcs_free_desc(KmemCache* s, PageDesc* d, void* p) {
  uint64_t* tag = pcs_tag_word(s, p);
  if (SLUB_UNLIKELY(load_tag(tag) == s->tag)) return pcs_free_rejected(s, p);
  store_tag(tag, s->tag);
  // (A slab of the fallback order has no page entries; its objects go on sheaves all the same.)
  const uint32_t e = PageClass::make(cache_index(s), d->node);
  if (!pcs_push(s->pcs_base, p, e)) __pcs_free(p, e, s);
}

// ---------------------------------------------------------------------------------------------
// What the cache layer calls (cache/cache.cc: kmem_cache_shrink, _validate, _destroy, the
// reports and the statistics). g_slab_mutex held, inside a ReentryGuard.

int flush_all(KmemCache* s) {
  int flushed = 0;
  for_each_cpu_slot(s, [&](KmemCacheCpu* c, int cpu) {
    c->lock.lock();
    flushed += flush_cpu_slab_locked(s, c, cpu);
  });
  flush_barns(s, false);
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

int slub_shrink(KmemCache* s) {
  flush_all(s);
  return shrink_nodes(s);
}

int slub_validate(KmemCache* s) {
  flush_all(s);
  int errors = 0;
  for_each_listed_slab(s, [&](PageDesc* slab) { errors += validate_slab(s, slab); });
  return errors;
}

void slub_for_each_track(KmemCache* s, bool free_objects, void (*fn)(const Track*, void*),
                         void* arg) {
  flush_all(s);
  for_each_listed_slab(s, [&](PageDesc* slab) {
    uint64_t free_map[kMaxObjsPerSlab / 64 + 1] = {};
    fill_free_map(s, slab, free_map);
    for (unsigned i = 0; i < slab->ctrs().objects(); ++i) {
      const bool is_free = (free_map[i / 64] >> (i % 64)) & 1;
      if (is_free == free_objects)
        fn(get_track(s, s->object_at(desc_address(slab), i),
                     free_objects ? kTrackFree : kTrackAlloc),
           arg);
    }
  });
}

int slub_shutdown(KmemCache* s) {
  flush_all(s);
  shrink_nodes(s);
  size_t slabs = 0, objects = 0;
  for (int i = 0; i < s->nr_nodes; ++i) {
    slabs += s->node[i]->nr_slabs.load();
    objects += s->node[i]->total_objects.load();
  }
  if (slabs == 0) return 0;
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
  return -1;
}

void slub_get_info(const KmemCache* s, kmem_cache_info* info) {
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

void slub_node_info(const KmemCache* s, int node, kmem_cache_node_info* info) {
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

void slub_queue_info(KmemCache* s, kmem_cache_queue_info* info) {
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
    void* fl = freeze_cpu_freelist(c);
    const uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_RELAXED) & ~kTidBusy;
    for (void* p = fl; p != nullptr; p = get_freepointer(s, p)) info->parked_cpu++;
    if (c->slab != nullptr) info->parked_cpu += c->slab->ctrs().objects() - c->slab->ctrs().inuse();
    for (PageDesc* p = c->partial; p != nullptr; p = p->cpu_partial.next)
      info->parked_cpu += p->ctrs().objects() - p->ctrs().inuse();
    if (s->sheaf_cap != 0) {  // the sheaves (the main one read as the fast paths left it)
      info->cpu_bytes += align_up(Pcs::bytes(s->sheaf_cap), kCpuAreaUnit);
      info->parked_cpu += pcs_ptr(s, cpu)->count(s->sheaf_cap);
      if (c->spare != nullptr) {
        info->parked_cpu += c->spare->count;
        info->cpu_bytes += sheaf_bytes(c->spare->cap);
      }
      info->parked_cpu += static_cast<size_t>(c->fresh_end - c->fresh) / s->size;
    }
    SLUB_TSAN_RELEASE(&c->freelist_tid);  // as publish_cpu_freelist
    __atomic_store_n(&c->freelist_tid.lo, reinterpret_cast<uint64_t>(fl), __ATOMIC_RELAXED);
    __atomic_store_n(&c->freelist_tid.hi, tid, __ATOMIC_RELEASE);  // as it was, not busy
    c->lock.unlock();
  });
  for (int i = 0; i < s->nr_nodes; ++i) {
    KmemCacheNode* n = s->node[i];
    {
      LockGuard g(n->barn.lock);  // the barn's sheaves, their objects parked on the node
      for (const Sheaf* sh = n->barn.full; sh != nullptr; sh = sh->next) {
        info->parked_node += sh->count;
        info->node_bytes += sheaf_bytes(sh->cap);
      }
      for (const Sheaf* sh = n->barn.empty; sh != nullptr; sh = sh->next)
        info->node_bytes += sheaf_bytes(sh->cap);
    }
    LockGuard g(n->list_lock);
    for (ListHead* h = n->partial.next; h != &n->partial; h = h->next) {
      PageDesc* slab = list_entry<PageDesc, &PageDesc::list>(h);
      if (slab->ctrs().inuse() == 0) info->free_slab_objects += slab->ctrs().objects();
    }
  }
}

namespace {
// The newest object of a main sheaf, read without the slot's lock: a hint only (a stale value
// costs a needless flush or one pass's delay). The sheaf's slots are written with plain stores
// under the lock, so the read is hidden from ThreadSanitizer as get_freepointer_safe's is.
#ifdef SLUB_TSAN
__attribute__((noinline, no_sanitize("thread")))
#endif
uintptr_t
racy_newest(const Pcs* pcs, uint32_t cap, unsigned n) {
  return *reinterpret_cast<const volatile uintptr_t*>(&pcs->objs(cap)[n - 1]);
}

// What the flusher compares between passes: the slot's activity, and for sheaves the main
// sheaf's count and newest object (its fast paths count nothing; a CPU that allocates and
// frees in pairs leaves both as they were and gets one needless flush every pass, which costs
// it one refill).
uint32_t cpu_activity(const KmemCache* s, const KmemCacheCpu* c, int cpu) {
  uint32_t a = slot_activity(c);
  if (s->sheaf_cap != 0) {
    const Pcs* pcs = pcs_ptr(s, cpu);
    const unsigned n = pcs->count(s->sheaf_cap);
    a += n * 0x9e3779b9u;
    if (n != 0 && n <= s->sheaf_cap)
      a ^= static_cast<uint32_t>(racy_newest(pcs, s->sheaf_cap, n) >> 4);
  }
  return a;
}

// Whether the slot holds anything the flusher would give back.
bool cpu_holds(const KmemCache* s, const KmemCacheCpu* c, int cpu) {
  if (__atomic_load_n(&c->slab, __ATOMIC_RELAXED) != nullptr ||
      __atomic_load_n(&c->partial, __ATOMIC_RELAXED) != nullptr)
    return true;
  if (s->sheaf_cap == 0) return false;
  const Sheaf* spare = __atomic_load_n(&c->spare, __ATOMIC_RELAXED);
  return pcs_ptr(s, cpu)->count(s->sheaf_cap) != 0 || spare != nullptr;
}
}  // namespace

int flush_idle_pass() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return 0;
  get_cpu_area(CpuId::current());
  int flushed = 0;
  LockGuard g(g_slab_mutex);
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    for_each_cpu_slot(s, [&](KmemCacheCpu* c, int cpu) {
      const uint32_t seen = cpu_activity(s, c, cpu);
      if (!cpu_holds(s, c, cpu) || seen != __atomic_load_n(&c->flush_seen, __ATOMIC_RELAXED)) {
        // Used since the last pass (or nothing to flush).
        __atomic_store_n(&c->flush_seen, seen, __ATOMIC_RELAXED);
        return;
      }
      c->lock.lock();
      if (cpu_activity(s, c, cpu) != seen) {
        c->lock.unlock();
        return;
      }
      flushed += flush_cpu_slab_locked(s, c, cpu);
    });
    flush_barns(s, true);
  }
  return flushed;
}

// Closes every main sheaf to the rseq sections (rseq stopped for good: a thread bound a virtual
// CPU, or a fork child could not renew its membarrier registration). Each slot's lock is taken,
// so that no slow path opens one again after it was closed; the caller fences all CPUs.
namespace {
// The classic mode's slot: the tid made busy by compare-and-swap (freelist unchanged). Fast
// paths then miss and the slow path's lock holder publishes a new, idle tid as usual.
bool tid_arm(KmemCacheCpu* c) {
  const uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_ACQUIRE);
  const uint64_t fl = __atomic_load_n(&c->freelist_tid.lo, __ATOMIC_ACQUIRE);
  if ((tid & kTidBusy) != 0 || fl == 0) return false;
  DoubleWord expected{fl, tid};
  return cmpxchg16b(&c->freelist_tid, expected, {fl, tid | kTidBusy});
}
}  // namespace

int slub_kfence_arm(KmemCache* s, int first, int count) {
  if (s->q != nullptr || s->is_debug()) return 0;  // SLAB and debug caches: always slow
  const int used = nr_used_cpus();
  if (count > used) count = used;
  int armed = 0;
  for (int k = 0; k < count; ++k) {
    const int cpu = used_cpu((first + k) % used);
    if (KmemCacheCpu* c = per_cpu_ptr(s, cpu))
      armed += s->sheaf_cap != 0 ? pcs_arm(s, pcs_ptr(s, cpu)) : tid_arm(c);
  }
  return armed;
}

bool close_all_sheaves() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return false;
  for (uint64_t& base : g_kmalloc_pcs) __atomic_store_n(&base, uint64_t{0}, __ATOMIC_RELAXED);
  bool closed = false;
  LockGuard g(g_slab_mutex);
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    if (s->sheaf_cap == 0) continue;
    for_each_cpu_slot(s, [&](KmemCacheCpu* c, int cpu) {
      LockGuard lg(c->lock);
      closed |= pcs_close(s, pcs_ptr(s, cpu));
    });
  }
  return closed;
}

// ---------------------------------------------------------------------------------------------
// fork(): every SLUB lock in the documented order (cache/cache.cc takes the others).

void slub_lock_all() {
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    for_each_cpu_slot(s, [](KmemCacheCpu* c) { c->lock.lock_nest(g_slab_mutex); });
  }
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    for (int i = 0; i < s->nr_nodes; ++i) s->node[i]->barn.lock.lock_nest(g_slab_mutex);
  }
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    for (int i = 0; i < s->nr_nodes; ++i) s->node[i]->list_lock.lock_nest(g_slab_mutex);
  }
}

void slub_unlock_all() {
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    for (int i = 0; i < s->nr_nodes; ++i) {
      s->node[i]->list_lock.unlock();
      s->node[i]->barn.lock.unlock();
    }
    for_each_cpu_slot(s, [](KmemCacheCpu* c) { c->lock.unlock(); });
  }
}

}  // namespace slub
