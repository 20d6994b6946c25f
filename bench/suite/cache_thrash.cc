// SPDX-License-Identifier: MIT
// suite_cache_thrash: active false sharing (after Hoard's cache-thrash).
//
// Each thread, over and over: malloc an 8-byte object, read and write each of its bytes 1000
// times, free it. No object is shared, but an allocator that hands objects of one cache line
// to different threads makes their writes fight over the line; one that gives each thread its
// own memory runs as fast with N threads (on N cores) as with one.
//
// Work: 240,000 objects in all (--scale), split evenly over the threads.
#include <thread>
#include <vector>

#include "suite_common.h"

namespace {

constexpr size_t kObjSize = 8;
constexpr uint64_t kReps = 1000;

suite::Checksum g_sum;

void worker(uint64_t iterations, uint64_t reps) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < iterations; ++i) {
    void* p = suite::xmalloc(kObjSize);
    sum += suite::hammer(p, kObjSize, reps);
    std::free(p);
  }
  g_sum.add(sum, iterations);
}

}  // namespace

int main(int argc, char** argv) {
  suite::Options o = suite::parse_options(
      argc, argv, "cache-thrash",
      "Active false sharing: each thread mallocs an 8 B object, writes it 1000 times, frees\n"
      "it; 240,000 objects at --scale 1.\n");
  const uint64_t total = suite::amount(o, 240'000, 2'000);
  const uint64_t reps = o.quick ? 100 : kReps;
  double t0 = suite::now_seconds();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    uint64_t share = total / o.threads + (static_cast<uint64_t>(t) < total % o.threads);
    threads.emplace_back(worker, share, reps);
  }
  for (auto& t : threads) t.join();
  suite::print_result(o, total, g_sum.value(), suite::now_seconds() - t0);
  return 0;
}
