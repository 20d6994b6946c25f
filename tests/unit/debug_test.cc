// SPDX-License-Identifier: MIT
// The debug mode: corrupt one thing on purpose, validate, expect an exact error count (as the
// kernel's lib/tests/slub_kunit.c does); bad frees are reported and change nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <slub/slub.h>

#include "core/debug.h"
#include "core/kmem_cache.h"
#include "mm/page_map.h"
#include "slub/slub_cache.h"
#include "test_util.h"

using namespace slub;

namespace {

constexpr unsigned long kAll =
    SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;

// A debug cache, destroyed at the end of the test (after its objects are freed).
struct DebugCache {
  kmem_cache* c;
  DebugCache(const char* name, size_t size, unsigned long flags)
      : c(kmem_cache_create(name, size, 0, flags, nullptr)) {}
  ~DebugCache() {
    kmem_cache_shrink(c);
    kmem_cache_destroy(c);
  }
  KmemCache* k() const { return reinterpret_cast<KmemCache*>(c); }
};

}  // namespace

TEST(DebugParse, KernelSyntax) {
  const unsigned long F = SLAB_CONSISTENCY_CHECKS, Z = SLAB_RED_ZONE, P = SLAB_POISON,
                      U = SLAB_STORE_USER, T = SLAB_TRACE;
  EXPECT_EQ(debug_flags_for("", "any", 0), F | Z | P | U);  // bare: full debugging
  EXPECT_EQ(debug_flags_for("FZPU", "kmalloc-64", 0), F | Z | P | U);
  EXPECT_EQ(debug_flags_for("fz", "x", 0), F | Z);  // case-insensitive
  EXPECT_EQ(debug_flags_for("FZ,kmalloc-64", "kmalloc-64", 0), F | Z);
  EXPECT_EQ(debug_flags_for("FZ,kmalloc-64", "kmalloc-128", 0), 0ul);  // list only: no default
  EXPECT_EQ(debug_flags_for("P,kmalloc-*,dentry", "kmalloc-1k", 0), P);
  EXPECT_EQ(debug_flags_for("P,kmalloc-*,dentry", "dentry", 0), P);
  EXPECT_EQ(debug_flags_for(",dentry", "dentry", 0), F | Z | P | U);  // list without letters
  EXPECT_EQ(debug_flags_for("Z,dentry;U,kmalloc-*", "kmalloc-8", 0), U);
  EXPECT_EQ(debug_flags_for("Z,dentry;U,kmalloc-*", "dentry", 0), Z);
  EXPECT_EQ(debug_flags_for("FZ;-,zs_handle,zspage", "zspage", 0), 0ul);  // '-' clears
  EXPECT_EQ(debug_flags_for("FZ;-,zs_handle,zspage", "inode", 0), F | Z);
  EXPECT_EQ(debug_flags_for("T,my-cache", "my-cache", SLAB_HWCACHE_ALIGN), T | SLAB_HWCACHE_ALIGN);
  EXPECT_EQ(debug_flags_for("U,task_?truct", "task_struct", 0), U);  // glob '?'
}

TEST(DebugLayout, RedZonesTracksAndPoisonMoveTheFreePointerOut) {
  DebugCache d("dbg-layout", 64, kAll);
  KmemCache* s = d.k();
  EXPECT_EQ(s->red_left_pad, 8u);
  EXPECT_EQ(s->inuse, 72u);        // one word of right red zone for a word-aligned object
  EXPECT_GE(s->offset, s->inuse);  // poisoned objects keep the free pointer outside
  EXPECT_EQ(s->track_off, s->offset + 8);
  EXPECT_EQ(s->size % 8, 0u);
  void* p = kmem_cache_alloc(d.c);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(kmem_cache_validate(d.c), 0);
  kmem_cache_free(d.c, p);
  EXPECT_EQ(kmem_cache_validate(d.c), 0);
}

TEST(DebugValidate, OneBytePastTheEnd) {
  DebugCache d("dbg-rz-right", 64, kAll);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(d.c));
  p[64] = 0x12;
  std::string err = stderr_of([&] { EXPECT_EQ(kmem_cache_validate(d.c), 1); });
  EXPECT_NE(err.find("BUG dbg-rz-right: Right Redzone overwritten"), std::string::npos) << err;
  EXPECT_NE(err.find("FIX dbg-rz-right: Restoring Right Redzone"), std::string::npos);
  EXPECT_EQ(kmem_cache_validate(d.c), 0);  // repaired
  kmem_cache_free(d.c, p);
}

TEST(DebugValidate, OneByteBeforeTheStart) {
  DebugCache d("dbg-rz-left", 64, kAll);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(d.c));
  p[-1] = 0x12;
  std::string err = stderr_of([&] { EXPECT_EQ(kmem_cache_validate(d.c), 1); });
  EXPECT_NE(err.find("Left Redzone overwritten"), std::string::npos) << err;
  EXPECT_EQ(kmem_cache_validate(d.c), 0);
  kmem_cache_free(d.c, p);
}

TEST(DebugValidate, WriteAfterFree) {
  DebugCache d("dbg-poison", 64, kAll);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(d.c));
  kmem_cache_free(d.c, p);
  EXPECT_EQ(p[0], kPoisonFree);
  EXPECT_EQ(p[63], kPoisonEnd);
  p[10] = 0x12;
  std::string err = stderr_of([&] { EXPECT_EQ(kmem_cache_validate(d.c), 1); });
  EXPECT_NE(err.find("Poison overwritten"), std::string::npos) << err;
  EXPECT_NE(err.find("Freed in"), std::string::npos) << err;  // U: who freed it
  EXPECT_EQ(kmem_cache_validate(d.c), 0);
}

TEST(DebugValidate, WriteAfterFreeCaughtWhenHandedOutAgain) {
  DebugCache d("dbg-poison-alloc", 64, kAll);
  auto* p = static_cast<uint8_t*>(kmem_cache_alloc(d.c));
  kmem_cache_free(d.c, p);
  p[5] = 0x12;
  const long before = slub_debug_errors();
  void* q = nullptr;
  std::string err = stderr_of([&] { q = kmem_cache_alloc(d.c); });
  EXPECT_EQ(slub_debug_errors(), before + 1);
  EXPECT_NE(err.find("Poison overwritten"), std::string::npos) << err;
  EXPECT_NE(err.find("Marking all objects used"), std::string::npos) << err;
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q, p);  // the damaged slab is out of use: the object came from a new slab
  EXPECT_NE(PageMap::desc_of(q), PageMap::desc_of(p));
  kmem_cache_free(d.c, q);
}

namespace {
void* volatile g_last;
// Static functions of this program (linked with libslub.a, not built with -rdynamic): only
// its symbol table names them. The store after each call keeps the call from being a tail jump.
__attribute__((noinline)) static void* alloc_in_static(kmem_cache* c) {
  void* p = kmem_cache_alloc(c);
  g_last = p;
  return p;
}
__attribute__((noinline)) static void free_in_static(kmem_cache* c, void* p) {
  kmem_cache_free(c, p);
  g_last = nullptr;
}
// The line of `report` that starts with `prefix`, or "".
std::string line_starting(const std::string& report, const char* prefix) {
  for (size_t at = 0; at < report.size();) {
    size_t end = report.find('\n', at);
    if (end == std::string::npos) end = report.size();
    if (report.compare(at, strlen(prefix), prefix) == 0) return report.substr(at, end - at);
    at = end + 1;
  }
  return "";
}
}  // namespace

// In a program linked with the allocator, "Allocated in" and "Freed in" name the caller outside
// the allocator, a static function too (the allocator's own frames are told by their names).
TEST(DebugFree, OwnersAreTheStaticCallers) {
  DebugCache d("dbg-static-owner", 64, kAll);
  void* p = alloc_in_static(d.c);
  free_in_static(d.c, p);
  std::string err = stderr_of([&] { kmem_cache_free(d.c, p); });
  EXPECT_NE(err.find("BUG dbg-static-owner: Object already free"), std::string::npos) << err;
  EXPECT_NE(line_starting(err, "Allocated in ").find("alloc_in_static"), std::string::npos) << err;
  EXPECT_NE(line_starting(err, "Freed in ").find("free_in_static"), std::string::npos) << err;
}

TEST(DebugFree, DoubleFreeIsReportedAndIgnored) {
  DebugCache d("dbg-double", 64, kAll);
  void* p = kmem_cache_alloc(d.c);
  void* keep = kmem_cache_alloc(d.c);
  kmem_cache_free(d.c, p);
  const long before = slub_debug_errors();
  std::string err = stderr_of([&] { kmem_cache_free(d.c, p); });
  EXPECT_EQ(slub_debug_errors(), before + 1);
  EXPECT_NE(err.find("BUG dbg-double: Object already free"), std::string::npos) << err;
  EXPECT_NE(err.find("not freed"), std::string::npos) << err;
  EXPECT_EQ(kmem_cache_validate(d.c), 0);  // the freelist was not corrupted
  void* a = kmem_cache_alloc(d.c);
  void* b = kmem_cache_alloc(d.c);
  EXPECT_NE(a, b);  // a double-linked object would come back twice
  kmem_cache_free(d.c, a);
  kmem_cache_free(d.c, b);
  kmem_cache_free(d.c, keep);
}

TEST(DebugFree, InteriorPointerIsReportedAndIgnored) {
  DebugCache d("dbg-interior", 64, kAll);
  auto* p = static_cast<char*>(kmem_cache_alloc(d.c));
  const long before = slub_debug_errors();
  std::string err = stderr_of([&] { kmem_cache_free(d.c, p + 8); });
  EXPECT_EQ(slub_debug_errors(), before + 1);
  EXPECT_NE(err.find("Invalid object pointer"), std::string::npos) << err;
  EXPECT_EQ(kmem_cache_validate(d.c), 0);
  kmem_cache_info i{};
  kmem_cache_get_info(d.c, &i);
  EXPECT_EQ(i.active_objs, 1u);
  kmem_cache_free(d.c, p);
}

TEST(DebugFree, ForeignPointerIsReportedAndIgnored) {
  DebugCache d("dbg-foreign", 64, kAll);
  void* p = kmem_cache_alloc(d.c);
  char stack_buf[64];
  std::string err = stderr_of([&] { kmem_cache_free(d.c, stack_buf); });
  EXPECT_NE(err.find("not allocated by slub"), std::string::npos) << err;
  EXPECT_EQ(kmem_cache_validate(d.c), 0);
  kmem_cache_free(d.c, p);
}

TEST(DebugFree, WrongCacheIsReportedAndIgnored) {
  DebugCache a("dbg-cache-a", 64, kAll);
  DebugCache b("dbg-cache-b", 64, kAll);
  void* p = kmem_cache_alloc(a.c);
  const long before = slub_debug_errors();
  std::string err = stderr_of([&] { kmem_cache_free(b.c, p); });
  EXPECT_EQ(slub_debug_errors(), before + 1);
  EXPECT_NE(err.find("Wrong slab cache. dbg-cache-b but object is from dbg-cache-a"),
            std::string::npos)
      << err;
  EXPECT_EQ(kmem_cache_validate(a.c), 0);
  EXPECT_EQ(kmem_cache_validate(b.c), 0);
  kmem_cache_free(a.c, p);
}

TEST(DebugValidate, CorruptedFreePointer) {
  // F and P without Z: the objects lost behind the cut are checked as allocated, which
  // P alone does not object to, so the count is exactly the two freelist problems.
  DebugCache d("dbg-freeptr", 64, SLAB_CONSISTENCY_CHECKS | SLAB_POISON);
  KmemCache* s = d.k();
  auto* p = static_cast<char*>(kmem_cache_alloc(d.c));
  auto* q = static_cast<char*>(kmem_cache_alloc(d.c));
  kmem_cache_free(d.c, p);
  kmem_cache_free(d.c, q);  // q heads the slab freelist, its free pointer leads to p
  PageDesc* slab = PageMap::desc_of(q);
  ASSERT_EQ(slab->freelist, q);
  set_freepointer(s, q, reinterpret_cast<void*>(0x1234));
  std::string err = stderr_of([&] { EXPECT_EQ(kmem_cache_validate(d.c), 2); });
  EXPECT_NE(err.find("Freechain corrupt"), std::string::npos) << err;
  EXPECT_NE(err.find("Wrong object count"), std::string::npos) << err;
  EXPECT_EQ(kmem_cache_validate(d.c), 0);  // the chain is cut and the count adjusted
}

TEST(DebugTrack, AllocAndFreeCallsAreSummarised) {
  DebugCache d("dbg-calls", 32, SLAB_STORE_USER);
  std::vector<void*> objs;
  auto site_a = [&] { objs.push_back(kmem_cache_alloc(d.c)); };
  auto site_b = [&] { objs.push_back(kmem_cache_alloc(d.c)); };
  for (int i = 0; i < 3; ++i) site_a();
  for (int i = 0; i < 2; ++i) site_b();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_GE(kmem_cache_print_calls(d.c, 0, fds[1]), 1);
  close(fds[1]);
  char buf[4096] = {};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  ASSERT_GT(n, 0);
  // Counts per call site add up to the live objects.
  long total = 0;
  for (char* line = strtok(buf, "\n"); line != nullptr; line = strtok(nullptr, "\n"))
    total += strtol(line, nullptr, 10);
  EXPECT_EQ(total, 5);
  for (void* p : objs) kmem_cache_free(d.c, p);
  EXPECT_EQ(kmem_cache_print_calls(d.c, 0, 2), 0);  // nothing live
  kmem_cache* plain = kmem_cache_create("dbg-no-user", 32, 0, 0, nullptr);
  EXPECT_EQ(kmem_cache_print_calls(plain, 0, 2), -1);
  kmem_cache_destroy(plain);
}

TEST(DebugTrace, EveryAllocAndFreeIsLogged) {
  DebugCache d("dbg-trace", 48, SLAB_TRACE);
  void* p = nullptr;
  std::string err = stderr_of([&] {
    p = kmem_cache_alloc(d.c);
    kmem_cache_free(d.c, p);
  });
  EXPECT_NE(err.find("TRACE dbg-trace alloc"), std::string::npos) << err;
  EXPECT_NE(err.find("TRACE dbg-trace free"), std::string::npos) << err;
}

TEST(DebugCache, NeverUsesTheLocklessFastPath) {
  DebugCache d("dbg-nofast", 64, SLAB_RED_ZONE);
  slub_bind_vcpu(50);
  void* p = kmem_cache_alloc(d.c);
  KmemCacheCpu* c = per_cpu_ptr(d.k(), 50);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->slab, nullptr);
  EXPECT_EQ(c->freelist_tid.lo, 0u);
  kmem_cache_free(d.c, p);
  slub_bind_vcpu(-1);
}

// fork() while another thread is inside a debug report: the child must not find the report
// lock held. fork_prepare took every allocator lock but the report lock (and the depot's and
// the random pool's), so a child forked while the other thread printed the report of an
// invalid pointer (a report made under no other lock) waited forever for the report lock at
// its own first report. The other thread frees interior pointers in a loop (each a report of
// a dozen lines) and allocates from a U cache (the depot); every child makes one report and
// one tracked allocation, then exits.
TEST(DebugFork, ForkWhileAnotherThreadReportsAndTracks) {
  DebugCache d("dbg-fork", 64, kAll);
  const int saved_err = dup(2);
  FILE* null = fopen("/dev/null", "w");
  ASSERT_NE(null, nullptr);
  dup2(fileno(null), 2);  // the reports (thousands) go nowhere
  std::atomic<bool> stop{false};
  std::thread reporter([&] {
    auto* p = static_cast<char*>(kmem_cache_alloc(d.c));
    while (!stop.load(std::memory_order_relaxed)) {
      kmem_cache_free(d.c, p + 8);      // not an object start: a report
      void* q = kmem_cache_alloc(d.c);  // a stack for the depot
      kmem_cache_free(d.c, q);
    }
    kmem_cache_free(d.c, p);
  });
  int hung = 0, failed = 0;
  for (int i = 0; i < 200 && hung == 0; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      auto* a = static_cast<char*>(kmem_cache_alloc(d.c));
      kmem_cache_free(d.c, a + 8);  // the child's own report
      kmem_cache_free(d.c, a);
      _exit(0);
    }
    int status = 0;
    pid_t r = 0;
    for (int ms = 0; ms < 5000 && (r = waitpid(pid, &status, WNOHANG)) == 0; ms += 5) usleep(5000);
    if (r == 0) {
      ++hung;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failed;
    }
  }
  stop = true;
  reporter.join();
  dup2(saved_err, 2);
  close(saved_err);
  fclose(null);
  EXPECT_EQ(hung, 0) << "a fork child waited 5 s for a lock its parent's other thread held";
  EXPECT_EQ(failed, 0);
}
