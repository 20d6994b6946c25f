// SPDX-License-Identifier: MIT
// Cache merging rules (the kernel's find_mergeable), aliases and reference counts.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include <slub/slub.h>

namespace {
void ctor(void* p) {
  std::memset(p, 0x42, 8);
}

std::string id_of(kmem_cache* c) {
  kmem_cache_info i{};
  kmem_cache_get_info(c, &i);
  return i.unique_id;
}
}  // namespace

TEST(Merge, CompatibleCachesShareOneCache) {
  kmem_cache* a = kmem_cache_create("merge-a", 200, 0, 0, nullptr);
  kmem_cache* b = kmem_cache_create("merge-b", 200, 0, 0, nullptr);
  kmem_cache* c = kmem_cache_create("merge-c", 196, 0, 0, nullptr);  // rounds to the same slot
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_STREQ(kmem_cache_name(b), "merge-a");  // the first name stays
  const char* names[4];
  EXPECT_EQ(kmem_cache_aliases(a, names, 4), 2);
  EXPECT_STREQ(names[0], "merge-b");
  EXPECT_STREQ(names[1], "merge-c");
  kmem_cache_info i{};
  kmem_cache_get_info(a, &i);
  EXPECT_EQ(i.aliases, 2);
  EXPECT_EQ(id_of(a), ":0000200");
  // Objects of either name come from the same slabs and free through either name.
  void* p = kmem_cache_alloc(b);
  kmem_cache_free(a, p);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
  EXPECT_EQ(kmem_cache_destroy(a), 0);
  void* q = kmem_cache_alloc(b);  // still alive: one reference left
  ASSERT_NE(q, nullptr);
  kmem_cache_free(b, q);
  EXPECT_EQ(kmem_cache_destroy(b), 0);
}

TEST(Merge, SlackOfAWordOrMoreKeepsCachesApart) {
  kmem_cache* a = kmem_cache_create("slack-a", 208, 0, 0, nullptr);
  kmem_cache* b = kmem_cache_create("slack-b", 200, 0, 0, nullptr);  // 8 bytes less: apart
  EXPECT_NE(a, b);
  kmem_cache_destroy(a);
  kmem_cache_destroy(b);
}

TEST(Merge, FlagsCtorUsercopyDebugAndRcuPreventMerging) {
  kmem_cache* base = kmem_cache_create("flags-base", 232, 0, 0, nullptr);
  kmem_cache* reclaim = kmem_cache_create("flags-reclaim", 232, 0, SLAB_RECLAIM_ACCOUNT, nullptr);
  kmem_cache* reclaim2 = kmem_cache_create("flags-reclaim2", 232, 0, SLAB_RECLAIM_ACCOUNT, nullptr);
  kmem_cache* with_ctor = kmem_cache_create("flags-ctor", 232, 0, 0, ctor);
  kmem_cache* user = kmem_cache_create_usercopy("flags-user", 232, 0, 0, 0, 16, nullptr);
  kmem_cache* debug = kmem_cache_create("flags-debug", 232, 0, SLAB_RED_ZONE, nullptr);
  kmem_cache* rcu = kmem_cache_create("flags-rcu", 232, 0, SLAB_TYPESAFE_BY_RCU, nullptr);
  kmem_cache* nomerge = kmem_cache_create("flags-nomerge", 232, 0, SLAB_NO_MERGE, nullptr);
  kmem_cache* later = kmem_cache_create("flags-later", 232, 0, 0, nullptr);
  EXPECT_NE(base, reclaim);
  EXPECT_EQ(reclaim, reclaim2);  // same merge-relevant flags
  EXPECT_EQ(id_of(reclaim), ":a-0000232");
  for (kmem_cache* c : {with_ctor, user, debug, rcu, nomerge}) EXPECT_NE(c, base);
  EXPECT_EQ(later, base);  // the unmergeable ones were not targets either
  EXPECT_EQ(id_of(with_ctor), "flags-ctor");
  for (kmem_cache* c : {base, reclaim, reclaim2, with_ctor, user, debug, rcu, nomerge, later})
    kmem_cache_destroy(c);
}

TEST(Merge, AlignmentMustHoldInTheExistingSlots) {
  kmem_cache* plain = kmem_cache_create("align-plain", 96, 0, 0, nullptr);
  kmem_cache* a32 = kmem_cache_create("align-32", 96, 32, 0, nullptr);  // 96 % 32 == 0: joins
  kmem_cache* a64 = kmem_cache_create("align-64", 96, 64, 0, nullptr);  // 96 % 64 != 0: apart
  EXPECT_EQ(plain, a32);
  EXPECT_NE(plain, a64);
  for (kmem_cache* c : {plain, a32, a64}) kmem_cache_destroy(c);
}

TEST(Merge, MallocCachesAreNotTargets) {
  kmem_cache* c = kmem_cache_create("like-kmalloc-64", 64, 0, 0, nullptr);
  void* p = slub_malloc(64);
  EXPECT_STRNE(kmem_cache_name(c), "kmalloc-64");
  slub_free(p);
  kmem_cache_destroy(c);
}

TEST(Merge, ZallocClearsTheLargestAliasedObject) {
  kmem_cache* small = kmem_cache_create("zalloc-small", 250, 0, 0, nullptr);
  kmem_cache* big = kmem_cache_create("zalloc-big", 256, 0, 0, nullptr);
  ASSERT_EQ(small, big);
  EXPECT_EQ(kmem_cache_size(small), 256u);
  auto* p = static_cast<unsigned char*>(kmem_cache_alloc(big));
  std::memset(p, 0xff, 256);
  kmem_cache_free(big, p);
  auto* q = static_cast<unsigned char*>(kmem_cache_zalloc(small));
  for (int i = 0; i < 256; ++i) ASSERT_EQ(q[i], 0) << i;
  kmem_cache_free(small, q);
  kmem_cache_destroy(small);
  kmem_cache_destroy(big);
}
