// SPDX-License-Identifier: MIT
// pal/topology: the only source of "which node is CPU k on", of node distances and of the CPU
// and node counts.
//
// Real mode: at start-up (no malloc) the possible CPUs and the possible NUMA node ids come from
// /sys, and every CPU counts as on node 0; discover() then asks hwloc, once and outside every
// allocator lock, for the CPU-to-node map and the node distances (hwloc allocates: it runs after
// the allocator is ready, and its own mallocs are ordinary ones). Node ids are the OS's.
// Virtual mode (SLUB_TOPOLOGY or slub_set_topology): a synthetic machine of N CPUs in M nodes
// for tests and the harness, CPUs in equal consecutive blocks, distances by formula. Caches see
// the node count of the topology in force when they are created.
//
// Hot paths read only node_of() (one load from a 4096-entry table).
#pragma once

#include <cstdint>

#include "pal/cpu_id.h"

namespace slub {

inline constexpr int kMaxNodes = 1024;
inline constexpr int kMaxRealNodes = 64;  // distance table size for hwloc's answer

class Topology {
 public:
  // Reads the possible CPUs and nodes, then SLUB_TOPOLOGY if set. No malloc.
  static void init();
  // Real mode: fills the CPU-to-node map and distances from hwloc (dlopened), the first time
  // only, when /sys lists more than one node or SLUB_HWLOC=1 (SLUB_HWLOC=0: never). Calls
  // malloc; never call it with an allocator lock held.
  static void discover();

  static int nr_cpus() { return nr_cpus_; }
  // The machine's possible CPUs, whatever a virtual topology says: the CPU ids the kernel's
  // rseq area may show.
  static int possible_cpus() { return possible_cpus_; }
  static int nr_nodes() { return nr_nodes_; }
  static int node_of(int cpu) { return cpu_node_[cpu]; }
  static bool is_virtual() { return virtual_; }
  // NUMA nodes hwloc reported, or 0 if it did not run (one-node machine, virtual mode).
  static int hwloc_nodes() { return hwloc_nodes_; }
  // The kernel's node_distance(): 10 for a node to itself, larger for farther nodes.
  static int distance(int a, int b);
  // The k-th nearest node to `node` (k = 0 is node itself), ties broken by node id counted from
  // node + 1 so that equally distant nodes share the load: the kernel's zonelist order.
  static int nearest(int node, int k);

  // Declares a synthetic topology. `spec` is SLUB_TOPOLOGY's syntax, comma-separated keys:
  //   cpus=N (1..4096), nodes=M (1..1024, <= N), distance=L:R (local and remote, 10:20),
  //   ring=1 (remote distance grows with the hops around a ring of nodes: L + (R-L)*hops).
  // Returns 0, or -1 (nothing changed) with a message in err (if given) for bad input.
  static int set_virtual(const char* spec, char* err = nullptr, unsigned errlen = 0);
  static int set_virtual(int cpus, int nodes, int local = 10, int remote = 20, bool ring = false);

 private:
  static void fill_virtual_map();
  static inline int nr_cpus_ = 1;
  static inline int possible_cpus_ = 1;
  static inline int nr_nodes_ = 1;
  static inline int cpus_per_node_ = 1;
  static inline bool virtual_ = false;
  static inline bool ring_ = false;
  static inline bool discovered_ = false;
  static inline int hwloc_nodes_ = 0;
  static inline int local_dist_ = 10;
  static inline int remote_dist_ = 20;
  static inline uint16_t cpu_node_[kMaxCpus] = {};
  // Real mode, from hwloc: distances between nodes < kMaxRealNodes, and each node's
  // nearest-first order. Zero entries mean "unknown" (local/remote defaults apply).
  static inline uint8_t dist_[kMaxRealNodes][kMaxRealNodes] = {};
  static inline uint8_t order_[kMaxRealNodes][kMaxRealNodes] = {};
  static inline bool have_order_ = false;
};

}  // namespace slub
