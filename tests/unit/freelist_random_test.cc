// SLUB_FREELIST_RANDOM=1 (the kernel's CONFIG_SLAB_FREELIST_RANDOM): the objects of a new slab
// are handed out in a random order, each exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <vector>

#include <slub/slub.h>

#include "core/kmem_cache.h"
#include "mm/page_map.h"

namespace {
const bool g_env_set = [] { return setenv("SLUB_FREELIST_RANDOM", "1", 1) == 0; }();
}  // namespace

TEST(FreelistRandom, ObjectsOfASlabComeOutShuffledEachOnce) {
  ASSERT_TRUE(g_env_set);
  kmem_cache* c = kmem_cache_create("random-order", 64, 0, SLAB_NO_MERGE, nullptr);
  auto* s = reinterpret_cast<slub::KmemCache*>(c);
  ASSERT_NE(s->random_seq, nullptr);
  slub_bind_vcpu(90);
  std::vector<char*> objs;
  for (unsigned i = 0; i < s->objects; ++i) objs.push_back(static_cast<char*>(kmem_cache_alloc(c)));
  slub::PageDesc* slab = slub::PageMap::desc_of(objs[0]);
  std::set<char*> distinct(objs.begin(), objs.end());
  EXPECT_EQ(distinct.size(), objs.size());
  for (char* p : objs) EXPECT_EQ(slub::PageMap::desc_of(p), slab);  // one slab, all of it
  EXPECT_FALSE(std::is_sorted(objs.begin(), objs.end()));           // not in address order
  for (char* p : objs) kmem_cache_free(c, p);
  slub_bind_vcpu(-1);
  kmem_cache_shrink(c);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}
