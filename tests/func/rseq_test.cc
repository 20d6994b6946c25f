// SPDX-License-Identifier: MIT
// The per-CPU fast paths as rseq critical sections (slub/slub_cache.h, pal/cpu_id.h): they must
// be on where the kernel has rseq, and stay correct while threads are preempted and migrated
// inside them and while other threads take their slots away (shrink, queue statistics, the
// flusher: each marks the slot busy and fences the slot's CPU). Every object carries a pattern
// of its owner while it is live, so an object handed out twice shows as a broken pattern.
// Run a second time with SLUB_RSEQ=0 (func.rseq_off.*): the compare-and-swap fast paths.
// No thread is bound to a virtual CPU (that turns rseq off for good) except in the last test.
#include <gtest/gtest.h>
#include <sched.h>
#include <slub/slub.h>
#include <slub/stats.h>
#include <sys/rseq.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../common/sheaf_counters.h"
#include "func_util.h"

namespace {

bool rseq_wanted() {
#if defined(__SANITIZE_THREAD__)
  return false;  // pal/cpu_id.cc: ThreadSanitizer builds use the compare-and-swap paths
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return false;
#endif
#endif
  const char* e = getenv("SLUB_RSEQ");
  return __rseq_size >= 8 && (e == nullptr || strcmp(e, "0") != 0);
}

// Moves the calling thread to CPU `k` of those it may use (a migration inside or between
// sections; the kernel restarts a section that was running).
void hop(int k) {
  cpu_set_t all, one;
  if (sched_getaffinity(0, sizeof all, &all) != 0) return;
  const int n = CPU_COUNT(&all);
  if (n < 2) return;
  int want = k % n;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &all)) continue;
    if (want-- == 0) {
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      sched_setaffinity(0, sizeof one, &one);
      return;
    }
  }
}

void unpin() {
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &all);
  sched_setaffinity(0, sizeof all, &all);
}

// The run without sheaves (func.classic.*): the sheaf cases skip there, and only there.
bool sheaves_off() {
  const char* e = std::getenv("SLUB_SHEAVES");
  return e != nullptr && std::strcmp(e, "0") == 0;
}

TEST(RseqFastPath, OnWhereTheKernelHasIt) {
  EXPECT_EQ(slub_fast_path_rseq(), rseq_wanted() ? 1 : 0);
}

// 4 threads (more than this machine's cores, so they are preempted) churn 64-byte objects of a
// cache and of malloc, hopping between CPUs, while a fifth thread keeps taking their slots:
// kmem_cache_shrink (flushes every CPU slab), kmem_cache_get_queue_info (freezes and restores
// every slot) and slub_flush_idle. With `bind_midway`, the thief also binds itself to a virtual
// CPU after a few rounds, which stops the rseq paths while the workers are in them.
struct ChurnResult {
  long broken, fails, thefts;
  size_t active_after;
  int validate_errors;
};

ChurnResult churn_with_thief(bool bind_midway) {
  ChurnResult r{};
  kmem_cache* s = kmem_cache_create("rseq-churn", 64, 0, SLAB_NO_MERGE, nullptr);
  if (s == nullptr) {
    r.fails = -1;
    return r;
  }
  std::atomic<bool> stop{false};
  std::atomic<long> broken{0}, fails{0}, thefts{0};
  std::atomic<bool> bound{false};
  std::thread thief([&] {
    while (!stop.load()) {
      kmem_cache_shrink(s);
      kmem_cache_queue_info q{};
      kmem_cache_get_queue_info(s, &q);
      slub_flush_idle();
      if (++thefts == 3 && bind_midway) {
        slub_bind_vcpu(5);  // rseq off, fenced, for good
        bound.store(true);
      }
      std::this_thread::yield();
    }
    slub_bind_vcpu(-1);
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t)
    workers.emplace_back([&, t] {
      constexpr int kLive = 32;
      void* obj[kLive] = {};
      void* blk[kLive] = {};
      uint64_t seed[kLive] = {}, bseed[kLive] = {};
      uint64_t x = 0x1234567u + uint64_t(t);
      // 300000 rounds counted from when the thief has taken the slots 10 times (and, with
      // bind_midway, bound itself): the thefts must happen while the workers run.
      for (int i = 0, left = 300000; left > 0; ++i) {
        if (thefts.load(std::memory_order_relaxed) >= 10 &&
            (!bind_midway || bound.load(std::memory_order_relaxed)))
          --left;
        if (i % 5000 == 0) hop(t + i / 5000);
        x = slub_func::splitmix64(x);
        const int k = int(x % kLive);
        if (obj[k] != nullptr) {
          if (slub_func::check_pattern(obj[k], 64, seed[k]) != 64) broken++;
          kmem_cache_free(s, obj[k]);
        }
        if (blk[k] != nullptr) {
          if (slub_func::check_pattern(blk[k], 48, bseed[k]) != 48) broken++;
          slub_free(blk[k]);
        }
        obj[k] = kmem_cache_alloc(s);
        blk[k] = slub_malloc(48);
        if (obj[k] == nullptr || blk[k] == nullptr) {
          fails++;
          continue;
        }
        seed[k] = x;
        bseed[k] = ~x;
        slub_func::fill_pattern(obj[k], 64, seed[k]);
        slub_func::fill_pattern(blk[k], 48, bseed[k]);
      }
      for (int k = 0; k < kLive; ++k) {
        if (obj[k] != nullptr && slub_func::check_pattern(obj[k], 64, seed[k]) != 64) broken++;
        if (blk[k] != nullptr && slub_func::check_pattern(blk[k], 48, bseed[k]) != 48) broken++;
        kmem_cache_free(s, obj[k]);
        slub_free(blk[k]);
      }
      unpin();
    });
  for (auto& w : workers) w.join();
  stop.store(true);
  thief.join();
  r.broken = broken.load();
  r.fails = fails.load();
  r.thefts = thefts.load();
  r.validate_errors = kmem_cache_validate(s);
  kmem_cache_shrink(s);
  kmem_cache_info info{};
  kmem_cache_get_info(s, &info);
  r.active_after = info.active_objs;
  if (kmem_cache_destroy(s) != 0) r.validate_errors++;
  return r;
}

TEST(RseqFastPath, ChurnWhileOtherThreadsTakeTheSlots) {
  const ChurnResult r = churn_with_thief(false);
  EXPECT_EQ(r.broken, 0) << "an object was handed out twice or written while free";
  EXPECT_EQ(r.fails, 0);
  EXPECT_GT(r.thefts, 10);
  EXPECT_EQ(r.validate_errors, 0);
  EXPECT_EQ(r.active_after, 0u);
  EXPECT_EQ(slub_fast_path_rseq(), rseq_wanted() ? 1 : 0);  // still the same path
}

// Sheaves (core/kmem_cache.h): 6 threads on this machine's 2 cores free each other's
// objects, so most frees are of objects whose slab is not the freeing CPU's active slab and go
// on the sheaf, and most allocations pop it; threads hop CPUs and are preempted inside the
// sections while a thief shrinks and flushes. Each object carries a pattern of its owner and of
// the shared slot it sits in: an object handed out twice, or one written while in a sheaf or a
// freelist, breaks a pattern or a freelist (which validate and the allocator's reports show).
TEST(RseqFastPath, SheavesUnderCrossThreadFreesAndPreemption) {
  kmem_cache* s = kmem_cache_create("rseq-sheaf", 64, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(s, nullptr);
  constexpr int kSlots = 512;
  std::vector<std::atomic<void*>> shared(kSlots);
  for (auto& slot : shared) slot.store(nullptr);
  auto tag = [](void* p, int k) {
    return slub_func::splitmix64(reinterpret_cast<uintptr_t>(p) ^ uint64_t(k) << 48);
  };
  std::atomic<bool> stop{false};
  std::atomic<long> broken{0}, fails{0}, thefts{0};
  // Checks and frees what slot k held (low bit of the stored pointer: from the cache).
  auto release = [&](void* held, int k) {
    if (held == nullptr) return;
    const bool from_cache = reinterpret_cast<uintptr_t>(held) & 1;
    void* obj = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(held) & ~uintptr_t{1});
    if (slub_func::check_pattern(obj, 48, tag(obj, k)) != 48) broken++;
    if (from_cache)
      kmem_cache_free(s, obj);
    else
      slub_free(obj);
  };
  testing::internal::CaptureStderr();
  std::thread thief([&] {
    while (!stop.load()) {
      kmem_cache_shrink(s);
      slub_flush_idle();
      ++thefts;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < 6; ++t)
    workers.emplace_back([&, t] {
      uint64_t x = 0xabcdef01u + uint64_t(t);
      for (int i = 0; i < 200000; ++i) {
        if (i % 4000 == 0) hop(t + i / 4000);
        x = slub_func::splitmix64(x);
        const int k = int(x % kSlots);
        const bool cache = (x >> 32) & 1;
        void* p = cache ? kmem_cache_alloc(s) : slub_malloc(48);
        if (p == nullptr) {
          fails++;
          continue;
        }
        // Low bit of the stored pointer: which allocator (blocks are 16-byte aligned).
        slub_func::fill_pattern(p, 48, tag(p, k));
        void* old =
            shared[k].exchange(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) | cache));
        release(old, k);
      }
      unpin();
    });
  for (auto& w : workers) w.join();
  stop.store(true);
  thief.join();
  for (int k = 0; k < kSlots; ++k) release(shared[k].load(), k);
  const int errors = kmem_cache_validate(s);
  kmem_cache_shrink(s);
  kmem_cache_info info{};
  kmem_cache_get_info(s, &info);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(broken.load(), 0) << "an object was handed out twice or written while free";
  EXPECT_EQ(fails.load(), 0);
  EXPECT_GT(thefts.load(), 0);
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(info.active_objs, 0u);
  EXPECT_EQ(err.find("slub:"), std::string::npos) << err.substr(0, 2000);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

// Frees one object twice in a row on one CPU, then checks that the report came, that the
// object was not put on a list twice (two allocations differ) and that the cache is intact.
// With `inactive`, a shrink first sends the object's slab back to its node.
void double_free_in_a_row(const char* name, bool inactive) {
  kmem_cache* s = kmem_cache_create(name, 32, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(s, nullptr);
  hop(0);                            // both frees meet the same CPU slot
  void* keep = kmem_cache_alloc(s);  // keeps the slab in use
  void* p = kmem_cache_alloc(s);
  ASSERT_NE(p, nullptr);
  if (inactive) kmem_cache_shrink(s);
  testing::internal::CaptureStderr();
  kmem_cache_free(s, p);
  kmem_cache_free(s, p);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("double free"), std::string::npos) << err;
  void* a = kmem_cache_alloc(s);
  void* b = kmem_cache_alloc(s);
  EXPECT_NE(a, b);
  kmem_cache_free(s, a);
  kmem_cache_free(s, b);
  kmem_cache_free(s, keep);
  unpin();
  EXPECT_EQ(kmem_cache_validate(s), 0);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

// The fast path's naive double-free check (the object is already the head of the CPU
// freelist): reported and ignored, the freelist intact.
TEST(RseqFastPath, DoubleFreeInARowIsReportedAndIgnored) {
  double_free_in_a_row("rseq-double", false);
}

// The same for an object whose slab is not the CPU's active slab (after a shrink), which goes
// on the sheaf with rseq (its newest object is compared) and to its slab without (the head of
// the slab freelist is compared).
TEST(RseqFastPath, DoubleFreeInARowOfAnInactiveSlabIsReportedAndIgnored) {
  double_free_in_a_row("rseq-double-sheaf", true);
}

// Objects in a sheaf are free but held by the CPU: the queue statistics count them, and the
// flusher's pass gives them back to their slabs once the CPU is idle (here: two passes with no
// operation between them), after which the slabs are free and shrink returns them.
TEST(RseqFastPath, SheafIsCountedAndGivenBackWhenIdle) {
  if (sheaves_off()) GTEST_SKIP() << "SLUB_SHEAVES=0: no sheaves";
  kmem_cache* s = kmem_cache_create("rseq-sheaf-idle", 32, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(s, nullptr);
  ASSERT_NE(kmem_cache_sheaf_capacity(s), 0u);
  hop(0);
  std::vector<void*> objs(20);
  for (auto& p : objs) p = kmem_cache_alloc(s);
  kmem_cache_shrink(s);  // their slab goes to the node list; the frees below meet the sheaf
  kmem_cache_queue_info q0{};
  ASSERT_EQ(kmem_cache_get_queue_info(s, &q0), 0);  // the CPU slots alone, nothing parked
  for (void* p : objs) kmem_cache_free(s, p);
  kmem_cache_queue_info q{};
  ASSERT_EQ(kmem_cache_get_queue_info(s, &q), 0);
  EXPECT_GE(q.parked_cpu, q0.parked_cpu + objs.size());
  EXPECT_EQ(q.cpu_bytes, q0.cpu_bytes) << "the main sheaf is part of the CPU's slot; no spare yet";
  kmem_cache_info before{};
  kmem_cache_get_info(s, &before);
  EXPECT_EQ(before.active_objs, objs.size()) << "objects in a sheaf count as in use";
  slub_flush_idle();
  slub_flush_idle();
  ASSERT_EQ(kmem_cache_get_queue_info(s, &q), 0);
  EXPECT_EQ(q.parked_cpu, 0u);
  kmem_cache_info after{};
  kmem_cache_get_info(s, &after);
  EXPECT_EQ(after.active_objs, 0u);
  unpin();
  EXPECT_EQ(kmem_cache_destroy(s), 0);
}

using sheaf_counters::stats_of;

// The counters on one real CPU (pinned), where the sections run with rseq on (and the locked
// paths in the SLUB_RSEQ=0 run): exact, the same as Stats.SheafCountersOnOneCpu's on a
// virtual CPU (tests/common/sheaf_counters.h).
TEST(RseqFastPath, SheafCountersAreExactOnAPinnedCpu) {
  kmem_cache* c = kmem_cache_create("rseq-counters", 64, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(c, nullptr);
  if (sheaves_off()) GTEST_SKIP() << "SLUB_SHEAVES=0: no sheaves";
  ASSERT_NE(kmem_cache_sheaf_capacity(c), 0u);
  hop(1);
  sheaf_counters::allocate_and_free(c);
  unpin();
  sheaf_counters::shrink_and_destroy(c);
}

// The classic mode's counters on one real CPU: the compare-and-swap fast paths count each
// operation (the CPU freelist of the active slab), the slow paths the rest: a new slab at
// each objs_per_slab-th allocation, frees of the earlier slabs' objects to their slabs.
TEST(RseqFastPath, ClassicCountersAreExactOnAPinnedCpu) {
  kmem_cache_args a{};
  a.use_sheaf_capacity = 1;
  a.sheaf_capacity = 0;
  kmem_cache* c = kmem_cache_create_args("rseq-classic-counters", 64, &a, SLAB_NO_MERGE);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(kmem_cache_sheaf_capacity(c), 0u);
  kmem_cache_info info{};
  kmem_cache_get_info(c, &info);
  const uint64_t per = info.objs_per_slab, n = 3 * per + per / 2;
  hop(1);
  std::vector<void*> objs;
  for (uint64_t i = 0; i < n; ++i) objs.push_back(kmem_cache_alloc(c));
  auto s = stats_of(c);
  EXPECT_EQ(s[ALLOC_SLOWPATH], 4u);
  EXPECT_EQ(s[ALLOC_SLAB], 4u);
  EXPECT_EQ(s[ALLOC_FASTPATH], n - 4);
  for (void* p : objs) kmem_cache_free(c, p);
  s = stats_of(c);
  EXPECT_EQ(s[FREE_FASTPATH], per / 2) << "the active slab's objects";
  EXPECT_EQ(s[FREE_SLOWPATH], 3 * per);
  EXPECT_EQ(s[SHEAF_REFILL] + s[SHEAF_FLUSH] + s[BARN_PUT], 0u);
  unpin();
  kmem_cache_shrink(c);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// Two real CPUs of one node: what one frees reaches the other through the node's barn (full
// sheaves), without new slabs or refills from the slabs.
TEST(RseqFastPath, FullSheavesGoThroughTheBarnBetweenRealCpus) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  if (CPU_COUNT(&all) < 2) GTEST_SKIP() << "one CPU";
  kmem_cache* c = kmem_cache_create("rseq-barn", 128, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(c, nullptr);
  if (sheaves_off()) GTEST_SKIP() << "SLUB_SHEAVES=0: no sheaves";
  const unsigned cap = kmem_cache_sheaf_capacity(c);
  ASSERT_NE(cap, 0u);
  kmem_cache_node_info n1{};
  if (kmem_cache_get_node_info(c, 1, &n1) == 0) GTEST_SKIP() << "more than one node";
  // The locked paths (no rseq) notice a migration within 256 calls, not at once (sheaf_test
  // covers the barn there, on virtual CPUs).
  if (slub_fast_path_rseq() == 0) GTEST_SKIP() << "rseq off";
  // hop() picks among the CPUs the thread may use: unpinned first, each time.
  std::vector<void*> objs;
  hop(0);
  for (unsigned i = 0; i < 5 * cap; ++i) objs.push_back(kmem_cache_alloc(c));
  unpin();
  hop(1);
  for (void* p : objs) kmem_cache_free(c, p);
  auto s = stats_of(c);
  EXPECT_EQ(s[BARN_PUT], 3u);
  const uint64_t slabs = s[ALLOC_SLAB], refills = s[SHEAF_REFILL];
  unpin();
  hop(0);
  for (unsigned i = 0; i < 2 * cap; ++i) objs[i] = kmem_cache_alloc(c);
  s = stats_of(c);
  EXPECT_EQ(s[BARN_GET], 2u);
  EXPECT_EQ(s[ALLOC_SLAB], slabs);
  EXPECT_EQ(s[SHEAF_REFILL], refills);
  for (unsigned i = 0; i < 2 * cap; ++i) kmem_cache_free(c, objs[i]);
  unpin();
  kmem_cache_shrink(c);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// The switch from rseq to compare-and-swap while 4 threads are in the fast paths: the rseq
// sections in flight restart (fence) and take the compare-and-swap path; nothing is lost or
// handed out twice. Runs last in its process (it leaves rseq off).
TEST(RseqFastPath, StoppingRseqWhileThreadsChurn) {
  const ChurnResult r = churn_with_thief(true);
  EXPECT_EQ(r.broken, 0) << "an object was handed out twice or written while free";
  EXPECT_EQ(r.fails, 0);
  EXPECT_GE(r.thefts, 10);
  EXPECT_EQ(r.validate_errors, 0);
  EXPECT_EQ(r.active_after, 0u);
  EXPECT_EQ(slub_fast_path_rseq(), 0);
}

}  // namespace
