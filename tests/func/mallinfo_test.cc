// SPDX-License-Identifier: MIT
// Functional tests of glibc's malloc extensions with slub's numbers (slub_mallinfo2,
// slub_malloc_trim, slub_malloc_stats, slub_malloc_info, slub_mallopt; docs/MALLINFO.md), through
// the public C API against known allocations. The test's own allocations (GoogleTest's) go to
// glibc: libslub.a leaves libc's malloc alone, so slub's heap holds only what the tests put in it.
// Run with SLUB_FLUSHER=0 (no service thread purges pages behind the tests' backs), which the
// binary sets itself before the allocator starts; ctest gives each case the mode's variable.
#include <slub/slub.h>

#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

__attribute__((constructor)) void no_service_thread() {
  setenv("SLUB_FLUSHER", "0", 0);
}

constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;

std::vector<void*> alloc_n(size_t n, size_t size) {
  std::vector<void*> v(n);
  for (auto& p : v) {
    p = slub_malloc(size);
    EXPECT_NE(p, nullptr);
    memset(p, 0x3c, size);
  }
  return v;
}

void free_all(std::vector<void*>& v) {
  for (void* p : v) slub_free(p);
  v.clear();
}

size_t rss_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// The identity of docs/MALLINFO.md: arena covers what is in use and what is free.
void check_consistent(const struct slub_mallinfo2& m) {
  EXPECT_GE(m.arena + m.hblkhd, m.uordblks + m.fordblks);
  EXPECT_GE(m.fordblks, m.fsmblks);
  EXPECT_EQ(m.usmblks, 0u);
  EXPECT_GE(m.fsmblks, m.smblks * 8);  // at least 8 bytes per parked object
}

TEST(Mallinfo, UordblksGrowsWithObjectsAndDropsBack) {
  const struct slub_mallinfo2 m0 = slub_mallinfo2();
  constexpr size_t kN = 10000, kSize = 256;
  auto v = alloc_n(kN, kSize);
  const struct slub_mallinfo2 m1 = slub_mallinfo2();
  EXPECT_GE(m1.uordblks, m0.uordblks + kN * kSize);
  EXPECT_LT(m1.uordblks, m0.uordblks + kN * kSize + 64 * KiB);  // slot = 256, a few parked
  EXPECT_GE(m1.arena, m1.uordblks);
  check_consistent(m1);
  free_all(v);
  const struct slub_mallinfo2 m2 = slub_mallinfo2();
  EXPECT_EQ(m2.uordblks, m0.uordblks);
  // Every freed object is free somewhere: parked, on a node list, or its slab's pages free.
  EXPECT_GE(m2.fordblks, m0.fordblks + kN * kSize);
  EXPECT_GT(m2.keepcost, 0u);
  check_consistent(m2);
}

TEST(Mallinfo, LargeBlocksAndHugeBlocks) {
  const struct slub_mallinfo2 m0 = slub_mallinfo2();
  void* large = slub_malloc(100 * KiB);  // page allocator: 32 pages
  void* huge = slub_malloc(4 * MiB);     // its own mapping
  ASSERT_NE(large, nullptr);
  ASSERT_NE(huge, nullptr);
  const struct slub_mallinfo2 m1 = slub_mallinfo2();
  EXPECT_EQ(m1.uordblks - m0.uordblks, 128 * KiB);
  EXPECT_EQ(m1.hblks, m0.hblks + 1);
  EXPECT_GE(m1.hblkhd - m0.hblkhd, 4 * MiB);
  slub_free(large);
  slub_free(huge);
  const struct slub_mallinfo2 m2 = slub_mallinfo2();
  EXPECT_EQ(m2.uordblks, m0.uordblks);
  EXPECT_EQ(m2.hblks, m0.hblks);
  EXPECT_EQ(m2.hblkhd, m0.hblkhd);
}

TEST(Mallinfo, ParkedObjectsAreFsmblks) {
  // Freed objects first land in front of the slabs (sheaves, CPU slab, CPU partials; SLAB's
  // arrays): a few frees are all parked; the count and the bytes agree.
  auto v = alloc_n(8, 128);
  const struct slub_mallinfo2 m0 = slub_mallinfo2();
  free_all(v);
  const struct slub_mallinfo2 m1 = slub_mallinfo2();
  EXPECT_EQ(m0.uordblks - m1.uordblks, 8 * 128u);
  EXPECT_GE(m1.smblks, m0.smblks);
  EXPECT_EQ(m1.fsmblks - m0.fsmblks, (m1.smblks - m0.smblks) * 128);
}

TEST(MallocTrim, GivesPagesBackAndSaysSo) {
  constexpr size_t kSize = 512, kN = 32 * MiB / kSize;
  auto v = alloc_n(kN, kSize);
  free_all(v);
  const struct slub_mallinfo2 before = slub_mallinfo2();
  const size_t rss_before = rss_bytes();
  ASSERT_GT(before.keepcost, 8 * MiB);
  EXPECT_EQ(slub_malloc_trim(0), 1);
  const struct slub_mallinfo2 after = slub_mallinfo2();
  EXPECT_LT(after.arena + 16 * MiB, before.arena);
  EXPECT_EQ(after.smblks, 0u);  // every per-CPU layer flushed
  EXPECT_LT(after.keepcost, 1 * MiB);
  EXPECT_LT(rss_bytes() + 16 * MiB, rss_before);
  check_consistent(after);
  // Nothing left to give back.
  EXPECT_EQ(slub_malloc_trim(0), 0);
}

TEST(MallocTrim, PadKeepsPages) {
  constexpr size_t kSize = 1024, kN = 16 * MiB / kSize;
  auto v = alloc_n(kN, kSize);
  free_all(v);
  EXPECT_EQ(slub_malloc_trim(4 * MiB), 1);
  const struct slub_mallinfo2 m = slub_mallinfo2();
  // Free resident pages kept: at least the pad (in whole runs, never more than the pad plus the
  // largest run of 1 MiB).
  EXPECT_GE(m.keepcost, 4 * MiB - 1 * MiB);
  EXPECT_LE(m.keepcost, 4 * MiB + 1 * MiB);
  EXPECT_EQ(slub_malloc_trim(0), 1);
}

// Reads everything written to fd 2 while fn runs.
template <typename F>
std::string capture_stderr(F fn) {
  FILE* tmp = tmpfile();
  EXPECT_NE(tmp, nullptr);
  fflush(stderr);
  const int saved = dup(2);
  dup2(fileno(tmp), 2);
  fn();
  dup2(saved, 2);
  close(saved);
  std::string out;
  rewind(tmp);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, tmp)) > 0) out.append(buf, n);
  fclose(tmp);
  return out;
}

TEST(MallocStats, GlibcLinesAndCaches) {
  auto v = alloc_n(1000, 256);
  const std::string out = capture_stderr([] { slub_malloc_stats(); });
  for (const char* want :
       {"Arena 0:\n", "system bytes     = ", "in use bytes     = ", "Total (incl. mmap):\n",
        "max mmap regions = ", "max mmap bytes   = ", "kmalloc-256 "})
    EXPECT_NE(out.find(want), std::string::npos) << want << " missing in:\n" << out;
  // The in-use line of the arena is mallinfo2's uordblks.
  const struct slub_mallinfo2 m = slub_mallinfo2();
  char line[64];
  snprintf(line, sizeof line, "in use bytes     = %10zu\n", m.uordblks);
  EXPECT_NE(out.find(line), std::string::npos) << line << " missing in:\n" << out;
  free_all(v);
}

// A minimal well-formedness check: every tag closed in order, attributes quoted.
bool well_formed(const std::string& xml, std::string* why) {
  std::vector<std::string> stack;
  size_t i = 0;
  while ((i = xml.find('<', i)) != std::string::npos) {
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) return *why = "unterminated tag", false;
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    const bool closing = tag[0] == '/', empty = tag.back() == '/';
    if (closing) tag = tag.substr(1);
    if (empty) tag.pop_back();
    const std::string name = tag.substr(0, tag.find(' '));
    size_t quotes = 0;
    for (char c : tag) quotes += c == '"';
    if (quotes % 2 != 0) return *why = "unbalanced quotes in <" + tag + ">", false;
    if (closing) {
      if (stack.empty() || stack.back() != name) return *why = "unexpected </" + name + ">", false;
      stack.pop_back();
    } else if (!empty) {
      stack.push_back(name);
    }
  }
  if (!stack.empty()) return *why = "<" + stack.back() + "> not closed", false;
  return true;
}

std::string malloc_info_string(int* rc) {
  FILE* f = tmpfile();
  EXPECT_NE(f, nullptr);
  *rc = slub_malloc_info(0, f);
  std::string out;
  rewind(f);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

size_t count_of(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

TEST(MallocInfo, XmlInGlibcShape) {
  auto v = alloc_n(2000, 96);
  for (size_t i = 0; i < v.size(); i += 2) slub_free(v[i]);  // free objects on the node lists
  int rc = -2;
  const std::string xml = malloc_info_string(&rc);
  EXPECT_EQ(rc, 0);
  std::string why;
  EXPECT_TRUE(well_formed(xml, &why)) << why << "\n" << xml;
  EXPECT_EQ(xml.rfind("<malloc version=\"1\">\n", 0), 0u) << xml;
  EXPECT_EQ(count_of(xml, "<heap nr="), static_cast<size_t>(slub_nr_nodes())) << xml;
  EXPECT_NE(xml.find("<heap nr=\"0\">\n<sizes>\n"), std::string::npos) << xml;
  EXPECT_EQ(count_of(xml, "<total type=\"mmap\""), 1u) << xml;
  // The totals: fast is mallinfo2's smblks/fsmblks (nothing allocated in between).
  const struct slub_mallinfo2 m = slub_mallinfo2();
  char fast[96];
  snprintf(fast, sizeof fast, "</heap>\n<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>",
           m.smblks, m.fsmblks);
  EXPECT_NE(xml.find(fast), std::string::npos) << fast << "\n" << xml;
  for (size_t i = 1; i < v.size(); i += 2) slub_free(v[i]);
}

TEST(MallocInfo, OptionsOtherThanZeroAreRejected) {
  errno = 0;
  EXPECT_EQ(slub_malloc_info(1, stdout), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Mallopt, UnknownOptionsAndBadValuesReturnZero) {
  EXPECT_EQ(slub_mallopt(M_MXFAST, 64), 0);
  EXPECT_EQ(slub_mallopt(M_ARENA_MAX, 1), 0);
  EXPECT_EQ(slub_mallopt(M_TOP_PAD, 0), 0);
  EXPECT_EQ(slub_mallopt(12345, 1), 0);
  EXPECT_EQ(slub_mallopt(M_TRIM_THRESHOLD, -1), 0);
  EXPECT_EQ(slub_mallopt(M_MMAP_THRESHOLD, 2 * MiB), 0);  // above the largest run
}

TEST(Mallopt, TrimThresholdBoundsFreeResidentPages) {
  ASSERT_EQ(slub_malloc_trim(0) >= 0, true);
  ASSERT_EQ(slub_mallopt(M_TRIM_THRESHOLD, 0), 1);  // every free of pages purges them
  auto v = alloc_n(16 * MiB / 2048, 2048);
  free_all(v);
  ASSERT_EQ(slub_malloc_trim(0) >= 0, true);  // (flushes; pages purge as they come free)
  auto w = alloc_n(16 * MiB / 2048, 2048);
  free_all(w);
  const struct slub_mallinfo2 m = slub_mallinfo2();
  // The pages of empty slabs went back at once: what stays resident and free is only what the
  // caches keep (parked objects, min_partial slabs), not the 16 MiB.
  EXPECT_LT(m.keepcost, 4 * MiB);
  EXPECT_LT(m.fordblks, 8 * MiB);
  EXPECT_EQ(slub_mallopt(M_TRIM_THRESHOLD, 64 << 20), 1);
}

// With no budget for free pages, the shrink itself gives the empty slabs' pages back (the page
// allocator purges each run as it comes free): malloc_trim still says memory went back, though
// its own purge finds nothing left (it returned 0 here once).
TEST(MallocTrim, SaysSoWhenTheShrinkAlreadyPurged) {
  ASSERT_EQ(slub_malloc_trim(0) >= 0, true);
  ASSERT_EQ(slub_mallopt(M_TRIM_THRESHOLD, 0), 1);
  auto v = alloc_n(16 * MiB / 1024, 1024);
  free_all(v);  // most slabs empty (and purge) now; those of the sheaves' objects wait
  EXPECT_EQ(slub_malloc_trim(0), 1);
  EXPECT_EQ(slub_mallopt(M_TRIM_THRESHOLD, 64 << 20), 1);
}

TEST(Mallopt, MmapThresholdMapsLargeRequests) {
  const struct slub_mallinfo2 m0 = slub_mallinfo2();
  ASSERT_EQ(slub_mallopt(M_MMAP_THRESHOLD, 64 * KiB), 1);
  void* p = slub_malloc(100 * KiB);
  ASSERT_NE(p, nullptr);
  memset(p, 1, 100 * KiB);
  EXPECT_EQ(slub_malloc_usable_size(p) >= 100 * KiB, true);
  const struct slub_mallinfo2 m1 = slub_mallinfo2();
  EXPECT_EQ(m1.hblks, m0.hblks + 1);
  EXPECT_EQ(m1.uordblks, m0.uordblks);  // not a large block of the page allocator
  void* small = slub_malloc(40 * KiB);  // below the threshold: the page allocator
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(slub_mallinfo2().hblks, m0.hblks + 1);
  slub_free(small);
  slub_free(p);
  EXPECT_EQ(slub_mallinfo2().hblks, m0.hblks);
  EXPECT_EQ(slub_mallopt(M_MMAP_THRESHOLD, 1 * MiB), 1);
}

// Last: it changes the topology of the process (ctest runs every test in its own process).
TEST(MallocInfo, OneHeapPerNode) {
  ASSERT_EQ(slub_set_topology("cpus=4,nodes=2"), 0);
  ASSERT_EQ(slub_nr_nodes(), 2);
  int rc = -2;
  const std::string xml = malloc_info_string(&rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(count_of(xml, "<heap nr="), 2u) << xml;
  EXPECT_NE(xml.find("<heap nr=\"1\">"), std::string::npos) << xml;
  std::string why;
  EXPECT_TRUE(well_formed(xml, &why)) << why;
}

}  // namespace
