// SPDX-License-Identifier: MIT
#include "pal/topology.h"

#include <dlfcn.h>
#include <hwloc.h>

#include <type_traits>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "pal/options.h"
#include "pal/os.h"

namespace slub {

namespace {
// Parses the kernel's CPU/node list format ("0-3,8-11") and returns highest id + 1.
int parse_id_list(const char* s) {
  int hi = -1;
  long cur = 0;
  bool have = false;
  for (const char* p = s;; ++p) {
    if (*p >= '0' && *p <= '9') {
      cur = cur * 10 + (*p - '0');
      have = true;
    } else {
      if (have && cur > hi) hi = static_cast<int>(cur);
      cur = 0;
      have = false;
      if (*p == '\0' || *p == '\n') break;
    }
  }
  return hi + 1;
}

int possible_count(const char* path, int max) {
  char buf[256];
  int n = 0;
  if (os::read_file(path, buf, sizeof buf) > 0) n = parse_id_list(buf);
  if (n <= 0) n = 1;
  return n > max ? max : n;
}

void set_err(char* err, unsigned len, const char* msg) {
  if (err != nullptr && len > 0) snprintf(err, len, "%s", msg);
}

// Reads an unsigned decimal at *p, advancing it; -1 if there is none.
long read_num(const char** p) {
  if (**p < '0' || **p > '9') return -1;
  long v = 0;
  while (**p >= '0' && **p <= '9' && v < 1000000) v = v * 10 + (*(*p)++ - '0');
  return v;
}
}  // namespace

void Topology::init() {
  nr_cpus_ = possible_count("/sys/devices/system/cpu/possible", kMaxCpus);
  possible_cpus_ = nr_cpus_;
  // Node ids are the OS's; "possible" may include nodes without CPUs or memory.
  nr_nodes_ = possible_count("/sys/devices/system/node/possible", kMaxNodes);
  if (const char* spec = options::str(options::kOptTopology)) {
    char err[128];
    if (set_virtual(spec, err, sizeof err) != 0) options::reject(options::kOptTopology, spec, err);
  }
}

int Topology::set_virtual(int cpus, int nodes, int local, int remote, bool ring) {
  if (cpus < 1 || cpus > kMaxCpus || nodes < 1 || nodes > kMaxNodes || nodes > cpus) return -1;
  if (local < 1 || remote < local || remote > 255 ||
      (ring && local + (remote - local) * (nodes / 2) > 65535))
    return -1;
  nr_cpus_ = cpus;
  cpus_per_node_ = (cpus + nodes - 1) / nodes;
  local_dist_ = local;
  remote_dist_ = remote;
  ring_ = ring;
  virtual_ = true;
  nr_nodes_ = nodes;
  fill_virtual_map();
  return 0;
}

void Topology::fill_virtual_map() {
  for (int cpu = 0; cpu < kMaxCpus; ++cpu)
    cpu_node_[cpu] = static_cast<uint16_t>((cpu / cpus_per_node_) % nr_nodes_);
}

int Topology::set_virtual(const char* spec, char* err, unsigned errlen) {
  long cpus = -1, nodes = -1, local = 10, remote = 20, ring = 0;
  const char* p = spec;
  while (*p != '\0') {
    const char* eq = strchr(p, '=');
    if (eq == nullptr) {
      set_err(err, errlen, "expected key=value");
      return -1;
    }
    const size_t klen = static_cast<size_t>(eq - p);
    const char* v = eq + 1;
    long* out = nullptr;
    if (klen == 4 && memcmp(p, "cpus", 4) == 0) {
      out = &cpus;
    } else if (klen == 5 && memcmp(p, "nodes", 5) == 0) {
      out = &nodes;
    } else if (klen == 4 && memcmp(p, "ring", 4) == 0) {
      out = &ring;
    } else if (klen == 8 && memcmp(p, "distance", 8) == 0) {
      local = read_num(&v);
      if (*v++ != ':' || local < 0 || (remote = read_num(&v)) < 0) {
        set_err(err, errlen, "distance must be LOCAL:REMOTE, as 10:20");
        return -1;
      }
    } else {
      set_err(err, errlen, "unknown key (cpus, nodes, distance, ring)");
      return -1;
    }
    if (out != nullptr && (*out = read_num(&v)) < 0) {
      set_err(err, errlen, "expected a number");
      return -1;
    }
    if (*v != ',' && *v != '\0') {
      set_err(err, errlen, "junk after a value");
      return -1;
    }
    p = *v == ',' ? v + 1 : v;
  }
  if (nodes < 0) nodes = 1;
  if (cpus < 0) cpus = nodes > nr_cpus_ ? nodes : nr_cpus_;
  if (set_virtual(static_cast<int>(cpus), static_cast<int>(nodes), static_cast<int>(local),
                  static_cast<int>(remote), ring != 0) != 0) {
    set_err(err, errlen,
            "need 1 <= nodes <= cpus <= 4096, nodes <= 1024, 1 <= local <= remote <= 255");
    return -1;
  }
  return 0;
}

int Topology::distance(int a, int b) {
  if (a == b) return local_dist_;
  if (virtual_) {
    if (!ring_) return remote_dist_;
    int hops = a > b ? a - b : b - a;
    if (nr_nodes_ - hops < hops) hops = nr_nodes_ - hops;
    return local_dist_ + (remote_dist_ - local_dist_) * hops;
  }
  if (a < kMaxRealNodes && b < kMaxRealNodes && dist_[a][b] != 0) return dist_[a][b];
  return remote_dist_;
}

int Topology::nearest(int node, int k) {
  const int n = nr_nodes_;
  if (virtual_ && ring_) {  // node, node+1, node-1, node+2, node-2, ...
    const int step = (k + 1) / 2;
    const int m = (k & 1) ? node + step : node - step;
    return ((m % n) + n) % n;
  }
  if (!virtual_ && have_order_ && node < kMaxRealNodes && n <= kMaxRealNodes)
    return order_[node][k];
  return (node + k) % n;  // all remote nodes equally far
}

namespace {
// libhwloc is opened only when needed (a multi-node machine, or SLUB_HWLOC=1), so that the
// usual one-node process neither loads it nor pays its ~5 ms of discovery at start-up.
struct Hwloc {
  decltype(&hwloc_topology_init) init;
  decltype(&hwloc_topology_set_all_types_filter) set_all_types_filter;
  decltype(&hwloc_topology_set_flags) set_flags;
  decltype(&hwloc_topology_load) load;
  decltype(&hwloc_topology_destroy) destroy;
  decltype(&hwloc_get_type_depth) type_depth;
  decltype(&hwloc_get_nbobjs_by_depth) nbobjs_by_depth;
  decltype(&hwloc_get_obj_by_depth) obj_by_depth;
  decltype(&hwloc_bitmap_next) bitmap_next;
  decltype(&hwloc_distances_get_by_type) distances_get_by_type;
  decltype(&hwloc_distances_release) distances_release;

  bool open() {
    void* lib = dlopen("libhwloc.so.15", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return false;
    bool ok = true;
    auto get = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      ok = ok && fn != nullptr;
    };
    get(init, "hwloc_topology_init");
    get(set_all_types_filter, "hwloc_topology_set_all_types_filter");
    get(set_flags, "hwloc_topology_set_flags");
    get(load, "hwloc_topology_load");
    get(destroy, "hwloc_topology_destroy");
    get(type_depth, "hwloc_get_type_depth");
    get(nbobjs_by_depth, "hwloc_get_nbobjs_by_depth");
    get(obj_by_depth, "hwloc_get_obj_by_depth");
    get(bitmap_next, "hwloc_bitmap_next");
    get(distances_get_by_type, "hwloc_distances_get_by_type");
    get(distances_release, "hwloc_distances_release");
    return ok;
  }
};
}  // namespace

void Topology::discover() {
  // SLUB_HWLOC: unset = only when /sys lists more than one possible node (one node needs no
  // map: every CPU is on node 0); 1 = always; 0 = never.
  const long want = options::number(options::kOptHwloc);
  if (virtual_ || discovered_ || want == 0 || (want < 0 && nr_nodes_ == 1)) return;
  discovered_ = true;  // once, even if hwloc fails
  Hwloc h;
  if (!h.open()) return;
  hwloc_topology_t t;
  if (h.init(&t) != 0) return;
  // Only CPUs and NUMA nodes matter (they cannot be filtered out); the possible CPUs, not the
  // ones this process may run on.
  h.set_all_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
  h.set_flags(t, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
  if (h.load(t) != 0) {
    h.destroy(t);
    return;
  }
  const int depth = h.type_depth(t, HWLOC_OBJ_NUMANODE);
  const int nn = static_cast<int>(h.nbobjs_by_depth(t, depth));
  int max_id = 0;
  for (int i = 0; i < nn; ++i) {
    hwloc_obj_t node = h.obj_by_depth(t, depth, static_cast<unsigned>(i));
    const int id = static_cast<int>(node->os_index);
    if (id >= kMaxNodes) continue;
    if (id > max_id) max_id = id;
    for (int cpu = h.bitmap_next(node->cpuset, -1); cpu >= 0 && cpu < kMaxCpus;
         cpu = h.bitmap_next(node->cpuset, cpu))
      cpu_node_[cpu] = static_cast<uint16_t>(id);
  }
  unsigned nr = 1;
  hwloc_distances_s* d = nullptr;
  if (h.distances_get_by_type(t, HWLOC_OBJ_NUMANODE, &nr, &d, 0, 0) == 0 && nr == 1) {
    for (unsigned i = 0; i < d->nbobjs; ++i)
      for (unsigned j = 0; j < d->nbobjs; ++j) {
        const unsigned a = d->objs[i]->os_index, b = d->objs[j]->os_index;
        const uint64_t v = d->values[i * d->nbobjs + j];
        if (a < kMaxRealNodes && b < kMaxRealNodes && v > 0 && v < 256)
          dist_[a][b] = static_cast<uint8_t>(v);
      }
    h.distances_release(t, d);
  }
  h.destroy(t);
  hwloc_nodes_ = nn;
  if (max_id + 1 > nr_nodes_) nr_nodes_ = max_id + 1;  // /sys said fewer: trust hwloc
  if (nr_nodes_ <= kMaxRealNodes) {
    // Nearest-first order per node: a stable insertion sort by distance, starting at node + 1.
    for (int a = 0; a < nr_nodes_; ++a) {
      int cnt = 0;
      for (int k = 0; k < nr_nodes_; ++k) {
        const int b = (a + k) % nr_nodes_;
        const int db = distance(a, b);
        int pos = cnt++;
        while (pos > 0 && distance(a, order_[a][pos - 1]) > db) {
          order_[a][pos] = order_[a][pos - 1];
          --pos;
        }
        order_[a][pos] = static_cast<uint8_t>(b);
      }
    }
    have_order_ = true;
  }
}

}  // namespace slub
