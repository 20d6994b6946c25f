// SPDX-License-Identifier: MIT
// Sheaves and barns (slub/slub.cc, core/kmem_cache.h) on virtual CPUs: the paths between the
// main sheaf and the slabs, each asserted without kmem_cache_shrink (which flushes everything
// and would hide a path that never gives memory back), and the same workload in the classic
// mode where the paths differ. Virtual CPUs run the sheaves under the slot locks (no rseq); the
// rseq sections on a real CPU are tested in tests/func/rseq_test.cc.
#include <gtest/gtest.h>

#include <vector>

#include <slub/slub.h>
#include <slub/stats.h>

#include <sched.h>

#include "core/kmalloc.h"
#include "core/kmem_cache.h"
#include "test_util.h"

namespace {

std::vector<uint64_t> stats_of(kmem_cache* c) {
  std::vector<uint64_t> v(NR_SLUB_STAT_ITEMS);
  kmem_cache_get_stats(c, v.data());
  return v;
}

kmem_cache_info info_of(kmem_cache* c) {
  kmem_cache_info i{};
  kmem_cache_get_info(c, &i);
  return i;
}

kmem_cache* sheaf_cache(const char* name, size_t size) {
  kmem_cache_args a{};
  return kmem_cache_create_args(name, size, &a, SLAB_NO_MERGE);
}

// Freeing far more than the sheaves and the barn hold: the main sheaf, the spare and the
// barn's 10 full sheaves fill, then each further full spare is flushed to its slabs (the barn
// refuses it), one freelist update per slab, and the slabs that become empty beyond the node's
// min_partial go back to the page allocator at once, from the flush itself.
TEST(Sheaf, FreesBeyondTheBarnFlushToSlabsAndFreeEmptySlabs) {
  if (!slub::sheaves_enabled()) GTEST_SKIP() << "SLUB_SHEAVES=0";
  kmem_cache* c = sheaf_cache("sheaf-flush", 64);
  ASSERT_NE(c, nullptr);
  const unsigned cap = kmem_cache_sheaf_capacity(c);
  ASSERT_EQ(cap, 60u);
  constexpr int kObjects = 3000;
  std::vector<void*> objs;
  on_vcpu(90, [&] {
    for (int i = 0; i < kObjects; ++i) objs.push_back(kmem_cache_alloc(c));
  });
  const kmem_cache_info full = info_of(c);
  ASSERT_GE(full.nr_slabs * full.objs_per_slab, size_t{kObjects});
  on_vcpu(90, [&] {
    for (void* p : objs) kmem_cache_free(c, p);
  });
  const auto s = stats_of(c);
  EXPECT_EQ(s[BARN_PUT], slub::kBarnMaxFull);
  EXPECT_GT(s[BARN_PUT_FAIL], 0u);
  // Everything beyond the sheaves (main, spare) and the barn was flushed to the slabs.
  EXPECT_EQ(s[SHEAF_FLUSH], kObjects - (2 + slub::kBarnMaxFull) * cap);
  const kmem_cache_info after = info_of(c);
  EXPECT_GT(s[FREE_SLAB], 0u) << "no slab was freed by the flushes";
  EXPECT_LT(after.nr_slabs, full.nr_slabs);
  kmem_cache_queue_info q{};
  ASSERT_EQ(kmem_cache_get_queue_info(c, &q), 0);
  EXPECT_EQ(q.parked_node, size_t{slub::kBarnMaxFull * cap});
  // What still counts as in use is what the CPU and the barn hold: the sheaves, and the CPU
  // slab's objects never handed out.
  EXPECT_EQ(after.active_objs, q.parked_cpu + q.parked_node);
  EXPECT_GE(q.parked_cpu, size_t{2 * cap});
  kmem_cache_shrink(c);
  EXPECT_EQ(info_of(c).active_objs, 0u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// The same frees in the classic mode go straight to the slabs, and the empty ones beyond
// min_partial are freed as the frees empty them (__slab_free -> discard_slab).
TEST(Sheaf, ClassicFreesFreeEmptySlabsWithoutShrink) {
  kmem_cache* c = classic_cache("sheaf-classic-flush", 64, SLAB_NO_MERGE);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(kmem_cache_sheaf_capacity(c), 0u);
  constexpr int kObjects = 3000;
  std::vector<void*> objs;
  on_vcpu(91, [&] {
    for (int i = 0; i < kObjects; ++i) objs.push_back(kmem_cache_alloc(c));
  });
  const kmem_cache_info full = info_of(c);
  on_vcpu(91, [&] {
    for (void* p : objs) kmem_cache_free(c, p);
  });
  const auto s = stats_of(c);
  const kmem_cache_info after = info_of(c);
  EXPECT_GT(s[FREE_SLAB], 0u);
  EXPECT_LT(after.nr_slabs, full.nr_slabs);
  EXPECT_LE(after.nr_slabs, size_t{after.min_partial} + 1 + after.nr_cpu_slabs)
      << "empty slabs beyond min_partial were kept";
  EXPECT_EQ(s[SHEAF_FLUSH] + s[BARN_PUT] + s[SHEAF_REFILL], 0u) << "no sheaves in this mode";
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// A free that empties a slab on its node's partial list frees the slab at once (do_slab_free),
// when the node keeps min_partial slabs already: in both modes, for a cache without per-CPU
// partial slabs (so that full slabs that get a free join the node's list, not a CPU's chain).
TEST(Sheaf, AFreeThatEmptiesANodePartialSlabFreesIt) {
  for (const bool sheaves : {true, false}) {
    SCOPED_TRACE(sheaves ? "sheaves" : "classic");
    if (sheaves && !slub::sheaves_enabled()) continue;
    kmem_cache* c = sheaves ? sheaf_cache("sheaf-empty", 256)
                            : classic_cache("sheaf-empty-classic", 256, SLAB_NO_MERGE);
    ASSERT_NE(c, nullptr);
    auto* s = reinterpret_cast<slub::KmemCache*>(c);
    s->cpu_partial = s->cpu_partial_slabs = 0;  // before its first object
    std::vector<void*> objs;
    on_vcpu(98, [&] {
      for (int i = 0; i < 4000; ++i) objs.push_back(kmem_cache_alloc(c));
    });
    const kmem_cache_info full = info_of(c);
    on_vcpu(98, [&] {
      for (void* p : objs) kmem_cache_free(c, p);
    });
    const auto st = stats_of(c);
    const kmem_cache_info after = info_of(c);
    EXPECT_GT(st[FREE_SLAB], 0u);
    EXPECT_GT(st[FREE_REMOVE_PARTIAL], 0u) << "no empty slab left its node's partial list";
    EXPECT_LT(after.nr_slabs, full.nr_slabs);
    EXPECT_EQ(kmem_cache_destroy(c), 0);
  }
}

// A CPU that frees what another allocated: its full sheaves go to the node's barn, and the
// allocating CPU takes them from there (no new slab, no refill from the slabs).
TEST(Sheaf, FullSheavesGoThroughTheBarnToAnotherCpu) {
  if (!slub::sheaves_enabled()) GTEST_SKIP() << "SLUB_SHEAVES=0";
  kmem_cache* c = sheaf_cache("sheaf-barn", 128);
  ASSERT_NE(c, nullptr);
  const unsigned cap = kmem_cache_sheaf_capacity(c);
  const int a = cpu_of_node(0, 0), b = cpu_of_node(0, 1);
  ASSERT_GE(b, 0) << "the topology has one CPU on node 0";
  std::vector<void*> objs;
  on_vcpu(a, [&] {
    for (unsigned i = 0; i < 5 * cap; ++i) objs.push_back(kmem_cache_alloc(c));
  });
  on_vcpu(b, [&] {
    for (void* p : objs) kmem_cache_free(c, p);
  });
  auto s = stats_of(c);
  // b: the main sheaf fills, a new spare takes it, then each full spare goes to the barn.
  EXPECT_EQ(s[BARN_PUT], 3u);
  EXPECT_EQ(s[SHEAF_FLUSH], 0u);
  const uint64_t slabs = s[ALLOC_SLAB], refills = s[SHEAF_REFILL];
  on_vcpu(a, [&] {
    for (unsigned i = 0; i < 2 * cap; ++i) objs[i] = kmem_cache_alloc(c);
  });
  s = stats_of(c);
  EXPECT_EQ(s[BARN_GET], 2u);
  EXPECT_EQ(s[ALLOC_SLAB], slabs) << "a new slab although the barn had full sheaves";
  EXPECT_EQ(s[SHEAF_REFILL], refills);
  on_vcpu(a, [&] {
    for (unsigned i = 0; i < 2 * cap; ++i) kmem_cache_free(c, objs[i]);
  });
  kmem_cache_shrink(c);
  EXPECT_EQ(info_of(c).active_objs, 0u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// The barn is bounded: a node holds at most kBarnMaxFull full sheaves, whatever its CPUs free.
TEST(Sheaf, TheBarnIsBounded) {
  if (!slub::sheaves_enabled()) GTEST_SKIP() << "SLUB_SHEAVES=0";
  kmem_cache* c = sheaf_cache("sheaf-bounded", 64);  // a whole line: not owner-tracked
  ASSERT_NE(c, nullptr);
  const unsigned cap = kmem_cache_sheaf_capacity(c);
  std::vector<void*> objs;
  on_vcpu(92, [&] {
    for (unsigned i = 0; i < 40 * cap; ++i) objs.push_back(kmem_cache_alloc(c));
  });
  // Four CPUs free a quarter each.
  for (int k = 0; k < 4; ++k)
    on_vcpu(93 + k, [&] {
      for (unsigned i = k * 10 * cap; i < (k + 1) * 10 * cap; ++i) kmem_cache_free(c, objs[i]);
    });
  kmem_cache_queue_info q{};
  ASSERT_EQ(kmem_cache_get_queue_info(c, &q), 0);
  EXPECT_EQ(q.parked_node, size_t{slub::kBarnMaxFull * cap});
  EXPECT_GT(stats_of(c)[SHEAF_FLUSH], 0u) << "the barn took more than it may hold";
  EXPECT_EQ(info_of(c).active_objs, q.parked_cpu + q.parked_node);
  kmem_cache_shrink(c);
  EXPECT_EQ(info_of(c).active_objs, 0u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// A small object freed on another CPU than the one whose sheaf took its slab goes to its
// slab, not into the freeing CPU's sheaf, so that CPU's next allocation does not hand out a
// cache line the first CPU's threads write (Hoard's cache-scratch: 10x jemalloc's time with
// every free pushed). Objects of a whole cache line are pushed as any other.
TEST(Sheaf, SmallObjectsOfAnotherCpusSlabGoToTheirSlab) {
  if (!slub::sheaves_enabled()) GTEST_SKIP() << "SLUB_SHEAVES=0";
  slub_free(slub_malloc(8));  // the topology is read at the first allocation
  const int a = cpu_of_node(0, 0), b = cpu_of_node(0, 1);
  ASSERT_GE(b, 0) << "the topology has one CPU on node 0";
  for (size_t size : {16, 48, 96, 64, 128}) {
    SCOPED_TRACE(size);
    kmem_cache* c = sheaf_cache("sheaf-owner", size);
    ASSERT_NE(c, nullptr);
    const bool tracked = slub::owner_tracked(reinterpret_cast<slub::KmemCache*>(c));
    EXPECT_EQ(tracked, size < 64 || size == 96);
    void* p = nullptr;
    on_vcpu(a, [&] { p = kmem_cache_alloc(c); });
    ASSERT_NE(p, nullptr);
    const uint64_t remote = stats_of(c)[FREE_REMOTE];
    void* q = nullptr;
    on_vcpu(b, [&] {
      kmem_cache_free(c, p);
      q = kmem_cache_alloc(c);
    });
    ASSERT_NE(q, nullptr);
    if (tracked) {
      EXPECT_NE(q, p) << "b's sheaf handed out the object of a's slab";
      EXPECT_EQ(stats_of(c)[FREE_REMOTE], remote + 1);
    } else {
      EXPECT_EQ(q, p) << "a whole-line object should have gone on b's sheaf";
      EXPECT_EQ(stats_of(c)[FREE_REMOTE], remote);
    }
    on_vcpu(b, [&] { kmem_cache_free(c, q); });
    // Freed by its own CPU, an object goes on the sheaf again.
    on_vcpu(a, [&] {
      void* r = kmem_cache_alloc(c);
      kmem_cache_free(c, r);
      EXPECT_EQ(kmem_cache_alloc(c), r);
      kmem_cache_free(c, r);
    });
    kmem_cache_shrink(c);
    EXPECT_EQ(info_of(c).active_objs, 0u);
    EXPECT_EQ(kmem_cache_destroy(c), 0);
  }
}

}  // namespace

namespace {

// malloc of the classes above 1024 bytes (no one-load table) takes the rseq section too, not
// the locked slow path every time: on a pinned real CPU, a thousand pairs are a few slow-path
// events at most (a refill, a flush). Before the fix every malloc(4096) took the slot's lock.
TEST(Sheaf, LargeClassesTakeTheRseqSections) {
  void* warm = slub_malloc(64);
  slub_free(warm);
  if (slub_fast_path_rseq() == 0) GTEST_SKIP() << "rseq off";
  cpu_set_t one;
  CPU_ZERO(&one);
  const int cpu = sched_getcpu();
  CPU_SET(cpu, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  for (size_t size : {2048, 4096, 8192, 32768}) {
    SCOPED_TRACE(size);
    slub::KmemCache* s = &slub::g_kmalloc_caches[slub::kmalloc_index(size)];
    ASSERT_NE(s->sheaf_cap, 0u);
    for (int i = 0; i < 10; ++i) slub_free(slub_malloc(size));  // the slot exists
    const uint64_t before = slub::per_cpu_ptr(s, cpu)->events;
    for (int i = 0; i < 1000; ++i) {
      void* p = slub_malloc(size);
      ASSERT_NE(p, nullptr);
      slub_free(p);
    }
    EXPECT_LE(slub::per_cpu_ptr(s, cpu)->events - before, 4u);
  }
}

}  // namespace
