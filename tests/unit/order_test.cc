// SPDX-License-Identifier: MIT
// Slab sizing follows the kernel's formulas; expected values are the kernel's own
// (calculate_order with 4 KiB pages and slub_max_order 3, min_partial, cpu_partial).
#include <gtest/gtest.h>

#include "core/kmalloc.h"
#include "core/kmem_cache.h"
#include "slub/slub_cache.h"

using namespace slub;

struct OrderRow {
  size_t size;
  unsigned order4, order64, order4096;
};

TEST(Order, MatchesTheKernelForCpuCounts) {
  const OrderRow rows[] = {
      {8, 0, 0, 0},    {32, 0, 0, 0},   {64, 0, 0, 0},   {96, 0, 0, 1},
      {128, 0, 0, 1},  {192, 0, 1, 2},  {256, 0, 1, 2},  {512, 1, 2, 3},
      {1024, 2, 3, 3}, {2048, 3, 3, 3}, {4096, 3, 3, 3}, {8192, 3, 3, 3},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(calculate_order(r.size, 4), r.order4) << r.size;
    EXPECT_EQ(calculate_order(r.size, 64), r.order64) << r.size;
    EXPECT_EQ(calculate_order(r.size, 4096), r.order4096) << r.size;
  }
}

TEST(Order, MinPartialAndCpuPartialFollowTheKernel) {
  struct Row {
    size_t size;
    unsigned min_partial, cpu_partial, cpu_partial_slabs_4096;
  } rows[] = {{8, 5, 120, 1},   {64, 5, 120, 4}, {96, 5, 120, 3}, {256, 5, 52, 2},
              {1024, 5, 24, 2}, {4096, 6, 6, 2}, {8192, 6, 6, 3}};
  for (const auto& r : rows) {
    KmemCache s{};
    s.object_size = static_cast<uint32_t>(r.size);
    ASSERT_TRUE(calculate_sizes(&s, 4096));
    EXPECT_EQ(s.size, r.size);
    EXPECT_EQ(s.min_partial, r.min_partial) << r.size;
    EXPECT_EQ(s.cpu_partial, r.cpu_partial) << r.size;
    EXPECT_EQ(s.cpu_partial_slabs, r.cpu_partial_slabs_4096) << r.size;
  }
}

TEST(Sizes, FreePointerInTheMiddleUnlessTheObjectMustSurviveFree) {
  KmemCache s{};
  s.object_size = 64;
  ASSERT_TRUE(calculate_sizes(&s, 2));
  EXPECT_EQ(s.offset, 32u);
  EXPECT_EQ(s.size, 64u);

  KmemCache c{};
  c.object_size = 64;
  c.ctor = +[](void*) {};
  ASSERT_TRUE(calculate_sizes(&c, 2));
  EXPECT_EQ(c.offset, 64u);  // outside: the constructed state survives free
  EXPECT_EQ(c.size, 72u);

  KmemCache r{};
  r.object_size = 20;
  r.flags = SLAB_TYPESAFE_BY_RCU | SLAB_HWCACHE_ALIGN;
  ASSERT_TRUE(calculate_sizes(&r, 2));
  EXPECT_EQ(r.offset, 24u);
  EXPECT_EQ(r.align, 32u);  // the kernel's HWCACHE rule: 20 bytes get 32-byte alignment
  EXPECT_EQ(r.size, 32u);
}

TEST(Kmalloc, ClassesCoverEverySizeWithBoundedWaste) {
  for (size_t n = 0; n <= kKmallocMax; ++n) {
    const size_t cls = kKmallocSizes[kmalloc_index(n)];
    ASSERT_GE(cls, n);
    if (n > 32) ASSERT_LE(cls * 4, n * 5 + 4 * 16) << n;  // at most 25% (+rounding) waste
  }
}
