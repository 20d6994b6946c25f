// SPDX-License-Identifier: MIT
// One workload on one CPU whose sheaf counters are exact, shared by the test of the rseq
// sections on a real pinned CPU (tests/func/rseq_test.cc) and the test of the locked paths on
// a virtual CPU (tests/unit/stats_test.cc): the fast paths count nothing and every slow path
// counts what it did, so both must give the same numbers.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include <slub/slub.h>
#include <slub/stats.h>

namespace sheaf_counters {

inline std::vector<uint64_t> stats_of(kmem_cache* c) {
  std::vector<uint64_t> v(NR_SLUB_STAT_ITEMS);
  kmem_cache_get_stats(c, v.data());
  return v;
}

// `c`: a fresh cache of 64-byte objects (64 a slab, sheaves of 60), used by no other thread.
// 200 allocations refill at allocations 1, 61, 121 and 181, 60 objects each, from 4 new slabs;
// 200 frees fill the main sheaf (40 left) at free 20, then free 21 makes a spare and swaps,
// frees 81 and 141 give the full spare to the barn and swap with a new one.
inline void allocate_and_free(kmem_cache* c) {
  ASSERT_EQ(kmem_cache_sheaf_capacity(c), 60u);
  std::vector<void*> objs;
  for (int i = 0; i < 200; ++i) objs.push_back(kmem_cache_alloc(c));
  auto s = stats_of(c);
  EXPECT_EQ(s[ALLOC_SLOWPATH], 4u);
  EXPECT_EQ(s[SHEAF_REFILL], 240u);
  EXPECT_EQ(s[ALLOC_SLAB], 4u);
  EXPECT_EQ(s[BARN_GET_FAIL], 4u);
  EXPECT_EQ(s[ALLOC_FASTPATH], 0u);
  for (void* p : objs) kmem_cache_free(c, p);
  s = stats_of(c);
  EXPECT_EQ(s[FREE_SLOWPATH], 3u);
  EXPECT_EQ(s[SHEAF_SWAP], 3u);
  EXPECT_EQ(s[SHEAF_ALLOC], 3u);
  EXPECT_EQ(s[BARN_PUT], 2u);
  EXPECT_EQ(s[SHEAF_FLUSH], 0u);
  EXPECT_EQ(s[FREE_FASTPATH], 0u);
  EXPECT_EQ(s[FREE_REMOTE], 0u);
  kmem_cache_queue_info q{};
  kmem_cache_get_queue_info(c, &q);
  EXPECT_EQ(q.parked_node, 120u);  // two full sheaves in the barn
  // A full main sheaf and a full spare, and the CPU slab's 16 objects never used.
  EXPECT_EQ(q.parked_cpu, 136u);
}

// Then, from any CPU: shrink gives every sheaf's objects back and frees the 4 slabs.
inline void shrink_and_destroy(kmem_cache* c) {
  kmem_cache_shrink(c);
  const auto s = stats_of(c);
  EXPECT_EQ(s[SHEAF_FLUSH], 240u);
  EXPECT_EQ(s[FREE_SLAB], 4u);
  EXPECT_EQ(s[SHEAF_FREE], 3u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

}  // namespace sheaf_counters
