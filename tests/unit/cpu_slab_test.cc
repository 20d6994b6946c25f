// SPDX-License-Identifier: MIT
// The per-CPU layer and the partial lists: fast paths, remote frees adopting full slabs,
// min_partial, flushing against concurrent fast paths, virtual CPUs.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include <slub/slub.h>

#include "core/kmem_cache.h"
#include "slub/slub_cache.h"
#include "test_util.h"

using namespace slub;

namespace {

KmemCache* K(kmem_cache* c) {
  return reinterpret_cast<KmemCache*>(c);
}

kmem_cache_info info(kmem_cache* c) {
  kmem_cache_info i{};
  kmem_cache_get_info(c, &i);
  return i;
}

}  // namespace

TEST(CpuSlab, VirtualCpuBinding) {
  on_vcpu(4095, [] { EXPECT_EQ(slub_current_cpu(), 4095); });
  on_vcpu(17, [] { EXPECT_EQ(slub_current_cpu(), 17); });
  EXPECT_EQ(slub_bind_vcpu(4096), -1);
  EXPECT_EQ(slub_bind_vcpu(-2), -1);
}

TEST(CpuSlab, AllocationFillsTheActiveSlabThenTakesANewOne) {
  kmem_cache* c = classic_cache("unit-active", 128);
  ASSERT_NE(c, nullptr);
  KmemCache* s = K(c);
  on_vcpu(3, [&] {
    std::vector<void*> objs;
    void* first = kmem_cache_alloc(c);
    objs.push_back(first);
    KmemCacheCpu* cpu = per_cpu_ptr(s, 3);
    ASSERT_NE(cpu, nullptr);
    PageDesc* slab = cpu->slab;
    ASSERT_NE(slab, nullptr);
    EXPECT_EQ(PageMap::desc_of(first), slab);
    EXPECT_TRUE(slab->ctrs().frozen());
    EXPECT_EQ(slab->ctrs().inuse(), slab->ctrs().objects());  // all objects went to the CPU
    for (unsigned i = 1; i < s->objects; ++i) objs.push_back(kmem_cache_alloc(c));
    EXPECT_EQ(cpu->slab, slab);  // exactly one slab's worth so far
    objs.push_back(kmem_cache_alloc(c));
    EXPECT_NE(cpu->slab, slab);  // the old one is full: unfrozen and on no list
    EXPECT_FALSE(slab->ctrs().frozen());
    EXPECT_EQ(info(c).nr_partial, 0u);
    std::set<void*> distinct(objs.begin(), objs.end());
    EXPECT_EQ(distinct.size(), objs.size());
    for (void* p : objs) kmem_cache_free(c, p);
  });
  EXPECT_GT(kmem_cache_shrink(c), 0);
  EXPECT_EQ(info(c).nr_slabs, 0u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(CpuSlab, RemoteFreeIntoAFullSlabIsAdoptedByTheFreeingCpu) {
  kmem_cache* c = classic_cache("unit-remote", 256);
  ASSERT_NE(c, nullptr);
  KmemCache* s = K(c);
  std::vector<void*> objs;
  PageDesc* full = nullptr;
  on_vcpu(10, [&] {
    for (unsigned i = 0; i < s->objects + 1; ++i) objs.push_back(kmem_cache_alloc(c));
    full = PageMap::desc_of(objs[0]);
    EXPECT_NE(per_cpu_ptr(s, 10)->slab, full);
  });
  on_vcpu(11, [&] {
    kmem_cache_free(c, objs[0]);  // full -> partial: this CPU adopts it
    KmemCacheCpu* cpu = per_cpu_ptr(s, 11);
    ASSERT_NE(cpu, nullptr);
    EXPECT_EQ(cpu->partial, full);
    EXPECT_FALSE(full->on_node_partial);
    for (unsigned i = 1; i < s->objects; ++i) kmem_cache_free(c, objs[i]);
    EXPECT_EQ(full->ctrs().inuse(), 0u);  // empty, still on the CPU partial chain
    EXPECT_EQ(cpu->partial, full);
  });
  // The remaining object lives in vcpu 10's active slab: a remote free there is FREE_FROZEN.
  PageDesc* active = PageMap::desc_of(objs.back());
  const unsigned before = active->ctrs().inuse();
  on_vcpu(12, [&] { kmem_cache_free(c, objs.back()); });
  EXPECT_EQ(active->ctrs().inuse(), before - 1);
  EXPECT_NE(active->slab_freelist(), nullptr);  // waiting on the slab freelist for its owner
  EXPECT_EQ(flush_all(s), 2);                   // vcpu 10 (active) and 11 (partial)
  EXPECT_EQ(info(c).nr_cpu_slabs, 0u);
  // Both slabs are empty now: kept as partial (the node has fewer than min_partial).
  EXPECT_EQ(info(c).nr_partial, 2u);
  EXPECT_EQ(kmem_cache_shrink(c), 2);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(CpuSlab, NodeKeepsMinPartialEmptySlabsAndFreesTheRest) {
  kmem_cache* c = classic_cache("unit-minpartial", 512);
  ASSERT_NE(c, nullptr);
  KmemCache* s = K(c);
  const unsigned slabs = 12;
  std::vector<void*> objs;
  on_vcpu(20, [&] {
    for (unsigned i = 0; i < slabs * s->objects; ++i) objs.push_back(kmem_cache_alloc(c));
  });
  EXPECT_GE(info(c).nr_slabs, slabs);
  // Free from a CPU with cpu partials: the first free of each full slab adopts it; the chain
  // drains to the node when it reaches cpu_partial_slabs.
  on_vcpu(21, [&] {
    for (void* p : objs) kmem_cache_free(c, p);
  });
  flush_all(s);
  const kmem_cache_info i = info(c);
  EXPECT_EQ(i.active_objs, 0u);
  EXPECT_EQ(i.nr_slabs, i.nr_partial);
  EXPECT_LE(i.nr_partial, s->min_partial + s->cpu_partial_slabs);
  EXPECT_GE(i.nr_partial, s->min_partial);
  kmem_cache_shrink(c);
  EXPECT_EQ(info(c).nr_slabs, 0u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(CpuSlab, DestroyOfABusyCacheFailsAndKeepsItUsable) {
  kmem_cache* c = kmem_cache_create("unit-busy", 64, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  void* p = kmem_cache_alloc(c);
  errno = 0;
  EXPECT_EQ(kmem_cache_destroy(c), -1);
  EXPECT_EQ(errno, EBUSY);
  void* q = kmem_cache_alloc(c);
  EXPECT_NE(q, nullptr);
  kmem_cache_free(c, p);
  kmem_cache_free(c, q);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// Two threads share one vCPU (as after preemption or migration) while a third flushes the
// slot again and again: every object must stay unique and intact, and all slabs must come
// back at the end.
TEST(CpuSlab, FlushRacesWithFastPathsOnTheSameSlot) {
  kmem_cache* c = kmem_cache_create("unit-race", 48, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  KmemCache* s = K(c);
  std::atomic<bool> stop{false};
  std::atomic<long> corrupt{0};
  auto worker = [&](int vcpu, uint64_t tag) {
    slub_bind_vcpu(vcpu);
    std::vector<uint64_t*> live;
    for (int round = 0; round < 100000; ++round) {
      for (int i = 0; i < 8; ++i) {
        auto* p = static_cast<uint64_t*>(kmem_cache_alloc(c));
        for (int w = 0; w < 6; ++w) p[w] = tag ^ reinterpret_cast<uint64_t>(p);
        live.push_back(p);
      }
      while (live.size() > 100) {
        uint64_t* p = live[round % live.size()];
        live[round % live.size()] = live.back();
        live.pop_back();
        for (int w = 0; w < 6; ++w)
          if (p[w] != (tag ^ reinterpret_cast<uint64_t>(p))) corrupt++;
        kmem_cache_free(c, p);
      }
    }
    for (uint64_t* p : live) kmem_cache_free(c, p);
    slub_bind_vcpu(-1);
  };
  long flushes = 0;
  std::thread flusher([&] {
    while (!stop.load()) {
      flushes += flush_all(s);
      std::this_thread::yield();
    }
  });
  std::thread a(worker, 5, 0x1111), b(worker, 5, 0x2222), d(worker, 6, 0x3333);
  a.join();
  b.join();
  d.join();
  stop = true;
  flusher.join();
  EXPECT_EQ(corrupt.load(), 0);
  EXPECT_GT(flushes, 0);
  flush_all(s);
  EXPECT_EQ(info(c).active_objs, 0u);
  kmem_cache_shrink(c);
  EXPECT_EQ(info(c).nr_slabs, 0u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(CpuSlab, IdleFlushHandsBackOnlyUnusedSlots) {
  kmem_cache* c = classic_cache("unit-idle", 96);
  ASSERT_NE(c, nullptr);
  KmemCache* s = K(c);
  void* p = nullptr;
  on_vcpu(30, [&] { p = kmem_cache_alloc(c); });
  slub_flush_idle();  // records the tid
  ASSERT_NE(per_cpu_ptr(s, 30)->slab, nullptr);
  on_vcpu(30, [&] { kmem_cache_free(c, kmem_cache_alloc(c)); });  // used again
  slub_flush_idle();
  EXPECT_NE(per_cpu_ptr(s, 30)->slab, nullptr);  // it was used since the last pass
  slub_flush_idle();
  EXPECT_EQ(per_cpu_ptr(s, 30)->slab, nullptr);  // idle for a whole pass: flushed
  kmem_cache_free(c, p);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// The same with sheaves: their fast paths count nothing, so a pass sees use as a changed main
// sheaf (its count or newest object); a slot idle for a whole pass gives back its sheaves too.
TEST(CpuSlab, IdleFlushHandsBackOnlyUnusedSheaves) {
  if (!sheaves_enabled()) GTEST_SKIP() << "SLUB_SHEAVES=0";
  kmem_cache* c = kmem_cache_create("unit-idle-sheaf", 96, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  KmemCache* s = K(c);
  ASSERT_NE(s->sheaf_cap, 0u);
  void* p[3] = {};
  on_vcpu(30, [&] { p[0] = kmem_cache_alloc(c); });
  slub_flush_idle();  // records the activity
  ASSERT_NE(pcs_ptr(s, 30)->count(s->sheaf_cap), 0u);
  on_vcpu(30, [&] { p[1] = kmem_cache_alloc(c); });  // used again
  slub_flush_idle();
  EXPECT_NE(pcs_ptr(s, 30)->count(s->sheaf_cap), 0u);  // it was used since the last pass
  on_vcpu(30, [&] { kmem_cache_free(c, p[1]); });      // and again
  slub_flush_idle();
  EXPECT_NE(pcs_ptr(s, 30)->count(s->sheaf_cap), 0u);
  slub_flush_idle();
  EXPECT_EQ(pcs_ptr(s, 30)->count(s->sheaf_cap), 0u);  // idle for a whole pass: flushed
  EXPECT_EQ(per_cpu_ptr(s, 30)->slab, nullptr);
  EXPECT_EQ(per_cpu_ptr(s, 30)->spare, nullptr);
  kmem_cache_free(c, p[0]);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

namespace {

// The rseq sections find a CPU's main sheaf at g_pcs_base + cpu * 1 MiB for any CPU id the
// kernel shows, so the reservation must cover the machine's possible CPUs even when a virtual
// topology names fewer (run also as unit.cpu_slab.one_cpu_topology, SLUB_TOPOLOGY=cpus=1).
TEST(CpuSlab, CpuAreasCoverEveryRealCpu) {
  void* p = slub_malloc(64);  // started up
  slub_free(p);
  if (!sheaves_enabled()) GTEST_SKIP() << "SLUB_SHEAVES=0: no reservation of CPU areas";
  ASSERT_NE(g_pcs_base, nullptr) << "sheaves on, yet no reservation of CPU areas";
  EXPECT_GE(pcs_cpus(), Topology::possible_cpus());
  EXPECT_GE(pcs_cpus(), Topology::nr_cpus());
}

}  // namespace
