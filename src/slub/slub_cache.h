// SPDX-License-Identifier: MIT
// slub: the SLUB allocator's fast paths, inline, and what the cache layer (cache/cache.h) calls
// of it; the slow paths are in slub.cc, whose opening comment gives the lock order and the slab
// states.
//
// Call tree, from malloc down to the page allocator, with sheaves (the default):
//   malloc -> g_kmalloc_pcs[size] -> pcs_pop (an rseq section: pop the CPU's main sheaf)
//     -> __pcs_alloc (slow: the spare sheaf, a full sheaf from the node's barn, or a refill
//        from slabs: the CPU slab's freelist and never-used objects, its remote frees, CPU
//        partial slabs, the node's partial list, other nodes', a new slab -> PageAlloc::alloc)
//   free -> PageClass::get (the page's entry: cache and node) -> object-start and tag tests
//     -> pcs_push (an rseq section: push on the main sheaf)
//     -> __pcs_free (slow: the spare sheaf, the barn, or a flush to the slabs grouped by slab;
//        an object of another node goes to its slab)
// In the classic mode (no sheaves: SLUB_SHEAVES=0, a cache created with sheaf capacity 0)
// malloc -> kmalloc_index -> cache_alloc -> slab_alloc_cas (a cmpxchg16b on the CPU's
//   {freelist, tid}) -> cache_alloc_slow -> __slab_alloc_node -> ___slab_alloc (the same
//   sources as above, one slab at a time), and
// free -> PageMap::desc_of -> cache_free -> slab_free_cas (the CPU slab's freelist) ->
// cache_free_slow -> __slab_free (cmpxchg16b on the slab's {freelist, counters}; lists;
// discard_slab -> PageAlloc::free).
// cache_alloc_slow and cache_free_slow (the cache layer) hand a SLAB_QUEUED cache to slab/.
#pragma once

#include <sys/rseq.h>

#include <cerrno>
#include <cstddef>

#include "core/kmem_cache.h"
#include "mm/page_class.h"
#include "mm/page_map.h"

namespace slub {

struct Track;  // core/debug.h

// The slow paths of a SLUB cache (the cache layer reaches them; the fast paths below too).
// `orig_size` is what the user asked for (kept by debug kmalloc caches); an object of node
// `node` (kmem_cache_alloc_node), or of any node if node < 0. The allocator has started or is
// starting on another thread (the slow paths wait for it: await_init).
SLUB_SLOW_PATH void* __slab_alloc_node(KmemCache* s, size_t orig_size, int node);
SLUB_SLOW_PATH void __slab_free(KmemCache* s, PageDesc* slab, void* object);

// A free of an object already at the head of its freelist: reported (abort with SLUB_STRICT=1)
// and ignored.
SLUB_SLOW_PATH void report_double_free(const KmemCache* s, const void* object);

// ---- The sheaves' rseq sections (x86-64) --------------------------------------------------
// Each is one rseq critical section: its descriptor goes into the thread's struct rseq
// (rseq_cs, offset 8); between labels 1 and 2 it reads the CPU (cpu_id, offset 4), finds the
// CPU's main sheaf by arithmetic (pcs_base + cpu * kCpuAreaSize), tests it and commits with
// its last instruction, a 64-bit add or subtract of 1 on the slot's word. Preempted, migrated
// or signalled before that instruction, the thread resumes at the abort label (after the
// 4-byte signature glibc registered, RSEQ_SIG; placed in a section of its own, off the
// straight path) and starts over. No locked instruction, no stack frame, no counter. A closed
// slot (a slow path holds it, rseq is off, the CPU never used the cache, or cpu_id is -1 or
// -2: rseq not registered, which lands on the reservation's two read-only dummy areas) fails
// the test and the caller goes slow. See Pcs (core/kmem_cache.h) for the word and the tests.
static_assert(kCpuAreaSize == size_t{1} << 20, "the sections shift cpu_id by 20");
// What the sections' text assumes of the kernel's ABI (glibc's <sys/rseq.h>) and of Pcs.
static_assert(offsetof(struct rseq, cpu_id) == 4, "movslq %fs:4(roff): the thread's cpu_id");
static_assert(offsetof(struct rseq, rseq_cs) == 8, "movq ..., %fs:8(roff): its rseq_cs");
static_assert(sizeof(struct rseq_cs) == 32 && offsetof(struct rseq_cs, version) == 0 &&
                  offsetof(struct rseq_cs, flags) == 4 && offsetof(struct rseq_cs, start_ip) == 8 &&
                  offsetof(struct rseq_cs, post_commit_offset) == 16 &&
                  offsetof(struct rseq_cs, abort_ip) == 24,
              "the descriptor is emitted as .long 0, 0 then .quad 1f, 2f - 1f, 4f, 32-aligned");
static_assert(RSEQ_SIG == 0x53053053, "the .long before each abort label");
static_assert(offsetof(Pcs, word) == 0 && sizeof(Pcs::word) == 8,
              "the slot's address is its word: (slot) its count half, 4(slot) its entry half");
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the entry half at 4(slot)");

#define SLUB_RSEQ_SECTION_START                       \
  ".pushsection __rseq_cs, \"aw\"\n\t"                \
  ".balign 32\n\t"                                    \
  "3:\n\t"                                            \
  ".long 0, 0\n\t"                                    \
  ".quad 1f, 2f - 1f, 4f\n\t"                         \
  ".popsection\n\t"                                   \
  ".pushsection .text.unlikely.slub_rseq, \"ax\"\n\t" \
  ".byte 0x0f, 0xb9, 0x3d\n\t"                        \
  ".long 0x53053053\n\t"                              \
  "4:\n\t"                                            \
  "jmp 0f\n\t"                                        \
  ".popsection\n\t"                                   \
  "0:\n\t"                                            \
  "leaq 3b(%%rip), %[slot]\n\t"                       \
  "movq %[slot], %%fs:8(%[roff])\n\t"                 \
  "1:\n\t"                                            \
  "movslq %%fs:4(%[roff]), %[slot]\n\t"               \
  "shlq $20, %[slot]\n\t"                             \
  "addq %[base], %[slot]\n\t"

// Pops the CPU's main sheaf of the cache whose pcs_base is `base`: the object, or nullptr when
// the caller must go slow (the word's position reads a null: empty, closed or never used).
SLUB_FAST_PATH void* pcs_pop(uint64_t base) {
  void* obj;
  uint64_t slot, t;
  __asm__ volatile goto(SLUB_RSEQ_SECTION_START
                        "movslq (%[slot]), %[t]\n\t"
                        "movq -8(%[slot], %[t], 8), %[obj]\n\t"
                        "testq %[obj], %[obj]\n\t"
                        "jz %l[slow]\n\t"
                        "subq $1, (%[slot])\n\t"  // commit
                        "2:\n\t"
                        : [obj] "=&a"(obj), [slot] "=&r"(slot), [t] "=&r"(t)
                        : [base] "r"(base), [roff] "r"(CpuId::rseq_area_offset())
                        : "memory", "cc"
                        : slow);
  if (obj == nullptr) __builtin_unreachable();  // sheaves hold objects only
  return obj;
slow:
  return nullptr;
}

// Pushes `obj`, whose page entry is `entry`, on the CPU's main sheaf: false when the caller must
// go slow (the word's high half is not `entry`: the sheaf is full, the slot closed, or the
// object is of another node than the CPU's).
SLUB_FAST_PATH bool pcs_push(uint64_t base, void* obj, uint32_t entry) {
  uint64_t slot, t;
  __asm__ volatile goto(
      SLUB_RSEQ_SECTION_START
      // The position first, then the test: a lock holder's close in between fails
      // the test. (Tested first, the position could be read from the closed word.)
      "movslq (%[slot]), %[t]\n\t"
      "cmpl %[entry], 4(%[slot])\n\t"
      "jne %l[slow]\n\t"
      "movq %[obj], (%[slot], %[t], 8)\n\t"
      "addq $1, (%[slot])\n\t"  // commit
      "2:\n\t"
      : [slot] "=&r"(slot), [t] "=&r"(t)
      : [base] "rm"(base), [roff] "r"(CpuId::rseq_area_offset()), [obj] "r"(obj), [entry] "r"(entry)
      : "memory", "cc"
      : slow);
  return true;
slow:
  return false;
}

// ---- Sheaves: what the fast paths test, and their slow paths (slub.cc) --------------------

// Whether `p` is the start of an object of a slab of `s` of the cache's preferred order (the
// only slabs whose pages have entries): its offset in the slab (slabs are aligned on their
// size), multiplied by the inverse of size's odd part and rotated by its even part, is the
// object's index when p is an object start, and larger than any index otherwise.
SLUB_FAST_PATH bool pcs_object_start(const KmemCache* s, const void* p) {
  const uint64_t x = (reinterpret_cast<uintptr_t>(p) & s->slab_mask) * s->div_inv;
  const unsigned r = s->div_shift;
  return ((x >> r) | (x << ((64 - r) & 63))) <= s->max_index;
}
SLUB_FAST_PATH uint64_t* pcs_tag_word(const KmemCache* s, void* p) {
  return reinterpret_cast<uint64_t*>(static_cast<char*>(p) + s->tag_off);
}
// The tag word is written as a relaxed atomic (a plain mov): a reader of an object of a
// SLAB_TYPESAFE_BY_RCU cache may look at it while it is freed or handed out again. It is read
// plainly, so that the free fast path's test stays one compare with memory, except under
// ThreadSanitizer, which must see both sides as atomics.
SLUB_FAST_PATH uint64_t load_tag(const uint64_t* w) {
#ifdef SLUB_TSAN
  return __atomic_load_n(w, __ATOMIC_RELAXED);
#else
  return *w;
#endif
}
SLUB_FAST_PATH void store_tag(uint64_t* w, uint64_t v) {
  __atomic_store_n(w, v, __ATOMIC_RELAXED);
}

// The main sheaf was empty (or the slot stopped, or rseq is off): the spare, the barn, a
// refill; an object, or nullptr with errno ENOMEM.
SLUB_NOINLINE void* __pcs_alloc(KmemCache* s, size_t orig_size);
// kmalloc's: the class of `size` (<= 1024).
SLUB_NOINLINE void* __pcs_kmalloc(size_t size);
// The push failed: the object (an object start, its tag already written) goes on the main
// sheaf after the spare, the barn or a flush made room, or to its slab if of another node.
SLUB_NOINLINE void __pcs_free(void* p, uint32_t entry, KmemCache* s);
// A free that failed the tests (not an object start, or the tag says already freed):
// reported, ignored.
SLUB_SLOW_PATH void pcs_free_rejected(KmemCache* s, void* p);
// A free of an object of a sheaf cache found by its descriptor (a page without an entry, or
// kmem_cache_free's other callers): the tests, then the sheaves' slow free.
SLUB_SLOW_PATH void pcs_free_desc(KmemCache* s, PageDesc* d, void* p);

// Allocation from `s` with sheaves: pop, clear the tag, or go slow.
SLUB_FAST_PATH void* pcs_alloc(KmemCache* s, size_t orig_size) {
  if (void* p = pcs_pop(s->pcs_base); SLUB_LIKELY(p != nullptr)) {
    store_tag(pcs_tag_word(s, p), 0);
    return p;
  }
  return __pcs_alloc(s, orig_size);
}

// Free of `p`, whose page entry `e` is not 0, to the cache the entry names (whose tag is in the
// first word: set_page_entries).
SLUB_FAST_PATH void pcs_free(void* p, uint32_t e) {
  static_assert(sizeof(KmemCache) == 8 << 6, "PageClass::cache_offset");
  auto* s =
      reinterpret_cast<KmemCache*>(reinterpret_cast<char*>(g_caches) + PageClass::cache_offset(e));
  if (SLUB_LIKELY(pcs_object_start(s, p))) {
    uint64_t* tag = static_cast<uint64_t*>(p);
    if (SLUB_LIKELY(load_tag(tag) != s->tag)) {
      store_tag(tag, s->tag);
      if (SLUB_LIKELY(pcs_push(s->pcs_base, p, e))) return;
      return __pcs_free(p, e, s);
    }
  }
  pcs_free_rejected(s, p);
}

// ---- The classic mode: the CPU freelist, by compare-and-swap --------------------------------
// About 15 instructions and one locked cmpxchg16b each: read tid, then the CPU freelist head
// (alloc) or the active slab (free). A busy slot (a slow path holds it), an empty freelist or a
// CPU without an area is a miss: nullptr or false, and the caller goes slow (cache_alloc_slow,
// cache_free_slow). Debug caches and SLAB caches never get a CPU freelist, so they always miss.
SLUB_FAST_PATH void* slab_alloc_cas(const KmemCache* s) {
  for (;;) {
    KmemCacheCpu* c = raw_cpu_ptr(s, CpuId::current());
    if (SLUB_UNLIKELY(c == nullptr)) return nullptr;
    uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_ACQUIRE);
    void* object = reinterpret_cast<void*>(__atomic_load_n(&c->freelist_tid.lo, __ATOMIC_ACQUIRE));
    if (SLUB_UNLIKELY(object == nullptr || (tid & kTidBusy))) return nullptr;
    void* next = get_freepointer_safe(s, object);
    if (SLUB_UNLIKELY(!freeptr_plausible(object, next))) return nullptr;  // the slow path reports
    DoubleWord expected{reinterpret_cast<uint64_t>(object), tid};
    if (SLUB_LIKELY(cmpxchg16b(&c->freelist_tid, expected,
                               {reinterpret_cast<uint64_t>(next), tid + kTidStep}))) {
      stat(c, ALLOC_FASTPATH);
      return object;
    }
    stat(c, CMPXCHG_DOUBLE_CPU_FAIL);
  }
}

// kmem_cache_alloc_node in the classic mode: the fast path when the CPU slab is on `node` (the
// kernel's node_match); otherwise the slow path deactivates it and finds a slab of that node.
// The CPU slab is read after the tid, so a change of slab fails the swap.
SLUB_FAST_PATH void* slab_alloc_node_cas(const KmemCache* s, int node) {
  for (;;) {
    KmemCacheCpu* c = raw_cpu_ptr(s, CpuId::current());
    if (SLUB_UNLIKELY(c == nullptr)) return nullptr;
    uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_ACQUIRE);
    void* object = reinterpret_cast<void*>(__atomic_load_n(&c->freelist_tid.lo, __ATOMIC_ACQUIRE));
    PageDesc* slab = __atomic_load_n(&c->slab, __ATOMIC_ACQUIRE);
    if (object == nullptr || (tid & kTidBusy) || slab == nullptr || slab->node != node)
      return nullptr;
    void* next = get_freepointer_safe(s, object);
    if (!freeptr_plausible(object, next)) return nullptr;
    DoubleWord expected{reinterpret_cast<uint64_t>(object), tid};
    if (cmpxchg16b(&c->freelist_tid, expected,
                   {reinterpret_cast<uint64_t>(next), tid + kTidStep})) {
      stat(c, ALLOC_FASTPATH);
      return object;
    }
    stat(c, CMPXCHG_DOUBLE_CPU_FAIL);
  }
}

// Free of `object` (an object start of `slab`) to the CPU freelist when `slab` is the CPU's
// active slab: true when done (or reported: a free of the freelist's head, freed twice in a
// row, is the kernel's naive double-free check), false on a miss.
SLUB_FAST_PATH bool slab_free_cas(const KmemCache* s, PageDesc* slab, void* object) {
  for (;;) {
    KmemCacheCpu* c = raw_cpu_ptr(s, CpuId::current());
    if (SLUB_UNLIKELY(c == nullptr)) return false;
    uint64_t tid = __atomic_load_n(&c->freelist_tid.hi, __ATOMIC_ACQUIRE);
    PageDesc* active = __atomic_load_n(&c->slab, __ATOMIC_ACQUIRE);
    if (SLUB_UNLIKELY(active != slab || (tid & kTidBusy))) return false;
    uint64_t head = __atomic_load_n(&c->freelist_tid.lo, __ATOMIC_ACQUIRE);
    if (SLUB_UNLIKELY(head == reinterpret_cast<uint64_t>(object))) {
      report_double_free(s, object);
      return true;
    }
    set_freepointer(s, object, reinterpret_cast<void*>(head));
    DoubleWord expected{head, tid};
    if (SLUB_LIKELY(cmpxchg16b(&c->freelist_tid, expected,
                               {reinterpret_cast<uint64_t>(object), tid + kTidStep}))) {
      stat(c, FREE_FASTPATH);
      return true;
    }
    stat(c, CMPXCHG_DOUBLE_CPU_FAIL);
  }
}

// ---- What the cache layer calls of SLUB (slub.cc) -------------------------------------------
// Each with g_slab_mutex held and the caller's CPU area made (counters), inside a ReentryGuard.

// Flushes every CPU's slab, partials and sheaves of `s` back to the node lists, and the barns.
// Returns CPU slots flushed.
int flush_all(KmemCache* s);
// flush_all, then every empty slab of the node lists back to the page allocator: slabs freed.
int slub_shrink(KmemCache* s);
// flush_all, then every slab on the node lists checked (all slabs, for debug caches, which
// keep full slabs on a list too). Returns the number of errors found.
int slub_validate(KmemCache* s);
// kmem_cache_destroy's part: flushes and frees what it can; 0 if no object is left, else the
// live objects are reported and -1.
int slub_shutdown(KmemCache* s);
// The alloc (or free) tracks of the live (or free) objects of `s` (needs U): fn(track, arg).
void slub_for_each_track(KmemCache* s, bool free_objects, void (*fn)(const Track*, void*),
                         void* arg);
// The counts of kmem_cache_info that are SLUB's (slabs, objects, partial and CPU slabs).
void slub_get_info(const KmemCache* s, kmem_cache_info* info);
// Per-node counts (partial list walked under the node's list_lock).
void slub_node_info(const KmemCache* s, int node, kmem_cache_node_info* info);
// What the queues and per-CPU structures hold.
void slub_queue_info(KmemCache* s, kmem_cache_queue_info* info);
// The service thread's pass: flushes per-CPU slabs and sheaves idle since the previous pass,
// and idle barns. Takes g_slab_mutex. Returns CPU slots flushed.
int flush_idle_pass();

// Closes every main sheaf to the rseq sections (the stop hook of CpuId; a fork child): true
// if one was open.
bool close_all_sheaves();

// KFENCE's arming (core/kfence.h; the service thread, g_slab_mutex held): every CPU slot of
// `s` in use is closed to the fast paths, so that the next allocation from `s` on each CPU
// takes the slow path, where the sampler waits. Returns the slots closed.
int slub_kfence_arm(KmemCache* s);

// fork(): every SLUB lock (CPU slots, barns, node lists) in the lock order, after g_slab_mutex;
// released on both sides.
void slub_lock_all();
void slub_unlock_all();

}  // namespace slub
