// SPDX-License-Identifier: MIT
// bench_malloc: micro benchmarks of the plain malloc/free interface.
//
// This binary is NOT linked against slub. The allocator under test is chosen at run time with
// LD_PRELOAD (tools/bench.sh runs it under glibc, jemalloc, mimalloc, tcmalloc and libslub.so),
// so every allocator runs exactly the same machine code here.
//
// Every benchmark reports a user counter "ops": the number of objects that were allocated and
// freed (one malloc plus one free each) per benchmark iteration. ns/op = real_time / ops; that
// is what tools/bench_report.py computes. All benchmarks use real time.
//
// The compiler must not see through malloc/free: GCC deletes a malloc+free pair whose pointer
// does not escape. We build with -fno-builtin-malloc -fno-builtin-free (bench/CMakeLists.txt)
// and pass every pointer through benchmark::DoNotOptimize, which makes it escape.

#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_CPU_RELAX() _mm_pause()
#else
#define BENCH_CPU_RELAX() ((void)0)
#endif

namespace {

constexpr uint64_t kSeed = 0x5eed5eedULL;  // fixed: every allocator sees the same sequence

// Touches the first byte so that the allocator's memory is really used (as a program would),
// and makes the pointer escape.
inline void* touch(void* p) {
  benchmark::DoNotOptimize(p);
  *static_cast<volatile char*>(p) = 1;
  return p;
}

void set_ops(benchmark::State& state, double ops_per_iter) {
  state.counters["ops"] = benchmark::Counter(ops_per_iter);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ops_per_iter));
}

// ---------------------------------------------------------------------------------------------
// malloc_free/<size>: one malloc immediately followed by its free, the fast path of both.
void malloc_free(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = malloc(size);
    touch(p);
    free(p);
    benchmark::ClobberMemory();
  }
  set_ops(state, 1);
}
BENCHMARK(malloc_free)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// bulk_fifo / bulk_random: allocate 100k objects of 64 bytes, then free all of them, in
// allocation order (fifo) or in a fixed random permutation (random). Exercises slab refill,
// the free slow path (full -> partial -> empty slabs) and page allocator churn.
constexpr size_t kBulkCount = 100000;
constexpr size_t kBulkSize = 64;

void bulk_fifo(benchmark::State& state) {
  std::vector<void*> ptrs(kBulkCount);
  for (auto _ : state) {
    for (size_t i = 0; i < kBulkCount; ++i) ptrs[i] = touch(malloc(kBulkSize));
    benchmark::ClobberMemory();
    for (size_t i = 0; i < kBulkCount; ++i) free(ptrs[i]);
    benchmark::ClobberMemory();
  }
  set_ops(state, kBulkCount);
}
BENCHMARK(bulk_fifo)->UseRealTime();

void bulk_random(benchmark::State& state) {
  std::vector<void*> ptrs(kBulkCount);
  std::vector<uint32_t> order(kBulkCount);
  for (size_t i = 0; i < kBulkCount; ++i) order[i] = static_cast<uint32_t>(i);
  std::mt19937_64 rng(kSeed);
  std::shuffle(order.begin(), order.end(), rng);
  for (auto _ : state) {
    for (size_t i = 0; i < kBulkCount; ++i) ptrs[i] = touch(malloc(kBulkSize));
    benchmark::ClobberMemory();
    for (size_t i = 0; i < kBulkCount; ++i) free(ptrs[order[i]]);
    benchmark::ClobberMemory();
  }
  set_ops(state, kBulkCount);
}
BENCHMARK(bulk_random)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// Cross-thread frees. One thread allocates batches of 64-byte objects and hands them over a
// single-producer/single-consumer ring of batches to a second thread that frees them; so every
// free is a "remote" free of an object some other CPU allocated. The ring costs two atomic
// index updates per batch of 256 objects, so the allocator dominates. The figure is the
// throughput of the pipeline (ns per object handed over), i.e. the slower of the two sides.
//   remote_free_consumer: the benchmark thread frees, a helper thread allocates.
//   remote_free_producer: the benchmark thread allocates, a helper thread frees.
// The two threads are pinned to two different CPUs for the run (see PinPair).
constexpr size_t kBatch = 256;
constexpr size_t kSlots = 64;  // batches in flight at most (16k objects)
constexpr size_t kXSize = 64;

struct alignas(64) BatchRing {
  alignas(64) std::atomic<uint64_t> head{0};  // written by the producer
  alignas(64) std::atomic<uint64_t> tail{0};  // written by the consumer
  alignas(64) std::atomic<bool> stop{false};
  void* slot[kSlots][kBatch];
};

// Pins the benchmark thread and the helper thread to two different CPUs of the process's
// affinity mask (the first two), so that the scheduler neither stacks them on one core nor
// moves them around mid-run; restores the benchmark thread's mask afterwards. With fewer than
// two CPUs available it does nothing (the figures then mean little). SLUB_BENCH_PIN=0 in the
// environment turns pinning off (better on a machine where other work keeps CPUs busy: a
// pinned thread cannot move away from it).
class PinPair {
 public:
  PinPair() {
    CPU_ZERO(&saved_);
    if (const char* e = std::getenv("SLUB_BENCH_PIN"); e != nullptr && e[0] == '0') return;
    if (sched_getaffinity(0, sizeof saved_, &saved_) != 0) return;
    int found = 0;
    for (int c = 0; c < CPU_SETSIZE && found < 2; ++c)
      if (CPU_ISSET(c, &saved_)) cpu_[found++] = c;
    if (found < 2) return;
    ok_ = set_self(cpu_[0]);
  }
  ~PinPair() {
    if (ok_) pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
  }
  // Called by the helper thread on itself.
  void pin_helper() const {
    if (ok_) set_self(cpu_[1]);
  }

 private:
  static bool set_self(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s) == 0;
  }
  cpu_set_t saved_;
  int cpu_[2] = {-1, -1};
  bool ok_ = false;
};

inline void backoff(unsigned& spins) {
  if (++spins < 256) {
    BENCH_CPU_RELAX();
  } else {
    std::this_thread::yield();
  }
}

// Fills one batch and publishes it. Returns false if asked to stop while waiting for room.
bool produce_one(BatchRing& r) {
  const uint64_t h = r.head.load(std::memory_order_relaxed);
  unsigned spins = 0;
  while (h - r.tail.load(std::memory_order_acquire) >= kSlots) {
    if (r.stop.load(std::memory_order_relaxed)) return false;
    backoff(spins);
  }
  void** b = r.slot[h % kSlots];
  for (size_t i = 0; i < kBatch; ++i) b[i] = touch(malloc(kXSize));
  r.head.store(h + 1, std::memory_order_release);
  return true;
}

// Takes one batch and frees it. Returns false if asked to stop while the ring was empty.
bool consume_one(BatchRing& r) {
  const uint64_t t = r.tail.load(std::memory_order_relaxed);
  unsigned spins = 0;
  while (r.head.load(std::memory_order_acquire) == t) {
    if (r.stop.load(std::memory_order_relaxed)) return false;
    backoff(spins);
  }
  void** b = r.slot[t % kSlots];
  for (size_t i = 0; i < kBatch; ++i) free(b[i]);
  r.tail.store(t + 1, std::memory_order_release);
  return true;
}

// Frees whatever is still in the ring (both threads stopped).
void drain(BatchRing& r) {
  uint64_t t = r.tail.load(), h = r.head.load();
  for (; t != h; ++t)
    for (size_t i = 0; i < kBatch; ++i) free(r.slot[t % kSlots][i]);
  r.tail.store(t);
}

void remote_free_consumer(benchmark::State& state) {
  PinPair pin;
  auto* ring = new BatchRing;
  std::thread producer([ring, &pin] {
    pin.pin_helper();
    while (produce_one(*ring)) {
    }
  });
  for (auto _ : state) {
    if (!consume_one(*ring)) break;  // never happens: nobody sets stop before the loop ends
  }
  ring->stop.store(true);
  producer.join();
  drain(*ring);
  delete ring;
  set_ops(state, kBatch);
}
BENCHMARK(remote_free_consumer)->UseRealTime();

void remote_free_producer(benchmark::State& state) {
  PinPair pin;
  auto* ring = new BatchRing;
  std::thread consumer([ring, &pin] {
    pin.pin_helper();
    while (consume_one(*ring)) {
    }
    // stop was seen with the ring empty; the producer may have published more before stop.
  });
  for (auto _ : state) {
    if (!produce_one(*ring)) break;
  }
  ring->stop.store(true);
  consumer.join();
  drain(*ring);
  delete ring;
  set_ops(state, kBatch);
}
BENCHMARK(remote_free_producer)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// churn/<window>: a window of <window> live objects of random sizes 16..1024; each operation
// frees a random one and allocates a new one of a random size in its place. Sizes and slots
// come from a fixed-seed table, so all allocators see the same sequence.
constexpr size_t kChurnTable = 1 << 16;

void churn(benchmark::State& state) {
  const size_t window = static_cast<size_t>(state.range(0));
  std::mt19937_64 rng(kSeed);
  std::uniform_int_distribution<uint32_t> size_dist(16, 1024);
  std::uniform_int_distribution<uint32_t> slot_dist(0, static_cast<uint32_t>(window - 1));
  std::vector<uint32_t> sizes(kChurnTable), slots(kChurnTable);
  for (size_t i = 0; i < kChurnTable; ++i) {
    sizes[i] = size_dist(rng);
    slots[i] = slot_dist(rng);
  }
  std::vector<void*> live(window);
  for (size_t i = 0; i < window; ++i) live[i] = touch(malloc(sizes[i % kChurnTable]));

  size_t k = 0;
  for (auto _ : state) {
    const size_t j = k & (kChurnTable - 1);
    void*& p = live[slots[j]];
    free(p);
    p = touch(malloc(sizes[j]));
    ++k;
  }
  for (void* p : live) free(p);
  set_ops(state, 1);
}
BENCHMARK(churn)->Arg(1024)->Arg(65536)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
