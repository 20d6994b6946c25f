// SPDX-License-Identifier: MIT
#include "mm/page_map.h"

#include "pal/os.h"

namespace slub {

constinit std::atomic<std::atomic<uintptr_t>*> PageMap::root_[PageMap::kRootSize] = {};

std::atomic<uintptr_t>* PageMap::leaf_for(uintptr_t ci) {
  auto& slot = root_[ci >> kLeafBits];
  std::atomic<uintptr_t>* leaf = slot.load(std::memory_order_acquire);
  if (leaf != nullptr) return leaf;
  constexpr size_t bytes = kLeafSize * sizeof(uintptr_t);
  auto* fresh = static_cast<std::atomic<uintptr_t>*>(os::map(bytes));
  if (fresh == nullptr) return nullptr;
  if (slot.compare_exchange_strong(leaf, fresh, std::memory_order_acq_rel)) return fresh;
  os::unmap(fresh, bytes);  // another thread installed one first
  return leaf;
}

bool PageMap::set(uintptr_t base, size_t size, uintptr_t owner, Tag tag) {
  for (uintptr_t a = base; a < base + size; a += kChunkSize) {
    if (a >> kAddrBits) return false;
    std::atomic<uintptr_t>* leaf = leaf_for(a >> kChunkShift);
    if (leaf == nullptr) return false;
    leaf[(a >> kChunkShift) & (kLeafSize - 1)].store(owner | tag, std::memory_order_release);
  }
  return true;
}

void PageMap::clear(uintptr_t base, size_t size) {
  for (uintptr_t a = base; a < base + size; a += kChunkSize) {
    std::atomic<uintptr_t>* leaf = root_[(a >> kChunkShift) >> kLeafBits].load();
    if (leaf != nullptr) leaf[(a >> kChunkShift) & (kLeafSize - 1)].store(0);
  }
}

}  // namespace slub
