// SPDX-License-Identifier: MIT
// Statistics: the kernel's counters add up, and the statistics area another process reads
// (/dev/shm/slub.<pid>) shows the same numbers and answers commands.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <slub/slub.h>
#include <slub/stats.h>

#include "../common/sheaf_counters.h"
#include "core/kmem_cache.h"
#include "test_util.h"

namespace {

std::vector<uint64_t> stats_of(kmem_cache* c) {
  std::vector<uint64_t> v(NR_SLUB_STAT_ITEMS);
  kmem_cache_get_stats(c, v.data());
  return v;
}

// Maps this process's statistics area, waiting for the flusher to create it.
slub_shm* map_own_area() {
  const std::string name = "/slub." + std::to_string(getpid());
  for (int i = 0; i < 300; ++i) {
    int fd = shm_open(name.c_str(), O_RDWR, 0);
    if (fd >= 0) {
      void* p = mmap(nullptr, sizeof(slub_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      close(fd);
      auto* shm = static_cast<slub_shm*>(p);
      if (p != MAP_FAILED && __atomic_load_n(&shm->hdr.magic, __ATOMIC_ACQUIRE) == SLUB_SHM_MAGIC)
        return shm;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return nullptr;
}

// The reader's side of the command protocol; returns the answer, or INT32_MIN on timeout.
int command(slub_shm* shm, uint32_t cmd, const char* arg) {
  snprintf(shm->hdr.cmd_arg, sizeof shm->hdr.cmd_arg, "%s", arg);
  __atomic_store_n(&shm->hdr.cmd, cmd, __ATOMIC_RELEASE);
  const uint32_t seq = __atomic_add_fetch(&shm->hdr.cmd_seq, 1, __ATOMIC_ACQ_REL);
  syscall(SYS_futex, &shm->hdr.cmd_seq, FUTEX_WAKE, 1, nullptr, nullptr, 0);
  for (int i = 0; i < 500; ++i) {
    if (__atomic_load_n(&shm->hdr.done_seq, __ATOMIC_ACQUIRE) == seq) return shm->hdr.result;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return INT32_MIN;
}

const slub_shm_cache* find(const slub_shm* shm, const char* name) {
  for (uint32_t i = 0; i < shm->hdr.nr_caches; ++i)
    if (strcmp(shm->caches[i].name, name) == 0) return &shm->caches[i];
  return nullptr;
}

}  // namespace

// The classic mode's counters (no sheaves): every operation counts as fast or slow.
TEST(Stats, CountersAddUpOnOneCpu) {
  kmem_cache* c = classic_cache("stats-count", 64);
  ASSERT_NE(c, nullptr);
  slub_bind_vcpu(70);
  std::vector<void*> objs;
  for (int i = 0; i < 200; ++i) objs.push_back(kmem_cache_alloc(c));
  auto s = stats_of(c);
  EXPECT_EQ(s[ALLOC_FASTPATH] + s[ALLOC_SLOWPATH], 200u);
  EXPECT_EQ(s[ALLOC_SLAB], 4u);  // 64 objects a slab: 4 slabs, each taken by a slow path
  EXPECT_EQ(s[ALLOC_SLOWPATH], 4u);
  for (auto it = objs.rbegin(); it != objs.rend(); ++it) kmem_cache_free(c, *it);
  s = stats_of(c);
  EXPECT_EQ(s[FREE_FASTPATH] + s[FREE_SLOWPATH], 200u);
  EXPECT_EQ(s[FREE_FASTPATH], 8u);     // the active slab's 8 objects; the full ones go slow
  EXPECT_EQ(s[CPU_PARTIAL_FREE], 3u);  // each full slab adopted on its first free
  slub_bind_vcpu(-1);
  kmem_cache_shrink(c);
  EXPECT_GE(stats_of(c)[FREE_SLAB], 1u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// With sheaves the fast paths count nothing; the slow paths' counters are exact. On a virtual
// CPU (rseq off) every operation takes the sheaves' locked path, and the counts are those of
// the rseq sections (RseqFastPath.SheafCountersAreExactOnAPinnedCpu checks them on a real CPU).
TEST(Stats, SheafCountersOnOneCpu) {
  if (!slub::sheaves_enabled()) GTEST_SKIP() << "SLUB_SHEAVES=0: no sheaves";
  kmem_cache* c = kmem_cache_create("stats-sheaf", 64, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(c, nullptr);
  slub_bind_vcpu(72);
  sheaf_counters::allocate_and_free(c);
  slub_bind_vcpu(-1);
  sheaf_counters::shrink_and_destroy(c);
}

TEST(Stats, TheAreaShowsTheCachesAndAnswersCommands) {
  kmem_cache* c = kmem_cache_create("stats-area", 200, 0, SLAB_NO_MERGE, nullptr);
  // One CPU throughout: a thread that migrates half-way leaves a CPU slab behind whose free
  // objects count as in use (the kernel's accounting), and the count below would be off.
  slub_bind_vcpu(71);
  std::vector<void*> objs;
  for (int i = 0; i < 1000; ++i) objs.push_back(kmem_cache_alloc(c));
  slub_shm* shm = map_own_area();
  ASSERT_NE(shm, nullptr) << "no statistics area appeared";
  EXPECT_EQ(shm->hdr.pid, getpid());
  EXPECT_NE(shm->hdr.start_time, 0u);
  ASSERT_EQ(command(shm, SLUB_CMD_REFRESH, ""), 0);
  const slub_shm_cache* rec = find(shm, "stats-area");
  ASSERT_NE(rec, nullptr);
  // The library's own numbers: objects in use (those the CPU holds in its sheaves and slab
  // count as in use, as in the kernel: 1000 and the rest of the last refill) and counters.
  kmem_cache_info info{};
  kmem_cache_get_info(c, &info);
  EXPECT_EQ(rec->objects, info.active_objs);
  EXPECT_GE(rec->objects, 1000u);
  EXPECT_LT(rec->objects, 1000u + 2 * 28);
  EXPECT_EQ(rec->object_size, 200u);
  EXPECT_GE(rec->stats[ALLOC_SLOWPATH], 1u);
  const auto counts = stats_of(c);
  for (int i = 0; i < NR_SLUB_STAT_ITEMS; ++i)
    EXPECT_EQ(rec->stats[i], counts[i]) << slub_stat_names[i];
  EXPECT_EQ(shm->hdr.seq % 2, 0u);
  EXPECT_EQ(command(shm, SLUB_CMD_VALIDATE, "stats-area"), 0);
  EXPECT_EQ(command(shm, SLUB_CMD_VALIDATE, "no-such-cache"), -1);
  for (void* p : objs) kmem_cache_free(c, p);
  slub_bind_vcpu(-1);
  EXPECT_GE(command(shm, SLUB_CMD_SHRINK, "stats-area"), 1);  // its empty slabs go back
  rec = find(shm, "stats-area");
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->objects, 0u);
  munmap(shm, sizeof(slub_shm));
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// The area is made when the process is a second old, and a fork child's second starts at the
// fork: a child that allocates (its service thread starts) has no area in its first second,
// then makes its own. (Before, a child forked from a process older than a second made its
// area at its first slow path, paying for it even when it lived a few milliseconds.)
TEST(Stats, AForkChildMakesItsAreaAfterItsFirstSecond) {
  kmem_cache* parent = kmem_cache_create("stats-fork-parent", 96, 0, SLAB_NO_MERGE, nullptr);
  void* q = kmem_cache_alloc(parent);                            // the allocator is running here
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // and is > 1 s old
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    kmem_cache* c = kmem_cache_create("stats-fork-child", 96, 0, SLAB_NO_MERGE, nullptr);
    void* p = kmem_cache_alloc(c);  // a slow path: the child's service thread starts
    const std::string name = "/dev/shm/slub." + std::to_string(getpid());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (access(name.c_str(), F_OK) == 0) _exit(2);  // made in the child's first second
    for (int i = 0; i < 500 && access(name.c_str(), F_OK) != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const bool made = access(name.c_str(), F_OK) == 0;
    kmem_cache_free(c, p);
    _exit(made ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 2) << "the child made its area in its first second";
  EXPECT_NE(WEXITSTATUS(status), 3) << "the child never made its own area";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  kmem_cache_free(parent, q);
  EXPECT_EQ(kmem_cache_destroy(parent), 0);
}
