// SPDX-License-Identifier: MIT
// The lock checker (base/lock_rank.h, pal/lockdep.cc), in builds with SLUB_LOCKDEP: a lock
// taken against the order of the classes, a second lock of one class without lock_nest, a lock
// taken twice and a lock released without being held each abort, naming the locks and
// printing the stack; the nestings the allocator does (in order, lock_nest under
// g_slab_mutex, try_lock out of order, releases in any order, fork) do not. Without the
// checker every case skips.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <slub/slub.h>

#include "base/base.h"

namespace {

using slub::LockClass;
using slub::SpinLock;

#ifdef SLUB_LOCKDEP
#define REQUIRE_LOCKDEP() GTEST_FLAG_SET(death_test_style, "threadsafe")
int held() {
  return slub::lockdep::held_count();
}
#else
#define REQUIRE_LOCKDEP() \
  GTEST_SKIP() << "built without SLUB_LOCKDEP (on in Debug builds, or -DSLUB_LOCKDEP=ON)"
int held() {
  return 0;
}
#endif

// The report's stack: at least one numbered frame with its return address.
#define STACK_LINE "stack:\n  #0 +0x[0-9a-f]+"

TEST(Lockdep, OutOfOrderAbortsNamingBothLocksAndTheStack) {
  REQUIRE_LOCKDEP();
  SpinLock<LockClass::kNodeList> node;
  SpinLock<LockClass::kCpuSlot> slot;
  EXPECT_DEATH(
      {
        node.lock();
        slot.lock();  // a CPU slot's lock is outside the node's
      },
      "lock taken out of order.*taking  KmemCacheCpu::lock 0x[0-9a-f]+ \\(rank 3\\).*"
      "holding KmemCacheNode::list_lock 0x[0-9a-f]+ \\(rank 5\\).*" STACK_LINE);
}

TEST(Lockdep, AnyHeldLockCountsNotOnlyTheInnermost) {
  REQUIRE_LOCKDEP();
  SpinLock<LockClass::kSlabMutex> mutex;
  SpinLock<LockClass::kPageAlloc> page;
  SpinLock<LockClass::kBarn> barn;
  SpinLock<LockClass::kCpuSlot> slot;
  EXPECT_DEATH(
      {
        mutex.lock();
        page.lock();
        if (slot.try_lock()) barn.lock();  // below the page lock, though above the slot
      },
      "taking  Barn::lock.*holding PageAlloc::lock_.*" STACK_LINE);
}

TEST(Lockdep, TwoLocksOfOneClassAbortWithoutLockNest) {
  REQUIRE_LOCKDEP();
  SpinLock<LockClass::kNodeList> a, b;
  EXPECT_DEATH(
      {
        a.lock();
        b.lock();
      },
      "two locks of one class without lock_nest.*taking  KmemCacheNode::list_lock.*"
      "holding KmemCacheNode::list_lock.*" STACK_LINE);
}

TEST(Lockdep, ALockTakenTwiceAbortsInsteadOfSpinning) {
  REQUIRE_LOCKDEP();
  SpinLock<LockClass::kMeta> meta;
  EXPECT_DEATH(
      {
        meta.lock();
        meta.lock();
      },
      "lock taken twice by one thread.*taking  meta g_lock.*holding meta g_lock.*" STACK_LINE);
}

TEST(Lockdep, ReleasingALockNotHeldAbortsNamingIt) {
  REQUIRE_LOCKDEP();
  SpinLock<LockClass::kBarn> barn;
  SpinLock<LockClass::kSlabMutex> mutex;
  EXPECT_DEATH(
      {
        mutex.lock();
        barn.unlock();
      },
      "releasing Barn::lock 0x[0-9a-f]+, which this thread does not hold.*"
      "locks held by thread [0-9]+, outermost first:\n  0: g_slab_mutex.*" STACK_LINE);
}

TEST(Lockdep, ReleasingALockAnotherThreadHoldsAborts) {
  REQUIRE_LOCKDEP();
  SpinLock<LockClass::kCpuSlot> slot;
  EXPECT_DEATH(
      {
        std::thread([&] { slot.lock(); }).join();
        slot.unlock();
      },
      "releasing KmemCacheCpu::lock 0x[0-9a-f]+, which this thread does not hold.*"
      "\\(none\\)");
}

TEST(Lockdep, LockNestWithoutTheNestLockAborts) {
  REQUIRE_LOCKDEP();
  SpinLock<LockClass::kSlabMutex> mutex;
  SpinLock<LockClass::kCpuSlot> slots[2];
  EXPECT_DEATH(
      {
        slots[0].lock_nest(mutex);
        slots[1].lock_nest(mutex);
      },
      "lock_nest of KmemCacheCpu::lock 0x[0-9a-f]+ without holding the nest lock.*" STACK_LINE);
}

// What the allocator does: classes in order, fork_prepare's groups of one class under
// g_slab_mutex, releases in another order than the acquisitions, a try_lock against the order.
TEST(Lockdep, LegitimateNestingDoesNotAbort) {
  REQUIRE_LOCKDEP();
  SpinLock<LockClass::kCpuArea> area;
  SpinLock<LockClass::kSlabMutex> mutex;
  static SpinLock<LockClass::kCpuSlot> slots[1000];  // more than the checker's stack holds
  static SpinLock<LockClass::kBarn> barns[8];
  SpinLock<LockClass::kNodeList> node;
  SpinLock<LockClass::kPageAlloc> page;
  SpinLock<LockClass::kMeta> meta;
  area.lock();
  mutex.lock();
  for (auto& s : slots) s.lock_nest(mutex);
  for (auto& b : barns) b.lock_nest(mutex);
  node.lock();
  page.lock();
  meta.lock();
  EXPECT_EQ(held(), 2 + 1000 + 8 + 3);
  // fork_release's order: not the reverse of the acquisitions.
  page.unlock();
  meta.unlock();
  for (int i = 0; i < 8; i += 2) barns[i].unlock();
  node.unlock();
  for (int i = 1; i < 8; i += 2) barns[i].unlock();
  for (auto& s : slots) s.unlock();
  mutex.unlock();
  area.unlock();
  EXPECT_EQ(held(), 0);

  // The SLAB reaper and the locked fast paths: a try_lock cannot deadlock.
  SpinLock<LockClass::kCpuSlot> slot;
  node.lock();
  ASSERT_TRUE(slot.try_lock_now());
  page.lock();  // above both
  EXPECT_EQ(held(), 3);
  node.unlock();
  slot.unlock();
  page.unlock();
  EXPECT_EQ(held(), 0);
}

// The child of fork is a copy of the forking thread: what fork_prepare took, fork_child
// releases there and fork_parent here, and both go on allocating.
TEST(Lockdep, ForkLeavesTheHeldLocksConsistentOnBothSides) {
  REQUIRE_LOCKDEP();
  void* p = slub_malloc(100);  // the allocator and its atfork handlers are set up
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(held(), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    bool ok = held() == 0;
    void* q = slub_malloc(5000);
    slub_free(q);
    slub_free(p);
    kmem_cache* c = kmem_cache_create("lockdep-child", 48, 0, 0, nullptr);
    ok = ok && c != nullptr && kmem_cache_shrink(c) >= 0 && kmem_cache_destroy(c) == 0;
    _exit(ok && held() == 0 ? 0 : 1);
  }
  EXPECT_EQ(held(), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  slub_free(p);
  EXPECT_EQ(held(), 0);
}

}  // namespace
