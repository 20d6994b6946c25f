// SPDX-License-Identifier: MIT
// When the page allocator refuses memory: slabs fall back to the minimal order
// (ORDER_FALLBACK), allocation fails cleanly with ENOMEM, and everything works again after.
#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include <slub/slub.h>

#include "core/kmalloc.h"
#include "core/kmem_cache.h"
#include "mm/page_alloc.h"
#include "slub/slub_cache.h"

using namespace slub;

namespace {
struct NoInjection {
  ~NoInjection() { PageAlloc::inject_failures(0, 0); }
};
}  // namespace

TEST(Oom, NewSlabFallsBackToTheMinimalOrder) {
  NoInjection guard;
  kmem_cache* c = kmem_cache_create("oom-fallback", 2048, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  auto* s = reinterpret_cast<KmemCache*>(c);
  ASSERT_GT(s->order, s->min_order) << "needs a cache whose preferred order is above its minimum";
  PageAlloc::inject_failures(1, -1);  // nothing above order 0
  slub_bind_vcpu(40);
  std::vector<void*> objs;
  for (int i = 0; i < 10; ++i) {
    void* p = kmem_cache_alloc(c);
    ASSERT_NE(p, nullptr);
    PageDesc* d = PageMap::desc_of(p);
    EXPECT_EQ(d->order, s->min_order);
    EXPECT_EQ(d->ctrs().objects(), s->min_objects);
    objs.push_back(p);
  }
  PageAlloc::inject_failures(0, 0);
  for (void* p : objs) kmem_cache_free(c, p);
  slub_bind_vcpu(-1);
  kmem_cache_shrink(c);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(Oom, AllocationFailsWithEnomemAndRecovers) {
  NoInjection guard;
  kmem_cache* c = kmem_cache_create("oom-fail", 512, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  slub_bind_vcpu(41);
  PageAlloc::inject_failures(0, -1);
  errno = 0;
  EXPECT_EQ(kmem_cache_alloc(c), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(slub_malloc(200 * 1024), nullptr);  // a large run
  EXPECT_EQ(errno, ENOMEM);
  PageAlloc::inject_failures(0, 0);
  void* p = kmem_cache_alloc(c);
  ASSERT_NE(p, nullptr);
  void* q = slub_malloc(200 * 1024);
  ASSERT_NE(q, nullptr);
  slub_free(q);
  kmem_cache_free(c, p);
  slub_bind_vcpu(-1);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// Per-CPU state exists only for CPUs that ran allocator code.
TEST(Lazy, CpuAreasOnlyForCpusUsed) {
  const int before = nr_used_cpus();
  kmem_cache* c = kmem_cache_create("lazy", 64, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  for (int vcpu : {3001, 3002, 3001}) {
    slub_bind_vcpu(vcpu);
    kmem_cache_free(c, kmem_cache_alloc(c));
    slub_bind_vcpu(-1);
  }
  EXPECT_EQ(nr_used_cpus(), before + 2);
  EXPECT_EQ(g_cpu_area[3003].load(), nullptr);
  EXPECT_NE(g_cpu_area[3002].load(), nullptr);
  kmem_cache_shrink(c);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// A cache that cannot be made (its slot, with red zones, would exceed the largest slab) must
// not give back a per-CPU slot it never had: slot 0 belongs to the first kmalloc cache
// (kmalloc-16). Found by fuzz_cache.
TEST(Oom, FailedCreateLeavesOtherCachesSlotsAlone) {
  void* warm = slub_malloc(8);  // kmalloc-16 is open and owns slot 0
  errno = 0;
  EXPECT_EQ(kmem_cache_create("too-big", 1 << 20, 0, SLAB_RED_ZONE, nullptr), nullptr);
  kmem_cache* c = kmem_cache_create("after-failure", 8, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(reinterpret_cast<KmemCache*>(c)->cpu_off, g_kmalloc_caches[0].cpu_off);
  void* a = kmem_cache_alloc(c);
  void* b = slub_malloc(8);
  EXPECT_NE(PageMap::desc_of(a), PageMap::desc_of(b));  // separate slabs
  EXPECT_EQ(PageMap::desc_of(b)->cache, &g_kmalloc_caches[0]);
  kmem_cache_free(c, a);
  slub_free(b);
  slub_free(warm);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}
