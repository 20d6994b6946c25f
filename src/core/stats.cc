// SPDX-License-Identifier: MIT
// core/stats: the kernel's SLUB counters, summed over the CPU slots that exist.
#include <slub/stats.h>

#include "core/kmem_cache.h"
#include "core/slabinfo_format.h"

namespace slub {

// Sums the counters of `s` over every CPU that has an area.
void cache_stats(const KmemCache* s, uint64_t* out) {
  for (int i = 0; i < NR_SLUB_STAT_ITEMS; ++i) out[i] = 0;
  const int used = nr_used_cpus();
  for (int k = 0; k < used; ++k) {
    const KmemCacheCpu* c = per_cpu_ptr(s, used_cpu(k));
    if (c == nullptr) continue;
    for (int i = 0; i < NR_SLUB_STAT_ITEMS; ++i)
      out[i] += __atomic_load_n(&c->stat[i], __ATOMIC_RELAXED);
  }
}

}  // namespace slub

// The names, from the table the slabinfo tool shares (core/slabinfo_format.h).
extern "C" __attribute__((visibility("default")))
const char* const slub_stat_names[NR_SLUB_STAT_ITEMS] = {
    slub::kStatNames[0],  slub::kStatNames[1],  slub::kStatNames[2],  slub::kStatNames[3],
    slub::kStatNames[4],  slub::kStatNames[5],  slub::kStatNames[6],  slub::kStatNames[7],
    slub::kStatNames[8],  slub::kStatNames[9],  slub::kStatNames[10], slub::kStatNames[11],
    slub::kStatNames[12], slub::kStatNames[13], slub::kStatNames[14], slub::kStatNames[15],
    slub::kStatNames[16], slub::kStatNames[17], slub::kStatNames[18], slub::kStatNames[19],
    slub::kStatNames[20], slub::kStatNames[21], slub::kStatNames[22], slub::kStatNames[23],
    slub::kStatNames[24], slub::kStatNames[25], slub::kStatNames[26], slub::kStatNames[27],
    slub::kStatNames[28], slub::kStatNames[29], slub::kStatNames[30], slub::kStatNames[31],
    slub::kStatNames[32], slub::kStatNames[33], slub::kStatNames[34], slub::kStatNames[35]};
static_assert(NR_SLUB_STAT_ITEMS == 36, "one name a counter");

extern "C" __attribute__((visibility("default"))) int kmem_cache_get_stats(
    const struct kmem_cache* cache, uint64_t* out) {
  if (cache == nullptr || out == nullptr) return -1;
  slub::cache_stats(reinterpret_cast<const slub::KmemCache*>(cache), out);
  return 0;
}
