// SPDX-License-Identifier: MIT
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
#include "test_util.h"

namespace {
const bool g_env_set = [] { return setenv("SLUB_FREELIST_RANDOM", "1", 1) == 0; }();
}  // namespace

// The classic mode: a new slab's objects come off its shuffled freelist.
TEST(FreelistRandom, ObjectsOfASlabComeOutShuffledEachOnce) {
  ASSERT_TRUE(g_env_set);
  kmem_cache* c = classic_cache("random-order", 64, SLAB_NO_MERGE);
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

// With sheaves: a refill from a new slab walks its shuffled freelist (no range of objects in
// address order), so the sheaf's objects come out in neither address order.
TEST(FreelistRandom, ASheafFromANewSlabComesOutShuffled) {
  ASSERT_TRUE(g_env_set);
  kmem_cache* c = kmem_cache_create("random-order-sheaf", 64, 0, SLAB_NO_MERGE, nullptr);
  auto* s = reinterpret_cast<slub::KmemCache*>(c);
  ASSERT_NE(s->random_seq, nullptr);
  ASSERT_EQ(s->sheaf_cap, 60u);
  slub_bind_vcpu(91);
  std::vector<char*> objs;
  for (unsigned i = 0; i < s->sheaf_cap; ++i)
    objs.push_back(static_cast<char*>(kmem_cache_alloc(c)));
  std::set<char*> distinct(objs.begin(), objs.end());
  EXPECT_EQ(distinct.size(), objs.size());
  slub::PageDesc* slab = slub::PageMap::desc_of(objs[0]);
  for (char* p : objs) EXPECT_EQ(slub::PageMap::desc_of(p), slab);  // the first refill: one slab
  EXPECT_FALSE(std::is_sorted(objs.begin(), objs.end()));
  EXPECT_FALSE(std::is_sorted(objs.rbegin(), objs.rend()));
  for (char* p : objs) kmem_cache_free(c, p);
  slub_bind_vcpu(-1);
  kmem_cache_shrink(c);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}
