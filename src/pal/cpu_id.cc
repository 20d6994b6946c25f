#include "pal/cpu_id.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pal/os.h"

namespace slub {

SLUB_TLS int t_vcpu_plus1 = 0;
SLUB_TLS int t_cached_cpu = 0;
SLUB_TLS int t_cached_left = 0;

namespace {
long membarrier(int cmd, unsigned flags, int cpu) {
  return syscall(__NR_membarrier, cmd, flags, cpu);
}
}  // namespace

void CpuId::init() {
  // glibc >= 2.35 registers an rseq area per thread at thread pointer + __rseq_offset and
  // publishes its size; 0 means registration failed or was disabled.
  if (__rseq_size >= 8) rseq_off_ = static_cast<long>(__rseq_offset);
  if (rseq_off_ == kNoRseq || load_state() != kRseqOff || os::env_long("SLUB_RSEQ", 1) == 0) return;
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

void CpuId::after_fork_child() {
  if (load_state() != kRseqOn) return;
  if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0)
    __atomic_store_n(&rseq_state_, kRseqStopped, __ATOMIC_SEQ_CST);
}

void CpuId::rseq_fence(int cpu) {
  if (cpu >= 0)
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_FLAG_CPU, cpu);
  else
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0);
}

int CpuId::current_slow() {
  int cpu = sched_getcpu();
  if (cpu < 0) cpu = 0;
  t_cached_cpu = cpu % kMaxCpus;
  t_cached_left = kCpuRecheck;
  return t_cached_cpu;
}

int CpuId::bind_virtual(int vcpu) {
  if (vcpu < -1 || vcpu >= kMaxCpus) return -1;
  if (vcpu >= 0) stop_rseq();
  t_vcpu_plus1 = vcpu + 1;
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
      rseq_fence(-1);  // every section that saw kRseqOn has committed or will restart
      __atomic_store_n(st, kRseqStopped, __ATOMIC_SEQ_CST);
      return;
    }
  }
}

}  // namespace slub
