// SPDX-License-Identifier: MIT
// The options table (pal/options.cc): its parser on its own, then every option with a wrong
// value in a child process (options_probe, linked with libslub.a): exactly one line on stderr,
// naming the variable, the value and what is accepted, and the default kept, in the table and,
// where it is cheap to see, in what the allocator does. SLUB_DEBUG's own checks (unknown flag
// letters, cache names that match nothing) are at the end.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <slub/slub.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "pal/options.h"
#include "run_util.h"

extern char** environ;

namespace {

namespace opt = slub::options;
using slabinfo_test::lines_of;
using slabinfo_test::RunResult;

// The environment of a child: every SLUB_* variable of ours unset (run_util: an empty value
// unsets), then `set`.
std::map<std::string, std::string> child_env(const std::map<std::string, std::string>& set) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "SLUB_", 5) == 0) env[std::string(*e, std::strchr(*e, '=') - *e)] = "";
  for (const auto& [k, v] : set) env[k] = v;
  return env;
}

RunResult probe(const std::string& mode, const std::map<std::string, std::string>& set = {}) {
  return slabinfo_test::run({OPTIONS_PROBE, mode}, child_env(set));
}

std::string probe_out(const std::string& mode, const std::map<std::string, std::string>& set) {
  RunResult r = probe(mode, set);
  EXPECT_EQ(r.rc, 0) << mode << ": " << r.err;
  return r.out.substr(0, r.out.find('\n'));
}

// "values": what the child's table holds, by name.
struct Held {
  long number;
  bool set;
  std::string str;
};
std::map<std::string, Held> held_values(const std::string& out) {
  std::map<std::string, Held> m;
  for (const std::string& l : lines_of(out)) {
    char name[64], str[1100];
    long number;
    int set;
    if (std::sscanf(l.c_str(), "%63s %ld %d %1099[^\n]", name, &number, &set, str) == 4)
      m[name] = {number, set != 0, str};
  }
  return m;
}

std::string accepted(opt::Id id) {
  char buf[128];
  opt::describe_accepted(id, buf, sizeof buf);
  return buf;
}

// The default as the messages name it: the number, or the enum's name.
std::string default_text(const opt::Option& o) {
  if (o.type != opt::Type::kEnum) return std::to_string(o.dflt);
  std::string names = o.choices;
  for (long i = 0; i < o.dflt; ++i) names.erase(0, names.find('|') + 1);
  return names.substr(0, names.find('|'));
}

long parsed(opt::Id id, const char* text) {
  long v = -12345;
  return opt::parse_value(id, text, &v) ? v : -12345;
}
constexpr long kRejected = -12345;

// ---- the table and the parser -------------------------------------------------------------

TEST(Options, TableIsWellFormed) {
  std::set<std::string> names;
  for (unsigned i = 0; i < opt::kNrOptions; ++i) {
    const opt::Option& o = opt::option(static_cast<opt::Id>(i));
    SCOPED_TRACE(o.name);
    EXPECT_EQ(o.id, i);
    EXPECT_EQ(std::strncmp(o.name, "SLUB_", 5), 0);
    EXPECT_TRUE(names.insert(o.name).second) << "listed twice";
    ASSERT_NE(o.help, nullptr);
    EXPECT_GT(std::strlen(o.help), 10u);
    // The help goes into a Markdown table: no cell separator, no HTML.
    EXPECT_EQ(std::strpbrk(o.help, "|<>\n"), nullptr);
    if (o.type == opt::Type::kInteger || o.type == opt::Type::kBool) {
      EXPECT_LE(o.min, o.dflt);
      EXPECT_LE(o.dflt, o.max);
    }
    if (o.type == opt::Type::kEnum || o.type == opt::Type::kString) EXPECT_NE(o.choices, nullptr);
    if (o.type == opt::Type::kString) EXPECT_NE(o.unset, nullptr);
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

TEST(Options, BooleansTakeEverySpellingInAnyCase) {
  for (unsigned i = 0; i < opt::kNrOptions; ++i) {
    const auto id = static_cast<opt::Id>(i);
    if (opt::option(id).type != opt::Type::kBool) continue;
    SCOPED_TRACE(opt::option(id).name);
    for (const char* on : {"1", "on", "ON", "yes", "Yes", "true", "TRUE", "tRuE"})
      EXPECT_EQ(parsed(id, on), 1) << on;
    for (const char* off : {"0", "off", "Off", "no", "NO", "false", "False"})
      EXPECT_EQ(parsed(id, off), 0) << off;
    for (const char* bad : {"", "2", "-1", "maybe", "y", "n", "onn", "of", " 1", "1 ", "01",
                            "yes please", "\x10", "0x1"})
      EXPECT_EQ(parsed(id, bad), kRejected) << "'" << bad << "'";
  }
}

TEST(Options, IntegersTakeTheirRangeOnly) {
  EXPECT_EQ(parsed(opt::kOptFlushMs, "10"), 10);
  EXPECT_EQ(parsed(opt::kOptFlushMs, "3600000"), 3600000);
  EXPECT_EQ(parsed(opt::kOptFlushMs, "+250"), 250);
  EXPECT_EQ(parsed(opt::kOptFlushMs, "0x64"), 100);
  EXPECT_EQ(parsed(opt::kOptFlushMs, "0X64"), 100);
  EXPECT_EQ(parsed(opt::kOptFlushMs, "0100"), 100);  // decimal, not octal
  // Out of range is rejected, not clamped (it was clamped to 10 before the table).
  for (const char* bad : {"9", "0", "-5", "3600001", "99999999999999999999", "abc", "", "10ms",
                          " 10", "10 ", "1e3", "0x", "--5", "+", "-"})
    EXPECT_EQ(parsed(opt::kOptFlushMs, bad), kRejected) << "'" << bad << "'";
  EXPECT_EQ(parsed(opt::kOptHwloc, "-1"), -1);
  EXPECT_EQ(parsed(opt::kOptHwloc, "1"), 1);
  EXPECT_EQ(parsed(opt::kOptHwloc, "2"), kRejected);
  EXPECT_EQ(parsed(opt::kOptDirtyMaxKb, "-1"), -1);
  EXPECT_EQ(parsed(opt::kOptDirtyMaxKb, "-2"), kRejected);
  EXPECT_EQ(parsed(opt::kOptDirtyMaxKb, "0"), 0);
  EXPECT_EQ(parsed(opt::kOptMinObjects, "32767"), 32767);
  EXPECT_EQ(parsed(opt::kOptMinObjects, "32768"), kRejected);
}

TEST(Options, EnumsTakeTheirNamesInAnyCase) {
  EXPECT_EQ(parsed(opt::kOptAllocator, "slub"), opt::kAllocSlub);
  EXPECT_EQ(parsed(opt::kOptAllocator, "slab"), opt::kAllocSlab);
  EXPECT_EQ(parsed(opt::kOptAllocator, "SLAB"), opt::kAllocSlab);
  for (const char* bad : {"", "slob", "sla", "slabs", "slab ", "1", "slub|slab"})
    EXPECT_EQ(parsed(opt::kOptAllocator, bad), kRejected) << "'" << bad << "'";
}

TEST(Options, StringsTakeAnyValueThatFits) {
  EXPECT_EQ(parsed(opt::kOptDebug, ""), 0);
  EXPECT_EQ(parsed(opt::kOptDebug, "FZPU,kmalloc-64"), 15);
  EXPECT_EQ(parsed(opt::kOptDebug, std::string(1023, 'F').c_str()), 1023);
  EXPECT_EQ(parsed(opt::kOptDebug, std::string(1024, 'F').c_str()), kRejected);
}

TEST(Options, AcceptedValuesAreSpelledOut) {
  EXPECT_EQ(accepted(opt::kOptNomerge), "1/0, on/off, yes/no or true/false");
  EXPECT_EQ(accepted(opt::kOptFlushMs), "an integer 10..3600000");
  EXPECT_EQ(accepted(opt::kOptAllocator), "slub or slab");
}

// print_table in `format`, as written to a file.
std::string table_as(opt::TableFormat format) {
  FILE* f = std::tmpfile();
  if (f == nullptr) return "tmpfile failed";
  EXPECT_EQ(opt::print_table(fileno(f), format), 0);
  std::rewind(f);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  std::fclose(f);
  return out;
}

// The options of slub(7) (cmake/slub_man.cmake): one .TP paragraph per option in the table's
// order, each '-' written as the minus it stands for (\-), and no line that roff would take
// for a request other than the three the format uses.
TEST(Options, TablePrintsAsRoff) {
  const std::string roff = table_as(opt::TableFormat::kRoff);
  size_t at = 0;
  for (unsigned i = 0; i < opt::kNrOptions; ++i) {
    const std::string head =
        std::string(".TP\n.B ") + opt::option(static_cast<opt::Id>(i)).name + "\n";
    const size_t p = roff.find(head, at);
    ASSERT_NE(p, std::string::npos) << head << "missing or out of order in:\n" << roff;
    at = p + head.size();
  }
  size_t paragraphs = 0;
  for (const std::string& line : lines_of(roff)) {
    if (line.empty() || (line[0] != '.' && line[0] != '\'')) continue;
    EXPECT_TRUE(line == ".TP" || line == ".br" || line.rfind(".B SLUB_", 0) == 0) << line;
    paragraphs += line == ".TP";
  }
  EXPECT_EQ(paragraphs, opt::kNrOptions);
  for (size_t p = roff.find('-'); p != std::string::npos; p = roff.find('-', p + 1))
    EXPECT_TRUE(p > 0 && roff[p - 1] == '\\')
        << "unescaped '-' at: " << roff.substr(p >= 20 ? p - 20 : 0, 40);
  EXPECT_NE(roff.find("(integer; default: 65536; accepted: \\-1..1073741824)"), std::string::npos);
  EXPECT_NE(roff.find("FZ,kmalloc\\-64"), std::string::npos);
}

TEST(Options, PrintRefusesAnUnknownFormat) {
  errno = 0;
  EXPECT_EQ(slub_options_print(1, 3), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(table_as(opt::TableFormat::kMarkdown).rfind("| variable | type |", 0), 0u);
}

// ---- every option with a wrong value, in a child ------------------------------------------

// A wrong value of option `id`, and what its one line must say is accepted.
struct Wrong {
  std::string value, says;
};
std::vector<Wrong> wrong_values(opt::Id id) {
  const opt::Option& o = opt::option(id);
  switch (o.type) {
    case opt::Type::kBool:
      return {{"maybe", accepted(id)}, {"2", accepted(id)}};
    case opt::Type::kInteger:
      return {{"abc", accepted(id)},
              {std::to_string(o.max + 1), accepted(id)},
              {std::to_string(o.min - 1), accepted(id)}};
    case opt::Type::kEnum:
      return {{"bogus", accepted(id)}};
    case opt::Type::kString:
      break;
  }
  if (id == opt::kOptDebug) return {{"FQ", "flags: F Z P U T, - for none"}};
  if (id == opt::kOptDebugLog) return {{"/nonexistent-dir/slub.log", "cannot open it"}};
  if (id == opt::kOptTopology) return {{"cpus=abc", "expected a number"}};
  ADD_FAILURE() << o.name << ": a string option without a wrong value in this test";
  return {};
}

class OptionsWrongValue : public testing::TestWithParam<unsigned> {};

TEST_P(OptionsWrongValue, OneLineNamingItAndTheDefaultKept) {
  const auto id = static_cast<opt::Id>(GetParam());
  const opt::Option& o = opt::option(id);
  const std::map<std::string, Held> dflt = held_values(probe("values").out);
  ASSERT_EQ(dflt.size(), opt::kNrOptions);
  for (const Wrong& w : wrong_values(id)) {
    SCOPED_TRACE(std::string(o.name) + "=" + w.value);
    RunResult r = probe("values", {{o.name, w.value}});
    ASSERT_EQ(r.rc, 0) << r.err;
    const std::vector<std::string> lines = lines_of(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("slub: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(std::string(o.name) + "=" + w.value), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(w.says), std::string::npos) << lines[0];
    const std::map<std::string, Held> now = held_values(r.out);
    if (o.type != opt::Type::kString) {
      EXPECT_NE(lines[0].find("(default " + default_text(o) + " kept)"), std::string::npos)
          << lines[0];
      EXPECT_EQ(now.at(o.name).number, o.dflt);
      EXPECT_FALSE(now.at(o.name).set);
    }
    // Nothing else moved.
    for (const auto& [name, h] : dflt)
      if (name != o.name) EXPECT_EQ(now.at(name).number, h.number) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryOption, OptionsWrongValue,
                         testing::Range(0u, unsigned{opt::kNrOptions}),
                         [](const testing::TestParamInfo<unsigned>& i) {
                           return std::string(opt::option(static_cast<opt::Id>(i.param)).name);
                         });

// The lines exactly as a user sees them.
TEST(OptionsMessage, ExactLines) {
  const std::map<std::string, std::string> want = {
      {"SLUB_FLUSH_MS=abc",
       "slub: SLUB_FLUSH_MS=abc ignored: expected an integer 10..3600000 (default 2000 kept)"},
      {"SLUB_FLUSH_MS=5",
       "slub: SLUB_FLUSH_MS=5 ignored: expected an integer 10..3600000 (default 2000 kept)"},
      {"SLUB_NOMERGE=maybe",
       "slub: SLUB_NOMERGE=maybe ignored: expected 1/0, on/off, yes/no or true/false (default 0 "
       "kept)"},
      {"SLUB_ALLOCATOR=slob",
       "slub: SLUB_ALLOCATOR=slob ignored: expected slub or slab (default slub kept)"},
      {"SLUB_TOPOLOGY=nodes",
       "slub: SLUB_TOPOLOGY=nodes ignored: expected key=value (as if unset: the real machine)"},
      {"SLUB_DEBUG=1",
       "slub: SLUB_DEBUG=1: unknown flag '1' skipped (flags: F Z P U T, - for none; an empty "
       "value is FZPU)"},
      {"SLUB_DEBUG=FQX,kmalloc-64",
       "slub: SLUB_DEBUG=FQX,kmalloc-64: unknown flags 'Q' 'X' skipped (flags: F Z P U T, - for "
       "none; an empty value is FZPU)"},
  };
  for (const auto& [setting, line] : want) {
    const size_t eq = setting.find('=');
    RunResult r = probe("values", {{setting.substr(0, eq), setting.substr(eq + 1)}});
    EXPECT_EQ(r.err, line + "\n") << setting;
  }
  // A long value is cut in the message, which stays one line.
  RunResult r = probe("values", {{"SLUB_DEBUG", std::string(2000, 'F')}});
  EXPECT_EQ(r.err, "slub: SLUB_DEBUG=" + std::string(80, 'F') +
                       "... ignored: longer than 1023 bytes (as if unset: no debugging)\n");
}

TEST(OptionsMessage, NothingWhenUnsetOrValid) {
  EXPECT_EQ(probe("values").err, "");
  const std::map<std::string, std::string> valid = {
      {"SLUB_ALLOCATOR", "SLAB"},     {"SLUB_DEBUG_ABORT", "no"},
      {"SLUB_DIRTY_MAX_KB", "-1"},    {"SLUB_EXPORT", "off"},
      {"SLUB_FLUSHER", "true"},       {"SLUB_FLUSH_MS", "0x3e8"},
      {"SLUB_FREELIST_RANDOM", "on"}, {"SLUB_HWLOC", "0"},
      {"SLUB_MIN_OBJECTS", "16"},     {"SLUB_NOMERGE", "YES"},
      {"SLUB_REPORT", "0"},           {"SLUB_SHEAVES", "False"},
      {"SLUB_STRICT", "off"},         {"SLUB_TOPOLOGY", "cpus=8,nodes=2"},
      {"SLUB_DEBUG", "FZ,kmalloc-64"}};
  RunResult r = probe("values", valid);
  EXPECT_EQ(r.err, "");
  const std::map<std::string, Held> h = held_values(r.out);
  EXPECT_EQ(h.at("SLUB_ALLOCATOR").number, opt::kAllocSlab);
  EXPECT_EQ(h.at("SLUB_FLUSH_MS").number, 1000);
  EXPECT_EQ(h.at("SLUB_NOMERGE").number, 1);
  EXPECT_EQ(h.at("SLUB_SHEAVES").number, 0);
  EXPECT_TRUE(h.at("SLUB_SHEAVES").set);
  EXPECT_EQ(h.at("SLUB_DEBUG").str, "FZ,kmalloc-64");
  EXPECT_FALSE(h.at("SLUB_RSEQ").set);
}

// ---- what the allocator does with them ----------------------------------------------------

// SLUB_NOMERGE=yes used to keep merging on (only numbers were read); every spelling now works.
TEST(OptionsEffect, NomergeTakesEveryBooleanSpelling) {
  EXPECT_EQ(probe_out("merge", {}), "merged");
  for (const char* on : {"1", "on", "yes", "true", "YES", "On"})
    EXPECT_EQ(probe_out("merge", {{"SLUB_NOMERGE", on}}), "apart") << on;
  for (const char* off : {"0", "off", "no", "false", "NO"})
    EXPECT_EQ(probe_out("merge", {{"SLUB_NOMERGE", off}}), "merged") << off;
  EXPECT_EQ(probe_out("merge", {{"SLUB_NOMERGE", "maybe"}}), "merged");
}

// SLUB_EXPORT=no used to make the area all the same.
TEST(OptionsEffect, ExportNoMakesNoArea) {
  EXPECT_EQ(probe_out("export", {{"SLUB_EXPORT", "no"}}), "no-area");
  EXPECT_EQ(probe_out("export", {{"SLUB_EXPORT", "maybe"}}), "area");  // the default, on
}

TEST(OptionsEffect, SheavesOffIsTheClassicMode) {
  EXPECT_EQ(probe_out("sheaves", {{"SLUB_SHEAVES", "off"}}), "0");
  EXPECT_NE(probe_out("sheaves", {{"SLUB_SHEAVES", "maybe"}}), "0");
}

// SLUB_RSEQ=off used to leave the rseq sections on.
TEST(OptionsEffect, RseqOffTurnsTheSectionsOff) {
  if (probe_out("rseq", {}) != "1") GTEST_SKIP() << "no rseq fast path here (kernel, glibc, TSan)";
  EXPECT_EQ(probe_out("rseq", {{"SLUB_RSEQ", "off"}}), "0");
  EXPECT_EQ(probe_out("rseq", {{"SLUB_RSEQ", "no"}}), "0");
  EXPECT_EQ(probe_out("rseq", {{"SLUB_RSEQ", "bogus"}}), "1");
}

TEST(OptionsEffect, AllocatorTakesItsNamesInAnyCase) {
  EXPECT_EQ(probe_out("allocator", {}), "0");
  EXPECT_EQ(probe_out("allocator", {{"SLUB_ALLOCATOR", "slab"}}), "1");
  EXPECT_EQ(probe_out("allocator", {{"SLUB_ALLOCATOR", "SLAB"}}), "1");
  EXPECT_EQ(probe_out("allocator", {{"SLUB_ALLOCATOR", "slob"}}), "0");
}

TEST(OptionsEffect, FlusherOffStartsNoThread) {
  EXPECT_EQ(probe_out("threads", {}), "1");  // the service thread, at once with the area
  EXPECT_EQ(probe_out("threads", {{"SLUB_FLUSHER", "off"}}), "0");
  EXPECT_EQ(probe_out("threads", {{"SLUB_FLUSHER", "nope"}}), "1");
}

TEST(OptionsEffect, MinObjectsOutOfRangeKeepsTheKernelsFormula) {
  const std::string dflt = probe_out("objects", {});
  EXPECT_EQ(probe_out("objects", {{"SLUB_MIN_OBJECTS", "-3"}}), dflt);
  EXPECT_EQ(probe_out("objects", {{"SLUB_MIN_OBJECTS", "40000"}}), dflt);
  EXPECT_GE(std::stoi(probe_out("objects", {{"SLUB_MIN_OBJECTS", "500"}})), 500);
}

TEST(OptionsEffect, TopologyTakesAValidSpecOnly) {
  const std::string real = probe_out("nodes", {});
  EXPECT_EQ(probe_out("nodes", {{"SLUB_TOPOLOGY", "cpus=8,nodes=4"}}), "4");
  EXPECT_EQ(probe_out("nodes", {{"SLUB_TOPOLOGY", "cpus=8,nodes=9"}}), real);
}

TEST(OptionsEffect, FreelistRandomOnShufflesNewSlabs) {
  EXPECT_EQ(probe_out("random", {}), "ordered");
  EXPECT_EQ(probe_out("random", {{"SLUB_FREELIST_RANDOM", "on"}}), "shuffled");
  EXPECT_EQ(probe_out("random", {{"SLUB_FREELIST_RANDOM", "sometimes"}}), "ordered");
}

TEST(OptionsEffect, StrictYesAbortsAtTheFirstReport) {
  RunResult r = probe("strict", {{"SLUB_STRICT", "yes"}});
  EXPECT_EQ(r.rc, -1) << r.out;  // killed by SIGABRT
  EXPECT_NE(r.err.find("SLUB_STRICT is set: aborting"), std::string::npos) << r.err;
  r = probe("strict", {{"SLUB_STRICT", "sure"}});
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "survived\n");
}

TEST(OptionsEffect, DebugLogThatCannotBeOpenedLeavesStderr) {
  EXPECT_EQ(probe_out("debug_fd", {{"SLUB_DEBUG_LOG", "/nonexistent-dir/slub.log"}}), "2");
}

// SLUB_REPORT is libslub.so's: a plain program under LD_PRELOAD.
TEST(OptionsEffect, ReportTakesEveryBooleanSpelling) {
#ifdef SLUB_TSAN
  GTEST_SKIP() << "libslub.so built with ThreadSanitizer cannot be preloaded into a plain program";
#endif
  auto run = [](const char* v) {
    auto env = child_env({{"SLUB_REPORT", v}});
    env["LD_PRELOAD"] = SLUB_SO;
    return slabinfo_test::run({OPTIONS_PRELOAD_PROG}, env);
  };
  for (const char* on : {"1", "yes", "on", "TRUE"}) {
    RunResult r = run(on);
    EXPECT_EQ(r.rc, 0);
    EXPECT_EQ(r.err.rfind("Name ", 0), 0u) << on << ": " << r.err;
  }
  RunResult r = run("perhaps");
  EXPECT_EQ(r.err,
            "slub: SLUB_REPORT=perhaps ignored: expected 1/0, on/off, yes/no or true/false "
            "(default 0 kept)\n");
}

// ---- SLUB_DEBUG ---------------------------------------------------------------------------

// As in the kernel, '1' is not a flag: it is skipped and nothing is turned on, but now one line
// says so and what the flags are.
TEST(SlubDebugOption, OneIsAnUnknownFlagAndTurnsNothingOn) {
  const std::string plain = probe_out("slot", {});
  RunResult r = probe("slot", {{"SLUB_DEBUG", "1"}});
  ASSERT_EQ(lines_of(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("SLUB_DEBUG=1: unknown flag '1' skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("F Z P U T"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, plain + "\n");
}

TEST(SlubDebugOption, UnknownLettersAreNamedOnceAndTheOthersKept) {
  const std::string plain = probe_out("slot", {});
  RunResult r = probe("slot", {{"SLUB_DEBUG", "ZQQ;Q,kmalloc-64"}});
  ASSERT_EQ(lines_of(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("unknown flag 'Q' skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.out, plain + "\n");  // Z: red zones make the slot larger
}

// A cache name of the list that matches no cache of the run: one line at exit.
TEST(SlubDebugOption, ListedNameThatMatchesNoCacheIsReportedAtExit) {
  RunResult r = probe("slot", {{"SLUB_DEBUG", "FZPU,kmalloc-6"}});
  EXPECT_EQ(r.err,
            "slub: SLUB_DEBUG=FZPU,kmalloc-6: no cache matched the name kmalloc-6 in this run\n");
  r = probe("slot", {{"SLUB_DEBUG", "F,kmalloc-64,nosuch;Z,probe-cache,other"}});
  EXPECT_EQ(r.err,
            "slub: SLUB_DEBUG=F,kmalloc-64,nosuch;Z,probe-cache,other: no cache matched the "
            "names nosuch, other in this run\n");
  // Names that match, wildcards too, and a spec without a list: nothing.
  for (const char* ok : {"FZPU,kmalloc-64", "P,kmalloc-1*", "U,probe-c?che", "FZPU"}) {
    r = probe("slot", {{"SLUB_DEBUG", ok}});
    EXPECT_EQ(r.err, "") << ok;
  }
}

// The line is the run's, not each fork child's (a child that exits runs the destructors too).
TEST(SlubDebugOption, ForkChildDoesNotRepeatTheExitLine) {
  RunResult r = probe("fork", {{"SLUB_DEBUG", "F,nosuch"}});
  EXPECT_EQ(r.out, "child 0\n");
  EXPECT_EQ(r.err, "slub: SLUB_DEBUG=F,nosuch: no cache matched the name nosuch in this run\n");
}

}  // namespace
