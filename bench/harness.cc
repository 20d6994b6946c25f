// SPDX-License-Identifier: MIT
// harness: the 4096-CPU harness. Mimics a machine with thousands of CPUs and many NUMA nodes
// on a small one (virtual CPUs and nodes: slub_set_topology, one thread bound to each virtual
// CPU with slub_bind_vcpu) and runs three generations side by side on the same workloads: the
// SLAB clone (SLAB_QUEUED, "slab"), SLUB's classic per-CPU slab (sheaf capacity 0,
// "slub-classic") and SLUB with sheaves and barns (the default, "slub"). docs/HARNESS.md
// reports it; `tools/slub harness [args]` runs it.
//
// Every (allocator, workload, CPUs, nodes) run is a forked child: the topology is process-wide
// and must be declared before caches exist, and each run's memory figures (peak RSS, slabs,
// queues) must be its own. The child reports one fixed struct through a pipe.
//
// Workloads (one thread per virtual CPU, all at once, started together):
//   churn     each thread allocates and frees objects of one cache, 16 live at a time (a
//             random slot each step, from --seed)
//   prodcons  the thread of CPU k allocates, the thread of CPU k + cpus/nodes (another node)
//             frees: every free is a remote-node free (SLAB: alien caches; SLUB: a cmpxchg)
//   burst     each thread allocates up to 1000 objects, then frees them all, and again
//   caches    K caches with the object sizes of a real machine (the CSV), every thread
//             allocates one object of each (in its own seeded order), then frees them,
//             round after round
//   idle      odd CPUs churn cache A, even CPUs cache B; then the odd CPUs stop while the even
//             ones keep working; A's parked objects (stranded on idle CPUs) are sampled every
//             0.5 s until the reaper / flusher hands them back
//
// Memory that does not fit (SLAB at 4096 CPUs and 1024 nodes needs ~138 MiB a cache) is
// measured on as many caches as a budget allows and extrapolated with SLAB's queue formulas
// (docs/SLAB.md, "Queue formulas"); the output says which figures are measured and which are
// not.
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <slub/slub.h>

#include "cli.h"

#ifndef SLUB_HARNESS_SIZES
#define SLUB_HARNESS_SIZES "tests/data/linux-6.18-slab-caches.csv"
#endif

namespace {

// ---- options ---------------------------------------------------------------------------------

struct Options {
  int cpus = 64;
  int nodes = 4;
  std::string allocator = "all";
  std::string workload = "all";
  int caches = 64;
  bool caches_given = false;
  long ops = 2000;
  bool ops_given = false;
  unsigned long seed = 1;
  std::string csv, json, plot;
  std::string sizes = SLUB_HARNESS_SIZES;
  bool sweep = false;
  bool check = false;
  bool brief = false;
  double budget_gib = 8;
  double idle_secs = 10;
};

const char* kUsage =
    "usage: harness [--cpus N] [--nodes M] [--allocator slub|slub-classic|slab|both|all]\n"
    "               [--workload churn|prodcons|burst|caches|idle|all] [--caches K] [--ops N]\n"
    "               [--seed S] [--csv FILE] [--json FILE] [--plot DIR] [--sweep]\n"
    "               [--budget-gib G] [--idle-secs S] [--sizes CSV] [--check]\n"
    "               [--brief]  (only the side-by-side summary table)\n"
    "  N: 16..4096, M: 1..1024 (at most N), K: 1..4000, --ops 2..100000000 per thread,\n"
    "  S (seed): 0..2^64-1, G: 0.001..1048576, --idle-secs 0.5..60\n";

const char* const kAllocators[] = {"slub", "slub-classic", "slab", "both", "all", nullptr};
const char* const kWorkloads[] = {"churn", "prodcons", "burst", "caches", "idle", nullptr};
const char* const kWorkloadChoices[] = {"churn", "prodcons", "burst", "caches",
                                        "idle",  "all",      nullptr};

Options parse(int argc, char** argv) {
  const bench_cli::Cli cli{"harness", kUsage};
  enum {
    kCpus = 256,
    kNodes,
    kAllocator,
    kWorkload,
    kCaches,
    kOps,
    kSeed,
    kCsv,
    kJson,
    kPlot,
    kSizes,
    kBudget,
    kIdle,
    kSweep,
    kBrief,
    kCheck
  };
  static const option kLong[] = {{"cpus", required_argument, nullptr, kCpus},
                                 {"nodes", required_argument, nullptr, kNodes},
                                 {"allocator", required_argument, nullptr, kAllocator},
                                 {"workload", required_argument, nullptr, kWorkload},
                                 {"caches", required_argument, nullptr, kCaches},
                                 {"ops", required_argument, nullptr, kOps},
                                 {"seed", required_argument, nullptr, kSeed},
                                 {"csv", required_argument, nullptr, kCsv},
                                 {"json", required_argument, nullptr, kJson},
                                 {"plot", required_argument, nullptr, kPlot},
                                 {"sizes", required_argument, nullptr, kSizes},
                                 {"budget-gib", required_argument, nullptr, kBudget},
                                 {"idle-secs", required_argument, nullptr, kIdle},
                                 {"sweep", no_argument, nullptr, kSweep},
                                 {"brief", no_argument, nullptr, kBrief},
                                 {"check", no_argument, nullptr, kCheck},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  Options o;
  for (int c; (c = bench_cli::next_option(cli, argc, argv, kLong)) != -1;) {
    const std::string name = bench_cli::option_name(kLong, c);
    const char* opt = name.c_str();
    switch (c) {
      case kCpus:
        o.cpus = int(bench_cli::int_arg(cli, opt, optarg, 16, SLUB_MAX_CPUS));
        break;
      case kNodes:
        o.nodes = int(bench_cli::int_arg(cli, opt, optarg, 1, SLUB_MAX_NODES));
        break;
      case kAllocator:
        o.allocator = bench_cli::choice_arg(cli, opt, optarg, kAllocators);
        break;
      case kWorkload:
        o.workload = bench_cli::choice_arg(cli, opt, optarg, kWorkloadChoices);
        break;
      case kCaches:
        o.caches = int(bench_cli::int_arg(cli, opt, optarg, 1, 4000));
        o.caches_given = true;
        break;
      case kOps:
        o.ops = long(bench_cli::int_arg(cli, opt, optarg, 2, 100000000));
        o.ops_given = true;
        break;
      case kSeed:
        o.seed = bench_cli::u64_arg(cli, opt, optarg, 0, UINT64_MAX);
        break;
      case kCsv:
        o.csv = optarg;
        break;
      case kJson:
        o.json = optarg;
        break;
      case kPlot:
        o.plot = optarg;
        break;
      case kSizes:
        o.sizes = optarg;
        break;
      case kBudget:
        o.budget_gib = bench_cli::num_arg(cli, opt, optarg, 0.001, 1 << 20);
        break;
      case kIdle:
        o.idle_secs = bench_cli::num_arg(cli, opt, optarg, 0.5, 60);
        break;
      case kSweep:
        o.sweep = true;
        break;
      case kBrief:
        o.brief = true;
        break;
      case kCheck:
        o.check = true;
        break;
    }
  }
  bench_cli::no_operands(cli, argc, argv);
  if (o.nodes > o.cpus)
    bench_cli::fail(cli, "--nodes %d: must not exceed --cpus (%d)", o.nodes, o.cpus);
  return o;
}

// ---- object sizes ----------------------------------------------------------------------------

// The object sizes of the CSV's distinct caches (rows not merged into another), in file order.
// Falls back to a built-in list when the file is missing.
std::vector<size_t> load_sizes(const std::string& path, bool* from_csv) {
  std::ifstream in(path);
  std::vector<size_t> sizes;
  std::string line;
  if (in && std::getline(in, line)) {
    std::vector<std::string> head;
    std::stringstream hs(line);
    for (std::string f; std::getline(hs, f, ',');) head.push_back(f);
    int c_merged = -1, c_size = -1;
    for (size_t i = 0; i < head.size(); ++i) {
      if (head[i] == "merged_into") c_merged = int(i);
      if (head[i] == "object_size") c_size = int(i);
    }
    while (c_size >= 0 && std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ls(line);
      for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
      if (int(f.size()) <= c_size) continue;
      if (c_merged >= 0 && int(f.size()) > c_merged && !f[c_merged].empty()) continue;
      const long s = atol(f[c_size].c_str());
      if (s > 0) sizes.push_back(size_t(s));
    }
  }
  *from_csv = !sizes.empty();
  if (sizes.empty())  // a spread like a kernel's: many small caches, a few large ones
    sizes = {16,  24,  32,  48,  64,  72,   96,   128,  136,  192,  200,  256, 320,
             384, 512, 640, 704, 768, 1024, 1152, 1536, 2048, 2304, 4096, 8192};
  return sizes;
}

// ---- SLAB's queue formulas (docs/SLAB.md) ---------------------------------------------------

size_t kmalloc_round(size_t x) {
  static const size_t small[] = {8, 16, 32, 64, 96, 128, 192};
  for (size_t s : small)
    if (x <= s) return s;
  size_t r = 256;
  while (r < x) r <<= 1;
  return r;
}

// SLAB's object size for a cache created with align 0 and no flags: a word multiple, >= 16.
size_t slab_slot(size_t object_size) {
  size_t s = (object_size + 7) & ~size_t{7};
  return s < 16 ? 16 : s;
}

struct Tune {
  unsigned limit, batch, shared, alien;
};

Tune slab_tune(size_t slot, int cpus) {
  unsigned l = slot > 131072 ? 1 : slot > 4096 ? 8 : slot > 1024 ? 24 : slot > 256 ? 54 : 120;
  return {l, (l + 1) / 2, (slot <= 4096 && cpus > 1) ? 8u : 0u, l > 1 ? 12u : l};
}

struct QBytes {
  double cpu = 0, shared = 0, alien = 0;
  double sum() const { return cpu + shared + alien; }
};

QBytes slab_formula(size_t slot, int cpus, int nodes) {
  const Tune t = slab_tune(slot, cpus);
  QBytes q;
  const double C = cpus, N = nodes;
  q.cpu = C * (16 + 8.0 * t.limit);
  q.shared = t.shared ? N * double(kmalloc_round(16 + 8 * t.shared * t.batch)) : 0;
  q.alien = nodes > 1 ? N * (double(kmalloc_round(8 * size_t(nodes))) +
                             (N - 1) * double(kmalloc_round(24 + 8 * t.alien)))
                      : 0;
  return q;
}

// ---- time, formatting ------------------------------------------------------------------------

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void sleep_ns(uint64_t ns) {
  timespec ts{time_t(ns / 1000000000ull), long(ns % 1000000000ull)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::string fmt_bytes(double b) {
  char buf[32];
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(b) >= 1024 && u < 4) b /= 1024, ++u;
  snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, unit[u]);
  return buf;
}

std::string fmt_num(double v) {
  char buf[32];
  if (v < 0) return "n/a";
  if (v != 0 && (v >= 1e7 || v < 0.01))
    snprintf(buf, sizeof buf, "%.3g", v);
  else if (v == std::floor(v))
    snprintf(buf, sizeof buf, "%.0f", v);
  else
    snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// ---- what a child reports ---------------------------------------------------------------------

constexpr int kMaxSamples = 64;

struct Result {
  int ok;     // the child ran to the end
  int check;  // --check failures
  char msg[480];
  int caches_req, caches_made, caches_failed, cross_pairs;
  double failed_size;  // object size of the first cache that could not be created
  double create_s, warm_s, wall_s, ops, ops_per_s, p50, p99, p999;
  double cpu_bytes, shared_bytes, alien_bytes, node_bytes, mgmt_bytes;
  double formula_bytes;    // SLAB: the formula for the caches made (cpu + shared + alien)
  double ext_queue_bytes;  // queue bytes (cpu + shared + alien + node) for caches_req caches
  double parked_cpu, parked_shared, parked_alien, parked_node, parked_bytes, free_slab_objs;
  double slab_bytes, partial_slabs, rss_bytes, bg_ns;
  int nsamples;
  double t_half, t_tenth;  // seconds until A's parked objects fell to 1/2 and 1/10; -1: never
  double st[kMaxSamples], sparked[kMaxSamples], sbytes[kMaxSamples], sfree[kMaxSamples];
};

// The three generations: the SLAB clone, SLUB's classic per-CPU slab, SLUB with sheaves.
enum class Kind { kSlab, kClassic, kSheaves };
const char* kind_name(Kind k) {
  return k == Kind::kSlab ? "slab" : k == Kind::kClassic ? "slub-classic" : "slub";
}

struct Config {
  Kind kind;
  bool slab;  // kind == kSlab
  std::string workload;
  int cpus, nodes, caches;
  long ops;
  double budget;  // bytes
  double idle_secs;
  bool check;
  unsigned long seed;
  const std::vector<size_t>* sizes;
};

// ---- threads: one per virtual CPU, 64 KiB stacks, started together ---------------------------

struct alignas(64) Worker {
  std::atomic<long> done{0};  // operations, published every 64
  long n = 0;
  long allocs = 0, frees = 0, fails = 0;
  uint64_t t_end = 0;         // when the thread's timed work ended
  std::vector<uint64_t> lat;  // sampled ns, one op in 64
  std::vector<void*> buf;
};

inline void* op_alloc(Worker& w, kmem_cache* c) {
  void* p;
  if ((w.n & 63) == 0) {
    const uint64_t t0 = now_ns();
    p = kmem_cache_alloc(c);
    w.lat.push_back(now_ns() - t0);
    w.done.store(w.n, std::memory_order_relaxed);
  } else {
    p = kmem_cache_alloc(c);
  }
  ++w.n;
  if (p != nullptr) {
    ++w.allocs;
    *static_cast<volatile char*>(p) = 1;
  } else {
    ++w.fails;
  }
  return p;
}

inline void op_free(Worker& w, kmem_cache* c, void* p) {
  if (p == nullptr) return;
  if ((w.n & 63) == 0) {
    const uint64_t t0 = now_ns();
    kmem_cache_free(c, p);
    w.lat.push_back(now_ns() - t0);
    w.done.store(w.n, std::memory_order_relaxed);
  } else {
    kmem_cache_free(c, p);
  }
  ++w.n;
  ++w.frees;
}

struct Team {
  std::function<void(int)> warm, fn;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
};

struct ThreadArg {
  Team* team;
  int cpu;
};

void* thread_main(void* p) {
  ThreadArg* a = static_cast<ThreadArg*>(p);
  slub_bind_vcpu(a->cpu);
  if (a->team->warm) a->team->warm(a->cpu);
  a->team->ready.fetch_add(1);
  a->team->go.wait(false);
  a->team->fn(a->cpu);
  slub_bind_vcpu(-1);
  return nullptr;
}

// Progress on stderr, only once a phase has run for more than 3 s.
struct Progress {
  std::string label;
  uint64_t start = now_ns();
  bool shown = false;
  uint64_t last = 0;
  void update(double frac) {
    const uint64_t t = now_ns();
    if (t - start < 3000000000ull || t - last < 500000000ull) return;
    last = t;
    shown = true;
    fprintf(stderr, "\r  %s %3.0f%% ", label.c_str(), 100 * std::min(frac, 1.0));
  }
  ~Progress() {
    if (shown) fprintf(stderr, "\r  %s done  \n", label.c_str());
  }
};

// Starts one thread per CPU, 64 KiB stacks. Each binds itself to its CPU and runs `warm` (the
// first touch: CPU areas, first slabs, array refills), then all are released together into
// `fn`. The caller polls `until()` (default: every thread returned), then `after()` runs and
// the threads are joined. Returns the release time; *warm_s is the time to start and warm all.
uint64_t run_team(int cpus, std::function<void(int)> warm, std::function<void(int)> fn,
                  Progress& prog, const std::function<double()>& frac,
                  const std::function<bool()>& until, const std::function<void()>& after,
                  double* warm_s) {
  Team team;
  team.warm = std::move(warm);
  team.fn = std::move(fn);
  std::vector<pthread_t> tids(cpus);
  std::vector<ThreadArg> args(cpus);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  const uint64_t t_start = now_ns();
  {
    Progress wp{prog.label + " (threads, first touch)"};
    for (int cpu = 0; cpu < cpus; ++cpu) {
      args[cpu] = {&team, cpu};
      int rc;
      while ((rc = pthread_create(&tids[cpu], &attr, thread_main, &args[cpu])) == EAGAIN)
        sleep_ns(10000000);
      if (rc != 0) {
        fprintf(stderr, "harness: pthread_create: %s\n", strerror(rc));
        _exit(3);
      }
      wp.update(double(team.ready.load()) / cpus);
    }
    while (team.ready.load() < cpus) {
      wp.update(double(team.ready.load()) / cpus);
      sleep_ns(1000000);
    }
  }
  pthread_attr_destroy(&attr);
  const uint64_t t0 = now_ns();
  *warm_s = double(t0 - t_start) / 1e9;
  prog.start = t0;
  team.go.store(true);
  team.go.notify_all();
  while (!until()) {
    prog.update(frac());
    sleep_ns(5000000);
  }
  if (after) after();
  for (pthread_t t : tids) pthread_join(t, nullptr);
  return t0;
}

// CPU time of this process's thread named `name` (/proc/self/task/*/schedstat), or -1.
double thread_cpu_ns(const char* name) {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  double ns = -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[64] = {};
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE* f = fopen(path, "r");
    if (f == nullptr) continue;
    if (fgets(comm, sizeof comm, f) == nullptr) comm[0] = 0;
    fclose(f);
    comm[strcspn(comm, "\n")] = 0;
    if (strcmp(comm, name) != 0) continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
    if ((f = fopen(path, "r")) != nullptr) {
      unsigned long long v = 0;
      if (fscanf(f, "%llu", &v) == 1) ns = double(v);
      fclose(f);
    }
  }
  closedir(d);
  return ns;
}

// ---- the child: one run ----------------------------------------------------------------------

struct Child {
  const Config& cfg;
  Result& r;
  std::vector<kmem_cache*> caches;
  std::vector<int> made;  // index (into the K sizes) of each cache made
  std::vector<std::unique_ptr<Worker>> workers;

  void fail(const char* fmt, ...) {
    ++r.check;
    if (r.msg[0] != 0) return;  // keep the first
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.msg, sizeof r.msg, fmt, ap);
    va_end(ap);
  }

  kmem_cache* make(size_t size, int i) {
    char name[48];
    snprintf(name, sizeof name, "harness-%d-%zu", i, size);
    if (cfg.kind == Kind::kSlab)
      return kmem_cache_create(name, size, 0, SLAB_NO_MERGE | SLAB_QUEUED, nullptr);
    kmem_cache_args a{};
    a.use_sheaf_capacity = cfg.kind == Kind::kClassic;  // capacity 0: the classic design
    return kmem_cache_create_args(name, size, &a, SLAB_NO_MERGE);
  }

  // Creates the caches of the run; for `caches` as many of the K sizes as the budget allows.
  void create_caches() {
    const uint64_t t0 = now_ns();
    if (cfg.workload != "caches") {
      const int n = cfg.workload == "idle" ? 2 : 1;
      for (int i = 0; i < n; ++i) {
        kmem_cache* c = make(256, i);
        if (c == nullptr) {
          snprintf(r.msg, sizeof r.msg, "kmem_cache_create(256) failed: %s", strerror(errno));
          return;
        }
        caches.push_back(c);
        made.push_back(i);
      }
      r.caches_req = n;
    } else {
      Progress prog{"creating caches"};
      double used = 0;
      const std::vector<size_t>& sz = *cfg.sizes;
      r.caches_req = cfg.caches;
      for (int i = 0; i < cfg.caches; ++i) {
        const size_t size = sz[size_t(i) % sz.size()];
        double cost = 0;
        if (cfg.slab) {  // queues, node structures, and the objects a refill pulls per CPU
          const size_t slot = slab_slot(size);
          const Tune t = slab_tune(slot, cfg.cpus);
          cost = slab_formula(slot, cfg.cpus, cfg.nodes).sum() + 128.0 * cfg.nodes +
                 double(cfg.cpus) * t.batch * double(slot);
          if (!caches.empty() && used + cost > cfg.budget) break;
        }
        kmem_cache* c = make(size, i);
        if (c == nullptr) {
          if (r.caches_failed++ == 0) r.failed_size = double(size);
          continue;
        }
        if (!cfg.slab) {  // a CPU slot and one CPU slab per CPU, and two sheaves' objects
          kmem_cache_info info{};
          kmem_cache_get_info(c, &info);
          const double sheaves = 2.0 * kmem_cache_sheaf_capacity(c) * double(info.slot_size);
          cost = double(cfg.cpus) * (512.0 + double(4096ul << info.order) + sheaves) +
                 64.0 * cfg.nodes;
          if (!caches.empty() && used + cost > cfg.budget) {
            kmem_cache_destroy(c);
            break;
          }
        }
        used += cost;
        caches.push_back(c);
        made.push_back(i);
        prog.update(double(i + 1) / cfg.caches);
      }
    }
    r.caches_made = int(caches.size());
    r.create_s = double(now_ns() - t0) / 1e9;
  }

  long per_thread_ops() const {
    if (cfg.workload == "caches") {
      const long k = long(caches.size());
      return std::max(1L, cfg.ops / (2 * k)) * 2 * k;
    }
    return cfg.ops & ~1L;
  }

  double progress() const {
    double done = 0;
    for (const auto& w : workers) done += double(w->done.load(std::memory_order_relaxed));
    return done / (double(per_thread_ops()) * double(cfg.cpus));
  }

  // A per-thread random stream (xorshift64*), from --seed and the CPU.
  static uint64_t next_rand(uint64_t& x) {
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    return x * 0x2545f4914f6cdd1dull;
  }
  uint64_t seed_of(int cpu) const {
    return (cfg.seed + 1) * 0x9e3779b97f4a7c15ull ^ uint64_t(cpu + 1);
  }

  // `live` slots; each step frees the object of a random slot and allocates a new one there.
  void churn(Worker& w, kmem_cache* c, long ops, size_t live, int cpu) {
    uint64_t rng = seed_of(cpu);
    w.buf.assign(live, nullptr);
    for (long i = 0; i < ops / 2; ++i) {
      void*& slot = w.buf[next_rand(rng) % live];
      op_free(w, c, slot);
      slot = op_alloc(w, c);
    }
    for (void*& p : w.buf) op_free(w, c, p), p = nullptr;
  }

  // A single-producer single-consumer ring from the thread of CPU k to its partner.
  struct alignas(64) Ring {
    static constexpr size_t kSize = 256;
    void* slot[kSize];
    alignas(64) std::atomic<size_t> head{0};
    alignas(64) std::atomic<size_t> tail{0};
  };

  // Runs the workload; returns the wall time from the release of the threads to the end of
  // the last one's timed work.
  double run_workload() {
    const int cpus = cfg.cpus;
    const long ops = per_thread_ops();
    for (int i = 0; i < cpus; ++i) {
      workers.push_back(std::make_unique<Worker>());
      workers.back()->lat.reserve(size_t(ops / 64 + 64));
    }
    char label[96];
    snprintf(label, sizeof label, "%s %s %d CPUs %d nodes", kind_name(cfg.kind),
             cfg.workload.c_str(), cpus, cfg.nodes);
    Progress prog{label};
    const std::string& wl = cfg.workload;
    kmem_cache* c0 = caches[0];
    kmem_cache* c1 = caches.size() > 1 ? caches[1] : c0;
    std::atomic<int> finished{0};
    std::atomic<bool> stop{false};
    std::function<void(int)> warm = [&](int cpu) {  // idle: A on odd CPUs, B on even ones
      kmem_cache* c = wl == "idle" && !(cpu & 1) ? c1 : c0;
      kmem_cache_free(c, kmem_cache_alloc(c));
    };
    std::function<void(int)> work;
    std::function<void()> after;
    std::vector<std::unique_ptr<Ring>> rings;
    if (wl == "churn") {
      work = [&](int cpu) { churn(*workers[cpu], c0, ops, 16, cpu); };
    } else if (wl == "burst") {
      work = [&](int cpu) {
        Worker& w = *workers[cpu];
        w.buf.resize(1000);
        for (long left = ops; left >= 2;) {
          const long b = std::min(1000L, left / 2);
          for (long i = 0; i < b; ++i) w.buf[i] = op_alloc(w, c0);
          for (long i = 0; i < b; ++i) op_free(w, c0, w.buf[i]);
          left -= 2 * b;
        }
      };
    } else if (wl == "caches") {
      warm = [&](int) {
        for (kmem_cache* c : caches) kmem_cache_free(c, kmem_cache_alloc(c));
      };
      work = [&](int cpu) {
        Worker& w = *workers[cpu];
        const size_t k = caches.size();
        std::vector<kmem_cache*> order(caches);  // each thread its own seeded order
        uint64_t rng = seed_of(cpu);
        for (size_t i = k; i > 1; --i) std::swap(order[i - 1], order[next_rand(rng) % i]);
        w.buf.resize(k);
        for (long round = 0; round < ops / long(2 * k); ++round) {
          for (size_t i = 0; i < k; ++i) w.buf[i] = op_alloc(w, order[i]);
          for (size_t i = 0; i < k; ++i) op_free(w, order[i], w.buf[i]);
        }
      };
    } else if (wl == "prodcons") {
      const int stride = (cpus + cfg.nodes - 1) / cfg.nodes;  // the next node's CPU
      rings.resize(size_t(cpus));
      for (auto& ring : rings) ring = std::make_unique<Ring>();
      for (int k = 0; k < cpus; ++k)
        r.cross_pairs += slub_cpu_node(k) != slub_cpu_node((k + stride) % cpus);
      work = [&, stride](int k) {
        Worker& w = *workers[k];
        Ring& out = *rings[size_t(k)];                                 // to CPU k + stride
        Ring& in = *rings[size_t((k - stride % cpus + cpus) % cpus)];  // from CPU k - stride
        const long n = ops / 2;
        long made = 0, freed = 0;
        while (made < n || freed < n) {
          bool moved = false;
          size_t h = out.head.load(std::memory_order_relaxed);
          for (int b = 0; b < 32 && made < n; ++b, ++made, ++h) {
            if (h - out.tail.load(std::memory_order_acquire) >= Ring::kSize) break;
            out.slot[h % Ring::kSize] = op_alloc(w, c0);  // a failed alloc sends nullptr
            out.head.store(h + 1, std::memory_order_release);
            moved = true;
          }
          size_t t = in.tail.load(std::memory_order_relaxed);
          for (int b = 0; b < 32 && freed < n; ++b, ++freed, ++t) {
            if (in.head.load(std::memory_order_acquire) == t) break;
            op_free(w, c0, in.slot[t % Ring::kSize]);
            in.tail.store(t + 1, std::memory_order_release);
            moved = true;
          }
          if (!moved) sched_yield();
        }
      };
    } else {  // idle: phase 1 on A (odd CPUs) and B (even CPUs); then the odd CPUs stop
      work = [&](int cpu) {
        Worker& w = *workers[cpu];
        churn(w, cpu & 1 ? c0 : c1, ops, 64, cpu);
        w.t_end = now_ns();
        finished.fetch_add(1);
        if (cpu & 1) return;
        w.buf.assign(16, nullptr);
        while (!stop.load(std::memory_order_relaxed)) {  // light work every 100 ms
          sleep_ns(100000000);
          for (void*& p : w.buf) p = kmem_cache_alloc(c1);
          for (void*& p : w.buf) kmem_cache_free(c1, p);
        }
      };
      after = [&] {
        sample_idle(c0);
        stop.store(true);
      };
    }
    std::function<void(int)> body = work;
    if (wl != "idle")
      body = [&](int cpu) {
        work(cpu);
        workers[size_t(cpu)]->t_end = now_ns();
        finished.fetch_add(1);
      };
    const uint64_t t0 = run_team(
        cpus, warm, body, prog, [this] { return progress(); },
        [&] { return finished.load() == cpus; }, after, &r.warm_s);
    uint64_t end = t0;
    for (const auto& w : workers) end = std::max(end, w->t_end);
    return double(end - t0) / 1e9;
  }

  // A's free objects held by CPUs and queues (stranded: nobody uses A any more), every 0.5 s
  // for idle_secs after the odd CPUs stopped. *on_lists: objects in free slabs on node lists.
  double stranded(kmem_cache* A, double* on_lists) {
    kmem_cache_queue_info q{};
    kmem_cache_get_queue_info(A, &q);
    *on_lists = double(q.free_slab_objects);
    return double(q.parked_cpu + q.parked_shared + q.parked_alien + q.parked_node);
  }

  void sample_idle(kmem_cache* A) {
    const uint64_t t0 = now_ns();
    const int n = std::min(kMaxSamples, int(cfg.idle_secs / 0.5) + 1);
    const double slot = double(kmem_cache_slot_size(A));
    r.t_half = r.t_tenth = -1;
    for (int i = 0; i < n; ++i) {
      const uint64_t at = t0 + uint64_t(i) * 500000000ull;
      const uint64_t t = now_ns();
      if (t < at) sleep_ns(at - t);
      const double parked = stranded(A, &r.sfree[i]);
      r.st[i] = double(now_ns() - t0) / 1e9;
      r.sparked[i] = parked;
      r.sbytes[i] = parked * slot;
      if (r.t_half < 0 && parked <= 0.5 * r.sparked[0]) r.t_half = r.st[i];
      if (r.t_tenth < 0 && parked <= 0.1 * r.sparked[0]) r.t_tenth = r.st[i];
    }
    r.nsamples = n;
    if (!cfg.slab) {  // A has no live object: SLUB's "active" objects are those CPUs hold
      kmem_cache_info info{};
      kmem_cache_get_info(A, &info);
      if (double(info.active_objs) != r.sparked[n - 1])
        fail("idle: %.0f objects parked per CPU (queue info), %zu active (kmem_cache_get_info)",
             r.sparked[n - 1], info.active_objs);
    }
    // Both give stranded memory back while the CPUs are idle: SLUB's flusher after 2 idle
    // periods of 2 s, SLAB's reaper a fifth of each array every 2 s (at least half by 8 s).
    if (r.sparked[0] == 0) fail("idle: nothing was stranded when the CPUs stopped");
    if (cfg.idle_secs >= 8 && r.sparked[n - 1] > 0.5 * r.sparked[0])
      fail("idle: %.0f of %.0f stranded objects still parked after %.1f s", r.sparked[n - 1],
           r.sparked[0], r.st[n - 1]);
  }

  void collect(double wall) {
    std::vector<uint64_t> lat;
    long allocs = 0, frees = 0, fails = 0, n = 0;
    for (const auto& w : workers) {
      lat.insert(lat.end(), w->lat.begin(), w->lat.end());
      allocs += w->allocs, frees += w->frees, fails += w->fails, n += w->n;
    }
    if (fails) fail("%ld allocations failed", fails);
    if (allocs != frees) fail("%ld objects allocated but %ld freed", allocs, frees);
    r.wall_s = wall;
    r.ops = double(n);
    r.ops_per_s = wall > 0 ? double(n) / wall : 0;
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double q) {
      return lat.empty() ? 0.0 : double(lat[std::min(lat.size() - 1, size_t(q * lat.size()))]);
    };
    r.p50 = pct(0.5), r.p99 = pct(0.99), r.p999 = pct(0.999);

    double node_per_cache = 0;
    for (size_t i = 0; i < caches.size(); ++i) {
      kmem_cache_queue_info q{};
      kmem_cache_info info{};
      kmem_cache_get_queue_info(caches[i], &q);
      kmem_cache_get_info(caches[i], &info);
      r.cpu_bytes += double(q.cpu_bytes);
      r.shared_bytes += double(q.shared_bytes);
      r.alien_bytes += double(q.alien_bytes);
      r.node_bytes += double(q.node_bytes);
      r.mgmt_bytes += double(q.mgmt_bytes);
      r.parked_cpu += double(q.parked_cpu);
      r.parked_shared += double(q.parked_shared);
      r.parked_alien += double(q.parked_alien);
      r.parked_node += double(q.parked_node);
      r.parked_bytes += double(q.parked_cpu + q.parked_shared + q.parked_alien + q.parked_node) *
                        double(info.slot_size);
      r.free_slab_objs += double(q.free_slab_objects);
      r.slab_bytes += double(info.nr_slabs) * double(4096ul << info.order);
      r.partial_slabs += double(info.nr_partial);
      if (cfg.slab) {
        r.bg_ns = double(q.reaper_ns);
        const QBytes f = slab_formula(info.slot_size, cfg.cpus, cfg.nodes);
        r.formula_bytes += f.sum();
        check_slab(info, q, f);
      } else {
        check_slub(caches[i], info, q);
      }
    }
    if (!cfg.slab) r.bg_ns = thread_cpu_ns("slub-service");
    // Queue bytes for the K caches asked: measured, plus (SLAB) the formula for the sizes not
    // made or (SLUB) the measured mean per cache.
    const double measured = r.cpu_bytes + r.shared_bytes + r.alien_bytes + r.node_bytes;
    r.ext_queue_bytes = measured;
    if (!caches.empty() && r.caches_made < r.caches_req) {
      node_per_cache = r.node_bytes / double(caches.size());
      if (cfg.slab) {  // the formula for each size not made (over the budget, or failed)
        std::vector<bool> done(size_t(r.caches_req), false);
        for (int i : made) done[size_t(i)] = true;
        for (int i = 0; i < r.caches_req; ++i) {
          if (done[size_t(i)]) continue;
          const size_t size = (*cfg.sizes)[size_t(i) % cfg.sizes->size()];
          r.ext_queue_bytes +=
              slab_formula(slab_slot(size), cfg.cpus, cfg.nodes).sum() + node_per_cache;
        }
      } else {
        r.ext_queue_bytes = measured / double(caches.size()) * double(r.caches_req);
      }
    }
  }

  void check_slab(const kmem_cache_info& info, const kmem_cache_queue_info& q, const QBytes& f) {
    const char* name = info.name;
    const Tune t = slab_tune(info.slot_size, cfg.cpus);
    if (info.slot_size != slab_slot(info.object_size))
      fail("%s: slot size %zu, expected %zu", name, info.slot_size, slab_slot(info.object_size));
    if (q.allocator != 1) fail("%s: queue info says allocator %d, not SLAB", name, q.allocator);
    if (q.limit != t.limit || q.batchcount != t.batch || q.shared != t.shared)
      fail("%s: tunables %u/%u/%u, expected %u/%u/%u", name, q.limit, q.batchcount, q.shared,
           t.limit, t.batch, t.shared);
    if (double(q.cpu_bytes) != double(cfg.cpus) * (16 + 8.0 * q.limit))
      fail("%s: cpu_bytes %zu != cpus x (16 + 8 x %u)", name, q.cpu_bytes, q.limit);
    if (double(q.shared_bytes) != f.shared)
      fail("%s: shared_bytes %zu, formula %.0f", name, q.shared_bytes, f.shared);
    if (double(q.alien_bytes) != f.alien)
      fail("%s: alien_bytes %zu, formula %.0f", name, q.alien_bytes, f.alien);
    if (q.node_bytes % size_t(cfg.nodes) != 0)
      fail("%s: node_bytes %zu is not a multiple of %d nodes", name, q.node_bytes, cfg.nodes);
    if (q.parked_cpu > size_t(cfg.cpus) * q.limit)
      fail("%s: %zu objects parked per CPU > cpus x limit", name, q.parked_cpu);
    if (q.parked_shared > size_t(cfg.nodes) * q.shared * q.batchcount)
      fail("%s: %zu objects in shared arrays > their capacity", name, q.parked_shared);
    if (q.parked_alien > size_t(cfg.nodes) * size_t(cfg.nodes - 1) * t.alien)
      fail("%s: %zu objects in alien caches > their capacity", name, q.parked_alien);
  }

  void check_slub(kmem_cache* c, const kmem_cache_info& info, const kmem_cache_queue_info& q) {
    if (q.allocator != 0)
      fail("%s: queue info says allocator %d, not SLUB", info.name, q.allocator);
    const unsigned cap = kmem_cache_sheaf_capacity(c);
    if ((cap == 0) != (cfg.kind == Kind::kClassic))
      fail("%s: sheaf capacity %u in the %s run", info.name, cap, kind_name(cfg.kind));
    if (q.shared_bytes || q.alien_bytes || q.parked_shared || q.parked_alien)
      fail("%s: SLUB reports shared or alien queues", info.name);
    if (cap == 0) {
      // Every virtual CPU ran, and each holds one slot of every cache, the same size.
      if (q.cpu_bytes % size_t(cfg.cpus) != 0 || q.cpu_bytes == 0)
        fail("%s: cpu_bytes %zu is not %d CPUs x one slot", info.name, q.cpu_bytes, cfg.cpus);
      if (q.node_bytes % size_t(cfg.nodes) != 0)
        fail("%s: node_bytes %zu not a multiple of %d", info.name, q.node_bytes, cfg.nodes);
      if (q.parked_node != 0) fail("%s: a barn in the classic mode", info.name);
      return;
    }
    // Sheaves: a CPU holds at most its two sheaves, its CPU slab and its partial slabs (at
    // most cpu_partial_slabs of them, the kernel's formula); a node's barn at most
    // kBarnMaxFull full sheaves.
    const size_t objs = info.objs_per_slab;
    const size_t partial_slabs = (size_t(info.cpu_partial) * 2 + objs - 1) / objs;
    const size_t per_cpu = 2 * size_t(cap) + objs * (1 + partial_slabs);
    if (q.parked_cpu > size_t(cfg.cpus) * per_cpu)
      fail("%s: %zu objects parked per CPU > %d CPUs x (2 sheaves of %u + %zu slabs of %zu)",
           info.name, q.parked_cpu, cfg.cpus, cap, 1 + partial_slabs, objs);
    if (q.parked_node > size_t(cfg.nodes) * 10 * cap)
      fail("%s: %zu objects in barns > %d nodes x 10 sheaves", info.name, q.parked_node, cfg.nodes);
  }

  // Every object was freed: after a shrink no cache may hold an active object, and every cache
  // must destroy cleanly.
  void teardown() {
    for (kmem_cache* c : caches) {
      kmem_cache_shrink(c);
      kmem_cache_info info{};
      kmem_cache_get_info(c, &info);
      if (info.active_objs != 0)
        fail("%s: %zu active objects after everything was freed and shrunk", info.name,
             info.active_objs);
      if (info.active_objs == 0 && kmem_cache_destroy(c) != 0)
        fail("%s: kmem_cache_destroy failed: %s", info.name, strerror(errno));
    }
  }

  void run() {
    char spec[64];
    snprintf(spec, sizeof spec, "cpus=%d,nodes=%d,distance=10:20", cfg.cpus, cfg.nodes);
    if (slub_set_topology(spec) != 0) {
      snprintf(r.msg, sizeof r.msg, "slub_set_topology(%s) failed", spec);
      return;
    }
    create_caches();
    if (caches.empty()) return;
    const double wall = run_workload();
    collect(wall);
    if (cfg.check) teardown();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    r.rss_bytes = double(ru.ru_maxrss) * 1024;
    r.ok = 1;
  }
};

// Runs one configuration in a forked child and returns what it reported.
Result run_child(const Config& cfg) {
  Result r{};
  int fd[2];
  if (pipe(fd) != 0) {
    snprintf(r.msg, sizeof r.msg, "pipe: %s", strerror(errno));
    return r;
  }
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    snprintf(r.msg, sizeof r.msg, "fork: %s", strerror(errno));
    return r;
  }
  if (pid == 0) {
    close(fd[0]);
    alarm(900);                     // the run must end by itself
    setenv("SLUB_EXPORT", "0", 0);  // the flusher only flushes: its CPU time is comparable
    auto* res = new Result{};
    Child child{cfg, *res, {}, {}, {}};
    child.run();
    const char* p = reinterpret_cast<const char*>(res);
    for (size_t off = 0; off < sizeof(Result);) {
      const ssize_t w = write(fd[1], p + off, sizeof(Result) - off);
      if (w <= 0) _exit(4);
      off += size_t(w);
    }
    _exit(0);
  }
  close(fd[1]);
  size_t got = 0;
  char* p = reinterpret_cast<char*>(&r);
  while (got < sizeof r) {
    const ssize_t n = read(fd[0], p + got, sizeof r - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += size_t(n);
  }
  close(fd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got != sizeof r) {
    r = Result{};
    if (WIFSIGNALED(status))
      snprintf(r.msg, sizeof r.msg, "child killed by signal %d (%s)", WTERMSIG(status),
               strsignal(WTERMSIG(status)));
    else
      snprintf(r.msg, sizeof r.msg, "child exited with status %d and no result",
               WEXITSTATUS(status));
  }
  return r;
}

// ---- reporting ---------------------------------------------------------------------------------

struct Run {
  std::string allocator, workload;
  int cpus, nodes;
  Result r;
};

struct Metric {
  const char* name;
  const char* key;  // CSV/JSON
  int kind;         // 0 number, 1 bytes, 2 ns
  double (*get)(const Result&);
};

const Metric kMetrics[] = {
    {"caches measured", "caches_made", 0, [](const Result& r) { return double(r.caches_made); }},
    {"caches asked", "caches_req", 0, [](const Result& r) { return double(r.caches_req); }},
    {"cache creation (s)", "create_s", 0, [](const Result& r) { return r.create_s; }},
    {"threads + first touch (s)", "warm_s", 0, [](const Result& r) { return r.warm_s; }},
    {"wall (s)", "wall_s", 0, [](const Result& r) { return r.wall_s; }},
    {"ops/s (M, relative: 2 cores)", "mops", 0, [](const Result& r) { return r.ops_per_s / 1e6; }},
    {"latency p50", "p50_ns", 2, [](const Result& r) { return r.p50; }},
    {"latency p99", "p99_ns", 2, [](const Result& r) { return r.p99; }},
    {"latency p99.9", "p999_ns", 2, [](const Result& r) { return r.p999; }},
    {"per-CPU bytes", "cpu_bytes", 1, [](const Result& r) { return r.cpu_bytes; }},
    {"shared bytes", "shared_bytes", 1, [](const Result& r) { return r.shared_bytes; }},
    {"alien bytes", "alien_bytes", 1, [](const Result& r) { return r.alien_bytes; }},
    {"node bytes", "node_bytes", 1, [](const Result& r) { return r.node_bytes; }},
    {"queue bytes (sum of the 4)", "queue_bytes", 1,
     [](const Result& r) { return r.cpu_bytes + r.shared_bytes + r.alien_bytes + r.node_bytes; }},
    {"on-slab index bytes (SLAB)", "mgmt_bytes", 1, [](const Result& r) { return r.mgmt_bytes; }},
    {"SLAB formula (cpu+shared+alien)", "formula_bytes", 1,
     [](const Result& r) { return r.formula_bytes; }},
    {"objects parked per CPU", "parked_cpu", 0, [](const Result& r) { return r.parked_cpu; }},
    {"objects parked in shared", "parked_shared", 0,
     [](const Result& r) { return r.parked_shared; }},
    {"objects parked in alien", "parked_alien", 0, [](const Result& r) { return r.parked_alien; }},
    {"objects parked in barns", "parked_node", 0, [](const Result& r) { return r.parked_node; }},
    {"parked bytes", "parked_bytes", 1, [](const Result& r) { return r.parked_bytes; }},
    {"objects in free slabs", "free_slab_objs", 0,
     [](const Result& r) { return r.free_slab_objs; }},
    {"slab memory", "slab_bytes", 1, [](const Result& r) { return r.slab_bytes; }},
    {"partial slabs", "partial_slabs", 0, [](const Result& r) { return r.partial_slabs; }},
    {"peak RSS", "rss_bytes", 1, [](const Result& r) { return r.rss_bytes; }},
    {"reaper / flusher CPU (ms)", "bg_ms", 0, [](const Result& r) { return r.bg_ns / 1e6; }},
    {"stranded at stop (A, idle)", "idle_bytes0", 1,
     [](const Result& r) { return r.nsamples ? r.sbytes[0] : -1; }},
    {"stranded at end (A, idle)", "idle_bytes_end", 1,
     [](const Result& r) { return r.nsamples ? r.sbytes[r.nsamples - 1] : -1; }},
    {"s until stranded <= 1/2", "idle_t_half", 0, [](const Result& r) { return r.t_half; }},
    {"s until stranded <= 1/10", "idle_t_tenth", 0, [](const Result& r) { return r.t_tenth; }},
    {"queue bytes for the caches asked", "ext_queue_bytes", 1,
     [](const Result& r) { return r.ext_queue_bytes; }},
};

std::string cell(const Metric& m, const Result& r) {
  const double v = m.get(r);
  if (m.kind == 1) return v < 0 ? "n/a" : fmt_bytes(v);
  if (m.kind == 2) return fmt_num(v) + " ns";
  return fmt_num(v);
}

bool metric_applies(const Metric& m, const std::string& workload) {
  if (strncmp(m.key, "idle_", 5) == 0 && workload != "idle") return false;
  if (!strcmp(m.key, "caches_req") || !strcmp(m.key, "ext_queue_bytes"))
    return workload == "caches";
  return true;
}

// The runs of one (workload, CPUs, nodes), in the order slab, slub-classic, slub.
std::vector<const Run*> runs_of(const std::vector<Run>& runs, const std::string& workload, int cpus,
                                int nodes) {
  std::vector<const Run*> out;
  for (const char* a : {"slab", "slub-classic", "slub"})
    for (const Run& x : runs)
      if (x.allocator == a && x.workload == workload && x.cpus == cpus && x.nodes == nodes)
        out.push_back(&x);
  return out;
}

void print_table(const std::vector<Run>& runs, const std::string& workload, int cpus, int nodes) {
  const std::vector<const Run*> cols = runs_of(runs, workload, cpus, nodes);
  if (cols.empty()) return;
  const Run* slub = cols.back()->allocator == "slub" ? cols.back() : nullptr;  // ratios to it
  const Result& any = cols[0]->r;
  printf("\n### %s: %d CPUs, %d nodes", workload.c_str(), cpus, nodes);
  if (workload == "caches")
    printf(", %d caches asked (object sizes from the CSV)", any.caches_req);
  else
    printf(", %d cache%s of 256-byte objects", any.caches_req, any.caches_req > 1 ? "s" : "");
  printf("\n\n| metric |");
  for (const Run* x : cols) printf(" %s |", x->allocator.c_str());
  for (const Run* x : cols)
    if (slub && x != slub) printf(" %s/slub |", x->allocator.c_str());
  printf("\n|---|");
  for (const Run* x : cols) printf("---:|%s", slub && x != slub ? "---:|" : "");
  printf("\n");
  for (const Metric& m : kMetrics) {
    if (!metric_applies(m, workload)) continue;
    printf("| %s |", m.name);
    for (const Run* x : cols) printf(" %s |", x->r.ok ? cell(m, x->r).c_str() : "failed");
    for (const Run* x : cols) {
      if (!slub || x == slub) continue;
      const double a = m.get(slub->r), b = m.get(x->r);
      if (a > 0 && b >= 0 && slub->r.ok && x->r.ok)
        printf(" %s |", fmt_num(b / a).c_str());
      else
        printf(" - |");
    }
    printf("\n");
  }
  for (const Run* x : cols) {
    const Result& r = x->r;
    if (!r.ok) printf("\n%s FAILED: %s\n", x->allocator.c_str(), r.msg);
    if (r.ok && r.check)
      printf("\n%s: CHECK FAILED (%d): %s\n", x->allocator.c_str(), r.check, r.msg);
    if (r.ok && workload == "caches" && (r.caches_made < r.caches_req || r.caches_failed)) {
      char failed[96] = "";
      if (r.caches_failed)
        snprintf(failed, sizeof failed, "; %d could not be created, the first of %.0f bytes",
                 r.caches_failed, r.failed_size);
      printf(
          "\n%s: measured on %d of %d caches (the budget%s); \"queue bytes for the caches "
          "asked\" is EXTRAPOLATED: %s\n",
          x->allocator.c_str(), r.caches_made, r.caches_req, failed,
          x->allocator == "slab" ? "the formula for each cache not measured"
                                 : "the measured mean per cache x caches asked");
    }
    if (r.ok && workload == "prodcons")
      printf("\n%s: %d of %d producer/consumer pairs cross nodes\n", x->allocator.c_str(),
             r.cross_pairs, cpus);
  }
  if (workload == "caches") {
    for (const Run* x : cols)
      if (x->r.ok && x->r.caches_made != cols[0]->r.caches_made) {
        printf("\nThe columns measured different numbers of caches: compare the last row.\n");
        break;
      }
  }
  if (workload == "idle") {
    printf("\nstranded on the idle CPUs (cache A) after they stopped:\n\n| t (s) |");
    for (const Run* x : cols) printf(" %s |", x->allocator.c_str());
    printf("\n|---:|");
    for (size_t i = 0; i < cols.size(); ++i) printf("---:|");
    printf("\n");
    int n = 0;
    for (const Run* x : cols) n = std::max(n, x->r.nsamples);
    for (int i = 0; i < n; ++i) {
      printf("| %.1f |", 0.5 * i);
      for (const Run* x : cols)
        printf(" %s |", i < x->r.nsamples ? fmt_bytes(x->r.sbytes[i]).c_str() : "");
      printf("\n");
    }
  }
}

// One table for all workloads of a grid run: the rows that tell the allocators apart, a
// column per (workload, allocator).
void print_summary(const std::vector<Run>& runs, int cpus, int nodes) {
  static const char* const kKeys[] = {
      "caches_made",  "mops",        "p50_ns",      "p99_ns",         "cpu_bytes",
      "shared_bytes", "alien_bytes", "queue_bytes", "parked_bytes",   "slab_bytes",
      "rss_bytes",    "bg_ms",       "idle_t_half", "ext_queue_bytes"};
  printf("\n## Side by side: %d CPUs, %d nodes\n\n| metric |", cpus, nodes);
  for (const Run& x : runs) printf(" %s %s |", x.workload.c_str(), x.allocator.c_str());
  printf("\n|---|");
  for (size_t i = 0; i < runs.size(); ++i) printf("---:|");
  printf("\n");
  for (const char* key : kKeys) {
    const Metric* m = nullptr;
    for (const Metric& k : kMetrics)
      if (!strcmp(k.key, key)) m = &k;
    bool any = false;
    for (const Run& x : runs) any |= metric_applies(*m, x.workload);
    if (!any) continue;
    printf("| %s |", m->name);
    for (const Run& x : runs)
      printf(" %s |", !metric_applies(*m, x.workload) ? ""
                      : x.r.ok                        ? cell(*m, x.r).c_str()
                                                      : "failed");
    printf("\n");
  }
  for (const Run& x : runs)
    if (x.r.ok && x.workload == "caches" && x.r.caches_made < x.r.caches_req)
      printf("\n%s caches: measured on %d of %d caches; the last row is extrapolated (%s)\n",
             x.allocator.c_str(), x.r.caches_made, x.r.caches_req,
             x.allocator == "slab" ? "formula for the rest" : "mean per cache");
}

void write_csv(const std::string& path, const std::vector<Run>& runs) {
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) {
    fprintf(stderr, "harness: cannot write %s: %s\n", path.c_str(), strerror(errno));
    return;
  }
  fprintf(f, "allocator,workload,cpus,nodes,metric,value\n");
  for (const Run& x : runs) {
    fprintf(f, "%s,%s,%d,%d,ok,%d\n", x.allocator.c_str(), x.workload.c_str(), x.cpus, x.nodes,
            x.r.ok);
    if (!x.r.ok) continue;
    for (const Metric& m : kMetrics)
      if (metric_applies(m, x.workload))
        fprintf(f, "%s,%s,%d,%d,%s,%.6g\n", x.allocator.c_str(), x.workload.c_str(), x.cpus,
                x.nodes, m.key, m.get(x.r));
    for (int i = 0; i < x.r.nsamples; ++i)
      fprintf(f, "%s,%s,%d,%d,stranded_bytes@%.1f,%.6g\n", x.allocator.c_str(), x.workload.c_str(),
              x.cpus, x.nodes, 0.5 * i, x.r.sbytes[i]);
  }
  fclose(f);
}

// A figure for the JSON: an integer when it is one (byte and object counts stay exact), null
// when it is not finite.
nlohmann::ordered_json json_number(double v) {
  if (!std::isfinite(v)) return nullptr;
  if (v == std::floor(v) && std::fabs(v) < 0x1p53) return static_cast<int64_t>(v);
  return v;
}

// One object per run, one run per line, keys in the order of kMetrics.
void write_json(const std::string& path, const std::vector<Run>& runs) {
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) {
    fprintf(stderr, "harness: cannot write %s: %s\n", path.c_str(), strerror(errno));
    return;
  }
  fprintf(f, "[\n");
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& x = runs[i];
    nlohmann::ordered_json j;
    j["allocator"] = x.allocator;
    j["workload"] = x.workload;
    j["cpus"] = x.cpus;
    j["nodes"] = x.nodes;
    j["ok"] = x.r.ok != 0;
    if (x.r.ok) {
      for (const Metric& m : kMetrics)
        if (metric_applies(m, x.workload)) j[m.key] = json_number(m.get(x.r));
      if (x.r.nsamples) {
        nlohmann::ordered_json st = nlohmann::ordered_json::array();
        for (int k = 0; k < x.r.nsamples; ++k)
          st.push_back({{"t", json_number(std::round(x.r.st[k] * 1000) / 1000)},
                        {"objects", json_number(x.r.sparked[k])},
                        {"bytes", json_number(x.r.sbytes[k])}});
        j["stranded"] = std::move(st);
      }
      if (x.r.check) j["check_failed"] = x.r.msg;
    } else {
      j["error"] = x.r.msg;
    }
    // The messages are the child's text: a byte that is not UTF-8 becomes U+FFFD.
    const std::string line =
        j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    fprintf(f, "  %s%s\n", line.c_str(), i + 1 < runs.size() ? "," : "");
  }
  fprintf(f, "]\n");
  if (fclose(f) != 0)
    fprintf(stderr, "harness: cannot write %s: %s\n", path.c_str(), strerror(errno));
}

bool have_gnuplot() {
  return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

bool make_dir(const std::string& dir) {
  std::string cmd = "mkdir -p '" + dir + "'";
  return system(cmd.c_str()) == 0;
}

// Runs a gnuplot script; says so when it fails.
void gnuplot(const std::string& dir, const std::string& name, const std::string& script) {
  const std::string gp = dir + "/data/" + name + ".gp";
  FILE* f = fopen(gp.c_str(), "w");
  if (f == nullptr) return;
  fputs(script.c_str(), f);
  fclose(f);
  const std::string cmd = "gnuplot '" + gp + "'";
  if (system(cmd.c_str()) != 0)
    fprintf(stderr, "harness: gnuplot failed on %s\n", gp.c_str());
  else
    printf("wrote %s/%s.png\n", dir.c_str(), name.c_str());
}

const char* kGpHead =
    "set terminal pngcairo size 900,560 enhanced font 'sans,10'\n"
    "set grid\nset key top left\n";

// The stranded-memory plot of the idle runs (those with `cpus` CPUs when it is not 0).
void plot_idle(const std::string& dir, const std::vector<Run>& runs, int cpus) {
  std::string plots;
  for (const Run& x : runs) {
    if (x.workload != "idle" || !x.r.ok || x.r.nsamples == 0) continue;
    if (cpus != 0 && x.cpus != cpus) continue;
    char dat[256];
    snprintf(dat, sizeof dat, "%s/data/idle_%s_%d_%d.dat", dir.c_str(), x.allocator.c_str(), x.cpus,
             x.nodes);
    FILE* f = fopen(dat, "w");
    if (f == nullptr) continue;
    fprintf(f, "# t_s stranded_bytes parked_objects free_slab_objects\n");
    for (int i = 0; i < x.r.nsamples; ++i)
      fprintf(f, "%.3f %.0f %.0f %.0f\n", x.r.st[i], x.r.sbytes[i], x.r.sparked[i], x.r.sfree[i]);
    fclose(f);
    char p[400];
    snprintf(p, sizeof p,
             "%s'%s' using 1:($2/1048576) with linespoints lw 2 title '%s, %d CPUs, %d nodes'",
             plots.empty() ? "plot " : ", \\\n     ", dat, x.allocator.c_str(), x.cpus, x.nodes);
    plots += p;
  }
  if (plots.empty()) return;
  gnuplot(dir, "stranded",
          std::string(kGpHead) + "set output '" + dir +
              "/stranded.png'\nset title 'Objects stranded on idle CPUs after half the CPUs "
              "stop (one cache of 256 B)'\nset xlabel 'seconds since the CPUs went idle'\n"
              "set ylabel 'MiB parked in per-CPU slabs / arrays / shared / alien'\nset key top "
              "right\nset yrange "
              "[0:*]\n" +
              plots + "\n");
}

// ---- driver
// --------------------------------------------------------------------------------------

Config base_config(const Options& o, const std::vector<size_t>& sizes) {
  Config c{};
  c.cpus = o.cpus;
  c.nodes = o.nodes;
  c.caches = o.caches;
  c.ops = o.ops;
  c.budget = o.budget_gib * 1073741824.0;
  c.idle_secs = o.idle_secs;
  c.check = o.check;
  c.seed = o.seed;
  c.sizes = &sizes;
  return c;
}

std::vector<std::string> allocators(const Options& o) {
  if (o.allocator == "both") return {"slab", "slub"};
  if (o.allocator == "all") return {"slab", "slub-classic", "slub"};
  return {o.allocator};
}

Run run_one(Config c, const std::string& alloc, const std::string& workload) {
  c.kind = alloc == "slab"           ? Kind::kSlab
           : alloc == "slub-classic" ? Kind::kClassic
                                     : Kind::kSheaves;
  c.slab = c.kind == Kind::kSlab;
  c.workload = workload;
  const uint64_t t0 = now_ns();
  Run x{alloc, workload, c.cpus, c.nodes, run_child(c)};
  fprintf(stderr, "  %-4s %-8s %4d CPUs %4d nodes: %.1f s%s%s\n", alloc.c_str(), workload.c_str(),
          c.cpus, c.nodes, double(now_ns() - t0) / 1e9,
          x.r.ok ? "" : "  FAILED: ", x.r.ok ? "" : x.r.msg);
  return x;
}

int finish(const Options& o, const std::vector<Run>& runs) {
  if (!o.csv.empty()) write_csv(o.csv, runs);
  if (!o.json.empty()) write_json(o.json, runs);
  int bad = 0;
  for (const Run& x : runs) {
    if (!x.r.ok || (o.check && x.r.check))
      fprintf(stderr, "harness: %s %s %d CPUs %d nodes: %s%s\n", x.allocator.c_str(),
              x.workload.c_str(), x.cpus, x.nodes, x.r.ok ? "CHECK FAILED: " : "FAILED: ", x.r.msg);
    bad += !x.r.ok || (o.check && x.r.check);
  }
  if (bad)
    fprintf(stderr, "harness: %d run(s) failed%s\n", bad, o.check ? " or failed --check" : "");
  else if (o.check)
    fprintf(stderr, "harness: --check passed on %zu runs\n", runs.size());
  return bad ? 1 : 0;
}

int run_grid(const Options& o, const std::vector<size_t>& sizes, bool from_csv) {
  const Config base = base_config(o, sizes);
  std::vector<std::string> wls;
  for (const char* const* w = kWorkloads; *w; ++w)
    if (o.workload == "all" || o.workload == *w) wls.push_back(*w);
  printf("# harness: %d virtual CPUs, %d nodes (distance 10:20), %ld ops per thread, %s\n", o.cpus,
         o.nodes, o.ops,
         from_csv ? ("cache sizes from " + o.sizes).c_str() : "built-in cache sizes");
  printf(
      "# one thread per virtual CPU on %ld real CPUs; each run a forked child; budget %.1f GiB\n",
      sysconf(_SC_NPROCESSORS_ONLN), o.budget_gib);
  printf("# SLUB background CPU = the slub-service thread (schedstat); SLAB = reaper_ns\n");
  std::vector<Run> runs;
  for (const std::string& w : wls) {
    for (const std::string& a : allocators(o)) runs.push_back(run_one(base, a, w));
    if (!o.brief) print_table(runs, w, o.cpus, o.nodes);
    fflush(stdout);
  }
  if (wls.size() > 1 || o.brief) print_summary(runs, o.cpus, o.nodes);
  if (!o.plot.empty()) {
    if (!have_gnuplot()) {
      printf("plots skipped: gnuplot is not installed\n");
    } else if (make_dir(o.plot + "/data")) {
      plot_idle(o.plot, runs, 0);
    }
  }
  return finish(o, runs);
}

// --sweep: queue memory against CPUs (4 nodes) and nodes (4096 CPUs).
int run_sweep(const Options& o, const std::vector<size_t>& sizes, bool from_csv) {
  Config base = base_config(o, sizes);
  base.caches = o.caches_given ? o.caches : int(sizes.size());
  const long short_ops = o.ops;
  struct Point {
    int cpus, nodes;
    bool idle;
  };
  const std::vector<Point> points = {{16, 4, true},     {64, 4, true},     {256, 4, true},
                                     {1024, 4, true},   {4096, 1, false},  {4096, 4, true},
                                     {4096, 64, false}, {4096, 1024, true}};
  printf(
      "# harness --sweep: %d caches (%s), caches workload one round per thread, churn "
      "max(%ld, 8M / CPUs) and idle %ld ops per thread, budget %.1f GiB\n",
      base.caches, from_csv ? "object sizes from the CSV" : "built-in sizes", short_ops, short_ops,
      o.budget_gib);
  std::vector<Run> runs;
  for (const Point& p : points) {
    Config c = base;
    c.cpus = p.cpus;
    c.nodes = p.nodes;
    for (const std::string& a : allocators(o)) {
      Config cc = c;
      cc.ops = 2L * cc.caches;
      runs.push_back(run_one(cc, a, "caches"));
      cc.ops = std::max(short_ops, (1L << 23) / p.cpus) & ~1L;  // 8M operations or more
      runs.push_back(run_one(cc, a, "churn"));
      cc.ops = short_ops;
      if (p.idle) runs.push_back(run_one(cc, a, "idle"));
    }
  }
  auto find = [&](const char* alloc, const char* wl, int cpus, int nodes) -> const Result* {
    for (const Run& x : runs)
      if (x.allocator == alloc && x.workload == wl && x.cpus == cpus && x.nodes == nodes && x.r.ok)
        return &x.r;
    return nullptr;
  };
  const std::vector<std::string> kinds = allocators(o);
  auto has = [&](const char* a) { return std::find(kinds.begin(), kinds.end(), a) != kinds.end(); };
  auto ext = [](const Result* r) {
    if (!r) return std::string("-");
    std::string s = fmt_bytes(r->ext_queue_bytes);
    return r->caches_made < r->caches_req ? s + " (extrapolated)" : s + " (measured)";
  };
  auto made = [](const Result* r) {
    return r ? std::to_string(r->caches_made) + "/" + std::to_string(r->caches_req)
             : std::string("-");
  };
  auto bytes = [](const Result* r, double v) { return r ? fmt_bytes(v) : std::string("-"); };
  auto num = [](const Result* r, double v) { return r ? fmt_num(v) : std::string("-"); };
  printf("\n## Queue memory for %d caches (caches workload)\n\n", base.caches);
  printf(
      "| CPUs | nodes | SLAB caches measured | SLAB measured cpu+shared+alien | SLAB formula, "
      "same caches | SLAB queue bytes, %d caches | SLUB-classic queue bytes, %d caches | SLUB "
      "(sheaves) queue bytes, %d caches | SLUB objects in sheaves + barns |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
      base.caches, base.caches, base.caches);
  for (const Point& p : points) {
    const Result* a = has("slab") ? find("slab", "caches", p.cpus, p.nodes) : nullptr;
    const Result* k =
        has("slub-classic") ? find("slub-classic", "caches", p.cpus, p.nodes) : nullptr;
    const Result* b = has("slub") ? find("slub", "caches", p.cpus, p.nodes) : nullptr;
    printf("| %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", p.cpus, p.nodes, made(a).c_str(),
           bytes(a, a ? a->cpu_bytes + a->shared_bytes + a->alien_bytes : 0).c_str(),
           bytes(a, a ? a->formula_bytes : 0).c_str(), ext(a).c_str(), ext(k).c_str(),
           ext(b).c_str(), bytes(b, b ? b->parked_bytes : 0).c_str());
  }
  printf(
      "\n## Slab memory and peak RSS (caches workload)\n\n| CPUs | nodes | SLAB slab memory | "
      "SLUB-classic slab memory | SLUB slab memory | SLAB peak RSS | SLUB-classic peak RSS | SLUB "
      "peak RSS |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Point& p : points) {
    const Result* a = has("slab") ? find("slab", "caches", p.cpus, p.nodes) : nullptr;
    const Result* k =
        has("slub-classic") ? find("slub-classic", "caches", p.cpus, p.nodes) : nullptr;
    const Result* b = has("slub") ? find("slub", "caches", p.cpus, p.nodes) : nullptr;
    printf("| %d | %d | %s | %s | %s | %s | %s | %s |\n", p.cpus, p.nodes,
           bytes(a, a ? a->slab_bytes : 0).c_str(), bytes(k, k ? k->slab_bytes : 0).c_str(),
           bytes(b, b ? b->slab_bytes : 0).c_str(), bytes(a, a ? a->rss_bytes : 0).c_str(),
           bytes(k, k ? k->rss_bytes : 0).c_str(), bytes(b, b ? b->rss_bytes : 0).c_str());
  }
  for (const Run& x : runs)
    if (x.workload == "caches" && x.r.ok && x.r.caches_failed)
      printf(
          "\n%s at %d CPUs / %d nodes: %d cache(s) could not be created (the first of %.0f "
          "bytes); the formula stands in for them in the extrapolated column\n",
          x.allocator.c_str(), x.cpus, x.nodes, x.r.caches_failed, x.r.failed_size);
  printf(
      "\n## Throughput (churn, max(%ld, 8M / CPUs) ops per thread, one 256-byte cache)\n\n"
      "| CPUs | nodes | SLAB Mops/s | SLUB-classic Mops/s | SLUB Mops/s | SLAB p99 ns | "
      "SLUB-classic p99 ns | SLUB p99 ns | SLAB reaper ms | SLUB-classic flusher ms | SLUB "
      "flusher ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
      short_ops);
  for (const Point& p : points) {
    const Result* a = find("slab", "churn", p.cpus, p.nodes);
    const Result* k = find("slub-classic", "churn", p.cpus, p.nodes);
    const Result* b = find("slub", "churn", p.cpus, p.nodes);
    printf("| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p.cpus, p.nodes,
           num(a, a ? a->ops_per_s / 1e6 : 0).c_str(), num(k, k ? k->ops_per_s / 1e6 : 0).c_str(),
           num(b, b ? b->ops_per_s / 1e6 : 0).c_str(), num(a, a ? a->p99 : 0).c_str(),
           num(k, k ? k->p99 : 0).c_str(), num(b, b ? b->p99 : 0).c_str(),
           num(a, a ? a->bg_ns / 1e6 : 0).c_str(), num(k, k ? k->bg_ns / 1e6 : 0).c_str(),
           num(b, b ? b->bg_ns / 1e6 : 0).c_str());
  }
  printf(
      "\n## Stranded memory after half the CPUs go idle (idle, cache A)\n\n"
      "| CPUs | nodes | SLAB at stop | SLAB at %.1f s | SLAB t(1/2) s | SLUB-classic at stop | "
      "SLUB-classic at %.1f s | SLUB-classic t(1/2) s | SLUB at stop | SLUB at %.1f s | SLUB "
      "t(1/2) s |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
      o.idle_secs, o.idle_secs, o.idle_secs);
  for (const Point& p : points) {
    if (!p.idle) continue;
    printf("| %d | %d |", p.cpus, p.nodes);
    for (const char* kind : {"slab", "slub-classic", "slub"}) {
      const Result* r = find(kind, "idle", p.cpus, p.nodes);
      printf(" %s | %s | %s |", bytes(r, r ? r->sbytes[0] : 0).c_str(),
             bytes(r, r ? r->sbytes[r->nsamples - 1] : 0).c_str(),
             num(r, r ? r->t_half : 0).c_str());
    }
    printf("\n");
  }
  printf("\n(n/a: not reached within %.1f s)\n", o.idle_secs);

  if (!o.plot.empty()) {
    if (!have_gnuplot()) {
      printf("plots skipped: gnuplot is not installed\n");
    } else if (make_dir(o.plot + "/data")) {
      write_csv(o.plot + "/data/sweep.csv", runs);
      const std::string d = o.plot;
      // Data files: one line per point.
      FILE* fc = fopen((d + "/data/sweep_cpus.dat").c_str(), "w");
      FILE* fn = fopen((d + "/data/sweep_nodes.dat").c_str(), "w");
      for (FILE* f : {fc, fn})
        if (f)
          fprintf(f,
                  "# x slab_queue_ext slub_queue_ext slab_formula_all slub_mops slab_mops "
                  "slab_measured slab_made classic_queue_ext classic_mops\n");
      for (const Point& p : points) {
        const Result* a = find("slab", "caches", p.cpus, p.nodes);
        const Result* b = find("slub", "caches", p.cpus, p.nodes);
        const Result* k = find("slub-classic", "caches", p.cpus, p.nodes);
        const Result* ca = find("slab", "churn", p.cpus, p.nodes);
        const Result* cb = find("slub", "churn", p.cpus, p.nodes);
        const Result* ck = find("slub-classic", "churn", p.cpus, p.nodes);
        double formula_all = 0;
        for (int i = 0; i < base.caches; ++i)
          formula_all +=
              slab_formula(slab_slot(sizes[size_t(i) % sizes.size()]), p.cpus, p.nodes).sum();
        auto g = [](const Result* r, double v) { return r ? v : NAN; };
        auto row = [&](FILE* f, int x) {
          if (f == nullptr) return;
          fprintf(f, "%d %.6g %.6g %.6g %.6g %.6g %.6g %d %.6g %.6g\n", x,
                  g(a, a ? a->ext_queue_bytes : 0), g(b, b ? b->ext_queue_bytes : 0), formula_all,
                  g(cb, cb ? cb->ops_per_s / 1e6 : 0), g(ca, ca ? ca->ops_per_s / 1e6 : 0),
                  g(a, a ? a->cpu_bytes + a->shared_bytes + a->alien_bytes : 0),
                  a ? a->caches_made : 0, g(k, k ? k->ext_queue_bytes : 0),
                  g(ck, ck ? ck->ops_per_s / 1e6 : 0));
        };
        if (p.nodes == 4) row(fc, p.cpus);
        if (p.cpus == 4096) row(fn, p.nodes);
      }
      for (FILE* f : {fc, fn})
        if (f) fclose(f);
      char title[200];
      snprintf(title, sizeof title, "%d caches", base.caches);
      const std::string mem_plot =
          "set logscale xy 2\nset format y '%.0b %BB'\nset ylabel 'bytes in queues and per-CPU "
          "structures'\nplot DAT using 1:4 with lines lw 1 dt 2 lc rgb 'black' title 'SLAB "
          "formula (docs/SLAB.md)', DAT using 1:2 with points pt 7 ps 1.5 lc rgb "
          "'#d62728' title 'SLAB (measured; formula for caches beyond the budget)', DAT using "
          "1:7 with points pt 6 ps 2.2 lc rgb '#d62728' title 'SLAB, measured caches only', DAT "
          "using 1:9 with linespoints pt 4 lw 2 lc rgb '#2ca02c' title 'SLUB classic (CPU slots "
          "+ node structs)', DAT using 1:3 with linespoints pt 5 lw 2 lc rgb '#1f77b4' title "
          "'SLUB sheaves (CPU slots, sheaves, barns; measured mean x caches beyond the "
          "budget)'\n";
      gnuplot(d, "queue_vs_cpus",
              std::string(kGpHead) + "set output '" + d + "/queue_vs_cpus.png'\nDAT='" + d +
                  "/data/sweep_cpus.dat'\nset title 'Queue memory vs CPUs (4 nodes, " + title +
                  ")'\nset xlabel 'virtual CPUs'\n" + mem_plot);
      gnuplot(d, "queue_vs_nodes",
              std::string(kGpHead) + "set output '" + d + "/queue_vs_nodes.png'\nDAT='" + d +
                  "/data/sweep_nodes.dat'\nset title 'Queue memory vs nodes (4096 CPUs, " + title +
                  ")'\nset xlabel 'virtual nodes'\n" + mem_plot);
      gnuplot(
          d, "throughput_vs_cpus",
          std::string(kGpHead) + "set output '" + d + "/throughput_vs_cpus.png'\nDAT='" + d +
              "/data/sweep_cpus.dat'\nset title 'churn throughput vs CPUs (4 nodes; all threads "
              "share 2 real cores: relative)'\nset xlabel 'virtual CPUs'\nset logscale x "
              "2\nset ylabel 'M ops/s'\nset yrange [0:*]\nplot DAT using 1:5 with "
              "linespoints lw 2 title 'SLUB sheaves', DAT using 1:10 with linespoints lw 2 title "
              "'SLUB classic', DAT using 1:6 with linespoints lw 2 title 'SLAB'\n");
      plot_idle(d, runs, 4096);
    }
  }
  return finish(o, runs);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  bool from_csv = false;
  const std::vector<size_t> sizes = load_sizes(o.sizes, &from_csv);
  if (!from_csv)
    fprintf(stderr, "harness: %s not readable; using %zu built-in object sizes\n", o.sizes.c_str(),
            sizes.size());
  setvbuf(stdout, nullptr, _IOLBF, 0);
  return o.sweep ? run_sweep(o, sizes, from_csv) : run_grid(o, sizes, from_csv);
}
