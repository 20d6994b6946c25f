// SPDX-License-Identifier: MIT
#include "pal/cpu_id.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pal/options.h"
#include "pal/os.h"

namespace slub {

SLUB_TLS ThreadState t_thread = {};

namespace {
long membarrier(int cmd, unsigned flags, int cpu) {
  return syscall(__NR_membarrier, cmd, flags, cpu);
}
}  // namespace

void CpuId::init() {
  // glibc >= 2.35 registers an rseq area per thread at thread pointer + __rseq_offset and
  // publishes its size; 0 means registration failed or was disabled.
  rseq_area_off_ = static_cast<long>(__rseq_offset);
  if (__rseq_size >= 8) rseq_off_ = static_cast<long>(__rseq_offset);
  if (load_state() != kRseqOff || !options::flag(options::kOptRseq)) return;
  if (rseq_off_ == kNoRseq && options::flag(options::kOptRseqEmulate)) return emulate();
  if (rseq_off_ == kNoRseq) return;
  if (__rseq_size < 16) return;  // the sections need rseq_cs (offset 8) as well as cpu_id
#ifdef SLUB_TSAN
  return;  // ThreadSanitizer cannot see a hand-off through a plain store in asm: the CAS paths
#endif
  // The fence a lock holder needs must work (registered, and the per-CPU form: Linux 5.10+)
  // before any fast path may commit with a plain store.
  if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0) return;
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_FLAG_CPU, 0) != 0) return;
  uint8_t off = kRseqOff;  // a thread bound to a virtual CPU already has made it kRseqStopped
  __atomic_compare_exchange_n(&rseq_state_, &off, kRseqOn, false, __ATOMIC_SEQ_CST,
                              __ATOMIC_SEQ_CST);
}

bool CpuId::after_fork_child() {
  if (load_state() != kRseqOn) return true;
  if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) == 0) return true;
  __atomic_store_n(&rseq_state_, kRseqStopped, __ATOMIC_SEQ_CST);
  return false;  // the caller closes the slots (alone in the child: no section in flight)
}

// SLUB_RSEQ_EMULATE=1 where the kernel registered no rseq area (valgrind): the thread that
// starts the allocator writes cpu_id 0 into its own unregistered area (glibc's, at the same
// offset) and the sections run as they would on CPU 0, so that callgrind counts them. Nothing
// restarts a section and fences do nothing, which is safe only while this is the one thread
// that allocates: any other thread's first CPU lookup (its area still reads -2) turns the
// sections off for good. A measurement mode for single-threaded programs, never for use.
void CpuId::emulate() {
  if (__rseq_size != 0) return;  // glibc registered it: the real thing
  char* area = static_cast<char*>(__builtin_thread_pointer()) + rseq_area_off_;
  __atomic_store_n(reinterpret_cast<int32_t*>(area), 0, __ATOMIC_RELAXED);  // cpu_id_start
  static_assert(offsetof(struct rseq, cpu_id) == 4);
  __atomic_store_n(reinterpret_cast<int32_t*>(area + offsetof(struct rseq, cpu_id)), 0,
                   __ATOMIC_RELAXED);
  rseq_off_ = rseq_area_off_;
  emulated_ = true;
  uint8_t off = kRseqOff;
  __atomic_compare_exchange_n(&rseq_state_, &off, kRseqOn, false, __ATOMIC_SEQ_CST,
                              __ATOMIC_SEQ_CST);
}

void CpuId::rseq_fence(int cpu) {
  if (emulated_) return;  // one thread: no section can be in flight elsewhere
  if (cpu >= 0)
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_FLAG_CPU, cpu);
  else
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0);
}

int CpuId::current_slow() {
  if (SLUB_UNLIKELY(emulated_)) stop_rseq();  // a second thread under the emulation
  int cpu = sched_getcpu();
  if (cpu < 0) cpu = 0;
  t_thread.cached_cpu = cpu % kMaxCpus;
  t_thread.cached_left = kCpuRecheck;
  t_thread.area = nullptr;  // the locked sheaves look the CPU's area up again
  return t_thread.cached_cpu;
}

int CpuId::bind_virtual(int vcpu) {
  if (vcpu < -1 || vcpu >= kMaxCpus) return -1;
  if (vcpu >= 0) stop_rseq();
  t_thread.vcpu_plus1 = vcpu + 1;
  t_thread.area = nullptr;
  return 0;
}

void CpuId::stop_rseq() {
  uint8_t* st = &rseq_state_;
  for (;;) {
    uint8_t cur = __atomic_load_n(st, __ATOMIC_ACQUIRE);
    if (cur == kRseqStopped) return;
    if (cur == kRseqStopping) {
      sched_yield();  // another thread is fencing: bound threads must not run before it is done
      continue;
    }
    if (cur == kRseqOff) {  // before start-up: keep init() from turning it on
      if (__atomic_compare_exchange_n(st, &cur, kRseqStopped, false, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST))
        return;
      continue;
    }
    if (__atomic_compare_exchange_n(st, &cur, kRseqStopping, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST)) {
      // Every slot closed to the sections, then every section that saw an open slot has
      // committed or will restart. A commit in flight can undo a close (slub.cc, pcs_stop):
      // the hook closes again whatever is open after the fence, until nothing is.
      if (stop_hook_ != nullptr) stop_hook_();
      rseq_fence(-1);
      while (stop_hook_ != nullptr && stop_hook_()) rseq_fence(-1);
      __atomic_store_n(st, kRseqStopped, __ATOMIC_SEQ_CST);
      return;
    }
  }
}

}  // namespace slub
