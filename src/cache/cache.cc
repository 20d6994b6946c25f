// SPDX-License-Identifier: MIT
// cache/cache.cc: the cache layer (cache/cache.h): start-up, the life of a cache, its reports
// and statistics, and fork, for caches of either allocator. The allocators' own locks and
// their order are in the opening comments of slub/slub.cc and slab/slab.h; this file takes
// g_slab_mutex (the cache list, creation, destruction, shrink and validation) outside all of
// them, and fork_prepare takes every lock of the process in the documented order.
#include "cache/cache.h"

#include <cstdio>
#include <cstring>
#include <new>

#include "cache/export.h"
#include "core/debug.h"
#include "core/kfence.h"
#include "core/kmalloc.h"
#include "core/merge.h"
#include "core/meta.h"
#include "mm/page_alloc.h"
#include "mm/page_class.h"
#include "pal/options.h"
#include "pal/os.h"
#include "pal/process.h"
#include "pal/rcu.h"
#include "slab/slab.h"

namespace slub {

namespace {

constinit SpinLock<LockClass::kInit> g_init_lock;
constinit std::atomic<bool> g_atfork_done{false};
constinit bool g_default_slab = false;  // SLUB_ALLOCATOR=slab

void fork_prepare();
void fork_parent();
void fork_child();

void init_slow() {
  g_init_lock.lock();
  if (g_init_state.load(std::memory_order_relaxed) == 2) {
    g_init_lock.unlock();
    return;
  }
  g_init_state.store(1, std::memory_order_relaxed);
  os::keep_stderr();  // reports reach the stderr the program started with, even once it is closed
  service_reset_clock();
  CpuId::set_stop_hook(close_all_sheaves);
  CpuId::init();
  Topology::init();
  PageAlloc::init();
  PageClass::init();  // the free fast path's page entries (none: frees take the slow path)
  cpu_areas_init();   // the real CPUs' areas (none: no sheaves)
  debug_init();       // SLUB_DEBUG applies to the kmalloc caches too
  kfence::init();     // the guarded pool, when SLUB_KFENCE or SLUB_KFENCE_SAMPLE asks for it
  merge_init();
  set_deferred_slab_free(cache_free_slow);
  service_init();
  {
    LockGuard g(g_slab_mutex);
    // SLUB_ALLOCATOR=slab: the SLAB clone behind malloc and behind every cache created.
    g_default_slab = options::number(options::kOptAllocator) == options::kAllocSlab;
    if (!kmalloc_init(g_default_slab ? SLAB_QUEUED : 0))
      os::fatal("slub: cannot create the kmalloc caches\n");
    for (unsigned i = 0; g_default_slab && i < kNumKmalloc; ++i)
      if (!slab::open(&g_kmalloc_caches[i])) os::fatal("slub: cannot create the SLAB caches\n");
  }
  g_init_state.store(2, std::memory_order_release);
  g_init_lock.unlock();
  // The real CPU-to-node map and distances from hwloc, which allocates: the allocator is ready
  // and no lock is held. Until it answers, every CPU counts as on node 0.
  if (t_thread.slow_depth == 0) Topology::discover();
  // pthread_atfork may call malloc; everything is ready by now.
  if (!g_atfork_done.exchange(true)) os::at_fork(fork_prepare, fork_parent, fork_child);
}

}  // namespace

void ensure_init() {
  if (SLUB_LIKELY(g_init_state.load(std::memory_order_acquire) == 2)) return;
  init_slow();
}

// ---------------------------------------------------------------------------------------------
// The classic mode and SLAB caches: SLUB's compare-and-swap fast paths (a SLAB cache always
// misses them), then the slow path of the cache's allocator.

void* cache_alloc_classic(KmemCache* s, size_t orig_size) {
  if (void* p = slab_alloc_cas(s); SLUB_LIKELY(p != nullptr)) return p;
  return cache_alloc_slow(s, orig_size, -1);
}

void* cache_alloc_node_classic(KmemCache* s, size_t orig_size, int node) {
  if (void* p = slab_alloc_node_cas(s, node); SLUB_LIKELY(p != nullptr)) return p;
  return cache_alloc_slow(s, orig_size, node);
}

void cache_free_classic(KmemCache* s, PageDesc* slab, void* object) {
  if (SLUB_LIKELY(slab_free_cas(s, slab, object))) return;
  cache_free_slow(s, slab, object);
}

void* cache_alloc_slow(KmemCache* s, size_t orig_size, int node) {
  ensure_init();  // a kmalloc cache's classic path may lead here before start-up
  if (s->q == nullptr) return __slab_alloc_node(s, orig_size, node);
  if (node < 0) {
    if (void* p = kfence::maybe_alloc(s, orig_size); SLUB_UNLIKELY(p != nullptr)) return p;
  }
  void* object = nullptr;
  {
    ReentryGuard guard;
    if (guard.nested()) return emergency_alloc(s->object_size);
    if (get_cpu_area(CpuId::current()) == nullptr) {  // the SLAB clone counts on SLUB's slots
      errno = ENOMEM;
      return nullptr;
    }
    object = slab::alloc(s, node);
  }
  if (object == nullptr) errno = ENOMEM;
  service_request(true);  // the reaper's work
  return object;
}

void cache_free_slow(KmemCache* s, PageDesc* slab, void* object) {
  if (s->q == nullptr) return __slab_free(s, slab, object);
  ReentryGuard guard;
  if (guard.nested()) {
    defer_free(object);
    return;
  }
  get_cpu_area(CpuId::current());  // for the counters; no lock is held yet
  slab::free(s, slab, object);
}

// ---------------------------------------------------------------------------------------------
// The life of a cache.

KmemCache* cache_create(const char* name, size_t size, size_t align, unsigned long flags,
                        kmem_ctor_t ctor, size_t useroffset, size_t usersize, int sheaf_capacity) {
  ensure_init();
  if ((flags & SLAB_TYPESAFE_BY_RCU) && !rcu::load()) {
    os::print("slub: kmem_cache_create(%s): SLAB_TYPESAFE_BY_RCU needs liburcu (liburcu.so.8)\n",
              name);
    errno = ENOSYS;
    return nullptr;
  }
  if (g_default_slab) flags |= SLAB_QUEUED;
  const unsigned long eff = kmem_cache_flags(name, flags);  // with SLUB_DEBUG, as opened
  // A cache that asks for its own sheaf capacity is never merged (as in the kernel).
  if (sheaf_capacity < 0) {
    LockGuard g(g_slab_mutex);
    if (KmemCache* s = find_mergeable(size, align, eff, ctor, usersize))
      return cache_alias(s, name, size) ? s : nullptr;
  }
  LockGuard g(g_slab_mutex);
  const long index = alloc_cache_index();
  if (index < 0) {
    os::print("slub: kmem_cache_create(%s): %u caches already\n", name, kMaxCaches - 1);
    return nullptr;
  }
  KmemCache* s = new (&g_caches[index]) KmemCache();
  s->useroffset = static_cast<uint32_t>(useroffset);
  s->usersize = static_cast<uint32_t>(usersize);
  // Another thread may have created a compatible cache meanwhile: merging is a best effort
  // here as in the kernel, where slab_mutex is held across; two caches are still correct.
  if (!kmem_cache_open(s, name, size, align, flags, ctor, sheaf_capacity) ||
      ((flags & SLAB_QUEUED) && !slab::open(s))) {
    slab::close(s);
    kmem_cache_release(s);
    free_cache_index(static_cast<unsigned>(index));
    return nullptr;
  }
  return s;
}

int cache_shrink_locked(KmemCache* s) {
  return s->q != nullptr ? slab::shrink(s) : slub_shrink(s);
}

// Shrink, validate and destroy take the allocator's locks on the caller's thread: a signal
// handler's allocation meanwhile is a nested one (emergency block, deferred free), never a
// wait for a lock its own thread holds.
int cache_shrink(KmemCache* s) {
  get_cpu_area(CpuId::current());  // counters of the flushes and frees below
  ReentryGuard guard;
  LockGuard g(g_slab_mutex);
  return cache_shrink_locked(s);
}

int cache_validate(KmemCache* s) {
  get_cpu_area(CpuId::current());  // counters of the flushes and frees below
  ReentryGuard guard;
  LockGuard g(g_slab_mutex);
  return cache_validate_locked(s);
}

int cache_validate_locked(KmemCache* s) {
  return s->q != nullptr ? 0 : slub_validate(s);  // the SLAB clone has no debug checks
}

int cache_destroy(KmemCache* s) {
  get_cpu_area(CpuId::current());
  ReentryGuard guard;  // as cache_shrink
  g_slab_mutex.lock();
  if (--s->refcount > 0) {
    g_slab_mutex.unlock();
    return 0;
  }
  void* sampled[8];
  constexpr unsigned kShown = sizeof sampled / sizeof sampled[0];
  if (const unsigned live = kfence::live_objects(s, sampled, kShown)) {
    os::print("slub: kmem_cache_destroy %s: Slab cache still has objects: %u KFENCE objects\n",
              s->name, live);
    for (unsigned i = 0; i < live && i < kShown; ++i)
      os::print("slub:   object %p still allocated (KFENCE)\n", sampled[i]);
    s->refcount++;
    g_slab_mutex.unlock();
    errno = EBUSY;
    return -1;
  }
  if (s->q != nullptr) {
    slab::shrink(s);
    if (const size_t busy = slab::busy_slabs(s)) {
      os::report("slub: kmem_cache_destroy(%s): %zu slabs still hold objects; cache kept\n",
                 s->name, busy);
      s->refcount++;
      g_slab_mutex.unlock();
      errno = EBUSY;
      return -1;
    }
    slab::close(s);
  } else if (slub_shutdown(s) != 0) {
    s->refcount++;
    g_slab_mutex.unlock();
    errno = EBUSY;
    return -1;
  }
  kmem_cache_release(s);
  free_aliases(s);
  const bool rcu = s->flags & SLAB_TYPESAFE_BY_RCU;
  g_slab_mutex.unlock();
  if (rcu) rcu::barrier();  // its slabs' pages come back first (they name the cache)
  if (!s->is_kmalloc) {
    LockGuard g(g_slab_mutex);
    free_cache_index(cache_index(s));
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Reports and statistics.

namespace {
// Adds an object's track to its call site's line.
void add_site(const Track* t, void* arg) {
  auto* sites = static_cast<CallSites*>(arg);
  if (t->addr == nullptr) return;
  const uint64_t age = (sites->now - t->when_ns) / 1000000;
  int k = 0;
  while (k < sites->n && sites->site[k].addr != t->addr) ++k;
  if (k == sites->n) {
    if (sites->n == CallSites::kMax) {
      ++sites->dropped;
      return;
    }
    sites->site[sites->n++] = {t->addr, 0, age, age, 0, t->tid, t->tid, 0};
  }
  CallSite& c = sites->site[k];
  c.count++;
  c.sum_age += age;
  if (age < c.min_age) c.min_age = age;
  if (age > c.max_age) c.max_age = age;
  if (t->tid < c.min_tid) c.min_tid = t->tid;
  if (t->tid > c.max_tid) c.max_tid = t->tid;
  if (t->cpu >= 0 && t->cpu < 64) c.cpus |= uint64_t{1} << t->cpu;
}

bool write_line_fd(const char* line, size_t len, void* arg) {
  return os::write_all(*static_cast<int*>(arg), line, len);
}

bool write_line_report(const char* line, size_t len, void*) {
  return os::write_report(line, len);
}

// cache_print_calls and cache_report_calls: collect under the locks, then write without them.
int calls_to(KmemCache* s, bool free_calls, LineSink sink, void* arg) {
  if (s->track_off == 0) return -1;
  CallSites sites;
  {
    get_cpu_area(CpuId::current());  // counters of the flushes below
    ReentryGuard guard;
    LockGuard g(g_slab_mutex);
    cache_collect_calls_locked(s, free_calls, &sites);
  }
  cache_emit_calls(&sites, sink, arg);
  return sites.n;
}
}  // namespace

bool cache_collect_calls_locked(KmemCache* s, bool free_calls, CallSites* sites) {
  if (s->track_off == 0) return false;
  sites->n = 0;
  sites->dropped = 0;
  sites->now = os::now_ns();
  if (s->q == nullptr) slub_for_each_track(s, free_calls, add_site, sites);
  return true;
}

void cache_emit_calls(CallSites* sites, LineSink sink, void* arg) {
  // Most frequent first (insertion sort: a few hundred entries at most).
  for (int i = 1; i < sites->n; ++i)
    for (int j = i; j > 0 && sites->site[j].count > sites->site[j - 1].count; --j) {
      CallSite tmp = sites->site[j];
      sites->site[j] = sites->site[j - 1];
      sites->site[j - 1] = tmp;
    }
  for (int i = 0; i < sites->n; ++i) {
    const CallSite& c = sites->site[i];
    char sym[256], line[512];
    symbolize(c.addr, sym, sizeof sym);
    char cpus[128];  // the kernel's cpu list: "0-3,7"
    size_t used = 0;
    cpus[0] = '\0';
    for (int k = 0; k < 64 && used < sizeof cpus - 16; ++k) {
      if (!((c.cpus >> k) & 1)) continue;
      int e = k;
      while (e + 1 < 64 && ((c.cpus >> (e + 1)) & 1)) ++e;
      used += snprintf(cpus + used, sizeof cpus - used, used ? ",%d" : "%d", k);
      if (e > k) used += snprintf(cpus + used, sizeof cpus - used, "-%d", e);
      k = e;
    }
    int n = snprintf(line, sizeof line, "%7ld %s age=%llu/%llu/%llu tid=%d-%d cpus=%s\n", c.count,
                     sym, static_cast<unsigned long long>(c.min_age),
                     static_cast<unsigned long long>(c.sum_age / c.count),
                     static_cast<unsigned long long>(c.max_age), c.min_tid, c.max_tid, cpus);
    if (n > 0 && !sink(line, static_cast<size_t>(n) < sizeof line ? n : sizeof line - 1, arg))
      return;
  }
  if (sites->dropped != 0) {
    char line[96];
    int n = snprintf(line, sizeof line, "%7ld objects from further call sites not shown\n",
                     sites->dropped);
    if (n > 0) sink(line, static_cast<size_t>(n), arg);
  }
}

int cache_print_calls(KmemCache* s, bool free_calls, int fd) {
  return calls_to(s, free_calls, write_line_fd, &fd);
}

int cache_report_calls(KmemCache* s, bool free_calls) {
  return calls_to(s, free_calls, write_line_report, nullptr);
}

void cache_get_info(const KmemCache* s, kmem_cache_info* info) {
  *info = {};
  info->name = s->name;
  info->object_size = s->object_size;
  info->slot_size = s->size;
  info->order = s->order;
  info->objs_per_slab = s->objects;
  info->min_partial = s->min_partial;
  info->aliases = s->refcount - 1;
  unique_id(s, info->unique_id, sizeof info->unique_id);
  info->cpu_partial = s->cpu_partial;
  if (s->q != nullptr)
    slab::get_info(s, info);
  else
    slub_get_info(s, info);
}

void cache_node_info(const KmemCache* s, int node, kmem_cache_node_info* info) {
  if (s->q != nullptr)
    slab::node_info(s, node, info);
  else
    slub_node_info(s, node, info);
}

void cache_queue_info(KmemCache* s, kmem_cache_queue_info* info) {
  if (s->q != nullptr)
    slab::queue_info(s, info);
  else
    slub_queue_info(s, info);
}

// ---------------------------------------------------------------------------------------------
// fork(): every lock in the documented order, so the child finds none held.

namespace {

void fork_prepare() {
  ensure_init();
  rcu::before_fork();  // liburcu's call_rcu threads pause first: their callbacks free slabs
  cpu_area_lock();
  g_slab_mutex.lock();
  slub_lock_all();
  slab::lock_all();
  debug_fork_lock();  // a report of a bad pointer, or a stack saved, under no lock above
  PageAlloc::lock();
  meta::lock();
  // PageClass's lock is taken only at start-up, under g_init_lock, before this handler exists.
  os::random_fork_lock();  // a new slab's random order is drawn under no lock above
  rcu::fork_lock();
  kfence::fork_lock();  // a leaf: a sampled allocation or free takes it under no other lock
}

namespace {
void fork_release(bool child) {
  kfence::fork_unlock();
  rcu::fork_unlock();
  os::random_fork_unlock();
  meta::unlock();
  PageAlloc::unlock();
  debug_fork_unlock();
  slab::unlock_all(child);
  slub_unlock_all();
  g_slab_mutex.unlock();
  cpu_area_unlock();
}
}  // namespace

void fork_parent() {
  fork_release(false);
  rcu::after_fork_parent();
}

void fork_child() {
  // Alone in the child: no rseq section can be in flight.
  const bool rseq_kept = CpuId::after_fork_child();
  fork_release(true);
  PageAlloc::fork_child();
  if (!rseq_kept) close_all_sheaves();
  rcu::after_fork_child();
  export_forget();        // the parent's area; the child makes its own when its service starts
  service_forget();       // the service thread did not survive fork
  service_reset_clock();  // the child's first second starts now: a short child makes no area
}

}  // namespace

}  // namespace slub
