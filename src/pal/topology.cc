#include "pal/topology.h"

#include "pal/os.h"

namespace slub {

namespace {
// Parses the kernel's CPU list format ("0-3,8-11") and returns highest id + 1.
int parse_cpu_list(const char* s) {
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
}  // namespace

void Topology::init() {
  char buf[256];
  int n = 0;
  if (os::read_file("/sys/devices/system/cpu/possible", buf, sizeof buf) > 0)
    n = parse_cpu_list(buf);
  if (n <= 0) n = 1;
  if (n > kMaxCpus) n = kMaxCpus;
  nr_cpus_ = n;
}

int Topology::set_virtual(int cpus, int nodes) {
  if (cpus < 1 || cpus > kMaxCpus || nodes < 1 || nodes > kMaxNodes || nodes > cpus) return -1;
  nr_cpus_ = cpus;
  nr_nodes_ = nodes;
  cpus_per_node_ = (cpus + nodes - 1) / nodes;
  return 0;
}

}  // namespace slub
