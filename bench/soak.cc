// SPDX-License-Identifier: MIT
// soak: a bounded stress of the allocator with content checks (docs/RELIABILITY.md).
//
//   soak [--ops N] [--threads T] [--seconds S] [--rss-log FILE] [--seed X] [--live L]
//        [--period S] [--fork-ms M] [--child-timeout S] [--rss-factor F] [--rss-slack-mb M]
//        [--settle S] [--quiet] [--inject corrupt|hang-child]
//
// T worker slots (default 16) share N operations (default 100 million). An operation is one
// malloc, calloc, aligned alloc, realloc, free, kmem_cache_alloc/zalloc or kmem_cache_free,
// through libslub.a (slub_malloc, ...; libc's malloc is left to the C++ runtime). Every block
// is filled with a pattern derived from its address, size and a random seed (all of a small
// block; the first 512 and last 128 bytes and one word per 4 KiB page of a big one) and
// checked before it is freed or reallocated; calloc/zalloc memory is checked to be zero, and
// objects of the constructor cache to be in their constructed state when allocated.
//
// What runs at the same time:
//   - workers: each keeps up to L live blocks (default 2048) around a target that rises and
//     falls with a period of S seconds (default 10), so live memory grows and shrinks; sizes
//     are mostly 1..256 bytes, some up to 4 KiB and 64 KiB, rarely up to 1 MiB and 2 MiB
//     (huge mappings); a quarter of the blocks come from 4 shared caches (40 B, 200 B
//     cache-line aligned, 96 B with a constructor, 3000 B) and a few from a cache private to
//     the thread, created when it starts and destroyed when it ends (destroy must succeed);
//   - cross-thread frees: some blocks are sent to another slot's bounded queue (a mutex-
//     protected ring) and freed, after their check, by whichever thread runs that slot;
//   - thread churn: a worker thread runs one "generation" of 50k..400k operations and exits;
//     it frees half of its live blocks and leaves the other half in an orphan pool that the
//     other threads adopt (check and free); the main thread starts a new thread for the slot;
//   - fork: every M ms (default 500) the main thread forks; the child allocates, checks and
//     frees a few thousand blocks on two threads, creates and destroys a cache, and _exits;
//     the parent waits at most --child-timeout seconds (default 30): a hung child is a failure;
//   - a sampler thread reads RSS from /proc/self/statm every 100 ms, appends
//     "seconds,rss_bytes,live_bytes,peak_live_bytes,bound_bytes,ops" to the log, and checks
//     that RSS <= F * peak live bytes + slack (default 3 * peak + 64 MiB; live bytes are the
//     sizes the program asked for). It is also the watchdog: a run still going 60 s after
//     the time cap is reported as a hang.
// Everything stops at the time cap (--seconds, default 600); a run cut short by it is not a
// failure (the summary says complete=0). At the end every block is checked and freed, the
// shared caches are destroyed (which fails if the allocator's counts disagree), any report of
// the allocator's debug mode (run under SLUB_DEBUG=...) counts as a failure, and the
// program waits --settle seconds (default 3) so that the log shows RSS after the flusher's
// purge.
//
// --inject corrupt|hang-child tests the detectors: it flips one byte of a live block, or makes
// the first fork child hang; the run must then fail with status 1 or 3.
//
// Exit status: 0 ok; 1 content mismatch; 2 usage; 3 child failed or hung; 4 RSS over the
// bound; 5 watchdog (hang); 6 allocation or cache API failure; 7 bookkeeping mismatch.
// Prints one line "RESULT key=value ..." for scripts, then a human summary.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <slub/slub.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "cli.h"

namespace {

// ---- options -------------------------------------------------------------------------------
struct Options {
  uint64_t ops = 100'000'000;
  int threads = 16;
  double seconds = 600;
  const char* rss_log = nullptr;
  uint64_t seed = 0;  // 0: from the clock
  int live = 2048;
  double period = 10;
  int fork_ms = 500;
  double child_timeout = 30;
  double rss_factor = 3;
  double rss_slack_mb = 64;
  double settle = 3;
  bool quiet = false;
  const char* inject = nullptr;  // self-test of the detectors: "corrupt" or "hang-child"
};
Options g_opt;

// ---- exit codes and failure reporting ------------------------------------------------------
enum Exit {
  kOk = 0,
  kMismatch = 1,
  kUsage = 2,
  kChild = 3,
  kRss = 4,
  kHang = 5,
  kApi = 6,
  kBook = 7
};

std::atomic<bool> g_stop{false};  // time cap or failure: workers wind down
std::atomic<int> g_exit{kOk};     // first failure's code
std::atomic<int> g_reports{0};    // failure lines printed (at most 40)
const auto g_start = std::chrono::steady_clock::now();

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - g_start).count();
}

// Writes with write(2) from a stack buffer: usable in the fork child and in the sampler.
[[gnu::format(printf, 1, 2)]] void say_err(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t len = std::min(static_cast<size_t>(n), sizeof buf - 1);
  ssize_t w = write(2, buf, len);
  (void)w;
}

[[gnu::format(printf, 2, 3)]] void fail(int code, const char* fmt, ...) {
  int expected = kOk;
  g_exit.compare_exchange_strong(expected, code);
  g_stop.store(true);
  if (g_reports.fetch_add(1) >= 40) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  say_err("soak: FAIL [t=%.1fs]: %s\n", now_s(), buf);
}

// ---- random numbers ------------------------------------------------------------------------
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() { return mix64(s += 0x9E3779B97F4A7C15ull); }
  uint64_t below(uint64_t n) { return next() % n; }
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }  // [lo, hi]
};

// ---- content patterns ----------------------------------------------------------------------
constexpr size_t kHead = 512, kTail = 128, kPage = 4096;

inline uint64_t key_of(const void* p, size_t size, uint64_t seed) {
  return mix64(reinterpret_cast<uintptr_t>(p) ^ (static_cast<uint64_t>(size) << 40) ^ seed);
}
inline uint64_t word_at(uint64_t key, size_t off) {
  return key ^ (off * 0xD6E8FEB86659FD93ull);
}
inline uint8_t byte_at(uint64_t key, size_t off) {
  return static_cast<uint8_t>(word_at(key, off & ~size_t{7}) >> ((off & 7) * 8));
}

// The checked regions of a block of `size` bytes: all of it up to 512 bytes; beyond, the
// first 512 bytes, one word per 4 KiB page and the last 128 bytes.
template <class F>
inline void for_regions(size_t size, F&& f) {
  size_t head = std::min(size, kHead);
  f(size_t{0}, head);
  if (size > kHead) {
    size_t tail = std::max(size - kTail, kHead);
    for (size_t off = kPage; off + 8 <= tail; off += kPage) f(off, size_t{8});
    f(tail, size - tail);
  }
}

inline void fill_range(uint8_t* base, uint64_t key, size_t off, size_t end) {
  while (off < end && (off & 7)) base[off] = byte_at(key, off), off++;
  for (; off + 8 <= end; off += 8) {
    uint64_t w = word_at(key, off);
    std::memcpy(base + off, &w, 8);
  }
  while (off < end) base[off] = byte_at(key, off), off++;
}

// Returns the first offset in [off, end) that does not hold the pattern, or SIZE_MAX.
inline size_t check_range(const uint8_t* base, uint64_t key, size_t off, size_t end) {
  while (off < end && (off & 7)) {
    if (base[off] != byte_at(key, off)) return off;
    off++;
  }
  for (; off + 8 <= end; off += 8) {
    uint64_t w;
    std::memcpy(&w, base + off, 8);
    if (w != word_at(key, off)) {
      for (size_t i = off;; i++)
        if (base[i] != byte_at(key, i)) return i;
    }
  }
  for (; off < end; off++)
    if (base[off] != byte_at(key, off)) return off;
  return SIZE_MAX;
}

inline size_t check_zero(const uint8_t* base, size_t off, size_t end) {
  for (; off < end; off++)
    if (base[off] != 0) return off;
  return SIZE_MAX;
}

void fill(void* p, size_t size, uint64_t key) {
  auto* b = static_cast<uint8_t*>(p);
  for_regions(size, [&](size_t off, size_t len) { fill_range(b, key, off, off + len); });
}

// Checks the regions of a `size`-byte block below `limit`; returns the bad offset or SIZE_MAX.
size_t check(const void* p, size_t size, uint64_t key, size_t limit = SIZE_MAX) {
  const auto* b = static_cast<const uint8_t*>(p);
  size_t bad = SIZE_MAX;
  for_regions(size, [&](size_t off, size_t len) {
    if (bad != SIZE_MAX || off >= limit) return;
    bad = check_range(b, key, off, std::min(off + len, limit));
  });
  return bad;
}

size_t check_zeroed(const void* p, size_t size) {
  const auto* b = static_cast<const uint8_t*>(p);
  size_t bad = SIZE_MAX;
  for_regions(size, [&](size_t off, size_t len) {
    if (bad == SIZE_MAX) bad = check_zero(b, off, off + len);
  });
  return bad;
}

// ---- caches --------------------------------------------------------------------------------
constexpr uint64_t kCtorMagic = 0xC7C7'5EED'0000'0000ull;
constexpr size_t kCtorSize = 96;

void ctor96(void* obj) {
  auto* w = static_cast<uint64_t*>(obj);
  for (size_t i = 0; i < kCtorSize / 8; i++) w[i] = kCtorMagic + i;
}
size_t check_ctor_state(const void* obj) {
  const auto* w = static_cast<const uint64_t*>(obj);
  for (size_t i = 0; i < kCtorSize / 8; i++)
    if (w[i] != kCtorMagic + i) return i * 8;
  return SIZE_MAX;
}

struct SharedCache {
  const char* name;
  size_t size;
  size_t align;
  unsigned long flags;
  kmem_ctor_t ctor;
  kmem_cache* cache;
};
SharedCache g_caches[] = {
    {"soak-40", 40, 0, 0, nullptr, nullptr},
    {"soak-200-hw", 200, 0, SLAB_HWCACHE_ALIGN, nullptr, nullptr},
    {"soak-ctor-96", kCtorSize, 0, 0, ctor96, nullptr},
    {"soak-3000", 3000, 0, 0, nullptr, nullptr},
};
constexpr int kNumCaches = sizeof g_caches / sizeof g_caches[0];
constexpr int kCtorCache = 2;

// ---- blocks --------------------------------------------------------------------------------
enum Kind : uint8_t { kMalloc = 0, kCache0 = 1, kPrivate = kCache0 + kNumCaches };

struct Block {
  void* p;
  uint64_t key;
  uint32_t size;
  uint8_t kind;
};

// Counters, summed over threads (flushed from thread-local deltas).
std::atomic<int64_t> g_live_bytes{0};
std::atomic<uint64_t> g_ops{0};
std::atomic<uint64_t> g_cross_sent{0}, g_cross_freed{0}, g_orphaned{0}, g_adopted{0},
    g_threads_started{0}, g_forks{0}, g_child_ops{0}, g_huge{0}, g_reallocs{0}, g_private_caches{0};
std::atomic<int64_t> g_peak_live{0};

struct Tally {  // a thread's counts, flushed now and then
  int64_t live = 0;
  uint64_t ops = 0;
  uint64_t flushed = 0;  // ops already added to g_ops
  uint64_t total() const { return flushed + ops; }
  void flush() {
    if (live) g_live_bytes.fetch_add(live, std::memory_order_relaxed), live = 0;
    if (ops) g_ops.fetch_add(ops, std::memory_order_relaxed), flushed += ops, ops = 0;
  }
};

const char* kind_name(uint8_t kind) {
  if (kind == kMalloc) return "malloc";
  if (kind == kPrivate) return "private cache";
  return g_caches[kind - kCache0].name;
}

// Checks a block and frees it; `cache` is the thread's private cache for kPrivate blocks.
std::atomic<bool> g_injected{false};

void check_and_free(const Block& b, kmem_cache* priv, Tally& t, const char* who) {
  if (g_opt.inject && !strcmp(g_opt.inject, "corrupt") && t.total() > 1000 &&
      !g_injected.exchange(true))
    static_cast<uint8_t*>(b.p)[0] ^= 0x40;
  size_t bad = check(b.p, b.size, b.key);
  if (bad != SIZE_MAX) {
    const auto* q = static_cast<const uint8_t*>(b.p);
    fail(kMismatch,
         "content mismatch (%s) in a %s block %p of %u bytes at offset %zu: byte %02x, "
         "expected %02x",
         who, kind_name(b.kind), b.p, b.size, bad, q[bad], byte_at(b.key, bad));
    return;  // leak it: it is not ours to trust any more
  }
  if (b.kind == kMalloc) {
    slub_free(b.p);
  } else if (b.kind == kPrivate) {
    kmem_cache_free(priv, b.p);
  } else {
    int c = b.kind - kCache0;
    if (c == kCtorCache) ctor96(b.p);  // objects go back in their constructed state
    kmem_cache_free(g_caches[c].cache, b.p);
  }
  t.live -= b.size;
  t.ops++;
}

// ---- cross-thread queues and orphans -------------------------------------------------------
constexpr int kQueueCap = 512;

struct alignas(64) Slot {
  std::mutex qlock;
  Block q[kQueueCap];
  int qhead = 0, qlen = 0;
  std::atomic<int> qsize{0};  // hint for the owner, read without the lock
  // Thread management (main thread only, except `finished`).
  std::thread thread;
  bool running = false;
  std::atomic<bool> finished{false};
  std::atomic<uint64_t> remaining{0};
  uint64_t generation = 0;
};
std::vector<Slot>* g_slots;

bool send_to(int slot, const Block& b) {
  Slot& s = (*g_slots)[slot];
  std::lock_guard<std::mutex> g(s.qlock);
  if (s.qlen == kQueueCap) return false;
  s.q[(s.qhead + s.qlen) % kQueueCap] = b;
  s.qlen++;
  s.qsize.store(s.qlen, std::memory_order_relaxed);
  return true;
}

int take_from(int slot, Block* out, int max) {
  Slot& s = (*g_slots)[slot];
  std::lock_guard<std::mutex> g(s.qlock);
  int n = std::min(max, s.qlen);
  for (int i = 0; i < n; i++) out[i] = s.q[(s.qhead + i) % kQueueCap];
  s.qhead = (s.qhead + n) % kQueueCap;
  s.qlen -= n;
  s.qsize.store(s.qlen, std::memory_order_relaxed);
  return n;
}

std::mutex g_orphan_lock;
std::vector<Block> g_orphans;  // capacity reserved up front: pushing never reallocates
std::atomic<size_t> g_orphan_count{0};

// ---- sizes ---------------------------------------------------------------------------------
size_t pick_size(Rng& r) {
  uint64_t x = r.below(100000);
  if (x < 80000) return r.range(1, 256);
  if (x < 95000) return r.range(257, 4096);
  if (x < 99900) return r.range(4097, 64 * 1024);
  if (x < 99990) return r.range(64 * 1024 + 1, 1024 * 1024);
  return r.range(1024 * 1024 + 1, 2 * 1024 * 1024);
}

// Allocates one malloc-family block with a random entry point; checks it and fills it.
bool alloc_malloc(Rng& r, Block& b, Tally& t) {
  size_t size = pick_size(r);
  uint64_t how = r.below(100);
  void* p = nullptr;
  size_t align = 0;
  bool zeroed = false;
  if (how < 82) {
    p = slub_malloc(size);
  } else if (how < 92) {
    size_t n = r.range(1, 8);
    size = (size + n - 1) / n * n;
    p = slub_calloc(n, size / n);
    zeroed = true;
  } else {
    align = size_t{16} << r.below(how < 98 ? 5 : 9);  // 16..256, rarely up to 4096
    if (how < 95) {
      if (slub_posix_memalign(&p, align, size) != 0) p = nullptr;
    } else if (how < 98) {
      size = (size + align - 1) / align * align;
      p = slub_aligned_alloc(align, size);
    } else {
      p = slub_memalign(align, size);
    }
  }
  if (p == nullptr) {
    fail(kApi, "allocation of %zu bytes (align %zu) returned NULL", size, align);
    return false;
  }
  if (align && (reinterpret_cast<uintptr_t>(p) & (align - 1))) {
    fail(kApi, "block %p of %zu bytes is not aligned on %zu", p, size, align);
    return false;
  }
  if ((reinterpret_cast<uintptr_t>(p) & 15) && size >= 16) {
    fail(kApi, "malloc'd block %p of %zu bytes is not 16-byte aligned", p, size);
    return false;
  }
  if (zeroed) {
    size_t bad = check_zeroed(p, size);
    if (bad != SIZE_MAX) {
      fail(kMismatch, "calloc block %p of %zu bytes is not zero at offset %zu (byte %02x)", p, size,
           bad, static_cast<uint8_t*>(p)[bad]);
      return false;
    }
  }
  if ((r.next() & 15) == 0 && slub_malloc_usable_size(p) < size) {
    fail(kApi, "malloc_usable_size(%p) = %zu < %zu", p, slub_malloc_usable_size(p), size);
    return false;
  }
  if (size > 1024 * 1024) g_huge.fetch_add(1, std::memory_order_relaxed);
  b = {p, key_of(p, size, r.next()), static_cast<uint32_t>(size), kMalloc};
  fill(p, size, b.key);
  t.live += static_cast<int64_t>(size);
  t.ops++;
  return true;
}

bool alloc_cache(Rng& r, Block& b, Tally& t, int c) {
  SharedCache& sc = g_caches[c];
  bool zero = c != kCtorCache && (r.next() & 7) == 0;
  void* p = zero ? kmem_cache_zalloc(sc.cache) : kmem_cache_alloc(sc.cache);
  if (p == nullptr) {
    fail(kApi, "kmem_cache_alloc(%s) returned NULL", sc.name);
    return false;
  }
  if (c == kCtorCache) {
    size_t bad = check_ctor_state(p);
    if (bad != SIZE_MAX) {
      fail(kMismatch, "object %p of %s is not in its constructed state at offset %zu", p, sc.name,
           bad);
      return false;
    }
  } else if (zero) {
    size_t bad = check_zeroed(p, sc.size);
    if (bad != SIZE_MAX) {
      fail(kMismatch, "kmem_cache_zalloc(%s) object %p not zero at offset %zu", sc.name, p, bad);
      return false;
    }
  }
  size_t align = sc.flags & SLAB_HWCACHE_ALIGN ? 64 : 8;
  if (reinterpret_cast<uintptr_t>(p) & (align - 1)) {
    fail(kApi, "object %p of %s is not aligned on %zu", p, sc.name, align);
    return false;
  }
  b = {p, key_of(p, sc.size, r.next()), static_cast<uint32_t>(sc.size),
       static_cast<uint8_t>(kCache0 + c)};
  fill(p, sc.size, b.key);
  t.live += static_cast<int64_t>(sc.size);
  t.ops++;
  return true;
}

// realloc to a new random size: the old pattern must survive up to the smaller size.
bool do_realloc(Rng& r, Block& b, Tally& t) {
  size_t size = pick_size(r);
  void* p = slub_realloc(b.p, size);
  if (p == nullptr) {
    fail(kApi, "realloc(%p, %zu) returned NULL", b.p, size);
    return false;
  }
  size_t bad = check(p, b.size, b.key, std::min<size_t>(size, b.size));
  if (bad != SIZE_MAX) {
    fail(kMismatch,
         "realloc(%p of %u bytes -> %zu bytes) = %p lost the contents at offset %zu: byte %02x, "
         "expected %02x",
         b.p, b.size, size, p, bad, static_cast<uint8_t*>(p)[bad], byte_at(b.key, bad));
    return false;
  }
  t.live += static_cast<int64_t>(size) - b.size;
  t.ops++;
  g_reallocs.fetch_add(1, std::memory_order_relaxed);
  b = {p, key_of(p, size, r.next()), static_cast<uint32_t>(size), kMalloc};
  fill(p, size, b.key);
  return true;
}

// ---- workers -------------------------------------------------------------------------------
// The target number of live blocks at this moment: 15%..90% of the cap, in waves.
size_t live_target() {
  double phase = now_s() * 2 * M_PI / g_opt.period;
  double f = 0.15 + 0.75 * (0.5 - 0.5 * std::cos(phase));
  return static_cast<size_t>(f * g_opt.live) + 1;
}

void worker(int slot, uint64_t gen_ops, uint64_t seed) {
  Rng r(seed);
  Tally t;
  const int nslots = static_cast<int>(g_slots->size());
  std::vector<Block> live;
  live.reserve(static_cast<size_t>(g_opt.live) + 64);
  Block batch[64];

  // A cache of this thread's own, destroyed when it ends: sometimes mergeable.
  char name[64];
  snprintf(name, sizeof name, "soak-private-%d-%" PRIu64, slot, (*g_slots)[slot].generation);
  size_t psize = r.range(8, 2048);
  size_t palign = r.below(3) == 0 ? size_t{8} << r.below(4) : 0;
  unsigned long pflags = r.below(2) ? SLAB_NO_MERGE : 0;
  kmem_cache* priv = kmem_cache_create(name, psize, palign, pflags, nullptr);
  if (priv == nullptr)
    fail(kApi, "kmem_cache_create(%s, %zu, %zu) failed: %s", name, psize, palign, strerror(errno));
  g_private_caches.fetch_add(1, std::memory_order_relaxed);

  size_t target = live_target();
  for (uint64_t iter = 0; t.total() < gen_ops && !g_stop.load(std::memory_order_relaxed); iter++) {
    if ((iter & 63) == 0) {
      target = live_target();
      // Blocks other threads sent to this slot.
      if ((*g_slots)[slot].qsize.load(std::memory_order_relaxed) > 0) {
        int n = take_from(slot, batch, 64);
        for (int i = 0; i < n; i++) check_and_free(batch[i], nullptr, t, "cross-thread free");
        g_cross_freed.fetch_add(n, std::memory_order_relaxed);
      }
      // Blocks that exited threads left behind.
      if (g_orphan_count.load(std::memory_order_relaxed) > 0) {
        int n = 0;
        {
          std::lock_guard<std::mutex> g(g_orphan_lock);
          while (n < 16 && !g_orphans.empty()) {
            batch[n++] = g_orphans.back();
            g_orphans.pop_back();
          }
          g_orphan_count.store(g_orphans.size(), std::memory_order_relaxed);
        }
        for (int i = 0; i < n; i++) check_and_free(batch[i], nullptr, t, "orphan adopted");
        g_adopted.fetch_add(n, std::memory_order_relaxed);
      }
      t.flush();
    }
    bool grow = live.size() < target ? r.below(10) < 6 : r.below(10) < 4;
    if (live.empty()) grow = true;
    if (live.size() >= static_cast<size_t>(g_opt.live)) grow = false;
    if (grow) {
      Block b;
      uint64_t k = r.below(100);
      bool ok;
      if (k < 70) {
        ok = alloc_malloc(r, b, t);
      } else if (k < 95 || priv == nullptr) {
        ok = alloc_cache(r, b, t, static_cast<int>(r.below(kNumCaches)));
      } else {
        void* p = kmem_cache_alloc(priv);
        ok = p != nullptr;
        if (!ok) {
          fail(kApi, "kmem_cache_alloc(%s) returned NULL", name);
        } else {
          b = {p, key_of(p, psize, r.next()), static_cast<uint32_t>(psize), kPrivate};
          fill(p, psize, b.key);
          t.live += static_cast<int64_t>(psize);
          t.ops++;
        }
      }
      if (ok) live.push_back(b);
    } else {
      size_t i = r.below(live.size());
      Block b = live[i];
      uint64_t k = r.below(100);
      if (b.kind == kMalloc && k < 10) {
        // Stays live; after a failure the block is dropped (leaked), the run is over anyway.
        if (!do_realloc(r, live[i], t)) {
          live[i] = live.back();
          live.pop_back();
        }
      } else {
        live[i] = live.back();
        live.pop_back();
        if (b.kind != kPrivate && k >= 90 && nslots > 1) {
          // Send it to another slot; that slot's thread checks and frees it.
          size_t bad = check(b.p, b.size, b.key);
          if (bad != SIZE_MAX) {
            fail(kMismatch,
                 "content mismatch (before sending) in a %s block %p of %u bytes "
                 "at offset %zu",
                 kind_name(b.kind), b.p, b.size, bad);
          } else {
            int to = static_cast<int>(r.below(nslots - 1));
            if (to >= slot) to++;
            if (send_to(to, b)) {
              g_cross_sent.fetch_add(1, std::memory_order_relaxed);
              t.ops++;
            } else {
              check_and_free(b, priv, t, "free");
            }
          }
        } else {
          check_and_free(b, priv, t, "free");
        }
      }
    }
  }

  // The end of a generation: private objects are freed (the cache must then be destroyable),
  // half of the rest freed here and the other half left for other threads.
  size_t kept = 0;
  for (size_t i = 0; i < live.size(); i++) {
    const Block& b = live[i];
    if (b.kind == kPrivate || (r.next() & 1)) {
      check_and_free(b, priv, t, "free at thread exit");
    } else {
      live[kept++] = b;
    }
  }
  live.resize(kept);
  {
    std::lock_guard<std::mutex> g(g_orphan_lock);
    for (const Block& b : live) {
      if (g_orphans.size() < g_orphans.capacity()) {
        g_orphans.push_back(b);
        g_orphaned.fetch_add(1, std::memory_order_relaxed);
      } else {
        check_and_free(b, priv, t, "free at thread exit");
      }
    }
    g_orphan_count.store(g_orphans.size(), std::memory_order_relaxed);
  }
  if (priv != nullptr && g_exit.load() == kOk) {
    if (kmem_cache_destroy(priv) != 0)
      fail(kApi, "kmem_cache_destroy(%s) failed (errno %d) with all its objects freed", name,
           errno);
  }
  t.flush();
  const uint64_t done = t.total();
  Slot& s = (*g_slots)[slot];
  uint64_t rem = s.remaining.load();
  s.remaining.store(rem > done ? rem - done : 0);
  s.finished.store(true, std::memory_order_release);
}

// ---- fork ----------------------------------------------------------------------------------
// The child: two threads allocate, check and free; a cache is created and destroyed. No libc
// malloc on our side (glibc's own is fork-safe anyway); reports go through write(2).
struct ChildState {
  Block blocks[1024];
  int errors = 0;
  uint64_t ops = 0;
};

void child_churn(ChildState* cs, uint64_t seed, int rounds) {
  Rng r(seed);
  Tally t;  // not flushed: the child's counts are thrown away
  int n = 0;
  for (int i = 0; i < rounds; i++) {
    bool grow = n == 0 || (n < 1024 && r.below(2));
    if (grow) {
      Block b;
      bool ok = r.below(4) ? alloc_malloc(r, b, t)
                           : alloc_cache(r, b, t, static_cast<int>(r.below(kNumCaches)));
      if (!ok) {
        cs->errors++;
        break;
      }
      cs->blocks[n++] = b;
    } else {
      size_t k = r.below(n);
      Block b = cs->blocks[k];
      cs->blocks[k] = cs->blocks[--n];
      size_t bad = check(b.p, b.size, b.key);
      if (bad != SIZE_MAX) {
        say_err("soak: child %d: content mismatch in a %s block %p of %u bytes at offset %zu\n",
                getpid(), kind_name(b.kind), b.p, b.size, bad);
        cs->errors++;
        break;
      }
      check_and_free(b, nullptr, t, "child free");
    }
  }
  for (int k = 0; k < n; k++) check_and_free(cs->blocks[k], nullptr, t, "child free");
  cs->ops += t.ops;
}

void* child_thread(void* arg) {
  auto* cs = static_cast<ChildState*>(arg);
  child_churn(cs, mix64(reinterpret_cast<uintptr_t>(arg) ^ getpid()), 2000);
  return nullptr;
}

[[noreturn]] void child_main(uint64_t seed) {
  if (g_opt.inject && !strcmp(g_opt.inject, "hang-child"))
    for (;;) pause();
  static ChildState a, b;  // fresh in each child (copied from the parent, never used there)
  a = {};
  b = {};
  // g_exit/g_stop are shared state copied from the parent: failures here go to stderr and
  // the exit status only.
  pthread_t th;
  bool threaded = pthread_create(&th, nullptr, child_thread, &b) == 0;
  child_churn(&a, seed, 3000);
  if (threaded) pthread_join(th, nullptr);
  kmem_cache* c = kmem_cache_create("soak-child", 72, 0, SLAB_NO_MERGE, nullptr);
  if (c == nullptr) {
    say_err("soak: child %d: kmem_cache_create failed\n", getpid());
    _exit(6);
  }
  void* objs[300];
  for (int i = 0; i < 300; i++) {
    objs[i] = kmem_cache_alloc(c);
    if (objs[i] == nullptr) _exit(6);
    fill(objs[i], 72, key_of(objs[i], 72, seed));
  }
  for (int i = 0; i < 300; i++) {
    if (check(objs[i], 72, key_of(objs[i], 72, seed)) != SIZE_MAX) {
      say_err("soak: child %d: content mismatch in soak-child object %p\n", getpid(), objs[i]);
      _exit(1);
    }
    kmem_cache_free(c, objs[i]);
  }
  if (kmem_cache_destroy(c) != 0) {
    say_err("soak: child %d: kmem_cache_destroy failed\n", getpid());
    _exit(6);
  }
  _exit(a.errors || b.errors || g_exit.load() != kOk ? 1 : 0);
}

// Forks once; waits for the child at most --child-timeout seconds.
void fork_once(uint64_t seed) {
  pid_t pid = fork();
  if (pid < 0) {
    fail(kApi, "fork failed: %s", strerror(errno));
    return;
  }
  if (pid == 0) child_main(seed);
  g_forks.fetch_add(1, std::memory_order_relaxed);
  double t0 = now_s();
  for (;;) {
    int st = 0;
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) {
      if (WIFSIGNALED(st)) {
        fail(kChild, "fork child %d died from signal %d (%s)", pid, WTERMSIG(st),
             strsignal(WTERMSIG(st)));
      } else if (WEXITSTATUS(st) != 0) {
        fail(kChild, "fork child %d exited with status %d", pid, WEXITSTATUS(st));
      } else {
        g_child_ops.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    if (w < 0 && errno != EINTR) {
      fail(kChild, "waitpid(%d): %s", pid, strerror(errno));
      return;
    }
    if (now_s() - t0 > g_opt.child_timeout) {
      // Where is it stuck? One line per thread: state and kernel wait channel.
      char path[96], buf[128];
      snprintf(path, sizeof path, "/proc/%d/wchan", pid);
      int fd = open(path, O_RDONLY);
      ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
      if (fd >= 0) close(fd);
      buf[n > 0 ? n : 0] = 0;
      fail(kChild, "fork child %d hung: still running after %.0f s (wchan %s); killed", pid,
           g_opt.child_timeout, buf);
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return;
    }
    usleep(1000);
  }
}

// ---- sampler and watchdog ------------------------------------------------------------------
std::atomic<bool> g_sampler_stop{false};
std::atomic<int64_t> g_peak_rss{0}, g_max_bound_used{0};
std::atomic<int64_t> g_worst_ratio_rss{0}, g_worst_ratio_bound{1};

int64_t read_rss() {
  static long page = sysconf(_SC_PAGESIZE);
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  long size = 0, resident = 0;
  if (sscanf(buf, "%ld %ld", &size, &resident) != 2) return -1;
  return static_cast<int64_t>(resident) * page;
}

int64_t bound_for(int64_t peak_live) {
  return static_cast<int64_t>(g_opt.rss_factor * static_cast<double>(peak_live) +
                              g_opt.rss_slack_mb * 1024 * 1024);
}

void sampler(int fd) {
  if (fd >= 0) {
    const char* head = "seconds,rss_bytes,live_bytes,peak_live_bytes,bound_bytes,ops\n";
    ssize_t w = write(fd, head, strlen(head));
    (void)w;
  }
  timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!g_sampler_stop.load()) {
    int64_t rss = read_rss();
    int64_t live = g_live_bytes.load(std::memory_order_relaxed);
    int64_t peak = std::max(g_peak_live.load(), live);
    g_peak_live.store(peak);
    int64_t bound = bound_for(peak);
    if (rss > g_peak_rss.load()) g_peak_rss.store(rss);
    // The sample closest to its bound.
    if (static_cast<double>(rss) / static_cast<double>(bound) >
        static_cast<double>(g_worst_ratio_rss.load()) /
            static_cast<double>(g_worst_ratio_bound.load())) {
      g_worst_ratio_rss.store(rss);
      g_worst_ratio_bound.store(bound);
    }
    if (rss > bound)
      fail(kRss, "RSS %.1f MiB over the bound %.1f MiB (%.1f x peak live %.1f MiB + %.0f MiB)",
           rss / 1048576.0, bound / 1048576.0, g_opt.rss_factor, peak / 1048576.0,
           g_opt.rss_slack_mb);
    if (fd >= 0) {
      char line[160];
      int n = snprintf(line, sizeof line,
                       "%.2f,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRIu64 "\n",
                       now_s(), rss, live, peak, bound, g_ops.load(std::memory_order_relaxed));
      ssize_t w = write(fd, line, static_cast<size_t>(n));
      (void)w;
    }
    if (now_s() > g_opt.seconds + g_opt.settle + 60) {
      say_err("soak: FAIL: watchdog: still running %.0f s after the time cap (hang?)\n",
              now_s() - g_opt.seconds);
      _exit(kHang);
    }
    next.tv_nsec += 100'000'000;
    if (next.tv_nsec >= 1'000'000'000) next.tv_sec++, next.tv_nsec -= 1'000'000'000;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
  }
}

// ---- main ----------------------------------------------------------------------------------
const char* const kUsageText =
    "usage: soak [--ops N] [--threads T] [--seconds S] [--rss-log FILE] [--seed X]\n"
    "            [--live L] [--period S] [--fork-ms M] [--child-timeout S]\n"
    "            [--rss-factor F] [--rss-slack-mb M] [--settle S] [--quiet]\n"
    "            [--inject corrupt|hang-child]\n"
    "  N: 1..2^62, T: 1..256, X: 0..2^64-1 (0: from the clock), L: 1..1000000,\n"
    "  M (fork-ms): 0..3600000 (0: no forks); seconds 0..1e7; a later option wins\n";

void parse(int argc, char** argv) {
  const bench_cli::Cli cli{"soak", kUsageText};
  enum {
    kOps = 256,
    kThreads,
    kSeconds,
    kRssLog,
    kSeed,
    kLive,
    kPeriod,
    kForkMs,
    kChildTimeout,
    kRssFactor,
    kRssSlack,
    kSettle,
    kQuiet,
    kInject
  };
  static const option kLong[] = {{"ops", required_argument, nullptr, kOps},
                                 {"threads", required_argument, nullptr, kThreads},
                                 {"seconds", required_argument, nullptr, kSeconds},
                                 {"rss-log", required_argument, nullptr, kRssLog},
                                 {"seed", required_argument, nullptr, kSeed},
                                 {"live", required_argument, nullptr, kLive},
                                 {"period", required_argument, nullptr, kPeriod},
                                 {"fork-ms", required_argument, nullptr, kForkMs},
                                 {"child-timeout", required_argument, nullptr, kChildTimeout},
                                 {"rss-factor", required_argument, nullptr, kRssFactor},
                                 {"rss-slack-mb", required_argument, nullptr, kRssSlack},
                                 {"settle", required_argument, nullptr, kSettle},
                                 {"quiet", no_argument, nullptr, kQuiet},
                                 {"inject", required_argument, nullptr, kInject},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  static const char* const kInjections[] = {"corrupt", "hang-child", nullptr};
  constexpr double kMaxSeconds = 1e7;  // the most any option in seconds takes
  static_assert(kUsage == bench_cli::kUsageStatus);
  for (int c; (c = bench_cli::next_option(cli, argc, argv, kLong)) != -1;) {
    const std::string name = bench_cli::option_name(kLong, c);
    const char* opt = name.c_str();
    switch (c) {
      case kOps:
        g_opt.ops = bench_cli::u64_arg(cli, opt, optarg, 1, uint64_t(1) << 62);
        break;
      case kThreads:
        g_opt.threads = int(bench_cli::int_arg(cli, opt, optarg, 1, 256));
        break;
      case kSeconds:
        g_opt.seconds = bench_cli::num_arg(cli, opt, optarg, 0, kMaxSeconds);
        break;
      case kRssLog:
        g_opt.rss_log = optarg;
        break;
      case kSeed:
        g_opt.seed = bench_cli::u64_arg(cli, opt, optarg, 0, UINT64_MAX);
        break;
      case kLive:
        g_opt.live = int(bench_cli::int_arg(cli, opt, optarg, 1, 1'000'000));
        break;
      case kPeriod:
        g_opt.period = bench_cli::num_arg(cli, opt, optarg, 0.001, kMaxSeconds);
        break;
      case kForkMs:
        g_opt.fork_ms = int(bench_cli::int_arg(cli, opt, optarg, 0, 3'600'000));
        break;
      case kChildTimeout:
        g_opt.child_timeout = bench_cli::num_arg(cli, opt, optarg, 0, kMaxSeconds);
        break;
      case kRssFactor:
        g_opt.rss_factor = bench_cli::num_arg(cli, opt, optarg, 0, 1e6);
        break;
      case kRssSlack:
        g_opt.rss_slack_mb = bench_cli::num_arg(cli, opt, optarg, 0, 1e9);
        break;
      case kSettle:
        g_opt.settle = bench_cli::num_arg(cli, opt, optarg, 0, kMaxSeconds);
        break;
      case kQuiet:
        g_opt.quiet = true;
        break;
      case kInject:
        g_opt.inject = bench_cli::choice_arg(cli, opt, optarg, kInjections);
        break;
    }
  }
  bench_cli::no_operands(cli, argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  parse(argc, argv);
  if (g_opt.seed == 0)
    g_opt.seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  setvbuf(stdout, nullptr, _IOLBF, 0);

  int log_fd = -1;
  if (g_opt.rss_log) {
    log_fd = open(g_opt.rss_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      fprintf(stderr, "soak: cannot open %s: %s\n", g_opt.rss_log, strerror(errno));
      return kUsage;
    }
  }
  for (SharedCache& c : g_caches) {
    c.cache = kmem_cache_create(c.name, c.size, c.align, c.flags, c.ctor);
    if (c.cache == nullptr) {
      fprintf(stderr, "soak: kmem_cache_create(%s) failed: %s\n", c.name, strerror(errno));
      return kApi;
    }
  }
  const int64_t rss_start = read_rss();
  std::vector<Slot> slots(static_cast<size_t>(g_opt.threads));
  g_slots = &slots;
  g_orphans.reserve(static_cast<size_t>(g_opt.threads) * static_cast<size_t>(g_opt.live));
  for (int i = 0; i < g_opt.threads; i++)
    slots[i].remaining.store(g_opt.ops / g_opt.threads + (i < int(g_opt.ops % g_opt.threads)));

  if (!g_opt.quiet)
    printf("soak: %" PRIu64 " ops, %d threads, cap %.0f s, seed %" PRIu64
           ", live cap %d blocks per thread, RSS bound %.1f x peak live + %.0f MiB\n",
           g_opt.ops, g_opt.threads, g_opt.seconds, g_opt.seed, g_opt.live, g_opt.rss_factor,
           g_opt.rss_slack_mb);

  std::thread samp(sampler, log_fd);
  Rng mr(g_opt.seed);
  double next_fork = g_opt.fork_ms > 0 ? g_opt.fork_ms / 1000.0 : 1e300;
  double next_note = 10;
  bool capped = false;
  for (;;) {
    bool busy = false;
    for (int i = 0; i < g_opt.threads; i++) {
      Slot& s = slots[i];
      if (s.running && s.finished.load(std::memory_order_acquire)) {
        s.thread.join();
        s.running = false;
      }
      if (!s.running && s.remaining.load() > 0 && !g_stop.load()) {
        uint64_t gen = std::min<uint64_t>(s.remaining.load(), mr.range(50'000, 400'000));
        s.finished.store(false);
        s.generation++;
        s.running = true;
        g_threads_started.fetch_add(1, std::memory_order_relaxed);
        s.thread = std::thread(worker, i, gen, mr.next());
      }
      busy |= s.running;
    }
    if (!busy) break;
    double t = now_s();
    if (t >= g_opt.seconds && !g_stop.load()) {
      capped = true;
      g_stop.store(true);
    }
    if (t >= next_fork && !g_stop.load()) {
      fork_once(mr.next());
      next_fork = now_s() + g_opt.fork_ms / 1000.0;
    }
    if (!g_opt.quiet && t >= next_note) {
      printf("soak: %5.0f s  %6.1f M ops  RSS %6.1f MiB  live %6.1f MiB  threads started %" PRIu64
             "  forks %" PRIu64 "\n",
             t, g_ops.load() / 1e6, read_rss() / 1048576.0, g_live_bytes.load() / 1048576.0,
             g_threads_started.load(), g_forks.load());
      next_note = t + 10;
    }
    usleep(2000);
  }
  const double t_work = now_s();
  const uint64_t ops_done = g_ops.load();

  // Everything still live: the slot queues and the orphans, checked and freed here.
  Tally t;
  Block batch[64];
  for (int i = 0; i < g_opt.threads; i++) {
    int n;
    while ((n = take_from(i, batch, 64)) > 0)
      for (int k = 0; k < n; k++) check_and_free(batch[k], nullptr, t, "final free");
  }
  for (const Block& b : g_orphans) check_and_free(b, nullptr, t, "final free");
  g_orphans.clear();
  t.flush();
  const int64_t live_end = g_live_bytes.load();
  if (live_end != 0 && g_exit.load() == kOk)
    fail(kBook, "%" PRId64 " live bytes left after freeing everything (soak bookkeeping)",
         live_end);
  const int64_t rss_end = read_rss();
  // The allocator's own counts: every shared cache must now be empty and destroyable.
  if (g_exit.load() == kOk) {
    for (SharedCache& c : g_caches) {
      if (kmem_cache_destroy(c.cache) != 0)
        fail(kApi, "kmem_cache_destroy(%s) failed at the end (errno %d)", c.name, errno);
    }
  }
  // Under SLUB_DEBUG the allocator's own checks (red zones, poison, ...) count their reports.
  if (long n = slub_debug_errors(); n != 0)
    fail(kMismatch, "the allocator's debug mode reported %ld problem(s) (see above)", n);
  // Let the flusher purge, so that the log shows what comes back to the OS.
  if (g_opt.settle > 0) usleep(static_cast<useconds_t>(g_opt.settle * 1e6));
  const int64_t rss_settled = read_rss();
  g_sampler_stop.store(true);
  samp.join();
  if (log_fd >= 0) close(log_fd);

  const int code = g_exit.load();
  const double rate = ops_done / std::max(t_work, 1e-9);
  const int64_t peak_live = g_peak_live.load();
  printf("RESULT status=%s exit=%d complete=%d ops=%" PRIu64
         " seconds=%.2f ops_per_s=%.0f "
         "threads=%d seed=%" PRIu64 " peak_rss=%" PRId64 " rss_start=%" PRId64 " rss_end=%" PRId64
         " rss_settled=%" PRId64 " peak_live=%" PRId64 " live_end=%" PRId64 " bound=%" PRId64
         " rss_factor=%.2f rss_slack_mb=%.0f"
         " worst_rss_to_bound=%.3f threads_started=%" PRIu64 " forks=%" PRIu64 " forks_ok=%" PRIu64
         " cross_sent=%" PRIu64 " cross_freed=%" PRIu64 " orphaned=%" PRIu64 " adopted=%" PRIu64
         " reallocs=%" PRIu64 " huge=%" PRIu64 " private_caches=%" PRIu64 "\n",
         code == kOk ? "ok" : "FAIL", code, ops_done >= g_opt.ops ? 1 : 0, ops_done, t_work, rate,
         g_opt.threads, g_opt.seed, g_peak_rss.load(), rss_start, rss_end, rss_settled, peak_live,
         live_end, bound_for(peak_live), g_opt.rss_factor, g_opt.rss_slack_mb,
         static_cast<double>(g_worst_ratio_rss.load()) / g_worst_ratio_bound.load(),
         g_threads_started.load(), g_forks.load(), g_child_ops.load(), g_cross_sent.load(),
         g_cross_freed.load(), g_orphaned.load(), g_adopted.load(), g_reallocs.load(),
         g_huge.load(), g_private_caches.load());
  if (!g_opt.quiet) {
    printf("soak: %s: %.1f M ops in %.1f s (%.2f M ops/s) on %d threads%s\n",
           code == kOk ? "ok" : "FAILED", ops_done / 1e6, t_work, rate / 1e6, g_opt.threads,
           capped ? " (stopped by the time cap)" : "");
    printf(
        "soak: RSS peak %.1f MiB, at the end %.1f MiB, after %.0f s settle %.1f MiB; "
        "live bytes peak %.1f MiB, at the end %" PRId64 "\n",
        g_peak_rss.load() / 1048576.0, rss_end / 1048576.0, g_opt.settle, rss_settled / 1048576.0,
        peak_live / 1048576.0, live_end);
    printf(
        "soak: RSS bound %.1f x peak live + %.0f MiB = %.1f MiB; closest sample %.0f%% of "
        "its bound\n",
        g_opt.rss_factor, g_opt.rss_slack_mb, bound_for(peak_live) / 1048576.0,
        100.0 * g_worst_ratio_rss.load() / g_worst_ratio_bound.load());
    printf("soak: %" PRIu64 " threads started, %" PRIu64 " forks (%" PRIu64
           " children ok), %" PRIu64 " cross-thread frees, %" PRIu64 " orphans adopted, %" PRIu64
           " huge blocks, %" PRIu64 " private caches\n",
           g_threads_started.load(), g_forks.load(), g_child_ops.load(), g_cross_freed.load(),
           g_adopted.load(), g_huge.load(), g_private_caches.load());
  }
  return code;
}
