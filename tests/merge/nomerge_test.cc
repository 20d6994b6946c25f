// SPDX-License-Identifier: MIT
// SLUB_NOMERGE=1 (the kernel's slub_nomerge) turns merging off.
#include <gtest/gtest.h>

#include <cstdlib>

#include <slub/slub.h>

namespace {
const bool g_env_set = [] { return setenv("SLUB_NOMERGE", "1", 1) == 0; }();
}  // namespace

TEST(NoMerge, EveryCacheStandsAlone) {
  ASSERT_TRUE(g_env_set);
  kmem_cache* a = kmem_cache_create("nomerge-a", 200, 0, 0, nullptr);
  kmem_cache* b = kmem_cache_create("nomerge-b", 200, 0, 0, nullptr);
  EXPECT_NE(a, b);
  kmem_cache_info i{};
  kmem_cache_get_info(a, &i);
  EXPECT_EQ(i.aliases, 0);
  kmem_cache_destroy(a);
  kmem_cache_destroy(b);
}
