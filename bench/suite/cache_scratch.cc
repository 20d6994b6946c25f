// SPDX-License-Identifier: MIT
// suite_cache_scratch: passive false sharing (after Hoard's cache-scratch).
//
// The main thread mallocs one 8-byte object per thread, one after the other (so they are
// likely neighbours in one cache line), and gives object i to thread i. Each thread writes
// its object, frees it, and then, over and over: mallocs an 8-byte object, reads and writes
// each of its bytes 1000 times, frees it. An allocator that returns a freed object to the
// thread that freed it hands every thread a piece of main's cache line, and the threads' writes
// fight over that line for the whole run.
//
// Work: 240,000 objects in all (--scale), split evenly over the threads.
#include <thread>
#include <vector>

#include "suite_common.h"

namespace {

constexpr size_t kObjSize = 8;
constexpr uint64_t kReps = 1000;

suite::Checksum g_sum;

void worker(void* given, uint64_t iterations, uint64_t reps) {
  uint64_t sum = suite::hammer(given, kObjSize, reps);
  std::free(given);
  for (uint64_t i = 0; i < iterations; ++i) {
    void* p = suite::xmalloc(kObjSize);
    sum += suite::hammer(p, kObjSize, reps);
    std::free(p);
  }
  g_sum.add(sum, iterations + 1);
}

}  // namespace

int main(int argc, char** argv) {
  suite::Options o = suite::parse_options(
      argc, argv, "cache-scratch",
      "Passive false sharing: main mallocs an 8 B object per thread; each thread frees its\n"
      "object, then mallocs, writes 1000 times and frees its own; 240,000 objects at\n"
      "--scale 1.\n");
  const uint64_t total = suite::amount(o, 240'000, 2'000);
  const uint64_t reps = o.quick ? 100 : kReps;
  double t0 = suite::now_seconds();
  std::vector<void*> given(o.threads);
  for (auto& p : given) p = suite::xmalloc(kObjSize);
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    uint64_t share = total / o.threads + (static_cast<uint64_t>(t) < total % o.threads);
    threads.emplace_back(worker, given[t], share, reps);
  }
  for (auto& t : threads) t.join();
  suite::print_result(o, total, g_sum.value(), suite::now_seconds() - t0);
  return 0;
}
