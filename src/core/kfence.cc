// SPDX-License-Identifier: MIT
// core/kfence.cc: the guarded pool (kfence.h says what it is for and how sampling is armed).
//
// The pool is one reservation of 2 * objects + 1 pages, inaccessible (PROT_NONE, not charged)
// but for the pages of objects in use:
//   page 0: guard | page 1: object #0 | page 2: guard | page 3: object #1 | ... | guard
// so every object page sits between two guard pages, which it shares with its neighbours.
// Slot #i's page is made accessible when the slot is handed out, and inaccessible and given
// back to the OS (purged) when its object is freed, so the pool holds a page per live object
// (the kernel keeps a freed object's contents; here a late read after free, once reported,
// reads zeros). Free slots are reused oldest first (a FIFO), which keeps a freed object's page
// inaccessible as long as possible.
//
// Reports are made after the pool's lock is dropped, from a copy of the slot, in the format of
// the kernel's mm/kfence/report.c (with "thread" for its "task").
#include "core/kfence.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "core/debug.h"
#include "core/reentry.h"
#include "pal/options.h"
#include "pal/os.h"
#include "pal/process.h"

namespace slub::kfence {

constinit std::atomic<uintptr_t> g_start{0};
constinit size_t g_bytes = 0;
constinit std::atomic<int> g_armed{0};
constinit bool g_every = false;

namespace {

constexpr int kStackDepth = 16;  // frames kept per stack (the kernel keeps 64)

enum class State : uint8_t { kUnused, kAllocated, kFreed };

struct Track {
  int tid;
  int cpu;
  uint64_t ns;  // CLOCK_MONOTONIC, as the kernel's local_clock
  int depth;
  const void* frames[kStackDepth];
};

// One slot of the pool (the kernel's struct kfence_metadata). Guarded by g_lock.
struct Slot {
  uintptr_t addr;  // the object, inside the slot's page
  uint32_t size;   // what the user asked for
  State state;
  bool page_opened;     // a fault report made the (freed or unused) slot's page accessible
  KmemCache* cache;     // nullptr while unused
  char cache_name[32];  // kept for reports: the cache may be destroyed before a late access
  int next;             // the next free slot (FIFO), -1 at the tail
  Track alloc_track;
  Track free_track;
};

enum class Kind : uint8_t { kOob, kUaf, kInvalidFree, kCorruption, kInvalidAccess };

constinit SpinLock<LockClass::kKfence> g_lock;
constinit Slot* g_slots = nullptr;
constinit bool* g_guard_opened = nullptr;  // guard page g (0..objects) made accessible by a report
constinit unsigned g_objects = 0;
// Slots never used are taken first, in order (g_unused: the next one), then freed ones oldest
// first (a FIFO from g_free_head to g_free_tail): the kernel's order, without writing every
// slot's link at start-up (the descriptors' pages are touched only as slots come into use).
constinit unsigned g_unused = 0;
constinit int g_free_head = -1, g_free_tail = -1;
constinit unsigned g_interval_ms = 0;
constinit unsigned g_sample_every = 0;
constinit std::atomic<uint64_t> g_sample_count{0};
constinit bool g_abort = false;
constinit bool g_place_right = true;  // where the next object goes in its page (alternates)
constinit bool g_handler = false;     // the fault handler is installed (under g_lock)
constinit size_t g_meta_bytes = 0;

// Counters (the kernel's kfence/stats), under g_lock.
constinit uint64_t g_allocated = 0, g_allocs = 0, g_frees = 0, g_bugs = 0;
constinit uint64_t g_opened = 0;  // pages a report made accessible (freed or unused slots', guards)
constinit std::atomic<uint64_t> g_skip_incompat{0}, g_skip_capacity{0};

// The kernel's canary byte for an address: 0xaa with the address's low three bits mixed in,
// so that a shifted copy of the pattern does not pass the check.
uint8_t canary(uintptr_t a) {
  return static_cast<uint8_t>(0xaa ^ (a & 7));
}

char* page_of_slot(unsigned i) {
  return reinterpret_cast<char*>(g_start.load(std::memory_order_relaxed)) + (2 * i + 1) * kPageSize;
}
char* guard_page(unsigned g) {
  return reinterpret_cast<char*>(g_start.load(std::memory_order_relaxed)) + 2 * g * kPageSize;
}

bool bad_bytes(uintptr_t from, uintptr_t to, uintptr_t* first) {
  for (uintptr_t a = from; a < to; ++a) {
    if (*reinterpret_cast<const uint8_t*>(a) != canary(a)) {
      *first = a;
      return true;
    }
  }
  return false;
}

void set_track(Track* t, const void* const* frames, int depth) {
  t->tid = os::gettid();
  t->cpu = CpuId::current();
  t->ns = os::now_ns();
  t->depth = depth;
  memcpy(t->frames, frames, sizeof(void*) * static_cast<size_t>(depth));
}

// Objects are aligned as their cache's would be: its alignment, and a slot size's natural
// alignment up to 16 (a 48-byte kmalloc object is 16-aligned in its slab; programs count on it).
size_t object_align(const KmemCache* s) {
  size_t a = s->align < 8 ? 8 : s->align;
  const size_t natural = s->size & (~s->size + 1);
  if (natural > a) a = natural < 16 ? natural : 16;
  return a;
}

bool on_fault(void* addr, bool write, bool fetch, const void* ip);

// ---- reports ------------------------------------------------------------------------------

// Where report text goes: the report output (nullptr), or a buffer (describe).
struct Sink {
  char* buf;
  size_t cap;
  size_t len;
  bool full;  // a line did not fit: nothing more is written
};

void out(Sink* k, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void out(Sink* k, const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  const int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  const size_t len =
      static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1;
  if (k == nullptr) {
    debug_print("%s", line);
    return;
  }
  if (k->full || k->len + len > k->cap) {
    k->full = true;
    return;
  }
  memcpy(k->buf + k->len, line, len);
  k->len += len;
}

void out_frames(Sink* k, const void* const* frames, int n) {
  if (k == nullptr) return print_frames(frames, n);
  for (int i = 0; i < n; ++i) {
    char sym[256];
    symbolize(frames[i], sym, sizeof sym);
    out(k, " %s\n", sym);
  }
}

const char* access_name(bool write) {
  return write ? "write" : "read";
}

void print_track(Sink* k, const char* what, const Track& t, uint64_t now) {
  const uint64_t ago = now > t.ns ? now - t.ns : 0;
  out(k, "%s by thread %d on cpu %d at %lu.%06lus (%lu.%06lus ago):\n", what, t.tid, t.cpu,
      static_cast<unsigned long>(t.ns / 1000000000),
      static_cast<unsigned long>(t.ns / 1000 % 1000000),
      static_cast<unsigned long>(ago / 1000000000),
      static_cast<unsigned long>(ago / 1000 % 1000000));
  if (t.depth == 0)
    out(k, " no %s stack\n", what);
  else
    out_frames(k, t.frames, t.depth);
}

// The object's part of a report (and of describe's listing): its range, size and cache, then
// who allocated it and, once freed, who freed it.
void print_object(Sink* k, int index, const Slot& m, uint64_t now) {
  if (m.state == State::kUnused) {
    out(k, "kfence-#%d unused\n", index);
    return;
  }
  out(k, "kfence-#%d [0x%lx-0x%lx, size=%u, cache=%s] ", index, static_cast<unsigned long>(m.addr),
      static_cast<unsigned long>(m.addr + (m.size != 0 ? m.size - 1 : 0)), m.size, m.cache_name);
  print_track(k, "allocated", m.alloc_track, now);
  if (m.state == State::kFreed) {
    out(k, "\n");
    print_track(k, "freed", m.free_track, now);
  }
}

struct Report {
  Kind kind;
  bool write;
  uintptr_t addr;                   // the access, the pointer freed, or the first corrupted byte
  int index;                        // the slot, -1 if none
  Slot slot;                        // a copy, taken under g_lock
  const void* frames[kStackDepth];  // the access's (or the free call's) stack
  int depth;
  const void* title_ip;  // the function named in the title
  bool title_exact;      // title_ip is a fault's instruction, not a return address
  char bytes[96];        // a corruption's "[ 0xNN . . ]" (read under g_lock)
};

// The kernel's "[ 0xNN . . ]" of a corruption at `first` (g_lock held): up to 16 bytes from
// the first bad one, on its side of the object, a value where the canary is wrong and a dot
// where it is intact.
void describe_corruption(uintptr_t first, uintptr_t limit, char* line, size_t cap) {
  size_t n = 0;
  line[0] = 0;
  for (uintptr_t a = first; a < limit && a < first + 16 && n + 8 < cap; ++a) {
    const uint8_t b = *reinterpret_cast<const uint8_t*>(a);
    const int w = b != canary(a) ? snprintf(line + n, cap - n, " 0x%02x", b)
                                 : snprintf(line + n, cap - n, " .");
    if (w > 0) n += static_cast<size_t>(w);
  }
}

void report(const Report& r) {
  char title[256];
  symbolize(r.title_ip, title, sizeof title, false, r.title_exact);
  const uint64_t now = os::now_ns();
  report_lock();
  debug_print("==================================================================\n");
  switch (r.kind) {
    case Kind::kOob: {
      debug_print("BUG: KFENCE: out-of-bounds %s in %s\n\n", access_name(r.write), title);
      const bool left = r.addr < r.slot.addr;
      const uintptr_t dist = left ? r.slot.addr - r.addr : r.addr - (r.slot.addr + r.slot.size) + 1;
      debug_print("Out-of-bounds %s at 0x%lx (%luB %s of kfence-#%d):\n", access_name(r.write),
                  static_cast<unsigned long>(r.addr), static_cast<unsigned long>(dist),
                  left ? "left" : "right", r.index);
      break;
    }
    case Kind::kUaf:
      debug_print("BUG: KFENCE: use-after-free %s in %s\n\n", access_name(r.write), title);
      debug_print("Use-after-free %s at 0x%lx (in kfence-#%d):\n", access_name(r.write),
                  static_cast<unsigned long>(r.addr), r.index);
      break;
    case Kind::kInvalidFree:
      debug_print("BUG: KFENCE: invalid free in %s\n\n", title);
      if (r.index >= 0)
        debug_print("Invalid free of 0x%lx (in kfence-#%d):\n", static_cast<unsigned long>(r.addr),
                    r.index);
      else
        debug_print("Invalid free of 0x%lx:\n", static_cast<unsigned long>(r.addr));
      break;
    case Kind::kCorruption:
      debug_print("BUG: KFENCE: memory corruption in %s\n\n", title);
      debug_print("Corrupted memory at 0x%lx [%s ] (in kfence-#%d):\n",
                  static_cast<unsigned long>(r.addr), r.bytes, r.index);
      break;
    case Kind::kInvalidAccess:
      debug_print("BUG: KFENCE: invalid %s in %s\n\n", access_name(r.write), title);
      debug_print("Invalid %s at 0x%lx:\n", access_name(r.write),
                  static_cast<unsigned long>(r.addr));
      break;
  }
  print_frames(r.frames, r.depth, r.title_exact);  // a fault's first frame is its instruction
  if (r.index >= 0) {
    debug_print("\n");
    print_object(nullptr, r.index, r.slot, now);
  }
  char comm[32];
  os::program_name(comm, sizeof comm);
  debug_print("\nCPU: %d PID: %d Comm: %s\n", CpuId::current(), os::pid(), comm);
  debug_print("==================================================================\n");
  report_unlock();
  print_names_hint();
  if (g_abort) os::abort_process();
}

// The slot whose page `a` is in, or -1 for a guard page.
int slot_of_page(uintptr_t a) {
  const uintptr_t page = (a - g_start.load(std::memory_order_relaxed)) / kPageSize;
  return (page & 1) != 0 ? static_cast<int>(page / 2) : -1;
}

// ---- the fault handler --------------------------------------------------------------------

// A fault at `a` in the pool (g_lock held): which object it concerns and how. Makes the page
// accessible, so that the access goes on and is reported only once. *repeat: the page is
// accessible already (a fault of another thread that came before the page was opened, or a
// page reused meanwhile): nothing to report, the access runs again.
bool classify_fault(uintptr_t a, Report* r, bool* repeat) {
  const uintptr_t page = (a - g_start.load(std::memory_order_relaxed)) / kPageSize;
  r->index = -1;
  *repeat = false;
  if ((page & 1) != 0) {  // an object's page: its object was freed (or the slot never used)
    const unsigned i = static_cast<unsigned>(page / 2);
    Slot& m = g_slots[i];
    if (m.state == State::kAllocated || m.page_opened) {
      *repeat = true;
      return true;
    }
    r->kind = m.state == State::kUnused ? Kind::kInvalidAccess : Kind::kUaf;
    if (m.state != State::kUnused) r->index = static_cast<int>(i);
    if (!os::commit(page_of_slot(i), kPageSize)) return false;
    m.page_opened = true;
    ++g_opened;
  } else {  // a guard page: the nearer neighbour in use (else freed) overflowed or underflowed
    const unsigned g = static_cast<unsigned>(page / 2);
    if (g_guard_opened[g]) {
      *repeat = true;
      return true;
    }
    int best = -1;
    uintptr_t best_dist = 0;
    State best_state = State::kUnused;
    for (int side = 0; side < 2; ++side) {
      const int i = side == 0 ? static_cast<int>(g) - 1 : static_cast<int>(g);
      if (i < 0 || i >= static_cast<int>(g_objects)) continue;
      const Slot& m = g_slots[i];
      if (m.state == State::kUnused) continue;
      const uintptr_t dist = side == 0 ? a - (m.addr + m.size) : m.addr - a;
      const bool better = best < 0 ||
                          (m.state == State::kAllocated && best_state != State::kAllocated) ||
                          (m.state == best_state && dist < best_dist);
      if (better) {
        best = i;
        best_dist = dist;
        best_state = m.state;
      }
    }
    r->kind = best >= 0 ? Kind::kOob : Kind::kInvalidAccess;
    r->index = best;
    if (!os::commit(guard_page(g), kPageSize)) return false;
    g_guard_opened[g] = true;
    ++g_opened;
  }
  if (r->index >= 0) r->slot = g_slots[r->index];
  ++g_bugs;
  return true;
}

bool on_fault(void* addr, bool write, bool fetch, const void* ip) {
  if (!is_kfence_address(addr)) return false;
  Report r{};
  r.addr = reinterpret_cast<uintptr_t>(addr);
  r.write = write;
  bool repeat = false;
  // A fault in a signal handler that interrupted a holder of g_lock (every holder runs in a
  // ReentryGuard): the lock is not waited for; the fault goes on to the previous handler.
  if (t_thread.slow_depth != 0) {
    if (!g_lock.try_lock_now()) return false;
    const bool ok = classify_fault(r.addr, &r, &repeat);
    g_lock.unlock();
    if (!ok) return false;
  } else {
    ReentryGuard guard;
    LockGuard g(g_lock);
    if (!classify_fault(r.addr, &r, &repeat)) return false;
  }
  // An instruction fetch from the pool (a call through a pointer to a pool object) faults
  // again in a page made accessible, which is not executable: reported once, then the fault
  // goes on to the previous handler (the default one kills, as outside the pool).
  if (repeat) return !fetch;
  r.depth = capture_stack(r.frames, kStackDepth, ip);
  r.title_ip = ip;
  r.title_exact = true;
  report(r);
  return !fetch;
}

// ---- the pool -----------------------------------------------------------------------------

void make_pool(unsigned objects) {
  const size_t bytes = (2 * size_t{objects} + 1) * kPageSize;
  void* pool = os::reserve_aligned(bytes, kPageSize);
  const size_t meta = align_up(sizeof(Slot) * objects + objects + 1, kPageSize);
  void* slots = pool != nullptr ? os::map(meta) : nullptr;
  if (slots == nullptr) {
    if (pool != nullptr) os::unmap(pool, bytes);
    os::print("slub: KFENCE is off: no memory for a pool of %u objects\n", objects);
    return;
  }
  g_slots = static_cast<Slot*>(slots);
  g_guard_opened = reinterpret_cast<bool*>(g_slots + objects);
  g_meta_bytes = meta;
  g_objects = objects;
  g_bytes = bytes;
  g_start.store(reinterpret_cast<uintptr_t>(pool), std::memory_order_release);
}

// The sampling decision of a slow path: the token, or every Nth slow path.
bool sampled() {
  if (g_every) return g_sample_count.fetch_add(1, std::memory_order_relaxed) % g_sample_every == 0;
  return g_armed.load(std::memory_order_relaxed) != 0 && g_armed.exchange(0) != 0;
}

}  // namespace

void init() {
  const long every = options::number(options::kOptKfenceSample);
  g_interval_ms = static_cast<unsigned>(options::number(options::kOptKfence));
  g_abort = options::flag(options::kOptKfenceAbort);
  if (every > 0) {
    g_sample_every = static_cast<unsigned>(every);
    g_interval_ms = 0;
  }
  if (g_sample_every == 0 && g_interval_ms == 0) return;
  make_pool(static_cast<unsigned>(options::number(options::kOptKfenceObjects)));
  if (g_start.load(std::memory_order_relaxed) == 0) {
    g_interval_ms = 0;
    g_sample_every = 0;
    return;
  }
  g_every = g_sample_every != 0;
}

unsigned interval_ms() {
  return g_interval_ms;
}

void* alloc_slow(KmemCache* s, size_t size) {
  // Inside a slow path already (a signal handler's allocation): the pool's lock may be held.
  if (g_start.load(std::memory_order_relaxed) == 0 || t_thread.slow_depth != 0) return nullptr;
  if (size == 0 || size > kPageSize || (s->flags & SLAB_TYPESAFE_BY_RCU) || s->align > kPageSize) {
    g_skip_incompat.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (!sampled()) return nullptr;
  uintptr_t addr = 0;
  {
    ReentryGuard guard;  // a signal handler's free of a pool object waits until we are done
    const void* frames[kStackDepth];
    const int depth = capture_stack(frames, kStackDepth);
    bool install = false;
    {
      LockGuard g(g_lock);
      const bool fresh = g_unused < g_objects;
      const int i = fresh ? static_cast<int>(g_unused) : g_free_head;
      if (i < 0) {
        g_skip_capacity.fetch_add(1, std::memory_order_relaxed);
        return nullptr;
      }
      Slot& m = g_slots[i];
      char* page = page_of_slot(static_cast<unsigned>(i));
      if (!os::commit(page, kPageSize)) return nullptr;  // the slot stays free
      if (fresh) {
        ++g_unused;
      } else {
        g_free_head = m.next;
        if (g_free_head < 0) g_free_tail = -1;
      }
      for (unsigned gd : {static_cast<unsigned>(i), static_cast<unsigned>(i) + 1}) {
        if (g_guard_opened[gd] && os::protect(guard_page(gd), kPageSize)) {
          g_guard_opened[gd] = false;
          --g_opened;
        }
      }
      const uintptr_t base = reinterpret_cast<uintptr_t>(page);
      addr = g_place_right ? (base + kPageSize - size) & ~(object_align(s) - 1) : base;
      g_place_right = !g_place_right;
      for (uintptr_t a = base; a < addr; ++a) *reinterpret_cast<uint8_t*>(a) = canary(a);
      for (uintptr_t a = addr + size; a < base + kPageSize; ++a)
        *reinterpret_cast<uint8_t*>(a) = canary(a);
      m.addr = addr;
      m.size = static_cast<uint32_t>(size);
      m.state = State::kAllocated;
      if (m.page_opened) --g_opened;
      m.page_opened = false;
      m.cache = s;
      snprintf(m.cache_name, sizeof m.cache_name, "%.*s", static_cast<int>(sizeof m.cache_name - 1),
               s->name);
      m.next = -1;
      set_track(&m.alloc_track, frames, depth);
      m.free_track.depth = 0;
      ++g_allocated;
      ++g_allocs;
      install = !g_handler;
      g_handler = true;
    }
    if (install && !os::install_fault_handler(on_fault))
      os::print(
          "slub: KFENCE: no SIGSEGV handler (sigaction failed): faults in the pool are not "
          "reported\n");
  }
  if (s->ctor != nullptr) s->ctor(reinterpret_cast<void*>(addr));
  return reinterpret_cast<void*>(addr);
}

void free(void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  if (t_thread.slow_depth != 0) {  // a signal handler's free inside a slow path: later
    const int i = slot_of_page(a);
    if (i >= 0 && g_slots[i].state == State::kAllocated && g_slots[i].addr == a) {
      // Not linked through the object (reentry.h); with no room left it stays allocated: a
      // leak, never a wrong free.
      defer_free_kept(p);
    }
    return;
  }
  Report r{};
  bool bug = false;
  {
    ReentryGuard guard;
    const void* frames[kStackDepth];
    const int depth = capture_stack(frames, kStackDepth);
    LockGuard g(g_lock);
    const int i = slot_of_page(a);
    Slot* m = i >= 0 ? &g_slots[i] : nullptr;
    if (m == nullptr || m->state != State::kAllocated || m->addr != a) {
      // Not the start of a live object: a double free, a pointer into an object or a guard page.
      r.kind = Kind::kInvalidFree;
      r.addr = a;
      r.index = m != nullptr && m->state != State::kUnused ? i : -1;
      if (r.index >= 0) r.slot = *m;
      bug = true;
      ++g_bugs;
    } else {
      const uintptr_t base = reinterpret_cast<uintptr_t>(page_of_slot(static_cast<unsigned>(i)));
      uintptr_t first = 0;
      if (bad_bytes(base, m->addr, &first) ||
          bad_bytes(m->addr + m->size, base + kPageSize, &first)) {
        r.kind = Kind::kCorruption;
        r.addr = first;
        describe_corruption(first, first < m->addr ? m->addr : base + kPageSize, r.bytes,
                            sizeof r.bytes);
        r.index = i;
        bug = true;
        ++g_bugs;
      }
      set_track(&m->free_track, frames, depth);
      m->state = State::kFreed;
      if (bug) r.slot = *m;
      // Inaccessible, and given back to the OS: the pool holds a page per live object only
      // (a late access after free, once reported, reads zeros).
      os::protect(reinterpret_cast<void*>(base), kPageSize);
      os::purge(reinterpret_cast<void*>(base), kPageSize);
      if (g_free_tail >= 0)
        g_slots[g_free_tail].next = i;
      else
        g_free_head = i;
      g_free_tail = i;
      m->next = -1;
      --g_allocated;
      ++g_frees;
    }
    memcpy(r.frames, frames, sizeof(void*) * static_cast<size_t>(depth));
    r.depth = depth;
    r.title_ip = depth > 0 ? frames[0] : nullptr;
  }
  if (bug) report(r);
}

namespace {
// Under g_lock: the live object `a` starts, or nullptr.
const Slot* live_slot(uintptr_t a) {
  const int i = slot_of_page(a);
  if (i < 0) return nullptr;
  const Slot& m = g_slots[i];
  return m.state == State::kAllocated && m.addr == a ? &m : nullptr;
}

// Runs fn under g_lock, or, in a signal handler inside a slow path whose thread may hold it
// (every holder runs in a ReentryGuard), without it if it is taken: what fn reads of a live
// object's slot is then the program's own object, which no other thread may free meanwhile.
template <class Fn>
auto with_lock(Fn fn) {
  if (t_thread.slow_depth != 0) {
    const bool locked = g_lock.try_lock_now();
    auto r = fn();
    if (locked) g_lock.unlock();
    return r;
  }
  ReentryGuard guard;  // a signal handler's pool free meanwhile is deferred, not a deadlock
  LockGuard g(g_lock);
  return fn();
}
}  // namespace

size_t ksize(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return with_lock([a]() -> size_t {
    const Slot* m = live_slot(a);
    return m != nullptr ? m->size : 0;
  });
}

const KmemCache* cache_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return with_lock([a]() -> const KmemCache* {
    const Slot* m = live_slot(a);
    return m != nullptr ? m->cache : nullptr;
  });
}

unsigned live_objects(const KmemCache* s, void** found, unsigned max) {
  if (g_start.load(std::memory_order_relaxed) == 0) return 0;
  unsigned n = 0;
  ReentryGuard guard;
  LockGuard g(g_lock);
  for (unsigned i = 0; i < g_unused; ++i) {
    const Slot& m = g_slots[i];
    if (m.state != State::kAllocated || m.cache != s) continue;
    if (n < max) found[n] = reinterpret_cast<void*>(m.addr);
    ++n;
  }
  return n;
}

bool arm() {
  return g_armed.exchange(1) == 0;
}

void stats(Stats* out) {
  *out = {};
  out->enabled = g_start.load(std::memory_order_relaxed) != 0;
  out->interval_ms = g_interval_ms;
  out->sample_every = g_sample_every;
  out->objects = g_objects;
  out->pool_bytes = g_bytes;
  out->meta_bytes = g_meta_bytes;
  out->skip_incompatible = g_skip_incompat.load(std::memory_order_relaxed);
  out->skip_capacity = g_skip_capacity.load(std::memory_order_relaxed);
  if (!out->enabled) return;
  with_lock([out] {
    out->allocated = g_allocated;
    out->allocs = g_allocs;
    out->frees = g_frees;
    out->bugs = g_bugs;
    out->resident_bytes = (g_allocated + g_opened) * kPageSize;
    return 0;
  });
}

size_t describe(char* buf, size_t cap, bool* cut) {
  Sink k{buf, cap, 0, false};
  Stats st;
  stats(&st);
  // The kernel's /sys/kernel/debug/kfence/stats, then what is particular to slub.
  out(&k, "enabled: %d\n", st.enabled ? 1 : 0);
  out(&k, "currently allocated: %lu\n", static_cast<unsigned long>(st.allocated));
  out(&k, "total allocations: %lu\n", static_cast<unsigned long>(st.allocs));
  out(&k, "total frees: %lu\n", static_cast<unsigned long>(st.frees));
  out(&k, "zombie allocations: 0\n");
  out(&k, "total bugs: %lu\n", static_cast<unsigned long>(st.bugs));
  out(&k, "skipped allocations (incompatible): %lu\n",
      static_cast<unsigned long>(st.skip_incompatible));
  out(&k, "skipped allocations (capacity): %lu\n", static_cast<unsigned long>(st.skip_capacity));
  out(&k, "skipped allocations (covered): 0\n");
  if (st.sample_every != 0)
    out(&k, "sampling: every %u slow-path allocations (SLUB_KFENCE_SAMPLE)\n", st.sample_every);
  else
    out(&k, "sampling: every %u ms (SLUB_KFENCE)\n", st.interval_ms);
  out(&k,
      "pool: %u objects, %lu KiB of address space, %lu KiB resident, %lu KiB of slot descriptors\n",
      st.objects, static_cast<unsigned long>(st.pool_bytes >> 10),
      static_cast<unsigned long>(st.resident_bytes >> 10),
      static_cast<unsigned long>(st.meta_bytes >> 10));
  // The kernel's objects file: every slot used so far, a line of dashes between them.
  const uint64_t now = os::now_ns();
  *cut = k.full;
  for (unsigned i = 0; i < g_objects && !*cut; ++i) {
    Slot m;
    {
      LockGuard g(g_lock);
      m = g_slots[i];
    }
    if (m.state == State::kUnused) continue;
    char piece[10240];  // one slot's text: 2 x 16 frame lines of at most 257 bytes, 4 others
    Sink one{piece, sizeof piece, 0, false};
    out(&one, "---------------------------------\n");
    print_object(&one, static_cast<int>(i), m, now);
    if (one.full || k.len + one.len > k.cap) {
      *cut = true;
    } else {
      memcpy(k.buf + k.len, piece, one.len);
      k.len += one.len;
    }
  }
  return k.len;
}

void fork_lock() {
  g_lock.lock();
}
void fork_unlock() {
  g_lock.unlock();
}

}  // namespace slub::kfence
