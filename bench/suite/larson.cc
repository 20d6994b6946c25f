// SPDX-License-Identifier: MIT
// suite_larson: a server simulation after Larson and Krishnan's benchmark.
//
// Each of N chains owns an array of 4000 live blocks (16..1000 bytes, uniform), filled by the
// main thread before the chains start, so the first frees of every chain are remote. A chain
// runs as a sequence of thread generations: a generation does 50,000 operations (free a
// random slot's block, malloc a new one in its place), then starts the next generation's
// thread, hands it the array, and exits. Every block a generation inherited was allocated by
// another thread (its predecessor, or main), so a steady share of frees is remote, and threads
// are born and die all the time, as in a server that hands connections to new workers.
// At the end main frees whatever the chains hold.
//
// Work: 16M operations in all (--scale), split evenly over the chains.
#include <thread>
#include <vector>

#include "suite_common.h"

namespace {

constexpr size_t kMinSize = 16;
constexpr size_t kMaxSize = 1000;

struct Slot {
  void* p;
  size_t size;
};

struct Chain {
  std::vector<Slot> slots;
  suite::Rng rng;
  uint64_t ops_per_gen = 0;
  uint64_t last_gen_ops = 0;  // the last generation's share (the remainder)
  size_t gens = 0;
  std::vector<std::thread> threads;  // threads[g] runs generation g; g+1 is started by g
  uint64_t sum = 0;
  uint64_t frees = 0;

  Chain(uint64_t seed, uint64_t stream) : rng(seed, stream) {}
};

Slot new_block(suite::Rng& rng) {
  size_t size = rng.range(kMinSize, kMaxSize);
  void* p = suite::xmalloc(size);
  suite::put_value(p, size, rng.next());
  return {p, size};
}

void run_generation(Chain* c, size_t gen) {
  uint64_t ops = gen + 1 == c->gens ? c->last_gen_ops : c->ops_per_gen;
  uint64_t sum = 0;
  size_t n = c->slots.size();
  for (uint64_t i = 0; i < ops; ++i) {
    Slot& s = c->slots[c->rng.below(n)];
    sum += suite::take_value(s.p, s.size);
    s = new_block(c->rng);
  }
  c->sum += sum;
  c->frees += ops;
  // Everything of this generation is done: the successor may take the chain from here on.
  if (gen + 1 < c->gens) c->threads[gen + 1] = std::thread(run_generation, c, gen + 1);
}

}  // namespace

int main(int argc, char** argv) {
  suite::Options o = suite::parse_options(
      argc, argv, "larson",
      "Larson-like server simulation: per-thread slot arrays, random free+malloc, thread\n"
      "generations that inherit their predecessor's blocks. 16M operations at --scale 1.\n");
  const uint64_t total = suite::amount(o, 16'000'000, 40'000);
  const size_t nslots = o.quick ? 200 : 4000;
  const uint64_t ops_per_gen = o.quick ? 2'000 : 50'000;
  double t0 = suite::now_seconds();

  std::vector<Chain> chains;
  chains.reserve(o.threads);
  for (int t = 0; t < o.threads; ++t) {
    Chain& c = chains.emplace_back(o.seed, t);
    uint64_t share = total / o.threads + (static_cast<uint64_t>(t) < total % o.threads);
    c.gens = share == 0 ? 0 : (share + ops_per_gen - 1) / ops_per_gen;
    c.ops_per_gen = ops_per_gen;
    c.last_gen_ops = share - (c.gens > 0 ? (c.gens - 1) * ops_per_gen : 0);
    c.threads.resize(c.gens);
    c.slots.reserve(nslots);
    for (size_t i = 0; i < nslots; ++i) c.slots.push_back(new_block(c.rng));
  }
  for (Chain& c : chains)
    if (c.gens > 0) c.threads[0] = std::thread(run_generation, &c, 0);
  // Generation g's thread is created by generation g-1 before it exits, so joining g-1 makes
  // threads[g] visible here.
  for (Chain& c : chains)
    for (size_t g = 0; g < c.gens; ++g) c.threads[g].join();

  uint64_t sum = 0;
  uint64_t frees = 0;
  for (Chain& c : chains) {
    for (Slot& s : c.slots) sum += suite::take_value(s.p, s.size);
    sum += c.sum;
    frees += c.frees + c.slots.size();
  }
  suite::print_result(o, total, sum ^ (frees * 0x9e3779b97f4a7c15ull), suite::now_seconds() - t0);
  return 0;
}
