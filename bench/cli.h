// SPDX-License-Identifier: MIT
// bench/cli.h: the command line of the bench programs (harness, soak, bench_numa, bench_merge),
// one parser for all of them: glibc's getopt_long, with every mistake reported as one line on
// stderr that names the program, the option and the value, and exit status 2:
//
//   harness: --cpus -1: expected an integer 16..4096
//   bench_numa: unknown option '--round' (bench_numa --help lists the options)
//   soak: --threads needs a value
//
// -h and --help print the program's usage on stdout and exit 0. Numbers are checked whole:
// integers are decimal or hex after 0x (no blanks, no trailing characters, no sign for the
// unsigned ones), within the option's range and without overflow; real numbers must be finite
// and within their range. Used by the programs' main(), never by the allocator.
#pragma once

#include <getopt.h>

#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace bench_cli {

struct Cli {
  const char* prog;   // the prefix of every error line: "harness"
  const char* usage;  // what --help prints (ends with a newline)
};

constexpr int kUsageStatus = 2;

// "PROG: MESSAGE" on one line of stderr, then exit status 2.
[[noreturn]] __attribute__((format(printf, 2, 3))) inline void fail(const Cli& cli, const char* fmt,
                                                                    ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: %s\n", cli.prog, msg);
  exit(kUsageStatus);
}

namespace detail {

// The digits of `s` (after an optional '-' when `is_signed`): decimal, or hex after 0x. False
// when anything else is there (strtol alone skips blanks, takes "12abc" as 12 and "0x" as 0).
inline bool well_formed(const char* s, bool is_signed, int* base) {
  if (is_signed && *s == '-') ++s;
  *base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    *base = 16;
    s += 2;
  }
  if (*s == '\0') return false;
  for (; *s; ++s)
    if (*base == 16 ? !isxdigit(static_cast<unsigned char>(*s))
                    : !isdigit(static_cast<unsigned char>(*s)))
      return false;
  return true;
}

}  // namespace detail

// A signed integer in [lo, hi] for option `opt` (as given: "--rounds"), or exit.
inline long long int_arg(const Cli& cli, const char* opt, const char* v, long long lo,
                         long long hi) {
  int base = 10;
  if (detail::well_formed(v, true, &base)) {
    const bool neg = *v == '-';
    errno = 0;
    char* end = nullptr;
    // strtoll does not take "-0x10": the magnitude is parsed alone and negated.
    const unsigned long long mag = strtoull(neg ? v + 1 : v, &end, base);
    if (errno == 0 && *end == '\0' && mag <= static_cast<unsigned long long>(INT64_MAX)) {
      const long long x = neg ? -static_cast<long long>(mag) : static_cast<long long>(mag);
      if (x >= lo && x <= hi) return x;
    }
  }
  fail(cli, "%s %s: expected an integer %lld..%lld", opt, v, lo, hi);
}

// An unsigned 64-bit integer in [lo, hi] (seeds, operation counts), or exit.
inline uint64_t u64_arg(const Cli& cli, const char* opt, const char* v, uint64_t lo, uint64_t hi) {
  int base = 10;
  if (detail::well_formed(v, false, &base)) {
    errno = 0;
    char* end = nullptr;
    const unsigned long long x = strtoull(v, &end, base);
    if (errno == 0 && *end == '\0' && x >= lo && x <= hi) return x;
  }
  fail(cli, "%s %s: expected an integer %" PRIu64 "..%" PRIu64, opt, v, lo, hi);
}

// A finite real number in [lo, hi], or exit.
inline double num_arg(const Cli& cli, const char* opt, const char* v, double lo, double hi) {
  if (*v != '\0' && !isspace(static_cast<unsigned char>(*v))) {
    errno = 0;
    char* end = nullptr;
    const double x = strtod(v, &end);
    if (errno == 0 && *end == '\0' && std::isfinite(x) && x >= lo && x <= hi) return x;
  }
  fail(cli, "%s %s: expected a number %.10g..%.10g", opt, v, lo, hi);
}

// One of `choices` (a null-terminated list), or exit naming them all.
inline const char* choice_arg(const Cli& cli, const char* opt, const char* v,
                              const char* const* choices) {
  char list[256] = "";
  for (const char* const* c = choices; *c; ++c) {
    if (!strcmp(v, *c)) return v;
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", c == choices ? "" : "|", *c);
  }
  fail(cli, "%s %s: expected one of %s", opt, v, list);
}

// getopt_long over `longopts` (terminated by a zero entry) and the short options `shorts`
// ("h", or "+h" to stop at the first operand; the ':' that getopt wants is added here). Returns the
// next option's val, or -1 when the options are done (operands from optind on). Handles --help/-h
// (val 'h'), unknown and ambiguous options, a missing value and a value given to an option that
// takes none.
inline int next_option(const Cli& cli, int argc, char** argv, const option* longopts,
                       const char* shorts = "h") {
  char optstring[64];  // a leading '+' (stop at the first operand) must stay first
  const bool posix = shorts[0] == '+';
  snprintf(optstring, sizeof optstring, "%s:%s", posix ? "+" : "", shorts + posix);
  opterr = 0;
  const int c = getopt_long(argc, argv, optstring, longopts, nullptr);
  if (c == 'h') {
    fputs(cli.usage, stdout);
    exit(0);
  }
  if (c != '?' && c != ':') return c;
  const char* arg = argv[optind - 1];
  const option* named = nullptr;  // the option getopt found (missing or unwanted value)
  for (const option* o = longopts; o->name; ++o)
    if (optopt != 0 && o->val == optopt) named = o;
  if (c == ':') {
    if (named != nullptr && !strncmp(arg, "--", 2)) fail(cli, "--%s needs a value", named->name);
    fail(cli, "-%c needs a value", optopt);
  }
  if (optopt != 0 && named != nullptr && !strncmp(arg, "--", 2))
    fail(cli, "--%s takes no value (%s)", named->name, arg);
  if (!strncmp(arg, "--", 2)) {
    const size_t n = strcspn(arg + 2, "=");
    int matches = 0;
    for (const option* o = longopts; o->name; ++o) matches += !strncmp(o->name, arg + 2, n);
    if (matches > 1)
      fail(cli, "ambiguous option '%.*s' (%s --help lists the options)", int(n + 2), arg, cli.prog);
    fail(cli, "unknown option '%.*s' (%s --help lists the options)", int(n + 2), arg, cli.prog);
  }
  fail(cli, "unknown option '-%c' (%s --help lists the options)", optopt ? optopt : '?', cli.prog);
}

// "--NAME" of the long option whose val is `val`, for the messages.
inline std::string option_name(const option* longopts, int val) {
  for (const option* o = longopts; o->name; ++o)
    if (o->val == val) return std::string("--") + o->name;
  return std::string("-") + char(val);
}

// After the options: no operand may follow (for programs that take none).
inline void no_operands(const Cli& cli, int argc, char** argv) {
  if (optind < argc) fail(cli, "unexpected argument '%s'", argv[optind]);
}

}  // namespace bench_cli
