// SPDX-License-Identifier: MIT
// cache/export.cc: the statistics area /dev/shm/slub.<pid> (include/slub/stats.h), kept by the
// service thread: created when the process is a second old, a snapshot of every cache once a
// second and on request, commands (refresh, validate, shrink, alloc_calls, free_calls and kfence)
// from tools/slabinfo, removed at exit. Nothing here runs on an allocation path: the fast paths
// only bump their CPU's counters.
//
// The area can never fault the program: its file is created new (O_EXCL, no links followed),
// every page of it that is written has been given real pages first (fallocate), and when any
// step fails the program runs without an area (one line on stderr, if SLUB_EXPORT was asked for
// explicitly). Another user's file at our name is left alone.
#include "cache/export.h"

#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <slub/stats.h>

#include "core/kfence.h"
#include "core/kmalloc.h"
#include "core/merge.h"
#include "core/meta.h"
#include "mm/page_alloc.h"
#include "pal/options.h"
#include "pal/os.h"
#include "pal/process.h"

namespace slub {

namespace {

// Written by the service thread (export_start), read at exit by another thread (export_close)
// and by a fork child (export_forget).
constinit std::atomic<slub_shm*> g_shm{nullptr};
constinit char g_shm_name[48] = {};
constinit int g_shm_pid = 0;
constinit int g_shm_fd = -1;
constinit size_t g_map_bytes = 0;   // mapped (the file may be shorter: only backed parts are used)
constinit size_t g_map_caches = 0;  // cache records the mapping can hold
constinit size_t g_backed_caches = 0;   // cache records the file has real pages for
constinit bool g_tried = false;         // export_start ran (made an area or gave up)
constinit bool g_reply_backed = false;  // the reply region has real pages

constexpr size_t kHeaderBytes = offsetof(slub_shm, caches);
constexpr size_t kGrowCaches = 16;  // the file grows by this many records (15.5 KiB) at a time

// One line on stderr when the area cannot be made, only if the user asked for it by name.
void no_area(const char* what, int err) {
  if (!options::is_set(options::kOptExport)) return;
  os::print("slub: no statistics area for tools/slabinfo: %s /dev/shm%s (%s)\n", what, g_shm_name,
            err != 0 ? strerrordesc_np(err) : "not ours");
}

// Gives the first `caches` records real pages (in steps of kGrowCaches, at most what is
// mapped), so that stores into them can never fault. Returns how many of them are backed:
// fewer when the mapping is smaller or the file system has no room.
size_t back_records(size_t caches) {
  if (caches > g_map_caches) caches = g_map_caches;
  if (caches <= g_backed_caches) return caches;
  size_t want = align_up(caches, kGrowCaches);
  if (want > g_map_caches) want = g_map_caches;
  const size_t from = kHeaderBytes + g_backed_caches * sizeof(slub_shm_cache);
  const size_t to = kHeaderBytes + want * sizeof(slub_shm_cache);
  if (os::back_shm(g_shm_fd, from, to - from)) g_backed_caches = want;
  return caches < g_backed_caches ? caches : g_backed_caches;
}

void fill_cache(slub_shm_cache* out, KmemCache* s) {
  kmem_cache_info info;
  cache_get_info(s, &info);
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", s->name);
  snprintf(out->unique_id, sizeof out->unique_id, "%s", info.unique_id);
  out->nr_aliases = static_cast<uint32_t>(s->nr_aliases);
  for (int i = 0; i < s->nr_aliases && i < SLUB_SHM_MAX_ALIASES; ++i)
    snprintf(out->aliases[i], sizeof out->aliases[i], "%s", s->aliases[i].name);
  out->order = info.order;
  out->flags = s->flags & ~kObjectPoison;
  out->object_size = info.object_size;
  out->slot_size = info.slot_size;
  out->align = s->align;
  out->objs_per_slab = info.objs_per_slab;
  out->objects = info.active_objs;
  out->total_objects = info.total_objs;
  out->slabs = info.nr_slabs;
  out->partial = info.nr_partial;
  out->cpu_slabs = info.nr_cpu_slabs;
  out->min_partial = info.min_partial;
  out->cpu_partial = info.cpu_partial;
  for (int n = 0; n < s->nr_nodes && n < SLUB_SHM_MAX_NODES; ++n) {
    out->node_partial[n] = __atomic_load_n(&s->node[n]->nr_partial, __ATOMIC_RELAXED);
    out->node_slabs[n] = s->node[n]->nr_slabs.load(std::memory_order_relaxed);
    out->node_objects[n] = s->node[n]->total_objects.load(std::memory_order_relaxed);
  }
  cache_stats(s, out->stats);
}

// True if the area at `name` (opened read-only as fd, with *st) is one of ours (this user's
// regular file) that no live process owns: the pid in its name is ours (we make one area per
// process, and have not made it yet), or is gone, or now belongs to a process that started at
// another time than the one that made the area. Never true for another user's file.
bool stale_own_area(int fd, const struct stat& st, int pid) {
  if (!S_ISREG(st.st_mode) || st.st_uid != os::effective_uid()) return false;
  if (pid == os::pid()) return true;
  if (!os::process_exists(pid)) return true;
  slub_shm_header hdr{};
  if (static_cast<size_t>(st.st_size) < sizeof hdr) return false;  // being made right now?
  const void* m = os::map_shared(fd, sizeof hdr, false);
  if (m == nullptr) return false;
  memcpy(&hdr, m, sizeof hdr);
  os::unmap(const_cast<void*>(m), sizeof hdr);
  if (hdr.magic != SLUB_SHM_MAGIC || hdr.start_time == 0) return false;
  const uint64_t now = os::process_start_time(pid);
  return now != 0 && now != hdr.start_time;
}

// Removes this user's areas of processes that are gone (killed before they could remove their
// own). Another user's areas are left alone.
void remove_if_stale(const char* entry, void*) {
  if (strncmp(entry, "slub.", 5) != 0) return;
  char* end = nullptr;
  const long pid = strtol(entry + 5, &end, 10);
  if (end == nullptr || *end != '\0' || pid <= 0 || pid > INT32_MAX || pid == os::pid()) return;
  char name[300];
  snprintf(name, sizeof name, "/%s", entry);
  struct stat st;
  const int fd = os::open_shm_readonly(name, &st);
  if (fd < 0) return;
  const bool stale = stale_own_area(fd, st, static_cast<int>(pid));
  os::close_fd(fd);
  if (stale) os::remove_shm(name);
}

void remove_stale_areas() {
  os::for_each_dir_entry("/dev/shm", remove_if_stale, nullptr);
}

// Creates our area's file: new, or in place of a stale area of ours at the same name (an
// earlier process of this user that had our pid). The descriptor, or -errno.
int create_area_file() {
  int fd = os::create_shm(g_shm_name);
  if (fd != -EEXIST) return fd;
  struct stat st;
  const int old = os::open_shm_readonly(g_shm_name, &st);
  if (old < 0) return old;
  const bool stale = stale_own_area(old, st, os::pid());
  os::close_fd(old);
  if (!stale) return -EEXIST;  // another user's file (planted?), or not a regular file
  os::remove_shm(g_shm_name);
  return os::create_shm(g_shm_name);
}

// fn(s) on the caches named `arg` (every cache if empty), results summed; -1 if none matched.
// slab_mutex is held throughout, so that no cache is destroyed meanwhile.
template <typename F>
int for_caches_named(const char* arg, F fn) {
  LockGuard g(g_slab_mutex);
  int total = 0, matched = 0;
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    bool match = arg[0] == '\0' || strcmp(arg, s->name) == 0;
    for (int i = 0; !match && i < s->nr_aliases; ++i) match = strcmp(arg, s->aliases[i].name) == 0;
    if (!match) continue;
    ++matched;
    total += fn(s);
  }
  return matched == 0 ? -1 : total;
}

// The reply region of text answers, given real pages on first use; nullptr when the mapping
// does not reach it (a tight RLIMIT_AS) or the file system has no room.
char* reply_region(slub_shm* shm) {
  constexpr size_t kOff = offsetof(slub_shm, reply);
  if (kOff + SLUB_SHM_REPLY_BYTES > g_map_bytes) return nullptr;
  if (!g_reply_backed) g_reply_backed = os::back_shm(g_shm_fd, kOff, SLUB_SHM_REPLY_BYTES);
  return g_reply_backed ? shm->reply : nullptr;
}

// Lines appended to the reply; the last bytes are kept for the line that says it was cut.
struct Reply {
  static constexpr size_t kNote = 96;
  char* buf;
  size_t used = 0;
  bool cut = false;
};

// Ends a reply that did not fit with a line that says so; the new length.
size_t note_cut(char* buf, size_t used) {
  const int n = snprintf(buf + used, Reply::kNote, "(cut: the reply holds %u KiB)\n",
                         static_cast<unsigned>(SLUB_SHM_REPLY_BYTES >> 10));
  return n > 0 ? used + static_cast<size_t>(n) : used;
}

bool reply_line(const char* line, size_t len, void* arg) {
  auto* r = static_cast<Reply*>(arg);
  if (r->used + len > SLUB_SHM_REPLY_BYTES - Reply::kNote) {
    r->cut = true;
    return false;
  }
  memcpy(r->buf + r->used, line, len);
  r->used += len;
  return true;
}

// alloc_calls / free_calls of the cache named `arg` (a name or alias) into the reply: its
// length, or a slub_shm_calls_error. The sites are gathered under slab_mutex and named after it
// is released (naming takes the loader's lock). One service thread: one static buffer.
int serve_calls(slub_shm* shm, const char* arg, bool free_calls) {
  static constinit CallSites sites{};
  {
    LockGuard g(g_slab_mutex);
    KmemCache* found = nullptr;
    for (ListHead* h = g_cache_list.next; h != &g_cache_list && found == nullptr; h = h->next) {
      KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
      bool match = strcmp(arg, s->name) == 0;
      for (int i = 0; !match && i < s->nr_aliases; ++i)
        match = strcmp(arg, s->aliases[i].name) == 0;
      if (match) found = s;
    }
    if (found == nullptr) return SLUB_CALLS_NO_CACHE;
    if (!cache_collect_calls_locked(found, free_calls, &sites)) return SLUB_CALLS_NOT_TRACKED;
  }
  char* buf = reply_region(shm);
  if (buf == nullptr) return SLUB_CALLS_NO_ROOM;
  Reply r{buf};
  cache_emit_calls(&sites, reply_line, &r);
  if (r.cut) r.used = note_cut(buf, r.used);
  return static_cast<int>(r.used);
}

// The KFENCE pool's stats and objects (kfence::describe) into the reply: its length, or
// SLUB_CALLS_NO_ROOM. The text always has the stats lines, so a program that knows the command
// never answers 0. describe() writes whole slots and says when the next did not fit (a full
// pool of 255 objects and their stacks is about 100 KiB): the cut note follows then.
int serve_kfence(slub_shm* shm) {
  constexpr size_t kRoom = SLUB_SHM_REPLY_BYTES - Reply::kNote;
  char* buf = reply_region(shm);
  if (buf == nullptr) return SLUB_CALLS_NO_ROOM;
  bool cut = false;
  size_t used = kfence::describe(buf, kRoom, &cut);
  if (cut) used = note_cut(buf, used);
  return static_cast<int>(used);
}

}  // namespace

void export_start() {
  if (g_tried || !options::flag(options::kOptExport)) return;
  g_tried = true;
  remove_stale_areas();
  snprintf(g_shm_name, sizeof g_shm_name, "/slub.%d", static_cast<int>(os::pid()));
  const int fd = create_area_file();
  if (fd < 0) {
    no_area(fd == -EEXIST ? "another user's file (or not a regular file) is at" : "cannot create",
            fd == -EEXIST ? 0 : -fd);
    return;
  }
  // The mapping may be longer than the file; only backed records are ever touched. Under a
  // tight RLIMIT_AS it holds fewer caches.
  g_map_bytes = os::reservation_size(align_up(sizeof(slub_shm), kPageSize), size_t{64} << 10, 64);
  // Records stop at caches[SLUB_SHM_MAX_CACHES]: past it the mapping is the reply region.
  g_map_caches = (g_map_bytes - kHeaderBytes) / sizeof(slub_shm_cache);
  if (g_map_caches > SLUB_SHM_MAX_CACHES) g_map_caches = SLUB_SHM_MAX_CACHES;
  g_shm_fd = fd;
  g_backed_caches = 0;
  g_reply_backed = false;
  auto* shm = static_cast<slub_shm*>(os::map_shared(fd, g_map_bytes, true));
  const int err = errno;
  if (shm == nullptr || !os::back_shm(fd, 0, kHeaderBytes) || back_records(kGrowCaches) == 0) {
    const int e = shm == nullptr ? err : ENOSPC;
    if (shm != nullptr) os::unmap(shm, g_map_bytes);
    os::close_fd(fd);
    g_shm_fd = -1;
    os::remove_shm(g_shm_name);
    no_area("no room for", e);
    return;
  }
  shm->hdr.version = SLUB_SHM_VERSION;
  shm->hdr.pid = static_cast<int32_t>(os::pid());
  shm->hdr.start_time = os::process_start_time();
  os::program_name(shm->hdr.exe, sizeof shm->hdr.exe);
  g_shm_pid = os::pid();
  __atomic_store_n(&shm->hdr.magic, SLUB_SHM_MAGIC, __ATOMIC_RELEASE);  // last: readers check it
  g_shm.store(shm, std::memory_order_release);  // g_shm_name and g_shm_pid with it
}

void export_publish() {
  export_start();  // the first time: make the area
  slub_shm* shm = g_shm.load(std::memory_order_relaxed);
  if (shm == nullptr) return;
  __atomic_fetch_add(&shm->hdr.seq, 1, __ATOMIC_ACQ_REL);  // odd: being written
  uint32_t n = 0, total = 0;
  {
    LockGuard g(g_slab_mutex);  // no cache is destroyed while it is copied
    for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) ++total;
    // Room for every cache, if the file system gives the pages; else as many as it holds.
    const size_t room = back_records(total);
    for (ListHead* h = g_cache_list.next; h != &g_cache_list && n < room; h = h->next)
      fill_cache(&shm->caches[n++], list_entry<KmemCache, &KmemCache::list>(h));
  }
  shm->hdr.nr_caches = n;
  shm->hdr.nr_caches_total = total;
  shm->hdr.nr_cpus_used = static_cast<uint32_t>(nr_used_cpus());
  shm->hdr.nr_cpus = static_cast<uint32_t>(Topology::nr_cpus());
  shm->hdr.nr_nodes = static_cast<uint32_t>(Topology::nr_nodes());
  const PageAllocStats ps = PageAlloc::stats();
  shm->hdr.chunks = ps.chunks;
  shm->hdr.free_pages = ps.free_pages;
  shm->hdr.dirty_pages = ps.dirty_pages;
  shm->hdr.huge_blocks = ps.huge_blocks;
  shm->hdr.huge_bytes = ps.huge_bytes;
  shm->hdr.meta_bytes = meta::bytes_in_use();
  shm->hdr.updated_ns = os::now_ns();
  __atomic_fetch_add(&shm->hdr.seq, 1, __ATOMIC_ACQ_REL);  // even: stable
}

bool export_wait(unsigned ms) {
  slub_shm* shm = g_shm.load(std::memory_order_relaxed);
  if (shm == nullptr) {
    os::sleep_ms(ms);
    return false;
  }
  const uint32_t seen = __atomic_load_n(&shm->hdr.cmd_seq, __ATOMIC_ACQUIRE);
  if (seen == __atomic_load_n(&shm->hdr.done_seq, __ATOMIC_ACQUIRE))
    os::futex_wait(&shm->hdr.cmd_seq, seen, ms);
  return __atomic_load_n(&shm->hdr.cmd_seq, __ATOMIC_ACQUIRE) !=
         __atomic_load_n(&shm->hdr.done_seq, __ATOMIC_ACQUIRE);
}

void export_serve() {
  slub_shm* shm = g_shm.load(std::memory_order_relaxed);
  if (shm == nullptr) return;
  const uint32_t seq = __atomic_load_n(&shm->hdr.cmd_seq, __ATOMIC_ACQUIRE);
  char arg[sizeof shm->hdr.cmd_arg];
  memcpy(arg, shm->hdr.cmd_arg, sizeof arg);
  arg[sizeof arg - 1] = '\0';
  int result = 0;
  const uint32_t cmd = __atomic_load_n(&shm->hdr.cmd, __ATOMIC_ACQUIRE);
  switch (cmd) {
    case SLUB_CMD_VALIDATE:
      result = for_caches_named(arg, [](KmemCache* s) { return cache_validate_locked(s); });
      break;
    case SLUB_CMD_SHRINK:
      result = for_caches_named(arg, [](KmemCache* s) { return cache_shrink_locked(s); });
      break;
    case SLUB_CMD_ALLOC_CALLS:
    case SLUB_CMD_FREE_CALLS:
      result = serve_calls(shm, arg, cmd == SLUB_CMD_FREE_CALLS);
      break;
    case SLUB_CMD_KFENCE:
      result = serve_kfence(shm);
      break;
    default:  // SLUB_CMD_REFRESH and unknown commands: a fresh snapshot
      break;
  }
  export_publish();
  shm->hdr.result = result;
  __atomic_store_n(&shm->hdr.done_seq, seq, __ATOMIC_RELEASE);
  os::futex_wake(&shm->hdr.done_seq);
}

void export_close() {
  if (g_shm.load(std::memory_order_acquire) == nullptr || g_shm_pid != os::pid()) return;
  // Only the name goes: the service thread keeps running until the process is gone and may be
  // writing the area or waiting on its futex right now. The mapping goes with the process.
  os::remove_shm(g_shm_name);
}

void export_forget() {
  // fork child: the mapping and the descriptor are the parent's; drop them without touching
  // the file. The child makes its own area when its service thread has run a second.
  if (slub_shm* shm = g_shm.load(std::memory_order_relaxed)) os::unmap(shm, g_map_bytes);
  g_shm.store(nullptr, std::memory_order_relaxed);
  os::close_fd(g_shm_fd);
  g_shm_fd = -1;
  g_tried = false;
  g_reply_backed = false;
}

// At exit (including exit() from a signal handler of the program): the area goes away.
__attribute__((destructor)) static void export_at_exit() {
  export_close();
}

}  // namespace slub
