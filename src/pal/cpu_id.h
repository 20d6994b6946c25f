// SPDX-License-Identifier: MIT
// pal/cpu_id: the only source of "which CPU am I on". Real mode reads the cpu_id field of the
// thread's rseq area that glibc registered (one TLS-relative load); where there is none
// (valgrind, old kernels, glibc.pthread.rseq=0) it falls back to sched_getcpu(). Virtual mode
// binds a thread to vCPU k (0..kMaxCpus-1) for the many-CPU harness: the same code runs, only
// the answer differs.
//
// rseq fast paths. When glibc registered rseq, membarrier's rseq fence works and SLUB_RSEQ is
// not 0, the per-CPU fast paths run as rseq critical sections (slub/slub_cache.h): a plain
// store commits, and the kernel restarts the section if the thread is preempted, migrated or
// signalled before it. A slot may then only be changed by a fast path on its own CPU, or by a
// holder of the slot's lock after marking it busy AND either running on that CPU or fencing it
// (rseq_fence: every section in flight there restarts, and sees busy). The first thread bound
// to a virtual CPU turns rseq fast paths off for the whole process (fenced), since threads of
// one virtual CPU share a slot from many real CPUs: the compare-and-swap fast paths take over.
#pragma once

#include <cstdint>

#include "base/base.h"

namespace slub {

inline constexpr int kMaxCpus = 4096;

// The allocator's per-thread state, in one initial-exec TLS block so that a path that needs
// several fields pays for one GOT load.
struct ThreadState {
  int vcpu_plus1;   // 0: not bound; else the virtual CPU + 1
  int cached_cpu;   // no rseq: last sched_getcpu() answer
  int cached_left;  // no rseq: calls left before asking again
  int slow_depth;   // core/reentry.h: allocator slow paths in progress on this thread
  void* deferred;   // core/reentry.h: frees of a signal handler, done when the thread leaves
  // Sheaves without rseq (slub.cc): the CPU area of the thread's CPU as last looked up, or
  // nullptr (look it up again); valid for cached_left more calls.
  char* area;
  bool draining;  // core/reentry.cc: drain_deferred is running on this thread
};
extern SLUB_TLS ThreadState t_thread;

class CpuId {
 public:
  // Called once at start-up (and harmlessly again); decides whether the rseq area is usable.
  static void init();

  SLUB_FAST_PATH static int current() {
    int v = t_thread.vcpu_plus1;
    if (SLUB_UNLIKELY(v != 0)) return v - 1;
    if (SLUB_LIKELY(rseq_off_ != kNoRseq)) {
      const char* tp = static_cast<const char*>(__builtin_thread_pointer());
      int32_t cpu = *reinterpret_cast<const volatile int32_t*>(tp + rseq_off_ + 4);
      if (SLUB_LIKELY(static_cast<uint32_t>(cpu) < static_cast<uint32_t>(kMaxCpus))) return cpu;
    }
    // No rseq (valgrind, glibc.pthread.rseq=0): sched_getcpu() costs a system call under
    // valgrind, so its answer is reused for a while. A stale CPU id is only a locality
    // loss: every slot tolerates any thread (all changes are compare-and-swaps).
    if (SLUB_LIKELY(--t_thread.cached_left > 0)) return t_thread.cached_cpu;
    return current_slow();
  }

  // Binds the calling thread to virtual CPU `vcpu`, or unbinds it with -1. Returns 0, or -1
  // when vcpu is out of range.
  static int bind_virtual(int vcpu);
  static bool is_virtual() { return t_thread.vcpu_plus1 != 0; }
  // True when real CPU ids come from the rseq area (false under valgrind).
  static bool uses_rseq() { return rseq_off_ != kNoRseq; }

  // rseq fast paths: kRseqOff (never, or SLUB_RSEQ=0), kRseqOn, kRseqStopping (a thread is
  // binding a virtual CPU and fencing), kRseqStopped (off for good, no section in flight).
  enum : uint8_t { kRseqOff = 0, kRseqOn = 1, kRseqStopping = 2, kRseqStopped = 3 };
  SLUB_FAST_PATH static bool rseq_fast() { return load_state() == kRseqOn; }
  static const uint8_t* rseq_state_addr() { return &rseq_state_; }  // read by the asm
  // Slot changes by a lock holder must fence the slot's CPU while sections may be in flight.
  static bool rseq_may_be_in_flight() {
    const uint8_t st = load_state();
    return st == kRseqOn || st == kRseqStopping;
  }
  // The calling thread's struct rseq (valid when uses_rseq()).
  SLUB_FAST_PATH static char* rseq_area() {
    return static_cast<char*>(__builtin_thread_pointer()) + rseq_off_;
  }
  // The offset of every thread's struct rseq from its thread pointer (glibc's __rseq_offset),
  // for the sheaves' rseq sections: valid whether or not the kernel registered it (an area
  // glibc could not register reads cpu_id -2, one not registered yet -1).
  SLUB_FAST_PATH static long rseq_area_offset() { return rseq_area_off_; }
  // Called when the rseq fast paths are being stopped for good (state kRseqStopping, before the
  // fence, and after each fence until it returns false): the sheaves layer closes every slot
  // to them and says whether it found one open (slub.cc).
  static void set_stop_hook(bool (*hook)()) { stop_hook_ = hook; }
  // The real CPU the thread runs on now per its rseq area, or -1.
  static int rseq_cpu() {
    if (rseq_off_ == kNoRseq) return -1;
    const int32_t cpu = *reinterpret_cast<const volatile int32_t*>(rseq_area() + 4);
    return cpu >= 0 && cpu < kMaxCpus ? cpu : -1;
  }
  // Restarts every rseq critical section in flight on `cpu` (all CPUs if cpu < 0) before it
  // returns: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ).
  static void rseq_fence(int cpu);
  // In a fork child: renews the membarrier registration for the child's new mm (rseq fast
  // paths go off if that fails: false). Only the forking thread exists then.
  static bool after_fork_child();

 private:
  static constexpr long kNoRseq = 0x7fffffff;
  static constexpr int kCpuRecheck = 256;  // calls between sched_getcpu() without rseq
  static int current_slow();
  static void stop_rseq();
  static void emulate();
  static inline bool emulated_ = false;  // SLUB_RSEQ_EMULATE (cpu_id.cc)
  static inline long rseq_off_ = kNoRseq;
  static inline long rseq_area_off_ = 0;
  static inline bool (*stop_hook_)() = nullptr;
  static inline uint8_t rseq_state_ = kRseqOff;  // atomic accesses only (or the asm's read)
  SLUB_FAST_PATH static uint8_t load_state() {
    return __atomic_load_n(&rseq_state_, __ATOMIC_RELAXED);
  }
};

}  // namespace slub
