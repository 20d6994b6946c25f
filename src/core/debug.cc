// SPDX-License-Identifier: MIT
// core/debug.cc: slub_debug for user space. See debug.h for the flags and the locking rule.
#include "core/debug.h"

#include <unwind.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "pal/options.h"
#include "pal/os.h"
#include "pal/process.h"

namespace slub {

namespace {

// ---- configuration ----------------------------------------------------------------------------
constinit char g_spec[1024] = {};  // the options table takes at most 1023 bytes
constinit bool g_spec_set = false;
constinit int g_spec_pid = 0;  // the process that read it: only it checks the names at exit
// Bit k: the k-th cache name in SLUB_DEBUG's lists (later ones are not tracked) matched the
// name of a cache created in this run.
constexpr unsigned kTrackedNames = 64;
constinit std::atomic<uint64_t> g_names_matched{0};
constinit bool g_abort = false;
constinit SpinLock<LockClass::kReport> g_report_lock;

constexpr unsigned long kDefaultDebug =
    SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;

// Glob match with '*' and '?' (no allocation, unlike some fnmatch paths).
bool glob_match(const char* pat, size_t plen, const char* s) {
  size_t p = 0;
  const char* star_p = nullptr;
  size_t star_pi = 0;
  while (*s != '\0') {
    if (p < plen && (pat[p] == '?' || pat[p] == *s)) {
      ++p;
      ++s;
    } else if (p < plen && pat[p] == '*') {
      star_pi = ++p;
      star_p = s;
    } else if (star_p != nullptr) {
      p = star_pi;
      s = ++star_p;
    } else {
      return false;
    }
  }
  while (p < plen && pat[p] == '*') ++p;
  return p == plen;
}

// The unknown letters of a spec, each once, for the one line that names them.
struct Unknown {
  char letters[16];
  unsigned n;
};

void note_unknown(Unknown* u, char c) {
  if (u == nullptr) return;
  for (unsigned i = 0; i < u->n; ++i)
    if (u->letters[i] == c) return;
  if (u->n < sizeof u->letters) u->letters[u->n++] = c;
}

// Flags of a letters part; unknown letters are skipped (and noted in *unknown), as the kernel
// does: "1" turns nothing on.
unsigned long parse_letters(const char* p, const char* end, Unknown* unknown) {
  unsigned long f = 0;
  for (; p < end; ++p) {
    switch (*p | 0x20) {
      case 'f':
        f |= SLAB_CONSISTENCY_CHECKS;
        break;
      case 'z':
        f |= SLAB_RED_ZONE;
        break;
      case 'p':
        f |= SLAB_POISON;
        break;
      case 'u':
        f |= SLAB_STORE_USER;
        break;
      case 't':
        f |= SLAB_TRACE;
        break;
      case '-' | 0x20:
        f = 0;
        break;  // '-' is 0x2d either way
      default:
        note_unknown(unknown, *p);
    }
  }
  return f;
}

// Walks the kernel's syntax: blocks "letters[,cache[,cache...]]" separated by ';'. Returns
// true with *out set if `name` is selected by a block with a list (the first such wins) or a
// block without list set the global default (the last such wins).
bool lookup(const char* spec, const char* name, unsigned long* out, Unknown* unknown) {
  if (*spec == '\0') {  // a bare slub_debug: full debugging everywhere
    *out = kDefaultDebug;
    return true;
  }
  bool have_global = false, selected = false;
  unsigned long global = 0, local = 0;
  for (const char* b = spec; *b != '\0';) {
    const char* bend = strchr(b, ';');
    if (bend == nullptr) bend = b + strlen(b);
    const char* comma = static_cast<const char*>(memchr(b, ',', bend - b));
    const char* lend = comma != nullptr ? comma : bend;
    unsigned long f = parse_letters(b, lend, unknown);
    if (comma == nullptr) {
      global = f;
      have_global = true;
    } else {
      if (lend == b) f = kDefaultDebug;  // ",cache": full debugging for the listed caches
      for (const char* c = comma + 1; c < bend && !selected && name != nullptr;) {
        const char* cend = static_cast<const char*>(memchr(c, ',', bend - c));
        if (cend == nullptr) cend = bend;
        if (cend > c && glob_match(c, cend - c, name)) {
          selected = true;
          local = f;
        }
        c = cend + 1;
      }
    }
    b = *bend == ';' ? bend + 1 : bend;
  }
  if (selected) {
    *out = local;
    return true;
  }
  *out = global;
  return have_global;
}

// Calls fn(k, pattern, length) for the k-th cache name of the spec's lists, for every one.
template <typename Fn>
void for_each_listed_name(const char* spec, Fn fn) {
  unsigned k = 0;
  for (const char* b = spec; *b != '\0';) {
    const char* bend = strchr(b, ';');
    if (bend == nullptr) bend = b + strlen(b);
    const char* comma = static_cast<const char*>(memchr(b, ',', bend - b));
    for (const char* c = comma != nullptr ? comma + 1 : bend; c < bend;) {
      const char* cend = static_cast<const char*>(memchr(c, ',', bend - c));
      if (cend == nullptr) cend = bend;
      if (cend > c) fn(k++, c, static_cast<size_t>(cend - c));
      c = cend + 1;
    }
    b = *bend == ';' ? bend + 1 : bend;
  }
}

// A cache named `name` is being created: every listed name it matches has matched something.
void note_listed_names(const char* name) {
  uint64_t hit = 0;
  for_each_listed_name(g_spec, [&](unsigned k, const char* pat, size_t len) {
    if (k < kTrackedNames && glob_match(pat, len, name)) hit |= uint64_t{1} << k;
  });
  if ((g_names_matched.load(std::memory_order_relaxed) & hit) != hit)
    g_names_matched.fetch_or(hit, std::memory_order_relaxed);
}

// At exit, one line for the listed names that matched no cache of the run: a misspelt name
// (kmalloc-6), or a cache the program never made, whose flags silently applied to nothing.
void report_unmatched_names() {
  if (!g_spec_set || g_spec_pid != os::pid()) return;  // not started, or a fork child
  const uint64_t matched = g_names_matched.load(std::memory_order_relaxed);
  char names[256];
  size_t at = 0;
  unsigned missed = 0;
  for_each_listed_name(g_spec, [&](unsigned k, const char* pat, size_t len) {
    if (k >= kTrackedNames || (matched & (uint64_t{1} << k)) != 0) return;
    if (at < sizeof names) {
      const int n = snprintf(names + at, sizeof names - at, "%s%.*s", missed > 0 ? ", " : "",
                             static_cast<int>(len), pat);
      at += n > 0 ? static_cast<size_t>(n) : 0;
    }
    ++missed;
  });
  if (missed == 0) return;
  os::print("slub: SLUB_DEBUG=%.80s%s: no cache matched the name%s %s in this run\n", g_spec,
            strlen(g_spec) > 80 ? "..." : "", missed > 1 ? "s" : "", names);
}

__attribute__((destructor)) void debug_at_exit() {
  report_unmatched_names();
}

// ---- stack depot --------------------------------------------------------------------------
constexpr int kDepotFrames = 6;
constexpr size_t kDepotSlots = 8192;

struct DepotEntry {
  uint32_t hash;
  uint32_t n;
  const void* frames[kDepotFrames];
};

constinit DepotEntry* g_depot = nullptr;
constinit SpinLock<LockClass::kDepot> g_depot_lock;
SLUB_TLS bool t_unwinding = false;
SLUB_TLS int t_tid = 0;

bool in_allocator(const void* ip);

struct UnwindState {
  const void** ips;
  int n;
  int max;
  int user_max;  // stop after this many frames outside the allocator (unwinding is costly)
  int user;
};

_Unwind_Reason_Code unwind_cb(struct _Unwind_Context* ctx, void* arg) {
  auto* st = static_cast<UnwindState*>(arg);
  if (st->n >= st->max || st->user >= st->user_max) return _URC_END_OF_STACK;
  const void* ip = reinterpret_cast<const void*>(_Unwind_GetIP(ctx));
  st->ips[st->n++] = ip;
  if (st->user > 0 || !in_allocator(ip)) st->user++;
  return _URC_NO_REASON;
}

// Current return addresses, innermost first, up to `user_frames` past the allocator's own;
// 0 if already unwinding on this thread.
int backtrace_now(const void** ips, int max, int user_frames) {
  if (t_unwinding) return 0;
  t_unwinding = true;
  UnwindState st{ips, 0, max, user_frames, 0};
  _Unwind_Backtrace(unwind_cb, &st);
  t_unwinding = false;
  return st.n;
}

// Is `ip` inside the allocator? When slub is a shared object (LD_PRELOAD), that is its
// executable segment, found once with dl_iterate_phdr. When it is linked into the program,
// the symbol name decides (slower: dladdr, else the program's symbol table; an address with no
// name counts as the allocator's), remembered in a small cache of answers.
struct TextRange {
  uintptr_t lo = 0, hi = 0;
  bool shared = false;  // slub is its own module
  bool ready = false;
};
constinit TextRange g_text;

bool named_like_allocator(const char* n) {
  // _ZN4slub: functions of namespace slub; _ZNK4slub: their const members; _ZZN4slub: lambdas
  // inside them (names a static link reads from the program's symbol table).
  static const char* const kPrefixes[] = {"_ZN4slub",    "_ZNK4slub", "_ZZN4slub", "slub_",
                                          "kmem_cache_", "_Znw",      "_Zna",      "_Zdl",
                                          "_Zda",        "__libc_"};
  static const char* const kNames[] = {
      "malloc",        "free",     "calloc", "realloc", "reallocarray", "posix_memalign",
      "aligned_alloc", "memalign", "valloc", "pvalloc", "free_sized",   "free_aligned_sized"};
  for (const char* p : kPrefixes)
    if (strncmp(n, p, strlen(p)) == 0) return true;
  for (const char* k : kNames)
    if (strcmp(n, k) == 0) return true;
  return false;
}

struct IpAnswer {
  uintptr_t ip;
  bool inside;
};
constinit IpAnswer g_ip_cache[256] = {};

bool in_allocator(const void* ip) {
  const auto a = reinterpret_cast<uintptr_t>(ip);
  if (!g_text.ready) {
    os::text_segment_of(reinterpret_cast<const void*>(&in_allocator), &g_text.lo, &g_text.hi,
                        &g_text.shared);
    g_text.ready = true;
  }
  if (a < g_text.lo || a >= g_text.hi) return false;
  if (g_text.shared) return true;
  IpAnswer& slot = g_ip_cache[(a >> 4) & 255];
  if (slot.ip == a) return slot.inside;
  os::SymbolInfo info;
  const bool inside =
      !os::symbol_of(ip, &info) || info.name == nullptr || named_like_allocator(info.name);
  slot = {a, inside};
  return inside;
}

// ---- output -------------------------------------------------------------------------------
void vdebug_print(const char* fmt, va_list ap) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n <= 0) return;
  os::write_report(buf,
                   static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
}

void slab_bug(const KmemCache* s, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
constinit std::atomic<long> g_errors{0};

void slab_bug(const KmemCache* s, const char* fmt, ...) {
  g_errors.fetch_add(1, std::memory_order_relaxed);
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  debug_print(
      "=============================================================================\n"
      "BUG %s: %s\n"
      "-----------------------------------------------------------------------------\n\n",
      s->name, what);
}

void slab_fix(const KmemCache* s, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void slab_fix(const KmemCache* s, const char* fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  debug_print("FIX %s: %s\n", s->name, what);
  if (g_abort) {
    debug_print("slub: SLUB_DEBUG_ABORT is set: aborting\n");
    os::abort_process();
  }
}

void print_section(const char* level, const void* addr, size_t len) {
  const auto* p = static_cast<const uint8_t*>(addr);
  for (size_t off = 0; off < len; off += 16) {
    char hex[16 * 3 + 1] = {};
    char ascii[17] = {};
    size_t n = len - off < 16 ? len - off : 16;
    for (size_t i = 0; i < n; ++i) {
      snprintf(hex + i * 3, 4, "%02x ", p[off + i]);
      ascii[i] = (p[off + i] >= 0x20 && p[off + i] < 0x7f) ? static_cast<char>(p[off + i]) : '.';
    }
    debug_print("%s%p: %-48s %s\n", level, static_cast<const void*>(p + off), hex, ascii);
  }
}

void print_call_trace() {
  const void* ips[32];
  int n = backtrace_now(ips, 32, 12);
  int i = 0;
  while (i < n && in_allocator(ips[i])) ++i;
  if (i == n) i = 0;  // could not tell: show everything
  debug_print("Call trace:\n");
  for (int shown = 0; i < n && ips[i] != nullptr && shown < 12; ++i, ++shown) {
    char sym[256];
    symbolize(ips[i], sym, sizeof sym);
    debug_print(" %s\n", sym);
  }
  print_names_hint();
}

// ---- object layout helpers ----------------------------------------------------------------
size_t size_from_object(const KmemCache* s) {
  return s->size - s->red_left_pad;
}
size_t info_end(const KmemCache* s) {
  return s->inuse + (s->freeptr_outside() ? sizeof(void*) : 0);
}
size_t meta_end(const KmemCache* s) {
  if (s->orig_off != 0) return s->orig_off + sizeof(uint64_t);
  if (s->track_off != 0) return s->track_off + 2 * kTrackSize;
  return info_end(s);
}
char* slab_base(const PageDesc* slab) {
  return desc_address(slab);
}
size_t slab_bytes(const PageDesc* slab) {
  return kPageSize << slab->order;
}

bool check_valid_pointer(const KmemCache* s, const PageDesc* slab, const void* p) {
  if (p == nullptr) return true;
  const char* base = slab_base(slab);
  if (static_cast<const char*>(p) < base || static_cast<const char*>(p) >= base + slab_bytes(slab))
    return false;
  return is_object_start(s, slab, p);
}

void print_track(const char* what, const Track* t, uint64_t now) {
  if (t->addr == nullptr) return;
  char sym[256];
  symbolize(t->addr, sym, sizeof sym);
  debug_print("%s in %s age=%llu ms cpu=%d tid=%d\n", what, sym,
              static_cast<unsigned long long>((now - t->when_ns) / 1000000), t->cpu, t->tid);
  if (t->handle != 0) print_stack(t->handle);
}

void print_tracking(const KmemCache* s, void* object) {
  if (s->track_off == 0) return;
  const uint64_t now = os::now_ns();
  print_track("Allocated", get_track(s, object, kTrackAlloc), now);
  print_track("Freed", get_track(s, object, kTrackFree), now);
}

void print_slab_info(const KmemCache*, const PageDesc* slab) {
  debug_print("Slab %p objects=%u used=%u fp=%p order=%u\n",
              static_cast<const void*>(slab_base(slab)), slab->ctrs().objects(),
              slab->ctrs().inuse(), slab->freelist, slab->order);
}

void print_trailer(const KmemCache* s, const PageDesc* slab, char* p) {
  char* base = slab_base(slab);
  print_tracking(s, p);
  print_slab_info(s, slab);
  debug_print("Object %p @offset=%zu fp=%p\n\n", static_cast<void*>(p),
              static_cast<size_t>(p - base), get_freepointer(s, p));
  if (s->flags & SLAB_RED_ZONE)
    print_section("Redzone  ", p - s->red_left_pad, s->red_left_pad);
  else if (p > base + 16)
    print_section("Bytes b4 ", p - 16, 16);
  print_section("Object   ", p, s->object_size < kPageSize ? s->object_size : kPageSize);
  if (s->flags & SLAB_RED_ZONE)
    print_section("Redzone  ", p + s->object_size, s->inuse - s->object_size);
  const size_t off = meta_end(s);
  if (off != size_from_object(s)) print_section("Padding  ", p + off, size_from_object(s) - off);
  print_call_trace();
}

void object_err(const KmemCache* s, const PageDesc* slab, char* object, const char* reason) {
  slab_bug(s, "%s", reason);
  print_trailer(s, slab, object);
}

// Checks that [start, start+bytes) holds `value`; reports and restores it if not.
bool check_bytes_and_report(const KmemCache* s, const PageDesc* slab, char* object,
                            const char* what, char* start, uint8_t value, size_t bytes) {
  auto* b = reinterpret_cast<uint8_t*>(start);
  size_t i = 0;
  while (i < bytes && b[i] == value) ++i;
  if (i == bytes) return true;
  size_t last = bytes;
  while (last > i && b[last - 1] == value) --last;
  report_lock();
  slab_bug(s, "%s overwritten", what);
  debug_print("%p-%p @offset=%zu. First byte 0x%x instead of 0x%x\n", static_cast<void*>(b + i),
              static_cast<void*>(b + last - 1),
              static_cast<size_t>(reinterpret_cast<char*>(b + i) - slab_base(slab)), b[i], value);
  print_trailer(s, slab, object);
  memset(b + i, value, last - i);
  slab_fix(s, "Restoring %s %p-%p=0x%x", what, static_cast<void*>(b + i),
           static_cast<void*>(b + last - 1), value);
  report_unlock();
  return false;
}

void init_object(const KmemCache* s, char* p, uint8_t val) {
  size_t poison_size = s->object_size;
  if (s->flags & SLAB_RED_ZONE) {
    memset(p - s->red_left_pad, val, s->red_left_pad);
    if (s->orig_off != 0 && val == kRedActive) poison_size = get_orig_size(s, p);
  }
  if ((s->flags & kObjectPoison) && poison_size != 0) {  // malloc(0) keeps no bytes
    memset(p, kPoisonFree, poison_size - 1);
    p[poison_size - 1] = static_cast<char>(kPoisonEnd);
  }
  if (s->flags & SLAB_RED_ZONE) memset(p + poison_size, val, s->inuse - poison_size);
}

// Checks red zones, poison, padding and the free pointer of one object. `val` is the red
// zone byte it should have (kRedActive if allocated). Returns the number of problems.
int check_object(const KmemCache* s, const PageDesc* slab, char* p, uint8_t val) {
  int errors = 0;
  char* endobject = p + s->object_size;
  if (s->flags & SLAB_RED_ZONE) {
    if (!check_bytes_and_report(s, slab, p, "Left Redzone", p - s->red_left_pad, val,
                                s->red_left_pad))
      ++errors;
    if (!check_bytes_and_report(s, slab, p, "Right Redzone", endobject, val,
                                s->inuse - s->object_size))
      ++errors;
    if (s->orig_off != 0 && val == kRedActive) {
      const size_t orig = get_orig_size(s, p);
      if (orig < s->object_size && !check_bytes_and_report(s, slab, p, "kmalloc Redzone", p + orig,
                                                           val, s->object_size - orig))
        ++errors;
    }
  } else if ((s->flags & SLAB_POISON) && s->object_size < s->inuse) {
    if (!check_bytes_and_report(s, slab, p, "Alignment padding", endobject, kPoisonInuse,
                                s->inuse - s->object_size))
      ++errors;
  }
  if (s->flags & SLAB_POISON) {
    if (val != kRedActive && (s->flags & kObjectPoison)) {
      if (!check_bytes_and_report(s, slab, p, "Poison", p, kPoisonFree, s->object_size - 1) ||
          !check_bytes_and_report(s, slab, p, "End Poison", p + s->object_size - 1, kPoisonEnd, 1))
        ++errors;
    }
    const size_t off = meta_end(s);
    if (off < size_from_object(s) &&
        !check_bytes_and_report(s, slab, p, "Object padding", p + off, kPoisonInuse,
                                size_from_object(s) - off))
      ++errors;
  }
  if (val != kRedActive && !check_valid_pointer(s, slab, get_freepointer(s, p))) {
    report_lock();
    object_err(s, slab, p, "Freepointer corrupt");
    set_freepointer(s, p, nullptr);  // cut the freelist here: the rest is lost, not followed
    slab_fix(s, "Isolate corrupted freechain");
    report_unlock();
    ++errors;
  }
  return errors;
}

// Both red zones hold the free pattern: the object is (most likely) already free.
bool looks_free(const KmemCache* s, const char* p) {
  auto all = [](const char* b, size_t n, uint8_t v) {
    for (size_t i = 0; i < n; ++i)
      if (static_cast<uint8_t>(b[i]) != v) return false;
    return n != 0;
  };
  return all(p - s->red_left_pad, s->red_left_pad, kRedInactive) &&
         all(p + s->object_size, s->inuse - s->object_size, kRedInactive);
}

bool check_slab(const KmemCache* s, PageDesc* slab) {
  const SlabCounters c = slab->ctrs();
  const unsigned max = static_cast<unsigned>(slab_bytes(slab) / s->size);
  if (slab->cache != s || slab->kind != PageKind::kSlab) {
    report_lock();
    slab_bug(s, "Not a valid slab page");
    slab_fix(s, "Slab %p skipped", static_cast<void*>(slab_base(slab)));
    report_unlock();
    return false;
  }
  if (c.objects() > max || c.inuse() > c.objects()) {
    report_lock();
    slab_bug(s, "Wrong counters: objects %u (max %u), inuse %u", c.objects(), max, c.inuse());
    print_slab_info(s, slab);
    slab->set_counters(SlabCounters::make(c.objects() > max ? max : c.objects(),
                                          c.objects() > max ? max : c.objects(), false));
    slab_fix(s, "Marking all objects used");
    report_unlock();
    return false;
  }
  return true;
}

// Walks the slab freelist: isolates a corrupt chain, checks the count against inuse, and
// tells whether `search` is on it. Errors are added to *errors.
bool on_freelist(const KmemCache* s, PageDesc* slab, const void* search, int* errors,
                 uint64_t* free_map) {
  const SlabCounters c = slab->ctrs();
  unsigned nr = 0;
  char* prev = nullptr;
  void* fp = slab->freelist;
  bool found = false;
  while (fp != nullptr && nr <= c.objects()) {
    if (fp == search) found = true;
    if (!check_valid_pointer(s, slab, fp)) {
      report_lock();
      if (prev != nullptr) {
        object_err(s, slab, prev, "Freechain corrupt");
        set_freepointer(s, prev, nullptr);
      } else {
        slab_bug(s, "Freepointer corrupt");
        print_slab_info(s, slab);
        slab->set_freelist(nullptr);
        slab->set_counters(SlabCounters::make(c.objects(), c.objects(), false));
      }
      slab_fix(s, "Isolate corrupted freechain");
      report_unlock();
      ++*errors;
      break;
    }
    if (free_map != nullptr) {
      const size_t idx = (static_cast<char*>(fp) - slab_base(slab) - s->red_left_pad) / s->size;
      free_map[idx / 64] |= uint64_t{1} << (idx % 64);
    }
    prev = static_cast<char*>(fp);
    fp = get_freepointer(s, fp);
    ++nr;
  }
  const SlabCounters now = slab->ctrs();
  if (now.inuse() != now.objects() - nr && nr <= now.objects()) {
    report_lock();
    slab_bug(s, "Wrong object count. Counter is %u but counted were %u", now.inuse(),
             now.objects() - nr);
    print_slab_info(s, slab);
    slab->set_counters(SlabCounters::make(now.objects() - nr, now.objects(), now.frozen()));
    slab_fix(s, "Object count adjusted");
    report_unlock();
    ++*errors;
  }
  return found;
}

void set_track(const KmemCache* s, void* object, TrackItem item, const void* caller,
               uint32_t handle) {
  Track* t = get_track(s, object, item);
  if (t_tid == 0) t_tid = os::gettid();
  t->addr = caller;
  t->handle = handle;
  t->cpu = CpuId::current();
  t->tid = t_tid;
  t->when_ns = os::now_ns();
}

void trace(const KmemCache* s, const PageDesc* slab, void* object, bool alloc, const void* caller) {
  if (!(s->flags & SLAB_TRACE)) return;
  char sym[256];
  symbolize(caller, sym, sizeof sym, false);  // a line per operation: no line-table search
  report_lock();
  debug_print("TRACE %s %s %p inuse=%u fp=%p caller=%s\n", s->name, alloc ? "alloc" : "free",
              object, slab->ctrs().inuse(), slab->freelist, sym);
  report_unlock();
}

}  // namespace

// ---- public -------------------------------------------------------------------------------

void debug_print(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdebug_print(fmt, ap);
  va_end(ap);
}

// Reentrant for the thread that holds it (a report prints sub-reports while holding it).
namespace {
SLUB_TLS int t_report_depth = 0;
}  // namespace

void debug_fork_lock() {
  g_report_lock.lock();
  g_depot_lock.lock();
}

void debug_fork_unlock() {
  g_depot_lock.unlock();
  g_report_lock.unlock();
}

void report_lock() {
  if (t_report_depth++ == 0) g_report_lock.lock();
}
void report_unlock() {
  if (--t_report_depth == 0) g_report_lock.unlock();
}
int debug_fd() {
  return os::report_fd();
}
long debug_errors() {
  return g_errors.load(std::memory_order_relaxed);
}

void debug_init() {
  if (const char* spec = options::str(options::kOptDebug)) {
    size_t n = strlen(spec);
    if (n >= sizeof g_spec) n = sizeof g_spec - 1;
    memcpy(g_spec, spec, n);
    g_spec[n] = '\0';
    g_spec_set = true;
    g_spec_pid = os::pid();
    unsigned long unused;
    Unknown unknown{};
    lookup(g_spec, nullptr, &unused, &unknown);
    if (unknown.n > 0) {
      char list[sizeof unknown.letters * 4 + 1];
      size_t at = 0;
      for (unsigned i = 0; i < unknown.n; ++i)
        at += static_cast<size_t>(
            snprintf(list + at, sizeof list - at, "%s'%c'", i > 0 ? " " : "", unknown.letters[i]));
      // The kernel's "slub_debug option 'X' unknown. skipped", with what it accepts.
      os::print(
          "slub: SLUB_DEBUG=%.80s%s: unknown flag%s %s skipped (flags: F Z P U T, - for "
          "none; an empty value is FZPU)\n",
          g_spec, n > 80 ? "..." : "", unknown.n > 1 ? "s" : "", list);
    }
  }
  g_abort = options::flag(options::kOptDebugAbort);
  if (const char* log = options::str(options::kOptDebugLog); log != nullptr && *log != '\0') {
    const int fd = os::open_append(log);
    if (fd >= 0) {
      os::set_report_log(fd);  // every report from now on: these and the exit tables
    } else {
      char why[128];
      snprintf(why, sizeof why, "cannot open it: %s", strerrordesc_np(-fd));
      options::reject(options::kOptDebugLog, log, why);
    }
  }
}

unsigned long debug_flags_for(const char* spec, const char* name, unsigned long flags) {
  unsigned long f;
  if (!lookup(spec, name, &f, nullptr)) return flags;
  return flags | f;
}

unsigned long kmem_cache_flags(const char* name, unsigned long flags) {
  if (!g_spec_set) return flags;
  note_listed_names(name);
  return debug_flags_for(g_spec, name, flags);
}

size_t get_orig_size(const KmemCache* s, const void* object) {
  if (s->orig_off == 0) return s->object_size;
  return *reinterpret_cast<const uint64_t*>(static_cast<const char*>(object) + s->orig_off);
}

Track* get_track(const KmemCache* s, void* object, TrackItem item) {
  return reinterpret_cast<Track*>(static_cast<char*>(object) + s->track_off) + item;
}

void setup_slab_debug(KmemCache* s, PageDesc* slab, unsigned objects) {
  char* base = slab_base(slab);
  if (s->flags & SLAB_POISON) memset(base, kPoisonInuse, slab_bytes(slab));
  for (unsigned i = 0; i < objects; ++i) {
    char* p = s->object_at(base, i);
    if (s->track_off != 0) memset(p + s->track_off, 0, 2 * kTrackSize);
    if (s->orig_off != 0) *reinterpret_cast<uint64_t*>(p + s->orig_off) = s->object_size;
    init_object(s, p, kRedInactive);
  }
}

bool alloc_debug_processing(KmemCache* s, PageDesc* slab, void* object, size_t orig_size,
                            const void* caller, uint32_t handle) {
  auto* p = static_cast<char*>(object);
  if (s->flags & (SLAB_CONSISTENCY_CHECKS | SLAB_POISON)) {
    bool ok = true;
    if ((s->flags & SLAB_CONSISTENCY_CHECKS) && !check_slab(s, slab)) ok = false;
    if (ok && !check_valid_pointer(s, slab, p)) {
      report_lock();
      object_err(s, slab, p, "Freelist Pointer check fails");
      report_unlock();
      ok = false;
    }
    if (ok && check_object(s, slab, p, kRedInactive) != 0) ok = false;
    if (!ok) {
      // The slab cannot be trusted: take it out of use rather than hand out more of it.
      report_lock();
      slab_fix(s, "Marking all objects used");
      report_unlock();
      const unsigned objects = slab->ctrs().objects();
      slab->set_freelist(nullptr);
      slab->set_counters(SlabCounters::make(objects, objects, false));
      return false;
    }
  }
  if (s->track_off != 0) set_track(s, p, kTrackAlloc, caller, handle);
  if (s->orig_off != 0) *reinterpret_cast<uint64_t*>(p + s->orig_off) = orig_size;
  trace(s, slab, p, true, caller);
  init_object(s, p, kRedActive);
  return true;
}

bool free_debug_processing(KmemCache* s, PageDesc* slab, void* object, const void* caller,
                           uint32_t handle) {
  auto* p = static_cast<char*>(object);
  bool ok = true;
  if (s->flags & SLAB_CONSISTENCY_CHECKS) {
    int errors = 0;
    if (!check_slab(s, slab)) {
      ok = false;
    } else if (!check_valid_pointer(s, slab, p)) {
      report_lock();
      object_err(s, slab, p, "Invalid object pointer");
      report_unlock();
      ok = false;
    } else if (on_freelist(s, slab, p, &errors, nullptr)) {
      report_lock();
      object_err(s, slab, p, "Object already free");
      report_unlock();
      ok = false;
    }
  }
  if (ok && !(s->flags & SLAB_CONSISTENCY_CHECKS) && (s->flags & SLAB_RED_ZONE) &&
      looks_free(s, p)) {
    // Without F there is no freelist walk, but red zones of a free object say it all.
    report_lock();
    object_err(s, slab, p, "Object already free");
    report_unlock();
    ok = false;
  }
  if (ok && (s->flags & (SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON)) &&
      check_object(s, slab, p, kRedActive) != 0)
    ok = false;
  if (!ok) {
    report_lock();
    slab_fix(s, "Object at %p not freed", object);
    report_unlock();
    return false;
  }
  if (s->track_off != 0) set_track(s, p, kTrackFree, caller, handle);
  trace(s, slab, p, false, caller);
  init_object(s, p, kRedInactive);
  return true;
}

int validate_slab(KmemCache* s, PageDesc* slab) {
  if (!check_slab(s, slab)) return 1;
  int errors = 0;
  uint64_t free_map[kMaxObjsPerSlab / 64 + 1] = {};
  on_freelist(s, slab, nullptr, &errors, free_map);
  const unsigned objects = slab->ctrs().objects();
  char* base = slab_base(slab);
  for (unsigned i = 0; i < objects; ++i) {
    const bool is_free = (free_map[i / 64] >> (i % 64)) & 1;
    errors += check_object(s, slab, s->object_at(base, i), is_free ? kRedInactive : kRedActive);
  }
  // The slab's tail after the last slot keeps the new-slab poison.
  if (s->flags & SLAB_POISON) {
    char* tail = base + size_t{objects} * s->size;
    const size_t left = slab_bytes(slab) - size_t{objects} * s->size;
    if (left != 0 && !check_bytes_and_report(s, slab, s->object_at(base, objects - 1),
                                             "Slab padding", tail, kPoisonInuse, left))
      ++errors;
  }
  return errors;
}

void report_invalid_pointer(KmemCache* s, PageDesc* slab, const void* p) {
  report_lock();
  slab_bug(s, "Invalid object pointer %p", p);
  print_slab_info(s, slab);
  print_call_trace();
  slab_fix(s, "Object at %p not freed", p);
  report_unlock();
}

void report_wrong_cache(KmemCache* s, KmemCache* owner, PageDesc* slab, const void* p) {
  report_lock();
  slab_bug(s, "Wrong slab cache. %s but object is from %s", s->name, owner->name);
  if (is_object_start(owner, slab, p))
    print_trailer(owner, slab, static_cast<char*>(const_cast<void*>(p)));  // ends with the trace
  else {
    print_slab_info(owner, slab);
    print_call_trace();
  }
  slab_fix(s, "Object at %p not freed", p);
  report_unlock();
}

namespace {
// Stores frames[0..n) in the depot (deduplicated); returns its handle, 0 if full.
uint32_t depot_insert(const void* const* frames, int n) {
  int count = n < kDepotFrames ? n : kDepotFrames;
  while (count > 1 && frames[count - 1] == nullptr) --count;
  uint32_t hash = 2166136261u;
  for (int i = 0; i < count; ++i) {
    auto v = reinterpret_cast<uintptr_t>(frames[i]);
    for (int b = 0; b < 8; ++b) hash = (hash ^ ((v >> (8 * b)) & 0xff)) * 16777619u;
  }
  if (hash == 0) hash = 1;
  LockGuard g(g_depot_lock);
  if (g_depot == nullptr) {
    g_depot = static_cast<DepotEntry*>(os::map(kDepotSlots * sizeof(DepotEntry)));
    if (g_depot == nullptr) return 0;
  }
  for (size_t probe = 0; probe < 64; ++probe) {
    const size_t i = (hash + probe) & (kDepotSlots - 1);
    DepotEntry& e = g_depot[i];
    if (e.hash == 0) {
      e.hash = hash;
      e.n = static_cast<uint32_t>(count);
      for (int k = 0; k < count; ++k) e.frames[k] = frames[k];
      return static_cast<uint32_t>(i + 1);
    }
    if (e.hash == hash && e.n == static_cast<uint32_t>(count) &&
        memcmp(e.frames, frames, count * sizeof(void*)) == 0)
      return static_cast<uint32_t>(i + 1);
  }
  return 0;  // depot full around this hash
}
}  // namespace

const void* debug_caller(uint32_t* handle) {
  const void* ips[32];
  const int n = backtrace_now(ips, 32, handle != nullptr ? kDepotFrames : 1);
  int i = 0;
  while (i < n && in_allocator(ips[i])) ++i;
  if (i == n) i = 0;  // could not tell (a static link without symbols): the innermost frame
  if (handle != nullptr) *handle = n > 0 ? depot_insert(ips + i, n - i) : 0;
  return n > 0 ? ips[i] : nullptr;
}

int capture_stack(const void** out, int max, const void* from) {
  const void* ips[64];
  const int n = backtrace_now(ips, 64, max + 4);
  int i = 0;
  if (from != nullptr) {
    while (i < n && ips[i] != from) ++i;
    if (i == n) {  // the unwinder did not pass the signal frame: the instruction alone
      out[0] = from;
      return 1;
    }
  } else {
    while (i < n && in_allocator(ips[i])) ++i;
    if (i == n) i = 0;
  }
  int k = 0;
  for (; i < n && k < max && ips[i] != nullptr; ++i) out[k++] = ips[i];  // 0 ends the stack
  return k;
}

void print_frames(const void* const* frames, int n, bool exact_first) {
  for (int i = 0; i < n; ++i) {
    char sym[256];
    symbolize(frames[i], sym, sizeof sym, true, exact_first && i == 0);
    debug_print(" %s\n", sym);
  }
}

void print_stack(uint32_t handle) {
  if (handle == 0 || g_depot == nullptr || handle > kDepotSlots) return;
  const DepotEntry& e = g_depot[handle - 1];
  print_frames(e.frames, static_cast<int>(e.n));
}

namespace {
constinit std::atomic<bool> g_unnamed_frame{false};  // symbolize could not name a frame
constinit std::atomic<bool> g_hint_printed{false};

// A library of the system's (libc's start-up frame has no name in Debian's stripped libc): its
// frames stay unnamed without a hint, which could only say to install its debug package.
bool system_object(const char* path) {
  for (const char* dir : {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"})
    if (strncmp(path, dir, strlen(dir)) == 0) return true;
  return false;
}
}  // namespace

void print_names_hint() {
  if (!g_unnamed_frame.load(std::memory_order_relaxed) ||
      g_hint_printed.exchange(true, std::memory_order_relaxed))
    return;
  debug_print(
      "slub: frames without names ([object+0xoffset]): build the object with -g and without "
      "stripping it, or pipe this report through `tools/slub decode OBJECT...`\n");
}

void symbolize(const void* addr, char* buf, size_t len, bool lines, bool exact) {
  os::SymbolInfo info;
  // A return address may be just past the call's function: look up the byte before it.
  const void* probe = exact ? addr : static_cast<const char*>(addr) - 1;
  if (!os::symbol_of(probe, &info, lines)) {
    snprintf(buf, len, "0x%lx", reinterpret_cast<unsigned long>(addr));
    return;
  }
  const char* module = info.object != nullptr ? strrchr(info.object, '/') : nullptr;
  module = module != nullptr ? module + 1 : (info.object != nullptr ? info.object : "?");
  if (info.name != nullptr && info.addr != nullptr) {
    int n = snprintf(buf, len, "%s+0x%lx/0x%lx [%s]", info.name,
                     static_cast<unsigned long>(static_cast<const char*>(addr) -
                                                static_cast<const char*>(info.addr)),
                     static_cast<unsigned long>(info.size), module);
    if (info.file != nullptr && n > 0 && static_cast<size_t>(n) < len)
      snprintf(buf + n, len - static_cast<size_t>(n), " %s:%u", info.file, info.line);
  } else {
    if (info.object == nullptr || !system_object(info.object))
      g_unnamed_frame.store(true, std::memory_order_relaxed);
    snprintf(buf, len, "0x%lx [%s+0x%lx]", reinterpret_cast<unsigned long>(addr), module,
             static_cast<unsigned long>(static_cast<const char*>(addr) -
                                        static_cast<const char*>(info.object_base)));
  }
}

}  // namespace slub
