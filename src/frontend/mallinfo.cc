// SPDX-License-Identifier: MIT
// frontend/mallinfo: glibc's malloc extensions with slub's own numbers (include/slub/slub.h:
// slub_mallinfo2, slub_malloc_trim, slub_malloc_stats, slub_malloc_info, slub_mallopt; the libc
// names in override.cc). docs/MALLINFO.md maps every field. The numbers come from the cache
// layer's sums (cache_totals, cache_node_free: under g_slab_mutex in a ReentryGuard) and the
// page allocator's counters (its lock); they are formatted afterwards, with no lock held.
// stderr (or SLUB_DEBUG_LOG's file) gets them by write(2) (os::print); malloc_info's FILE gets
// them by fwrite from a fixed buffer, outside every lock and guard of ours, since stdio may call
// malloc for its buffer.
#include <malloc.h>

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include <slub/slub.h>

#include "core/meta.h"
#include "frontend/malloc_impl.h"
#include "mm/page_alloc.h"
#include "pal/os.h"

namespace slub::fe {

constinit size_t g_mmap_threshold = SIZE_MAX;  // mallopt(M_MMAP_THRESHOLD); SIZE_MAX: none

namespace {

// Bytes of address space carved into chunks, and how much of it holds memory: all of it but
// the free pages that are not resident (never touched since the chunk was carved, or purged).
size_t chunk_bytes(size_t chunks) {
  return chunks * kChunkSize;
}
size_t held_bytes(size_t chunks, size_t free_pages, size_t dirty_pages) {
  return chunk_bytes(chunks) - (free_pages - dirty_pages) * kPageSize;
}

struct Info {
  struct slub_mallinfo2 m;
  CacheTotals t;
  PageAllocStats ps;
};

void gather(Info* i) {
  cache_totals(&i->t);  // starts the allocator if needed
  {
    ReentryGuard guard;  // the page allocator's lock: a signal handler's malloc is a nested one
    i->ps = PageAlloc::stats();
  }
  const CacheTotals& t = i->t;
  const PageAllocStats& ps = i->ps;
  struct slub_mallinfo2& m = i->m;
  m = {};
  m.arena = held_bytes(ps.chunks, ps.free_pages, ps.dirty_pages);
  m.ordblks = t.node_free_objs + ps.dirty_runs;
  m.smblks = t.parked_objs;
  m.hblks = ps.huge_blocks;
  m.hblkhd = ps.huge_bytes;
  m.usmblks = 0;
  m.fsmblks = t.parked_bytes;
  m.uordblks = t.in_use_bytes + ps.large_pages * kPageSize;
  m.fordblks = t.parked_bytes + t.node_free_bytes + ps.dirty_pages * kPageSize;
  m.keepcost = ps.dirty_pages * kPageSize + t.empty_slab_bytes;
}

// Formats into a fixed buffer and hands it to fwrite when full (no lock held by then).
class XmlOut {
 public:
  explicit XmlOut(FILE* fp) : fp_(fp) {}
  void add(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    const size_t len = static_cast<size_t>(n) < sizeof line ? n : sizeof line - 1;
    if (used_ + len > sizeof buf_) flush();
    memcpy(buf_ + used_, line, len);
    used_ += len;
  }
  void flush() {
    if (used_ != 0 && fwrite(buf_, 1, used_, fp_) != used_) ok_ = false;
    used_ = 0;
  }
  bool ok() const { return ok_; }

 private:
  FILE* fp_;
  char buf_[4096];
  size_t used_ = 0;
  bool ok_ = true;
};

void heap_xml(XmlOut& out, int node) {
  NodeFree nf;
  cache_node_free(node, &nf);
  PageAllocNodeStats ns;
  {
    ReentryGuard guard;  // as in gather
    ns = PageAlloc::node_stats(node);
  }
  out.add("<heap nr=\"%d\">\n<sizes>\n", node);
  for (int i = 0; i < nf.n; ++i)
    out.add("  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n", nf.bucket[i].size,
            nf.bucket[i].size, nf.bucket[i].size * nf.bucket[i].count, nf.bucket[i].count);
  if (nf.other_count != 0)
    out.add("  <unsorted from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n", nf.other_min,
            nf.other_max, nf.other_bytes, nf.other_count);
  out.add("</sizes>\n");
  // The per-CPU layers belong to CPUs, not nodes: they are in the totals' "fast" only.
  out.add("<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
  out.add("<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", nf.objs + ns.dirty_runs,
          nf.bytes + ns.dirty_pages * kPageSize);
  out.add("<system type=\"current\" size=\"%zu\"/>\n",
          held_bytes(ns.chunks, ns.free_pages, ns.dirty_pages));
  out.add("<system type=\"max\" size=\"%zu\"/>\n", chunk_bytes(ns.chunks));
  out.add("<aspace type=\"total\" size=\"%zu\"/>\n", chunk_bytes(ns.chunks));
  out.add("<aspace type=\"mprotect\" size=\"%zu\"/>\n</heap>\n", chunk_bytes(ns.chunks));
}

int clamp_int(size_t v) {
  return v > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(v);
}

// Pages given back with madvise so far (under a guard: the page allocator's lock).
size_t purged_pages() {
  ReentryGuard guard;
  return PageAlloc::stats().purged_pages;
}
}  // namespace

}  // namespace slub::fe

using namespace slub;

SLUB_EXPORT struct slub_mallinfo2 slub_mallinfo2(void) {
  fe::Info i;
  fe::gather(&i);
  return i.m;
}

// glibc's int fields, clamped (glibc's own mallinfo wraps around past 2 GiB).
struct mallinfo slub_mallinfo_int() {
  const struct slub_mallinfo2 m = slub_mallinfo2();
  struct mallinfo r = {};
  r.arena = fe::clamp_int(m.arena);
  r.ordblks = fe::clamp_int(m.ordblks);
  r.smblks = fe::clamp_int(m.smblks);
  r.hblks = fe::clamp_int(m.hblks);
  r.hblkhd = fe::clamp_int(m.hblkhd);
  r.usmblks = fe::clamp_int(m.usmblks);
  r.fsmblks = fe::clamp_int(m.fsmblks);
  r.uordblks = fe::clamp_int(m.uordblks);
  r.fordblks = fe::clamp_int(m.fordblks);
  r.keepcost = fe::clamp_int(m.keepcost);
  return r;
}

// 1 when pages went back to the OS during the call: by the purge below, or already by the
// page allocator's own budget while the shrink freed slabs.
SLUB_EXPORT int slub_malloc_trim(size_t pad) {
  ensure_init();
  const size_t purged_before = fe::purged_pages();
  cache_shrink_all();  // the empty slabs' pages become free resident pages (its own guard)
  {
    ReentryGuard guard;  // as in gather
    PageAlloc::purge_dirty(pad / kPageSize);
  }
  return fe::purged_pages() != purged_before ? 1 : 0;
}

SLUB_EXPORT void slub_malloc_stats(void) {
  fe::Info i;
  fe::gather(&i);
  const struct slub_mallinfo2& m = i.m;
  os::print("Arena 0:\n");
  os::print("system bytes     = %10zu\n", m.arena);
  os::print("in use bytes     = %10zu\n", m.uordblks);
  os::print("Total (incl. mmap):\n");
  os::print("system bytes     = %10zu\n", m.arena + m.hblkhd);
  os::print("in use bytes     = %10zu\n", m.uordblks + m.hblkhd);
  os::print("max mmap regions = %10zu\n", i.ps.max_huge_blocks);
  os::print("max mmap bytes   = %10zu\n", i.ps.max_huge_bytes);
  os::print("free bytes       = %10zu (per-CPU layers %zu, node lists %zu, pages %zu)\n",
            m.fordblks, m.fsmblks, i.t.node_free_bytes, i.ps.dirty_pages * kPageSize);
  os::print("metadata bytes   = %10zu\n", meta::bytes_in_use());
  // The caches with slabs: active objects count those parked per CPU, as slabinfo's do.
  os::print("%-24s %8s %10s %10s %8s\n", "cache", "objsize", "active", "total", "slabs");
  for_each_cache([](KmemCache* s) {
    kmem_cache_info info;
    cache_get_info(s, &info);
    if (info.nr_slabs == 0) return;
    os::print("%-24s %8zu %10zu %10zu %8zu\n", info.name, info.object_size, info.active_objs,
              info.total_objs, info.nr_slabs);
  });
}

SLUB_EXPORT int slub_malloc_info(int options, FILE* fp) {
  if (options != 0 || fp == nullptr) {
    errno = EINVAL;
    return -1;
  }
  fe::Info i;
  fe::gather(&i);
  const struct slub_mallinfo2& m = i.m;
  fe::XmlOut out(fp);
  out.add("<malloc version=\"1\">\n");
  const int nodes = Topology::nr_nodes();
  for (int node = 0; node < nodes; ++node) fe::heap_xml(out, node);
  out.add("<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>\n", m.smblks, m.fsmblks);
  out.add("<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", m.ordblks, m.fordblks - m.fsmblks);
  out.add("<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", m.hblks, m.hblkhd);
  out.add("<system type=\"current\" size=\"%zu\"/>\n", m.arena);
  out.add("<system type=\"max\" size=\"%zu\"/>\n", fe::chunk_bytes(i.ps.chunks));
  out.add("<aspace type=\"total\" size=\"%zu\"/>\n", fe::chunk_bytes(i.ps.chunks));
  out.add("<aspace type=\"mprotect\" size=\"%zu\"/>\n", fe::chunk_bytes(i.ps.chunks));
  out.add("</malloc>\n");
  out.flush();
  return out.ok() ? 0 : -1;
}

SLUB_EXPORT int slub_mallopt(int param, int value) {
  ensure_init();  // start-up reads SLUB_DIRTY_MAX_KB: a budget set before would be overwritten
  switch (param) {
    case M_TRIM_THRESHOLD:
      if (value < 0) return 0;
      PageAlloc::set_max_dirty(static_cast<size_t>(value) / kPageSize);
      return 1;
    case M_MMAP_THRESHOLD:
      if (value < 0 || static_cast<size_t>(value) > (kPageSize << kMaxRunOrder)) return 0;
      __atomic_store_n(&fe::g_mmap_threshold, static_cast<size_t>(value), __ATOMIC_RELAXED);
      return 1;
    default:
      return 0;
  }
}
