// SPDX-License-Identifier: MIT
// NUMA: placement, node-local frees, the get_any_partial fallback order and
// remote_node_defrag_ratio, kmem_cache_alloc_node, per-node counts, and (without a virtual
// topology) the real topology from hwloc and the real placement of pages read back with
// move_pages(2).
//
// CTest runs this binary several times: under SLUB_TOPOLOGY with 4, 64 and 1024 virtual nodes
// (the Virtual* tests), and once on the real machine with SLUB_HWLOC=1 (the Real* tests); each
// group skips itself in the other setting.
#include <gtest/gtest.h>
#include <hwloc.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include <slub/slub.h>

#include "core/kmem_cache.h"
#include "mm/page_alloc.h"
#include "pal/topology.h"
#include "test_util.h"

using namespace slub;

namespace {

bool virtual_run() {
  return getenv("SLUB_TOPOLOGY") != nullptr;
}

kmem_cache_node_info node_info(kmem_cache* c, int node) {
  kmem_cache_node_info i{};
  EXPECT_EQ(kmem_cache_get_node_info(c, node, &i), 0);
  return i;
}

kmem_cache_info info(kmem_cache* c) {
  kmem_cache_info i{};
  kmem_cache_get_info(c, &i);
  return i;
}

unsigned objs_per_slab(kmem_cache* c) {
  return info(c).objs_per_slab;
}

// Leaves `slabs` partial slabs of `c` on `node`'s list: fills them with kmem_cache_alloc_node,
// frees all but one object of each, and flushes the CPU slabs (kmem_cache_shrink). Returns the
// objects kept.
std::vector<void*> make_partials(kmem_cache* c, int node, unsigned slabs) {
  const unsigned per = objs_per_slab(c);
  std::vector<void*> all;
  for (unsigned i = 0; i < slabs * per; ++i) {
    void* p = kmem_cache_alloc_node(c, node);
    EXPECT_NE(p, nullptr);
    EXPECT_EQ(slub_node_of(p), node);
    all.push_back(p);
  }
  std::vector<void*> kept;
  for (unsigned i = 0; i < all.size(); ++i) {
    if (i % per == 0)
      kept.push_back(all[i]);
    else
      kmem_cache_free(c, all[i]);
  }
  kmem_cache_shrink(c);
  return kept;
}

class Virtual : public testing::Test {
 protected:
  void SetUp() override {
    if (!virtual_run()) GTEST_SKIP() << "needs SLUB_TOPOLOGY";
    nodes_ = slub_nr_nodes();
    ASSERT_GE(nodes_, 2);
  }
  // Nodes to try: the first, the second, the middle and the last.
  std::vector<int> sample_nodes() const { return {0, 1, nodes_ / 2, nodes_ - 1}; }
  int nodes_ = 0;
};

}  // namespace

TEST(TopologySpec, ParsesAndRejects) {
  char err[128];
  // A fresh topology object cannot be made; check the parser on its error paths (which change
  // nothing) and one valid spec that restores the current one.
  EXPECT_EQ(Topology::set_virtual("nodes=0", err, sizeof err), -1);
  EXPECT_EQ(Topology::set_virtual("nodes=8,cpus=4", err, sizeof err), -1);
  EXPECT_EQ(Topology::set_virtual("nodes=2000,cpus=4096", err, sizeof err), -1);
  EXPECT_EQ(Topology::set_virtual("cpus=5000", err, sizeof err), -1);
  EXPECT_EQ(Topology::set_virtual("nodes=4,distance=20:10", err, sizeof err), -1);
  EXPECT_EQ(Topology::set_virtual("nodes=4,distance=10", err, sizeof err), -1);
  EXPECT_STREQ(err, "distance must be LOCAL:REMOTE, as 10:20");
  EXPECT_EQ(Topology::set_virtual("nodes=4,color=red", err, sizeof err), -1);
  EXPECT_EQ(Topology::set_virtual("nodes=4x", err, sizeof err), -1);
  errno = 0;
  EXPECT_EQ(slub_set_topology("nodes=-1"), -1);
  EXPECT_EQ(errno, EINVAL);
  if (virtual_run()) {
    EXPECT_EQ(slub_set_topology(getenv("SLUB_TOPOLOGY")), 0);
    EXPECT_TRUE(Topology::is_virtual());
  }
}

TEST_F(Virtual, CpusAreSpreadInBlocksAndDistancesFollowTheSpec) {
  const int per = (Topology::nr_cpus() + nodes_ - 1) / nodes_;
  for (int cpu = 0; cpu < Topology::nr_cpus(); ++cpu)
    ASSERT_EQ(slub_cpu_node(cpu), (cpu / per) % nodes_) << cpu;
  for (int a : sample_nodes()) {
    EXPECT_EQ(slub_node_distance(a, a), 10);
    EXPECT_EQ(Topology::nearest(a, 0), a);
    // nearest() visits every node once, never getting closer.
    std::vector<bool> seen(nodes_);
    int last = 0;
    for (int k = 0; k < nodes_; ++k) {
      const int m = Topology::nearest(a, k);
      ASSERT_FALSE(seen[m]) << "node " << m << " twice from " << a;
      seen[m] = true;
      EXPECT_GE(slub_node_distance(a, m), last);
      last = slub_node_distance(a, m);
    }
  }
  EXPECT_EQ(slub_node_distance(0, nodes_), -1);
}

TEST_F(Virtual, AllocationsComeFromTheCpusNode) {
  kmem_cache* c = kmem_cache_create("numa-place", 96, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  for (int node : sample_nodes()) {
    on_vcpu(cpu_of_node(node), [&] {
      std::vector<void*> objs;
      for (unsigned i = 0; i < 3 * objs_per_slab(c); ++i) objs.push_back(kmem_cache_alloc(c));
      for (void* p : objs) ASSERT_EQ(slub_node_of(p), node);
      void* m = slub_malloc(200);       // the kmalloc caches too
      void* big = slub_malloc(100000);  // and large blocks
      EXPECT_EQ(slub_node_of(m), node);
      EXPECT_EQ(slub_node_of(big), node);
      slub_free(m);
      slub_free(big);
      for (void* p : objs) kmem_cache_free(c, p);
    });
    EXPECT_GT(node_info(c, node).nr_slabs, 0u);
  }
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// A CPU of another node frees all but one object of each slab: they go back to their own
// node's slabs (sheaves never take another node's objects; the classic mode frees them to
// their slab anyway). Run for both modes.
void frees_go_back_to_their_own_node(kmem_cache* c, int nodes) {
  ASSERT_NE(c, nullptr);
  const int a = 1, b = nodes - 1;
  const unsigned per = objs_per_slab(c);
  std::vector<void*> objs;
  on_vcpu(cpu_of_node(a), [&] {
    for (unsigned i = 0; i < 6 * per; ++i) objs.push_back(kmem_cache_alloc(c));
  });
  std::set<uintptr_t> slabs;  // one object of each slab is kept
  const uintptr_t slab_bytes = uintptr_t{4096} << info(c).order;
  std::vector<void*> kept;
  on_vcpu(cpu_of_node(b), [&] {
    for (void* p : objs) {
      if (slabs.insert(reinterpret_cast<uintptr_t>(p) & ~(slab_bytes - 1)).second)
        kept.push_back(p);
      else
        kmem_cache_free(c, p);
    }
  });
  kmem_cache_shrink(c);  // the per-CPU slabs, partials and sheaves go back to their nodes
  const kmem_cache_node_info ia = node_info(c, a), ib = node_info(c, b);
  EXPECT_EQ(ia.nr_slabs, slabs.size());
  EXPECT_EQ(ia.nr_partial, slabs.size());
  EXPECT_EQ(ia.partial_free, slabs.size() * per - kept.size());
  EXPECT_EQ(ib.nr_slabs, 0u);
  EXPECT_EQ(ib.nr_partial, 0u);
  for (void* p : kept) kmem_cache_free(c, p);
  kmem_cache_shrink(c);
  EXPECT_EQ(node_info(c, a).nr_slabs, 0u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST_F(Virtual, FreesGoBackToTheObjectsOwnNode) {
  frees_go_back_to_their_own_node(kmem_cache_create("numa-free", 256, 0, 0, nullptr), nodes_);
}

TEST_F(Virtual, FreesGoBackToTheObjectsOwnNodeClassic) {
  frees_go_back_to_their_own_node(classic_cache("numa-free-classic", 256), nodes_);
}

TEST_F(Virtual, AllocNodeGivesThatNodeFromAnyCpu) {
  kmem_cache* c = kmem_cache_create("numa-alloc-node", 64, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  on_vcpu(cpu_of_node(0), [&] {
    void* local = kmem_cache_alloc(c);  // the CPU slab is on node 0
    EXPECT_EQ(slub_node_of(local), 0);
    for (int node : sample_nodes()) {
      void* p = kmem_cache_alloc_node(c, node);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(slub_node_of(p), node);
      void* m = slub_malloc_node(48, node);
      void* big = slub_malloc_node(300000, node);
      EXPECT_EQ(slub_node_of(m), node);
      EXPECT_EQ(slub_node_of(big), node);
      slub_free(m);
      slub_free(big);
      kmem_cache_free(c, p);
    }
    kmem_cache_free(c, local);
    void* any = kmem_cache_alloc_node(c, SLUB_NO_NODE);
    EXPECT_NE(any, nullptr);
    kmem_cache_free(c, any);
    errno = 0;
    EXPECT_EQ(kmem_cache_alloc_node(c, nodes_), nullptr);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(slub_malloc_node(8, -7), nullptr);
  });
  uint64_t stats[NR_SLUB_STAT_ITEMS];
  cache_stats(reinterpret_cast<KmemCache*>(c), stats);
  EXPECT_GE(stats[ALLOC_NODE_MISMATCH], 1u);  // the CPU slab was on the wrong node
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// The kernel's get_any_partial: a CPU whose node has no partial slab takes one from the nearest
// node that keeps more than min_partial of them, before it makes a new slab.
TEST_F(Virtual, MissTakesTheNearestNodeWithSpareSlabs) {
  kmem_cache* c = kmem_cache_create("numa-fallback", 128, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  const unsigned min_partial = reinterpret_cast<KmemCache*>(c)->min_partial;
  const int local = nodes_ / 2;
  const int near = Topology::nearest(local, 1), next = Topology::nearest(local, 2);
  ASSERT_LE(slub_node_distance(local, near), slub_node_distance(local, next));
  // `near` keeps exactly min_partial partial slabs (not raided), `next` more.
  std::vector<void*> kept = make_partials(c, near, min_partial);
  std::vector<void*> more = make_partials(c, next, min_partial + 3);
  kept.insert(kept.end(), more.begin(), more.end());
  ASSERT_EQ(node_info(c, near).nr_partial, min_partial);
  ASSERT_EQ(node_info(c, next).nr_partial, min_partial + 3);
  ASSERT_EQ(kmem_cache_set_remote_node_defrag_ratio(c, 100), 100);  // the default
  int got = -1;
  on_vcpu(cpu_of_node(local), [&] {
    // 23 misses in 1024 skip the remote search (the kernel's cycle-counter test): then the
    // object comes from a new local slab. Retry a few times from a clean CPU.
    for (int attempt = 0; attempt < 20 && got != next; ++attempt) {
      void* p = kmem_cache_alloc(c);
      got = slub_node_of(p);
      EXPECT_TRUE(got == next || got == local) << got;
      kmem_cache_free(c, p);
      kmem_cache_shrink(c);
    }
  });
  EXPECT_EQ(got, next);
  EXPECT_EQ(node_info(c, near).nr_partial, min_partial);  // left alone

  // Ratio 0: never take a remote slab; the miss makes a new local one.
  EXPECT_EQ(kmem_cache_set_remote_node_defrag_ratio(c, 0), 100);
  on_vcpu(cpu_of_node(local), [&] {
    for (int i = 0; i < 50; ++i) {
      void* p = kmem_cache_alloc(c);
      EXPECT_EQ(slub_node_of(p), local);
      kmem_cache_free(c, p);
      kmem_cache_shrink(c);
    }
  });
  EXPECT_EQ(kmem_cache_set_remote_node_defrag_ratio(c, 101), -1);
  for (void* p : kept) kmem_cache_free(c, p);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST_F(Virtual, NearerNodeWinsWhenBothHaveSpareSlabs) {
  kmem_cache* c = kmem_cache_create("numa-order", 128, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  const unsigned min_partial = reinterpret_cast<KmemCache*>(c)->min_partial;
  const int local = 0;
  const int near = Topology::nearest(local, 1), far = Topology::nearest(local, nodes_ - 1);
  std::vector<void*> kept = make_partials(c, far, min_partial + 2);
  std::vector<void*> k2 = make_partials(c, near, min_partial + 2);
  kept.insert(kept.end(), k2.begin(), k2.end());
  int got = -1;
  on_vcpu(cpu_of_node(local), [&] {
    for (int attempt = 0; attempt < 20 && got != near; ++attempt) {
      void* p = kmem_cache_alloc(c);
      got = slub_node_of(p);
      EXPECT_TRUE(got == near || got == local) << got;
      kmem_cache_free(c, p);
      kmem_cache_shrink(c);
    }
  });
  EXPECT_EQ(got, near);
  for (void* p : kept) kmem_cache_free(c, p);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST_F(Virtual, NodeCountsAddUpToTheCacheCounts) {
  kmem_cache* c = kmem_cache_create("numa-counts", 512, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  std::vector<void*> kept;
  for (int node : sample_nodes()) {
    std::vector<void*> k = make_partials(c, node, 2);
    kept.insert(kept.end(), k.begin(), k.end());
  }
  kmem_cache_info total{};
  kmem_cache_get_info(c, &total);
  size_t slabs = 0, partial = 0, objs = 0;
  for (int n = 0; n < nodes_; ++n) {
    const kmem_cache_node_info i = node_info(c, n);
    slabs += i.nr_slabs;
    partial += i.nr_partial;
    objs += i.total_objs;
  }
  EXPECT_EQ(slabs, total.nr_slabs);
  EXPECT_EQ(partial, total.nr_partial);
  EXPECT_EQ(objs, total.total_objs);
  EXPECT_EQ(total.active_objs, kept.size());
  kmem_cache_node_info bad;
  EXPECT_EQ(kmem_cache_get_node_info(c, nodes_, &bad), -1);
  for (void* p : kept) kmem_cache_free(c, p);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// ---- the real machine ----

TEST(Real, TopologyIsHwlocs) {
  if (virtual_run()) GTEST_SKIP() << "real topology only";
  void* p = slub_malloc(64);  // the allocator is up, hwloc has run (SLUB_HWLOC=1)
  slub_free(p);
  hwloc_topology_t t;
  ASSERT_EQ(hwloc_topology_init(&t), 0);
  hwloc_topology_set_flags(t, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
  ASSERT_EQ(hwloc_topology_load(t), 0);
  const int nn = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  ASSERT_GE(nn, 1);
  EXPECT_EQ(Topology::hwloc_nodes(), nn) << "hwloc did not drive the topology";
  EXPECT_FALSE(Topology::is_virtual());
  int max_id = 0;
  for (int i = 0; i < nn; ++i) {
    hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i);
    max_id = std::max(max_id, static_cast<int>(node->os_index));
    unsigned cpu;
    hwloc_bitmap_foreach_begin(cpu, node->cpuset) {
      EXPECT_EQ(slub_cpu_node(static_cast<int>(cpu)), static_cast<int>(node->os_index));
    }
    hwloc_bitmap_foreach_end();
  }
  EXPECT_GE(slub_nr_nodes(), max_id + 1);
  EXPECT_EQ(slub_node_distance(0, 0), 10);
  hwloc_topology_destroy(t);
}

// Reads back where the kernel placed a slab's pages and a large block's, and compares with the
// node recorded in their descriptors.
TEST(Real, PagesAreOnTheNodeTheirDescriptorSays) {
  if (virtual_run()) GTEST_SKIP() << "real placement only";
  kmem_cache* c = kmem_cache_create("numa-real", 1024, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  std::vector<void*> objs, bigs;
  for (int node = 0; node < slub_nr_nodes(); ++node) {
    for (int i = 0; i < 16; ++i) {
      void* o = kmem_cache_alloc_node(c, node);
      if (o == nullptr) break;  // a possible node without memory
      memset(o, 1, 1024);       // touch: a page is placed when first written
      objs.push_back(o);
    }
    if (void* big = slub_malloc_node(64 << 10, node)) {
      memset(big, 1, 64 << 10);
      bigs.push_back(big);
    }
  }
  ASSERT_FALSE(objs.empty());
  std::vector<void*> all = objs;
  all.insert(all.end(), bigs.begin(), bigs.end());
  std::vector<void*> pages;
  for (void* o : all)
    pages.push_back(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(o) & ~uintptr_t{4095}));
  std::vector<int> status(pages.size(), -1);
  ASSERT_EQ(syscall(SYS_move_pages, 0, pages.size(), pages.data(), nullptr, status.data(), 0), 0)
      << strerror(errno);
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_GE(status[i], 0) << "page not present: " << -status[i];
    EXPECT_EQ(status[i], slub_node_of(all[i])) << "block " << all[i];
  }
  for (void* o : objs) kmem_cache_free(c, o);
  for (void* b : bigs) slub_free(b);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}
