// SPDX-License-Identifier: MIT
// Shared parts of the libFuzzer targets (docs/RELIABILITY.md, "Fuzzing"):
// the input reader, the fill pattern every live block carries, the remote thread that frees
// (and allocates) blocks handed to it, and the check macro.
//
// The harness's own memory (the queue, std::thread) comes from libc; everything under test
// comes from slub's prefixed API, so the two never mix.
#ifndef SLUB_FUZZ_COMMON_H
#define SLUB_FUZZ_COMMON_H

#include <slub/slub.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

// Pattern loops run on every byte of every block: leave them out of the coverage feedback.
#define FZ_NOCOV __attribute__((no_sanitize("coverage")))

namespace fz {

// ---- failures and tracing ----------------------------------------------------------------

inline unsigned long g_op_index = 0;  // operation number within the current input
inline bool g_trace = false;          // FUZZ_TRACE=1: one line per operation on stderr

// The allocator keeps state from one input to the next, so a failure may need the inputs run
// before it. The last kHistory inputs are kept; a failure writes them to
// fuzz-history-<pid>/NNNN (oldest first, the failing one last): running the target on those
// files in that order (`fuzz_x $(ls -d fuzz-history-<pid>/*)`) replays the process's recent
// past. FUZZ_HISTORY=0 turns this off.
constexpr size_t kHistory = 256;
inline std::vector<std::vector<uint8_t>> g_history;
inline size_t g_history_next = 0;
inline bool g_keep_history = true;

inline void install_crash_handlers();
inline void remember_input(const uint8_t* data, size_t size) {
  if (!g_keep_history) return;
  install_crash_handlers();
  if (g_history.size() < kHistory) {
    g_history.emplace_back(data, data + size);
  } else {
    g_history[g_history_next % kHistory].assign(data, data + size);
  }
  ++g_history_next;
}

inline void dump_history() {
  if (!g_keep_history || g_history.empty()) return;
  char dir[64];
  snprintf(dir, sizeof dir, "fuzz-history-%d", static_cast<int>(getpid()));
  if (mkdir(dir, 0755) != 0) return;
  size_t n = g_history.size(), first = g_history_next - n;
  for (size_t i = 0; i < n; ++i) {
    const std::vector<uint8_t>& in = g_history[(first + i) % kHistory];
    char path[96];
    snprintf(path, sizeof path, "%s/%04zu", dir, i);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) continue;
    if (!in.empty() && write(fd, in.data(), in.size()) < 0) {
    }
    close(fd);
  }
  fprintf(stderr, "==fuzz== the last %zu inputs (the failing one last) are in %s/\n", n, dir);
}

[[noreturn]] __attribute__((format(printf, 4, 5))) inline void fail(const char* file, int line,
                                                                    const char* expr,
                                                                    const char* fmt, ...) {
  fprintf(stderr, "\n==fuzz== CHECK FAILED at %s:%d (operation #%lu): %s\n==fuzz== ", file, line,
          g_op_index, expr);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  dump_history();
  fflush(stderr);
  abort();
}

// Crashes that are not ours (an abort in the allocator, SIGSEGV, UBSan) dump the history too:
// the first input installs these handlers over libFuzzer's, and they chain to them.
inline struct sigaction g_old_action[32];
inline void crash_handler(int sig, siginfo_t* info, void* uctx) {
  static std::atomic<bool> once{false};
  if (!once.exchange(true)) dump_history();
  struct sigaction& old = g_old_action[sig];
  if (old.sa_flags & SA_SIGINFO) {
    if (old.sa_sigaction != nullptr) old.sa_sigaction(sig, info, uctx);
  } else if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    old.sa_handler(sig);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}
inline void install_crash_handlers() {
  static bool done = false;
  if (done) return;
  done = true;
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE}) {
    struct sigaction sa {};
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, &g_old_action[sig]);
  }
}

#define FZ_CHECK(cond, ...)                                                               \
  do {                                                                                    \
    if (__builtin_expect(!(cond), 0)) ::fz::fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)

__attribute__((format(printf, 1, 2))) inline void trace(const char* fmt, ...) {
  if (!g_trace) return;
  fprintf(stderr, "[op %lu] ", g_op_index);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

// Environment for every target, before the allocator's first use (it reads it once then):
// a report of the debug mode, or any other report of the allocator, aborts at once (the
// fuzzer keeps the input; the harness never passes a bad pointer), the flusher runs
// often so that its passes interleave with the operations. Values already set win.
inline void common_init() {
  setenv("SLUB_DEBUG_ABORT", "1", 0);
  setenv("SLUB_STRICT", "1", 0);  // any other report (bad free pointer, invalid free) aborts
  setenv("SLUB_FLUSH_MS", "100", 0);
  const char* t = getenv("FUZZ_TRACE");
  g_trace = t != nullptr && *t != '\0' && *t != '0';
  const char* h = getenv("FUZZ_HISTORY");
  g_keep_history = h == nullptr || *h != '0';
}

// ---- the input --------------------------------------------------------------------------

// Reads the input as a byte program; past its end every read gives 0.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : d_(data), n_(size) {}
  bool more() const { return i_ < n_; }
  uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  uint16_t u16() {
    uint16_t lo = u8();
    return static_cast<uint16_t>(lo | (u8() << 8));
  }
  uint32_t u32() {
    uint32_t lo = u16();
    return lo | (static_cast<uint32_t>(u16()) << 16);
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

// ---- the fill pattern -------------------------------------------------------------------
// Byte k of a block with tag t is byte k%8 of  t ^ (k/8 * golden): position dependent, so a
// block moved, shifted or mixed with another one reads wrong. Blocks up to kFullFill are
// filled whole; bigger ones at both ends (kEdge each) and kSample bytes every kStride between
// (touching every page of every large block made page faults most of the run time).

constexpr size_t kFullFill = 64 << 10;
constexpr size_t kEdge = 4 << 10;
constexpr size_t kStride = 64 << 10;
constexpr size_t kSample = 64;
constexpr size_t kPage = 4096;

template <class F>
FZ_NOCOV inline void for_each_segment(size_t len, F&& f) {
  if (len <= kFullFill) {
    if (len != 0) f(size_t{0}, len);
    return;
  }
  f(size_t{0}, kEdge);
  for (size_t off = kStride; off + kSample <= len - kEdge; off += kStride) f(off, kSample);
  f(len - kEdge, kEdge);
}

FZ_NOCOV inline uint64_t pattern_word(uint64_t tag, size_t word) {
  return tag ^ (static_cast<uint64_t>(word) * 0x9E3779B97F4A7C15ull);
}
FZ_NOCOV inline uint8_t pattern_byte(uint64_t tag, size_t k) {
  return static_cast<uint8_t>(pattern_word(tag, k >> 3) >> (8 * (k & 7)));
}

FZ_NOCOV inline void fill_range(unsigned char* p, uint64_t tag, size_t off, size_t n) {
  size_t k = off, end = off + n;
  for (; k < end && (k & 7) != 0; ++k) p[k] = pattern_byte(tag, k);
  for (; k + 8 <= end; k += 8) {
    uint64_t v = pattern_word(tag, k >> 3);
    memcpy(p + k, &v, 8);
  }
  for (; k < end; ++k) p[k] = pattern_byte(tag, k);
}

// First offset in [off, off+n) that does not hold the pattern (zero: tag 0 and zero
// instead), or SIZE_MAX.
FZ_NOCOV inline size_t first_bad(const unsigned char* p, uint64_t tag, bool zero, size_t off,
                                 size_t n) {
  size_t k = off, end = off + n;
  for (; k < end && (k & 7) != 0; ++k)
    if (p[k] != (zero ? 0 : pattern_byte(tag, k))) return k;
  for (; k + 8 <= end; k += 8) {
    uint64_t v, want = zero ? 0 : pattern_word(tag, k >> 3);
    memcpy(&v, p + k, 8);
    if (v != want) break;
  }
  for (; k < end; ++k)
    if (p[k] != (zero ? 0 : pattern_byte(tag, k))) return k;
  return SIZE_MAX;
}

FZ_NOCOV inline void fill(void* p, size_t len, uint64_t tag) {
  for_each_segment(
      len, [&](size_t off, size_t n) { fill_range(static_cast<unsigned char*>(p), tag, off, n); });
}

// Checks the pattern a block of `len` bytes was filled with, on [0, limit) only.
inline void verify(const void* p, size_t len, uint64_t tag, size_t limit, const char* what) {
  const auto* b = static_cast<const unsigned char*>(p);
  for_each_segment(len, [&](size_t off, size_t n) {
    if (off >= limit) return;
    if (off + n > limit) n = limit - off;
    size_t bad = first_bad(b, tag, false, off, n);
    FZ_CHECK(bad == SIZE_MAX,
             "%s: block %p (%zu bytes, tag %016llx) corrupted at offset %zu: byte %02x, "
             "expected %02x",
             what, p, len, static_cast<unsigned long long>(tag), bad, b[bad],
             pattern_byte(tag, bad));
  });
}

inline void verify_zero(const void* p, size_t len, const char* what) {
  const auto* b = static_cast<const unsigned char*>(p);
  for_each_segment(len, [&](size_t off, size_t n) {
    size_t bad = first_bad(b, 0, true, off, n);
    FZ_CHECK(bad == SIZE_MAX, "%s: block %p (%zu bytes) not zero at offset %zu: byte %02x", what, p,
             len, bad, b[bad]);
  });
}

inline uint64_t g_tag_counter = 0;  // reset at the start of each input: runs repeat
inline uint64_t next_tag() {
  uint64_t z = (++g_tag_counter) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline bool is_pow2(size_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}
inline bool aligned_to(const void* p, size_t align) {
  return (reinterpret_cast<uintptr_t>(p) & (align - 1)) == 0;
}

// ---- live ranges ------------------------------------------------------------------------
// Every block the fuzzing thread holds, by address: a new block that overlaps one of them
// (the same object handed out twice, a slab given to two caches) is a finding.
class LiveRanges {
 public:
  void add(const void* p, size_t len, const char* what) {
    uintptr_t a = reinterpret_cast<uintptr_t>(p), end = a + (len == 0 ? 1 : len);
    auto next = ranges_.lower_bound(a);
    if (next != ranges_.end())
      FZ_CHECK(next->first >= end, "%s: new block [%p, +%zu) overlaps live block [%#lx, +%zu)",
               what, p, len, static_cast<unsigned long>(next->first), next->second);
    if (next != ranges_.begin()) {
      auto prev = std::prev(next);
      FZ_CHECK(prev->first + prev->second <= a,
               "%s: new block [%p, +%zu) overlaps live block [%#lx, +%zu)", what, p, len,
               static_cast<unsigned long>(prev->first), prev->second);
    }
    ranges_.emplace(a, end - a);
  }
  void remove(const void* p) { ranges_.erase(reinterpret_cast<uintptr_t>(p)); }
  size_t size() const { return ranges_.size(); }

 private:
  std::map<uintptr_t, size_t> ranges_;
};

inline LiveRanges g_ranges;

// ---- the remote thread ------------------------------------------------------------------
// One thread for the process, bound to virtual CPU kRemoteVcpu, that runs the tasks handed to
// it in order (frees of blocks the fuzzer gives away, allocations it asks for). drain() waits
// until it is idle: every input ends with one, so no task outlives its input.

constexpr int kRemoteVcpu = 1;

struct Task {
  void (*fn)(Task&);
  void* p = nullptr;
  size_t len = 0;  // filled length
  size_t req = 0;  // requested size
  size_t align = 0;
  uint64_t tag = 0;
  void* ctx = nullptr;   // a kmem_cache*, for cache objects
  int how = 0;           // target-defined variant
  void** out = nullptr;  // where an allocation's result goes (the caller drains first)
};

class Remote {
 public:
  static constexpr size_t kBatch = 8;

  // Tasks are handed over in batches of kBatch (and by drain): a wake-up per free made thread
  // switches most of the run time.
  void submit(const Task& t) {
    start();
    std::lock_guard<std::mutex> g(m_);
    q_.push_back(t);
    if (q_.size() >= kBatch) work_.notify_one();
  }
  void drain() {
    if (!started_) return;
    std::unique_lock<std::mutex> g(m_);
    if (!q_.empty()) work_.notify_one();
    idle_.wait(g, [&] { return q_.empty() && !busy_; });
  }
  // Runs one task there and waits for it.
  void run(const Task& t) {
    submit(t);
    drain();
  }

 private:
  void start() {
    if (started_) return;
    started_ = true;
    std::thread([this] { loop(); }).detach();
  }
  void loop() {
    slub_bind_vcpu(kRemoteVcpu);
    std::unique_lock<std::mutex> g(m_);
    for (;;) {
      work_.wait(g, [&] { return !q_.empty(); });
      Task t = q_.front();
      q_.pop_front();
      busy_ = true;
      g.unlock();
      t.fn(t);
      g.lock();
      busy_ = false;
      if (q_.empty()) idle_.notify_all();
    }
  }

  bool started_ = false;  // touched by the fuzzing thread only
  std::mutex m_;
  std::condition_variable work_, idle_;
  std::deque<Task> q_;
  bool busy_ = false;
};

// Never destroyed: at exit the thread still waits on the condition variable, and destroying
// one with a waiter blocks in glibc.
inline Remote& g_remote = *new Remote;

// Runs fn with stderr sent to /dev/null (expected reports, e.g. kmem_cache_destroy's list of
// leftover objects, would flood the fuzzer's log).
template <class F>
auto quietly(F&& fn) {
  fflush(stderr);
  int saved = dup(2);
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 2);
    close(null);
  }
  auto r = fn();
  if (saved >= 0) {
    dup2(saved, 2);
    close(saved);
  }
  return r;
}

// The start of every input: remembered for replay, counters reset, no debug report seen yet,
// on vCPU 0.
inline long g_debug_errors_at_start = 0;
inline void begin_input(const uint8_t* data, size_t size) {
  remember_input(data, size);
  g_tag_counter = 0;
  g_op_index = 0;
  g_debug_errors_at_start = slub_debug_errors();
  slub_bind_vcpu(0);
}

// The end of every input, once everything is freed: no live bytes, no debug report.
inline void check_input_clean(size_t live, size_t ranges) {
  FZ_CHECK(live == 0 && ranges == 0, "live bytes left: %zu", live);
  const long errs = slub_debug_errors();
  FZ_CHECK(errs == g_debug_errors_at_start, "the debug mode reported %ld problems",
           errs - g_debug_errors_at_start);
}

}  // namespace fz

#endif  // SLUB_FUZZ_COMMON_H
