// SPDX-License-Identifier: MIT
// pal/elf: function names from .symtab (static functions too) and lines from .debug_line, for
// this test program itself (built with -g, without -rdynamic); and a truncated or corrupt ELF
// image or file gives no name and no fault (the image is a heap copy of exactly its size, so
// that AddressSanitizer builds catch any read past its end).
#include <dlfcn.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <link.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "pal/elf.h"
#include "pal/process.h"

namespace {

volatile int g_sink;

// The function the lookups must find: static, so no dynamic symbol names it.
__attribute__((noinline)) static void static_target() {
  g_sink = 1;  // TARGET_LINE
  g_sink = 2;
}

int target_line() {  // the line of this file marked TARGET_LINE
  std::ifstream in(__FILE__);
  std::string text;
  for (int n = 1; std::getline(in, text); ++n)
    if (text.find("// TARGET_LINE") != std::string::npos && text.find("find(") == std::string::npos)
      return n;
  return -1;
}

// The address of static_target as the ELF file sees it.
uint64_t target_vaddr() {
  Dl_info dl;
  void* lm = nullptr;
  auto addr = reinterpret_cast<uintptr_t>(&static_target);
  EXPECT_NE(dladdr1(reinterpret_cast<void*>(addr), &dl, &lm, RTLD_DL_LINKMAP), 0);
  return addr - static_cast<const link_map*>(lm)->l_addr;
}

std::vector<unsigned char> self_image() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Looks up vaddr in a heap copy of exactly `len` bytes of `img`.
bool lookup_copy(const std::vector<unsigned char>& img, size_t len, uint64_t vaddr,
                 slub::os::ElfWhere* w) {
  std::vector<unsigned char> copy(img.begin(), img.begin() + static_cast<long>(len));
  return slub::os::elf_lookup(copy.data(), copy.size(), vaddr, true, w);
}

// The file offset and size of the section called `name`, from the image's own headers.
bool section_range(const std::vector<unsigned char>& img, const char* name, size_t* off,
                   size_t* size) {
  ElfW(Ehdr) eh;
  memcpy(&eh, img.data(), sizeof eh);
  const auto* sh = reinterpret_cast<const ElfW(Shdr)*>(img.data() + eh.e_shoff);
  const char* names = reinterpret_cast<const char*>(img.data() + sh[eh.e_shstrndx].sh_offset);
  for (int i = 0; i < eh.e_shnum; ++i)
    if (strcmp(names + sh[i].sh_name, name) == 0) {
      *off = sh[i].sh_offset;
      *size = sh[i].sh_size;
      return true;
    }
  return false;
}

TEST(Elf, NamesAStaticFunctionWithItsLine) {
  static_target();
  const uint64_t vaddr = target_vaddr();
  slub::os::ElfWhere w;
  ASSERT_TRUE(slub::os::elf_lookup_file("/proc/self/exe", vaddr + 4, true, &w));
  EXPECT_NE(strstr(w.name, "static_target"), nullptr) << w.name;
  EXPECT_EQ(w.value, vaddr);
  EXPECT_GT(w.size, 4u);
  // Address vaddr + 4 is in the function's first lines: its opening line or TARGET_LINE.
  EXPECT_STREQ(w.file, "elf_test.cc");
  EXPECT_GE(static_cast<int>(w.line), target_line() - 1);
  EXPECT_LE(static_cast<int>(w.line), target_line());
}

TEST(Elf, SymbolOfNamesAStaticFunction) {
  // The address of the second store: past the opening line.
  slub::os::SymbolInfo info;
  const auto* fn = reinterpret_cast<const char*>(&static_target);
  ASSERT_TRUE(slub::os::symbol_of(fn + 1, &info, true));
  ASSERT_NE(info.name, nullptr);
  EXPECT_NE(strstr(info.name, "static_target"), nullptr) << info.name;
  EXPECT_EQ(info.addr, static_cast<const void*>(fn));
  ASSERT_NE(info.file, nullptr);
  EXPECT_STREQ(info.file, "elf_test.cc");
  EXPECT_EQ(static_cast<int>(info.line), target_line() - 1);  // the opening line
  // Without want_line: the name, no line.
  ASSERT_TRUE(slub::os::symbol_of(fn + 1, &info, false));
  EXPECT_NE(strstr(info.name, "static_target"), nullptr);
  EXPECT_EQ(info.file, nullptr);
  EXPECT_EQ(info.line, 0u);
}

// A loaded object's file must be the one loaded: its PT_DYNAMIC where the link map has it.
TEST(Elf, LoadedObjectChecksItsFile) {
  Dl_info dl;
  void* lmp = nullptr;
  const auto addr = reinterpret_cast<uintptr_t>(&static_target);
  ASSERT_NE(dladdr1(reinterpret_cast<void*>(addr), &dl, &lmp, RTLD_DL_LINKMAP), 0);
  const auto* lm = static_cast<const link_map*>(lmp);
  const auto bias = static_cast<uintptr_t>(lm->l_addr);
  const auto dynamic = reinterpret_cast<uintptr_t>(lm->l_ld);
  slub::os::ElfWhere w;
  EXPECT_TRUE(slub::os::elf_lookup_loaded({{"/proc/self/exe", nullptr}, bias, dynamic}, addr + 1,
                                          false, &w));
  EXPECT_NE(strstr(w.name, "static_target"), nullptr) << w.name;
  // Not this program's file (libc's): no name; the next path is tried.
  EXPECT_FALSE(
      slub::os::elf_lookup_loaded({{"/nonexistent", nullptr}, bias, dynamic}, addr + 1, false, &w));
  EXPECT_STREQ(w.name, "");
  Dl_info libc;
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&fopen), &libc), 0);
  EXPECT_FALSE(
      slub::os::elf_lookup_loaded({{libc.dli_fname, nullptr}, bias, dynamic}, addr + 1, false, &w));
  EXPECT_TRUE(slub::os::elf_lookup_loaded({{libc.dli_fname, "/proc/self/exe"}, bias, dynamic},
                                          addr + 1, false, &w));
  EXPECT_NE(strstr(w.name, "static_target"), nullptr) << w.name;
  // The dynamic section elsewhere: not the loaded file.
  EXPECT_FALSE(slub::os::elf_lookup_loaded({{"/proc/self/exe", nullptr}, bias, dynamic + 16},
                                           addr + 1, false, &w));
}

TEST(Elf, TruncatedImageGivesNoName) {
  const auto img = self_image();
  ASSERT_GT(img.size(), sizeof(ElfW(Ehdr)));
  ElfW(Ehdr) eh;
  memcpy(&eh, img.data(), sizeof eh);
  const uint64_t vaddr = target_vaddr();
  slub::os::ElfWhere w;
  ASSERT_TRUE(lookup_copy(img, img.size(), vaddr, &w));  // whole: found
  // Every cut that loses part of the section header table loses the names.
  const size_t table_end = eh.e_shoff + size_t{eh.e_shnum} * sizeof(ElfW(Shdr));
  for (size_t len :
       {size_t{0}, size_t{1}, size_t{4}, size_t{16}, sizeof eh - 1, sizeof eh, size_t{4096},
        img.size() / 2, static_cast<size_t>(eh.e_shoff), table_end - 1}) {
    if (len >= table_end) continue;
    EXPECT_FALSE(lookup_copy(img, len, vaddr, &w)) << "cut at " << len;
    EXPECT_STREQ(w.name, "");
    EXPECT_EQ(w.line, 0u);
  }
  // And a file cut short, an empty file, and no file: no name.
  char path[] = "/tmp/slub-elf-test.XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, img.data(), img.size() / 2), static_cast<ssize_t>(img.size() / 2));
  EXPECT_FALSE(slub::os::elf_lookup_file(path, vaddr, true, &w));
  ASSERT_EQ(ftruncate(fd, 0), 0);
  EXPECT_FALSE(slub::os::elf_lookup_file(path, vaddr, true, &w));
  close(fd);
  unlink(path);
  EXPECT_FALSE(slub::os::elf_lookup_file("/nonexistent/slub-elf", vaddr, true, &w));
  EXPECT_FALSE(slub::os::elf_lookup_file("/proc/self", vaddr, true, &w));  // a directory
}

// A lookup that cannot open or map its file leaves errno as it was: names are looked up inside
// free() and reports, which must not change the program's errno (ENOENT leaked once).
TEST(Elf, FailedLookupKeepsErrno) {
  slub::os::ElfWhere w;
  errno = EDOM;
  EXPECT_FALSE(slub::os::elf_lookup_file("/nonexistent/slub-elf", target_vaddr(), true, &w));
  EXPECT_EQ(errno, EDOM);
  errno = EDOM;
  EXPECT_FALSE(slub::os::elf_lookup_file("/proc/self", target_vaddr(), true, &w));
  EXPECT_EQ(errno, EDOM);
}

TEST(Elf, CorruptHeadersGiveNoName) {
  const auto img = self_image();
  const uint64_t vaddr = target_vaddr();
  slub::os::ElfWhere w;
  auto with = [&](auto&& change) {
    auto copy = img;
    ElfW(Ehdr) eh;
    memcpy(&eh, copy.data(), sizeof eh);
    change(eh);
    memcpy(copy.data(), &eh, sizeof eh);
    return slub::os::elf_lookup(copy.data(), copy.size(), vaddr, true, &w);
  };
  EXPECT_FALSE(with([](ElfW(Ehdr) & e) { e.e_ident[EI_MAG1] = 'X'; }));
  EXPECT_FALSE(with([](ElfW(Ehdr) & e) { e.e_ident[EI_CLASS] = ELFCLASSNONE; }));
  EXPECT_FALSE(with([](ElfW(Ehdr) & e) { e.e_shoff = ~ElfW(Off){0} - 7; }));
  EXPECT_FALSE(with([&](ElfW(Ehdr) & e) { e.e_shoff = img.size() - 8; }));
  EXPECT_FALSE(with([](ElfW(Ehdr) & e) { e.e_shnum = 0xffff; }));
  EXPECT_FALSE(with([](ElfW(Ehdr) & e) { e.e_shentsize = 7; }));
  EXPECT_FALSE(with([](ElfW(Ehdr) & e) { e.e_shoff += 1; }));  // misaligned table
}

// Random bytes in the section headers, the symbol table and the line table: any answer, but
// no fault and no read outside the image (ASan builds check the latter).
TEST(Elf, RandomCorruptionNeverFaults) {
  const auto img = self_image();
  const uint64_t vaddr = target_vaddr();
  ElfW(Ehdr) eh;
  memcpy(&eh, img.data(), sizeof eh);
  struct Range {
    size_t off, size;
  };
  std::vector<Range> targets = {{eh.e_shoff, size_t{eh.e_shnum} * sizeof(ElfW(Shdr))}};
  for (const char* name : {".symtab", ".strtab", ".debug_line", ".debug_line_str", ".debug_aranges",
                           ".debug_info", ".debug_abbrev"}) {
    size_t off = 0, size = 0;
    if (section_range(img, name, &off, &size) && size > 0) targets.push_back({off, size});
  }
  ASSERT_GE(targets.size(), 7u) << "the test program needs .symtab and DWARF (-g)";
  std::mt19937_64 rng(12345);
  int named = 0;
  auto copy = img;  // changed in place and put back after each round
  for (int round = 0; round < 700; ++round) {
    const Range& r = targets[round % targets.size()];
    const int flips = 1 + static_cast<int>(rng() % 16);
    for (int i = 0; i < flips; ++i)
      copy[r.off + rng() % r.size] = static_cast<unsigned char>(rng());
    slub::os::ElfWhere w;
    named += slub::os::elf_lookup(copy.data(), copy.size(), vaddr, true, &w);
    EXPECT_LT(strlen(w.name), sizeof w.name);
    EXPECT_LT(strlen(w.file), sizeof w.file);
    memcpy(copy.data() + r.off, img.data() + r.off, r.size);
  }
  // The line table alone, all random bytes: no line, or one from garbage, but no fault.
  size_t off = 0, size = 0;
  ASSERT_TRUE(section_range(img, ".debug_line", &off, &size));
  for (int round = 0; round < 50; ++round) {
    for (size_t i = 0; i < size; ++i) copy[off + i] = static_cast<unsigned char>(rng());
    slub::os::ElfWhere w;
    EXPECT_TRUE(slub::os::elf_lookup(copy.data(), copy.size(), vaddr, true, &w));  // .symtab intact
  }
  RecordProperty("named_after_corruption", named);
}

// A DWARF 5 directory table of no entry formats and a count near 2^64: its entries take no
// bytes, so a reader that believed the count looped for ever inside the report (at -O0, as in
// the lock checker's Debug build; an optimizer drops the empty loop). Every unit of the test's
// .debug_line gets such a table; the lookup runs in a child with an alarm, so that the old loop
// fails the test instead of hanging it.
TEST(Elf, HugeEntryCountOfNoFormatsIsRejected) {
  auto img = self_image();
  const uint64_t vaddr = target_vaddr();
  size_t off = 0, size = 0;
  ASSERT_TRUE(section_range(img, ".debug_line", &off, &size));
  int changed = 0;
  for (size_t u = off; u + 4 <= off + size;) {
    uint32_t len;
    memcpy(&len, &img[u], 4);
    if (len >= 0xfffffff0u || u + 4 + len > off + size) break;
    uint16_t version;
    memcpy(&version, &img[u + 4], 2);
    const size_t opcode_base_at = u + 4 + 2 + 1 + 1 + 4 + 5;
    if (version == 5 && opcode_base_at < u + 4 + len) {
      const size_t fmt_count_at = opcode_base_at + img[opcode_base_at];  // after the lengths
      if (fmt_count_at + 11 <= u + 4 + len) {
        img[fmt_count_at] = 0;                                      // no entry formats
        for (int i = 1; i <= 9; ++i) img[fmt_count_at + i] = 0xff;  // count: 9 bytes of 7 bits
        img[fmt_count_at + 10] = 0x7f;
        ++changed;
      }
    }
    u += 4 + len;
  }
  ASSERT_GT(changed, 0) << "no DWARF 5 line table in the test program";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(10);
    slub::os::ElfWhere w;
    const bool named = slub::os::elf_lookup(img.data(), img.size(), vaddr, true, &w);
    // Still the function (from .symtab); its line table names no file any more.
    _exit(named && strstr(w.name, "static_target") != nullptr ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status)) << "the lookup did not end (signal " << WTERMSIG(status) << ")";
  if (WIFEXITED(status)) EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
