// SPDX-License-Identifier: MIT
// When the page allocator refuses memory: slabs fall back to the minimal order
// (ORDER_FALLBACK), allocation fails cleanly with ENOMEM, and everything works again after.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdio>
#include <string>
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

// Caches until every CPU area is full (each open cache has a slot in each) or the indices run
// out: the one that finds no room fails with ENOMEM and one line that says why (a full area
// failed silently once), and the caches already open still work. In a child, so that this process's
// areas stay as they were.
TEST(Oom, FullCpuAreasFailCreateWithOneLine) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    kmem_cache* first = nullptr;
    for (int i = 0; i < 4096; ++i) {
      char name[32];
      snprintf(name, sizeof name, "area-filler-%d", i);
      errno = 0;
      kmem_cache* c = kmem_cache_create(name, 64, 0, SLAB_NO_MERGE, nullptr);
      if (c == nullptr) {
        if (errno != ENOMEM) _exit(3);
        void* p = kmem_cache_alloc(first);  // an open cache is unharmed
        if (p == nullptr) _exit(4);
        kmem_cache_free(first, p);
        _exit(i > 500 ? 0 : 5);  // a few hundred caches fit
      }
      if (first == nullptr) first = c;
    }
    _exit(6);  // never full
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << err;
  // Which limit comes first: with sheaves (a slot and a sheaf per cache) the areas; without
  // them (SLUB_SHEAVES=0, 384 bytes a cache) the 2047 cache indices.
  EXPECT_TRUE(err.find("): no room for its per-CPU slot (") != std::string::npos ||
              err.find("caches already") != std::string::npos)
      << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}
