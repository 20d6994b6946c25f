// SPDX-License-Identifier: MIT
// SLUB_DEBUG applied to kmalloc caches at start-up, through the environment, as a user would:
// the requested size is kept, so a write past it into the class's slack is caught.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <slub/slub.h>

#include "core/kmalloc.h"

namespace {
// Runs before main, hence before the allocator reads its environment.
const bool g_env_set = [] { return setenv("SLUB_DEBUG", "FZPU,kmalloc-2560", 1) == 0; }();
}  // namespace

TEST(KmallocDebug, OnlyTheSelectedCacheIsDebugged) {
  ASSERT_TRUE(g_env_set);
  void* warm = slub_malloc(8);  // initialises the allocator
  const auto& s = slub::g_kmalloc_caches[slub::kmalloc_index(2200)];
  EXPECT_STREQ(s.name, "kmalloc-2560");
  EXPECT_TRUE(s.is_debug());
  EXPECT_NE(s.orig_off, 0u);
  EXPECT_FALSE(slub::g_kmalloc_caches[slub::kmalloc_index(64)].is_debug());
  slub_free(warm);
}

TEST(KmallocDebug, WritePastTheRequestedSizeIsCaught) {
  auto* p = static_cast<char*>(slub_malloc(2200));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(slub_malloc_usable_size(p), 2200u);  // the slack is not the user's
  memset(p, 'A', 2201);
  const long before = slub_debug_errors();
  testing::internal::CaptureStderr();
  slub_free(p);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(slub_debug_errors(), before + 1);
  EXPECT_NE(err.find("BUG kmalloc-2560: kmalloc Redzone overwritten"), std::string::npos) << err;
  EXPECT_NE(err.find("Object at"), std::string::npos) << err;  // not freed: quarantined
}

TEST(KmallocDebug, CallocAndReallocKeepTheRedzone) {
  auto* p = static_cast<char*>(slub_calloc(1, 2300));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 2300; ++i) ASSERT_EQ(p[i], 0);
  p = static_cast<char*>(slub_realloc(p, 2250));  // moves: the new size is kept exactly
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(slub_malloc_usable_size(p), 2250u);
  const long before = slub_debug_errors();
  slub_free(p);
  EXPECT_EQ(slub_debug_errors(), before);
}
