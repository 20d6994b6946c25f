// SPDX-License-Identifier: MIT
// suite_xmalloc: producers allocate, consumers free (after xmalloc-test).
//
// With N >= 2 threads, N/2 are producers and the rest consumers; producer i feeds consumer
// i % consumers. A producer mallocs blocks of 16..512 bytes (uniform), writes each one's value,
// and sends them in batches of 64 (the batch itself is a malloc'd block too) through its
// consumer's queue: a bounded ring of 32 batches under a mutex, where a full ring makes the
// producer wait. The consumer checks and frees every block and the batch, so every free is
// remote. With one thread the same thread takes both roles in turn: it fills 32 batches, then
// empties them in order.
//
// Work: 12M blocks in all (--scale), split evenly over the producers.
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "suite_common.h"

namespace {

constexpr size_t kMinSize = 16;
constexpr size_t kMaxSize = 512;
constexpr size_t kBatch = 64;
constexpr size_t kRing = 32;

struct Batch {
  size_t n;
  void* p[kBatch];
  uint32_t size[kBatch];
};

// A bounded multi-producer, single-consumer queue of batches; nullptr means "producer done".
class Queue {
 public:
  void push(Batch* b) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return count_ < kRing; });
    ring_[(head_ + count_++) % kRing] = b;
    not_empty_.notify_one();
  }
  Batch* pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return count_ > 0; });
    Batch* b = ring_[head_];
    head_ = (head_ + 1) % kRing;
    --count_;
    not_full_.notify_one();
    return b;
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  Batch* ring_[kRing] = {};
  size_t head_ = 0;
  size_t count_ = 0;
};

suite::Checksum g_sum;

Batch* fill_batch(suite::Rng& rng, uint64_t n) {
  Batch* b = static_cast<Batch*>(suite::xmalloc(sizeof(Batch)));
  b->n = n;
  for (size_t i = 0; i < n; ++i) {
    size_t size = rng.range(kMinSize, kMaxSize);
    b->p[i] = suite::xmalloc(size);
    b->size[i] = static_cast<uint32_t>(size);
    suite::put_value(b->p[i], size, rng.next());
  }
  return b;
}

uint64_t empty_batch(Batch* b) {
  uint64_t sum = 0;
  for (size_t i = 0; i < b->n; ++i) sum += suite::take_value(b->p[i], b->size[i]);
  std::free(b);
  return sum;
}

void producer(Queue* q, suite::Rng rng, uint64_t blocks) {
  while (blocks > 0) {
    uint64_t n = blocks < kBatch ? blocks : kBatch;
    q->push(fill_batch(rng, n));
    blocks -= n;
  }
  q->push(nullptr);
}

void consumer(Queue* q, int producers) {
  uint64_t sum = 0;
  uint64_t count = 0;
  while (producers > 0) {
    Batch* b = q->pop();
    if (!b) {
      --producers;
      continue;
    }
    count += b->n;
    sum += empty_batch(b);
  }
  g_sum.add(sum, count);
}

// One thread, both roles: kRing batches out, then the same batches back in order.
void alternate(suite::Rng rng, uint64_t blocks) {
  Batch* ring[kRing];
  uint64_t sum = 0;
  uint64_t count = 0;
  while (blocks > 0) {
    size_t filled = 0;
    while (filled < kRing && blocks > 0) {
      uint64_t n = blocks < kBatch ? blocks : kBatch;
      ring[filled++] = fill_batch(rng, n);
      blocks -= n;
    }
    for (size_t i = 0; i < filled; ++i) {
      count += ring[i]->n;
      sum += empty_batch(ring[i]);
    }
  }
  g_sum.add(sum, count);
}

}  // namespace

int main(int argc, char** argv) {
  suite::Options o = suite::parse_options(
      argc, argv, "xmalloc",
      "Producer/consumer: half the threads malloc 16..512 B blocks and pass them in batches\n"
      "through bounded queues to the other half, which free them. 12M blocks at --scale 1.\n");
  const uint64_t total = suite::amount(o, 12'000'000, 30'000);
  double t0 = suite::now_seconds();

  if (o.threads == 1) {
    alternate(suite::Rng(o.seed, 0), total);
  } else {
    int producers = o.threads / 2;
    int consumers = o.threads - producers;
    std::vector<Queue> queues(consumers);
    std::vector<int> feeding(consumers, 0);
    for (int i = 0; i < producers; ++i) ++feeding[i % consumers];
    std::vector<std::thread> threads;
    for (int c = 0; c < consumers; ++c) threads.emplace_back(consumer, &queues[c], feeding[c]);
    for (int i = 0; i < producers; ++i) {
      uint64_t share = total / producers + (static_cast<uint64_t>(i) < total % producers);
      threads.emplace_back(producer, &queues[i % consumers], suite::Rng(o.seed, i), share);
    }
    for (auto& t : threads) t.join();
  }
  if (g_sum.count.load() != total)
    suite::fail("%llu blocks freed, %llu allocated",
                static_cast<unsigned long long>(g_sum.count.load()),
                static_cast<unsigned long long>(total));
  suite::print_result(o, total, g_sum.value(), suite::now_seconds() - t0);
  return 0;
}
