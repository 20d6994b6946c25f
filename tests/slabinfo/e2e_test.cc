// SPDX-License-Identifier: MIT
// slabinfo on a real program running with LD_PRELOAD=libslub.so (test_prog.c): the numbers it
// shows match the program's known allocations, the commands work, the area goes away at exit,
// and the area of a killed program is reported stale and removed.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include <slub/stats.h>

#include "procfs_parse.h"
#include "run_util.h"

namespace {

using namespace slabinfo_test;
using nlohmann::json;

// Real areas only: no SLABINFO_SHM_DIR.
const std::map<std::string, std::string> kToolEnv = {{"SLABINFO_SHM_DIR", ""}};

std::string area(pid_t pid) {
  return "/dev/shm/slub." + std::to_string(pid);
}

RunResult slabinfo(std::vector<std::string> args) {
  args.insert(args.begin(), SLABINFO_BIN);
  return run(args, kToolEnv, 20);
}

// Starts the test program and waits for its statistics area (its first second). `env` is added
// to the program's environment.
testing::AssertionResult start_prog(Background& prog, const std::string& slub_debug = "",
                                    int extra_caches = 0,
                                    std::map<std::string, std::string> env = {}) {
  env["LD_PRELOAD"] = SLUB_SO;
  if (!slub_debug.empty()) env["SLUB_DEBUG"] = slub_debug;
  if (extra_caches > 0) env["SLABINFO_TEST_EXTRA_CACHES"] = std::to_string(extra_caches);
  if (!prog.start({SLABINFO_TEST_PROG}, env) || !prog.wait_line("ready", 10))
    return testing::AssertionFailure();
  if (!wait_until([&] { return file_exists(area(prog.pid())); }, 5))
    return testing::AssertionFailure() << area(prog.pid()) << " did not appear within 5 s";
  return testing::AssertionSuccess();
}

// The count of the first line of an alloc_calls/free_calls text naming `func`, or -1.
long calls_count(const std::string& text, const std::string& func) {
  for (const auto& l : lines_of(text)) {
    char name[256];
    long count = 0;
    if (std::sscanf(l.c_str(), " %ld %255[^+ ]", &count, name) == 2 && func == name) return count;
  }
  return -1;
}

const json* find_cache(const json& snap, const std::string& name) {
  for (const json& c : snap["caches"]) {
    if (c["name"] == name) return &c;
    for (const json& a : c["aliases"])
      if (a == name) return &c;
  }
  return nullptr;
}

uint64_t counter_in_report(const std::string& report, const std::string& name) {
  for (const auto& l : lines_of(report))
    if (l.rfind(name + " ", 0) == 0) return std::strtoull(l.c_str() + name.size(), nullptr, 10);
  return UINT64_MAX;
}

TEST(SlabinfoEndToEnd, RealProgram) {
  Background prog;
  ASSERT_TRUE(start_prog(prog));
  const pid_t pid = prog.pid();
  const std::string p = std::to_string(pid);

  // --json: the snapshot, fresh.
  auto r = slabinfo({p, "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  json snap = json::parse(r.out);
  EXPECT_EQ(snap["pid"], pid);
  EXPECT_EQ(snap["fresh"], true);
  // The program's name (/proc/<pid>/comm keeps 15 characters) or its path.
  EXPECT_NE(snap["exe"].get<std::string>().find("slabinfo_test_p"), std::string::npos)
      << snap["exe"];
  const json* obj = find_cache(snap, "slabinfo_test_obj");
  ASSERT_NE(obj, nullptr) << r.out;
  EXPECT_EQ((*obj)["name"], "slabinfo_test_obj");
  EXPECT_EQ((*obj)["object_size"], 200);
  EXPECT_EQ((*obj)["slot_size"], 200);
  // Free objects of CPU slabs count as in use (as in the kernel) until they are flushed.
  EXPECT_GE((*obj)["objects"].get<uint64_t>(), 1000u);
  EXPECT_GE((*obj)["total_objects"].get<uint64_t>(), 1000u);
  EXPECT_EQ((*obj)["nr_aliases"], 1);
  EXPECT_EQ((*obj)["aliases"], json::array({"slabinfo_test_alias"}));
  EXPECT_GT((*obj)["stats"]["alloc_slowpath"].get<uint64_t>(), 0u);
  EXPECT_GT((*obj)["stats"]["alloc_slab"].get<uint64_t>(), 0u);
  const json* k3 = find_cache(snap, "kmalloc-3k");
  ASSERT_NE(k3, nullptr) << r.out;
  EXPECT_EQ((*k3)["object_size"], 3072);
  EXPECT_GE((*k3)["objects"].get<uint64_t>(), 5000u);

  // -s on the cache: flushes the CPU slabs, after which exactly the live objects count.
  r = slabinfo({p, "-s", "slabinfo_test_obj"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.rfind("shrink: slabinfo_test_obj: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(" slabs freed\n"), std::string::npos) << r.out;
  r = slabinfo({p, "-s"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.rfind("shrink: all caches: ", 0), 0u) << r.out;

  r = slabinfo({p, "--json", "slabinfo_test_obj"});
  ASSERT_EQ(r.rc, 0) << r.err;
  snap = json::parse(r.out);
  ASSERT_EQ(snap["caches"].size(), 1u) << r.out;
  EXPECT_EQ(snap["caches"][0]["objects"], 1000) << r.out;

  // --proc: the same through the /proc/slabinfo format.
  r = slabinfo({p, "--proc"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto info = slabinfo::parse_proc_slabinfo(r.out);
  ASSERT_TRUE(info.ok()) << r.out;
  EXPECT_EQ(info.records.size(), snap["nr_caches"].get<size_t>());
  const auto* rec = info.find("slabinfo_test_obj");
  ASSERT_NE(rec, nullptr) << r.out;
  EXPECT_EQ(rec->active_objs, 1000u);
  EXPECT_EQ(rec->objsize, 200u);
  EXPECT_GE(rec->num_objs, 1000u);
  EXPECT_EQ(rec->num_objs, rec->objperslab * rec->num_slabs);
  const auto* k3rec = info.find("kmalloc-3k");
  ASSERT_NE(k3rec, nullptr) << r.out;
  EXPECT_GE(k3rec->active_objs, 5000u);

  // -r: the full report, with the counters.
  r = slabinfo({p, "-r", "slabinfo_test_obj"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("Slabcache: slabinfo_test_obj"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Aliases      : slabinfo_test_alias"), std::string::npos) << r.out;
  const uint64_t slow = counter_in_report(r.out, "alloc_slowpath");
  EXPECT_NE(slow, UINT64_MAX) << r.out;
  EXPECT_GT(slow, 0u) << r.out;

  // -v: every cache validates without errors.
  r = slabinfo({p, "-v"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "validate: all caches: 0 errors\n");
  r = slabinfo({p, "-v", "slabinfo_test_obj"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "validate: slabinfo_test_obj: 0 errors\n");

  // The default table, the aliases and the totals.
  r = slabinfo({p});
  ASSERT_EQ(r.rc, 0) << r.err;
  char line[64];
  snprintf(line, sizeof line, "\n%-21s %8d %7d ", "slabinfo_test_obj", 1000, 200);
  EXPECT_NE(r.out.find(line), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nkmalloc-3k "), std::string::npos) << r.out;
  r = slabinfo({p, "-a"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("<- slabinfo_test_alias slabinfo_test_obj\n"), std::string::npos) << r.out;
  r = slabinfo({p, "-T"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("Slabcache Totals"), std::string::npos) << r.out;

  // No pid: the process is listed.
  r = slabinfo({});
  ASSERT_EQ(r.rc, 0) << r.err;
  char row[32];
  snprintf(row, sizeof row, "\n%8d ", pid);
  EXPECT_NE(r.out.find(row), std::string::npos) << r.out;

  // SIGTERM: the program exits normally and its area goes.
  const int status = prog.stop(SIGTERM, 5);
  ASSERT_NE(status, -1) << "the test program did not exit on SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(wait_until([&] { return !file_exists(area(pid)); }, 2))
      << area(pid) << " is still there after the program exited";
  EXPECT_EQ(slabinfo({p}).rc, 1);
}

// The exit status the help promises: 0 ok, 1 no such process or area or no cache matched (or the
// cache does not track calls), 2 usage error; and one line on stderr for each failure.
TEST(SlabinfoEndToEnd, ExitStatusAsTheHelpSays) {
  Background prog;
  ASSERT_TRUE(start_prog(prog));
  const pid_t pid = prog.pid();
  const std::string p = std::to_string(pid);

  auto r = slabinfo({"--help"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("Exit status: 0 ok, 1 "), std::string::npos) << r.out;
  r = slabinfo({p, "slabinfo_test_obj"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("\nslabinfo_test_obj "), std::string::npos) << r.out;
  r = slabinfo({p, "slabinfo_test_.*"});  // a regular expression that matches
  EXPECT_EQ(r.rc, 0) << r.err;
  r = slabinfo({p, "--kfence"});  // KFENCE off: its stats say so, nothing is cut
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.rfind("enabled: 0\n", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("(cut"), std::string::npos) << r.out;

  // No cache of that name: one line, status 1, in every view.
  const std::string none = "slabinfo: no cache matches 'nosuchcache' in process " + p + "\n";
  for (const std::vector<std::string>& args : {std::vector<std::string>{p, "nosuchcache"},
                                               {p, "--json", "nosuchcache"},
                                               {p, "-T", "nosuchcache"},
                                               {p, "-r", "nosuchcache"},
                                               {p, "-v", "nosuchcache"},
                                               {p, "--alloc-calls", "nosuchcache"}}) {
    r = slabinfo(args);
    EXPECT_EQ(r.rc, 1) << args[1] << ": " << r.out;
    EXPECT_EQ(r.err, none) << args[1];
    EXPECT_EQ(r.out, "") << args[1];
  }
  // alloc_calls of a cache that does not track its callers: one line, status 1.
  r = slabinfo({p, "--alloc-calls", "slabinfo_test_obj"});
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_EQ(r.err,
            "slabinfo: alloc_calls: cache 'slabinfo_test_obj' of process " + p +
                " does not track its callers (run it with SLUB_DEBUG=U,slabinfo_test_obj)\n");

  // Usage errors: status 2.
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--no-such-option"},
                                               {p, "a", "b"},
                                               {p, "--lines", "abc"},
                                               {"abc"},
                                               {"-r", "slabinfo_test_obj"},
                                               {p, "-t"},
                                               {p, "--alloc-calls"},
                                               {p, "--alloc-calls", "slabinfo_test_obj", "-v"},
                                               {"--kfence"},
                                               {p, "--kfence", "-v"},
                                               {p, "--kfence", "slabinfo_test_obj"},
                                               {p, "(unclosed"}}) {
    r = slabinfo(args);
    EXPECT_EQ(r.rc, 2) << args[0] << (args.size() > 1 ? " " + args[1] : "") << ": " << r.err;
    EXPECT_NE(r.err.find("Try 'slabinfo --help'."), std::string::npos) << r.err;
  }

  ASSERT_NE(prog.stop(SIGTERM, 5), -1);
  // No such process: status 1.
  r = slabinfo({p});
  EXPECT_EQ(r.rc, 1) << r.out;
  r = slabinfo({p, "--alloc-calls", "slabinfo_test_obj"});
  EXPECT_EQ(r.rc, 1) << r.out;
  r = slabinfo({p, "--kfence"});
  EXPECT_EQ(r.rc, 1) << r.out;
}

// --alloc-calls and --free-calls: the kernel's alloc_calls/free_calls of a running program's
// cache (SLUB_DEBUG=U on it), asked through the statistics area and answered by the program's
// service thread. test_prog allocates its 1000 live objects in slabinfo_test_make_objects and
// frees 100 in slabinfo_test_churn.
TEST(SlabinfoEndToEnd, AllocAndFreeCalls) {
  Background prog;
  ASSERT_TRUE(start_prog(prog, "U,slabinfo_test_obj"));
  const pid_t pid = prog.pid();
  const std::string p = std::to_string(pid);

  auto r = slabinfo({p, "--alloc-calls", "slabinfo_test_obj"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // Every live object was allocated there: "   1000 slabinfo_test_make_objects+0x../0x.. [..]
  // age=../../.. tid=PID-PID cpus=.."
  EXPECT_EQ(calls_count(r.out, "slabinfo_test_make_objects"), 1000) << r.out;
  EXPECT_EQ(lines_of(r.out).size(), 1u) << r.out;
  EXPECT_NE(r.out.find(" age="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" tid=" + p + "-" + p + " cpus="), std::string::npos) << r.out;

  // Free objects by where they were freed (those of slabs that went back are gone with them).
  r = slabinfo({p, "--free-calls=slabinfo_test_obj"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const long freed = calls_count(r.out, "slabinfo_test_churn");
  EXPECT_GE(freed, 1) << r.out;
  EXPECT_LE(freed, 100) << r.out;

  // Both in JSON, as lines.
  r = slabinfo(
      {p, "--json", "--alloc-calls", "slabinfo_test_obj", "--free-calls", "slabinfo_test_obj"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 2u) << r.out;
  EXPECT_EQ(j[0]["cache"], "slabinfo_test_obj");
  ASSERT_EQ(j[0]["alloc_calls"].size(), 1u) << r.out;
  EXPECT_EQ(calls_count(j[0]["alloc_calls"][0].get<std::string>(), "slabinfo_test_make_objects"),
            1000);
  ASSERT_GE(j[1]["free_calls"].size(), 1u) << r.out;

  // -r -t: the report ends with both.
  r = slabinfo({p, "-r", "slabinfo_test_obj", "-t"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const size_t a = r.out.find("\n# alloc_calls of slabinfo_test_obj\n");
  const size_t f = r.out.find("\n# free_calls of slabinfo_test_obj\n");
  ASSERT_NE(a, std::string::npos) << r.out;
  ASSERT_NE(f, std::string::npos) << r.out;
  EXPECT_EQ(calls_count(r.out.substr(a, f - a), "slabinfo_test_make_objects"), 1000) << r.out;

  // A cache without U in the same program: one line, status 1.
  r = slabinfo({p, "--alloc-calls", "kmalloc-3k"});
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.err.find("does not track its callers"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  // The program is unharmed: it still validates and exits normally.
  r = slabinfo({p, "-v", "slabinfo_test_obj"});
  EXPECT_EQ(r.out, "validate: slabinfo_test_obj: 0 errors\n") << r.err;
  const int status = prog.stop(SIGTERM, 5);
  EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// --kfence: the program's KFENCE pool as the kernel's kfence/stats and kfence/objects, asked
// through the statistics area. SLUB_KFENCE_SAMPLE=1 samples every allocation, so the pool's
// slots go to the program's first allocations: its 10 early malloc(100) blocks among them.
TEST(SlabinfoEndToEnd, Kfence) {
  Background prog;
  ASSERT_TRUE(start_prog(prog, "", 0,
                         {{"SLUB_KFENCE_SAMPLE", "1"}, {"SLABINFO_TEST_MALLOCS_FIRST", "10"}}));
  const std::string p = std::to_string(prog.pid());

  auto r = slabinfo({p, "--kfence"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto lines = lines_of(r.out);
  auto line_at = [&](const std::string& prefix) -> std::string {
    for (const auto& l : lines)
      if (l.rfind(prefix, 0) == 0) return l;
    return "";
  };
  EXPECT_EQ(line_at("enabled:"), "enabled: 1") << r.out;
  const std::string allocated = line_at("currently allocated: ");
  ASSERT_NE(allocated, "") << r.out;
  EXPECT_GT(std::strtoull(allocated.c_str() + 21, nullptr, 10), 0u) << r.out;
  EXPECT_NE(line_at("total allocations:"), "") << r.out;
  // An object line: "kfence-#N [0xSTART-0xEND, size=100, cache=kmalloc-SIZE] allocated by ...".
  long kmalloc_objects = 0;
  for (const auto& l : lines)
    kmalloc_objects += l.rfind("kfence-#", 0) == 0 && l.find("cache=kmalloc-") != std::string::npos;
  EXPECT_GE(kmalloc_objects, 1) << r.out;
  // 1000 objects of slabinfo_test_obj fill the pool: its 255 objects and their stacks are more
  // than the reply holds, and the text ends in whole lines and a line that says so.
  const std::string cut = "\n(cut: the reply holds 64 KiB)\n";
  ASSERT_GT(r.out.size(), cut.size());
  EXPECT_EQ(r.out.substr(r.out.size() - cut.size()), cut) << r.out;
  EXPECT_NE(line_at("skipped allocations (capacity): "), "skipped allocations (capacity): 0");

  // In JSON, as lines.
  r = slabinfo({p, "--kfence", "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_GE(j["kfence"].size(), 2u) << r.out;
  EXPECT_EQ(j["kfence"][0], "enabled: 1") << r.out;

  const int status = prog.stop(SIGTERM, 5);
  EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// More caches than the area has records (SLUB_SHM_MAX_CACHES, 1024: 1000 more caches and the
// ~60 malloc classes): the records stop at the last one and the reply region after them keeps
// the answer whole (the records once ran on into it). Not many more: the CPU areas hold the
// slots of about 1100 caches.
TEST(SlabinfoEndToEnd, AllocCallsWithMoreCachesThanRecords) {
  Background prog;
  ASSERT_TRUE(start_prog(prog, "U,slabinfo_test_obj", 1000));
  const pid_t pid = prog.pid();
  const std::string p = std::to_string(pid);
  for (int round = 0; round < 3; ++round) {  // each command publishes the records again
    const auto r = slabinfo({p, "--alloc-calls", "slabinfo_test_obj"});
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(calls_count(r.out, "slabinfo_test_make_objects"), 1000) << r.out;
    EXPECT_EQ(lines_of(r.out).size(), 1u) << r.out;
  }
  const int status = prog.stop(SIGTERM, 5);
  EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(SlabinfoEndToEnd, KilledProgramLeavesStaleArea) {
  Background prog;
  ASSERT_TRUE(start_prog(prog));
  const pid_t pid = prog.pid();
  ASSERT_NE(prog.stop(SIGKILL, 5), -1);
  // A SIGKILLed program cannot remove its area. (The flusher of any slub program that starts
  // meanwhile, e.g. a test running in parallel, removes stale areas too: then there is nothing
  // left for slabinfo to do.)
  const bool still_there = file_exists(area(pid));
  const auto r = slabinfo({});
  ASSERT_EQ(r.rc, 0) << r.err;
  const bool removed = r.out.find("removed stale area " + area(pid) + ": process " +
                                  std::to_string(pid) + " no longer exists") != std::string::npos;
  if (still_there && !removed && file_exists(area(pid)))
    ADD_FAILURE() << "slabinfo did not remove " << area(pid) << ":\n" << r.out;
  if (!still_there) std::printf("note: another slub program removed %s first\n", area(pid).c_str());
  EXPECT_FALSE(file_exists(area(pid)));
  // Asking for the dead pid fails with status 1.
  EXPECT_EQ(slabinfo({std::to_string(pid)}).rc, 1);
}

}  // namespace
