// SPDX-License-Identifier: MIT
// frontend/api: the public C API (include/slub/slub.h): kmem_cache_*, the prefixed malloc
// family, and the out-of-line parts of malloc (large, huge, aligned, realloc, errors).
#include <cstdio>
#include <cstring>

#include <slub/slub.h>

#include "core/debug.h"
#include "core/kfence.h"
#include "core/slabinfo_format.h"
#include "frontend/malloc_impl.h"
#include "mm/page_alloc.h"
#include "pal/options.h"
#include "pal/os.h"

namespace slub::fe {

namespace {
constexpr size_t kMaxRequest = static_cast<size_t>(PTRDIFF_MAX);

void* enomem() {
  errno = ENOMEM;
  return nullptr;
}

void report_bad_pointer(const char* what, const void* p, const char* why) {
  os::report("slub: %s(): invalid pointer %p (%s); ignored\n", what, p, why);
}

const char* why_not_owned(const void* p, const PageDesc* d) {
  if (d == nullptr && kfence::is_kfence_address(p)) return "not a live KFENCE object";
  if (d == nullptr)
    return PageMap::lookup(p) != 0 ? "not the start of a huge block" : "not allocated by slub";
  switch (d->kind) {
    case PageKind::kSlab:
      return "not the start of an object";
    case PageKind::kLarge:
      return "not the start of a large block";
    case PageKind::kMeta:
      return "points into slub metadata";
    default:
      return "page is free";
  }
}

// Usable bytes of the block `p` starts (d = its descriptor); false if it is not one of ours.
// Debug kmalloc caches keep the requested size: writing past it is a reported bug.
bool block_size(const void* p, const PageDesc* d, size_t* out) {
  if (d != nullptr) {
    if (d->kind == PageKind::kSlab && is_object_start(d->cache, d, p)) {
      *out = SLUB_UNLIKELY(d->cache->orig_off != 0) ? get_orig_size(d->cache, p)
                                                    : d->cache->object_size;
      return true;
    }
    if (d->kind == PageKind::kLarge && desc_address(d) == p) {
      *out = kPageSize << d->order;
      return true;
    }
  } else if (SLUB_UNLIKELY(kfence::is_kfence_address(p))) {
    *out = kfence::ksize(p);  // what was asked for: the next byte is a canary or a guard page
    return *out != 0;
  } else if (HugeHeader* h = PageAlloc::huge_header(p)) {
    *out = h->usable;
    return true;
  }
  return false;
}

// Large and huge blocks are zero when they come from clean pages.
bool needs_zeroing(void* p) {
  PageDesc* d = PageMap::desc_of(p);
  if (d == nullptr) return false;  // huge: a fresh mapping
  if (d->kind == PageKind::kLarge) return d->dirty;
  return true;
}
}  // namespace

void* large_malloc(size_t size, size_t align, int node) {
  if (size > kMaxRequest) return enomem();
  // The allocator starts at the first request of any kind, huge ones too: a program that maps
  // huge blocks until the address space runs out must still find room for the kmalloc caches.
  ensure_init();
  unsigned order = get_order(size);
  if (align > kPageSize && get_order(align) > order) order = get_order(align);
  void* p;
  if (order <= kMaxRunOrder && size < __atomic_load_n(&g_mmap_threshold, __ATOMIC_RELAXED)) {
    ReentryGuard guard;
    if (guard.nested()) {
      p = emergency_alloc(size);
    } else {
      if (node < 0) node = Topology::node_of(CpuId::current());
      PageDesc* d = PageAlloc::alloc(order, node, PageKind::kLarge);
      p = d != nullptr ? desc_address(d) : nullptr;
    }
  } else {
    p = PageAlloc::huge_alloc(size, align, nullptr);
  }
  return p != nullptr ? p : enomem();
}

void* malloc_other(size_t size) {
  if (size <= kKmallocMax) {
    KmemCache* s = &g_kmalloc_caches[kmalloc_index(size)];
    // Sheaves without rseq (malloc's table is empty then): the locked paths at once; with rseq
    // (the classes above 1024 bytes) the section first.
    if (s->pcs_base != 0 && !CpuId::rseq_fast()) return __pcs_alloc(s, size);
    return cache_alloc(s, size);
  }
  return large_malloc(size, 0);
}

void free_slow(void* p, PageDesc* d) {
  if (SLUB_LIKELY(d != nullptr && d->kind == PageKind::kSlab && is_object_start(d->cache, d, p))) {
    cache_free(d->cache, d, p);  // a slab without page entries: classic, debug, SLAB, fallback
    return;
  }
  if (d != nullptr && d->kind == PageKind::kLarge && desc_address(d) == p) {
    {
      ReentryGuard guard;
      if (guard.nested())
        defer_free(p);
      else
        PageAlloc::free(d);
    }
    service_request();
    return;
  }
  if (d == nullptr) {
    if (SLUB_UNLIKELY(kfence::is_kfence_address(p))) return kfence::free(p);
    if (HugeHeader* h = PageAlloc::huge_header(p)) {
      PageAlloc::huge_free(h);
      return;
    }
  }
  if (d != nullptr && d->kind == PageKind::kSlab && (d->cache->flags & SLAB_CONSISTENCY_CHECKS)) {
    report_invalid_pointer(d->cache, d, p);  // the debug mode's report, with a call trace
    return;
  }
  report_bad_pointer("free", p, why_not_owned(p, d));
}

size_t usable_size(const void* p) {
  if (p == nullptr) return 0;
  PageDesc* d = PageMap::desc_of(p);
  size_t n = 0;
  if (!block_size(p, d, &n)) report_bad_pointer("malloc_usable_size", p, why_not_owned(p, d));
  return n;
}

void* do_calloc(size_t nmemb, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total)) return enomem();
  void* p = do_malloc(total);
  // The whole usable size reads zero, as with glibc and jemalloc: realloc may grow into it.
  if (p == nullptr) return p;
  if (SLUB_UNLIKELY(kfence::is_kfence_address(p))) {  // a guarded object: no more than asked
    memset(p, 0, total);
  } else if (total <= kKmallocMax) {
    const KmemCache* s = &g_kmalloc_caches[kmalloc_index(total)];
    memset(p, 0, SLUB_UNLIKELY(s->orig_off != 0) ? total : s->object_size);
  } else if (needs_zeroing(p)) {
    memset(p, 0, usable_size(p));
  }
  return p;
}

void* do_realloc(void* p, size_t size) {
  if (p == nullptr) return do_malloc(size);
  if (size == 0) {  // as glibc: free and return NULL
    do_free(p);
    return nullptr;
  }
  PageDesc* d = PageMap::desc_of(p);
  size_t old = 0;
  if (!block_size(p, d, &old)) {
    report_bad_pointer("realloc", p, why_not_owned(p, d));
    errno = EINVAL;
    return nullptr;
  }
  if (d != nullptr && d->kind == PageKind::kSlab && d->cache->pcs_base != 0 &&
      SLUB_UNLIKELY(load_tag(pcs_tag_word(d->cache, p)) == d->cache->tag)) {
    report_bad_pointer("realloc", p, "a freed block: its tag is in it");
    errno = EINVAL;
    return nullptr;
  }
  if (size > kMaxRequest) return enomem();
  // Stay in place while the block fits and is not more than twice what is needed (not in
  // debug caches, which keep the requested size).
  if (size <= old && size >= old / 2 &&
      (d == nullptr || d->kind != PageKind::kSlab || !d->cache->is_debug()))
    return p;
  void* q = do_malloc(size);
  if (q == nullptr) return nullptr;  // errno set; the old block is untouched
  memcpy(q, p, size < old ? size : old);
  do_free(p);
  return q;
}

void* do_reallocarray(void* p, size_t nmemb, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total)) return enomem();
  return do_realloc(p, total);
}

// `align` is a power of two.
void* do_aligned(size_t align, size_t size) {
  if (align <= 8) return do_malloc(size);
  if (size > kMaxRequest) return enomem();
  if (align <= 16) return do_malloc(size < 16 ? 16 : size);
  const size_t want = size > align ? size : align;
  if (want <= kKmallocMax) {
    // A class whose size is a multiple of align: objects sit at multiples of their size from
    // a slab start aligned on at least a page (on its own size for the 8K+ classes).
    unsigned idx = kmalloc_index(want);
    while (kKmallocSizes[idx] % align != 0) ++idx;
    void* p = cache_alloc(&g_kmalloc_caches[idx], size);
    if (p == nullptr || (reinterpret_cast<uintptr_t>(p) & (align - 1)) == 0) return p;
    do_free(p);  // a slab of a fallback order: use the page allocator instead
  }
  return large_malloc(size == 0 ? 1 : size, align);
}

int do_posix_memalign(void** out, size_t align, size_t size) {
  if (!is_pow2(align) || align % sizeof(void*) != 0) return EINVAL;
  const int saved = errno;
  void* p = do_aligned(align, size);
  if (p == nullptr) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

void* do_aligned_alloc(size_t align, size_t size) {
  if (!is_pow2(align)) {
    errno = EINVAL;
    return nullptr;
  }
  return do_aligned(align, size);
}

void* do_memalign(size_t align, size_t size) {
  if (align > (size_t{1} << 62)) return enomem();
  if (!is_pow2(align)) align = roundup_pow2(align);  // glibc rounds up
  return do_aligned(align, size);
}

void* do_valloc(size_t size) {
  return do_aligned(kPageSize, size);
}

void* do_pvalloc(size_t size) {
  if (size > kMaxRequest) return enomem();
  size_t rounded = align_up(size == 0 ? 1 : size, kPageSize);
  return do_aligned(kPageSize, rounded);
}

}  // namespace slub::fe

using namespace slub;

// ---- the prefixed malloc family ----

SLUB_EXPORT void* slub_malloc(size_t size) {
  return fe::do_malloc(size);
}
SLUB_EXPORT void slub_free(void* p) {
  fe::do_free(p);
}
SLUB_EXPORT void* slub_calloc(size_t n, size_t size) {
  return fe::do_calloc(n, size);
}
SLUB_EXPORT void* slub_realloc(void* p, size_t size) {
  return fe::do_realloc(p, size);
}
SLUB_EXPORT void* slub_reallocarray(void* p, size_t n, size_t size) {
  return fe::do_reallocarray(p, n, size);
}
SLUB_EXPORT int slub_posix_memalign(void** out, size_t align, size_t size) {
  return fe::do_posix_memalign(out, align, size);
}
SLUB_EXPORT void* slub_aligned_alloc(size_t align, size_t size) {
  return fe::do_aligned_alloc(align, size);
}
SLUB_EXPORT void* slub_memalign(size_t align, size_t size) {
  return fe::do_memalign(align, size);
}
SLUB_EXPORT void* slub_valloc(size_t size) {
  return fe::do_valloc(size);
}
SLUB_EXPORT void* slub_pvalloc(size_t size) {
  return fe::do_pvalloc(size);
}
SLUB_EXPORT size_t slub_malloc_usable_size(const void* p) {
  return fe::usable_size(p);
}
SLUB_EXPORT void slub_free_sized(void* p, size_t) {
  fe::do_free(p);
}
SLUB_EXPORT void slub_free_aligned_sized(void* p, size_t, size_t) {
  fe::do_free(p);
}

SLUB_EXPORT int slub_owns(const void* p) {
  if (p == nullptr) return 0;
  if (kfence::is_kfence_address(p)) return 1;  // the pool is slub's memory, every byte of it
  PageDesc* d = PageMap::desc_of(p);
  if (d != nullptr) return d->kind == PageKind::kSlab || d->kind == PageKind::kLarge;
  uintptr_t e = PageMap::lookup(p);
  if ((e & PageMap::kTagMask) != PageMap::kHuge) return 0;
  auto* h = reinterpret_cast<HugeHeader*>(e & ~uintptr_t{PageMap::kTagMask});
  auto a = reinterpret_cast<uintptr_t>(p), u = reinterpret_cast<uintptr_t>(h->user);
  return h->magic == kHugeMagic && a >= u && a < u + h->usable;
}

// ---- the cache API ----

SLUB_EXPORT kmem_cache* kmem_cache_create_args(const char* name, size_t size,
                                               const struct kmem_cache_args* args,
                                               unsigned long flags) {
  const kmem_cache_args none{};
  const kmem_cache_args& a = args != nullptr ? *args : none;
  const size_t align = a.align, useroffset = a.useroffset, usersize = a.usersize;
  if (name == nullptr || size == 0 || size > (kPageSize << kMaxRunOrder) ||
      (align != 0 && (!is_pow2(align) || align > (kPageSize << kMaxRunOrder))) ||
      useroffset > size || usersize > size - useroffset ||
      (a.use_sheaf_capacity && a.sheaf_capacity > kSheafMaxCap)) {
    if (flags & SLAB_PANIC) os::fatal("slub: kmem_cache_create(%s): invalid arguments\n", name);
    errno = EINVAL;
    return nullptr;
  }
  const int sheaf_capacity = a.use_sheaf_capacity ? static_cast<int>(a.sheaf_capacity) : -1;
  KmemCache* s =
      cache_create(name, size, align, flags, a.ctor, useroffset, usersize, sheaf_capacity);
  if (s == nullptr) {
    if (flags & SLAB_PANIC) os::fatal("slub: kmem_cache_create(%s): failed\n", name);
    if (errno != ENOSYS) errno = ENOMEM;
  }
  return reinterpret_cast<kmem_cache*>(s);
}

SLUB_EXPORT kmem_cache* kmem_cache_create_usercopy(const char* name, size_t size, size_t align,
                                                   unsigned long flags, size_t useroffset,
                                                   size_t usersize, kmem_ctor_t ctor) {
  kmem_cache_args a{};
  a.align = align;
  a.useroffset = useroffset;
  a.usersize = usersize;
  a.ctor = ctor;
  return kmem_cache_create_args(name, size, &a, flags);
}

SLUB_EXPORT kmem_cache* kmem_cache_create(const char* name, size_t size, size_t align,
                                          unsigned long flags, kmem_ctor_t ctor) {
  return kmem_cache_create_usercopy(name, size, align, flags, 0, 0, ctor);
}

SLUB_EXPORT unsigned int kmem_cache_sheaf_capacity(const kmem_cache* cache) {
  return reinterpret_cast<const KmemCache*>(cache)->sheaf_cap;
}

static KmemCache* K(kmem_cache* c) {
  return reinterpret_cast<KmemCache*>(c);
}
static const KmemCache* K(const kmem_cache* c) {
  return reinterpret_cast<const KmemCache*>(c);
}

SLUB_EXPORT void* kmem_cache_alloc(kmem_cache* cache) {
  return cache_alloc(K(cache), K(cache)->object_size);
}

SLUB_EXPORT void* kmem_cache_zalloc(kmem_cache* cache) {
  void* p = cache_alloc(K(cache), K(cache)->object_size);
  if (p != nullptr) memset(p, 0, K(cache)->object_size);
  return p;
}

SLUB_EXPORT void kmem_cache_free(kmem_cache* cache, void* p) {
  KmemCache* s = K(cache);
  // The sheaves' fast path when the page's entry names this very cache.
  const uint32_t e = PageClass::get(p);
  if (SLUB_LIKELY(e != 0 && PageClass::cache_index(e) == cache_index(s))) return pcs_free(p, e);
  if (p == nullptr) return;
  PageDesc* d = PageMap::desc_of(p);
  if (SLUB_LIKELY(d != nullptr && d->kind == PageKind::kSlab && d->cache == s &&
                  is_object_start(s, d, p))) {
    cache_free(s, d, p);
    return;
  }
  if (d == nullptr) {
    if (SLUB_UNLIKELY(kfence::is_kfence_address(p))) {
      // Another cache's object is refused, sampled or not (kfence::free reports the rest).
      const KmemCache* owner = kfence::cache_of(p);
      if (owner == nullptr || owner == s) return kfence::free(p);
      os::report(
          "slub: kmem_cache_free(%s): invalid pointer %p (object of another cache, %s); "
          "ignored\n",
          s->name, p, owner->name);
      return;
    }
    if (HugeHeader* h = PageAlloc::huge_header(p)) {  // a signal handler's emergency object
      PageAlloc::huge_free(h);
      return;
    }
  }
  const bool slab = d != nullptr && d->kind == PageKind::kSlab;
  if (slab && (s->is_debug() || d->cache->is_debug())) {  // the debug mode's reports
    if (d->cache != s)
      report_wrong_cache(s, d->cache, d, p);
    else
      report_invalid_pointer(s, d, p);
    return;
  }
  const char* why = slab && d->cache != s ? "object of another cache" : fe::why_not_owned(p, d);
  os::report("slub: kmem_cache_free(%s): invalid pointer %p (%s); ignored\n", s->name, p, why);
}

SLUB_EXPORT int kmem_cache_validate(kmem_cache* cache) {
  return cache_validate(K(cache));
}
SLUB_EXPORT long slub_debug_errors(void) {
  return debug_errors();
}
SLUB_EXPORT int kmem_cache_print_calls(kmem_cache* cache, int free_calls, int fd) {
  return cache_print_calls(K(cache), free_calls != 0, fd);
}

SLUB_EXPORT int kmem_cache_shrink(kmem_cache* cache) {
  return cache_shrink(K(cache));
}
SLUB_EXPORT int kmem_cache_destroy(kmem_cache* cache) {
  if (cache == nullptr) return 0;
  return cache_destroy(K(cache));
}
SLUB_EXPORT const char* kmem_cache_name(const kmem_cache* cache) {
  return K(cache)->name;
}
SLUB_EXPORT size_t kmem_cache_size(const kmem_cache* cache) {
  return K(cache)->object_size;
}
SLUB_EXPORT size_t kmem_cache_slot_size(const kmem_cache* cache) {
  return K(cache)->size;
}

SLUB_EXPORT int kmem_cache_get_info(const kmem_cache* cache, kmem_cache_info* info) {
  if (cache == nullptr || info == nullptr) return -1;
  cache_get_info(K(cache), info);
  return 0;
}

SLUB_EXPORT int kmem_cache_aliases(const kmem_cache* cache, const char** names, int max) {
  const KmemCache* s = K(cache);
  LockGuard g(g_slab_mutex);
  for (int i = 0; i < s->nr_aliases && i < max; ++i) names[i] = s->aliases[i].name;
  return s->nr_aliases;
}

SLUB_EXPORT void kmem_cache_for_each(void (*fn)(const kmem_cache*, void*), void* arg) {
  ensure_init();
  LockGuard g(g_slab_mutex);
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next)
    fn(reinterpret_cast<const kmem_cache*>(list_entry<KmemCache, &KmemCache::list>(h)), arg);
}

SLUB_EXPORT int slub_nr_nodes(void) {
  ensure_init();
  return Topology::nr_nodes();
}
SLUB_EXPORT int slub_cpu_node(int cpu) {
  ensure_init();
  return cpu >= 0 && cpu < kMaxCpus ? Topology::node_of(cpu) : -1;
}
SLUB_EXPORT int slub_node_distance(int a, int b) {
  ensure_init();
  const int n = Topology::nr_nodes();
  return a >= 0 && a < n && b >= 0 && b < n ? Topology::distance(a, b) : -1;
}
SLUB_EXPORT int slub_kfence_object(const void* p) {
  return kfence::is_kfence_address(p) && kfence::ksize(p) != 0;
}
SLUB_EXPORT void slub_kfence_get_stats(slub_kfence_stats* out) {
  ensure_init();  // the pool is made at start-up
  kfence::Stats st;
  kfence::stats(&st);
  *out = {};
  out->enabled = st.enabled;
  out->interval_ms = st.interval_ms;
  out->sample_every = st.sample_every;
  out->objects = st.objects;
  out->allocated = st.allocated;
  out->allocations = st.allocs;
  out->frees = st.frees;
  out->bugs = st.bugs;
  out->skipped_incompatible = st.skip_incompatible;
  out->skipped_capacity = st.skip_capacity;
  out->pool_bytes = st.pool_bytes;
  out->resident_bytes = st.resident_bytes;
  out->meta_bytes = st.meta_bytes;
}
SLUB_EXPORT int slub_node_of(const void* p) {
  PageDesc* d = PageMap::desc_of(p);
  if (d == nullptr || (d->kind != PageKind::kSlab && d->kind != PageKind::kLarge)) return -1;
  return d->node;
}
SLUB_EXPORT int slub_set_topology(const char* spec) {
  ensure_init();
  char err[128];
  LockGuard g(g_slab_mutex);  // caches being created see one topology or the other
  if (spec == nullptr || Topology::set_virtual(spec, err, sizeof err) != 0) {
    os::print("slub: slub_set_topology(%s): %s\n", spec != nullptr ? spec : "NULL",
              spec != nullptr ? err : "no spec");
    errno = EINVAL;
    return -1;
  }
  return 0;
}

SLUB_EXPORT void* kmem_cache_alloc_node(kmem_cache* cache, int node) {
  if (node == SLUB_NO_NODE) return kmem_cache_alloc(cache);
  if (node < 0 || node >= Topology::nr_nodes()) {
    errno = EINVAL;
    return nullptr;
  }
  return cache_alloc_node(K(cache), K(cache)->object_size, node);
}

SLUB_EXPORT void* slub_malloc_node(size_t size, int node) {
  if (node == SLUB_NO_NODE) return fe::do_malloc(size);
  ensure_init();
  if (node < 0 || node >= Topology::nr_nodes()) {
    errno = EINVAL;
    return nullptr;
  }
  if (size <= kKmallocMax)
    return cache_alloc_node(&g_kmalloc_caches[kmalloc_index(size)], size, node);
  return fe::large_malloc(size, 0, node);
}

SLUB_EXPORT int kmem_cache_get_queue_info(const kmem_cache* cache, kmem_cache_queue_info* info) {
  if (cache == nullptr || info == nullptr) {
    errno = EINVAL;
    return -1;
  }
  cache_queue_info(const_cast<KmemCache*>(K(cache)), info);
  return 0;
}

SLUB_EXPORT int kmem_cache_get_node_info(const kmem_cache* cache, int node,
                                         kmem_cache_node_info* info) {
  const KmemCache* s = K(cache);
  if (info == nullptr || node < 0 || node >= s->nr_nodes) {
    errno = EINVAL;
    return -1;
  }
  cache_node_info(s, node, info);
  return 0;
}

SLUB_EXPORT int kmem_cache_set_remote_node_defrag_ratio(kmem_cache* cache, unsigned percent) {
  if (percent > 100) {
    errno = EINVAL;
    return -1;
  }
  KmemCache* s = K(cache);
  const unsigned old =
      __atomic_exchange_n(&s->remote_node_defrag_ratio, percent * 10, __ATOMIC_RELAXED);
  return static_cast<int>(old / 10);
}

SLUB_EXPORT int slub_bind_vcpu(int vcpu) {
  return CpuId::bind_virtual(vcpu);
}
SLUB_EXPORT int slub_current_cpu(void) {
  return CpuId::current();
}
SLUB_EXPORT int slub_fast_path_rseq(void) {
  ensure_init();
  return CpuId::rseq_fast() ? 1 : 0;
}
SLUB_EXPORT int slub_flush_idle(void) {
  return flush_idle_pass();
}

// The options table (pal/options.cc) for tools/slub options, docs/OPTIONS.md and slub(7). It
// needs no allocator: the table only.
SLUB_EXPORT int slub_options_print(int fd, int format) {
  if (format != SLUB_OPTIONS_TEXT && format != SLUB_OPTIONS_MARKDOWN &&
      format != SLUB_OPTIONS_ROFF) {
    errno = EINVAL;
    return -1;
  }
  return options::print_table(fd, static_cast<options::TableFormat>(format));
}

// The version this library was built as (include/slub/version.h, from CMakeLists.txt).
SLUB_EXPORT const char* slub_version(void) {
  return SLUB_VERSION_STRING;
}

// The caches in use in the kernel slabinfo tool's format (tools/mm/slabinfo.c), on the report
// output (pal/os.h: SLUB_DEBUG_LOG, else stderr, else the copy of stderr kept at start-up).
SLUB_EXPORT void slub_print_report(void) {
  ensure_init();
  os::print(
      "Name                   Objects Objsize           Space Slabs/Part/Cpu  O/S O %%Fr %%Ef "
      "Flg\n");
  LockGuard g(g_slab_mutex);
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    kmem_cache_info i;
    cache_get_info(s, &i);
    if (i.nr_slabs == 0) continue;
    const unsigned long space = i.nr_slabs * (kPageSize << i.order);
    char size_str[24], dist[48], flags[12];
    format_size(size_str, sizeof size_str, space);
    snprintf(dist, sizeof dist, "%zu/%zu/%zu", i.nr_slabs - i.nr_cpu_slabs, i.nr_partial,
             i.nr_cpu_slabs);
    format_flags(flags, s->flags, i.aliases > 0);
    os::print("%-21s %8zu %7zu %15s %14s %4u %1u %3zu %3zu %s\n", i.name, i.active_objs,
              i.object_size, size_str, dist, i.objs_per_slab, i.order,
              i.nr_slabs ? i.nr_partial * 100 / i.nr_slabs : 0,
              space ? i.active_objs * i.object_size * 100 / space : 0, flags);
  }
  PageAllocStats ps = PageAlloc::stats();
  os::print(
      "# page allocator: %zu chunks of 2 MiB, %zu free pages (%zu resident), %zu huge blocks "
      "(%zu KiB)\n",
      ps.chunks, ps.free_pages, ps.dirty_pages, ps.huge_blocks, ps.huge_bytes >> 10);
}

// With U (SLUB_DEBUG=U...), the call sites of the objects still allocated, per cache: what the
// kernel shows in /sys/kernel/slab/<cache>/alloc_calls, here at exit, a leak summary.
SLUB_EXPORT void slub_print_alloc_calls(void) {
  KmemCache* tracked[64];
  int n = 0;
  {
    LockGuard g(g_slab_mutex);
    for (ListHead* h = g_cache_list.next; h != &g_cache_list && n < 64; h = h->next) {
      KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
      if (s->track_off != 0) tracked[n++] = s;
    }
  }
  for (int i = 0; i < n; ++i) {
    kmem_cache_info info;
    cache_get_info(tracked[i], &info);
    if (info.active_objs == 0) continue;
    os::print("# alloc_calls of %s (objects still allocated):\n", tracked[i]->name);
    cache_report_calls(tracked[i], false);
  }
}
