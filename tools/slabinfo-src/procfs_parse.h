// SPDX-License-Identifier: MIT
// Parser for the /proc/slabinfo "version: 2.1" text (the kernel's, and `slabinfo PID --proc`).
// Header-only; used by the slabinfo tests on both.
//
// A file is the line "slabinfo - version: 2.1", the "# name <active_objs> ..." comment line,
// then one line per cache:
//   name active_objs num_objs objsize objperslab pagesperslab
//     : tunables limit batchcount sharedfactor : slabdata active_slabs num_slabs sharedavail
#ifndef SLABINFO_PROCFS_PARSE_H
#define SLABINFO_PROCFS_PARSE_H

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace slabinfo {

struct ProcSlabRecord {
  std::string name;
  uint64_t active_objs = 0;
  uint64_t num_objs = 0;
  uint64_t objsize = 0;
  uint64_t objperslab = 0;
  uint64_t pagesperslab = 0;
  uint64_t limit = 0, batchcount = 0, sharedfactor = 0;  // tunables (0 for SLUB)
  uint64_t active_slabs = 0;
  uint64_t num_slabs = 0;
  uint64_t sharedavail = 0;
};

struct ProcSlabinfo {
  std::string version;                  // "2.1"
  std::vector<ProcSlabRecord> records;  // in file order
  std::vector<std::string> errors;      // "line N: why", one per line that did not parse
  bool ok() const { return errors.empty() && version == "2.1"; }
  const ProcSlabRecord* find(std::string_view name) const {
    for (const auto& r : records)
      if (r.name == name) return &r;
    return nullptr;
  }
};

namespace detail {
inline bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}
}  // namespace detail

// Parses one cache line; false if it is not one.
inline bool parse_proc_slabinfo_line(std::string_view line, ProcSlabRecord& r) {
  std::istringstream in{std::string(line)};
  std::vector<std::string> t;
  for (std::string w; in >> w;) t.push_back(w);
  // name + 5 numbers, ":" "tunables" + 3, ":" "slabdata" + 3 = 16 tokens. SLAB with STATS
  // appends " : globalstat ... : cpustat ...", which is accepted and ignored.
  if (t.size() < 16 || t[6] != ":" || t[7] != "tunables" || t[11] != ":" || t[12] != "slabdata")
    return false;
  r.name = t[0];
  uint64_t* fields[] = {&r.active_objs,  &r.num_objs,  &r.objsize,    &r.objperslab,
                        &r.pagesperslab, &r.limit,     &r.batchcount, &r.sharedfactor,
                        &r.active_slabs, &r.num_slabs, &r.sharedavail};
  const int at[] = {1, 2, 3, 4, 5, 8, 9, 10, 13, 14, 15};
  for (int i = 0; i < 11; i++)
    if (!detail::parse_u64(t[at[i]], *fields[i])) return false;
  return true;
}

inline ProcSlabinfo parse_proc_slabinfo(std::string_view text) {
  ProcSlabinfo out;
  size_t pos = 0;
  int lineno = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    lineno++;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    constexpr std::string_view kVersion = "slabinfo - version: ";
    if (line.substr(0, kVersion.size()) == kVersion) {
      out.version = std::string(line.substr(kVersion.size()));
      continue;
    }
    if (line[0] == '#') continue;
    ProcSlabRecord r;
    if (parse_proc_slabinfo_line(line, r))
      out.records.push_back(std::move(r));
    else
      out.errors.push_back("line " + std::to_string(lineno) + ": " + std::string(line));
  }
  if (out.version.empty()) out.errors.push_back("no 'slabinfo - version:' line");
  return out;
}

}  // namespace slabinfo

#endif  // SLABINFO_PROCFS_PARSE_H
