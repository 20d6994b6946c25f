// SPDX-License-Identifier: MIT
// suite_mstress: mixed sizes and lifetimes, some blocks passed between threads (after
// mimalloc-bench's mstress).
//
// The run is 10 rounds; each round starts N threads and joins them. Every operation mallocs one
// block and fills all of it (so RSS follows what the program asks for). Sizes: 94% small
// (17..1024 B, half of them 17..128 B), 5.9% medium (1..64 KiB), 0.1% large (64 KiB..1 MiB).
// Lifetimes:
//   60% short   freed at once by the thread that allocated it;
//   30% medium  replaces a random entry of the thread's array of 2000 live blocks, freeing the
//               old one; the array is emptied at the end of the round;
//    5% long    replaces a random entry of the slot's retained array of 500 blocks, which
//               survives the round: the next round's thread of the slot frees what it
//               replaces (a different thread), and main frees what is left at the end;
//    5% passed  swapped into a random cell of a shared array of 64 cells per thread; whatever
//               was there, most often another thread's block, is freed.
//
// Work: 6M operations in all (--scale), split evenly over rounds and threads.
#include <thread>
#include <vector>

#include "suite_common.h"

namespace {

constexpr int kRounds = 10;
constexpr size_t kLive = 2000;
constexpr size_t kRetained = 500;
constexpr size_t kCellsPerThread = 64;
constexpr size_t kMinSize = 17;  // the value, the size, and the value's check byte

struct Block {
  void* p = nullptr;
  size_t size = 0;
};

struct Slot {
  std::vector<Block> retained;
  suite::Rng rng;
  uint64_t sum = 0;
  uint64_t frees = 0;
  uint64_t mallocs = 0;
  Slot(uint64_t seed, uint64_t stream) : retained(kRetained), rng(seed, stream) {}
};

std::vector<std::atomic<void*>>* g_cells;

size_t pick_size(suite::Rng& rng) {
  uint64_t r = rng.below(1000);
  if (r < 470) return rng.range(kMinSize, 128);
  if (r < 940) return rng.range(129, 1024);
  if (r < 999) return rng.range(1025, 64 * 1024);
  return rng.range(64 * 1024 + 1, 1024 * 1024);
}

Block make_block(Slot& s) {
  size_t size = pick_size(s.rng);
  void* p = suite::xmalloc(size);
  std::memset(p, 0x5a, size);
  suite::put_value(p, size, s.rng.next());
  ++s.mallocs;
  return {p, size};
}

void drop(Slot& s, Block& b) {
  if (!b.p) return;
  s.sum += suite::take_value(b.p, b.size);
  ++s.frees;
  b = {};
}

// Every block also keeps its size in bytes 8..15, so that a shared cell can hold a bare
// pointer.
void* to_cell(Block b) {
  std::memcpy(static_cast<char*>(b.p) + 8, &b.size, sizeof b.size);
  return b.p;
}

Block from_cell(void* p) {
  Block b{p, 0};
  std::memcpy(&b.size, static_cast<char*>(p) + 8, sizeof b.size);
  return b;
}

void worker(Slot* s, uint64_t ops) {
  std::vector<Block> live(kLive);
  std::vector<std::atomic<void*>>& cells = *g_cells;
  for (uint64_t i = 0; i < ops; ++i) {
    uint64_t kind = s->rng.below(100);
    Block b = make_block(*s);
    if (kind < 60) {
      drop(*s, b);
    } else if (kind < 90) {
      Block& slot = live[s->rng.below(kLive)];
      drop(*s, slot);
      slot = b;
    } else if (kind < 95) {
      Block& slot = s->retained[s->rng.below(kRetained)];
      drop(*s, slot);
      slot = b;
    } else {
      void* old = cells[s->rng.below(cells.size())].exchange(to_cell(b), std::memory_order_acq_rel);
      if (old) {
        Block o = from_cell(old);
        drop(*s, o);
      }
    }
  }
  for (Block& b : live) drop(*s, b);
}

}  // namespace

int main(int argc, char** argv) {
  suite::Options o = suite::parse_options(
      argc, argv, "mstress",
      "Mixed sizes (mostly small, some 1-64 KiB, rare up to 1 MiB) and lifetimes (short,\n"
      "medium, long, passed between threads); 10 rounds of threads; 6M operations at\n"
      "--scale 1.\n");
  const uint64_t total = suite::amount(o, 6'000'000, 20'000);
  double t0 = suite::now_seconds();

  std::vector<std::atomic<void*>> cells(kCellsPerThread * o.threads);
  for (auto& c : cells) c.store(nullptr);
  g_cells = &cells;
  std::vector<Slot> slots;
  slots.reserve(o.threads);
  for (int t = 0; t < o.threads; ++t) slots.emplace_back(o.seed, t);

  uint64_t per_round = total / kRounds;
  for (int r = 0; r < kRounds; ++r) {
    uint64_t this_round = r + 1 == kRounds ? total - per_round * (kRounds - 1) : per_round;
    std::vector<std::thread> threads;
    for (int t = 0; t < o.threads; ++t) {
      uint64_t share = this_round / o.threads + (static_cast<uint64_t>(t) < this_round % o.threads);
      threads.emplace_back(worker, &slots[t], share);
    }
    for (auto& t : threads) t.join();
  }

  uint64_t sum = 0, frees = 0, mallocs = 0;
  for (Slot& s : slots) {
    for (Block& b : s.retained) drop(s, b);
    sum += s.sum;
    frees += s.frees;
    mallocs += s.mallocs;
  }
  for (auto& c : cells) {
    void* old = c.exchange(nullptr);
    if (old) {
      Block b = from_cell(old);
      sum += suite::take_value(b.p, b.size);
      ++frees;
    }
  }
  if (frees != mallocs)
    suite::fail("%llu blocks freed, %llu allocated", static_cast<unsigned long long>(frees),
                static_cast<unsigned long long>(mallocs));
  suite::print_result(o, total, sum ^ (frees * 0x9e3779b97f4a7c15ull), suite::now_seconds() - t0);
  return 0;
}
