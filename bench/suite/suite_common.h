// SPDX-License-Identifier: MIT
// suite_common.h: what the workload programs of the allocator suite share (tools/bench_suite.py
// runs them; docs/BENCHMARKS.md reports them).
//
// Every program takes the same options:
//   --threads N   worker threads (default 1)
//   --scale F     multiplies the default amount of work (default 1.0)
//   --quick       a tiny run (a few milliseconds), for the smoke test and `--suite --quick`
//   --seed S      the base of every random stream (default 1); thread i of a program draws
//                 from stream (S, i), so a run is the same sequence of requests under every
//                 allocator
// The total work is fixed, not per thread: more threads share the same number of operations.
//
// Every program calls malloc and free (never new): the allocator under test comes in through
// LD_PRELOAD, and glibc is the run without one. Each block carries a value written after
// malloc and checked before free; the sum of the values freed is the checksum, which depends
// only on the seed, the thread count and the work size, never on the allocator or on timing.
// A program prints one line
//   RESULT workload=NAME threads=N ops=OPS checksum=HEX seconds=S
// and exits 0, or prints "NAME: FAIL ..." and exits 1 when a block's contents were wrong or
// malloc returned NULL. Usage errors exit 2.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace suite {

struct Options {
  int threads = 1;
  double scale = 1.0;
  bool quick = false;
  uint64_t seed = 1;
};

inline const char* g_name = "suite";

[[noreturn, gnu::format(printf, 1, 2)]] inline void fail(const char* fmt, ...) {
  std::fprintf(stderr, "%s: FAIL ", g_name);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::exit(1);
}

[[noreturn]] inline void usage(const char* what, int status) {
  std::fprintf(status ? stderr : stdout,
               "usage: %s [--threads N] [--scale F] [--quick] [--seed S]\n%s", g_name, what);
  std::exit(status);
}

// Parses the common options; `what` is the program's own description for --help.
inline Options parse_options(int argc, char** argv, const char* name, const char* what) {
  g_name = name;
  Options o;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: %s needs a value\n", name, a);
        usage(what, 2);
      }
      return argv[++i];
    };
    char* end = nullptr;
    if (!std::strcmp(a, "--threads")) {
      long n = std::strtol(value(), &end, 10);
      if (*end || n < 1 || n > 1024) usage(what, 2);
      o.threads = static_cast<int>(n);
    } else if (!std::strcmp(a, "--scale")) {
      o.scale = std::strtod(value(), &end);
      if (*end || !(o.scale > 0) || o.scale > 1000) usage(what, 2);
    } else if (!std::strcmp(a, "--seed")) {
      o.seed = std::strtoull(value(), &end, 0);
      if (*end) usage(what, 2);
    } else if (!std::strcmp(a, "--quick")) {
      o.quick = true;
    } else if (!std::strcmp(a, "--help") || !std::strcmp(a, "-h")) {
      usage(what, 0);
    } else {
      std::fprintf(stderr, "%s: unknown option %s\n", name, a);
      usage(what, 2);
    }
  }
  return o;
}

// The amount of some work: `full` scaled by --scale, or `quick` under --quick; at least 1.
inline uint64_t amount(const Options& o, uint64_t full, uint64_t quick) {
  double v = o.quick ? static_cast<double>(quick) : static_cast<double>(full) * o.scale;
  return v < 1 ? 1 : static_cast<uint64_t>(v);
}

// splitmix64: one 64-bit state, a full-period sequence; good enough to pick sizes and slots.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : state_(seed * 0x9e3779b97f4a7c15ull ^ (stream + 1)) {
    for (int i = 0; i < 4; ++i) next();
  }
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0 (multiply-shift; the bias is below 2^-32 for our n).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Uniform in [lo, hi].
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }

 private:
  uint64_t state_;
};

inline void* xmalloc(size_t size) {
  void* p = std::malloc(size);
  if (!p) fail("malloc(%zu) returned NULL", size);
  return p;
}

// A block of the suite: its first 8 bytes hold a value, its last byte the value's low byte.
// size >= 9 for every block that carries a value.
inline void put_value(void* p, size_t size, uint64_t value) {
  std::memcpy(p, &value, sizeof value);
  static_cast<unsigned char*>(p)[size - 1] = static_cast<unsigned char>(value);
}

// Reads a block's value back, checks its last byte, frees it and returns the value.
inline uint64_t take_value(void* p, size_t size) {
  uint64_t value;
  std::memcpy(&value, p, sizeof value);
  unsigned char last = static_cast<unsigned char>(value);
  if (static_cast<unsigned char*>(p)[size - 1] != last)
    fail("block %p of %zu bytes: last byte %#x, expected %#x", p, size,
         static_cast<unsigned char*>(p)[size - 1], last);
  std::free(p);
  return value;
}

// Sums of values freed, added up by many threads: addition commutes, so the total does not
// depend on which thread freed what.
struct Checksum {
  std::atomic<uint64_t> sum{0};
  std::atomic<uint64_t> count{0};
  void add(uint64_t s, uint64_t n) {
    sum.fetch_add(s, std::memory_order_relaxed);
    count.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t value() const { return sum.load() ^ (count.load() * 0x9e3779b97f4a7c15ull); }
};

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline void print_result(const Options& o, uint64_t ops, uint64_t checksum, double seconds) {
  std::printf("RESULT workload=%s threads=%d ops=%llu checksum=%016llx seconds=%.4f\n", g_name,
              o.threads, static_cast<unsigned long long>(ops),
              static_cast<unsigned long long>(checksum), seconds);
  std::fflush(stdout);
}

// Hoard's inner loop of cache-thrash and cache-scratch: every byte of the object is read and
// written `reps` times through a volatile pointer. Returns the sum of the final bytes.
inline uint64_t hammer(void* p, size_t size, uint64_t reps) {
  volatile unsigned char* b = static_cast<volatile unsigned char*>(p);
  for (size_t k = 0; k < size; ++k) b[k] = static_cast<unsigned char>(k);
  for (uint64_t r = 0; r < reps; ++r)
    for (size_t k = 0; k < size; ++k) b[k] = static_cast<unsigned char>(b[k] + 1);
  uint64_t sum = 0;
  for (size_t k = 0; k < size; ++k) sum += b[k];
  return sum;
}

// Keeps the compiler from dropping a store to, or a malloc+free pair around, `p`.
inline void escape(void* p) {
  asm volatile("" : : "r"(p) : "memory");
}

}  // namespace suite
