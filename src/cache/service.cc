// SPDX-License-Identifier: MIT
// cache/service.cc: the one service thread of the process (core/service.h says when it
// starts). Its loop, each item when due:
//   every SLUB_FLUSH_MS (2 s)  SLUB: per-CPU slabs and sheaves idle since the last pass back to
//                              their nodes, idle barns emptied (flush_idle_pass); free pages
//                              back to the OS (PageAlloc::purge_dirty)
//   every 100 ms               SLAB caches only: the CPUs whose cache_reap is due (slab::reap_pass)
//   every SLUB_KFENCE ms       KFENCE: arms the sampler and closes the CPU slots of every
//                              cache on 16 CPUs to the fast paths (core/kfence.h)
//   every second, and when     the statistics area (cache/export.cc), made at the first
//   tools/slabinfo asks        snapshot, when the process is a second old (most processes of a
//                              shell script are gone by then and never pay for it), and its
//                              commands (validate, shrink)
// Never a thread per CPU, per cache or per allocator: a 4096-CPU machine has one of these.
#include "cache/cache.h"
#include "cache/export.h"
#include "core/kfence.h"
#include "mm/page_alloc.h"
#include "pal/options.h"
#include "pal/os.h"
#include "pal/process.h"
#include "slab/slab.h"

namespace slub {

namespace {
constinit unsigned g_flush_ms = 2000;
constinit uint64_t g_clock_ns = 0;  // the process's (or fork child's) start
constexpr uint64_t kPublishNs = 1000000000ull;
constexpr uint64_t kReapTickNs = 100000000ull;
constexpr uint64_t kMs = 1000000ull;
// KFENCE arms the slots of this many CPUs per interval, the next ones the next time: on a
// 4096-CPU machine, closing every slot of every cache each 100 ms would cost the thread more
// than the sampling is worth (the first allocation on any armed CPU takes the token anyway).
constexpr int kKfenceArmCpus = 16;
}  // namespace

void service_init() {
  g_flush_ms = static_cast<unsigned>(options::number(options::kOptFlushMs));  // >= 10 (the range)
  service_configure(service_main, options::flag(options::kOptFlusher),
                    options::flag(options::kOptExport));
}

void service_reset_clock() {
  g_clock_ns = os::now_ns();
}

void* service_main(void*) {
  uint64_t now = os::now_ns();
  uint64_t next_flush = now + uint64_t{g_flush_ms} * kMs;
  uint64_t next_publish = g_clock_ns + kPublishNs > now ? g_clock_ns + kPublishNs : now;
  uint64_t next_reap = now + kReapTickNs;
  const uint64_t kfence_ns = uint64_t{kfence::interval_ms()} * kMs;
  uint64_t next_kfence = kfence_ns != 0 ? now + kfence_ns : UINT64_MAX;
  int kfence_cpu = 0;  // the first of the CPUs the next arming closes
  for (;;) {
    uint64_t next = next_flush < next_publish ? next_flush : next_publish;
    const bool reaping = slab::reap_wanted();
    if (reaping && next_reap < next) next = next_reap;
    if (next_kfence < next) next = next_kfence;
    const unsigned wait_ms = next > now ? static_cast<unsigned>((next - now) / kMs) + 1 : 1;
    if (export_wait(wait_ms)) export_serve();
    now = os::now_ns();
    if (now >= next_flush) {
      flush_idle_pass();
      PageAlloc::purge_dirty();
      next_flush = now + uint64_t{g_flush_ms} * kMs;
    }
    if (now >= next_reap) {
      if (reaping) slab::reap_pass(now);
      next_reap = now + kReapTickNs;
    }
    if (now >= next_kfence) {
      // The slots are closed again even when the last token is still unused: a free may have
      // opened them (its slow path opens the slot as an allocation's does) without sampling.
      kfence::arm();
      const int used = nr_used_cpus();
      for_each_cache([&](KmemCache* s) { slub_kfence_arm(s, kfence_cpu, kKfenceArmCpus); });
      kfence_cpu = used > kKfenceArmCpus ? (kfence_cpu + kKfenceArmCpus) % used : 0;
      next_kfence = now + kfence_ns;
    }
    if (now >= next_publish) {
      export_publish();
      next_publish = now + kPublishNs;
      // glibc ends a process when its last thread exits; this thread must not keep one alive
      // after main called pthread_exit and the program's other threads ended.
      if (os::only_service_threads_left(1)) os::exit_process(0);
    }
  }
  return nullptr;
}

}  // namespace slub
