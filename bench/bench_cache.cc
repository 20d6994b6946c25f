// SPDX-License-Identifier: MIT
// bench_cache: the slub cache API (kmem_cache_alloc/free) against the prefixed malloc family
// (slub_malloc/slub_free) of the same library, statically linked (libslub.a). Nothing here is
// interposed on libc; run it without LD_PRELOAD.
//
// As in bench_malloc, every benchmark reports a user counter "ops" (objects allocated and
// freed per iteration), and ns/op = real_time / ops.

#include <benchmark/benchmark.h>
#include <slub/slub.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

constexpr size_t kBulkCount = 100000;

inline void* touch(void* p) {
  benchmark::DoNotOptimize(p);
  *static_cast<volatile char*>(p) = 1;
  return p;
}

void set_ops(benchmark::State& state, double ops_per_iter) {
  state.counters["ops"] = benchmark::Counter(ops_per_iter);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ops_per_iter));
}

// One cache per size for the whole process, as a program would have. SLAB_NO_MERGE keeps the
// benchmark cache from aliasing a kmalloc cache, so cache_* and slub_malloc_* are measured on
// different caches. The cache is never destroyed: benchmarks may leave per-CPU slabs behind.
kmem_cache* bench_cache(size_t size) {
  static kmem_cache* c64 = nullptr;
  static kmem_cache* c256 = nullptr;
  kmem_cache** slot = size == 64 ? &c64 : size == 256 ? &c256 : nullptr;
  if (slot == nullptr) {
    std::fprintf(stderr, "bench_cache: no cache of size %zu\n", size);
    std::abort();
  }
  if (*slot == nullptr) {
    char name[32];
    std::snprintf(name, sizeof name, "bench-%zu", size);
    *slot = kmem_cache_create(name, size, 0, SLAB_NO_MERGE, nullptr);
    if (*slot == nullptr) {
      std::perror("kmem_cache_create");
      std::abort();
    }
  }
  return *slot;
}

// cache_alloc_free/<size>: kmem_cache_alloc then kmem_cache_free, the fast paths.
void cache_alloc_free(benchmark::State& state) {
  kmem_cache* c = bench_cache(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    void* p = touch(kmem_cache_alloc(c));
    kmem_cache_free(c, p);
    benchmark::ClobberMemory();
  }
  set_ops(state, 1);
}
BENCHMARK(cache_alloc_free)->Arg(64)->Arg(256)->UseRealTime();

// slub_malloc_free/<size>: the same through the size-class front end.
void slub_malloc_free(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = touch(slub_malloc(size));
    slub_free(p);
    benchmark::ClobberMemory();
  }
  set_ops(state, 1);
}
BENCHMARK(slub_malloc_free)->Arg(64)->Arg(256)->UseRealTime();

// cache_bulk/<size>: 100k kmem_cache_alloc, then 100k kmem_cache_free in the same order.
void cache_bulk(benchmark::State& state) {
  kmem_cache* c = bench_cache(static_cast<size_t>(state.range(0)));
  std::vector<void*> ptrs(kBulkCount);
  for (auto _ : state) {
    for (size_t i = 0; i < kBulkCount; ++i) ptrs[i] = touch(kmem_cache_alloc(c));
    benchmark::ClobberMemory();
    for (size_t i = 0; i < kBulkCount; ++i) kmem_cache_free(c, ptrs[i]);
    benchmark::ClobberMemory();
  }
  set_ops(state, kBulkCount);
}
BENCHMARK(cache_bulk)->Arg(64)->Arg(256)->UseRealTime();

// slub_malloc_bulk/<size>: 100k slub_malloc, then 100k slub_free in the same order.
void slub_malloc_bulk(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  std::vector<void*> ptrs(kBulkCount);
  for (auto _ : state) {
    for (size_t i = 0; i < kBulkCount; ++i) ptrs[i] = touch(slub_malloc(size));
    benchmark::ClobberMemory();
    for (size_t i = 0; i < kBulkCount; ++i) slub_free(ptrs[i]);
    benchmark::ClobberMemory();
  }
  set_ops(state, kBulkCount);
}
BENCHMARK(slub_malloc_bulk)->Arg(64)->Arg(256)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
