// SPDX-License-Identifier: MIT
// Signal handlers that allocate while their thread is inside an allocator slow path (which
// holds locks) must neither deadlock nor corrupt: the nested allocation is served from a
// private mapping and the nested free is deferred to the end of the outer call.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <slub/slub.h>

#include "core/reentry.h"
#include "slub/slub_cache.h"

namespace {

std::atomic<long> g_handled{0};
std::atomic<long> g_nested{0};
std::atomic<long> g_nested_frees{0};
std::atomic<long> g_bad{0};

// Objects allocated outside the handler, freed by it one per signal: when the signal lands in
// a slow path, that free is deferred and must be carried out when the slow path ends.
constexpr int kPool = 20000;
void* g_pool[kPool];
std::atomic<int> g_pool_next{0};

void handler(int) {
  const int saved = errno;
  if (slub::t_thread.slow_depth > 0) g_nested++;
  const int i = g_pool_next.fetch_add(1);
  if (i < kPool) {
    if (slub::t_thread.slow_depth > 0) g_nested_frees++;
    slub_free(g_pool[i]);
  }
  const size_t sizes[] = {24, 256, 3000, 50000};
  void* p[4];
  for (int i = 0; i < 4; ++i) {
    p[i] = slub_malloc(sizes[i]);
    if (p[i] == nullptr) {
      g_bad++;
      continue;
    }
    memset(p[i], i + 1, sizes[i]);
  }
  for (int i = 0; i < 4; ++i) {
    if (p[i] == nullptr) continue;
    const auto* b = static_cast<const unsigned char*>(p[i]);
    if (b[0] != i + 1 || b[sizes[i] - 1] != i + 1) g_bad++;
    slub_free(p[i]);
  }
  g_handled++;
  errno = saved;
}

}  // namespace

TEST(Reentry, SignalHandlersAllocateDuringSlowPaths) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);

  for (auto& p : g_pool) p = slub_malloc(200);
  std::atomic<bool> stop{false};
  std::atomic<long> corrupt{0};
  std::thread worker([&] {
    std::mt19937 rng(7);
    std::vector<std::pair<unsigned char*, size_t>> live;
    while (!stop.load(std::memory_order_relaxed)) {
      // Many slabs, freed in random order: most frees and many allocations take slow paths.
      for (int i = 0; i < 3000; ++i) {
        size_t n = (i % 50 == 0) ? 40000 + rng() % 30000 : 16 + rng() % 700;
        auto* p = static_cast<unsigned char*>(slub_malloc(n));
        memset(p, static_cast<int>(n & 0xff), n);
        live.emplace_back(p, n);
      }
      std::shuffle(live.begin(), live.end(), rng);
      for (auto& [p, n] : live) {
        if (p[0] != (n & 0xff) || p[n - 1] != (n & 0xff)) corrupt++;
        slub_free(p);
      }
      live.clear();
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         (g_nested.load() < 50 || g_nested_frees.load() < 20 || g_handled.load() < 2000)) {
    pthread_kill(worker.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  stop = true;
  worker.join();
  signal(SIGUSR1, SIG_DFL);
  EXPECT_EQ(corrupt.load(), 0);
  EXPECT_EQ(g_bad.load(), 0);
  EXPECT_GT(g_nested.load(), 0) << "no signal arrived inside a slow path: the test proved nothing";
  EXPECT_GT(g_nested_frees.load(), 0) << "no deferred free was exercised";
  for (int i = g_pool_next.load(); i < kPool; ++i) slub_free(g_pool[i]);
  std::printf("signals handled: %ld, inside a slow path: %ld (frees deferred: %ld)\n",
              g_handled.load(), g_nested.load(), g_nested_frees.load());
}

// A signal handler frees an object while its thread is inside a slow path (deferred), and the
// code it interrupted frees the same object too: the direct free poisons the object (a
// debug cache with F and P), so a list link kept in the object would be lost and the drain would
// follow the poison. The deferred free is kept out of the object: it reaches the cache and
// is reported as the double free it is, and the frees deferred beside it are not lost.
TEST(Reentry, ADeferredFreeSurvivesTheInterruptedCodesFreeOfTheSameObject) {
  kmem_cache* s =
      kmem_cache_create("reentry-poison", 64, 8, SLAB_CONSISTENCY_CHECKS | SLAB_POISON, nullptr);
  ASSERT_NE(s, nullptr);
  void* x = kmem_cache_alloc(s);
  void* y = kmem_cache_alloc(s);
  ASSERT_NE(x, nullptr);
  ASSERT_NE(y, nullptr);
  const long errors = slub_debug_errors();
  {
    slub::ReentryGuard in_a_slow_path;  // as a signal handler inside a slow path frees:
    kmem_cache_free(s, y);              // deferred
    kmem_cache_free(s, x);              // deferred
    --slub::t_thread.slow_depth;        // the interrupted code's own free of x, a direct one
    kmem_cache_free(s, x);
    ++slub::t_thread.slow_depth;
  }  // the deferred frees
  EXPECT_EQ(slub_debug_errors(), errors + 1) << "the second free of x, reported once";
  kmem_cache_info info{};
  ASSERT_EQ(kmem_cache_get_info(s, &info), 0);
  EXPECT_EQ(info.active_objs, 0u) << "y's deferred free was lost";
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}
