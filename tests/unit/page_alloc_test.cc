// SPDX-License-Identifier: MIT
// Page map and page allocator: O(1) descriptor lookup, buddy splitting and coalescing,
// alignment of runs, huge blocks, purging.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <cstring>
#include <atomic>
#include <thread>
#include <vector>

#include "mm/page_alloc.h"
#include "mm/page_map.h"
#include "cache/cache.h"

using namespace slub;

namespace {
struct Init {
  Init() { ensure_init(); }
} init_once;
}  // namespace

TEST(PageMap, UnknownAddressesAreNotOurs) {
  int local = 0;
  static int global = 0;
  EXPECT_EQ(PageMap::lookup(&local), 0u);
  EXPECT_EQ(PageMap::lookup(&global), 0u);
  EXPECT_EQ(PageMap::desc_of(&local), nullptr);
  EXPECT_EQ(PageMap::lookup(reinterpret_cast<void*>(uintptr_t{1} << 60)), 0u);
  void* m = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT_EQ(PageMap::desc_of(m), nullptr);
  munmap(m, 1 << 20);
}

TEST(PageAlloc, RunsAreAlignedOnTheirSizeAndFoundFromEveryByte) {
  for (unsigned order = 0; order <= kMaxRunOrder; ++order) {
    PageDesc* d = PageAlloc::alloc(order, 0, PageKind::kLarge);
    ASSERT_NE(d, nullptr) << order;
    char* p = desc_address(d);
    const size_t bytes = kPageSize << order;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % bytes, 0u) << order;
    EXPECT_EQ(d->order, order);
    for (size_t off = 0; off < bytes; off += 1531) EXPECT_EQ(PageMap::desc_of(p + off), d);
    EXPECT_EQ(PageMap::desc_of(p + bytes - 1), d);
    p[0] = 1;
    p[bytes - 1] = 2;
    PageAlloc::free(d);
    EXPECT_NE(PageMap::desc_of(p)->kind, PageKind::kLarge);
  }
}

TEST(PageAlloc, BuddiesCoalesceBackIntoLargeRuns) {
  // Take every order-0 page of a fresh chunk's worth, free them all, and get order-8 runs again.
  std::vector<PageDesc*> pages;
  std::set<uintptr_t> chunks;
  for (int i = 0; i < 600; ++i) {
    PageDesc* d = PageAlloc::alloc(0, 0, PageKind::kLarge);
    ASSERT_NE(d, nullptr);
    pages.push_back(d);
    chunks.insert(chunk_of(d));
  }
  std::set<char*> distinct;
  for (PageDesc* d : pages) distinct.insert(desc_address(d));
  EXPECT_EQ(distinct.size(), pages.size());
  const size_t free_before = PageAlloc::stats().free_pages;
  for (PageDesc* d : pages) PageAlloc::free(d);
  EXPECT_EQ(PageAlloc::stats().free_pages, free_before + pages.size());
  // Every chunk touched must be able to give an order-8 run again: allocate that many, from
  // those chunks (the count is taken before: a run that did not merge makes a new chunk).
  const size_t chunks_before = PageAlloc::stats().chunks;
  std::vector<PageDesc*> big;
  for (size_t i = 0; i < chunks.size(); ++i) {
    PageDesc* d = PageAlloc::alloc(kMaxRunOrder, 0, PageKind::kLarge);
    ASSERT_NE(d, nullptr);
    big.push_back(d);
  }
  EXPECT_EQ(PageAlloc::stats().chunks, chunks_before) << "freed pages did not merge again";
  for (PageDesc* d : big) PageAlloc::free(d);
}

TEST(PageAlloc, PurgeGivesDirtyPagesBackAndTheyReadZero) {
  PageDesc* d = PageAlloc::alloc(4, 0, PageKind::kLarge);
  ASSERT_NE(d, nullptr);
  char* p = desc_address(d);
  memset(p, 0xab, kPageSize << 4);
  PageAlloc::free(d);
  EXPECT_GT(PageAlloc::stats().dirty_pages, 0u);
  EXPECT_GT(PageAlloc::purge_dirty(), 0u);
  EXPECT_EQ(PageAlloc::stats().dirty_pages, 0u);
  // Still mapped (a stale lockless read must not fault) and zero.
  for (size_t i = 0; i < (kPageSize << 4); i += 512) ASSERT_EQ(p[i], 0);
}

// madvise runs outside the page lock: runs being purged are off the lists while other threads
// allocate and free beside the purger. Nothing may be lost or handed out twice, and the purged
// runs come back clean and merged with their buddies.
TEST(PageAlloc, PurgeRunsBesideAllocationsAndMergesCleanRuns) {
  PageAlloc::purge_dirty();
  const PageAllocStats before = PageAlloc::stats();
  std::atomic<bool> stop{false};
  std::thread purger([&] {
    while (!stop.load()) PageAlloc::purge_dirty();
  });
  std::vector<std::thread> workers;
  std::atomic<int> bad{0};
  for (int t = 0; t < 2; ++t)
    workers.emplace_back([&, t] {
      std::vector<PageDesc*> live;
      unsigned x = 12345u + unsigned(t);
      for (int i = 0; i < 20000; ++i) {
        x = x * 1103515245u + 12345u;
        if (live.size() < 64 && (x >> 16) % 3 != 0) {
          PageDesc* d = PageAlloc::alloc((x >> 20) % 4, 0, PageKind::kLarge);
          if (d == nullptr || d->kind != PageKind::kLarge) {
            bad++;
            continue;
          }
          memset(desc_address(d), 0x5a, kPageSize << d->order);  // owned by this thread alone
          live.push_back(d);
        } else if (!live.empty()) {
          PageDesc* d = live[(x >> 8) % live.size()];
          const char* p = desc_address(d);
          for (size_t k = 0; k < (kPageSize << d->order); k += 1024)
            if (p[k] != 0x5a) bad++;  // a purge must never touch a run in use
          std::swap(live[(x >> 8) % live.size()], live.back());
          live.pop_back();
          PageAlloc::free(d);
        }
      }
      for (PageDesc* d : live) PageAlloc::free(d);
    });
  for (auto& w : workers) w.join();
  stop.store(true);
  purger.join();
  EXPECT_EQ(bad.load(), 0);
  PageAlloc::purge_dirty();
  const PageAllocStats after = PageAlloc::stats();
  EXPECT_EQ(after.dirty_pages, 0u);
  EXPECT_GT(after.purged_pages, before.purged_pages);
  // Every page is back on a free list: those of before, plus the new chunks' (all but the meta
  // run of each).
  EXPECT_EQ(after.free_pages, before.free_pages + (after.chunks - before.chunks) *
                                                      (kPagesPerChunk - (1u << kMetaOrder)));
  // Merged back into whole runs, clean: one largest run per new chunk without a further chunk.
  std::vector<PageDesc*> big;
  for (size_t i = 0; i < after.chunks - before.chunks; ++i) {
    PageDesc* d = PageAlloc::alloc(kMaxRunOrder, 0, PageKind::kLarge);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->dirty, 0);
    big.push_back(d);
  }
  EXPECT_EQ(PageAlloc::stats().chunks, after.chunks);
  for (PageDesc* d : big) PageAlloc::free(d);
}

TEST(PageAlloc, HugeBlocksAreRegisteredAlignedAndUnmapped) {
  size_t usable = 0;
  void* p = PageAlloc::huge_alloc(5 << 20, 1 << 21, &usable);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (1 << 21), 0u);
  EXPECT_GE(usable, size_t{5} << 20);
  memset(p, 1, 5 << 20);
  HugeHeader* h = PageAlloc::huge_header(p);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(PageAlloc::huge_header(static_cast<char*>(p) + 8), nullptr);
  const size_t blocks = PageAlloc::stats().huge_blocks;
  PageAlloc::huge_free(h);
  EXPECT_EQ(PageAlloc::stats().huge_blocks, blocks - 1);
  EXPECT_EQ(PageMap::lookup(p), 0u);
}

// fork() while another thread purges: one purger at a time, and the child inherited the flag
// of a purger that did not survive the fork, so every purge of the child waited for it forever
// (its service thread spun in purge_dirty; its frees over the budget never purged). Each child
// purges once under a 5 s alarm.
TEST(PageAlloc, AForkChildPurgesWhileTheParentWasPurging) {
  std::atomic<bool> stop{false};
  std::thread purger([&] {
    std::vector<PageDesc*> runs;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 64; ++i)
        if (PageDesc* d = PageAlloc::alloc(4, 0, PageKind::kLarge)) {
          memset(desc_address(d), 1, kPageSize << 4);  // dirty when freed
          runs.push_back(d);
        }
      for (PageDesc* d : runs) PageAlloc::free(d);
      runs.clear();
      PageAlloc::purge_dirty();
    }
  });
  int hung = 0, failed = 0;
  for (int i = 0; i < 100 && hung == 0; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      alarm(5);
      PageAlloc::purge_dirty();
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
      ++hung;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      ++failed;
  }
  stop = true;
  purger.join();
  EXPECT_EQ(hung, 0) << "a fork child's purge waited for the parent's purger";
  EXPECT_EQ(failed, 0);
}
