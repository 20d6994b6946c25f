// SPDX-License-Identifier: MIT
// KFENCE (src/core/kfence.h) through the public API: the guarded pool's placement, guard pages
// and freed pages, reuse oldest first, the checks on free, the fault reports and that the
// program goes on after them, and sampling by the service thread's interval.
//
// Built twice (CMakeLists.txt). KFENCE_TEST_SAMPLE: KfenceSample.* with SLUB_KFENCE_SAMPLE=1
// and a pool of 3 objects, so that every slub_malloc is sampled while a slot is free; gtest's
// own memory comes from glibc (these tests link libslub.a and call the prefixed API), so the
// pool holds only what a test allocates. KFENCE_TEST_INTERVAL: KfenceInterval.* with
// SLUB_KFENCE=1 (1 ms). Each case is a process of its own (ctest).
// Reports go to descriptor 2, which each case points at a file of its own (reports follow it:
// src/pal/os.h) and reads back.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <slub/slub.h>

#include "core/kfence.h"
#include "core/reentry.h"

namespace {

// Before the allocator starts (its first call reads the options), unless the environment says
// otherwise.
__attribute__((constructor)) void kfence_options() {
#if KFENCE_TEST_SAMPLE
  setenv("SLUB_KFENCE_SAMPLE", "1", 0);
  setenv("SLUB_KFENCE_NUM_OBJECTS", "3", 0);
#else
  setenv("SLUB_KFENCE", "1", 0);
#endif
}

slub_kfence_stats stats() {
  slub_kfence_stats st;
  slub_kfence_get_stats(&st);
  return st;
}

#if KFENCE_TEST_SAMPLE
constexpr uintptr_t kPage = 4096;

uintptr_t page_of(const void* p) {
  return reinterpret_cast<uintptr_t>(p) & ~(kPage - 1);
}
bool at_page_start(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & (kPage - 1)) == 0;
}

// Whether the byte at p can be read: write(2) from an inaccessible buffer fails with EFAULT
// instead of faulting.
bool readable(const void* p) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  const ssize_t n = write(fds[1], p, 1);
  const int err = errno;
  close(fds[0]);
  close(fds[1]);
  if (n != 1) {
    EXPECT_EQ(err, EFAULT);
  }
  return n == 1;
}

char g_log[64];

// Descriptor 2 to a new file, for the reports of this case.
void capture_reports() {
  snprintf(g_log, sizeof g_log, "/tmp/slub_kfence_test.XXXXXX");
  const int fd = mkstemp(g_log);
  ASSERT_GE(fd, 0);
  unlink(g_log);
  dup2(fd, 2);
  close(fd);
}

std::string log_text() {
  std::string s;
  char buf[4096];
  for (off_t at = 0;;) {
    const ssize_t n = pread(2, buf, sizeof buf, at);
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return s;
}
size_t count(const std::string& text, const char* what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A pool object of `size` bytes placed at the page's start (left) or against its end.
char* pool_object(size_t size, bool left) {
  for (int i = 0; i < 4; ++i) {
    char* p = static_cast<char*>(slub_malloc(size));
    if (p == nullptr || !slub_kfence_object(p)) return p;  // the test fails on it
    if (at_page_start(p) == left) return p;
    slub_free(p);
  }
  return nullptr;
}

class KfenceSample : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!stats().enabled || stats().sample_every != 1) GTEST_SKIP() << "needs SLUB_KFENCE_SAMPLE=1";
    capture_reports();
  }
};

TEST_F(KfenceSample, ObjectsAreAloneOnAPageBetweenGuards) {
  char* a = static_cast<char*>(slub_malloc(32));
  char* b = static_cast<char*>(slub_malloc(32));
  ASSERT_TRUE(slub_kfence_object(a));
  ASSERT_TRUE(slub_kfence_object(b));
  EXPECT_NE(at_page_start(a), at_page_start(b)) << "placed alternately";
  char* right = at_page_start(a) ? b : a;
  char* left = at_page_start(a) ? a : b;
  EXPECT_EQ(page_of(right) + kPage, reinterpret_cast<uintptr_t>(right + 32)) << "against the end";
  EXPECT_EQ(reinterpret_cast<uintptr_t>(right) % 16, 0u);
  EXPECT_EQ(slub_malloc_usable_size(a), 32u);
  EXPECT_TRUE(readable(left) && readable(right + 31));
  EXPECT_FALSE(readable(left - 1)) << "the guard page before";
  EXPECT_FALSE(readable(right + 32)) << "the guard page after";
  EXPECT_GE(page_of(a) > page_of(b) ? page_of(a) - page_of(b) : page_of(b) - page_of(a), 2 * kPage);
  slub_free(a);
  slub_free(b);
  EXPECT_EQ(stats().bugs, 0u);
  EXPECT_EQ(stats().allocations, 2u);
  EXPECT_EQ(stats().frees, 2u);
}

TEST_F(KfenceSample, FreedObjectsPageIsInaccessibleUntilReuse) {
  char* p = static_cast<char*>(slub_malloc(64));
  ASSERT_TRUE(slub_kfence_object(p));
  memset(p, 1, 64);
  EXPECT_EQ(stats().resident_bytes, 4096u);
  slub_free(p);
  EXPECT_FALSE(slub_kfence_object(p));
  EXPECT_FALSE(readable(p));
  EXPECT_EQ(stats().allocated, 0u);
  EXPECT_EQ(stats().resident_bytes, 0u) << "a freed object's page goes back to the OS";
}

TEST_F(KfenceSample, SlotsAreReusedOldestFirstAndCapacityIsCounted) {
  char* a = static_cast<char*>(slub_malloc(16));
  char* b = static_cast<char*>(slub_malloc(16));
  char* c = static_cast<char*>(slub_malloc(16));
  ASSERT_TRUE(slub_kfence_object(a) && slub_kfence_object(b) && slub_kfence_object(c));
  char* d = static_cast<char*>(slub_malloc(16));  // the pool (3 slots) is full
  EXPECT_FALSE(slub_kfence_object(d));
  EXPECT_EQ(stats().skipped_capacity, 1u);
  slub_free(b);
  slub_free(c);
  slub_free(a);
  char* e = static_cast<char*>(slub_malloc(16));
  char* f = static_cast<char*>(slub_malloc(16));
  char* g = static_cast<char*>(slub_malloc(16));
  EXPECT_EQ(page_of(e), page_of(b));
  EXPECT_EQ(page_of(f), page_of(c));
  EXPECT_EQ(page_of(g), page_of(a));
  for (char* p : {d, e, f, g}) slub_free(p);
  EXPECT_EQ(stats().bugs, 0u);
}

TEST_F(KfenceSample, TooLargeForAPageIsNotSampled) {
  void* p = slub_malloc(5000);
  EXPECT_FALSE(slub_kfence_object(p));
  EXPECT_GE(stats().skipped_incompatible, 1u);
  slub_free(p);
}

TEST_F(KfenceSample, DoubleFreeIsReportedOnceAndIgnored) {
  char* p = static_cast<char*>(slub_malloc(40));
  ASSERT_TRUE(slub_kfence_object(p));
  slub_free(p);
  slub_free(p);
  const std::string log = log_text();
  EXPECT_EQ(count(log, "BUG: KFENCE: "), 1u) << log;
  EXPECT_EQ(count(log, "BUG: KFENCE: invalid free in "), 1u) << log;
  EXPECT_NE(log.find("freed by thread "), std::string::npos) << log;
  EXPECT_EQ(stats().bugs, 1u);
  EXPECT_EQ(stats().frees, 1u);
  void* q = slub_malloc(40);  // the pool goes on
  EXPECT_TRUE(slub_kfence_object(q));
  slub_free(q);
}

TEST_F(KfenceSample, FreeOfAnInteriorPointerIsReportedAndTheObjectLives) {
  char* p = static_cast<char*>(slub_malloc(48));
  ASSERT_TRUE(slub_kfence_object(p));
  slub_free(p + 8);
  EXPECT_TRUE(slub_kfence_object(p));
  EXPECT_TRUE(readable(p));
  slub_free(p);
  const std::string log = log_text();
  EXPECT_EQ(count(log, "BUG: KFENCE: invalid free in "), 1u) << log;
  EXPECT_NE(log.find("Invalid free of 0x"), std::string::npos) << log;
  EXPECT_EQ(stats().bugs, 1u);
  EXPECT_EQ(stats().allocated, 0u);
}

TEST_F(KfenceSample, CanaryCorruptionIsFoundOnFree) {
  // 13 bytes against the page's end, aligned down to 8 (kmalloc-16): 3 canary bytes follow.
  char* p = pool_object(13, false);
  ASSERT_TRUE(p != nullptr && slub_kfence_object(p));
  EXPECT_EQ(slub_malloc_usable_size(p), 13u);
  reinterpret_cast<volatile char*>(p)[13] = 0x11;
  slub_free(p);
  const std::string log = log_text();
  EXPECT_EQ(count(log, "BUG: KFENCE: memory corruption in "), 1u) << log;
  EXPECT_NE(log.find("Corrupted memory at 0x"), std::string::npos) << log;
  EXPECT_NE(log.find("[ 0x11 . . ]"), std::string::npos) << log;
  EXPECT_EQ(stats().frees, 1u);
}

TEST_F(KfenceSample, CallocZeroesWhatItGivesAndNoMore) {
  char* p = nullptr;
  for (int i = 0; i < 4 && (p == nullptr || at_page_start(p)); ++i) {
    if (p != nullptr) slub_free(p);
    p = static_cast<char*>(slub_calloc(1, 13));
  }
  ASSERT_TRUE(slub_kfence_object(p));
  for (int i = 0; i < 13; ++i) EXPECT_EQ(p[i], 0);
  slub_free(p);  // a memset of the class's 16 bytes would have hit the canaries
  EXPECT_EQ(stats().bugs, 0u) << log_text();
}

TEST_F(KfenceSample, ReallocMovesOutOfThePool) {
  char* p = static_cast<char*>(slub_malloc(24));
  ASSERT_TRUE(slub_kfence_object(p));
  memcpy(p, "0123456789abcdefghijklm", 24);
  char* q = static_cast<char*>(slub_realloc(p, 8000));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(memcmp(q, "0123456789abcdefghijklm", 24), 0);
  EXPECT_FALSE(readable(p));
  slub_free(q);
  EXPECT_EQ(stats().bugs, 0u);
}

int g_ctor_calls = 0;
void ctor(void* p) {
  memset(p, 0x5c, 72);
  ++g_ctor_calls;
}

TEST_F(KfenceSample, CacheObjectsWithAConstructor) {
  kmem_cache* s = kmem_cache_create("kfence-ctor", 72, 8, 0, ctor);
  ASSERT_NE(s, nullptr);
  char* p = static_cast<char*>(kmem_cache_alloc(s));
  ASSERT_TRUE(slub_kfence_object(p));
  EXPECT_EQ(g_ctor_calls, 1);
  EXPECT_EQ(static_cast<unsigned char>(p[71]), 0x5c);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 8, 0u);
  kmem_cache_free(s, p);
  EXPECT_EQ(stats().frees, 1u);
  EXPECT_EQ(stats().bugs, 0u);
  kmem_cache_destroy(s);
}

// A cache with a live object is kept by kmem_cache_destroy, sampled object or not: the
// program sees the same EBUSY either way, and the pool's object stays good to use and free.
TEST_F(KfenceSample, DestroyKeepsACacheWhoseSampledObjectIsLive) {
  kmem_cache* s = kmem_cache_create("kfence-destroy", 40, 8, 0, nullptr);
  ASSERT_NE(s, nullptr);
  char* p = static_cast<char*>(kmem_cache_alloc(s));
  ASSERT_TRUE(slub_kfence_object(p));
  errno = 0;
  EXPECT_EQ(kmem_cache_destroy(s), -1);
  EXPECT_EQ(errno, EBUSY);
  const std::string log = log_text();
  EXPECT_NE(log.find("kmem_cache_destroy kfence-destroy: Slab cache still has objects: 1 KFENCE "
                     "objects"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("still allocated (KFENCE)"), std::string::npos) << log;
  memset(p, 1, 40);
  kmem_cache_free(s, p);
  EXPECT_EQ(kmem_cache_destroy(s), 0);
  EXPECT_EQ(stats().bugs, 0u) << log_text();
  EXPECT_EQ(stats().allocated, 0u);
}

// A signal handler's free of a pool object while its thread is in a slow path is deferred,
// without a list link in the object (over the canaries of one smaller than a pointer): not
// reported as the program's corruption.
TEST_F(KfenceSample, ADeferredFreeOfASmallObjectIsNoCorruption) {
  for (bool left : {true, false}) {
    char* p = pool_object(3, left);
    ASSERT_TRUE(p != nullptr && slub_kfence_object(p));
    const uint64_t frees = stats().frees;
    {
      slub::ReentryGuard inside_a_slow_path;
      slub_free(p);  // deferred: the object is still live
      EXPECT_TRUE(slub_kfence_object(p));
    }  // the guard's end frees it
    EXPECT_FALSE(slub_kfence_object(p));
    EXPECT_EQ(stats().frees, frees + 1);
  }
  EXPECT_EQ(stats().bugs, 0u) << log_text();
}

// A signal handler that interrupted a holder of the pool's lock (any slow path of this thread
// inside the pool) asks for a pool object's size and the pool's counters: answered, not a
// wait for a lock its own thread holds (as for an object not sampled). In a child, which an
// alarm ends if it hangs.
// A signal handler frees a pool object while its thread is in a slow path (deferred), and the
// interrupted code frees the same object too: one double free, reported once as an invalid
// free. (With the deferral's link in the object, the direct free made the page inaccessible
// under it, and the drain faulted on it: a false use-after-free report first.)
TEST_F(KfenceSample, ADeferredFreeThenTheThreadsOwnFreeIsOneInvalidFree) {
  char* p = static_cast<char*>(slub_malloc(40));
  ASSERT_TRUE(slub_kfence_object(p));
  char* q = static_cast<char*>(slub_malloc(24));  // deferred behind p: must not be lost
  ASSERT_TRUE(slub_kfence_object(q));
  {
    slub::ReentryGuard in_a_slow_path;
    slub_free(q);  // the handler's frees: deferred
    slub_free(p);
    --slub::t_thread.slow_depth;  // the interrupted code's own free of p, a direct one
    slub_free(p);
    ++slub::t_thread.slow_depth;
  }  // the deferred frees
  const std::string log = log_text();
  EXPECT_EQ(count(log, "BUG: KFENCE: "), 1u) << log;
  EXPECT_EQ(count(log, "BUG: KFENCE: invalid free in "), 1u) << log;
  EXPECT_FALSE(slub_kfence_object(q));
  EXPECT_EQ(stats().frees, 2u);
  EXPECT_EQ(stats().allocated, 0u);
}

TEST_F(KfenceSample, SizeAndStatsInsideTheLockHoldersSignalHandler) {
  char* p = static_cast<char*>(slub_malloc(40));
  ASSERT_TRUE(slub_kfence_object(p));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(10);
    size_t n;
    slub_kfence_stats st;
    {
      slub::ReentryGuard in_a_slow_path;
      slub::kfence::fork_lock();  // the pool's lock, held as a sampled allocation holds it
      n = slub_malloc_usable_size(p);
      slub_kfence_get_stats(&st);
      slub::kfence::fork_unlock();
    }
    _exit(n == 40 && st.allocated == 1 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                              : "exit " + std::to_string(WEXITSTATUS(status)));
  slub_free(p);
}

// kmem_cache_free into another cache is refused for a sampled object as for any other: the
// object stays live and usable.
TEST_F(KfenceSample, FreeIntoAnotherCacheIsRefused) {
  kmem_cache* a = kmem_cache_create("kfence-a", 40, 8, 0, nullptr);
  kmem_cache* b = kmem_cache_create("kfence-b", 600, 8, 0, nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  char* p = static_cast<char*>(kmem_cache_alloc(a));
  ASSERT_TRUE(slub_kfence_object(p));
  kmem_cache_free(b, p);
  EXPECT_TRUE(slub_kfence_object(p));
  const std::string log = log_text();
  EXPECT_NE(log.find("invalid pointer"), std::string::npos) << log;
  EXPECT_NE(log.find("object of another cache"), std::string::npos) << log;
  memset(p, 2, 40);
  kmem_cache_free(a, p);
  EXPECT_FALSE(slub_kfence_object(p));
  EXPECT_EQ(stats().bugs, 0u) << log_text();
  EXPECT_EQ(kmem_cache_destroy(a), 0);
  EXPECT_EQ(kmem_cache_destroy(b), 0);
}

// A call into a freed pool object: reported once, and then the process dies of the SIGSEGV as
// it would outside the pool (the page a report makes accessible is not executable: returning
// would fault again forever). In a child, which an alarm ends if it loops.
TEST_F(KfenceSample, ACallIntoTheFreedPoolIsReportedOnceAndKills) {
  char* p = static_cast<char*>(slub_malloc(64));
  ASSERT_TRUE(slub_kfence_object(p));
  slub_free(p);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(10);
    auto* fn = reinterpret_cast<void (*)()>(p);
    fn();
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const std::string how = WIFSIGNALED(status)
                              ? "killed by signal " + std::to_string(WTERMSIG(status))
                              : "exit " + std::to_string(WEXITSTATUS(status));
  const std::string log = log_text();
  EXPECT_FALSE(WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) << "the fault looped";
  // Killed by the SIGSEGV; under a sanitizer its own handler (the default action there)
  // reports the signal and exits instead.
  const bool segv = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
  const bool sanitizer = WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
                         log.find("DEADLYSIGNAL") != std::string::npos;
  EXPECT_TRUE(segv || sanitizer) << how;
  EXPECT_EQ(count(log, "BUG: KFENCE: "), 1u) << log.substr(0, 4000);
  EXPECT_EQ(count(log, "BUG: KFENCE: use-after-free read in "), 1u) << log.substr(0, 4000);
}

TEST_F(KfenceSample, UseAfterFreeIsReportedOnceAndTheProgramGoesOn) {
  char* p = static_cast<char*>(slub_malloc(32));
  ASSERT_TRUE(slub_kfence_object(p));
  p[0] = 42;
  slub_free(p);
  volatile char* v = p;
  // Faults, is reported, the page made accessible, and reads on: zeros, as the freed page went
  // back to the OS.
  EXPECT_EQ(v[0], 0);
  EXPECT_EQ(v[1], 0);
  EXPECT_EQ(stats().resident_bytes, 4096u) << "the freed page the report opened";
  const std::string log = log_text();
  EXPECT_EQ(count(log, "BUG: KFENCE: use-after-free read in "), 1u) << log;
  EXPECT_NE(log.find("Use-after-free read at 0x"), std::string::npos) << log;
  EXPECT_NE(log.find("allocated by thread "), std::string::npos) << log;
  EXPECT_NE(log.find("freed by thread "), std::string::npos) << log;
  EXPECT_EQ(stats().bugs, 1u);
}

TEST_F(KfenceSample, OutOfBoundsWriteIsReportedOnce) {
  char* p = pool_object(32, false);
  ASSERT_TRUE(p != nullptr && slub_kfence_object(p));
  volatile char* v = p;
  v[32] = 1;  // the guard page: reported, then made accessible
  v[33] = 2;
  const std::string log = log_text();
  EXPECT_EQ(count(log, "BUG: KFENCE: out-of-bounds write in "), 1u) << log;
  EXPECT_NE(log.find("(1B right of kfence-#"), std::string::npos) << log;
  EXPECT_EQ(stats().bugs, 1u);
  EXPECT_EQ(stats().resident_bytes, 2 * kPage) << "the object's page and the opened guard";
  slub_free(p);
  // The slot's next object finds its guard pages closed again.
  char* q = static_cast<char*>(slub_malloc(32));
  char* r = static_cast<char*>(slub_malloc(32));
  char* s = static_cast<char*>(slub_malloc(32));
  for (char* o : {q, r, s}) EXPECT_FALSE(readable(at_page_start(o) ? o - 1 : o + 32));
  for (char* o : {q, r, s}) slub_free(o);
}

#else
class KfenceInterval : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!stats().enabled || stats().interval_ms == 0) GTEST_SKIP() << "needs SLUB_KFENCE=<ms>";
  }
};

// The service thread arms the sampler and closes the CPU slots: some allocation among many
// must come from the pool (the interval is 1 ms; the bound only keeps a broken build from
// running forever).
TEST_F(KfenceInterval, TheServiceThreadArmsSampling) {
  void* keep[32] = {};
  int found = 0;
  for (long i = 0; i < 200000000 && found < 3; ++i) {
    const int k = static_cast<int>(i & 31);
    slub_free(keep[k]);
    keep[k] = slub_malloc(16 + static_cast<size_t>(i % 300));
    if (slub_kfence_object(keep[k])) ++found;
  }
  for (void* p : keep) slub_free(p);
  EXPECT_EQ(found, 3);
  EXPECT_GE(stats().allocations, 3u);
  EXPECT_EQ(stats().bugs, 0u);
}
#endif

}  // namespace
