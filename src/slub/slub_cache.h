// slub: the allocator proper. The fast paths are here, inline; everything else is in slub.cc,
// whose opening comment gives the lock order and the slab states.
//
// Call tree, from malloc down to the page allocator:
//   slub_malloc -> kmalloc_index -> slab_alloc (fast: pop CPU freelist in an rseq section,
//     or with cmpxchg16b without rseq)
//     -> __slab_alloc (slow) -> ___slab_alloc: active slab's freelist (remote frees)
//        -> per-CPU partial -> get_partial (node partial list) -> new_slab -> PageAlloc::alloc
//   slub_free -> PageMap::desc_of -> slab_free (fast: push on CPU freelist if the object is in
//     this CPU's active slab) -> __slab_free (slow: cmpxchg16b on the slab's {freelist,
//     counters}; put_cpu_partial / node partial list / discard_slab -> PageAlloc::free)
#pragma once

#include <cerrno>
#include <cstddef>

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

// ---- rseq fast paths (x86-64) -------------------------------------------------------------
// Each is one rseq critical section (pal/cpu_id.h): the descriptor goes into the thread's
// struct rseq (rseq_cs, offset 8), then, between labels 1 and 2, the section reads the CPU
// (cpu_id, offset 4), finds its slot, checks that rseq is still on and the slot is not busy,
// and commits with its last instruction, one plain store of the freelist head. Preempted,
// migrated or signalled before that store, the thread resumes at the abort label (after the
// 4-byte signature glibc registered, RSEQ_SIG) and starts over. Any check that fails leaves
// for the slow path, which takes the slot's lock. No locked instruction, and the tid is not
// touched: the flusher counts the fast-path statistics as activity instead (slot_activity).

// Decoding (or encoding) a stored free pointer in place: pointer ^ random ^ bswap(where).
#if SLUB_FREELIST_HARDENED
#define SLUB_RSEQ_FREEPTR_KEY(reg)    \
  "leaq (%[obj], %[foff]), %[t2]\n\t" \
  "bswapq %[t2]\n\t"                  \
  "xorq %[t2], " reg                  \
  "\n\t"                              \
  "xorq %[rnd], " reg "\n\t"
#else
#define SLUB_RSEQ_FREEPTR_KEY(reg) ""
#endif

#define SLUB_RSEQ_ENTER                 \
  ".pushsection __rseq_cs, \"aw\"\n\t"  \
  ".balign 32\n\t"                      \
  "3:\n\t"                              \
  ".long 0, 0\n\t"                      \
  ".quad 1f, 2f - 1f, 4f\n\t"           \
  ".popsection\n\t"                     \
  "0:\n\t"                              \
  "leaq 3b(%%rip), %[t1]\n\t"           \
  "movq %[t1], 8(%[rs])\n\t"            \
  "1:\n\t"                              \
  "cmpb $1, (%[state])\n\t"             \
  "jne 5f\n\t"                          \
  "movl 4(%[rs]), %k[t1]\n\t"           \
  "cmpl %[maxcpus], %k[t1]\n\t"         \
  "jae 5f\n\t"                          \
  "movq (%[areas], %[t1], 8), %[c]\n\t" \
  "testq %[c], %[c]\n\t"                \
  "jz 5f\n\t"                           \
  "addq %[off], %[c]\n\t"               \
  "testb $1, 8(%[c])\n\t"               \
  "jnz 5f\n\t"

#define SLUB_RSEQ_ABORT        \
  ".byte 0x0f, 0xb9, 0x3d\n\t" \
  ".long 0x53053053\n\t"       \
  "4:\n\t"                     \
  "jmp 0b\n\t"

#if SLUB_FREELIST_HARDENED
#define SLUB_RSEQ_RND , [rnd] "r"(s->random)
#else
#define SLUB_RSEQ_RND
#endif

// The allocation section; NODE_CHECK is empty or SLUB_RSEQ_NODE_CHECK. The next pointer must
// be plausible (NULL, or in the object's own 2 MiB chunk); else the slow path reports it.
// clang-format off
#define SLUB_RSEQ_ALLOC(NODE_CHECK)                      \
  SLUB_RSEQ_ENTER                                        \
  NODE_CHECK                                             \
  "movq (%[c]), %[obj]\n\t"                              \
  "testq %[obj], %[obj]\n\t"                             \
  "jz 5f\n\t"                                            \
  "movq (%[obj], %[foff]), %[t1]\n\t"                    \
  SLUB_RSEQ_FREEPTR_KEY("%[t1]")                         \
  "testq %[t1], %[t1]\n\t"                               \
  "jz 7f\n\t"                                            \
  "movq %[t1], %[t2]\n\t"                                \
  "xorq %[obj], %[t2]\n\t"                               \
  "shrq %[chunk_shift], %[t2]\n\t"                       \
  "jnz 5f\n\t"                                           \
  "7:\n\t"                                               \
  "movq %[t1], (%[c])\n\t"                               \
  "2:\n\t"                                               \
  "jmp 6f\n\t"                                           \
  SLUB_RSEQ_ABORT                                        \
  "5:\n\t"                                               \
  "xorl %k[obj], %k[obj]\n\t"                            \
  "6:\n\t"
// clang-format on

// kmem_cache_alloc_node: the CPU slab must be on `node` (a CPU without a slab goes slow).
#define SLUB_RSEQ_NODE_CHECK               \
  "movq %c[slab_off](%[c]), %[t2]\n\t"     \
  "testq %[t2], %[t2]\n\t"                 \
  "jz 5f\n\t"                              \
  "cmpw %w[node], %c[node_off](%[t2])\n\t" \
  "jne 5f\n\t"

#define SLUB_RSEQ_COMMON_IN                                                                     \
  [rs] "r"(CpuId::rseq_area()), [state] "r"(CpuId::rseq_state_addr()), [areas] "r"(g_cpu_area), \
      [off] "r"(uint64_t{s->cpu_off}), [foff] "r"(uint64_t{s->offset}), [maxcpus] "i"(kMaxCpus)

// Pops the CPU freelist, or when it is empty the CPU's sheaf (its newest object): the object,
// or nullptr (go slow). *cp: the slot, for the counter. Both ways commit with the same last
// store, of t1 to (t2): the new freelist head to the slot, or the new count to the sheaf.
SLUB_FAST_PATH void* rseq_alloc(const KmemCache* s, KmemCacheCpu** cp) {
  void* obj;
  KmemCacheCpu* c;
  uint64_t t1, t2;
  // clang-format off
  __asm__ volatile(
      SLUB_RSEQ_ENTER
      "movq (%[c]), %[obj]\n\t"
      "testq %[obj], %[obj]\n\t"
      "jnz 9f\n\t"
      // The freelist is empty: the sheaf. (Inside the section, as everything up to label 2.)
      "movq %c[sheaf_off](%[c]), %[t2]\n\t"
      "testq %[t2], %[t2]\n\t"
      "jz 5f\n\t"
      "movq (%[t2]), %[t1]\n\t"
      "subq $1, %[t1]\n\t"
      "jb 5f\n\t"
      "movq 16(%[t2], %[t1], 8), %[obj]\n\t"
      "jmp 10f\n\t"
      "9:\n\t"
      "movq (%[obj], %[foff]), %[t1]\n\t"
      SLUB_RSEQ_FREEPTR_KEY("%[t1]")
      "testq %[t1], %[t1]\n\t"
      "jz 7f\n\t"
      "movq %[t1], %[t2]\n\t"
      "xorq %[obj], %[t2]\n\t"
      "shrq %[chunk_shift], %[t2]\n\t"
      "jnz 5f\n\t"
      "7:\n\t"
      "movq %[c], %[t2]\n\t"
      "10:\n\t"
      "movq %[t1], (%[t2])\n\t"  // commit
      "2:\n\t"
      "jmp 6f\n\t"
      SLUB_RSEQ_ABORT
      "5:\n\t"
      "xorl %k[obj], %k[obj]\n\t"
      "6:\n\t"
      : [obj] "=&r"(obj), [c] "=&r"(c), [t1] "=&r"(t1), [t2] "=&r"(t2)
      : SLUB_RSEQ_COMMON_IN, [chunk_shift] "i"(kChunkShift),
        [sheaf_off] "i"(offsetof(KmemCacheCpu, sheaf)) SLUB_RSEQ_RND
      : "memory", "cc");
  // clang-format on
  *cp = c;
  return obj;
}

// The same when the CPU slab is on `node` (kmem_cache_alloc_node).
SLUB_FAST_PATH void* rseq_alloc_node(const KmemCache* s, int node, KmemCacheCpu** cp) {
  void* obj;
  KmemCacheCpu* c;
  uint64_t t1, t2;
  __asm__ volatile(SLUB_RSEQ_ALLOC(SLUB_RSEQ_NODE_CHECK)
                   : [obj] "=&r"(obj), [c] "=&r"(c), [t1] "=&r"(t1), [t2] "=&r"(t2)
                   : SLUB_RSEQ_COMMON_IN, [chunk_shift] "i"(kChunkShift), [node] "r"(node),
                     [slab_off] "i"(offsetof(KmemCacheCpu, slab)),
                     [node_off] "i"(offsetof(PageDesc, node))SLUB_RSEQ_RND
                   : "memory", "cc");
  *cp = c;
  return obj;
}

static_assert(SlabCounters::make(0, 0, true).raw == uint64_t{0x80} << 24,
              "rseq_free tests the frozen bit as bit 7 of the counters' byte 3");

// Pushes `object` of `slab` on the CPU freelist if `slab` is the CPU's active slab, else on
// the CPU's sheaf if it has room. Returns 1 when done, 0 to go slow, 2 when `object` is
// already the head of either (a double free in a row). Both ways commit with the same last
// store, of t1 to (a): the object to the slot's head, or the new count to the sheaf.
SLUB_FAST_PATH int rseq_free(const KmemCache* s, PageDesc* slab, void* object, KmemCacheCpu** cp) {
  int ret;
  KmemCacheCpu* c;
  uint64_t t1, a;
#if SLUB_FREELIST_HARDENED
  uint64_t t2;
#endif
  void* obj = object;
  __asm__ volatile(
      SLUB_RSEQ_ENTER
      "cmpq %[slab], %c[slab_off](%[c])\n\t"
      "je 9f\n\t"
      // Not the active slab: the sheaf, objs[count] = obj, then count + 1 is the commit.
      // (Inside the section, as everything up to label 2.) A small object of a frozen slab,
      // another CPU's active one, goes slow, to its slab: its neighbours in the same cache
      // lines are being handed out on that CPU, and reusing it here would make the two CPUs
      // write the same lines (passive false sharing).
      "movq %c[sheaf_off](%[c]), %[a]\n\t"
      "testq %[a], %[a]\n\t"
      "jz 5f\n\t"
      "movq (%[a]), %[t1]\n\t"
      "cmpl 8(%[a]), %k[t1]\n\t"
      "jae 5f\n\t"
      "testb $1, 12(%[a])\n\t"
      "jz 12f\n\t"
      "testb $0x80, %c[frozen_off](%[slab])\n\t"
      "jnz 5f\n\t"
      "12:\n\t"
      "testq %[t1], %[t1]\n\t"
      "jz 11f\n\t"
      "cmpq %[obj], 8(%[a], %[t1], 8)\n\t"  // objs[count - 1]
      "je 8f\n\t"
      "11:\n\t"
      "movq %[obj], 16(%[a], %[t1], 8)\n\t"  // beyond count: harmless if restarted
      "addq $1, %[t1]\n\t"
      "jmp 10f\n\t"
      "9:\n\t"
      "movq (%[c]), %[t1]\n\t"
      "cmpq %[t1], %[obj]\n\t"
      "je 8f\n\t"
      SLUB_RSEQ_FREEPTR_KEY("%[t1]")
      "movq %[t1], (%[obj], %[foff])\n\t"  // the object's free pointer (redone on a restart)
      "movq %[obj], %[t1]\n\t"
      "movq %[c], %[a]\n\t"
      "10:\n\t"
      "movq %[t1], (%[a])\n\t"  // commit
      "2:\n\t"
      "movl $1, %[ret]\n\t"
      "jmp 6f\n\t"
      SLUB_RSEQ_ABORT
      "5:\n\t"
      "xorl %[ret], %[ret]\n\t"
      "jmp 6f\n\t"
      "8:\n\t"
      "movl $2, %[ret]\n\t"
      "6:\n\t"
      : [ret] "=&r"(ret), [c] "=&r"(c), [t1] "=&r"(t1), [a] "=&r"(a)
#if SLUB_FREELIST_HARDENED
        , [t2] "=&r"(t2)
#endif
      : [obj] "r"(obj), [slab] "r"(slab), SLUB_RSEQ_COMMON_IN,
        [slab_off] "i"(offsetof(KmemCacheCpu, slab)),
        [sheaf_off] "i"(offsetof(KmemCacheCpu, sheaf)),
        [frozen_off] "i"(offsetof(PageDesc, counters) + 3) SLUB_RSEQ_RND
      : "memory", "cc");
  *cp = c;
  return ret;
}

// Allocation fast path: the rseq section, or without rseq the compare-and-swap path (slub.cc,
// out of line so that the rseq path here stays free of its register pressure: about 15
// instructions and one locked cmpxchg16b, reading tid before the freelist). A busy slot (a slow
// path holds it) or an empty freelist goes slow. Debug caches never get a CPU freelist, so
// they always go slow without testing anything here.
void* slab_alloc_cas(KmemCache* s, size_t orig_size);
// The rseq section may only be entered where the thread has an rseq area (the state was on,
// and the area stays valid after); it checks the state again inside, for the fence protocol.
SLUB_FAST_PATH void* slab_alloc(KmemCache* s, size_t orig_size) {
  if (SLUB_LIKELY(CpuId::rseq_fast())) {
    KmemCacheCpu* c;
    if (void* object = rseq_alloc(s, &c); SLUB_LIKELY(object != nullptr)) {
      stat(c, ALLOC_FASTPATH);
      return object;
    }
    if (SLUB_LIKELY(CpuId::rseq_fast())) return __slab_alloc(s, orig_size);
  }
  return slab_alloc_cas(s, orig_size);
}

// kmem_cache_alloc_node: the fast path when the CPU slab is on `node` (the kernel's
// node_match); otherwise the slow path deactivates it and finds a slab of that node. The CPU
// slab is read after the tid (or in the rseq section), so a change of slab fails the swap.
SLUB_FAST_PATH void* slab_alloc_node(KmemCache* s, size_t orig_size, int node) {
  if (CpuId::rseq_fast()) {
    KmemCacheCpu* c;
    if (void* object = rseq_alloc_node(s, node, &c); object != nullptr) {
      stat(c, ALLOC_FASTPATH);
      return object;
    }
    if (CpuId::rseq_fast()) return __slab_alloc_node(s, orig_size, node);
  }
  while (!CpuId::rseq_may_be_in_flight()) {  // see slab_alloc_cas
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

// Free fast path: only for an object of this CPU's active slab. The rseq section, or without
// rseq: read tid, then the active slab, then the freelist; the cmpxchg16b fails if any of them
// changed in between.
void slab_free_cas(KmemCache* s, PageDesc* slab, void* object);
SLUB_FAST_PATH void slab_free(KmemCache* s, PageDesc* slab, void* object) {
  if (SLUB_LIKELY(CpuId::rseq_fast())) {
    KmemCacheCpu* c;
    const int done = rseq_free(s, slab, object, &c);
    if (SLUB_LIKELY(done == 1)) {
      stat(c, FREE_FASTPATH);
      return;
    }
    if (SLUB_LIKELY(CpuId::rseq_fast())) {
      if (done == 2)
        report_double_free(s, object);
      else
        __slab_free(s, slab, object);
      return;
    }
  }
  slab_free_cas(s, slab, object);
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
