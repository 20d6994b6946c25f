// slub: the allocator proper. The fast paths are here, inline; everything else is in slub.cc,
// whose opening comment gives the lock order and the slab states.
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
// malloc -> kmalloc_index -> slab_alloc_cas (a cmpxchg16b on the CPU's {freelist, tid})
//   -> __slab_alloc -> ___slab_alloc (the same sources as above, one slab at a time), and
// free -> PageMap::desc_of -> slab_free_cas (the CPU slab's freelist) -> __slab_free
// (cmpxchg16b on the slab's {freelist, counters}; lists; discard_slab -> PageAlloc::free).
#pragma once

#include <sys/rseq.h>

#include <cerrno>
#include <cstddef>

#include "core/kmem_cache.h"
#include "mm/page_class.h"
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
// About 15 instructions and one locked cmpxchg16b each (slub.cc): read tid, then the CPU
// freelist head (alloc) or the active slab (free). A busy slot (a slow path holds it) or an
// empty freelist goes slow. Debug caches never get a CPU freelist, so they always go slow
// without testing anything here.
void* slab_alloc_cas(KmemCache* s, size_t orig_size);
void slab_free_cas(KmemCache* s, PageDesc* slab, void* object);

// Allocation from any cache.
SLUB_FAST_PATH void* slab_alloc(KmemCache* s, size_t orig_size) {
  if (SLUB_LIKELY(s->pcs_base != 0)) return pcs_alloc(s, orig_size);
  return slab_alloc_cas(s, orig_size);
}

// kmem_cache_alloc_node: sheaves hold any node's objects, so an allocation for a node goes to
// the slabs (the kernel does the same); the classic mode checks the CPU slab's node in its
// compare-and-swap path (slub.cc).
void* slab_alloc_node_cas(KmemCache* s, size_t orig_size, int node);
SLUB_FAST_PATH void* slab_alloc_node(KmemCache* s, size_t orig_size, int node) {
  if (s->pcs_base != 0) return __slab_alloc_node(s, orig_size, node);
  return slab_alloc_node_cas(s, orig_size, node);
}

// Free of `object` of `s`, whose descriptor is `slab` (an object start, checked).
SLUB_FAST_PATH void slab_free(KmemCache* s, PageDesc* slab, void* object) {
  if (s->pcs_base != 0) return pcs_free_desc(s, slab, object);
  slab_free_cas(s, slab, object);
}

// The cache operations behind the public API (slub.cc).
// Creates a cache, or returns a compatible existing one with `name` as a new alias.
KmemCache* cache_create(const char* name, size_t size, size_t align, unsigned long flags,
                        kmem_ctor_t ctor, size_t useroffset, size_t usersize,
                        int sheaf_capacity = -1);
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
// Flushes every CPU's slab, partials and sheaves of `s` back to the node lists, and the barns.
// Returns CPU slots flushed.
int flush_all(KmemCache* s);
// One pass of the flusher: flushes per-CPU slabs idle since the previous pass.
int flush_idle_pass();

// Reentrancy (a signal handler calling malloc while this thread is inside a slow path that
// holds locks): slow paths run inside a ReentryGuard; a nested allocation is served by a
// private mapping and a nested free is deferred until the outer call leaves.
class ReentryGuard {
 public:
  ReentryGuard() : nested_(t_thread.slow_depth++ > 0) {}
  ~ReentryGuard();
  bool nested() const { return nested_; }

 private:
  bool nested_;
};
void defer_free(void* p);
// A nested allocation's memory: a huge block, freed through the normal paths.
void* emergency_alloc(size_t size);

// Closes every main sheaf to the rseq sections (the stop hook of CpuId; a fork child): true
// if one was open.
bool close_all_sheaves();

// fork(): take every allocator lock in the fixed order; release on both sides.
void fork_prepare();
void fork_parent();
void fork_child();

// Starts the flusher thread if it is wanted and allowed (SLUB_FLUSHER=0 forbids it). Called
// with no lock held, at the end of slow paths.
void maybe_start_flusher();

}  // namespace slub
