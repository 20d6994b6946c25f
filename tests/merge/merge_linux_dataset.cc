// SPDX-License-Identifier: MIT
// merge_linux_dataset: creates every named cache of a real Linux 6.18 machine
// (tests/data/linux-6.18-slab-caches.csv) with the fields the dataset carries, and compares
// which caches slub merges with what that kernel merged (the merged_into column).
//
// A difference passes only when a field the dataset does not carry explains it:
//   SLAB_ACCOUNT  the kernel's id has an 'A' (":A-0000064"): memcg-accounted caches merge only
//                 with each other; the dataset has no account column, so slub cannot tell.
//   NO_MERGE      the kernel kept a cache alone that the dataset gives no reason to (no ctor,
//                 RCU, usercopy or sheaf): SLAB_NO_MERGE or a boot cache, neither in the data.
// Anything else fails the test.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <slub/slub.h>

namespace {

struct Row {
  std::string name, merged_into;
  size_t object_size = 0, align = 0, usersize = 0;
  bool ctor = false, rcu = false, hwcache = false, reclaim = false, dma = false;
  unsigned sheaf = 0;
};

void noop_ctor(void*) {}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string f;
  while (std::getline(ss, f, ',')) out.push_back(f);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

// The flags part of a kernel unique id (":aA-0000064" -> "aA").
std::string id_flags(const std::string& id) {
  size_t dash = id.find('-');
  return (id.size() > 1 && id[0] == ':' && dash != std::string::npos) ? id.substr(1, dash - 1) : "";
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "tests/data/linux-6.18-slab-caches.csv";
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "merge_linux_dataset: cannot read %s\n", path);
    return 2;
  }
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = split(line);
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f = split(line);
    if (f.size() < header.size() || f[0].empty() || f[0][0] == ':') continue;
    Row r;
    r.name = f[col["name"]];
    r.merged_into = f[col["merged_into"]];
    r.object_size = std::stoul(f[col["object_size"]]);
    r.align = std::stoul(f[col["align"]]);
    r.ctor = f[col["ctor"]] == "yes";
    r.rcu = f[col["destroy_by_rcu"]] == "1";
    r.hwcache = f[col["hwcache_align"]] == "1";
    r.reclaim = f[col["reclaim_account"]] == "1";
    r.dma = f[col["cache_dma"]] == "1";
    r.usersize = std::stoul(f[col["usersize"]]);
    r.sheaf = static_cast<unsigned>(std::stoul(f[col["sheaf_capacity"]]));
    rows.push_back(r);
  }

  // Create them all, in the file's order.
  std::map<std::string, kmem_cache*> made;
  for (const Row& r : rows) {
    unsigned long flags = 0;
    if (r.hwcache) flags |= SLAB_HWCACHE_ALIGN;
    if (r.rcu) flags |= SLAB_TYPESAFE_BY_RCU;
    if (r.reclaim) flags |= SLAB_RECLAIM_ACCOUNT;
    if (r.dma) flags |= SLAB_CACHE_DMA;
    if (r.sheaf != 0) flags |= SLAB_NO_MERGE;  // 6.18: caches with sheaves are unmergeable
    const size_t align = r.hwcache ? 0 : r.align;
    kmem_cache* c = kmem_cache_create_usercopy(r.name.c_str(), r.object_size, align, flags, 0,
                                               r.usersize, r.ctor ? noop_ctor : nullptr);
    if (c == nullptr) {
      std::fprintf(stderr, "merge_linux_dataset: cannot create %s\n", r.name.c_str());
      return 1;
    }
    made[r.name] = c;
  }

  // Groups: kernel by merged_into (or itself), slub by the cache returned.
  std::map<std::string, std::set<std::string>> kgroup, sgroup;
  std::map<std::string, std::string> kkey;
  std::map<kmem_cache*, std::string> skey;
  for (const Row& r : rows) {
    kkey[r.name] = r.merged_into.empty() ? r.name : r.merged_into;
    kgroup[kkey[r.name]].insert(r.name);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", static_cast<void*>(made[r.name]));
    skey[made[r.name]] = buf;
    sgroup[buf].insert(r.name);
  }
  std::map<std::string, const Row*> by_name;
  for (const Row& r : rows) by_name[r.name] = &r;

  size_t agree = 0;
  std::map<std::string, std::vector<std::string>> explained;
  std::vector<std::string> unexplained;
  for (const Row& r : rows) {
    const auto& k = kgroup[kkey[r.name]];
    const auto& s = sgroup[skey[made[r.name]]];
    if (k == s) {
      ++agree;
      continue;
    }
    // Which of the known causes applies? ACCOUNT: the kernel's group of this cache or of one it
    // is grouped with differently carries an 'A' (accounted) id.
    bool account = false, no_merge = false;
    std::set<std::string> differ;
    for (const auto& n : s)
      if (!k.count(n)) differ.insert(n);
    for (const auto& n : k)
      if (!s.count(n)) differ.insert(n);
    differ.insert(r.name);
    for (const auto& n : differ) {
      const Row* o = by_name[n];
      if (id_flags(kkey[n]).find('A') != std::string::npos) account = true;
      const bool reason = o->ctor || o->rcu || o->usersize != 0 || o->sheaf != 0;
      if (o->merged_into.empty() && !reason) no_merge = true;
    }
    if (account)
      explained["SLAB_ACCOUNT (not in the dataset)"].push_back(r.name);
    else if (no_merge)
      explained["SLAB_NO_MERGE or boot cache (not in the dataset)"].push_back(r.name);
    else
      unexplained.push_back(r.name);
  }

  std::set<kmem_cache*> distinct;
  for (const auto& [n, c] : made) distinct.insert(c);
  std::printf("merge: %zu names -> %zu caches (kernel: %zu); grouping agrees for %zu of %zu\n",
              rows.size(), distinct.size(), kgroup.size(), agree, rows.size());
  for (const auto& [why, names] : explained) {
    std::printf("  explained by %s: %zu:", why.c_str(), names.size());
    for (const auto& n : names) std::printf(" %s", n.c_str());
    std::printf("\n");
  }
  for (const auto& n : unexplained) {
    std::string ks, ss;
    for (const auto& m : kgroup[kkey[n]]) ks += " " + m;
    for (const auto& m : sgroup[skey[made[n]]]) ss += " " + m;
    std::printf("  UNEXPLAINED %s: kernel {%s } slub {%s }\n", n.c_str(), ks.c_str(), ss.c_str());
  }
  return unexplained.empty() ? 0 : 1;
}
