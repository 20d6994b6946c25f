// pal/cpu_id: the only source of "which CPU am I on". Real mode reads the cpu_id field of the
// thread's rseq area that glibc registered (one TLS-relative load); where there is none
// (valgrind, old kernels, glibc.pthread.rseq=0) it falls back to sched_getcpu(). Virtual mode
// binds a thread to vCPU k (0..kMaxCpus-1) for the many-CPU harness: the same code runs, only
// the answer differs.
#pragma once

#include <cstdint>

#include "base/base.h"

namespace slub {

inline constexpr int kMaxCpus = 4096;

extern SLUB_TLS int t_vcpu_plus1;   // 0: not bound; else the virtual CPU + 1
extern SLUB_TLS int t_cached_cpu;   // no rseq: last sched_getcpu() answer
extern SLUB_TLS int t_cached_left;  // no rseq: calls left before asking again

class CpuId {
 public:
  // Called once at start-up (and harmlessly again); decides whether the rseq area is usable.
  static void init();

  SLUB_FAST_PATH static int current() {
    int v = t_vcpu_plus1;
    if (SLUB_UNLIKELY(v != 0)) return v - 1;
    if (SLUB_LIKELY(rseq_off_ != kNoRseq)) {
      const char* tp = static_cast<const char*>(__builtin_thread_pointer());
      int32_t cpu = *reinterpret_cast<const volatile int32_t*>(tp + rseq_off_ + 4);
      if (SLUB_LIKELY(static_cast<uint32_t>(cpu) < static_cast<uint32_t>(kMaxCpus))) return cpu;
    }
    // No rseq (valgrind, glibc.pthread.rseq=0): sched_getcpu() costs a system call under
    // valgrind, so its answer is reused for a while. A stale CPU id is only a locality
    // loss: every slot tolerates any thread (all changes are compare-and-swaps).
    if (SLUB_LIKELY(--t_cached_left > 0)) return t_cached_cpu;
    return current_slow();
  }

  // Binds the calling thread to virtual CPU `vcpu`, or unbinds it with -1. Returns 0, or -1
  // when vcpu is out of range.
  static int bind_virtual(int vcpu);
  static bool is_virtual() { return t_vcpu_plus1 != 0; }
  // True when real CPU ids come from the rseq area (false under valgrind).
  static bool uses_rseq() { return rseq_off_ != kNoRseq; }

 private:
  static constexpr long kNoRseq = 0x7fffffff;
  static constexpr int kCpuRecheck = 256;  // calls between sched_getcpu() without rseq
  static int current_slow();
  static inline long rseq_off_ = kNoRseq;
};

}  // namespace slub
