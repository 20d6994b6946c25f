// SPDX-License-Identifier: MIT
#include "core/meta.h"

#include <cstring>

#include "base/base.h"
#include "pal/os.h"

namespace slub::meta {

namespace {
constexpr unsigned kMinShift = 6;   // 64 bytes
constexpr unsigned kMaxShift = 16;  // 64 KiB
constexpr size_t kRegion = size_t{1} << 20;

struct FreeBlock {
  FreeBlock* next;
};

constinit SpinLock<LockClass::kMeta> g_lock;
constinit FreeBlock* g_free[kMaxShift + 1] = {};
constinit char* g_cur = nullptr;
constinit char* g_end = nullptr;
constinit size_t g_in_use = 0;

unsigned shift_for(size_t size) {
  unsigned s = kMinShift;
  while ((size_t{1} << s) < size) ++s;
  return s;
}
}  // namespace

void* alloc(size_t size) {
  if (size > (size_t{1} << kMaxShift)) {
    void* p = os::map(align_up(size, kPageSize));
    if (p != nullptr) {
      LockGuard g(g_lock);
      g_in_use += align_up(size, kPageSize);
    }
    return p;
  }
  const unsigned s = shift_for(size);
  const size_t bytes = size_t{1} << s;
  LockGuard g(g_lock);
  void* p;
  if (g_free[s] != nullptr) {
    FreeBlock* b = g_free[s];
    g_free[s] = b->next;
    p = b;
    memset(p, 0, bytes);
  } else {
    char* cur = reinterpret_cast<char*>(align_up(reinterpret_cast<uintptr_t>(g_cur), bytes));
    if (g_cur == nullptr || cur + bytes > g_end) {
      // Smaller regions when RLIMIT_AS is tight (a region must hold the largest block).
      const size_t region = os::reservation_size(kRegion, size_t{1} << kMaxShift, 64);
      char* r = static_cast<char*>(os::map(region));
      if (r == nullptr) return nullptr;
      g_cur = r;
      g_end = r + region;
      cur = r;
    }
    g_cur = cur + bytes;
    p = cur;  // fresh mapping: already zero
  }
  g_in_use += bytes;
  return p;
}

void free(void* p, size_t size) {
  if (p == nullptr) return;
  if (size > (size_t{1} << kMaxShift)) {
    os::unmap(p, align_up(size, kPageSize));
    LockGuard g(g_lock);
    g_in_use -= align_up(size, kPageSize);
    return;
  }
  const unsigned s = shift_for(size);
  LockGuard g(g_lock);
  auto* b = static_cast<FreeBlock*>(p);
  b->next = g_free[s];
  g_free[s] = b;
  g_in_use -= size_t{1} << s;
}

size_t bytes_in_use() {
  LockGuard g(g_lock);
  return g_in_use;
}

void lock() {
  g_lock.lock();
}
void unlock() {
  g_lock.unlock();
}

}  // namespace slub::meta
