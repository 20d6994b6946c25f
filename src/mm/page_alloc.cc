// SPDX-License-Identifier: MIT
#include "mm/page_alloc.h"

#include <sched.h>

#include <atomic>

#include "mm/page_class.h"
#include "mm/page_map.h"
#include "pal/options.h"
#include "pal/os.h"
#include "pal/process.h"
#include "pal/topology.h"

namespace slub {

namespace {
constexpr size_t kRegionChunks = 16;  // 32 MiB reserved at a time

// Everything below is protected by PageAlloc::lock_. Free runs are kept per node: a chunk
// belongs to the node it was carved for, and so do all its runs.
constinit ListHead g_free[kMaxNodes][kChunkOrder + 1] = {};
constinit bool g_node_ready[kMaxNodes] = {};
constinit int g_nodes_used = 1;  // nodes 0 .. g_nodes_used-1 may have lists
constinit uintptr_t g_region_cur = 0;
constinit uintptr_t g_region_end = 0;
constinit PageAllocStats g_stats = {};
// Dirty pages per node, so that a purge skips clean nodes without looking at their lists.
constinit size_t g_node_dirty[kMaxNodes] = {};
// Chunks and free pages per node (the statistics: malloc_info's heap per node).
constinit size_t g_node_chunks[kMaxNodes] = {};
constinit size_t g_node_free[kMaxNodes] = {};
constinit size_t g_node_dirty_runs[kMaxNodes] = {};
// dirty_pages is also read unlocked (PageAlloc::dirty_pages(), the flusher's start test). Each
// call adds or removes one run.
void add_dirty(size_t n, int node) {
  __atomic_store_n(&g_stats.dirty_pages, g_stats.dirty_pages + n, __ATOMIC_RELAXED);
  g_node_dirty[node] += n;
  g_stats.dirty_runs++;
  g_node_dirty_runs[node]++;
}
void sub_dirty(size_t n, int node) {
  __atomic_store_n(&g_stats.dirty_pages, g_stats.dirty_pages - n, __ATOMIC_RELAXED);
  g_node_dirty[node] -= n;
  g_stats.dirty_runs--;
  g_node_dirty_runs[node]--;
}
void add_free_pages(size_t n, int node) {
  g_stats.free_pages += n;
  g_node_free[node] += n;
}
void sub_free_pages(size_t n, int node) {
  g_stats.free_pages -= n;
  g_node_free[node] -= n;
}
// 64 MiB; the flusher purges sooner. Read unlocked by free (mallopt may change it).
constinit size_t g_max_dirty_pages = 16384;
constinit bool g_lists_ready = false;
// Huge blocks take no lock (a signal handler's nested malloc may use them).
constinit std::atomic<size_t> g_huge_blocks{0};
constinit std::atomic<size_t> g_huge_bytes{0};
constinit std::atomic<size_t> g_max_huge_blocks{0};  // peaks (malloc_stats' max mmap)
constinit std::atomic<size_t> g_max_huge_bytes{0};
void raise_max(std::atomic<size_t>& max, size_t v) {
  size_t m = max.load(std::memory_order_relaxed);
  while (v > m && !max.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
  }
}
constinit std::atomic<long> g_fail_count{0};
constinit unsigned g_fail_min_order = 0;

// Fault injection (tests only set it): true if this request must fail.
bool injected_failure(unsigned order) {
  long n = g_fail_count.load(std::memory_order_relaxed);
  if (SLUB_LIKELY(n == 0) || order < g_fail_min_order) return false;
  if (n > 0) g_fail_count.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void ensure_node(int node) {
  if (g_node_ready[node]) return;
  for (auto& l : g_free[node]) l.init();
  g_node_ready[node] = true;
  if (node + 1 > g_nodes_used) g_nodes_used = node + 1;
}

void ensure_lists() {
  if (g_lists_ready) return;
  ensure_node(0);
  g_lists_ready = true;
}

// The node a run belongs to: its chunk's, recorded in the chunk's meta descriptor.
int node_of_run(const PageDesc* d) {
  return chunk_descs(chunk_of(d))[0].node;
}

void mark_run(PageDesc* head, unsigned order, PageKind tail_kind) {
  const uint32_t hi = static_cast<uint32_t>(page_index(head));
  for (size_t j = 1; j < (size_t{1} << order); ++j) {
    head[j].kind = tail_kind;
    head[j].head = hi;
  }
}
}  // namespace

constinit SpinLock<LockClass::kPageAlloc> PageAlloc::lock_;

void PageAlloc::init() {
  const long kb = options::number(options::kOptDirtyMaxKb);  // -1: the built-in 64 MiB
  LockGuard g(lock_);
  ensure_lists();
  if (kb >= 0) set_max_dirty(static_cast<size_t>(kb) * 1024 / kPageSize);
}

void PageAlloc::set_max_dirty(size_t pages) {
  __atomic_store_n(&g_max_dirty_pages, pages, __ATOMIC_RELAXED);
}

size_t PageAlloc::max_dirty() {
  return __atomic_load_n(&g_max_dirty_pages, __ATOMIC_RELAXED);
}

// Carves a chunk from the current region (reserving a new region when needed), commits and
// registers it, and sets up its descriptors: the meta run at the start, the rest as free runs.
// Lock held.
uintptr_t PageAlloc::new_chunk(int node) {
  if (g_region_cur == g_region_end) {
    // Reserved, not committed: a region costs address space only. Under RLIMIT_AS it shrinks
    // to leave the program room (to a single chunk when the limit is tight).
    size_t n = os::reservation_size(kRegionChunks * kChunkSize, kChunkSize, 16) / kChunkSize;
    void* r = os::reserve_aligned(n * kChunkSize, kChunkSize);
    if (r == nullptr && n > 1) {  // address space tight: a single chunk
      n = 1;
      r = os::reserve_aligned(kChunkSize, kChunkSize);
    }
    if (r == nullptr) return 0;
    g_region_cur = reinterpret_cast<uintptr_t>(r);
    g_region_end = g_region_cur + n * kChunkSize;
  }
  uintptr_t chunk = g_region_cur;
  // Committed now, as a writable mapping: under the system's overcommit policy, like any mmap
  // (vm.overcommit_memory=2 can refuse it; then this allocation fails with ENOMEM).
  if (!os::commit(reinterpret_cast<void*>(chunk), kChunkSize)) return 0;
  if (!PageMap::set(chunk, kChunkSize, chunk, PageMap::kChunk)) return 0;
  PageClass::commit_chunk(chunk);  // its page entries (else its frees take the slow path)
  g_region_cur += kChunkSize;
  g_stats.chunks++;
  g_node_chunks[node]++;

  PageDesc* d = chunk_descs(chunk);  // fresh mapping: all descriptors read as zero
  d[0].kind = PageKind::kMeta;
  d[0].order = kMetaOrder;
  d[0].node = static_cast<uint16_t>(node);
  // Real NUMA nodes: the chunk's pages come from its node (virtual nodes are not bound).
  if (!Topology::is_virtual() && Topology::nr_nodes() > 1)
    os::bind_node(reinterpret_cast<void*>(chunk), kChunkSize, node);
  mark_run(&d[0], kMetaOrder, PageKind::kTail);
  // The rest is one free run of each order from kMetaOrder to kMaxRunOrder, clean.
  for (unsigned o = kMetaOrder; o <= kMaxRunOrder; ++o)
    add_free(&d[size_t{1} << o], o, false, node);
  return chunk;
}

void PageAlloc::add_free(PageDesc* d, unsigned order, bool dirty, int node) {
  d->kind = PageKind::kFreeHead;
  d->order = static_cast<uint8_t>(order);
  d->dirty = dirty;
  d->cache = nullptr;
  d->node = static_cast<uint16_t>(node);
  // Dirty runs first: allocation reuses resident pages, and purge finds them at the head.
  if (dirty)
    g_free[node][order].add_head(&d->list);
  else
    g_free[node][order].add_tail(&d->list);
  add_free_pages(size_t{1} << order, node);
  if (dirty) add_dirty(size_t{1} << order, node);
}

void PageAlloc::inject_failures(unsigned min_order, long count) {
  g_fail_min_order = min_order;
  g_fail_count.store(count, std::memory_order_relaxed);
}

PageDesc* PageAlloc::alloc(unsigned order, int node, PageKind kind) {
  if (order > kMaxRunOrder || injected_failure(order)) return nullptr;
  if (node < 0 || node >= kMaxNodes) node = 0;
  LockGuard g(lock_);
  ensure_lists();
  ensure_node(node);
  unsigned o = order;
  while (o <= kMaxRunOrder && g_free[node][o].empty()) ++o;
  if (o > kMaxRunOrder && new_chunk(node) != 0) {
    o = order;
    while (g_free[node][o].empty()) ++o;
  }
  if (o > kMaxRunOrder) {
    // The OS gives no more memory: take a free run of another node, nearest first, as the
    // kernel's page allocator falls back along the zonelist.
    const int nodes = Topology::nr_nodes() > g_nodes_used ? Topology::nr_nodes() : g_nodes_used;
    for (int k = 1; k < nodes && o > kMaxRunOrder; ++k) {
      const int m = k < Topology::nr_nodes() ? Topology::nearest(node, k) : k;
      if (m >= kMaxNodes || !g_node_ready[m]) continue;
      for (o = order; o <= kMaxRunOrder && g_free[m][o].empty(); ++o) {
      }
      if (o <= kMaxRunOrder) node = m;
    }
    if (o > kMaxRunOrder) return nullptr;
  }
  PageDesc* d = list_entry<PageDesc, &PageDesc::list>(g_free[node][o].next);
  ListHead::del(&d->list);
  const bool dirty = d->dirty;
  sub_free_pages(size_t{1} << o, node);
  if (dirty) sub_dirty(size_t{1} << o, node);
  while (o > order) {  // split: keep the lower half, free the upper one
    --o;
    add_free(d + (size_t{1} << o), o, dirty, node);
  }
  d->kind = kind;
  d->order = static_cast<uint8_t>(order);
  d->node = static_cast<uint16_t>(node);
  d->dirty = dirty;
  d->on_node_partial = 0;
  mark_run(d, order, PageKind::kTail);
  if (kind == PageKind::kLarge) {
    g_stats.large_pages += size_t{1} << order;
    g_stats.large_blocks++;
  } else if (kind == PageKind::kSlab) {
    g_stats.slab_pages += size_t{1} << order;
  }
  return d;
}

// Puts the free run d of 2^order pages back on its node's list, merged with its free buddies;
// the merged run is dirty if any part of it is. Lock held.
void PageAlloc::release_locked(PageDesc* d, unsigned order, bool dirty) {
  const int node = node_of_run(d);
  mark_run(d, order, PageKind::kFreeTail);
  PageDesc* base = chunk_descs(chunk_of(d));
  size_t idx = page_index(d);
  while (order < kMaxRunOrder) {
    size_t bi = idx ^ (size_t{1} << order);
    PageDesc* b = base + bi;
    if (b->kind != PageKind::kFreeHead || b->order != order) break;
    ListHead::del(&b->list);
    sub_free_pages(size_t{1} << order, node);
    if (b->dirty) {
      sub_dirty(size_t{1} << order, node);
      dirty = true;
    }
    b->kind = PageKind::kFreeTail;
    d->kind = PageKind::kFreeTail;
    idx &= ~(size_t{1} << order);
    d = base + idx;
    ++order;
  }
  add_free(d, order, dirty, node);
}

void PageAlloc::free(PageDesc* d) {
  {
    LockGuard g(lock_);
    if (d->kind == PageKind::kLarge) {
      g_stats.large_pages -= size_t{1} << d->order;
      g_stats.large_blocks--;
    } else if (d->kind == PageKind::kSlab) {
      g_stats.slab_pages -= size_t{1} << d->order;
    }
    d->cache = nullptr;
    d->freelist = nullptr;
    d->counters = 0;
    release_locked(d, d->order, true);
  }
  // Over the budget: purge down to half of it, here (the flusher purges the rest later).
  const size_t budget = max_dirty();
  if (SLUB_UNLIKELY(dirty_pages() > budget)) purge(budget / 2, false);
}

// Gives dirty free runs back to the OS until at most `keep` dirty pages are left, largest runs
// first. madvise runs outside the lock: a batch of runs is taken off the lists (kPurging, so no
// buddy merges into them and no allocation sees them), purged, and released again, clean. One
// purger at a time; a second caller waits for it (wait) or returns 0 at once. (A fork while a batch
// is out loses that batch's free runs in the child: at most kBatch runs of address space, never
// memory in use.)
namespace {
constinit std::atomic<bool> g_purge_busy{false};  // one purger at a time
}  // namespace

void PageAlloc::fork_child() {
  // The purger, if one was out with a batch, did not survive the fork.
  g_purge_busy.store(false, std::memory_order_relaxed);
}

size_t PageAlloc::purge(size_t keep, bool wait) {
  std::atomic<bool>& busy = g_purge_busy;
  while (busy.exchange(true, std::memory_order_acquire)) {
    if (!wait) return 0;
    os::yield();
  }
  constexpr int kBatch = 32;
  size_t purged = 0;
  for (;;) {
    PageDesc* batch[kBatch];
    int n = 0;
    {
      LockGuard g(lock_);
      if (!g_lists_ready) break;
      size_t dirty = g_stats.dirty_pages;
      // Dirty runs sit at the head of each list (add_free), so each scan stops at the first
      // clean one.
      for (int o = kMaxRunOrder; o >= 0 && n < kBatch && dirty > keep; --o) {
        for (int m = 0; m < g_nodes_used && n < kBatch && dirty > keep; ++m) {
          if (g_node_dirty[m] == 0) continue;
          ListHead* l = &g_free[m][o];
          while (!l->empty() && n < kBatch && dirty > keep) {
            PageDesc* f = list_entry<PageDesc, &PageDesc::list>(l->next);
            if (!f->dirty) break;
            ListHead::del(&f->list);
            f->kind = PageKind::kPurging;
            sub_free_pages(size_t{1} << o, m);
            sub_dirty(size_t{1} << o, m);
            dirty -= size_t{1} << o;
            batch[n++] = f;
          }
        }
      }
    }
    if (n == 0) break;
    for (int i = 0; i < n; ++i)
      os::purge(desc_address(batch[i]), (size_t{1} << batch[i]->order) << kPageShift);
    LockGuard g(lock_);
    for (int i = 0; i < n; ++i) {
      g_stats.purged_pages += size_t{1} << batch[i]->order;
      purged += size_t{1} << batch[i]->order;
      release_locked(batch[i], batch[i]->order, false);
    }
  }
  busy.store(false, std::memory_order_release);
  return purged;
}

size_t PageAlloc::purge_dirty(size_t keep) {
  return purge(keep, true);
}

void* PageAlloc::huge_alloc(size_t size, size_t align, size_t* usable) {
  if (align < kPageSize) align = kPageSize;
  // Header page, then the user block at the first `align` boundary after it.
  const size_t lead = align;  // >= one page, keeps the user pointer aligned
  if (size > (size_t{1} << 46) || lead > (size_t{1} << 46)) return nullptr;
  const size_t map_size = align_up(lead + size, kPageSize);
  const size_t map_align = align > kChunkSize ? align : kChunkSize;
  char* base = static_cast<char*>(os::map_aligned(map_size, map_align));
  if (base == nullptr) return nullptr;
  auto* h = reinterpret_cast<HugeHeader*>(base);
  h->magic = kHugeMagic;
  h->map_size = map_size;
  h->user = base + lead;
  h->usable = map_size - lead;
  if (!PageMap::set(reinterpret_cast<uintptr_t>(base), map_size, reinterpret_cast<uintptr_t>(base),
                    PageMap::kHuge)) {
    os::unmap(base, map_size);
    return nullptr;
  }
  const size_t blocks = g_huge_blocks.fetch_add(1, std::memory_order_relaxed) + 1;
  const size_t bytes = g_huge_bytes.fetch_add(map_size, std::memory_order_relaxed) + map_size;
  raise_max(g_max_huge_blocks, blocks);
  raise_max(g_max_huge_bytes, bytes);
  if (usable != nullptr) *usable = h->usable;
  return h->user;
}

HugeHeader* PageAlloc::huge_header(const void* p) {
  uintptr_t e = PageMap::lookup(p);
  if ((e & PageMap::kTagMask) != PageMap::kHuge) return nullptr;
  auto* h = reinterpret_cast<HugeHeader*>(e & ~uintptr_t{PageMap::kTagMask});
  if (h->magic != kHugeMagic || h->user != p) return nullptr;
  return h;
}

void PageAlloc::huge_free(HugeHeader* h) {
  const size_t map_size = h->map_size;
  h->magic = 0;
  PageMap::clear(reinterpret_cast<uintptr_t>(h), map_size);
  os::unmap(h, map_size);
  g_huge_blocks.fetch_sub(1, std::memory_order_relaxed);
  g_huge_bytes.fetch_sub(map_size, std::memory_order_relaxed);
}

size_t PageAlloc::dirty_pages() {
  return __atomic_load_n(&g_stats.dirty_pages, __ATOMIC_RELAXED);
}

PageAllocStats PageAlloc::stats() {
  LockGuard g(lock_);
  PageAllocStats s = g_stats;
  s.huge_blocks = g_huge_blocks.load(std::memory_order_relaxed);
  s.huge_bytes = g_huge_bytes.load(std::memory_order_relaxed);
  s.max_huge_blocks = g_max_huge_blocks.load(std::memory_order_relaxed);
  s.max_huge_bytes = g_max_huge_bytes.load(std::memory_order_relaxed);
  return s;
}

PageAllocNodeStats PageAlloc::node_stats(int node) {
  if (node < 0 || node >= kMaxNodes) return {};
  LockGuard g(lock_);
  return {g_node_chunks[node], g_node_free[node], g_node_dirty[node], g_node_dirty_runs[node]};
}

}  // namespace slub
