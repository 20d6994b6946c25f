// SPDX-License-Identifier: MIT
#include "core/merge.h"

#include <cstdio>
#include <cstring>

#include "core/meta.h"
#include "pal/options.h"
#include "pal/os.h"

namespace slub {

namespace {
constinit bool g_nomerge = false;
}  // namespace

void merge_init() {
  g_nomerge = options::flag(options::kOptNomerge);
}
bool merge_enabled() {
  return !g_nomerge;
}

bool slab_unmergeable(const KmemCache* s) {
  // kmalloc caches are not targets either: malloc memory stays apart from typed caches (the
  // kernel's kmalloc caches are unmergeable too, through their usercopy region).
  return g_nomerge || (s->flags & kNeverMerge) || s->ctor != nullptr || s->usersize != 0 ||
         s->refcount < 0 || s->is_kmalloc;
}

KmemCache* find_mergeable(size_t size, size_t align, unsigned long flags, kmem_ctor_t ctor,
                          size_t usersize) {
  if (g_nomerge || ctor != nullptr || usersize != 0 || (flags & kNeverMerge)) return nullptr;
  size = align_up(size, sizeof(void*));
  align = calculate_alignment(flags, align, size);
  size = align_up(size, align);
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {  // oldest first
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    if (slab_unmergeable(s)) continue;
    if (size > s->size) continue;
    if ((flags & kMergeSame) != (s->flags & kMergeSame)) continue;
    if ((s->size & ~(align - 1)) != s->size) continue;  // alignment must hold in the slots
    if (s->size - size >= sizeof(void*)) continue;      // less than a word of waste
    return s;
  }
  return nullptr;
}

bool cache_alias(KmemCache* s, const char* name, size_t size) {
  if (s->nr_aliases == s->aliases_cap) {
    const int cap = s->aliases_cap == 0 ? 4 : s->aliases_cap * 2;
    auto* grown =
        static_cast<KmemCache::AliasName*>(meta::alloc(sizeof(KmemCache::AliasName) * cap));
    if (grown == nullptr) return false;
    if (s->aliases != nullptr) {
      memcpy(grown, s->aliases, sizeof(KmemCache::AliasName) * s->nr_aliases);
      meta::free(s->aliases, sizeof(KmemCache::AliasName) * s->aliases_cap);
    }
    s->aliases = grown;
    s->aliases_cap = cap;
  }
  snprintf(s->aliases[s->nr_aliases].name, sizeof s->aliases[0].name, "%s", name);
  s->nr_aliases++;
  s->refcount++;
  // The slot already fits; zalloc must clear the larger object of either.
  if (size > s->object_size) s->object_size = static_cast<uint32_t>(size);
  const uint32_t inuse = static_cast<uint32_t>(align_up(size, sizeof(void*)));
  if (inuse > s->inuse) s->inuse = inuse;
  return true;
}

void free_aliases(KmemCache* s) {
  if (s->aliases != nullptr) meta::free(s->aliases, sizeof(KmemCache::AliasName) * s->aliases_cap);
  s->aliases = nullptr;
  s->nr_aliases = s->aliases_cap = 0;
}

void unique_id(const KmemCache* s, char* buf, size_t len) {
  if (slab_unmergeable(s)) {  // with SLUB_NOMERGE every cache is known by its name
    snprintf(buf, len, "%s", s->name);
    return;
  }
  char flags[8];
  size_t n = 0;
  if (s->flags & SLAB_CACHE_DMA) flags[n++] = 'd';
  if (s->flags & SLAB_CACHE_DMA32) flags[n++] = 'D';
  if (s->flags & SLAB_RECLAIM_ACCOUNT) flags[n++] = 'a';
  if (s->flags & SLAB_CONSISTENCY_CHECKS) flags[n++] = 'F';
  if (s->flags & SLAB_ACCOUNT) flags[n++] = 'A';
  flags[n] = '\0';
  snprintf(buf, len, ":%s%s%07u", flags, n != 0 ? "-" : "", s->size);
}

}  // namespace slub
