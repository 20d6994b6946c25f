// pal/topology: the only source of "which node is CPU k on" and of the CPU and node counts.
// Real mode: the possible CPUs from /sys, one node (hwloc refines this in the NUMA work).
// Virtual mode: a synthetic machine of N CPUs in M nodes for tests and the harness; it must be
// declared before the caches that should see it are created.
#pragma once

#include "pal/cpu_id.h"

namespace slub {

inline constexpr int kMaxNodes = 1024;

class Topology {
 public:
  static void init();  // reads the possible CPU count; no malloc
  static int nr_cpus() { return nr_cpus_; }
  static int nr_nodes() { return nr_nodes_; }
  static int node_of(int cpu) { return nr_nodes_ == 1 ? 0 : (cpu / cpus_per_node_) % nr_nodes_; }
  // Declares a synthetic topology: `cpus` CPUs (<= kMaxCpus) in `nodes` nodes, CPUs spread
  // in equal consecutive blocks. Returns -1 for impossible values.
  static int set_virtual(int cpus, int nodes);

 private:
  static inline int nr_cpus_ = 1;
  static inline int nr_nodes_ = 1;
  static inline int cpus_per_node_ = 1;
};

}  // namespace slub
