// SPDX-License-Identifier: MIT
// base: compiler macros, bit helpers, a spin lock, an intrusive list and the 128-bit
// compare-and-swap. Nothing here allocates or makes a system call except SpinLock's yield
// (and, with SLUB_LOCKDEP, the lock checker's report before it aborts).
#pragma once

#include <sched.h>

// ThreadSanitizer cannot see inside inline asm: under TSan, cmpxchg16b below tells it that the
// instruction is an acquire-release operation on the pair (tools/ci/sanitizers.sh).
#if defined(__SANITIZE_THREAD__)
#define SLUB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLUB_TSAN 1
#endif
#endif
#ifdef SLUB_TSAN
#include <sanitizer/tsan_interface.h>
// A hand-off TSan cannot see (an asm instruction, a library that is not instrumented).
#define SLUB_TSAN_RELEASE(p) __tsan_release(p)
#define SLUB_TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define SLUB_TSAN_RELEASE(p) ((void)0)
#define SLUB_TSAN_ACQUIRE(p) ((void)0)
#endif

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/lock_rank.h"

#define SLUB_LIKELY(x) __builtin_expect(!!(x), 1)
#define SLUB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SLUB_FAST_PATH inline __attribute__((always_inline))
#define SLUB_SLOW_PATH __attribute__((noinline, cold))
#define SLUB_NOINLINE __attribute__((noinline))
#define SLUB_EXPORT extern "C" __attribute__((visibility("default")))
// Globals the fast paths read: hidden, so that code inlined into libslub.so's entry points
// reaches them RIP-relative, not through the GOT.
#define SLUB_HIDDEN __attribute__((visibility("hidden")))
#define SLUB_TLS __thread __attribute__((tls_model("initial-exec")))
// The lock checker's wrappers are inlined even at -O0, so that the address it records for a
// lock is in the function that takes it.
#ifdef SLUB_LOCKDEP
#define SLUB_LOCKDEP_INLINE inline __attribute__((always_inline))
#else
#define SLUB_LOCKDEP_INLINE
#endif

namespace slub {

inline constexpr size_t kPageShift = 12;
inline constexpr size_t kPageSize = size_t{1} << kPageShift;
inline constexpr size_t kCacheLine = 64;

constexpr size_t align_up(size_t x, size_t a) {
  return (x + a - 1) & ~(a - 1);
}
constexpr size_t align_down(size_t x, size_t a) {
  return x & ~(a - 1);
}
constexpr bool is_pow2(size_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}
// Position of the highest set bit, 1-based; fls(0) == 0 (the kernel's fls).
constexpr unsigned fls(unsigned long x) {
  return x ? 64 - __builtin_clzl(x) : 0;
}
constexpr unsigned ilog2(unsigned long x) {
  return fls(x) - 1;
}
constexpr size_t roundup_pow2(size_t x) {
  return x <= 1 ? 1 : size_t{1} << fls(x - 1);
}
// Smallest order with (kPageSize << order) >= size (the kernel's get_order).
constexpr unsigned get_order(size_t size) {
  return size <= kPageSize ? 0 : fls((size - 1) >> kPageShift);
}

inline void cpu_relax() {
  __builtin_ia32_pause();
}

// Test-and-test-and-set lock; yields after spinning a while so that a preempted holder on a
// 2-core machine can run. Zero-initialised means unlocked, so it is valid in fresh mmap memory.
// Used only as the body of SpinLock below, which gives every lock its class.
class RawSpinLock {
 public:
  void lock() {
    if (SLUB_LIKELY(!locked_.exchange(true, std::memory_order_acquire))) return;
    lock_slow();
  }
  bool try_lock() {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  // One exchange, no read first (a fast path that gives up when the lock is taken).
  bool try_lock_now() { return !locked_.exchange(true, std::memory_order_acquire); }
  void unlock() { locked_.store(false, std::memory_order_release); }
  bool is_locked() const { return locked_.load(std::memory_order_relaxed); }
  // After fork, in the child: the holder is gone (only used on locks the parent held itself).
  void reset() { locked_.store(false, std::memory_order_relaxed); }

 private:
  SLUB_NOINLINE void lock_slow() {
    for (unsigned spins = 0;; ++spins) {
      if (!locked_.load(std::memory_order_relaxed) &&
          !locked_.exchange(true, std::memory_order_acquire))
        return;
      if (spins < 64)
        cpu_relax();
      else
        sched_yield();
    }
  }
  std::atomic<bool> locked_{false};
};

// A lock of class C (base/lock_rank.h: the order of the classes). Without SLUB_LOCKDEP it is
// RawSpinLock itself, the same byte and the same instructions; with it, every operation first
// tells the checker (pal/lockdep.cc), which aborts on a lock taken out of order or released
// without being held.
template <LockClass C>
class SpinLock : private RawSpinLock {
 public:
  static constexpr LockClass kClass = C;
#ifndef SLUB_LOCKDEP
  using RawSpinLock::lock;
  using RawSpinLock::reset;
  using RawSpinLock::try_lock;
  using RawSpinLock::try_lock_now;
  using RawSpinLock::unlock;
  // One of several locks of this class held at once, under `nest` (lock_rank.h).
  template <LockClass N>
  void lock_nest(const SpinLock<N>&) {
    RawSpinLock::lock();
  }
#else
  SLUB_LOCKDEP_INLINE void lock() {
    lockdep::acquire(C, this, lockdep::kLock);
    RawSpinLock::lock();
  }
  template <LockClass N>
  SLUB_LOCKDEP_INLINE void lock_nest(const SpinLock<N>& nest) {
    lockdep::acquire(C, this, lockdep::kNest, &nest);
    RawSpinLock::lock();
  }
  SLUB_LOCKDEP_INLINE bool try_lock() {
    return RawSpinLock::try_lock() && tried();
  }
  SLUB_LOCKDEP_INLINE bool try_lock_now() {
    return RawSpinLock::try_lock_now() && tried();
  }
  SLUB_LOCKDEP_INLINE void unlock() {
    lockdep::release(C, this);
    RawSpinLock::unlock();
  }
  // The child of fork releases what its thread held in the parent.
  SLUB_LOCKDEP_INLINE void reset() {
    lockdep::release(C, this);
    RawSpinLock::reset();
  }
#endif
  using RawSpinLock::is_locked;

 private:
#ifdef SLUB_LOCKDEP
  SLUB_LOCKDEP_INLINE bool tried() {
    lockdep::acquire(C, this, lockdep::kTry);
    return true;
  }
#endif
};
static_assert(sizeof(SpinLock<LockClass::kInit>) == 1, "SpinLock is packed into SLAB headers");

template <typename Lock>
class LockGuard {
 public:
  SLUB_LOCKDEP_INLINE explicit LockGuard(Lock& l) : l_(l) { l_.lock(); }
  SLUB_LOCKDEP_INLINE ~LockGuard() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& l_;
};

// Circular doubly linked intrusive list, as the kernel's list_head. A zeroed ListHead is
// "not initialised"; call init() before use.
struct ListHead {
  ListHead* next;
  ListHead* prev;

  void init() { next = prev = this; }
  bool empty() const { return next == this; }
  void add_head(ListHead* n) { insert(n, this, next); }
  void add_tail(ListHead* n) { insert(n, prev, this); }
  static void del(ListHead* n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = nullptr;
  }

 private:
  static void insert(ListHead* n, ListHead* prev, ListHead* next) {
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
  }
};

template <typename T, ListHead T::*Member>
T* list_entry(ListHead* h) {
  const size_t off = reinterpret_cast<size_t>(&(static_cast<T*>(nullptr)->*Member));
  return reinterpret_cast<T*>(reinterpret_cast<char*>(h) - off);
}

// A 16-byte pair swapped atomically with lock cmpxchg16b (std::atomic<__int128> may go through
// libatomic's locks, which we must not use). `p` must be 16-byte aligned.
struct alignas(16) DoubleWord {
  uint64_t lo;
  uint64_t hi;
};

// Compares *p with `expected`; if equal stores `desired` and returns true, else loads *p into
// `expected` and returns false. Full barrier either way.
inline bool cmpxchg16b(DoubleWord* p, DoubleWord& expected, DoubleWord desired) {
  bool ok;
  SLUB_TSAN_RELEASE(p);  // a locked instruction: a full barrier whether or not it swaps
  __asm__ __volatile__("lock cmpxchg16b %1"
                       : "=@ccz"(ok), "+m"(*p), "+a"(expected.lo), "+d"(expected.hi)
                       : "b"(desired.lo), "c"(desired.hi)
                       : "memory");
  SLUB_TSAN_ACQUIRE(p);
  return ok;
}

// A racy but tear-free read of the pair is not possible without the instruction; callers read
// the two halves separately and let the compare-and-swap catch any inconsistency.
inline DoubleWord load_relaxed(const DoubleWord* p) {
  DoubleWord d;
  d.lo = __atomic_load_n(&p->lo, __ATOMIC_ACQUIRE);
  d.hi = __atomic_load_n(&p->hi, __ATOMIC_ACQUIRE);
  return d;
}

}  // namespace slub
