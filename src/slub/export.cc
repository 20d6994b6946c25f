// slub/export.cc: the statistics area /dev/shm/slub.<pid> (include/slub/stats.h), kept by the
// flusher thread: created when the thread starts, a snapshot of every cache once a second
// and on request, commands (refresh, validate, shrink) from tools/slabinfo, removed at exit.
// Nothing here runs on an allocation path: the fast paths only bump their CPU's counters.
#include "slub/export.h"

#include <dirent.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <slub/stats.h>

#include "core/kmalloc.h"
#include "core/merge.h"
#include "core/meta.h"
#include "mm/page_alloc.h"
#include "pal/os.h"

namespace slub {

namespace {

// Written by the flusher (export_start), read at exit by another thread (export_close).
constinit std::atomic<slub_shm*> g_shm{nullptr};
constinit char g_shm_name[48] = {};
constinit int g_shm_pid = 0;

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

// Removes the areas of processes that are gone (killed before they could remove their own).
void remove_stale_areas() {
  DIR* d = opendir("/dev/shm");
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    if (strncmp(e->d_name, "slub.", 5) != 0) continue;
    char* end = nullptr;
    long pid = strtol(e->d_name + 5, &end, 10);
    if (end == nullptr || *end != '\0' || pid <= 0 || pid == getpid()) continue;
    char name[300];
    snprintf(name, sizeof name, "/%s", e->d_name);
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) {
      // Alive, but is it the process that made the area, or a later one with its pid?
      const auto* hdr =
          static_cast<const slub_shm_header*>(os::map_shm_readonly(name, sizeof(slub_shm_header)));
      if (hdr == nullptr) continue;
      const bool reused = hdr->magic == SLUB_SHM_MAGIC && hdr->start_time != 0 &&
                          hdr->start_time != os::process_start_time(static_cast<int>(pid));
      os::unmap(const_cast<slub_shm_header*>(hdr), sizeof(slub_shm_header));
      if (!reused) continue;
    }
    os::remove_shm(name);
  }
  closedir(d);
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

}  // namespace

void export_start() {
  if (g_shm.load(std::memory_order_relaxed) != nullptr || os::env_long("SLUB_EXPORT", 1) == 0)
    return;
  remove_stale_areas();
  snprintf(g_shm_name, sizeof g_shm_name, "/slub.%d", static_cast<int>(getpid()));
  auto* shm = static_cast<slub_shm*>(os::create_shm(g_shm_name, sizeof(slub_shm)));
  if (shm == nullptr) return;
  shm->hdr.version = SLUB_SHM_VERSION;
  shm->hdr.pid = static_cast<int32_t>(getpid());
  shm->hdr.start_time = os::process_start_time();
  os::program_name(shm->hdr.exe, sizeof shm->hdr.exe);
  g_shm_pid = getpid();
  __atomic_store_n(&shm->hdr.magic, SLUB_SHM_MAGIC, __ATOMIC_RELEASE);  // last: readers check it
  g_shm.store(shm, std::memory_order_release);  // g_shm_name and g_shm_pid with it
  export_publish();
}

void export_publish() {
  slub_shm* shm = g_shm.load(std::memory_order_relaxed);
  if (shm == nullptr) return;
  __atomic_fetch_add(&shm->hdr.seq, 1, __ATOMIC_ACQ_REL);  // odd: being written
  uint32_t n = 0;
  {
    LockGuard g(g_slab_mutex);  // no cache is destroyed while it is copied
    for (ListHead* h = g_cache_list.next; h != &g_cache_list && n < SLUB_SHM_MAX_CACHES;
         h = h->next)
      fill_cache(&shm->caches[n++], list_entry<KmemCache, &KmemCache::list>(h));
  }
  shm->hdr.nr_caches = n;
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
  switch (__atomic_load_n(&shm->hdr.cmd, __ATOMIC_ACQUIRE)) {
    case SLUB_CMD_VALIDATE:
      result = for_caches_named(arg, [](KmemCache* s) { return cache_validate_locked(s); });
      break;
    case SLUB_CMD_SHRINK:
      result = for_caches_named(arg, [](KmemCache* s) { return cache_shrink_locked(s); });
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
  if (g_shm.load(std::memory_order_acquire) == nullptr || g_shm_pid != getpid()) return;
  // Only the name goes: the flusher thread keeps running until the process is gone and may be
  // writing the area or waiting on its futex right now. The mapping goes with the process.
  os::remove_shm(g_shm_name);
}

void export_forget() {
  // fork child: the mapping is the parent's; drop it without touching the file.
  if (slub_shm* shm = g_shm.load(std::memory_order_relaxed)) os::unmap(shm, sizeof(slub_shm));
  g_shm.store(nullptr, std::memory_order_relaxed);
}

// At exit (including exit() from a signal handler of the program): the area goes away.
__attribute__((destructor)) static void export_at_exit() {
  export_close();
}

}  // namespace slub
