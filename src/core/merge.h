// SPDX-License-Identifier: MIT
// core/merge: cache merging (aliasing), as the kernel's find_mergeable / __kmem_cache_alias.
// A new cache joins an existing one when its object fits in the existing slot with less than
// a word to spare, the alignment is compatible, the merge-relevant flags are equal, and
// neither has a constructor, a usercopy region, debug flags, RCU or SLAB_NO_MERGE. Oldest
// first, so long-lived caches are the targets. The caller holds g_slab_mutex.
#pragma once

#include <cstddef>

#include "core/kmem_cache.h"

namespace slub {

// Flags that keep a cache out of merging altogether, and flags two caches must share.
inline constexpr unsigned long kNeverMerge =
    SLAB_DEBUG_FLAGS | SLAB_TYPESAFE_BY_RCU | SLAB_NOLEAKTRACE | SLAB_NO_MERGE;
inline constexpr unsigned long kMergeSame =
    SLAB_RECLAIM_ACCOUNT | SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_ACCOUNT | SLAB_QUEUED;

void merge_init();  // reads SLUB_NOMERGE
bool merge_enabled();
bool slab_unmergeable(const KmemCache* s);
// An existing cache a new one (flags already through SLUB_DEBUG) can join, or nullptr.
KmemCache* find_mergeable(size_t size, size_t align, unsigned long flags, kmem_ctor_t ctor,
                          size_t usersize);
// Makes `name` an alias of `s`. False if the alias name cannot be recorded (no memory).
bool cache_alias(KmemCache* s, const char* name, size_t size);
// The kernel's sysfs id of a mergeable cache: ":[flags-]NNNNNNN" (7-digit slot size); the
// name for an unmergeable one.
void unique_id(const KmemCache* s, char* buf, size_t len);
void free_aliases(KmemCache* s);

}  // namespace slub
