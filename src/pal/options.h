// SPDX-License-Identifier: MIT
// pal/options: the allocator's environment variables, in one table (options.cc) that names
// each option once with its type, default, accepted values and a line of help. The table is
// parsed the first time any option is asked for, from any layer and before the allocator is
// initialised (os::strict() may be the first to ask, from a report); parsing uses getenv and
// fixed buffers only, never malloc, because the allocator asks from inside its own allocation
// paths. A bad value gets one line on stderr naming the variable, the value and what is
// accepted, and the default is kept. `tools/slub options`, the table of docs/OPTIONS.md and
// the options of the slub(7) man page are printed from it (print_table), so the documentation
// cannot drift from the code.
//
// Booleans take 1/0, on/off, yes/no, true/false (any case); integers are decimal (or 0x hex)
// within [min, max], a value outside is rejected, not clamped; enums take one of their names
// (any case). An empty value counts as unset for these three. String options (SLUB_DEBUG,
// SLUB_DEBUG_LOG, SLUB_TOPOLOGY) are only copied here: their owners parse them and report a
// bad one through reject(), in the same format.
#pragma once

#include <atomic>
#include <cstddef>

#include "base/base.h"

namespace slub::options {

// In the table's order (alphabetical by name).
enum Id : unsigned {
  kOptAllocator,       // SLUB_ALLOCATOR
  kOptDebug,           // SLUB_DEBUG
  kOptDebugAbort,      // SLUB_DEBUG_ABORT
  kOptDebugLog,        // SLUB_DEBUG_LOG
  kOptDirtyMaxKb,      // SLUB_DIRTY_MAX_KB
  kOptExport,          // SLUB_EXPORT
  kOptFlusher,         // SLUB_FLUSHER
  kOptFlushMs,         // SLUB_FLUSH_MS
  kOptFreelistRandom,  // SLUB_FREELIST_RANDOM
  kOptHwloc,           // SLUB_HWLOC
  kOptKfence,          // SLUB_KFENCE
  kOptKfenceAbort,     // SLUB_KFENCE_ABORT
  kOptKfenceObjects,   // SLUB_KFENCE_NUM_OBJECTS
  kOptKfenceSample,    // SLUB_KFENCE_SAMPLE
  kOptMinObjects,      // SLUB_MIN_OBJECTS
  kOptNomerge,         // SLUB_NOMERGE
  kOptReport,          // SLUB_REPORT
  kOptRseq,            // SLUB_RSEQ
  kOptRseqEmulate,     // SLUB_RSEQ_EMULATE
  kOptSheaves,         // SLUB_SHEAVES
  kOptStrict,          // SLUB_STRICT
  kOptTopology,        // SLUB_TOPOLOGY
  kNrOptions
};

// SLUB_ALLOCATOR's values (number(kOptAllocator)).
enum Allocator : long { kAllocSlub = 0, kAllocSlab = 1 };

enum class Type : unsigned char { kBool, kInteger, kEnum, kString };

struct Option {
  Id id;             // its index in the table (checked at compile time)
  const char* name;  // the environment variable
  Type type;
  long dflt;            // bool 0/1, integer, enum: index into choices; string: unused
  long min, max;        // integer: the accepted range; string: max is the longest value
  const char* choices;  // enum: the names, '|' between them; string: the syntax, for people
  const char* unset;    // string: what unset means ("stderr"); others: nullptr
  const char* help;     // one line
};

// The whole table, kNrOptions entries.
const Option& option(Id id);

namespace detail {
struct Value {
  long number;      // bool, integer, enum: the value in force (the default until parsed)
  const char* str;  // string: a copy of the value, or nullptr when unset
  bool set;         // a valid value was given (string: any value, the empty one too)
};
struct Values {
  Value v[kNrOptions];
};
extern Values g_values;
extern std::atomic<int> g_state;  // 0: not parsed, 1: being parsed, 2: parsed
void parse_all();
inline const Value& value(Id id) {
  if (SLUB_UNLIKELY(g_state.load(std::memory_order_acquire) != 2)) parse_all();
  return g_values.v[id];
}
}  // namespace detail

// The accessors: after the first call, one load and a test each.
inline bool flag(Id id) {
  return detail::value(id).number != 0;
}
inline long number(Id id) {
  return detail::value(id).number;
}
// A string option's value, nullptr when unset (an empty value is "").
inline const char* str(Id id) {
  return detail::value(id).str;
}
// True when the environment gave the option a value that was accepted.
inline bool is_set(Id id) {
  return detail::value(id).set;
}

// Parses `text` as option `id` would be: true with *out set, false if it is not accepted.
// String options: true when it fits (*out is its length). Pure: for the unit tests.
bool parse_value(Id id, const char* text, long* out);
// What option `id` accepts, as the rejection message and the table say it ("an integer
// 10..3600000", "1/0, on/off, yes/no or true/false", "slub or slab").
void describe_accepted(Id id, char* buf, size_t len);
// For the owners of string options: the one line for a value they cannot use, in the table's
// format ("slub: SLUB_TOPOLOGY=x ignored: <why> (as if unset: the real machine)").
void reject(Id id, const char* value, const char* why);

// The formats of print_table (the numbers of slub_options_print's SLUB_OPTIONS_*).
enum class TableFormat : int { kText = 0, kMarkdown = 1, kRoff = 2 };

// Writes the table to `fd`: aligned columns, the Markdown table of docs/OPTIONS.md, or man(7)
// paragraphs (.TP, one per option) for slub(7). Returns 0, or -1 if a write failed.
int print_table(int fd, TableFormat format);

}  // namespace slub::options
