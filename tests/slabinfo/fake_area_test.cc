// SPDX-License-Identifier: MIT
// slabinfo against a statistics area this test writes itself (in a private directory given
// by SLABINFO_SHM_DIR), with a thread that answers the command protocol as a program would.
// Checks every display against numbers chosen here, the commands, the no-answer path, the
// process list and the removal of stale areas.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <slub/slub.h>
#include <slub/stats.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <mutex>
#include <thread>

#include "procfs_parse.h"
#include "run_util.h"

namespace {

using namespace slabinfo_test;
using nlohmann::json;

uint64_t start_time_of(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(stat.substr(stat.rfind(')') + 1));
  std::string tok;
  for (int field = 3; in >> tok; field++)
    if (field == 22) return std::strtoull(tok.c_str(), nullptr, 10);
  return 0;
}

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

long futex(uint32_t* addr, int op, uint32_t val, const timespec* ts) {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, 0);
}

// Writes an area file for `pid` in `dir` and maps it.
slub_shm* make_area(const std::string& dir, pid_t pid, uint64_t start_time, const char* exe) {
  const std::string path = dir + "/slub." + std::to_string(pid);
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, sizeof(slub_shm)) != 0) return nullptr;
  void* m = mmap(nullptr, sizeof(slub_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return nullptr;
  auto* shm = static_cast<slub_shm*>(m);
  shm->hdr.magic = SLUB_SHM_MAGIC;
  shm->hdr.version = SLUB_SHM_VERSION;
  shm->hdr.pid = pid;
  shm->hdr.start_time = start_time;
  shm->hdr.updated_ns = monotonic_ns();
  snprintf(shm->hdr.exe, sizeof shm->hdr.exe, "%s", exe);
  return shm;
}

slub_shm_cache& add_cache(slub_shm* shm, const char* name, const char* uid, uint64_t object_size,
                          uint64_t slot_size, uint64_t objs_per_slab, uint32_t order,
                          uint64_t slabs, uint64_t partial, uint64_t cpu_slabs, uint64_t objects,
                          uint64_t flags) {
  slub_shm_cache& c = shm->caches[shm->hdr.nr_caches++];
  memset(&c, 0, sizeof c);
  snprintf(c.name, sizeof c.name, "%s", name);
  snprintf(c.unique_id, sizeof c.unique_id, "%s", uid);
  c.object_size = object_size;
  c.slot_size = slot_size;
  c.align = 8;
  c.objs_per_slab = objs_per_slab;
  c.order = order;
  c.slabs = slabs;
  c.partial = partial;
  c.cpu_slabs = cpu_slabs;
  c.total_objects = slabs * objs_per_slab;
  c.objects = objects;
  c.flags = flags;
  c.min_partial = 5;
  c.cpu_partial = 52;
  c.node_partial[0] = partial;
  return c;
}

class FakeArea : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/slabinfo_fake.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    shm_ = make_area(dir_, getpid(), start_time_of(getpid()), "/usr/bin/fake_prog");
    ASSERT_NE(shm_, nullptr);
    shm_->hdr.nr_cpus = 4;
    shm_->hdr.nr_cpus_used = 2;
    shm_->hdr.nr_nodes = 2;
    shm_->hdr.chunks = 3;

    auto& k64 = add_cache(shm_, "kmalloc-64", "kmalloc-64", 64, 64, 64, 0, 10, 2, 1, 600, 0);
    k64.stats[ALLOC_FASTPATH] = 1000;
    k64.stats[ALLOC_SLOWPATH] = 20;
    k64.stats[ALLOC_SLAB] = 10;
    k64.stats[FREE_FASTPATH] = 400;
    k64.stats[FREE_SLOWPATH] = 30;
    k64.stats[DEACTIVATE_FULL] = 4;
    k64.stats[CPU_PARTIAL_DRAIN] = 26;

    auto& dentry = add_cache(shm_, "dentry", ":a-0000192", 192, 192, 21, 0, 100, 5, 2, 2050,
                             SLAB_HWCACHE_ALIGN | SLAB_RECLAIM_ACCOUNT);
    dentry.nr_aliases = 2;
    snprintf(dentry.aliases[0], sizeof dentry.aliases[0], "dentry_alias");
    snprintf(dentry.aliases[1], sizeof dentry.aliases[1], "foo");
    dentry.node_partial[0] = 3;
    dentry.node_partial[1] = 2;
    dentry.node_slabs[0] = 4;
    dentry.node_slabs[1] = 1;
    dentry.node_objects[0] = 84;
    dentry.node_objects[1] = 21;
    dentry.stats[ALLOC_SLOWPATH] = 7;

    add_cache(shm_, "empty_cache", "empty_cache", 32, 32, 128, 0, 0, 0, 0, 0, 0);
    add_cache(shm_, "debug_cache", "debug_cache", 100, 136, 30, 0, 1, 1, 0, 3,
              SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TRACE);
    auto& big = add_cache(shm_, "big_order", ":0004096", 4096, 4096, 8, 3, 1000, 0, 0, 8000, 0);
    big.nr_aliases = 10;
    for (int i = 0; i < SLUB_SHM_MAX_ALIASES; i++)
      snprintf(big.aliases[i], sizeof big.aliases[i], "big_alias_%d", i);
    add_cache(shm_, "quote\"back\\slash", "quote\"back\\slash", 8, 8, 512, 0, 1, 0, 1, 512, 0);
    responder_ = std::thread([this] { respond(); });
  }

  void TearDown() override {
    stop_ = true;
    if (responder_.joinable()) responder_.join();
    if (shm_ != nullptr) munmap(shm_, sizeof(slub_shm));
    std::filesystem::remove_all(dir_);
  }

  // Answers commands like a program's flusher thread: REFRESH publishes (bumping
  // alloc_fastpath of kmalloc-64 so a test can see it), VALIDATE returns 7 errors for
  // debug_cache and 0 otherwise, SHRINK returns 5, unknown caches -2, KFENCE 0 (as a library
  // older than the command answers it: a refresh).
  void respond() {
    auto& h = shm_->hdr;
    while (!stop_) {
      const uint32_t seq = std::atomic_ref<uint32_t>(h.cmd_seq).load(std::memory_order_acquire);
      if (seq == std::atomic_ref<uint32_t>(h.done_seq).load() || mute_) {
        timespec ts{0, 20000000};
        futex(&h.cmd_seq, FUTEX_WAIT, seq, &ts);
        continue;
      }
      const uint32_t cmd = std::atomic_ref<uint32_t>(h.cmd).load();
      const std::string arg(h.cmd_arg, strnlen(h.cmd_arg, sizeof h.cmd_arg));
      bool known = arg.empty();
      for (uint32_t i = 0; i < h.nr_caches; i++) known = known || arg == shm_->caches[i].name;
      int32_t result = 0;
      if (cmd == SLUB_CMD_REFRESH) {
        std::atomic_ref<uint64_t>(h.seq).fetch_add(1);  // odd: writing
        shm_->caches[0].stats[ALLOC_FASTPATH]++;
        h.updated_ns = monotonic_ns();
        std::atomic_ref<uint64_t>(h.seq).fetch_add(1);
        refreshes_++;
      } else if (!known) {
        result = -2;
      } else if (cmd == SLUB_CMD_VALIDATE) {
        result = arg == "debug_cache" ? 7 : 0;
      } else if (cmd == SLUB_CMD_SHRINK) {
        result = 5;
      } else if (cmd == SLUB_CMD_KFENCE) {
        result = 0;
      } else {
        result = -22;
      }
      {
        std::lock_guard<std::mutex> g(log_mu_);
        log_.push_back(std::to_string(cmd) + ":" + arg);
      }
      std::atomic_ref<int32_t>(h.result).store(result);
      std::atomic_ref<uint32_t>(h.done_seq).store(seq, std::memory_order_release);
      futex(&h.done_seq, FUTEX_WAKE, INT_MAX, nullptr);
    }
  }

  RunResult tool(std::vector<std::string> args) {
    args.insert(args.begin(), SLABINFO_BIN);
    return run(args, {{"SLABINFO_SHM_DIR", dir_}}, 20);
  }
  RunResult tool_pid(std::vector<std::string> args) {
    args.insert(args.begin(), std::to_string(getpid()));
    return tool(args);
  }
  std::vector<std::string> command_log() {
    std::lock_guard<std::mutex> g(log_mu_);
    return log_;
  }

  std::string dir_;
  slub_shm* shm_ = nullptr;
  std::thread responder_;
  std::atomic<bool> stop_{false}, mute_{false};
  std::atomic<int> refreshes_{0};
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

std::string find_line(const std::string& out, const std::string& prefix) {
  for (const auto& l : lines_of(out))
    if (l.rfind(prefix, 0) == 0) return l;
  return "";
}

TEST_F(FakeArea, DefaultTable) {
  const auto r = tool_pid({});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(refreshes_.load(), 1);
  const auto lines = lines_of(r.out);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(
      lines[0],
      "Name                   Objects Objsize           Space Slabs/Part/Cpu  O/S O %Fr %Ef Flg");
  // Space 10*4096 = 40960 -> 40.9K; 9/2/1; %Fr 2*100/10; %Ef 600*64*100/40960 = 93.
  EXPECT_EQ(
      find_line(r.out, "kmalloc-64 "),
      "kmalloc-64                 600      64           40.9K          9/2/1   64 0  20  93 ");
  // 100 slabs = 409600 -> 409.6K; %Ef 2050*192*100/409600 = 96; flags: aliases, A, a.
  EXPECT_EQ(
      find_line(r.out, "dentry "),
      "dentry                    2050     192          409.6K         98/5/2   21 0   5  96 *Aa");
  // Order 3: 1000 slabs of 32 KiB = 32768000 -> 32.7M.
  EXPECT_EQ(
      find_line(r.out, "big_order "),
      "big_order                 8000    4096           32.7M       1000/0/0    8 3   0 100 *");
  EXPECT_TRUE(find_line(r.out, "debug_cache ").ends_with(" PZFUT")) << r.out;
  EXPECT_EQ(find_line(r.out, "empty_cache"), "");
  // Sorted by name, case-insensitively.
  EXPECT_EQ(lines[1].substr(0, 9), "big_order");
  EXPECT_EQ(lines.size(), 6u);

  const auto z = tool_pid({"-z"});
  EXPECT_NE(find_line(z.out, "empty_cache "), "");
  const auto e = tool_pid({"-e"});
  EXPECT_EQ(lines_of(e.out).size(), 2u);
  const auto b = tool_pid({"-B", "kmalloc-64"});
  EXPECT_EQ(lines_of(b.out).size(), 2u);
  EXPECT_NE(find_line(b.out, "kmalloc-64 ").find(" 40960 "), std::string::npos) << b.out;
}

TEST_F(FakeArea, SortingAndSelection) {
  const auto s = tool_pid({"-S"});
  ASSERT_EQ(s.rc, 0) << s.err;
  auto lines = lines_of(s.out);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[1].substr(0, 9), "big_order");
  EXPECT_EQ(lines[2].substr(0, 6), "dentry");
  EXPECT_EQ(lines[3].substr(0, 10), "kmalloc-64");
  // Inverted: smallest first, ties in reverse name order.
  const auto si = tool_pid({"-S", "-i", "-N", "3"});
  lines = lines_of(si.out);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1].substr(0, 5), "quote");
  EXPECT_EQ(lines[2].substr(0, 11), "debug_cache");
  EXPECT_EQ(lines[3].substr(0, 10), "kmalloc-64");
  // A regex filter; an alias name selects its cache.
  EXPECT_EQ(lines_of(tool_pid({"^(kmalloc|dent)"}).out).size(), 3u);
  EXPECT_NE(find_line(tool_pid({"dentry_alias"}).out, "dentry "), "");
  // -U drops reclaim-accounted caches.
  EXPECT_EQ(find_line(tool_pid({"-U"}).out, "dentry "), "");
  // -L shows loss: 40960 - 600*64 = 2560 -> 2.5K.
  const auto l = tool_pid({"-L", "kmalloc-64"});
  EXPECT_NE(lines_of(l.out)[0].find(" Loss "), std::string::npos);
  EXPECT_NE(find_line(l.out, "kmalloc-64 ").find(" 2.5K "), std::string::npos) << l.out;
  // Activity display.
  const auto d = tool_pid({"-D", "kmalloc-64"});
  EXPECT_EQ(lines_of(d.out)[0],
            "Name                   Objects      Alloc       Free   %Fast Fallb O CmpX   UL");
  char want[128];
  snprintf(want, sizeof want, "%-21s %8d %10d %10d %3d %3d %5d %1d %4d %4d", "kmalloc-64", 600,
           static_cast<int>(shm_->caches[0].stats[ALLOC_FASTPATH]) + 20, 430, 98, 93, 0, 0, 0, 0);
  EXPECT_EQ(find_line(d.out, "kmalloc-64 "), want);
}

TEST_F(FakeArea, ProcFormat) {
  const auto r = tool_pid({"--proc"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto info = slabinfo::parse_proc_slabinfo(r.out);
  ASSERT_TRUE(info.ok()) << r.out;
  EXPECT_EQ(info.records.size(), shm_->hdr.nr_caches);  // every cache, empty ones too
  // The header lines are the kernel's, byte for byte.
  const auto kernel = lines_of(read_file(SLABINFO_KERNEL_FILE));
  const auto mine = lines_of(r.out);
  EXPECT_EQ(mine[0], kernel[0]);
  EXPECT_EQ(mine[1], kernel[1]);
  EXPECT_EQ(mine[2],
            "kmalloc-64           600    640     64   64    1 : tunables    0    0    0 : "
            "slabdata     10     10      0");
  const auto* dbg = info.find("debug_cache");
  ASSERT_NE(dbg, nullptr);
  EXPECT_EQ(dbg->objsize, 136u);  // the slot size, as the kernel's s->size
  EXPECT_EQ(dbg->active_objs, 3u);
  EXPECT_EQ(dbg->num_objs, 30u);
  const auto* big = info.find("big_order");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->pagesperslab, 8u);
  EXPECT_EQ(big->num_slabs, 1000u);
}

TEST_F(FakeArea, Json) {
  const auto r = tool_pid({"--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["pid"], getpid());
  EXPECT_EQ(j["exe"], "/usr/bin/fake_prog");
  EXPECT_EQ(j["fresh"], true);
  EXPECT_EQ(j["nr_nodes"], 2);
  EXPECT_EQ(j["chunks"], 3);
  ASSERT_EQ(j["caches"].size(), shm_->hdr.nr_caches);
  const json& k64 = j["caches"][0];
  EXPECT_EQ(k64["name"], "kmalloc-64");
  EXPECT_EQ(k64["objects"], 600);
  EXPECT_EQ(k64["total_objects"], 640);
  EXPECT_EQ(k64["object_size"], 64);
  EXPECT_EQ(k64["stats"].size(), static_cast<size_t>(NR_SLUB_STAT_ITEMS));
  EXPECT_EQ(k64["stats"]["alloc_fastpath"], 1001);  // bumped by the refresh
  EXPECT_EQ(k64["stats"]["cpu_partial_drain"], 26);
  EXPECT_EQ(k64["stats"]["deactivate_full"], 4);
  const json& dentry = j["caches"][1];
  EXPECT_EQ(dentry["aliases"], json::array({"dentry_alias", "foo"}));
  EXPECT_EQ(dentry["node_partial"], json::array({3, 2}));
  EXPECT_EQ(dentry["node_slabs"], json::array({4, 1}));
  EXPECT_EQ(dentry["node_objects"], json::array({84, 21}));
  EXPECT_EQ(dentry["flag_letters"], "*Aa");
  EXPECT_EQ(j["caches"][5]["name"], "quote\"back\\slash");
}

TEST_F(FakeArea, Aliases) {
  const auto r = tool_pid({"-a"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            ":0004096     <- big_alias_0 big_alias_1 big_alias_2 big_alias_3 big_alias_4 "
            "big_alias_5 big_alias_6 big_alias_7 big_order (+2 more)\n"
            ":a-0000192   <- dentry dentry_alias foo\n");
  const auto inv = tool_pid({"-a", "-i", "dentry"});
  EXPECT_EQ(inv.out,
            "dentry          -> :a-0000192\n"
            "dentry_alias    -> :a-0000192\n"
            "foo             -> :a-0000192\n");
}

TEST_F(FakeArea, Totals) {
  const auto r = tool_pid({"-T"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("Slabcache Totals"), std::string::npos);
  // 6 caches; ':' targets big_order (1+10 names) and dentry (1+2): 14 -> 2; 5 active.
  EXPECT_NE(
      r.out.find("Slabcaches :               6   Aliases  :          14->2    Active:      5"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("#Objects  "), std::string::npos);
  EXPECT_NE(r.out.find("Per Object"), std::string::npos);
}

TEST_F(FakeArea, Report) {
  const auto r = tool_pid({"-r", "dentry_alias"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("Slabcache: dentry           Aliases:  2 Order :  0 Objects: 2050"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("** Hardware cacheline aligned"), std::string::npos);
  EXPECT_NE(r.out.find("Unique id    : :a-0000192"), std::string::npos);
  EXPECT_NE(r.out.find("Aliases      : dentry_alias foo"), std::string::npos);
  EXPECT_NE(r.out.find("HWCACHE_ALIGN|RECLAIM_ACCOUNT"), std::string::npos);
  EXPECT_NE(r.out.find("Partial slabs             3    2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("All slabs                 4    1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Objects                  84   21"), std::string::npos) << r.out;
  for (const char* n : {"alloc_fastpath",      "free_fastpath",       "alloc_slowpath",
                        "free_slowpath",       "free_frozen",         "free_add_partial",
                        "free_remove_partial", "alloc_from_partial",  "alloc_slab",
                        "alloc_refill",        "alloc_node_mismatch", "free_slab",
                        "cpuslab_flush",       "deactivate_full",     "deactivate_empty",
                        "deactivate_to_head",  "deactivate_to_tail",  "deactivate_remote_frees",
                        "deactivate_bypass",   "order_fallback",      "cmpxchg_double_cpu_fail",
                        "cmpxchg_double_fail", "cpu_partial_alloc",   "cpu_partial_free",
                        "cpu_partial_node",    "cpu_partial_drain"})
    EXPECT_NE(r.out.find(std::string("\n") + n + " "), std::string::npos) << n;
  EXPECT_NE(find_line(r.out, "alloc_slowpath "), "");
  EXPECT_EQ(find_line(r.out, "alloc_slowpath ").substr(26), "             7");

  const auto k = tool_pid({"-r", "kmalloc-64"});
  EXPECT_NE(k.out.find("Slab Perf Counter"), std::string::npos);
  EXPECT_NE(k.out.find("Fastpath                 1002      400  98  93"), std::string::npos)
      << k.out;
  const auto none = tool_pid({"-r", "no_such_cache"});
  EXPECT_EQ(none.rc, 1);
  EXPECT_NE(none.err.find("no cache matches"), std::string::npos);
}

TEST_F(FakeArea, Commands) {
  auto r = tool_pid({"-v"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "validate: all caches: 0 errors\n");
  r = tool_pid({"-v", "-r", "debug_cache"});
  EXPECT_EQ(r.out, "validate: debug_cache: 7 errors\n");
  r = tool_pid({"-s", "kmalloc-64"});
  EXPECT_EQ(r.out, "shrink: kmalloc-64: 5 slabs freed\n");
  r = tool_pid({"-s", "dentry_alias"});  // sent under the cache's own name
  EXPECT_EQ(r.out, "shrink: dentry: 5 slabs freed\n");
  r = tool_pid({"-s", "--json"});
  EXPECT_EQ(json::parse(r.out), json::parse(R"([{"command":"shrink","cache":"","result":5}])"));
  r = tool_pid({"-v", "nothing_matches_this"});
  EXPECT_EQ(r.rc, 1);
  const auto log = command_log();
  const std::vector<std::string> want = {
      "1:", "2:", "1:", "2:debug_cache", "1:", "3:kmalloc-64", "1:", "3:dentry", "1:", "3:", "1:"};
  EXPECT_EQ(log, want);
}

// --kfence of a program whose libslub.so predates the command (it answers 0 bytes): one line,
// status 1.
TEST_F(FakeArea, KfenceOfAnOlderLibrary) {
  const auto r = tool_pid({"--kfence"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "slabinfo: kfence: process " + std::to_string(getpid()) +
                       " does not answer the command (its libslub.so has no KFENCE)\n");
}

TEST_F(FakeArea, NoAnswerUsesLastSnapshot) {
  mute_ = true;
  const auto r = tool_pid({"kmalloc-64"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.err.find("did not answer within 2.0 s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the snapshot is "), std::string::npos) << r.err;
  EXPECT_NE(find_line(r.out, "kmalloc-64 "), "");
  EXPECT_GE(r.seconds, 1.9);
  EXPECT_LT(r.seconds, 5);
  const auto n = tool_pid({"--no-refresh", "--json"});
  EXPECT_EQ(n.rc, 0);
  EXPECT_EQ(n.err, "");
  EXPECT_EQ(json::parse(n.out)["fresh"], false);
  EXPECT_LT(n.seconds, 1.5);
}

TEST_F(FakeArea, Watch) {
  const auto r = tool_pid({"--watch", "0.2", "--iterations", "3", "kmalloc-64"});
  ASSERT_EQ(r.rc, 0) << r.err;
  int titles = 0, rows = 0;
  for (const auto& l : lines_of(r.out)) {
    titles += l.rfind("slabinfo: pid ", 0) == 0;
    rows += l.rfind("kmalloc-64 ", 0) == 0;
  }
  EXPECT_EQ(titles, 3);
  EXPECT_EQ(rows, 3);
  EXPECT_EQ(r.out.find("\033["), std::string::npos);  // not a terminal: no clearing
  EXPECT_GE(r.seconds, 0.35);
  EXPECT_EQ(refreshes_.load(), 3);
}

TEST_F(FakeArea, Usage) {
  EXPECT_EQ(tool({"--bogus"}).rc, 2);
  EXPECT_EQ(tool({"-q"}).rc, 2);
  EXPECT_EQ(tool({"abc"}).rc, 2);
  EXPECT_EQ(tool({"1", "2", "3"}).rc, 2);
  EXPECT_EQ(tool({"-S", "-L", "1"}).rc, 2);
  EXPECT_EQ(tool({"-r"}).rc, 2);
  EXPECT_EQ(tool({"--watch", "x", "1"}).rc, 2);
  EXPECT_EQ(tool_pid({"("}).rc, 2);  // bad regex
  const auto h = tool({"--help"});
  EXPECT_EQ(h.rc, 0);
  for (const char* o : {"--proc", "--json", "--watch", "--iterations", "-a", "-T", "-S", "-r", "-v",
                        "-s", "-z", "--kfence", "Exit status"})
    EXPECT_NE(h.out.find(o), std::string::npos) << o;
}

// A pid that surely has no process: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, nullptr, 0);
  return p;
}

TEST_F(FakeArea, ListAndRemoveStale) {
  // A dead process's area, and an area whose pid now belongs to another process.
  const pid_t dead = dead_pid();
  slub_shm* a = make_area(dir_, dead, 12345, "dead_prog");
  ASSERT_NE(a, nullptr);
  munmap(a, sizeof(slub_shm));
  Background sleeper;
  ASSERT_TRUE(sleeper.start({"/bin/sleep", "30"}, {}));
  slub_shm* b = make_area(dir_, sleeper.pid(), 1, "reused_prog");
  ASSERT_NE(b, nullptr);
  munmap(b, sizeof(slub_shm));
  // Not a number, and not initialised: left alone.
  ASSERT_EQ(
      system(("touch " + dir_ + "/slub.notapid " + dir_ + "/slub." + std::to_string(getppid()))
                 .c_str()),
      0);

  const auto r = tool({});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("removed stale area " + dir_ + "/slub." + std::to_string(dead) +
                       ": process " + std::to_string(dead) + " no longer exists"),
            std::string::npos)
      << r.out;
  EXPECT_NE(
      r.out.find("removed stale area " + dir_ + "/slub." + std::to_string(sleeper.pid()) +
                 ": pid " + std::to_string(sleeper.pid()) + " now belongs to another process"),
      std::string::npos)
      << r.out;
  EXPECT_FALSE(file_exists(dir_ + "/slub." + std::to_string(dead)));
  EXPECT_FALSE(file_exists(dir_ + "/slub." + std::to_string(sleeper.pid())));
  EXPECT_TRUE(file_exists(dir_ + "/slub." + std::to_string(getpid())));
  EXPECT_TRUE(file_exists(dir_ + "/slub." + std::to_string(getppid())));
  EXPECT_NE(r.out.find("     PID  CACHES  UPDATED  EXE\n"), std::string::npos) << r.out;
  char mine[64];
  snprintf(mine, sizeof mine, "%8d %7u ", getpid(), 6u);
  EXPECT_NE(r.out.find(mine), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/usr/bin/fake_prog"), std::string::npos);
  EXPECT_NE(r.out.find("(not initialised)"), std::string::npos);

  const auto j = json::parse(tool({"--json"}).out);
  EXPECT_EQ(j["removed"].size(), 0u);
  EXPECT_EQ(j["processes"].size(), 2u);

  // Asking for a stale area's pid directly fails with status 1; so does a missing one.
  slub_shm* c = make_area(dir_, dead, 12345, "dead_prog");
  munmap(c, sizeof(slub_shm));
  const auto s = tool({std::to_string(dead)});
  EXPECT_EQ(s.rc, 1);
  EXPECT_NE(s.err.find("stale"), std::string::npos) << s.err;
  EXPECT_EQ(tool({std::to_string(dead_pid())}).rc, 1);
  EXPECT_NE(tool({std::to_string(dead_pid())}).err.find("no such process"), std::string::npos);
  EXPECT_EQ(sleeper.stop(SIGKILL, 5) != -1, true);
}

}  // namespace

TEST_F(FakeArea, NumaShowsSlabsAndPartialsPerNode) {
  const auto r = tool_pid({"-n"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("Slabs/partial, node  :         0         1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dentry                    4/3       1/2"), std::string::npos) << r.out;
}
