// SPDX-License-Identifier: MIT
// slabinfo: the kernel's tools/mm/slabinfo for programs running with libslub.so.
//
// It reads the statistics area a program exports (/dev/shm/slub.<pid>, include/slub/stats.h)
// instead of /sys/kernel/slab, asks the program for a fresh snapshot first, and can ask it to
// validate or shrink caches. `slabinfo --help` lists everything.
#include <getopt.h>
#include <regex.h>
#include <signal.h>
#include <slub/slub.h>
#include <slub/stats.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/slabinfo_format.h"

#include "area.h"

namespace slabinfo {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitNoProcess = 1;
constexpr int kExitUsage = 2;
constexpr uint64_t kPageSize = 4096;  // slub's page allocator works in 4 KiB pages
constexpr double kRefreshTimeout = 2.0;
constexpr double kCommandTimeout = 30.0;  // validate and shrink walk whole caches

// The counters' names: src/core/slabinfo_format.h (the tool is not linked with slub).
using slub::kStatNames;

struct FlagName {
  uint64_t bit;
  const char* name;
};
constexpr FlagName kFlagNames[] = {
    {SLAB_CONSISTENCY_CHECKS, "CONSISTENCY_CHECKS"},
    {SLAB_RED_ZONE, "RED_ZONE"},
    {SLAB_POISON, "POISON"},
    {SLAB_NO_MERGE, "NO_MERGE"},
    {SLAB_HWCACHE_ALIGN, "HWCACHE_ALIGN"},
    {SLAB_CACHE_DMA, "CACHE_DMA"},
    {SLAB_CACHE_DMA32, "CACHE_DMA32"},
    {SLAB_STORE_USER, "STORE_USER"},
    {SLAB_RECLAIM_ACCOUNT, "RECLAIM_ACCOUNT"},
    {SLAB_PANIC, "PANIC"},
    {SLAB_TYPESAFE_BY_RCU, "TYPESAFE_BY_RCU"},
    {SLAB_TRACE, "TRACE"},
    {SLAB_NOLEAKTRACE, "NOLEAKTRACE"},
    {SLAB_ACCOUNT, "ACCOUNT"},
};

enum class Sort { kName, kSize, kLoss, kActivity, kPartial };

struct Options {
  bool aliases = false, bytes = false, activity_display = false, empty_only = false;
  bool inverted = false, numa = false, shrink = false, totals = false, unreclaim_only = false;
  bool validate = false, zero = false, single_ref = false, proc = false, json = false;
  bool refresh = true;
  Sort sort = Sort::kName;
  long lines = -1;
  std::string report;  // -r CACHE
  bool has_report = false;
  bool tracking = false;                // -t: with -r, alloc_calls and free_calls after the report
  std::string alloc_calls, free_calls;  // --alloc-calls CACHE, --free-calls CACHE
  bool has_alloc_calls = false, has_free_calls = false;
  bool kfence = false;   // --kfence
  double watch = 0;      // --watch N seconds; 0: once
  long iterations = -1;  // --iterations K
  pid_t pid = 0;
  std::string filter;  // extra argument: a cache name or regular expression
  bool has_filter = false;
};

Options opt;
volatile sig_atomic_t g_stop = 0;

void on_signal(int) {
  g_stop = 1;
}

[[noreturn]] void usage_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("slabinfo: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputs("\nTry 'slabinfo --help'.\n", stderr);
  std::exit(kExitUsage);
}

void warn(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("slabinfo: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

void usage() {
  std::printf(
      "slabinfo: the kernel's slabinfo tool for programs running with libslub.so\n"
      "\n"
      "usage: slabinfo [options]                list the processes that can be inspected\n"
      "       slabinfo [options] PID [CACHE]    show the caches of process PID\n"
      "\n"
      "A program running with libslub.so preloaded exports its statistics in\n"
      "/dev/shm/slub.<pid>. slabinfo asks it for a fresh snapshot first (waiting up to 2 s;\n"
      "if it does not answer, the last snapshot is used and its age is shown). CACHE limits\n"
      "the output to the cache of that name (or alias), or else to the caches whose name or\n"
      "alias matches CACHE as an extended regular expression.\n"
      "\n"
      "Without PID: lists pid, executable, number of caches and age of the last snapshot of\n"
      "every area, and removes stale ones (the process has exited, or its pid now belongs to\n"
      "another process: /proc/<pid>/stat start time differs from the area's).\n"
      "\n"
      "Output (one of):\n"
      "  (default)              one line per cache with objects:\n"
      "    Name Objects Objsize Space Slabs/Part/Cpu O/S O %%Fr %%Ef Flg\n"
      "    Space = slabs * (4096 << order); Slabs/Part/Cpu = (slabs - cpu slabs)/partial\n"
      "    slabs/cpu slabs; O/S objects per slab; O order; %%Fr partial slabs per slab;\n"
      "    %%Ef objects * object size / space; Flg: * aliases, d DMA, A hardware cache\n"
      "    aligned, P poison, a reclaim accounted, Z red zone, F consistency checks,\n"
      "    U store user, T trace\n"
      "  -a, --aliases          merged caches: <unique id> <- names ('-i': name -> id)\n"
      "  -D, --display-active   activity line: Objects Alloc Free %%Fast Fallb O CmpX UL\n"
      "  -n, --numa             partial slabs per node\n"
      "  -r, --report=CACHE     full report of a cache (name, alias or regex): sizes, slabs,\n"
      "                         memory, flags, aliases, partial slabs per node, every counter\n"
      "  -t, --tracking         with -r: the report ends with the cache's alloc_calls and\n"
      "                         free_calls (below)\n"
      "      --alloc-calls=CACHE  the live objects of a cache (name, alias or regex) by the\n"
      "                         call site that allocated them, most first, as the kernel's\n"
      "                         /sys/kernel/slab/CACHE/alloc_calls:\n"
      "                         count, function+offset/size [module],\n"
      "                         age=min/avg/max ms, tid=min-max (threads), cpus=list.\n"
      "                         Needs the program to track that cache: SLUB_DEBUG=U,CACHE\n"
      "                         (else one line says so, exit 1). A leak grows here.\n"
      "      --free-calls=CACHE   the same for the free objects, by where they were freed\n"
      "      --kfence           the KFENCE pool (SLUB_KFENCE, SLUB_KFENCE_SAMPLE), as the\n"
      "                         kernel's /sys/kernel/debug/kfence/stats (enabled, currently\n"
      "                         allocated, total allocations and frees, bugs, skipped)\n"
      "                         then .../objects: each used slot (kfence-#N range, size=,\n"
      "                         cache=, its allocation and free stacks); with --json the\n"
      "                         lines as {\"kfence\": [...]}. Exit 1 if the program's\n"
      "                         libslub.so has no KFENCE\n"
      "  -T, --Totals           summary of all caches (the kernel tool's totals)\n"
      "      --proc             /proc/slabinfo (version 2.1) format, every cache\n"
      "      --json             the snapshot as JSON: header fields and every cache with all\n"
      "                         its fields and counters by name (no PID: the process list)\n"
      "\n"
      "Selection and sorting:\n"
      "  -z, --zero             include empty caches\n"
      "  -e, --empty            only empty caches\n"
      "  -U, --Unreclaim        only caches without SLAB_RECLAIM_ACCOUNT\n"
      "  -1, --1ref             with -a, also caches known by a single name\n"
      "  -S, --Size             sort by space, largest first\n"
      "  -L, --Loss             sort by loss (space - objects * object size); the Space column\n"
      "                         shows Loss\n"
      "  -A, --activity         sort by activity (fast and slow allocs and frees)\n"
      "  -P, --partial          sort by number of partial slabs\n"
      "  -i, --inverted         reverse the order (with -a: alias -> id)\n"
      "  -N, --lines=K          only the first K caches\n"
      "  -B, --Bytes            sizes in bytes instead of K/M/G\n"
      "  -l, --slabs            the default table (accepted for the kernel tool's sake)\n"
      "\n"
      "Commands to the program (with CACHE or -r CACHE: that cache, else every cache):\n"
      "  -v, --validate         validate the slabs (kmem_cache_validate); prints the number of\n"
      "                         errors found (the program reports them on its stderr)\n"
      "  -s, --shrink           shrink (kmem_cache_shrink); prints the slabs freed\n"
      "\n"
      "Other:\n"
      "      --watch=N          redisplay every N seconds (like top) until the process exits\n"
      "                         or Ctrl-C; the screen is cleared when output is a terminal\n"
      "      --iterations=K     with --watch: stop after K displays\n"
      "      --no-refresh       do not ask for a fresh snapshot; use the last one published\n"
      "  -h, --help             this text\n"
      "\n"
      "Environment: SLABINFO_SHM_DIR replaces /dev/shm (tests).\n"
      "Exit status: 0 ok, 1 no such process or statistics area (or it did not answer a\n"
      "command, or no cache matched, or the cache does not track calls, or its libslub.so\n"
      "has no KFENCE), 2 usage error.\n");
}

// ---- helpers over a cache record -----------------------------------------------------------

std::string name_of(const slub_shm_cache& c) {
  return field_str(c.name);
}

std::vector<std::string> aliases_of(const slub_shm_cache& c) {
  std::vector<std::string> v;
  const uint32_t n = std::min<uint32_t>(c.nr_aliases, SLUB_SHM_MAX_ALIASES);
  for (uint32_t i = 0; i < n; i++) v.push_back(field_str(c.aliases[i]));
  return v;
}

uint64_t slab_bytes(const slub_shm_cache& c) {
  return c.order < 32 ? kPageSize << c.order : 0;
}
uint64_t space(const slub_shm_cache& c) {
  return c.slabs * slab_bytes(c);
}
uint64_t used(const slub_shm_cache& c) {
  return c.objects * c.object_size;
}
uint64_t loss(const slub_shm_cache& c) {
  return space(c) > used(c) ? space(c) - used(c) : 0;
}
uint64_t stat(const slub_shm_cache& c, slub_stat_item i) {
  return c.stats[i];
}
uint64_t activity(const slub_shm_cache& c) {
  return stat(c, ALLOC_FASTPATH) + stat(c, FREE_FASTPATH) + stat(c, ALLOC_SLOWPATH) +
         stat(c, FREE_SLOWPATH);
}
// Objects in use in node partial slabs (the kernel's objects_partial), estimated from the
// partial slab count: every partial slab is assumed to have the preferred order.
uint64_t partial_objects(const slub_shm_cache& c) {
  const uint64_t capacity = c.partial * c.objs_per_slab;
  const uint64_t free_on_partial = c.total_objects > c.objects ? c.total_objects - c.objects : 0;
  return capacity > free_on_partial ? capacity - free_on_partial : 0;
}

std::string flag_letters(const slub_shm_cache& c) {
  char buf[16];
  slub::format_flags(buf, c.flags, c.nr_aliases > 0);
  return buf;
}

std::string flag_names(uint64_t flags) {
  std::string s;
  for (const FlagName& f : kFlagNames)
    if (flags & f.bit) {
      if (!s.empty()) s += '|';
      s += f.name;
      flags &= ~f.bit;
    }
  if (flags != 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, flags);
    if (!s.empty()) s += '|';
    s += buf;
  }
  return s.empty() ? "none" : s;
}

// The kernel tool's sizes: one decimal and K/M/G above 1000/10^6/10^9, plain with -B.
std::string size_str(uint64_t v) {
  char buf[40];
  if (opt.bytes)
    std::snprintf(buf, sizeof buf, "%" PRIu64, v);
  else
    slub::format_size(buf, sizeof buf, v);
  return buf;
}

std::string age_str(double age_s) {
  if (age_s < 0) return "never";
  char buf[32];
  if (age_s < 100)
    std::snprintf(buf, sizeof buf, "%.1fs", age_s);
  else
    std::snprintf(buf, sizeof buf, "%.0fs", age_s);
  return buf;
}

// ---- selection -----------------------------------------------------------------------------

// Caches named `pattern` (name or alias) if any; else the caches whose name or an alias
// matches it as an extended regular expression. Exits with a usage error on a bad regex.
std::vector<const slub_shm_cache*> match_caches(const Snapshot& s, const std::string& pattern) {
  std::vector<const slub_shm_cache*> out;
  for (const auto& c : s.caches) {
    bool hit = name_of(c) == pattern;
    for (const auto& a : aliases_of(c)) hit = hit || a == pattern;
    if (hit) out.push_back(&c);
  }
  if (!out.empty()) return out;
  regex_t re;
  if (int rc = regcomp(&re, pattern.c_str(), REG_EXTENDED | REG_NOSUB); rc != 0) {
    char msg[128];
    regerror(rc, &re, msg, sizeof msg);
    usage_error("bad cache pattern '%s': %s", pattern.c_str(), msg);
  }
  for (const auto& c : s.caches) {
    bool hit = regexec(&re, name_of(c).c_str(), 0, nullptr, 0) == 0;
    for (const auto& a : aliases_of(c)) hit = hit || regexec(&re, a.c_str(), 0, nullptr, 0) == 0;
    if (hit) out.push_back(&c);
  }
  regfree(&re);
  return out;
}

std::vector<const slub_shm_cache*> all_caches(const Snapshot& s) {
  std::vector<const slub_shm_cache*> out;
  for (const auto& c : s.caches) out.push_back(&c);
  return out;
}

std::vector<const slub_shm_cache*> filtered(const Snapshot& s) {
  return opt.has_filter ? match_caches(s, opt.filter) : all_caches(s);
}

void sort_caches(std::vector<const slub_shm_cache*>& v) {
  auto key = [](const slub_shm_cache& c) -> uint64_t {
    switch (opt.sort) {
      case Sort::kSize:
        return space(c);
      case Sort::kLoss:
        return loss(c);
      case Sort::kActivity:
        return activity(c);
      case Sort::kPartial:
        return c.partial;
      case Sort::kName:
        break;
    }
    return 0;
  };
  std::stable_sort(v.begin(), v.end(), [&](const slub_shm_cache* a, const slub_shm_cache* b) {
    const uint64_t ka = key(*a), kb = key(*b);
    int r;
    if (ka != kb)
      r = ka > kb ? -1 : 1;  // largest first
    else
      r = strcasecmp(field_str(a->name).c_str(), field_str(b->name).c_str());
    return opt.inverted ? r > 0 : r < 0;
  });
}

bool is_empty(const slub_shm_cache& c) {
  return c.slabs == 0 && c.objects == 0;
}

// The caches the tables show: -z all, -e only empty ones, else those with objects or slabs.
std::vector<const slub_shm_cache*> listed(const Snapshot& s) {
  std::vector<const slub_shm_cache*> out;
  for (const slub_shm_cache* c : filtered(s)) {
    if (opt.unreclaim_only && (c->flags & SLAB_RECLAIM_ACCOUNT)) continue;
    if (opt.empty_only ? !is_empty(*c) : (!opt.zero && is_empty(*c))) continue;
    out.push_back(c);
  }
  sort_caches(out);
  if (opt.lines >= 0 && out.size() > static_cast<size_t>(opt.lines)) out.resize(opt.lines);
  return out;
}

// ---- displays ------------------------------------------------------------------------------

void show_table(const Snapshot& s) {
  const auto caches = listed(s);
  if (opt.activity_display)
    std::printf(
        "Name                   Objects      Alloc       Free   %%Fast Fallb O CmpX   UL\n");
  else
    std::printf(
        "Name                   Objects Objsize           %s Slabs/Part/Cpu  O/S O %%Fr "
        "%%Ef Flg\n",
        opt.sort == Sort::kLoss ? " Loss" : "Space");
  for (const slub_shm_cache* cp : caches) {
    const slub_shm_cache& c = *cp;
    const std::string name = name_of(c);
    if (opt.activity_display) {
      const uint64_t total_alloc = stat(c, ALLOC_FASTPATH) + stat(c, ALLOC_SLOWPATH);
      const uint64_t total_free = stat(c, FREE_FASTPATH) + stat(c, FREE_SLOWPATH);
      std::printf("%-21s %8" PRIu64 " %10" PRIu64 " %10" PRIu64 " %3" PRIu64 " %3" PRIu64
                  " %5" PRIu64 " %1u %4" PRIu64 " %4" PRIu64 "\n",
                  name.c_str(), c.objects, total_alloc, total_free,
                  total_alloc ? stat(c, ALLOC_FASTPATH) * 100 / total_alloc : 0,
                  total_free ? stat(c, FREE_FASTPATH) * 100 / total_free : 0,
                  stat(c, ORDER_FALLBACK), c.order, stat(c, CMPXCHG_DOUBLE_FAIL),
                  stat(c, CMPXCHG_DOUBLE_CPU_FAIL));
      continue;
    }
    char dist[64];
    std::snprintf(dist, sizeof dist, "%" PRIu64 "/%" PRIu64 "/%" PRIu64,
                  c.slabs > c.cpu_slabs ? c.slabs - c.cpu_slabs : 0, c.partial, c.cpu_slabs);
    const std::string sz = size_str(opt.sort == Sort::kLoss ? loss(c) : space(c));
    std::printf("%-21s %8" PRIu64 " %7" PRIu64 " %15s %14s %4" PRIu64 " %1u %3" PRIu64 " %3" PRIu64
                " %s\n",
                name.c_str(), c.objects, c.object_size, sz.c_str(), dist, c.objs_per_slab, c.order,
                c.slabs ? c.partial * 100 / c.slabs : 100,
                space(c) ? used(c) * 100 / space(c) : 100, flag_letters(c).c_str());
  }
}

void show_proc(const Snapshot& s) {
  std::printf("slabinfo - version: 2.1\n");
  std::printf(
      "# name            <active_objs> <num_objs> <objsize> <objperslab> "
      "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata "
      "<active_slabs> <num_slabs> <sharedavail>\n");
  for (const slub_shm_cache* c : filtered(s)) {
    std::printf("%-17s %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %4" PRIu64 " %4" PRIu64
                " : tunables %4u %4u %4u : slabdata %6" PRIu64 " %6" PRIu64 " %6u\n",
                name_of(*c).c_str(), c->objects, c->total_objects, c->slot_size, c->objs_per_slab,
                slab_bytes(*c) / kPageSize, 0u, 0u, 0u, c->slabs, c->slabs, 0u);
  }
}

void show_aliases(const Snapshot& s) {
  struct Line {
    std::string target;
    std::vector<std::string> names;
    uint32_t more;
  };
  std::vector<Line> lines;
  for (const slub_shm_cache* c : filtered(s)) {
    if (c->nr_aliases == 0 && !opt.single_ref) continue;
    Line l{field_str(c->unique_id), aliases_of(*c), 0};
    if (l.target.empty()) l.target = name_of(*c);
    l.names.push_back(name_of(*c));
    std::sort(l.names.begin(), l.names.end(), [](const std::string& a, const std::string& b) {
      return strcasecmp(a.c_str(), b.c_str()) < 0;
    });
    l.more = c->nr_aliases > SLUB_SHM_MAX_ALIASES ? c->nr_aliases - SLUB_SHM_MAX_ALIASES : 0;
    lines.push_back(std::move(l));
  }
  if (opt.inverted) {
    std::vector<std::pair<std::string, std::string>> pairs;
    for (const Line& l : lines)
      for (const auto& n : l.names) pairs.emplace_back(n, l.target);
    std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
      return strcasecmp(a.first.c_str(), b.first.c_str()) < 0;
    });
    for (const auto& [n, t] : pairs) std::printf("%-15s -> %s\n", n.c_str(), t.c_str());
    return;
  }
  std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    return strcasecmp(a.target.c_str(), b.target.c_str()) < 0;
  });
  for (const Line& l : lines) {
    std::printf("%-12s <-", l.target.c_str());
    for (const auto& n : l.names) std::printf(" %s", n.c_str());
    if (l.more) std::printf(" (+%u more)", l.more);
    std::printf("\n");
  }
}

void show_numa(const Snapshot& s) {
  const uint32_t nodes = std::clamp<uint32_t>(s.hdr.nr_nodes, 1, SLUB_SHM_MAX_NODES);
  // Per node: all slabs / partial slabs, as the kernel's "N<node>=" values.
  std::printf("%-21s:", "Slabs/partial, node");
  for (uint32_t n = 0; n < nodes; n++) std::printf(" %9u", n);
  std::printf("\n----------------------");
  for (uint32_t n = 0; n < nodes; n++) std::printf("----------");
  std::printf("\n");
  for (const slub_shm_cache* c : listed(s)) {
    std::printf("%-21s ", name_of(*c).c_str());
    for (uint32_t n = 0; n < nodes; n++)
      std::printf(" %4s/%-4s", size_str(c->node_slabs[n]).c_str(),
                  size_str(c->node_partial[n]).c_str());
    std::printf("\n");
  }
}

const char* onoff(bool x) {
  return x ? "On " : "Off";
}

void report(const Snapshot& s, const slub_shm_cache& c) {
  const uint64_t slab = slab_bytes(c);
  std::printf("\nSlabcache: %-15s  Aliases: %2u Order : %2u Objects: %" PRIu64 "\n",
              name_of(c).c_str(), c.nr_aliases, c.order, c.objects);
  if (c.flags & SLAB_HWCACHE_ALIGN) std::printf("** Hardware cacheline aligned\n");
  if (c.flags & (SLAB_CACHE_DMA | SLAB_CACHE_DMA32))
    std::printf("** Memory is allocated in a special DMA zone\n");
  if (c.flags & SLAB_TYPESAFE_BY_RCU) std::printf("** Slabs are destroyed via RCU\n");
  if (c.flags & SLAB_RECLAIM_ACCOUNT) std::printf("** Reclaim accounting active\n");

  const uint64_t full = c.slabs > c.partial + c.cpu_slabs ? c.slabs - c.partial - c.cpu_slabs : 0;
  const uint64_t lpadd =
      slab > c.objs_per_slab * c.slot_size ? (slab - c.objs_per_slab * c.slot_size) * c.slabs : 0;
  std::printf("\nSizes (bytes)     Slabs              Debug                Memory\n");
  std::printf("------------------------------------------------------------------------\n");
  std::printf("Object : %7" PRIu64 "  Total  : %7" PRIu64 "   Sanity Checks : %s  Total: %7" PRIu64
              "\n",
              c.object_size, c.slabs, onoff(c.flags & SLAB_CONSISTENCY_CHECKS), space(c));
  std::printf("SlabObj: %7" PRIu64 "  Full   : %7" PRIu64 "   Redzoning     : %s  Used : %7" PRIu64
              "\n",
              c.slot_size, full, onoff(c.flags & SLAB_RED_ZONE), used(c));
  std::printf("SlabSiz: %7" PRIu64 "  Partial: %7" PRIu64 "   Poisoning     : %s  Loss : %7" PRIu64
              "\n",
              slab, c.partial, onoff(c.flags & SLAB_POISON), loss(c));
  std::printf("Loss   : %7" PRIu64 "  CpuSlab: %7" PRIu64 "   Tracking      : %s  Lalig: %7" PRIu64
              "\n",
              c.slot_size - std::min(c.slot_size, c.object_size), c.cpu_slabs,
              onoff(c.flags & SLAB_STORE_USER),
              (c.slot_size - std::min(c.slot_size, c.object_size)) * c.objects);
  std::printf("Align  : %7" PRIu64 "  Objects: %7" PRIu64 "   Tracing       : %s  Lpadd: %7" PRIu64
              "\n",
              c.align, c.objs_per_slab, onoff(c.flags & SLAB_TRACE), lpadd);

  std::printf("\nUnique id    : %s\n", field_str(c.unique_id).c_str());
  std::printf("Aliases      :");
  if (c.nr_aliases == 0) std::printf(" none");
  for (const auto& a : aliases_of(c)) std::printf(" %s", a.c_str());
  if (c.nr_aliases > SLUB_SHM_MAX_ALIASES)
    std::printf(" (+%u more)", c.nr_aliases - SLUB_SHM_MAX_ALIASES);
  std::printf("\nFlags        : 0x%08" PRIx64 " %s\n", c.flags, flag_names(c.flags).c_str());
  std::printf("Objects      : %" PRIu64 " in use of %" PRIu64
              " (free on node partial lists: %" PRIu64 ")\n",
              c.objects, c.total_objects, c.total_objects - std::min(c.total_objects, c.objects));
  std::printf("Tunables     : min_partial %" PRIu64 "  cpu_partial %" PRIu64 "\n", c.min_partial,
              c.cpu_partial);

  const uint32_t nodes = std::clamp<uint32_t>(s.hdr.nr_nodes, 1, SLUB_SHM_MAX_NODES);
  std::printf("\n%-21s:", "NUMA nodes");
  for (uint32_t n = 0; n < nodes; n++) std::printf(" %4u", n);
  std::printf("\n----------------------");
  for (uint32_t n = 0; n < nodes; n++) std::printf("-----");
  std::printf("\n%-21s ", "All slabs");
  for (uint32_t n = 0; n < nodes; n++) std::printf(" %4s", size_str(c.node_slabs[n]).c_str());
  std::printf("\n%-21s ", "Partial slabs");
  for (uint32_t n = 0; n < nodes; n++) std::printf(" %4s", size_str(c.node_partial[n]).c_str());
  std::printf("\n%-21s ", "Objects");
  for (uint32_t n = 0; n < nodes; n++) std::printf(" %4s", size_str(c.node_objects[n]).c_str());
  std::printf("\n");

  // The kernel tool's performance tables.
  const uint64_t total_alloc = stat(c, ALLOC_FASTPATH) + stat(c, ALLOC_SLOWPATH);
  const uint64_t total_free = stat(c, FREE_FASTPATH) + stat(c, FREE_SLOWPATH);
  if (stat(c, ALLOC_SLAB) != 0 && total_alloc != 0) {
    auto row = [&](const char* label, uint64_t a, uint64_t f) {
      std::printf("%-20s %8" PRIu64 " %8" PRIu64 " %3" PRIu64 " %3" PRIu64 "\n", label, a, f,
                  a * 100 / total_alloc, total_free ? f * 100 / total_free : 0);
    };
    std::printf("\nSlab Perf Counter       Alloc     Free %%Al %%Fr\n");
    std::printf("--------------------------------------------------\n");
    row("Fastpath", stat(c, ALLOC_FASTPATH), stat(c, FREE_FASTPATH));
    row("Slowpath", stat(c, ALLOC_SLOWPATH), stat(c, FREE_SLOWPATH));
    row("Page Alloc", stat(c, ALLOC_SLAB), stat(c, FREE_SLAB));
    row("Add partial", stat(c, DEACTIVATE_TO_HEAD) + stat(c, DEACTIVATE_TO_TAIL),
        stat(c, FREE_ADD_PARTIAL));
    row("Remove partial", stat(c, ALLOC_FROM_PARTIAL), stat(c, FREE_REMOVE_PARTIAL));
    row("Cpu partial list", stat(c, CPU_PARTIAL_ALLOC), stat(c, CPU_PARTIAL_FREE));
    row("RemoteObj/SlabFrozen", stat(c, DEACTIVATE_REMOTE_FREES), stat(c, FREE_FROZEN));
    std::printf("%-20s %8" PRIu64 " %8" PRIu64 "\n\n", "Total", total_alloc, total_free);
    if (stat(c, CPUSLAB_FLUSH)) std::printf("Flushes %8" PRIu64 "\n", stat(c, CPUSLAB_FLUSH));
    const uint64_t total = stat(c, DEACTIVATE_FULL) + stat(c, DEACTIVATE_EMPTY) +
                           stat(c, DEACTIVATE_TO_HEAD) + stat(c, DEACTIVATE_TO_TAIL) +
                           stat(c, DEACTIVATE_BYPASS);
    if (total != 0) {
      auto drow = [&](const char* label, uint64_t v) {
        std::printf("%-29s %7" PRIu64 "  %3" PRIu64 "%%\n", label, v, v * 100 / total);
      };
      std::printf("\nSlab Deactivation             Occurrences %%\n");
      std::printf("-------------------------------------------------\n");
      drow("Slab full", stat(c, DEACTIVATE_FULL));
      drow("Slab empty", stat(c, DEACTIVATE_EMPTY));
      drow("Moved to head of partial list", stat(c, DEACTIVATE_TO_HEAD));
      drow("Moved to tail of partial list", stat(c, DEACTIVATE_TO_TAIL));
      drow("Deactivation bypass", stat(c, DEACTIVATE_BYPASS));
      drow("Refilled from foreign frees", stat(c, ALLOC_REFILL));
      drow("Node mismatch", stat(c, ALLOC_NODE_MISMATCH));
    }
    if (stat(c, CMPXCHG_DOUBLE_FAIL) || stat(c, CMPXCHG_DOUBLE_CPU_FAIL)) {
      std::printf("\nCmpxchg_double Looping\n------------------------\n");
      std::printf("Locked Cmpxchg Double redos   %" PRIu64
                  "\nUnlocked Cmpxchg Double redos %" PRIu64 "\n",
                  stat(c, CMPXCHG_DOUBLE_FAIL), stat(c, CMPXCHG_DOUBLE_CPU_FAIL));
    }
  }

  std::printf("\nCounter                           Value\n");
  std::printf("----------------------------------------\n");
  for (int i = 0; i < NR_SLUB_STAT_ITEMS; i++)
    std::printf("%-25s %14" PRIu64 "\n", kStatNames[i], c.stats[i]);
}

// The kernel tool's totals (-T), over the caches that have slabs and objects.
void show_totals(const Snapshot& s) {
  struct MinMax {
    uint64_t min = UINT64_MAX, max = 0, total = 0;
    void add(uint64_t v) {
      min = std::min(min, v);
      max = std::max(max, v);
      total += v;
    }
  };
  MinMax objsize, partial, slabs, size, usedb, waste, objects, objwaste, memobj, ppart, partobj,
      ppartobj;
  uint64_t total_objwaste = 0, total_memobj = 0;
  uint64_t active = 0, nr_aliases = 0, alias_targets = 0;
  const auto caches = filtered(s);
  for (const slub_shm_cache* cp : caches) {
    const slub_shm_cache& c = *cp;
    if (field_str(c.unique_id).starts_with(":")) {
      // As in sysfs: a mergeable cache is a ':' target with every name a link to it.
      alias_targets++;
      nr_aliases += c.nr_aliases + 1;
    }
    if (c.slabs == 0 || c.objects == 0) continue;
    active++;
    const uint64_t ow = c.slot_size - std::min(c.slot_size, c.object_size);
    const uint64_t po = partial_objects(c);
    objsize.add(c.object_size);
    partial.add(c.partial);
    slabs.add(c.slabs);
    size.add(space(c));
    usedb.add(used(c));
    waste.add(loss(c));
    objects.add(c.objects);
    objwaste.add(ow);
    memobj.add(c.slot_size);
    ppart.add(std::min<uint64_t>(100, c.partial * 100 / c.slabs));
    partobj.add(po);
    ppartobj.add(std::min<uint64_t>(100, po * 100 / c.objects));
    total_objwaste += c.objects * ow;
    total_memobj += c.objects * c.slot_size;
  }
  if (objects.total == 0) {
    std::printf("No objects\n");
    return;
  }
  auto S = [](uint64_t v) { return size_str(v); };
  std::printf("Slabcache Totals\n");
  std::printf("----------------\n");
  std::printf("Slabcaches : %15zu   Aliases  : %11" PRIu64 "->%-3" PRIu64 "  Active:    %3" PRIu64
              "\n",
              caches.size(), nr_aliases, alias_targets, active);
  std::printf("Memory used: %15s   # Loss   : %15s   MRatio:%6s%%\n", S(size.total).c_str(),
              S(waste.total).c_str(), S(usedb.total ? waste.total * 100 / usedb.total : 0).c_str());
  std::printf("# Objects  : %15s   # PartObj: %15s   ORatio:%6s%%\n", S(objects.total).c_str(),
              S(partobj.total).c_str(), S(partobj.total * 100 / objects.total).c_str());

  auto row4 = [&](const char* label, const MinMax& m, uint64_t total, const char* pct) {
    const char* last = *pct == '%' ? "%" : "";  // no trailing blank
    std::printf("%s%15s%s %15s%s %15s%s %15s%s\n", label, S(m.total / active).c_str(), pct,
                S(m.min).c_str(), pct, S(m.max).c_str(), pct, S(total).c_str(), last);
  };
  std::printf("\nPer Cache         Average              Min              Max            Total\n");
  std::printf("---------------------------------------------------------------------------\n");
  row4("#Objects  ", objects, objects.total, " ");
  row4("#Slabs    ", slabs, slabs.total, " ");
  row4("#PartSlab ", partial, partial.total, " ");
  row4("%PartSlab", ppart, partial.total * 100 / slabs.total, "%");
  row4("PartObjs  ", partobj, partobj.total, " ");
  row4("% PartObj", ppartobj, partobj.total * 100 / objects.total, "%");
  row4("Memory    ", size, size.total, " ");
  row4("Used      ", usedb, usedb.total, " ");
  row4("Loss      ", waste, waste.total, " ");

  std::printf("\nPer Object        Average              Min              Max\n");
  std::printf("-----------------------------------------------------------\n");
  std::printf("Memory    %15s  %15s  %15s\n", S(total_memobj / objects.total).c_str(),
              S(memobj.min).c_str(), S(memobj.max).c_str());
  std::printf("User      %15s  %15s  %15s\n", S(usedb.total / objects.total).c_str(),
              S(objsize.min).c_str(), S(objsize.max).c_str());
  std::printf("Loss      %15s  %15s  %15s\n", S(total_objwaste / objects.total).c_str(),
              S(objwaste.min).c_str(), S(objwaste.max).c_str());
}

using ordered_json = nlohmann::ordered_json;

ordered_json cache_json(const Snapshot& s, const slub_shm_cache& c) {
  ordered_json j;
  j["name"] = name_of(c);
  j["unique_id"] = field_str(c.unique_id);
  j["aliases"] = aliases_of(c);
  j["nr_aliases"] = c.nr_aliases;
  j["order"] = c.order;
  j["flags"] = c.flags;
  j["flag_letters"] = flag_letters(c);
  j["object_size"] = c.object_size;
  j["slot_size"] = c.slot_size;
  j["align"] = c.align;
  j["objs_per_slab"] = c.objs_per_slab;
  j["objects"] = c.objects;
  j["total_objects"] = c.total_objects;
  j["slabs"] = c.slabs;
  j["partial"] = c.partial;
  j["cpu_slabs"] = c.cpu_slabs;
  j["min_partial"] = c.min_partial;
  j["cpu_partial"] = c.cpu_partial;
  const uint32_t nodes = std::clamp<uint32_t>(s.hdr.nr_nodes, 1, SLUB_SHM_MAX_NODES);
  j["node_partial"] = std::vector<uint64_t>(c.node_partial, c.node_partial + nodes);
  j["node_slabs"] = std::vector<uint64_t>(c.node_slabs, c.node_slabs + nodes);
  j["node_objects"] = std::vector<uint64_t>(c.node_objects, c.node_objects + nodes);
  j["space"] = space(c);
  ordered_json st = ordered_json::object();
  for (int i = 0; i < NR_SLUB_STAT_ITEMS; i++) st[kStatNames[i]] = c.stats[i];
  j["stats"] = st;
  return j;
}

void print_json(const ordered_json& j) {
  std::printf("%s\n", j.dump(2, ' ', false, ordered_json::error_handler_t::replace).c_str());
}

void show_json(const Snapshot& s, bool fresh) {
  const slub_shm_header& h = s.hdr;
  ordered_json j;
  j["version"] = h.version;
  j["pid"] = h.pid;
  j["exe"] = field_str(h.exe);
  j["start_time"] = h.start_time;
  j["seq"] = h.seq;
  j["updated_ns"] = h.updated_ns;
  j["age_s"] = s.age_s;
  j["fresh"] = fresh;
  j["nr_caches"] = h.nr_caches;
  j["nr_cpus_used"] = h.nr_cpus_used;
  j["nr_cpus"] = h.nr_cpus;
  j["nr_nodes"] = h.nr_nodes;
  j["chunks"] = h.chunks;
  j["free_pages"] = h.free_pages;
  j["dirty_pages"] = h.dirty_pages;
  j["huge_blocks"] = h.huge_blocks;
  j["huge_bytes"] = h.huge_bytes;
  j["meta_bytes"] = h.meta_bytes;
  ordered_json caches = ordered_json::array();
  for (const slub_shm_cache* c : filtered(s)) caches.push_back(cache_json(s, *c));
  j["caches"] = caches;
  print_json(j);
}

// ---- process list --------------------------------------------------------------------------

int list_processes() {
  const auto areas = scan_areas();
  ordered_json procs = ordered_json::array(), removed = ordered_json::array();
  std::vector<const AreaInfo*> live;
  for (const AreaInfo& a : areas) {
    if (!a.stale) {
      live.push_back(&a);
      continue;
    }
    if (a.uid != geteuid()) continue;  // another user's stale area is theirs to remove
    if (unlink(a.path.c_str()) != 0 && errno != ENOENT) {
      warn("cannot remove stale area %s (%s): %s", a.path.c_str(), a.stale_reason.c_str(),
           std::strerror(errno));
      continue;
    }
    if (opt.json)
      removed.push_back({{"pid", a.pid}, {"path", a.path}, {"reason", a.stale_reason}});
    else
      std::printf("removed stale area %s: %s\n", a.path.c_str(), a.stale_reason.c_str());
  }
  if (opt.json) {
    for (const AreaInfo* a : live) {
      ordered_json p{{"pid", a->pid},
                     {"exe", a->exe},
                     {"caches", a->nr_caches},
                     {"age_s", a->age_s},
                     {"path", a->path}};
      if (!a->valid) p["error"] = a->error;
      procs.push_back(p);
    }
    print_json(ordered_json{{"processes", procs}, {"removed", removed}});
    return kExitOk;
  }
  if (live.empty()) {
    std::printf("no process exports slub statistics (%s/slub.<pid>)\n", shm_dir().c_str());
    return kExitOk;
  }
  std::printf("%8s %7s %8s  %s\n", "PID", "CACHES", "UPDATED", "EXE");
  for (const AreaInfo* a : live) {
    if (a->valid)
      std::printf("%8d %7u %8s  %s\n", a->pid, a->nr_caches, age_str(a->age_s).c_str(),
                  a->exe.c_str());
    else
      std::printf("%8d %7s %8s  (%s)\n", a->pid, "-", "-", a->error.c_str());
  }
  return kExitOk;
}

// ---- talking to the program ----------------------------------------------------------------

// Asks for a fresh snapshot and copies it. `fresh` tells whether the program answered.
bool take_snapshot(Area& area, Snapshot& s, bool& fresh, bool quiet) {
  fresh = false;
  std::string err;
  if (opt.refresh) {
    int32_t result = 0;
    if (area.command(SLUB_CMD_REFRESH, "", kRefreshTimeout, result, err))
      fresh = true;
    else if (!quiet)
      warn("%s; using the last snapshot", err.c_str());
  }
  if (!area.snapshot(s, err)) {
    warn("%s", err.c_str());
    return false;
  }
  if (!fresh && !quiet && opt.refresh)
    warn("the snapshot is %s old", s.age_s < 0 ? "(never written)" : age_str(s.age_s).c_str());
  return true;
}

int run_commands(Area& area) {
  Snapshot s;
  bool fresh;
  if (!take_snapshot(area, s, fresh, true)) return kExitNoProcess;
  // Targets: -r CACHE, else the extra argument, else every cache (empty argument).
  std::vector<std::string> targets;
  const std::string* pattern = opt.has_report   ? &opt.report
                               : opt.has_filter ? &opt.filter
                                                : nullptr;
  if (pattern != nullptr) {
    for (const slub_shm_cache* c : match_caches(s, *pattern)) targets.push_back(name_of(*c));
    if (targets.empty()) {
      warn("no cache matches '%s' in process %d", pattern->c_str(), opt.pid);
      return kExitNoProcess;
    }
  } else {
    targets.push_back("");
  }
  ordered_json out = ordered_json::array();
  int rc = kExitOk;
  struct Cmd {
    bool on;
    uint32_t code;
    const char* name;
    const char* unit;
  };
  const Cmd cmds[] = {{opt.validate, SLUB_CMD_VALIDATE, "validate", "errors"},
                      {opt.shrink, SLUB_CMD_SHRINK, "shrink", "slabs freed"}};
  for (const Cmd& cmd : cmds) {
    if (!cmd.on) continue;
    for (const std::string& t : targets) {
      int32_t result = 0;
      std::string err;
      const std::string label = t.empty() ? "all caches" : t;
      if (!area.command(cmd.code, t, kCommandTimeout, result, err)) {
        warn("%s %s: %s", cmd.name, label.c_str(), err.c_str());
        return kExitNoProcess;
      }
      if (opt.json) {
        out.push_back({{"command", cmd.name}, {"cache", t}, {"result", result}});
      } else if (result < 0) {
        std::printf("%s: %s: failed (%d)\n", cmd.name, label.c_str(), result);
      } else {
        std::printf("%s: %s: %d %s\n", cmd.name, label.c_str(), result, cmd.unit);
      }
      if (result < 0) rc = kExitNoProcess;
    }
  }
  if (opt.json) print_json(out);
  return rc;
}

// A text answer of the program as a JSON array of its lines, without their leading blanks (the
// columns' padding).
ordered_json json_lines(const std::string& text) {
  ordered_json lines = ordered_json::array();
  std::string line;
  for (char ch : text) {
    if (ch != '\n') {
      line += ch;
      continue;
    }
    const size_t from = line.find_first_not_of(' ');
    lines.push_back(from == std::string::npos ? "" : line.substr(from));
    line.clear();
  }
  return lines;
}

// alloc_calls or free_calls of each cache `pattern` matches, asked of the program. With several
// caches each one's lines follow a "# alloc_calls of NAME" line; "No data" when there is none
// (as the kernel's file says).
int show_calls(Area& area, const Snapshot& s, const std::string& pattern, bool free_calls,
               ordered_json* json_out) {
  const char* what = free_calls ? "free_calls" : "alloc_calls";
  const auto caches = match_caches(s, pattern);
  if (caches.empty()) {
    warn("no cache matches '%s' in process %d", pattern.c_str(), opt.pid);
    return kExitNoProcess;
  }
  for (const slub_shm_cache* c : caches) {
    const std::string name = name_of(*c);
    int32_t result = 0;
    std::string err, text;
    if (!area.command(free_calls ? SLUB_CMD_FREE_CALLS : SLUB_CMD_ALLOC_CALLS, name,
                      kCommandTimeout, result, err)) {
      warn("%s of %s: %s", what, name.c_str(), err.c_str());
      return kExitNoProcess;
    }
    switch (result) {
      case SLUB_CALLS_NO_CACHE:
        warn("%s: cache '%s' is gone from process %d", what, name.c_str(), opt.pid);
        return kExitNoProcess;
      case SLUB_CALLS_NOT_TRACKED:
        warn(
            "%s: cache '%s' of process %d does not track its callers (run it with "
            "SLUB_DEBUG=U,%s)",
            what, name.c_str(), opt.pid, name.c_str());
        return kExitNoProcess;
      case SLUB_CALLS_NO_ROOM:
        warn("%s of %s: process %d has no room for the answer in %s", what, name.c_str(), opt.pid,
             area_path(opt.pid).c_str());
        return kExitNoProcess;
      default:
        break;
    }
    if (result < 0 || !area.reply(result, text, err)) {
      warn("%s of %s: %s", what, name.c_str(), result < 0 ? "bad answer" : err.c_str());
      return kExitNoProcess;
    }
    if (json_out != nullptr) {
      json_out->push_back({{"cache", name}, {what, json_lines(text)}});
      continue;
    }
    if (caches.size() > 1 || opt.tracking) std::printf("\n# %s of %s\n", what, name.c_str());
    std::fputs(text.empty() ? "No data\n" : text.c_str(), stdout);
  }
  return kExitOk;
}

int run_calls(Area& area) {
  Snapshot s;
  bool fresh;
  if (!take_snapshot(area, s, fresh, true)) return kExitNoProcess;
  ordered_json out = ordered_json::array();
  ordered_json* j = opt.json ? &out : nullptr;
  int rc = kExitOk;
  if (opt.has_alloc_calls) rc = show_calls(area, s, opt.alloc_calls, false, j);
  if (rc == kExitOk && opt.has_free_calls) rc = show_calls(area, s, opt.free_calls, true, j);
  if (rc == kExitOk && opt.json) print_json(out);
  return rc;
}

// --kfence: the program's KFENCE stats and objects, as its kfence::describe() wrote them. A
// program whose library predates the command takes it for a refresh and answers 0 bytes.
int show_kfence(Area& area) {
  int32_t result = 0;
  std::string err, text;
  if (!area.command(SLUB_CMD_KFENCE, "", kCommandTimeout, result, err)) {
    warn("kfence: %s", err.c_str());
    return kExitNoProcess;
  }
  if (result == SLUB_CALLS_NO_ROOM) {
    warn("kfence: process %d has no room for the answer in %s", opt.pid,
         area_path(opt.pid).c_str());
    return kExitNoProcess;
  }
  if (result == 0) {
    warn("kfence: process %d does not answer the command (its libslub.so has no KFENCE)", opt.pid);
    return kExitNoProcess;
  }
  if (result < 0 || !area.reply(result, text, err)) {
    warn("kfence: %s", result < 0 ? "bad answer" : err.c_str());
    return kExitNoProcess;
  }
  if (!opt.json) {
    std::fputs(text.c_str(), stdout);
    return kExitOk;
  }
  print_json(ordered_json{{"kfence", json_lines(text)}});
  return kExitOk;
}

int display(Area& area, const Snapshot& s, bool fresh) {
  // CACHE that names nothing: one line and status 1, whatever the view (the help says so).
  if (opt.has_filter && match_caches(s, opt.filter).empty()) {
    warn("no cache matches '%s' in process %d", opt.filter.c_str(), opt.pid);
    return kExitNoProcess;
  }
  if (opt.json) {
    show_json(s, fresh);
  } else if (opt.proc) {
    show_proc(s);
  } else if (opt.aliases) {
    show_aliases(s);
  } else if (opt.totals) {
    show_totals(s);
  } else if (opt.has_report) {
    const auto caches = match_caches(s, opt.report);
    if (caches.empty()) {
      warn("no cache matches '%s' in process %d", opt.report.c_str(), opt.pid);
      return kExitNoProcess;
    }
    for (const slub_shm_cache* c : caches) {
      report(s, *c);
      if (!opt.tracking) continue;
      for (const bool free_calls : {false, true})
        if (const int rc = show_calls(area, s, name_of(*c), free_calls, nullptr); rc != kExitOk)
          return rc;
    }
  } else if (opt.numa) {
    show_numa(s);
  } else {
    show_table(s);
  }
  return kExitOk;
}

int inspect() {
  Area area;
  std::string err;
  const bool calls = opt.has_alloc_calls || opt.has_free_calls || opt.tracking || opt.kfence;
  if (!area.open(opt.pid, opt.refresh || opt.validate || opt.shrink || calls, err)) {
    warn("%s", err.c_str());
    return kExitNoProcess;
  }
  // An area whose process is gone, or whose pid was reused, is stale.
  {
    Snapshot s;
    if (!area.snapshot(s, err)) {
      warn("%s", err.c_str());
      return kExitNoProcess;
    }
    const uint64_t now_start = proc_start_time(opt.pid);
    if (!pid_alive(opt.pid) ||
        (s.hdr.start_time != 0 && now_start != 0 && now_start != s.hdr.start_time)) {
      warn("%s is stale: process %d %s (run slabinfo without a pid to remove stale areas)",
           area_path(opt.pid).c_str(), opt.pid,
           pid_alive(opt.pid) ? "is another process now" : "no longer exists");
      return kExitNoProcess;
    }
  }
  if (opt.validate || opt.shrink) return run_commands(area);
  if (opt.has_alloc_calls || opt.has_free_calls) return run_calls(area);
  if (opt.kfence) return show_kfence(area);

  if (opt.watch <= 0) {
    Snapshot s;
    bool fresh;
    if (!take_snapshot(area, s, fresh, false)) return kExitNoProcess;
    return display(area, s, fresh);
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const bool tty = isatty(STDOUT_FILENO);
  for (long i = 0; !g_stop && (opt.iterations < 0 || i < opt.iterations); i++) {
    if (i > 0) {
      timespec ts{static_cast<time_t>(opt.watch),
                  static_cast<long>((opt.watch - static_cast<time_t>(opt.watch)) * 1e9)};
      while (!g_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
      }
      if (g_stop) break;
    }
    if (!pid_alive(opt.pid) || access(area_path(opt.pid).c_str(), F_OK) != 0) {
      std::printf("slabinfo: process %d has exited\n", opt.pid);
      break;
    }
    Snapshot s;
    bool fresh;
    if (!take_snapshot(area, s, fresh, true)) return kExitNoProcess;
    if (tty) std::printf("\033[H\033[2J");
    char when[16];
    const time_t now = time(nullptr);
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    std::printf("slabinfo: pid %d (%s), %u caches, every %gs, %s%s\n", opt.pid,
                field_str(s.hdr.exe).c_str(), s.hdr.nr_caches, opt.watch, when,
                fresh ? "" : (" (no answer; snapshot " + age_str(s.age_s) + " old)").c_str());
    const int rc = display(area, s, fresh);
    std::fflush(stdout);
    if (rc != kExitOk) return rc;
  }
  return kExitOk;
}

long parse_long(const char* what, const char* s, long min) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min)
    usage_error("%s must be an integer >= %ld, not '%s'", what, min, s);
  return v;
}

void parse_args(int argc, char** argv) {
  enum { kProc = 1000, kJson, kWatch, kIterations, kNoRefresh, kAllocCalls, kFreeCalls, kKfence };
  static const option longopts[] = {
      {"aliases", no_argument, nullptr, 'a'},
      {"activity", no_argument, nullptr, 'A'},
      {"Bytes", no_argument, nullptr, 'B'},
      {"display-active", no_argument, nullptr, 'D'},
      {"empty", no_argument, nullptr, 'e'},
      {"help", no_argument, nullptr, 'h'},
      {"inverted", no_argument, nullptr, 'i'},
      {"slabs", no_argument, nullptr, 'l'},
      {"Loss", no_argument, nullptr, 'L'},
      {"numa", no_argument, nullptr, 'n'},
      {"lines", required_argument, nullptr, 'N'},
      {"partial", no_argument, nullptr, 'P'},
      {"report", required_argument, nullptr, 'r'},
      {"shrink", no_argument, nullptr, 's'},
      {"tracking", no_argument, nullptr, 't'},
      {"alloc-calls", required_argument, nullptr, kAllocCalls},
      {"free-calls", required_argument, nullptr, kFreeCalls},
      {"kfence", no_argument, nullptr, kKfence},
      {"Size", no_argument, nullptr, 'S'},
      {"Totals", no_argument, nullptr, 'T'},
      {"Unreclaim", no_argument, nullptr, 'U'},
      {"validate", no_argument, nullptr, 'v'},
      {"zero", no_argument, nullptr, 'z'},
      {"1ref", no_argument, nullptr, '1'},
      {"proc", no_argument, nullptr, kProc},
      {"json", no_argument, nullptr, kJson},
      {"watch", required_argument, nullptr, kWatch},
      {"iterations", required_argument, nullptr, kIterations},
      {"no-refresh", no_argument, nullptr, kNoRefresh},
      {nullptr, 0, nullptr, 0},
  };
  int sorts = 0;
  opterr = 0;
  for (;;) {
    const int c = getopt_long(argc, argv, ":aABDehilLnN:Pr:sStTUvz1", longopts, nullptr);
    if (c == -1) break;
    switch (c) {
      case 'a':
        opt.aliases = true;
        break;
      case 'A':
        opt.sort = Sort::kActivity;
        sorts++;
        break;
      case 'B':
        opt.bytes = true;
        break;
      case 'D':
        opt.activity_display = true;
        break;
      case 'e':
        opt.empty_only = true;
        break;
      case 'h':
        usage();
        std::exit(kExitOk);
      case 'i':
        opt.inverted = true;
        break;
      case 'l':
        break;
      case 'L':
        opt.sort = Sort::kLoss;
        sorts++;
        break;
      case 'n':
        opt.numa = true;
        break;
      case 'N':
        opt.lines = parse_long("--lines", optarg, 0);
        break;
      case 'P':
        opt.sort = Sort::kPartial;
        sorts++;
        break;
      case 'r':
        opt.report = optarg;
        opt.has_report = true;
        break;
      case 's':
        opt.shrink = true;
        break;
      case 't':
        opt.tracking = true;
        break;
      case kAllocCalls:
        opt.alloc_calls = optarg;
        opt.has_alloc_calls = true;
        break;
      case kFreeCalls:
        opt.free_calls = optarg;
        opt.has_free_calls = true;
        break;
      case kKfence:
        opt.kfence = true;
        break;
      case 'S':
        opt.sort = Sort::kSize;
        sorts++;
        break;
      case 'T':
        opt.totals = true;
        break;
      case 'U':
        opt.unreclaim_only = true;
        break;
      case 'v':
        opt.validate = true;
        break;
      case 'z':
        opt.zero = true;
        break;
      case '1':
        opt.single_ref = true;
        break;
      case kProc:
        opt.proc = true;
        break;
      case kJson:
        opt.json = true;
        break;
      case kWatch: {
        char* end = nullptr;
        opt.watch = std::strtod(optarg, &end);
        if (end == optarg || *end != '\0' || !(opt.watch >= 0.1) || opt.watch > 86400)
          usage_error("--watch needs a number of seconds (0.1 to 86400), not '%s'", optarg);
        break;
      }
      case kIterations:
        opt.iterations = parse_long("--iterations", optarg, 1);
        break;
      case kNoRefresh:
        opt.refresh = false;
        break;
      case ':':
        usage_error("option '%s' needs an argument", argv[optind - 1]);
      default:
        if (optopt != 0)
          usage_error("unknown option '-%c'", optopt);
        else
          usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (sorts > 1) usage_error("sorting options (-S, -L, -A, -P) are mutually exclusive");
  if (opt.proc + opt.json + opt.aliases + opt.totals + opt.numa + opt.activity_display > 1)
    usage_error("choose one of --proc, --json, -a, -T, -n, -D");
  if (opt.iterations > 0 && opt.watch <= 0) usage_error("--iterations needs --watch");
  const int rest = argc - optind;
  if (opt.tracking && !opt.has_report) usage_error("-t (--tracking) goes with -r CACHE");
  const bool calls = opt.has_alloc_calls || opt.has_free_calls;
  if (calls && (opt.validate || opt.shrink || opt.watch > 0 || opt.has_report))
    usage_error("--alloc-calls and --free-calls go alone (with --json at most)");
  if (calls &&
      (opt.proc || opt.aliases || opt.totals || opt.numa || opt.activity_display || rest == 2))
    usage_error("--alloc-calls and --free-calls go alone (with --json at most)");
  if (opt.kfence &&
      (calls || opt.validate || opt.shrink || opt.watch > 0 || opt.has_report || opt.proc ||
       opt.aliases || opt.totals || opt.numa || opt.activity_display || rest == 2))
    usage_error("--kfence goes alone (with --json at most)");
  if (rest > 2) usage_error("too many arguments");
  if (rest >= 1) {
    opt.pid = static_cast<pid_t>(parse_long("PID", argv[optind], 1));
    if (opt.pid > 0x3fffffff) usage_error("PID %s is out of range", argv[optind]);
  }
  if (rest == 2) {
    opt.filter = argv[optind + 1];
    opt.has_filter = true;
  }
  if (opt.pid == 0 && (opt.has_report || opt.validate || opt.shrink || opt.watch > 0 || opt.proc ||
                       opt.has_filter || calls || opt.kfence))
    usage_error("this option needs a PID (run slabinfo without arguments to list them)");
}

}  // namespace
}  // namespace slabinfo

int main(int argc, char** argv) {
  using namespace slabinfo;
  parse_args(argc, argv);
  if (opt.pid == 0) return list_processes();
  return inspect();
}
