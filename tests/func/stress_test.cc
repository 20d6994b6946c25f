// SPDX-License-Identifier: MIT
// Multi-threaded functional stress: cross-thread frees with content checks, kmem_cache objects
// freed by other threads, virtual CPUs, concurrent flushes, fork while other threads allocate,
// and many short-lived threads.
#include <slub/slub.h>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "func_util.h"

using namespace slub_func;

namespace {

constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;

// A block from slub_malloc (cache == nullptr) or an object of a cache.
struct Block {
  void* p;
  size_t size;
  uint64_t seed;
  kmem_cache* cache;
};

// Failures seen by worker threads; gtest assertions are made on the main thread.
class Errors {
 public:
  void add(const std::string& what) {
    if (count_.fetch_add(1) < 5) {
      std::lock_guard<std::mutex> g(m_);
      first_ += what + "\n";
    }
  }
  int count() const { return count_.load(); }
  std::string first() {
    std::lock_guard<std::mutex> g(m_);
    return first_;
  }

 private:
  std::atomic<int> count_{0};
  std::mutex m_;
  std::string first_;
};

struct Mailbox {
  std::mutex m;
  std::deque<Block> q;
  void push(const Block& b) {
    std::lock_guard<std::mutex> g(m);
    q.push_back(b);
  }
  bool pop(Block* b) {
    std::lock_guard<std::mutex> g(m);
    if (q.empty()) return false;
    *b = q.front();
    q.pop_front();
    return true;
  }
};

void release(const Block& b, Errors& errors, const char* where) {
  if (!verify_block(b.p, b.size, b.seed)) {
    errors.add(std::string(where) + ": block of " + std::to_string(b.size) + " at " +
               std::to_string(reinterpret_cast<uintptr_t>(b.p)) + " corrupted" +
               (b.cache ? " (cache object)" : ""));
  }
  if (b.cache != nullptr)
    kmem_cache_free(b.cache, b.p);
  else
    slub_free(b.p);
}

// Shared caches used by the workers.
struct Caches {
  std::vector<kmem_cache*> list;
  Caches() {
    const size_t sizes[] = {32, 200, 1000};
    for (size_t s : sizes) {
      std::string name = "func-stress-" + std::to_string(s);
      list.push_back(kmem_cache_create(name.c_str(), s, 0, 0, nullptr));
    }
  }
  ~Caches() {
    for (kmem_cache* c : list)
      if (c != nullptr) kmem_cache_destroy(c);
  }
};

Block alloc_block(Rng& rng, const Caches& caches, uint64_t seed, Errors& errors) {
  Block b{};
  b.seed = seed;
  if (rng.below(5) == 0) {
    size_t k = rng.below(caches.list.size());
    b.cache = caches.list[k];
    b.size = kmem_cache_size(b.cache);
    b.p = kmem_cache_alloc(b.cache);
  } else {
    b.size = rng.below(400) == 0 ? 1 * MiB : rng.log_size(8, 64 * KiB);
    b.p = slub_malloc(b.size);
  }
  if (b.p == nullptr) {
    errors.add("allocation of " + std::to_string(b.size) + " failed");
    return b;
  }
  fill_block(b.p, b.size, seed);
  return b;
}

// The churn each worker runs: allocate, keep some locally, send half to the next thread.
struct Churn {
  int nthreads;
  int ops;
  Caches* caches;
  std::vector<Mailbox>* boxes;
  std::atomic<int>* producers_done;
  Errors* errors;

  void run(int id, uint64_t seed) {
    Rng rng(seed * 7919 + id);
    std::vector<Block> local;
    Mailbox& mine = (*boxes)[id];
    Mailbox& next = (*boxes)[(id + 1) % nthreads];
    Block b;
    for (int op = 0; op < ops; ++op) {
      Block nb = alloc_block(rng, *caches, rng.next(), *errors);
      if (nb.p == nullptr) continue;
      if (rng.below(2) == 0) {
        next.push(nb);
      } else {
        local.push_back(nb);
        if (local.size() > 64) {
          size_t k = rng.below(local.size());
          release(local[k], *errors, "local");
          local[k] = local.back();
          local.pop_back();
        }
      }
      if (op % 32 == 0)
        while (mine.pop(&b)) release(b, *errors, "remote");
    }
    for (const Block& l : local) release(l, *errors, "local");
    producers_done->fetch_add(1);
    for (;;) {
      bool all_done = producers_done->load() == nthreads;
      while (mine.pop(&b)) release(b, *errors, "remote");
      if (all_done) break;
      std::this_thread::yield();
    }
    while (mine.pop(&b)) release(b, *errors, "remote");
  }
};

int nprocs_conf() {
  return static_cast<int>(sysconf(_SC_NPROCESSORS_CONF));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST(Stress, CrossThreadFreesWithChecksums) {
  Caches caches;
  for (kmem_cache* c : caches.list) ASSERT_NE(c, nullptr);
  const int n = 4;
  std::vector<Mailbox> boxes(n);
  std::atomic<int> done{0};
  Errors errors;
  Churn churn{n, 30000, &caches, &boxes, &done, &errors};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back([&, i] { churn.run(i, 1); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.count(), 0) << errors.first();
  for (kmem_cache* c : caches.list) {
    kmem_cache_shrink(c);
    kmem_cache_info i{};
    ASSERT_EQ(kmem_cache_get_info(c, &i), 0);
    EXPECT_EQ(i.active_objs, 0u) << kmem_cache_name(c) << ": objects still active";
  }
}

TEST(Stress, ConcurrentFlushIdleWhileThreadsChurn) {
  Caches caches;
  for (kmem_cache* c : caches.list) ASSERT_NE(c, nullptr);
  const int n = 3;
  std::vector<Mailbox> boxes(n);
  std::atomic<int> done{0};
  Errors errors;
  Churn churn{n, 15000, &caches, &boxes, &done, &errors};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back([&, i] { churn.run(i, 2); });
  int flushes = 0;
  while (done.load() < n) {
    int r = slub_flush_idle();
    if (r < 0) errors.add("slub_flush_idle returned " + std::to_string(r));
    ++flushes;
    for (kmem_cache* c : caches.list) kmem_cache_shrink(c);
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(flushes, 0);
  EXPECT_EQ(errors.count(), 0) << errors.first();
}

// ---------------------------------------------------------------------------------------------
// Virtual CPUs

TEST(StressVcpu, BindRejectsOutOfRange) {
  std::thread t([] {
    EXPECT_EQ(slub_bind_vcpu(SLUB_MAX_CPUS), -1);
    EXPECT_EQ(slub_bind_vcpu(-2), -1);
    EXPECT_EQ(slub_bind_vcpu(INT_MAX), -1);
    EXPECT_EQ(slub_bind_vcpu(INT_MIN), -1);
    int cpu = slub_current_cpu();
    EXPECT_GE(cpu, 0);
    EXPECT_LT(cpu, nprocs_conf()) << "an unbound thread should be on a real CPU";
    // Bind, rebind and unbind.
    EXPECT_EQ(slub_bind_vcpu(17), 0);
    EXPECT_EQ(slub_current_cpu(), 17);
    EXPECT_EQ(slub_bind_vcpu(SLUB_MAX_CPUS), -1);
    EXPECT_EQ(slub_current_cpu(), 17) << "a failed bind changed the binding";
    EXPECT_EQ(slub_bind_vcpu(4000), 0);
    EXPECT_EQ(slub_current_cpu(), 4000);
    void* p = slub_malloc(100);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(slub_bind_vcpu(-1), 0);
    slub_free(p);  // freed from another CPU than it was allocated on
    cpu = slub_current_cpu();
    EXPECT_GE(cpu, 0);
    EXPECT_LT(cpu, nprocs_conf());
  });
  t.join();
}

TEST(StressVcpu, ThreadsOnSpreadVirtualCpus) {
  const int vcpus[] = {0, 511, 1024, 2047, 3000, 4095, 1, 2048};
  const int n = 8;
  Caches caches;
  for (kmem_cache* c : caches.list) ASSERT_NE(c, nullptr);
  std::vector<Mailbox> boxes(n);
  std::atomic<int> done{0};
  Errors errors;
  Churn churn{n, 8000, &caches, &boxes, &done, &errors};
  std::mutex survivors_m;
  std::vector<Block> survivors;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      int k = vcpus[i];
      if (slub_bind_vcpu(k) != 0) errors.add("slub_bind_vcpu(" + std::to_string(k) + ") failed");
      if (slub_current_cpu() != k)
        errors.add("bound to " + std::to_string(k) +
                   " but slub_current_cpu() = " + std::to_string(slub_current_cpu()));
      churn.run(i, 3);
      // Leave blocks allocated on this vCPU for the main thread to check after a flush.
      Rng rng(k);
      std::vector<Block> mine;
      for (int j = 0; j < 50; ++j) {
        Block b = alloc_block(rng, caches, k * 100 + j, errors);
        if (b.p != nullptr) mine.push_back(b);
      }
      if (slub_current_cpu() != k) errors.add("binding lost during churn");
      if (slub_bind_vcpu(-1) != 0) errors.add("slub_bind_vcpu(-1) failed");
      std::lock_guard<std::mutex> g(survivors_m);
      survivors.insert(survivors.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.count(), 0) << errors.first();

  EXPECT_GE(slub_flush_idle(), 0);
  for (const Block& b : survivors)
    EXPECT_TRUE(verify_block(b.p, b.size, b.seed)) << "block corrupted by slub_flush_idle";
  // Allocate more after the flush; then free everything.
  std::vector<Block> more;
  Rng rng(99);
  for (int j = 0; j < 500; ++j) {
    Block b = alloc_block(rng, caches, 5000 + j, errors);
    ASSERT_NE(b.p, nullptr);
    more.push_back(b);
  }
  for (const Block& b : survivors) release(b, errors, "survivor");
  for (const Block& b : more) release(b, errors, "after flush");
  EXPECT_EQ(errors.count(), 0) << errors.first();
  EXPECT_GE(slub_flush_idle(), 0);
}

TEST(StressVcpu, SeveralThreadsShareOneVirtualCpu) {
  // Bound threads use the vCPU's state whatever core they run on, so several threads on one
  // vCPU interleave on the same per-CPU freelist, as threads preempted on one real CPU do.
  const int n = 4;
  Caches caches;
  for (kmem_cache* c : caches.list) ASSERT_NE(c, nullptr);
  std::vector<Mailbox> boxes(n);
  std::atomic<int> done{0};
  Errors errors;
  Churn churn{n, 10000, &caches, &boxes, &done, &errors};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      if (slub_bind_vcpu(100) != 0) errors.add("slub_bind_vcpu(100) failed");
      churn.run(i, 4);
      slub_bind_vcpu(-1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.count(), 0) << errors.first();
}

// ---------------------------------------------------------------------------------------------
// fork

namespace {

// What a child does after fork: returns its exit code (0: all good).
int child_work(const std::vector<Block>& inherited) {
  int rc = 0;
  // Blocks allocated before the fork are intact and freeable here.
  for (size_t i = 0; i < inherited.size(); ++i) {
    const Block& b = inherited[i];
    if (!verify_block(b.p, b.size, b.seed)) rc = 2;
    if (i % 2 == 0) slub_free(b.p);
  }
  Rng rng(getpid());
  std::vector<Block> live;
  for (int k = 0; k < 3000; ++k) {
    size_t size = rng.log_size(8, 64 * KiB);
    void* p = slub_malloc(size);
    if (p == nullptr) return 3;
    Block b{p, size, static_cast<uint64_t>(k), nullptr};
    fill_block(p, size, b.seed);
    live.push_back(b);
    if (live.size() > 32) {
      size_t j = rng.below(live.size());
      if (!verify_block(live[j].p, live[j].size, live[j].seed)) rc = 4;
      slub_free(live[j].p);
      live[j] = live.back();
      live.pop_back();
    }
  }
  for (const Block& b : live) {
    if (!verify_block(b.p, b.size, b.seed)) rc = 4;
    slub_free(b.p);
  }
  kmem_cache* c = kmem_cache_create("func-fork-child", 88, 0, 0, nullptr);
  if (c == nullptr) return 5;
  std::vector<void*> objs;
  for (int k = 0; k < 500; ++k) {
    void* p = kmem_cache_alloc(c);
    if (p == nullptr) return 6;
    fill_block(p, 88, 1);
    objs.push_back(p);
  }
  for (void* p : objs) {
    if (!verify_block(p, 88, 1)) rc = 7;
    kmem_cache_free(c, p);
  }
  if (kmem_cache_destroy(c) != 0) rc = 8;
  // A thread in the child allocates too.
  std::thread t([&] {
    for (int k = 0; k < 200; ++k) {
      void* p = slub_malloc(64 + k);
      if (p == nullptr) {
        rc = 9;
        return;
      }
      std::memset(p, k, 64 + k);
      slub_free(p);
    }
  });
  t.join();
  return rc;
}

}  // namespace

TEST(StressFork, ForkWhileOtherThreadsAllocate) {
  std::atomic<bool> stop{false};
  Errors errors;
  std::vector<std::thread> churners;
  for (int i = 0; i < 3; ++i) {
    churners.emplace_back([&, i] {
      Rng rng(1000 + i);
      std::vector<Block> live;
      while (!stop.load(std::memory_order_relaxed)) {
        size_t size = rng.log_size(8, 128 * KiB);
        void* p = slub_malloc(size);
        if (p == nullptr) {
          errors.add("churn malloc failed");
          continue;
        }
        Block b{p, size, rng.next(), nullptr};
        fill_block(p, size, b.seed);
        live.push_back(b);
        if (live.size() > 64) {
          size_t j = rng.below(live.size());
          release(live[j], errors, "churn");
          live[j] = live.back();
          live.pop_back();
        }
      }
      for (const Block& b : live) release(b, errors, "churn");
    });
  }

  std::vector<Block> inherited;
  Rng rng(5);
  for (int k = 0; k < 64; ++k) {
    size_t size = rng.log_size(8, 512 * KiB);
    void* p = slub_malloc(size);
    ASSERT_NE(p, nullptr);
    inherited.push_back({p, size, static_cast<uint64_t>(k), nullptr});
    fill_block(p, size, k);
  }

  for (int f = 0; f < 20; ++f) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork failed";
    if (pid == 0) _exit(child_work(inherited));

    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    pid_t r = 0;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (r == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "fork " << f << ": child did not finish in 10 s (deadlocked allocator?)";
      break;  // the next children would most likely hang too
    }
    ASSERT_EQ(r, pid);
    if (WIFSIGNALED(status)) {
      ADD_FAILURE() << "fork " << f << ": child killed by signal " << WTERMSIG(status);
    } else {
      EXPECT_TRUE(WIFEXITED(status));
      EXPECT_EQ(WEXITSTATUS(status), 0)
          << "fork " << f
          << ": child failed (2: inherited block corrupted, 3: malloc failed, "
             "4: block corrupted, 5-8: kmem_cache, 9: thread in child)";
    }
  }

  stop = true;
  for (auto& t : churners) t.join();
  EXPECT_EQ(errors.count(), 0) << errors.first();
  for (const Block& b : inherited) {
    EXPECT_TRUE(verify_block(b.p, b.size, b.seed)) << "parent's block corrupted";
    slub_free(b.p);
  }
}

// ---------------------------------------------------------------------------------------------
// Short-lived threads

TEST(StressThreads, ThousandShortLivedThreads) {
  Caches caches;
  for (kmem_cache* c : caches.list) ASSERT_NE(c, nullptr);
  Errors errors;
  const int total = 1000;
  const int concurrent = 4;
  std::vector<std::vector<Block>> left(total);
  for (int base = 0; base < total; base += concurrent) {
    std::vector<std::thread> threads;
    for (int t = base; t < base + concurrent && t < total; ++t) {
      // Blocks the main thread allocated, that this thread only frees.
      std::vector<Block> given;
      Rng grng(t);
      for (int k = 0; k < 8; ++k) {
        Block b = alloc_block(grng, caches, 77 + k, errors);
        if (b.p != nullptr) given.push_back(b);
      }
      threads.emplace_back([&, t, given] {
        for (const Block& b : given) release(b, errors, "given");
        Rng rng(t * 31 + 7);
        std::vector<Block> live;
        for (int k = 0; k < 300; ++k) {
          Block b{};
          b.seed = rng.next();
          if (rng.below(4) == 0) {
            b.cache = caches.list[rng.below(caches.list.size())];
            b.size = kmem_cache_size(b.cache);
            b.p = kmem_cache_alloc(b.cache);
          } else {
            b.size = rng.log_size(8, 8 * KiB);
            b.p = slub_malloc(b.size);
          }
          if (b.p == nullptr) {
            errors.add("allocation failed in short-lived thread");
            continue;
          }
          fill_block(b.p, b.size, b.seed);
          live.push_back(b);
          if (live.size() > 16 && rng.below(3) != 0) {
            size_t j = rng.below(live.size());
            release(live[j], errors, "short-lived");
            live[j] = live.back();
            live.pop_back();
          }
        }
        // Keep a few for the main thread; free the rest.
        while (live.size() > 6) {
          release(live.back(), errors, "short-lived");
          live.pop_back();
        }
        left[t] = std::move(live);
      });
    }
    for (auto& th : threads) th.join();
  }
  size_t n = 0;
  for (auto& v : left) {
    for (const Block& b : v) {
      release(b, errors, "left by an exited thread");
      ++n;
    }
  }
  EXPECT_EQ(n, static_cast<size_t>(total) * 6);
  EXPECT_EQ(errors.count(), 0) << errors.first();
  for (kmem_cache* c : caches.list) {
    kmem_cache_shrink(c);
    kmem_cache_info i{};
    ASSERT_EQ(kmem_cache_get_info(c, &i), 0);
    EXPECT_EQ(i.active_objs, 0u) << kmem_cache_name(c);
  }
}
