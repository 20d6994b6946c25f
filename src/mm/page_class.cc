// SPDX-License-Identifier: MIT
#include "mm/page_class.h"

#include "base/base.h"
#include "mm/page_desc.h"
#include "pal/os.h"

namespace slub {

namespace {
constexpr unsigned kAddrBits = 47;                     // user address space
constexpr size_t kGranuleBytes = size_t{2} << 20;      // table bytes made writable at a time
constexpr size_t kGranuleEntries = kGranuleBytes / 4;  // covering 2 GiB of addresses
constexpr size_t kMaxGranules = (size_t{1} << (kAddrBits - kPageShift)) / kGranuleEntries;
constinit std::atomic<uint64_t> g_committed[kMaxGranules / 64] = {};
constinit SpinLock<LockClass::kPageClass> g_init_lock;
}  // namespace

bool PageClass::init() {
  if (__atomic_load_n(&pages_, __ATOMIC_ACQUIRE) != 0) return true;
  LockGuard g(g_init_lock);
  if (pages_ != 0) return true;
  // Covering the whole user address space, else less (the chunks above it have no entries).
  for (unsigned bits : {kAddrBits, 44u, 41u}) {
    const size_t entries = size_t{1} << (bits - kPageShift);
    // Only with room to spare under RLIMIT_AS (it counts address space, used or not).
    if (os::address_space_budget() / 8 < entries * sizeof(uint32_t)) continue;
    void* t = os::reserve_readonly(entries * sizeof(uint32_t));
    if (t == nullptr) continue;
    table_ = static_cast<uint32_t*>(t);
    __atomic_store_n(&pages_, entries, __ATOMIC_RELEASE);  // last: get() reads pages_ first
    return true;
  }
  return false;
}

bool PageClass::commit_chunk(uintptr_t chunk) {
  const uintptr_t first = chunk >> kPageShift;
  if (pages_ == 0 || first + kPagesPerChunk > pages_) return false;
  const size_t granule = first / kGranuleEntries;
  const uint64_t bit = uint64_t{1} << (granule % 64);
  if (g_committed[granule / 64].load(std::memory_order_acquire) & bit) return true;
  if (!os::commit(table_ + granule * kGranuleEntries, kGranuleBytes)) return false;
  g_committed[granule / 64].fetch_or(bit, std::memory_order_acq_rel);
  return true;
}

void PageClass::set(const void* run, unsigned order, uint32_t v) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(run) >> kPageShift;
  const size_t n = size_t{1} << order;
  if (first + n > pages_) return;
  const size_t granule = first / kGranuleEntries;
  if (!(g_committed[granule / 64].load(std::memory_order_acquire) &
        (uint64_t{1} << (granule % 64))))
    return;  // the chunk's part of the table could not be made writable: no entries
  for (size_t i = 0; i < n; ++i) __atomic_store_n(&table_[first + i], v, __ATOMIC_RELEASE);
}

}  // namespace slub
