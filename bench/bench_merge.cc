// SPDX-License-Identifier: MIT
// bench_merge: what cache merging saves on a kernel-like set of caches (docs/MERGING.md).
//
// Creates every named cache of a Linux 6.18 machine (tests/data/linux-6.18-slab-caches.csv:
// size, alignment, ctor, RCU, reclaim/DMA flags, usercopy region), then runs one seeded mix of
// allocations and frees over them: caches are picked with a Zipf-like popularity (s = 1.1, a
// few very hot, a long tail rarely used), each keeps a window of live objects around its own
// target (random, most of the ~200k live objects in the hot caches), every object is touched
// (first and last byte written). Reports slab memory, partial slabs and throughput; run it
// with and without SLUB_NOMERGE=1 (tools/bench_merge.sh) to see what merging changes. The
// operation stream depends only on the seed, so both runs do exactly the same work.
//
//   bench_merge CSV [ops=3000000] [live=200000] [seed=42]
//
// A bad operand (not a whole number in its range) exits 2 with one line (bench/cli.h). The
// summary's "[SLUB_NOMERGE=1]" is the library's own reading of SLUB_NOMERGE (pal/options.h:
// 1/on/yes/true), so it names what the allocator did.
// SLUB_BENCH_LIST=1 also prints each name's kernel merge target and slub cache id.
// Single-threaded, bound to virtual CPU 0 so that migrations between cores do not leave
// per-CPU slabs behind on two CPU slots (SLUB_BENCH_NOBIND=1 to run on real CPUs).
// Prints one line `RESULT key=value ...` for scripts, then a human summary.
#include <slub/slub.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "cli.h"
#include "pal/options.h"  // the library's options table (libslub.a)

// Resolved when the library has it; otherwise usercopy caches are made with kmem_cache_create.
#pragma weak kmem_cache_create_usercopy

namespace {

struct Row {
  std::string name;
  std::string merged_into;  // the kernel's merge target (":A-0001280"), empty if unmerged
  size_t object_size = 0;
  size_t align = 0;
  bool ctor = false, rcu = false, hwcache = false, reclaim = false, dma = false;
  size_t usersize = 0;
};

struct Use {  // one name, as its user sees it
  const char* name = nullptr;
  kmem_cache* cache = nullptr;
  size_t object_size = 0;
  size_t target = 0;  // live objects this user keeps, give or take
  std::vector<void*> live;
};

void noop_ctor(void*) {}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) out.push_back(field);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

std::vector<Row> read_csv(const char* path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "bench_merge: cannot open %s\n", path);
    std::exit(2);
  }
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> head = split(line);
  auto col = [&](const char* name) -> size_t {
    for (size_t i = 0; i < head.size(); i++)
      if (head[i] == name) return i;
    std::fprintf(stderr, "bench_merge: no column %s in %s\n", name, path);
    std::exit(2);
  };
  const size_t c_name = col("name"), c_into = col("merged_into"), c_size = col("object_size"),
               c_align = col("align"), c_ctor = col("ctor"), c_rcu = col("destroy_by_rcu"),
               c_hw = col("hwcache_align"), c_recl = col("reclaim_account"),
               c_dma = col("cache_dma"), c_user = col("usersize");
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == ':') continue;  // the kernel's unique-id entries
    const std::vector<std::string> f = split(line);
    if (f.size() < head.size()) continue;
    Row r;
    r.name = f[c_name];
    r.merged_into = f[c_into];
    r.object_size = std::strtoul(f[c_size].c_str(), nullptr, 10);
    r.align = std::strtoul(f[c_align].c_str(), nullptr, 10);
    r.ctor = f[c_ctor] == "yes";
    r.rcu = f[c_rcu] == "1";
    r.hwcache = f[c_hw] == "1";
    r.reclaim = f[c_recl] == "1";
    r.dma = f[c_dma] == "1";
    r.usersize = std::strtoul(f[c_user].c_str(), nullptr, 10);
    rows.push_back(std::move(r));
  }
  return rows;
}

// SLAB_ACCOUNT is not a column; a kernel merge target whose id carries the 'A' letter
// (":A-0000064") says the cache had it. Unmerged caches with it cannot be told apart.
bool has_account(const std::string& merged_into) {
  const size_t dash = merged_into.find('-');
  return !merged_into.empty() && merged_into[0] == ':' && dash != std::string::npos &&
         merged_into.find('A') < dash;
}

kmem_cache* create(const Row& r, size_t align, int* usercopy_made) {
  unsigned long flags = 0;
  if (r.hwcache) flags |= SLAB_HWCACHE_ALIGN;
  if (r.rcu) flags |= SLAB_TYPESAFE_BY_RCU;
  if (r.reclaim) flags |= SLAB_RECLAIM_ACCOUNT;
  if (r.dma) flags |= SLAB_CACHE_DMA;
  if (has_account(r.merged_into)) flags |= SLAB_ACCOUNT;
  kmem_ctor_t ctor = r.ctor ? noop_ctor : nullptr;
  if (r.usersize > 0 && &kmem_cache_create_usercopy != nullptr) {
    ++*usercopy_made;
    return kmem_cache_create_usercopy(r.name.c_str(), r.object_size, align, flags, 0,
                                      std::min(r.usersize, r.object_size), ctor);
  }
  return kmem_cache_create(r.name.c_str(), r.object_size, align, flags, ctor);
}

size_t env_size(const char* name, size_t dflt) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : dflt;
}

}  // namespace

int main(int argc, char** argv) {
  static const char kUsage[] =
      "usage: bench_merge CSV [OPS [LIVE [SEED]]]\n"
      "  CSV: tests/data/linux-6.18-slab-caches.csv; OPS: 1..10^12 (3000000),\n"
      "  LIVE: 1..100000000 live objects (200000), SEED: 0..2^64-1 (42)\n"
      "  SLUB_NOMERGE=1 turns merging off; SLUB_BENCH_LIST=1 lists the caches\n";
  const bench_cli::Cli cli{"bench_merge", kUsage};
  static const option kLong[] = {{"help", no_argument, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
  // '+': options only before the operands (there are none but --help).
  while (bench_cli::next_option(cli, argc, argv, kLong, "+h") != -1) {
  }
  const int nargs = argc - optind;
  char** args = argv + optind;
  if (nargs < 1) bench_cli::fail(cli, "missing the CSV operand (bench_merge --help)");
  if (nargs > 4) bench_cli::fail(cli, "unexpected argument '%s'", args[4]);
  const size_t ops =
      nargs > 1 ? bench_cli::u64_arg(cli, "OPS", args[1], 1, 1'000'000'000'000) : 3000000;
  const size_t live_target =
      nargs > 2 ? bench_cli::u64_arg(cli, "LIVE", args[2], 1, 100'000'000) : 200000;
  const uint64_t seed = nargs > 3 ? bench_cli::u64_arg(cli, "SEED", args[3], 0, UINT64_MAX) : 42;
  if (env_size("SLUB_BENCH_NOBIND", 0) == 0) slub_bind_vcpu(0);
  // The library's own reading of SLUB_NOMERGE (any of its boolean spellings), for the label.
  const bool nomerge = slub::options::flag(slub::options::kOptNomerge);

  // --- Create the caches. ---
  const std::vector<Row> rows = read_csv(args[0]);
  std::vector<Use> uses;
  std::vector<kmem_cache*> distinct;
  std::unordered_map<kmem_cache*, size_t> names_per_cache;
  int usercopy_made = 0, align_clamped = 0;
  for (const Row& r : rows) {
    size_t align = r.hwcache ? 0 : r.align;
    kmem_cache* c = create(r, align, &usercopy_made);
    if (c == nullptr && align > 4096) {  // for builds that align to a page at most
      align = 4096;
      ++align_clamped;
      c = create(r, align, &usercopy_made);
    }
    if (c == nullptr) {
      std::fprintf(stderr, "bench_merge: cannot create %s (size %zu align %zu): %s\n",
                   r.name.c_str(), r.object_size, align, std::strerror(errno));
      return 1;
    }
    if (names_per_cache[c]++ == 0) distinct.push_back(c);
    Use u;
    u.name = r.name.c_str();
    u.cache = c;
    u.object_size = r.object_size;
    uses.push_back(std::move(u));
  }
  const size_t n = uses.size();

  // --- The workload: popularity, per-user windows. Depends only on the seed and n. ---
  std::mt19937_64 rng(seed);
  // Popularity order: small objects tend to be hot, as on a real machine (dentry, buffer
  // heads, extent status, kmalloc-64...), with much noise: sort by log2(size) + N(0, 4).
  std::normal_distribution<double> noise(0.0, 4.0);
  std::vector<std::pair<double, size_t>> key(n);
  for (size_t i = 0; i < n; i++) key[i] = {std::log2(double(uses[i].object_size)) + noise(rng), i};
  std::sort(key.begin(), key.end());
  std::vector<size_t> rank(n);  // rank[i]: popularity rank of user i (0 = hottest)
  for (size_t r = 0; r < n; r++) rank[key[r].second] = r;
  std::vector<double> pop(n), cdf(n);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += pop[i] = 1.0 / std::pow(double(rank[i] + 1), 1.1);
  double acc = 0;
  for (size_t i = 0; i < n; i++) cdf[i] = (acc += pop[i] / sum);
  cdf[n - 1] = 1.0;
  // Window of user i: its popularity times a log-normal factor (some hot users keep few
  // objects, some cold ones many), scaled to live_target in all, at least 1..16 objects.
  std::lognormal_distribution<double> spread(0.0, 1.0);
  std::vector<double> weight(n);
  double wsum = 0;
  for (size_t i = 0; i < n; i++) wsum += weight[i] = pop[i] * spread(rng);
  for (size_t i = 0; i < n; i++) {
    const size_t floor_objs = 1 + rng() % 16;
    uses[i].target =
        std::max(floor_objs, size_t(std::llround(double(live_target) * weight[i] / wsum)));
    uses[i].live.reserve(uses[i].target + uses[i].target / 4 + 8);
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);

  size_t allocs = 0, frees = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t op = 0; op < ops; op++) {
    const double x = unit(rng);
    Use& u = uses[size_t(std::lower_bound(cdf.begin(), cdf.end(), x) - cdf.begin())];
    // A random walk around the target: more allocations below it, more frees above.
    const double p_alloc = u.live.size() < u.target ? 0.65 : 0.35;
    const uint64_t r = rng();
    if (u.live.empty() || double(r >> 11) * 0x1.0p-53 < p_alloc) {
      char* p = static_cast<char*>(kmem_cache_alloc(u.cache));
      if (p == nullptr) {
        std::fprintf(stderr, "bench_merge: out of memory\n");
        return 1;
      }
      p[0] = 1;
      p[u.object_size - 1] = 2;
      u.live.push_back(p);
      ++allocs;
    } else {
      const size_t k = size_t(rng() % u.live.size());
      void* p = u.live[k];
      u.live[k] = u.live.back();
      u.live.pop_back();
      kmem_cache_free(u.cache, p);
      ++frees;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // --- Measure. ---
  size_t live_objs = 0, live_bytes = 0, users_live = 0;
  for (const Use& u : uses) {
    live_objs += u.live.size();
    live_bytes += u.live.size() * u.object_size;
    users_live += !u.live.empty();
  }
  size_t slab_bytes = 0, partial = 0, slabs = 0, total_objs = 0, active_objs = 0, cpu_slabs = 0;
  size_t slot_bytes = 0, shared = 0;
  for (kmem_cache* c : distinct) {
    kmem_cache_info info{};
    kmem_cache_get_info(c, &info);
    slab_bytes += info.nr_slabs * (size_t(4096) << info.order);
    slabs += info.nr_slabs;
    partial += info.nr_partial;
    cpu_slabs += info.nr_cpu_slabs;
    total_objs += info.total_objs;
    active_objs += info.active_objs;
    slot_bytes += info.active_objs * info.slot_size;
    shared += names_per_cache[c] > 1;
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double ops_per_s = double(ops) / secs;

  std::printf(
      "RESULT caches=%zu slab_bytes=%zu partial=%zu live_objs=%zu live_bytes=%zu "
      "ops_per_s=%.0f slabs=%zu cpu_slabs=%zu total_objs=%zu maxrss_kb=%ld names=%zu\n",
      distinct.size(), slab_bytes, partial, live_objs, live_bytes, ops_per_s, slabs, cpu_slabs,
      total_objs, ru.ru_maxrss, n);
  std::printf("bench_merge: %zu names -> %zu caches (%zu shared by several names)%s\n", n,
              distinct.size(), shared, nomerge ? "  [SLUB_NOMERGE=1]" : "");
  std::printf("  usercopy caches %d, alignments clamped to a page %d\n", usercopy_made,
              align_clamped);
  std::printf("  %zu ops (%zu alloc, %zu free) in %.3f s: %.2f Mops/s\n", ops, allocs, frees, secs,
              ops_per_s / 1e6);
  std::printf("  live: %zu objects of %zu names, %.2f MiB (slots: %.2f MiB)\n", live_objs,
              users_live, live_bytes / 1048576.0, slot_bytes / 1048576.0);
  std::printf("  slabs: %zu (%zu partial on nodes, %zu per-CPU), %.2f MiB, %zu objects room\n",
              slabs, partial, cpu_slabs, slab_bytes / 1048576.0, total_objs);
  std::printf("  efficiency: live bytes / slab bytes = %.1f%%\n",
              slab_bytes ? 100.0 * double(live_bytes) / double(slab_bytes) : 0.0);
  std::printf("  peak RSS: %.1f MiB\n", ru.ru_maxrss / 1024.0);
  std::printf("  hottest names (share of ops, live objects):");
  for (size_t r = 0; r < std::min<size_t>(n, 6); r++) {
    const size_t i = key[r].second;
    std::printf(" %s/%zu (%.1f%%, %zu)", uses[i].name, uses[i].object_size, 100.0 * pop[i] / sum,
                uses[i].target);
  }
  std::printf("\n");

  // SLUB_BENCH_LIST=1: one line per name, `MAP name kernel-target slub-id`, to compare the
  // grouping with the kernel's (the kernel target is "-" for a cache it did not merge).
  if (env_size("SLUB_BENCH_LIST", 0) != 0) {
    for (size_t i = 0; i < n; i++) {
      kmem_cache_info info{};
      kmem_cache_get_info(uses[i].cache, &info);
      std::printf("MAP %s %s %s\n", uses[i].name,
                  rows[i].merged_into.empty() ? "-" : rows[i].merged_into.c_str(), info.unique_id);
    }
  }

  // --- Tear down: free everything, destroy once per name (an alias drops one reference). ---
  for (Use& u : uses) {
    for (void* p : u.live) kmem_cache_free(u.cache, p);
    u.live.clear();
  }
  int destroy_failed = 0;
  for (Use& u : uses) destroy_failed += kmem_cache_destroy(u.cache) != 0;
  if (destroy_failed != 0) {
    std::fprintf(stderr, "bench_merge: %d kmem_cache_destroy calls failed\n", destroy_failed);
    return 1;
  }
  return 0;
}
