// SPDX-License-Identifier: MIT
// cache/totals.cc: sums over every cache for glibc's malloc statistics (cache/cache.h,
// docs/MALLINFO.md). Everything is read under g_slab_mutex inside a ReentryGuard, through the
// allocators' own statistics (cache_get_info, cache_queue_info, cache_node_info), which take the
// per-CPU, barn and list locks one at a time. Nothing here calls malloc or writes output.
#include "cache/cache.h"

namespace slub {

namespace {
size_t slab_bytes_of(const kmem_cache_info& info) {
  return kPageSize << info.order;
}

}  // namespace

void cache_totals(CacheTotals* t) {
  *t = {};
  for_each_cache([&](KmemCache* s) {
    kmem_cache_info info;
    cache_get_info(s, &info);
    kmem_cache_queue_info q;
    cache_queue_info(s, &q);
    // The per-CPU layers' objects count as active in their slabs (the kernel's accounting);
    // the two reads are not one snapshot, so the difference is clamped.
    size_t parked = q.parked_cpu + q.parked_shared + q.parked_alien + q.parked_node;
    if (parked > info.active_objs) parked = info.active_objs;
    const size_t in_use = info.active_objs - parked;
    const size_t node_free = info.total_objs - info.active_objs;
    const size_t slot = s->size;
    t->caches++;
    t->in_use_objs += in_use;
    t->in_use_bytes += in_use * slot;
    t->parked_objs += parked;
    t->parked_bytes += parked * slot;
    t->node_free_objs += node_free;
    t->node_free_bytes += node_free * slot;
    t->slab_bytes += info.nr_slabs * slab_bytes_of(info);
    if (info.objs_per_slab != 0)
      t->empty_slab_bytes += q.free_slab_objects / info.objs_per_slab * slab_bytes_of(info);
    t->active_user_bytes += info.active_objs * info.object_size;
  });
}

void cache_node_free(int node, NodeFree* out) {
  *out = {};
  out->other_min = SIZE_MAX;
  for_each_cache([&](KmemCache* s) {
    if (node < 0 || node >= s->nr_nodes) return;
    kmem_cache_node_info ni;
    cache_node_info(s, node, &ni);
    if (ni.partial_free == 0) return;
    const size_t size = s->size, count = ni.partial_free;
    out->objs += count;
    out->bytes += count * size;
    int i = 0;
    while (i < out->n && out->bucket[i].size < size) ++i;
    if (i < out->n && out->bucket[i].size == size) {
      out->bucket[i].count += count;
      return;
    }
    if (out->n == NodeFree::kMax) {  // no room for another size
      out->other_count += count;
      out->other_bytes += count * size;
      if (size < out->other_min) out->other_min = size;
      if (size > out->other_max) out->other_max = size;
      return;
    }
    for (int j = out->n; j > i; --j) out->bucket[j] = out->bucket[j - 1];
    out->bucket[i] = {size, count};
    out->n++;
  });
  if (out->other_count == 0) out->other_min = 0;
}

int cache_shrink_all() {
  ensure_init();
  get_cpu_area(CpuId::current());  // counters of the flushes and frees (as cache_shrink)
  int freed = 0;
  for_each_cache([&](KmemCache* s) { freed += cache_shrink_locked(s); });
  return freed;
}

}  // namespace slub
