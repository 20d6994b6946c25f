// core/slabinfo_format: how the kernel's slabinfo tool shows sizes and flags, shared by the
// in-process report (SLUB_REPORT=1) and tools/slabinfo. No allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>

#include <slub/slub.h>

namespace slub {

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
