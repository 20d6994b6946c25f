// core/stats: the kernel's SLUB counters, summed over the CPU slots that exist.
#include <slub/stats.h>

#include "core/kmem_cache.h"

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

extern "C" __attribute__((visibility("default")))
const char* const slub_stat_names[NR_SLUB_STAT_ITEMS] = {
    "alloc_fastpath",      "free_fastpath",       "alloc_slowpath",
    "free_slowpath",       "free_frozen",         "free_add_partial",
    "free_remove_partial", "alloc_from_partial",  "alloc_slab",
    "alloc_refill",        "alloc_node_mismatch", "free_slab",
    "cpuslab_flush",       "deactivate_full",     "deactivate_empty",
    "deactivate_to_head",  "deactivate_to_tail",  "deactivate_remote_frees",
    "deactivate_bypass",   "order_fallback",      "cmpxchg_double_cpu_fail",
    "cmpxchg_double_fail", "cpu_partial_alloc",   "cpu_partial_free",
    "cpu_partial_node",    "cpu_partial_drain"};

extern "C" __attribute__((visibility("default"))) int kmem_cache_get_stats(
    const struct kmem_cache* cache, uint64_t* out) {
  if (cache == nullptr || out == nullptr) return -1;
  slub::cache_stats(reinterpret_cast<const slub::KmemCache*>(cache), out);
  return 0;
}
