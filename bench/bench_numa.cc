// SPDX-License-Identifier: MIT
// bench_numa: what node placement costs and saves, on a virtual topology (default: 16 CPUs in
// 4 nodes) or, with --real on a multi-node machine, on real nodes with threads pinned to CPUs.
// docs/NUMA.md reports it; tools/slub bench --numa runs it.
//
//   prodcons/local   a producer allocates, a consumer on a CPU of the same node frees
//   prodcons/cross   the same with the consumer on another node (all frees are remote)
//   alloc_node/*     alloc+free pairs with kmem_cache_alloc_node: local node, a remote node,
//                    and alternating (the CPU slab is deactivated on every switch)
//   miss/ratio=R     a CPU whose node has no partial slab allocates while another node keeps
//                    spare partial slabs: the share of objects taken from that node
//                    (get_any_partial) with remote_node_defrag_ratio R
//
// Each figure is the median of --rounds rounds (5), the scenarios interleaved round by round.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <slub/slub.h>
#include <slub/stats.h>

#include "cli.h"

namespace {

bool g_real = false;

double now_ns() {
  return std::chrono::duration<double, std::nano>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The first CPU of `node`.
int cpu_of_node(int node) {
  for (int cpu = 0; cpu < SLUB_MAX_CPUS; ++cpu)
    if (slub_cpu_node(cpu) == node) return cpu;
  return -1;
}

// Puts the calling thread on `cpu`: a virtual CPU, or (--real) the real one by affinity.
void go_to_cpu(int cpu) {
  if (!g_real) {
    slub_bind_vcpu(cpu);
    return;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// A single-producer single-consumer ring of batches of pointers.
constexpr size_t kBatch = 64;
constexpr size_t kRing = 64;
struct Ring {
  void* slots[kRing][kBatch];
  alignas(64) std::atomic<size_t> head{0};
  alignas(64) std::atomic<size_t> tail{0};
};

// ns per object handed from a producer on CPU p to a consumer on CPU q that frees it.
double prodcons(kmem_cache* c, int p, int q, size_t objects) {
  Ring* r = new Ring;
  const size_t batches = objects / kBatch;
  double t0 = now_ns();
  std::thread cons([&] {
    go_to_cpu(q);
    for (size_t b = 0; b < batches; ++b) {
      size_t t = r->tail.load(std::memory_order_relaxed);
      while (r->head.load(std::memory_order_acquire) == t) sched_yield();
      for (void* o : r->slots[t % kRing]) kmem_cache_free(c, o);
      r->tail.store(t + 1, std::memory_order_release);
    }
    slub_bind_vcpu(-1);
  });
  std::thread prod([&] {
    go_to_cpu(p);
    for (size_t b = 0; b < batches; ++b) {
      size_t h = r->head.load(std::memory_order_relaxed);
      while (h - r->tail.load(std::memory_order_acquire) >= kRing) sched_yield();
      for (void*& o : r->slots[h % kRing]) {
        o = kmem_cache_alloc(c);
        memset(o, 1, 64);  // the consumer's free reads a line the producer wrote
      }
      r->head.store(h + 1, std::memory_order_release);
    }
    slub_bind_vcpu(-1);
  });
  prod.join();
  cons.join();
  double t = (now_ns() - t0) / static_cast<double>(batches * kBatch);
  delete r;
  return t;
}

// ns per kmem_cache_alloc_node + free pair from CPU `cpu`, cycling over `nodes`.
double alloc_node_pairs(kmem_cache* c, int cpu, const std::vector<int>& nodes, size_t pairs) {
  double t = 0;
  std::thread th([&] {
    go_to_cpu(cpu);
    double t0 = now_ns();
    for (size_t i = 0; i < pairs; ++i) {
      void* o = kmem_cache_alloc_node(c, nodes[i % nodes.size()]);
      kmem_cache_free(c, o);
    }
    t = (now_ns() - t0) / static_cast<double>(pairs);
    slub_bind_vcpu(-1);
  });
  th.join();
  return t;
}

// Share of allocations by a CPU of `local` served from `donor`'s spare partial slabs.
double miss_share(int local, int donor, unsigned ratio) {
  kmem_cache* c = kmem_cache_create("bench-numa-miss", 256, 0, 0, nullptr);
  kmem_cache_set_remote_node_defrag_ratio(c, ratio);
  kmem_cache_info info{};
  kmem_cache_get_info(c, &info);
  // 64 partial slabs on the donor node: every other object freed.
  std::vector<void*> kept;
  std::vector<void*> all;
  for (unsigned i = 0; i < 64 * info.objs_per_slab; ++i)
    all.push_back(kmem_cache_alloc_node(c, donor));
  for (size_t i = 0; i < all.size(); ++i) {
    if (i % 2)
      kmem_cache_free(c, all[i]);
    else
      kept.push_back(all[i]);
  }
  kmem_cache_shrink(c);
  size_t from_donor = 0, n = 0;
  std::vector<void*> got;
  std::thread th([&] {
    go_to_cpu(cpu_of_node(local));
    for (unsigned i = 0; i < 16 * info.objs_per_slab; ++i) {
      void* o = kmem_cache_alloc(c);
      from_donor += slub_node_of(o) == donor;
      ++n;
      got.push_back(o);
    }
    slub_bind_vcpu(-1);
  });
  th.join();
  for (void* o : got) kmem_cache_free(c, o);
  for (void* o : kept) kmem_cache_free(c, o);
  kmem_cache_destroy(c);
  return static_cast<double>(from_donor) / static_cast<double>(n);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const char* topo = "cpus=16,nodes=4,distance=10:20";
  int rounds = 5;
  size_t objects = 2000000;
  static const char kUsage[] =
      "usage: bench_numa [--topology SPEC | --real] [--rounds N] [--objects N]\n"
      "  SPEC: slub_set_topology's, default cpus=16,nodes=4,distance=10:20;\n"
      "  --rounds 1..1000000 (5), --objects 256..1000000000 (2000000)\n";
  const bench_cli::Cli cli{"bench_numa", kUsage};
  enum { kReal = 256, kTopology, kRounds, kObjects };
  static const option kLong[] = {{"real", no_argument, nullptr, kReal},
                                 {"topology", required_argument, nullptr, kTopology},
                                 {"rounds", required_argument, nullptr, kRounds},
                                 {"objects", required_argument, nullptr, kObjects},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  for (int c; (c = bench_cli::next_option(cli, argc, argv, kLong)) != -1;) {
    const std::string name = bench_cli::option_name(kLong, c);
    switch (c) {
      case kReal:
        g_real = true;
        break;
      case kTopology:
        topo = optarg;
        break;
      case kRounds:
        rounds = int(bench_cli::int_arg(cli, name.c_str(), optarg, 1, 1'000'000));
        break;
      case kObjects:  // at least 4 batches of 64: alloc_node/alternating does objects / 4 pairs
        objects = size_t(bench_cli::int_arg(cli, name.c_str(), optarg, 4 * kBatch, 1'000'000'000));
        break;
    }
  }
  bench_cli::no_operands(cli, argc, argv);
  if (!g_real && slub_set_topology(topo) != 0) return 2;
  if (slub_nr_nodes() < 2) {
    fprintf(stderr, "bench_numa: needs two nodes or more (this machine has %d)\n", slub_nr_nodes());
    return 1;
  }
  const int n0 = 0, n1 = 1;
  const int p = cpu_of_node(n0);
  int q_local = -1;
  for (int cpu = p + 1; cpu < SLUB_MAX_CPUS && q_local < 0; ++cpu)
    if (slub_cpu_node(cpu) == n0) q_local = cpu;
  const int q_cross = cpu_of_node(n1);
  if (q_local < 0 || q_cross < 0) {
    fprintf(stderr, "bench_numa: node 0 needs two CPUs and node 1 one\n");
    return 1;
  }
  kmem_cache* c = kmem_cache_create("bench-numa", 256, 0, 0, nullptr);
  struct Row {
    std::string name;
    std::vector<double> v;
    const char* unit;
  };
  std::vector<Row> rows = {
      {"prodcons/local", {}, "ns/object"},       {"prodcons/cross", {}, "ns/object"},
      {"alloc_node/local", {}, "ns/pair"},       {"alloc_node/remote", {}, "ns/pair"},
      {"alloc_node/alternating", {}, "ns/pair"}, {"miss/ratio=100", {}, "share remote"},
      {"miss/ratio=0", {}, "share remote"}};
  const size_t pairs = objects;
  for (int r = 0; r < rounds; ++r) {
    rows[0].v.push_back(prodcons(c, p, q_local, objects));
    rows[1].v.push_back(prodcons(c, p, q_cross, objects));
    rows[2].v.push_back(alloc_node_pairs(c, p, {n0}, pairs));
    rows[3].v.push_back(alloc_node_pairs(c, p, {n1}, pairs));
    rows[4].v.push_back(alloc_node_pairs(c, p, {n0, n1}, pairs / 4));
    rows[5].v.push_back(miss_share(n0, n1, 100));
    rows[6].v.push_back(miss_share(n0, n1, 0));
  }
  printf(
      "bench_numa: %s, %d rounds, %zu objects of 256 bytes, producer CPU %d, consumers %d "
      "(node 0) and %d (node 1)\n\n",
      g_real ? "real nodes" : topo, rounds, objects, p, q_local, q_cross);
  printf("| scenario | median | unit | min | max |\n|---|---:|---|---:|---:|\n");
  for (const Row& row : rows) {
    auto [lo, hi] = std::minmax_element(row.v.begin(), row.v.end());
    printf("| %s | %.3f | %s | %.3f | %.3f |\n", row.name.c_str(), median(row.v), row.unit, *lo,
           *hi);
  }
  kmem_cache_node_info i0{}, i1{};
  kmem_cache_get_node_info(c, n0, &i0);
  kmem_cache_get_node_info(c, n1, &i1);
  printf("\nafter the runs: node 0 has %zu slabs (%zu partial), node 1 has %zu (%zu partial)\n",
         i0.nr_slabs, i0.nr_partial, i1.nr_slabs, i1.nr_partial);
  kmem_cache_destroy(c);
  return 0;
}
