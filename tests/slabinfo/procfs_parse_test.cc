// SPDX-License-Identifier: MIT
// The /proc/slabinfo 2.1 parser (tools/slabinfo-src/procfs_parse.h) on a real Linux 6.18 file.
#include "procfs_parse.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string read_all(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ProcfsParse, Linux618File) {
  const std::string text = read_all(SLABINFO_KERNEL_FILE);
  ASSERT_FALSE(text.empty()) << SLABINFO_KERNEL_FILE;
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  const auto info = slabinfo::parse_proc_slabinfo(text);
  ASSERT_TRUE(info.ok()) << (info.errors.empty() ? "version " + info.version : info.errors[0]);
  EXPECT_EQ(info.version, "2.1");
  EXPECT_EQ(info.records.size(), lines - 2);  // minus the version and the column lines
  EXPECT_EQ(info.records.size(), 235u);

  // Values read from the file by eye.
  const auto* dentry = info.find("dentry");
  ASSERT_NE(dentry, nullptr);
  EXPECT_EQ(dentry->active_objs, 101598u);
  EXPECT_EQ(dentry->num_objs, 101598u);
  EXPECT_EQ(dentry->objsize, 192u);
  EXPECT_EQ(dentry->objperslab, 21u);
  EXPECT_EQ(dentry->pagesperslab, 1u);
  EXPECT_EQ(dentry->active_slabs, 4838u);
  EXPECT_EQ(dentry->num_slabs, 4838u);

  const auto* k512 = info.find("kmalloc-512");
  ASSERT_NE(k512, nullptr);
  EXPECT_EQ(k512->active_objs, 3060u);
  EXPECT_EQ(k512->num_objs, 5264u);
  EXPECT_EQ(k512->objsize, 512u);
  EXPECT_EQ(k512->objperslab, 16u);
  EXPECT_EQ(k512->pagesperslab, 2u);
  EXPECT_EQ(k512->num_slabs, 329u);

  const auto* task = info.find("task_struct");
  ASSERT_NE(task, nullptr);
  EXPECT_EQ(task->objsize, 5888u);
  EXPECT_EQ(task->objperslab, 5u);
  EXPECT_EQ(task->pagesperslab, 8u);
  EXPECT_EQ(task->active_slabs, 28u);

  // A name longer than the 17-column field pushes the numbers right.
  const auto* boe = info.find("btrfs_ordered_extent");
  ASSERT_NE(boe, nullptr);
  EXPECT_EQ(boe->objsize, 416u);
  EXPECT_EQ(boe->objperslab, 19u);
  EXPECT_EQ(boe->pagesperslab, 2u);

  EXPECT_EQ(info.records.front().name, "btrfs_delayed_node");
  EXPECT_EQ(info.records.back().name, "kmem_cache");
  // SLUB: no tunables, one slab state.
  for (const auto& r : info.records) {
    EXPECT_EQ(r.limit + r.batchcount + r.sharedfactor + r.sharedavail, 0u) << r.name;
    EXPECT_EQ(r.active_slabs, r.num_slabs) << r.name;
    EXPECT_LE(r.active_objs, r.num_objs) << r.name;
  }
}

TEST(ProcfsParse, RejectsBadLines) {
  const auto info = slabinfo::parse_proc_slabinfo(
      "slabinfo - version: 2.1\n"
      "# name <active_objs> ...\n"
      "good 1 2 3 4 1 : tunables 0 0 0 : slabdata 1 1 0\n"
      "bad 1 2 x 4 1 : tunables 0 0 0 : slabdata 1 1 0\n"
      "short 1 2 3\n");
  EXPECT_EQ(info.records.size(), 1u);
  EXPECT_EQ(info.errors.size(), 2u);
  EXPECT_FALSE(info.ok());
  EXPECT_FALSE(
      slabinfo::parse_proc_slabinfo("kmem 1 2 3 4 1 : tunables 0 0 0 : slabdata 1 1 0\n").ok());
}

}  // namespace
