// SPDX-License-Identifier: MIT
// suite_rfree: frees in random order.
//
// Each thread mallocs its share of 2M live blocks (16..256 bytes, uniform), writing each one's
// value, then frees them all in the order of a random permutation, and does that twice.
// Allocation order fills slabs or pages one after the other; the random free order scatters
// the frees over all of them, so free lists grow in address-random order, every page is
// partly free for most of the time, and the next allocation pass walks memory at random.
//
// Work: 2M live blocks, 2 passes (--scale multiplies the blocks), split evenly over threads.
#include <thread>
#include <vector>

#include "suite_common.h"

namespace {

constexpr size_t kMinSize = 16;
constexpr size_t kMaxSize = 256;

suite::Checksum g_sum;

void worker(uint64_t seed, int stream, uint64_t blocks, int passes) {
  suite::Rng rng(seed, stream);
  std::vector<void*> ptr(blocks);
  std::vector<uint16_t> size(blocks);
  std::vector<uint32_t> order(blocks);
  uint64_t sum = 0;
  for (int pass = 0; pass < passes; ++pass) {
    for (uint64_t i = 0; i < blocks; ++i) {
      size[i] = static_cast<uint16_t>(rng.range(kMinSize, kMaxSize));
      ptr[i] = suite::xmalloc(size[i]);
      suite::put_value(ptr[i], size[i], rng.next());
      order[i] = static_cast<uint32_t>(i);
    }
    for (uint64_t i = blocks; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    for (uint64_t i = 0; i < blocks; ++i) sum += suite::take_value(ptr[order[i]], size[order[i]]);
  }
  g_sum.add(sum, blocks * passes);
}

}  // namespace

int main(int argc, char** argv) {
  suite::Options o = suite::parse_options(
      argc, argv, "rfree",
      "Random-order frees: malloc 2M blocks of 16..256 B (shared by the threads), free them\n"
      "in a random permutation; 2 passes at --scale 1.\n");
  const uint64_t total = suite::amount(o, 2'000'000, 20'000);
  const int passes = 2;
  double t0 = suite::now_seconds();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    uint64_t share = total / o.threads + (static_cast<uint64_t>(t) < total % o.threads);
    threads.emplace_back(worker, o.seed, t, share, passes);
  }
  for (auto& t : threads) t.join();
  suite::print_result(o, total * passes, g_sum.value(), suite::now_seconds() - t0);
  return 0;
}
