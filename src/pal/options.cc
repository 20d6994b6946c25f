// SPDX-License-Identifier: MIT
// pal/options.cc: the table of environment variables and its parser (see options.h).
#include "pal/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pal/os.h"

namespace slub::options {

namespace {

using enum Type;

// Each option once. Help lines are plain text (no '|', no '<'): they go into a Markdown table.
constexpr Option kTable[] = {
    {kOptAllocator, "SLUB_ALLOCATOR", kEnum, kAllocSlub, 0, 0, "slub|slab", nullptr,
     "slab: the SLAB clone behind malloc and behind every cache created (docs/SLAB.md)"},
    {kOptDebug, "SLUB_DEBUG", kString, 0, 0, 1023, "flags[,cache,...][;flags,cache,...]",
     "no debugging",
     "debug flags per cache in the kernel's slub_debug syntax, as FZPU or FZ,kmalloc-64 "
     "(docs/DEBUGGING.md); an empty value is FZPU for every cache"},
    {kOptDebugAbort, "SLUB_DEBUG_ABORT", kBool, 0, 0, 1, nullptr, nullptr,
     "abort after the first debug report instead of repairing what it can and carrying on"},
    {kOptDebugLog, "SLUB_DEBUG_LOG", kString, 0, 0, 1023, "PATH", "stderr",
     "file that every report (debug reports, traces, the SLUB_REPORT tables) is appended to"},
    {kOptDirtyMaxKb, "SLUB_DIRTY_MAX_KB", kInteger, 65536, -1, 1l << 30, nullptr, nullptr,
     "free resident KiB beyond which free pages go back to the OS at once, down to half of it "
     "(-1: the default)"},
    {kOptExport, "SLUB_EXPORT", kBool, 1, 0, 1, nullptr, nullptr,
     "the statistics area /dev/shm/slub.PID for tools/slabinfo; a failure to make it is "
     "reported only when set explicitly"},
    {kOptFlusher, "SLUB_FLUSHER", kBool, 1, 0, 1, nullptr, nullptr,
     "0: never start the service thread (the one background thread: flushing, the SLAB "
     "clone's reaping, purging, the statistics area)"},
    {kOptFlushMs, "SLUB_FLUSH_MS", kInteger, 2000, 10, 3600000, nullptr, nullptr,
     "period in ms of the service thread's passes over idle CPU slots, idle barns and free "
     "pages"},
    {kOptFreelistRandom, "SLUB_FREELIST_RANDOM", kBool, 0, 0, 1, nullptr, nullptr,
     "new slabs hand out their objects in a random order (CONFIG_SLAB_FREELIST_RANDOM)"},
    {kOptHwloc, "SLUB_HWLOC", kInteger, -1, -1, 1, nullptr, nullptr,
     "ask hwloc for the CPU-to-node map and distances: -1 when /sys lists more than one node, "
     "1 always, 0 never"},
    {kOptKfence, "SLUB_KFENCE", kInteger, 0, 0, 3600000, nullptr, nullptr,
     "KFENCE: ms between sampled allocations served from the guarded pool (the kernel's "
     "kfence.sample_interval, whose default is 100); 0: off"},
    {kOptKfenceAbort, "SLUB_KFENCE_ABORT", kBool, 0, 0, 1, nullptr, nullptr,
     "abort after the first KFENCE report instead of letting the program go on"},
    {kOptKfenceObjects, "SLUB_KFENCE_NUM_OBJECTS", kInteger, 255, 1, 16383, nullptr, nullptr,
     "KFENCE: objects the guarded pool holds, each on its own page between guard pages (each "
     "live one splits the pool's mapping: at most 32766 of vm.max_map_count's 65530)"},
    {kOptKfenceSample, "SLUB_KFENCE_SAMPLE", kInteger, 0, 0, 1l << 30, nullptr, nullptr,
     "KFENCE for tests: every Nth allocation from the pool, every allocation a slow path "
     "(slow); 0: sample by SLUB_KFENCE's interval"},
    {kOptMinObjects, "SLUB_MIN_OBJECTS", kInteger, 0, 0, 32767, nullptr, nullptr,
     "the kernel's slub_min_objects, objects a slab should hold at least; 0: 4 x (fls(CPUs) + "
     "1)"},
    {kOptNomerge, "SLUB_NOMERGE", kBool, 0, 0, 1, nullptr, nullptr,
     "never merge compatible caches (the kernel's slub_nomerge; docs/MERGING.md)"},
    {kOptReport, "SLUB_REPORT", kBool, 0, 0, 1, nullptr, nullptr,
     "libslub.so only: print the cache table, and the alloc calls of caches with U, on stderr "
     "at exit"},
    {kOptRseq, "SLUB_RSEQ", kBool, 1, 0, 1, nullptr, nullptr,
     "0: no rseq sections even where rseq works (locked sheaves; compare-and-swap in the "
     "classic mode)"},
    {kOptRseqEmulate, "SLUB_RSEQ_EMULATE", kBool, 0, 0, 1, nullptr, nullptr,
     "test-only: run the rseq sections as on CPU 0 where the kernel registered no rseq "
     "(valgrind); one thread"},
    {kOptSheaves, "SLUB_SHEAVES", kBool, 1, 0, 1, nullptr, nullptr,
     "0: no sheaves, the classic SLUB (per-CPU slab, tid and cmpxchg16b) for every cache"},
    {kOptStrict, "SLUB_STRICT", kBool, 0, 0, 1, nullptr, nullptr,
     "abort after the first report of a bad free or a corrupt free pointer instead of ignoring "
     "it and carrying on"},
    {kOptTopology, "SLUB_TOPOLOGY", kString, 0, 0, 127, "cpus=N,nodes=M[,distance=L:R][,ring=1]",
     "the real machine", "a virtual machine of up to 4096 CPUs in 1024 nodes (docs/NUMA.md)"},
};
static_assert(sizeof kTable / sizeof kTable[0] == kNrOptions);

constexpr bool ids_in_order() {
  for (unsigned i = 0; i < kNrOptions; ++i)
    if (kTable[i].id != i) return false;
  return true;
}
static_assert(ids_in_order(), "kTable must list the options in the order of enum Id");

constexpr size_t string_pool_bytes() {
  size_t n = 0;
  for (const Option& o : kTable)
    if (o.type == kString) n += static_cast<size_t>(o.max) + 1;
  return n;
}

// The copies of the string values (getenv's strings may be replaced by a later setenv).
constinit char g_pool[string_pool_bytes()] = {};
// On the parsing thread only: a signal handler there that asks for an option gets the
// defaults rather than waiting for itself.
SLUB_TLS bool t_parsing = false;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Equal ignoring the case of ASCII letters, the first `n` bytes of b against all of a.
bool ieq(const char* a, const char* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (a[i] == '\0' || lower(a[i]) != lower(b[i])) return false;
  return a[n] == '\0';
}

bool parse_bool(const char* s, long* out) {
  static constexpr const char* kOn[] = {"1", "on", "yes", "true"};
  static constexpr const char* kOff[] = {"0", "off", "no", "false"};
  for (const char* w : kOn)
    if (ieq(s, w, strlen(w))) return *out = 1, true;
  for (const char* w : kOff)
    if (ieq(s, w, strlen(w))) return *out = 0, true;
  return false;
}

bool is_digit(char c, int base) {
  return (c >= '0' && c <= '9') || (base == 16 && lower(c) >= 'a' && lower(c) <= 'f');
}

// Decimal, or hex after 0x, with an optional sign and nothing around it (strtol alone would
// skip leading blanks and take "0x" as 0).
bool parse_integer(const Option& o, const char* s, long* out) {
  const char* p = s + (*s == '-' || *s == '+');
  int base = 10;
  if (p[0] == '0' && lower(p[1]) == 'x') {
    base = 16;
    p += 2;
  }
  if (!is_digit(*p, base)) return false;
  const int saved = errno;
  errno = 0;
  char* end = nullptr;
  const long v = strtol(s, &end, base);
  const bool ok = errno == 0 && *end == '\0' && v >= o.min && v <= o.max;
  errno = saved;
  if (ok) *out = v;
  return ok;
}

// The enum's choice number `i` as [*start, *start + *len).
bool nth_choice(const Option& o, long i, const char** start, size_t* len) {
  const char* p = o.choices;
  for (long k = 0; k < i; ++k) {
    p = strchr(p, '|');
    if (p == nullptr) return false;
    ++p;
  }
  const char* bar = strchr(p, '|');
  *start = p;
  *len = bar != nullptr ? static_cast<size_t>(bar - p) : strlen(p);
  return true;
}

bool parse_enum(const Option& o, const char* s, long* out) {
  const char* c;
  size_t n;
  for (long i = 0; nth_choice(o, i, &c, &n); ++i)
    if (ieq(s, c, n)) return *out = i, true;
  return false;
}

// The default as the table and the messages show it.
void describe_default(const Option& o, char* buf, size_t len) {
  const char* c;
  size_t n;
  switch (o.type) {
    case kBool:
    case kInteger:
      snprintf(buf, len, "%ld", o.dflt);
      break;
    case kEnum:
      if (nth_choice(o, o.dflt, &c, &n)) snprintf(buf, len, "%.*s", static_cast<int>(n), c);
      break;
    case kString:
      snprintf(buf, len, "%s", o.unset);
      break;
  }
}

// At most this much of a value goes into a message (a whole SLUB_DEBUG may be 1 KiB).
constexpr int kShownValue = 80;

void print_rejection(const Option& o, const char* value, const char* why) {
  char dflt[64];
  describe_default(o, dflt, sizeof dflt);
  const bool cut = strlen(value) > static_cast<size_t>(kShownValue);
  if (o.type == kString)
    os::print("slub: %s=%.*s%s ignored: %s (as if unset: %s)\n", o.name, kShownValue, value,
              cut ? "..." : "", why, dflt);
  else
    os::print("slub: %s=%.*s%s ignored: expected %s (default %s kept)\n", o.name, kShownValue,
              value, cut ? "..." : "", why, dflt);
}

void parse_one(const Option& o, detail::Value* v, char** pool) {
  const char* s = os::env_str(o.name);
  if (o.type == kString) {
    if (s == nullptr) return;
    const size_t n = strlen(s);
    if (n > static_cast<size_t>(o.max)) {
      char why[64];
      snprintf(why, sizeof why, "longer than %ld bytes", o.max);
      print_rejection(o, s, why);
      return;
    }
    memcpy(*pool, s, n + 1);
    v->str = *pool;
    v->set = true;
    *pool += o.max + 1;
    return;
  }
  if (s == nullptr || *s == '\0') return;
  long x;
  if (!parse_value(o.id, s, &x)) {
    char accepted[96];
    describe_accepted(o.id, accepted, sizeof accepted);
    print_rejection(o, s, accepted);
    return;
  }
  v->number = x;
  v->set = true;
}

constexpr detail::Values defaults() {
  detail::Values d{};
  for (const Option& o : kTable) d.v[o.id] = {o.type == kString ? 0 : o.dflt, nullptr, false};
  return d;
}

// ---- the printed table ------------------------------------------------------------------

const char* type_name(Type t) {
  switch (t) {
    case kBool:
      return "bool";
    case kInteger:
      return "integer";
    case kEnum:
      return "enum";
    case kString:
      return "string";
  }
  return "?";
}

// An enum's names, ", " between them and `last_sep` before the last one.
void list_choices(const Option& o, char* buf, size_t len, const char* last_sep) {
  size_t at = 0;
  const char* c;
  size_t n;
  long count = 0;
  while (nth_choice(o, count, &c, &n)) ++count;
  buf[0] = '\0';
  for (long i = 0; i < count && at < len; ++i) {
    nth_choice(o, i, &c, &n);
    const char* sep = i == 0 ? "" : i == count - 1 ? last_sep : ", ";
    at += static_cast<size_t>(snprintf(buf + at, len - at, "%s%.*s", sep, static_cast<int>(n), c));
  }
}

// The "accepted" column: shorter than the messages' wording.
void describe_column(const Option& o, char* buf, size_t len) {
  switch (o.type) {
    case kBool:
      snprintf(buf, len, "1/0 on/off yes/no true/false");
      break;
    case kInteger:
      snprintf(buf, len, "%ld..%ld", o.min, o.max);
      break;
    case kEnum:
      list_choices(o, buf, len, ", ");
      break;
    case kString:
      snprintf(buf, len, "%s", o.choices);
      break;
  }
}

// The "accepted" column in Markdown: code spans, each enum name in its own.
void markdown_accepted(const Option& o, char* buf, size_t len) {
  if (o.type != kEnum) {
    char plain[96];
    describe_column(o, plain, sizeof plain);
    snprintf(buf, len, "`%s`", plain);
    return;
  }
  size_t at = 0;
  const char* c;
  size_t n;
  for (long i = 0; nth_choice(o, i, &c, &n) && at < len; ++i)
    at += static_cast<size_t>(
        snprintf(buf + at, len - at, "%s`%.*s`", i > 0 ? ", " : "", static_cast<int>(n), c));
}

struct Row {
  char type[16], dflt[64], accepted[96];
};

void fill_row(const Option& o, Row* r) {
  snprintf(r->type, sizeof r->type, "%s", type_name(o.type));
  if (o.type == kString)  // the default is what unset means, in words
    snprintf(r->dflt, sizeof r->dflt, "unset (%s)", o.unset);
  else
    describe_default(o, r->dflt, sizeof r->dflt);
  describe_column(o, r->accepted, sizeof r->accepted);
}

bool emit(int fd, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
bool emit(int fd, const char* fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  const int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || static_cast<size_t>(n) >= sizeof line) return false;
  return os::write_all(fd, line, static_cast<size_t>(n));
}

// Roff text: a backslash as \e, every '-' as \- (an ASCII minus, as users type it: kmalloc-64,
// -1), and \& before a '.' or '\'' that would start a line (a request). False if it does not fit.
bool roff_escape(const char* s, char* buf, size_t len) {
  size_t at = 0;
  for (const char* p = s; *p != '\0'; ++p) {
    char esc[4] = {*p, 0, 0, 0};
    if (*p == '\\')
      esc[0] = '\\', esc[1] = 'e';
    else if (*p == '-')
      esc[0] = '\\', esc[1] = '-';
    else if (p == s && (*p == '.' || *p == '\''))
      esc[0] = '\\', esc[1] = '&', esc[2] = *p;
    const size_t n = strlen(esc);
    if (at + n >= len) return false;
    memcpy(buf + at, esc, n);
    at += n;
  }
  buf[at] = '\0';
  return true;
}

// One paragraph per option: the name in bold with its type, default and accepted values as the
// tag, the help line as the body.
bool print_roff(int fd, const Row* rows) {
  bool ok = true;
  for (const Option& o : kTable) {
    const Row& r = rows[o.id];
    char dflt[2 * sizeof r.dflt], accepted[2 * sizeof r.accepted], help[512];
    if (!roff_escape(r.dflt, dflt, sizeof dflt) ||
        !roff_escape(r.accepted, accepted, sizeof accepted) ||
        !roff_escape(o.help, help, sizeof help))
      return false;
    ok &= emit(fd, ".TP\n.B %s\n(%s; default: %s; accepted: %s)\n.br\n%s\n", o.name, r.type, dflt,
               accepted, help);
  }
  return ok;
}

}  // namespace

namespace detail {
// The defaults until parsed: what a reader that must not wait (t_parsing) sees.
constinit Values g_values = defaults();
constinit std::atomic<int> g_state{0};

void parse_all() {
  int expect = 0;
  if (g_state.compare_exchange_strong(expect, 1, std::memory_order_acquire)) {
    t_parsing = true;
    char* pool = g_pool;
    for (const Option& o : kTable) parse_one(o, &g_values.v[o.id], &pool);
    t_parsing = false;
    g_state.store(2, std::memory_order_release);
    return;
  }
  if (t_parsing) return;  // a signal handler of the parsing thread: the defaults meanwhile
  while (g_state.load(std::memory_order_acquire) != 2) cpu_relax();
}
}  // namespace detail

const Option& option(Id id) {
  return kTable[id];
}

bool parse_value(Id id, const char* text, long* out) {
  const Option& o = kTable[id];
  switch (o.type) {
    case kBool:
      return parse_bool(text, out);
    case kInteger:
      return parse_integer(o, text, out);
    case kEnum:
      return parse_enum(o, text, out);
    case kString: {
      const size_t n = strlen(text);
      if (n > static_cast<size_t>(o.max)) return false;
      *out = static_cast<long>(n);
      return true;
    }
  }
  return false;
}

void describe_accepted(Id id, char* buf, size_t len) {
  const Option& o = kTable[id];
  switch (o.type) {
    case kBool:
      snprintf(buf, len, "1/0, on/off, yes/no or true/false");
      break;
    case kInteger:
      snprintf(buf, len, "an integer %ld..%ld", o.min, o.max);
      break;
    case kEnum:
      list_choices(o, buf, len, " or ");
      break;
    case kString:
      snprintf(buf, len, "%s", o.choices);
      break;
  }
}

void reject(Id id, const char* value, const char* why) {
  print_rejection(kTable[id], value, why);
}

int print_table(int fd, TableFormat format) {
  Row rows[kNrOptions];
  for (const Option& o : kTable) fill_row(o, &rows[o.id]);
  bool ok = true;
  if (format == TableFormat::kRoff) return print_roff(fd, rows) ? 0 : -1;
  if (format == TableFormat::kMarkdown) {
    ok &= emit(fd, "| variable | type | default | accepted | meaning |\n");
    ok &= emit(fd, "|---|---|---|---|---|\n");
    for (const Option& o : kTable) {
      const Row& r = rows[o.id];
      char accepted[128];
      markdown_accepted(o, accepted, sizeof accepted);
      const char* tick = o.type == kString ? "" : "`";
      ok &= emit(fd, "| `%s` | %s | %s%s%s | %s | %s |\n", o.name, r.type, tick, r.dflt, tick,
                 accepted, o.help);
    }
    return ok ? 0 : -1;
  }
  int wn = 8, wt = 4, wd = 7, wa = 8;  // at least the headings
  for (const Option& o : kTable) {
    const Row& r = rows[o.id];
    wn = static_cast<int>(strlen(o.name)) > wn ? static_cast<int>(strlen(o.name)) : wn;
    wt = static_cast<int>(strlen(r.type)) > wt ? static_cast<int>(strlen(r.type)) : wt;
    wd = static_cast<int>(strlen(r.dflt)) > wd ? static_cast<int>(strlen(r.dflt)) : wd;
    wa = static_cast<int>(strlen(r.accepted)) > wa ? static_cast<int>(strlen(r.accepted)) : wa;
  }
  ok &= emit(fd, "%-*s  %-*s  %-*s  %-*s  %s\n", wn, "variable", wt, "type", wd, "default", wa,
             "accepted", "meaning");
  for (const Option& o : kTable) {
    const Row& r = rows[o.id];
    ok &= emit(fd, "%-*s  %-*s  %-*s  %-*s  %s\n", wn, o.name, wt, r.type, wd, r.dflt, wa,
               r.accepted, o.help);
  }
  return ok ? 0 : -1;
}

}  // namespace slub::options
