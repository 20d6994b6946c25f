// SPDX-License-Identifier: MIT
// core/slabinfo_format: the statistics' names and how the kernel's slabinfo tool shows sizes
// and flags, shared by the library (stats, SLUB_REPORT=1) and tools/slabinfo. No allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>

#include <slub/slub.h>
#include <slub/stats.h>

namespace slub {

// The sysfs names of enum slub_stat_item, in its order.
inline constexpr const char* kStatNames[NR_SLUB_STAT_ITEMS] = {
    "alloc_fastpath",
    "free_fastpath",
    "alloc_slowpath",
    "free_slowpath",
    "free_frozen",
    "free_add_partial",
    "free_remove_partial",
    "alloc_from_partial",
    "alloc_slab",
    "alloc_refill",
    "alloc_node_mismatch",
    "free_slab",
    "cpuslab_flush",
    "deactivate_full",
    "deactivate_empty",
    "deactivate_to_head",
    "deactivate_to_tail",
    "deactivate_remote_frees",
    "deactivate_bypass",
    "order_fallback",
    "cmpxchg_double_cpu_fail",
    "cmpxchg_double_fail",
    "cpu_partial_alloc",
    "cpu_partial_free",
    "cpu_partial_node",
    "cpu_partial_drain",
    "sheaf_refill",
    "sheaf_flush",
    "sheaf_swap",
    "sheaf_alloc",
    "sheaf_free",
    "barn_get",
    "barn_get_fail",
    "barn_put",
    "barn_put_fail",
    "free_remote",
};
static_assert(NR_SLUB_STAT_ITEMS == 36, "kStatNames follows enum slub_stat_item");

// 3 significant digits and K, M or G above 10^3, 10^6, 10^9 ("12.3K"); plain bytes below.
inline void format_size(char* buf, size_t len, uint64_t value) {
  uint64_t divisor = 1;
  char trailer = 0;
  if (value > 1000000000ull) {
    divisor = 100000000ull;
    trailer = 'G';
  } else if (value > 1000000ull) {
    divisor = 100000ull;
    trailer = 'M';
  } else if (value > 1000ull) {
    divisor = 100;
    trailer = 'K';
  }
  value /= divisor;
  if (trailer == 0)
    snprintf(buf, len, "%llu", static_cast<unsigned long long>(value));
  else
    snprintf(buf, len, "%llu.%llu%c", static_cast<unsigned long long>(value / 10),
             static_cast<unsigned long long>(value % 10), trailer);
}

// The Flg column: '*' aliases, 'd' DMA, 'A' hardware-cache aligned, 'P' poison, 'a' reclaim
// accounted, 'Z' red zone, 'F' consistency checks, 'U' store user, 'T' trace. buf >= 10 bytes.
inline void format_flags(char* buf, uint64_t flags, bool has_aliases) {
  size_t f = 0;
  if (has_aliases) buf[f++] = '*';
  if (flags & (SLAB_CACHE_DMA | SLAB_CACHE_DMA32)) buf[f++] = 'd';
  if (flags & SLAB_HWCACHE_ALIGN) buf[f++] = 'A';
  if (flags & SLAB_POISON) buf[f++] = 'P';
  if (flags & SLAB_RECLAIM_ACCOUNT) buf[f++] = 'a';
  if (flags & SLAB_RED_ZONE) buf[f++] = 'Z';
  if (flags & SLAB_CONSISTENCY_CHECKS) buf[f++] = 'F';
  if (flags & SLAB_STORE_USER) buf[f++] = 'U';
  if (flags & SLAB_TRACE) buf[f++] = 'T';
  buf[f] = '\0';
}

}  // namespace slub
