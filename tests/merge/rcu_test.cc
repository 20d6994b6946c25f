// SPDX-License-Identifier: MIT
// SLAB_TYPESAFE_BY_RCU: readers inside rcu_read_lock() keep reading objects that a writer frees
// and reallocates at full speed, while whole slabs are emptied and shrunk and other memory is
// churned to reuse freed pages. Every object a reader sees must still be of this type
// (type-stable: the constructor's magic intact), and nothing may fault.
#include <gtest/gtest.h>
#include <urcu.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <slub/slub.h>
#include <slub/stats.h>

#include "mm/page_alloc.h"

namespace {

constexpr uint64_t kMagic = 0x5459504553414645ull;  // "TYPESAFE"

struct Obj {
  uint64_t magic;  // set by the constructor, never changed
  uint64_t id;
  uint64_t payload[6];
};

void ctor(void* p) {
  static_cast<Obj*>(p)->magic = kMagic;
}

}  // namespace

TEST(Rcu, FreePointerSitsOutsideTheObject) {
  kmem_cache* c = kmem_cache_create("rcu-layout", sizeof(Obj), 0, SLAB_TYPESAFE_BY_RCU, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_GT(kmem_cache_slot_size(c), sizeof(Obj));  // object plus the free pointer after it
  auto* o = static_cast<Obj*>(kmem_cache_alloc(c));
  std::memset(o, 0x77, sizeof(Obj));
  kmem_cache_free(c, o);
  for (size_t i = 0; i < sizeof(Obj); ++i) ASSERT_EQ(reinterpret_cast<uint8_t*>(o)[i], 0x77);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(Rcu, ReadersSeeTypeStableObjectsWhileSlabsAreFreed) {
  kmem_cache* c = kmem_cache_create("rcu-objs", sizeof(Obj), 0, SLAB_TYPESAFE_BY_RCU, ctor);
  ASSERT_NE(c, nullptr);
  constexpr int kSlots = 2048;
  std::vector<std::atomic<Obj*>> slots(kSlots);
  for (auto& s : slots) s.store(static_cast<Obj*>(kmem_cache_alloc(c)));

  std::atomic<bool> stop{false};
  std::atomic<long> reads{0}, bad{0};
  auto reader = [&] {
    rcu_register_thread();
    std::mt19937 rng(1);
    long n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      rcu_read_lock();
      Obj* o = slots[rng() % kSlots].load(std::memory_order_acquire);
      // The object may be freed and reused meanwhile, but stays an Obj: look at it for a
      // while, as a lookup that compares keys would.
      for (int k = 0; k < 64; ++k)
        if (__atomic_load_n(&o->magic, __ATOMIC_RELAXED) != kMagic) {
          bad++;
          break;
        }
      rcu_read_unlock();
      ++n;
    }
    reads += n;
    rcu_unregister_thread();
  };
  std::thread r1(reader), r2(reader);

  const size_t freed_before = slub::PageAlloc::stats().free_pages;
  uint64_t before[NR_SLUB_STAT_ITEMS], after[NR_SLUB_STAT_ITEMS];
  kmem_cache_get_stats(c, before);
  std::mt19937 rng(2);
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  std::vector<void*> churn;
  std::vector<Obj*> fresh(kSlots), old(kSlots);
  long rounds = 0;
  while (std::chrono::steady_clock::now() < end) {
    ++rounds;
    // Replace every object by one from new slabs, then free the old ones at once, without
    // waiting for readers: their slabs empty out and go back (after a grace period).
    for (int i = 0; i < kSlots; ++i) {
      fresh[i] = static_cast<Obj*>(kmem_cache_alloc(c));
      fresh[i]->id = rng();
    }
    for (int i = 0; i < kSlots; ++i)
      old[i] = slots[i].exchange(fresh[i], std::memory_order_acq_rel);
    for (int i = 0; i < kSlots; ++i) kmem_cache_free(c, old[i]);
    // Empty slabs go back (after a grace period) and other memory is churned to reuse pages.
    kmem_cache_shrink(c);
    for (int i = 0; i < 4096; ++i) {  // same-sized blocks: order-0 slabs, like ours
      void* p = slub_malloc(sizeof(Obj));
      std::memset(p, 0xee, sizeof(Obj));
      churn.push_back(p);
    }
    for (void* p : churn) slub_free(p);
    churn.clear();
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 10000);
  kmem_cache_get_stats(c, after);
  EXPECT_GT(after[FREE_SLAB], before[FREE_SLAB])
      << "no slab was freed: the test did not exercise RCU freeing (" << rounds << " rounds, "
      << after[ALLOC_SLAB] << " slabs allocated, " << after[CPU_PARTIAL_FREE]
      << " adopted by frees)";
  for (auto& s : slots) kmem_cache_free(c, s.load());
  kmem_cache_shrink(c);
  EXPECT_EQ(kmem_cache_destroy(c), 0);  // waits for the pending RCU frees
  EXPECT_GE(slub::PageAlloc::stats().free_pages + 64, freed_before);
}
