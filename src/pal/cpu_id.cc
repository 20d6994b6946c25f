#include "pal/cpu_id.h"

#include <sched.h>
#include <sys/rseq.h>

namespace slub {

SLUB_TLS int t_vcpu_plus1 = 0;
SLUB_TLS int t_cached_cpu = 0;
SLUB_TLS int t_cached_left = 0;

void CpuId::init() {
  // glibc >= 2.35 registers an rseq area per thread at thread pointer + __rseq_offset and
  // publishes its size; 0 means registration failed or was disabled.
  if (__rseq_size >= 8) rseq_off_ = static_cast<long>(__rseq_offset);
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
  t_vcpu_plus1 = vcpu + 1;
  return 0;
}

}  // namespace slub
