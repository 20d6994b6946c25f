// SPDX-License-Identifier: MIT
// pal/lockdep: the lock checker of SLUB_LOCKDEP builds (the rule and the order of the classes
// are in base/lock_rank.h; SpinLock in base/base.h calls in here).
//
// Per thread, a stack of the locks it holds: a fixed array in initial-exec TLS, no malloc
// (the allocator's own paths call in here). A lock's acquisition is checked, and recorded,
// before the thread spins for it, so that a lock taken against the order aborts instead of
// deadlocking, and one taken twice by the same thread aborts instead of spinning forever.
// The report goes to stderr with write(2): the two locks, the locks held, the thread's stack
// (frame pointers: Debug builds keep them) with names from dladdr where the object exports
// them, then abort(). It lives in pal/ because that report needs the OS; base/ only declares
// the entry points.
//
// Signal handlers: the allocator's reentry rule (core/reentry.h's ReentryGuard) keeps a handler
// that interrupts a locked path from taking any lock (its allocation is a nested one), so a
// handler's locks are always taken and released within the handler, balanced, on top of what
// the interrupted code holds. The stack is written in an order that a balanced handler
// between any two stores cannot corrupt: an entry is reserved (marked kNr, skipped by the
// checks) before the depth grows, and filled after.
//
// fork: the child is a copy of the forking thread, its lock stack included; fork_child
// releases (unlock or reset) what fork_prepare took, as fork_parent does in the parent.
#include "base/base.h"

#ifdef SLUB_LOCKDEP

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "pal/os.h"

namespace slub::lockdep {

namespace {

constexpr int kMaxHeld = 32;    // fork_prepare holds 14 entries (a lock_nest group is one)
constexpr int kMaxFrames = 32;  // frames printed

struct Held {
  const void* lock;  // nullptr: a lock_nest group of `count` locks
  const void* ip;    // where it was taken (the first of a group)
  uint32_t count;
  LockClass cls;  // kNr while being written: skipped
  Mode mode;
};

SLUB_TLS Held t_held[kMaxHeld];
SLUB_TLS int t_depth = 0;

inline void barrier() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

int rank(LockClass c) {
  return static_cast<int>(c);
}

// "name+0x1f (object)" or "(object+0x1234)" for addr2line, from the dynamic symbols.
void print_where(const char* prefix, const void* ip) {
  Dl_info info;
  // A return address: the call is the byte before it.
  const void* at = static_cast<const char*>(ip) - 1;
  if (ip != nullptr && dladdr(at, &info) != 0 && info.dli_fname != nullptr) {
    const char* obj = info.dli_fname[0] != '\0' ? info.dli_fname : "(program)";
    if (info.dli_sname != nullptr)
      os::print("%s%p %s+0x%lx (%s)\n", prefix, ip, info.dli_sname,
                static_cast<unsigned long>(static_cast<const char*>(ip) -
                                           static_cast<const char*>(info.dli_saddr)),
                obj);
    else
      os::print("%s%p (%s+0x%lx)\n", prefix, ip, obj,
                static_cast<unsigned long>(static_cast<const char*>(ip) -
                                           static_cast<const char*>(info.dli_fbase)));
    return;
  }
  os::print("%s%p\n", prefix, ip);
}

// True if the 16 bytes at p (a frame record) are mapped: a frame pointer chain may leave the
// frames that keep one (libc's are compiled without), and the report must not fault.
bool frame_mapped(uintptr_t p) {
  unsigned char vec;
  return mincore(reinterpret_cast<void*>(align_down(p, kPageSize)), 1, &vec) == 0 &&
         ((p + 15) / kPageSize == p / kPageSize ||
          mincore(reinterpret_cast<void*>(align_down(p + 15, kPageSize)), 1, &vec) == 0);
}

// From the frame of acquire or release: #0 is where the lock was taken or released.
void print_stack(const void* from) {
  os::print("stack:\n");
  auto fp = reinterpret_cast<uintptr_t>(from);
  for (int i = 0; i < kMaxFrames && fp != 0; ++i) {
    if ((fp & 7) != 0 || !frame_mapped(fp)) break;
    const auto* frame = reinterpret_cast<const uintptr_t*>(fp);
    const uintptr_t next = frame[0], ret = frame[1];
    if (ret == 0) break;
    char prefix[16];
    snprintf(prefix, sizeof prefix, "  #%-2d ", i);
    print_where(prefix, reinterpret_cast<const void*>(ret));
    if (next <= fp || next - fp > (size_t{16} << 20)) break;  // not a frame of this stack
    fp = next;
  }
}

void print_held() {
  os::print("locks held by thread %d, outermost first:\n", os::gettid());
  if (t_depth == 0) os::print("  (none)\n");
  for (int i = 0; i < t_depth; ++i) {
    const Held& h = t_held[i];
    if (h.cls == LockClass::kNr) continue;
    char prefix[160];
    if (h.lock == nullptr)
      snprintf(prefix, sizeof prefix, "  %d: %s x%u (lock_nest), first taken at ", i,
               lock_class_name(h.cls), h.count);
    else
      snprintf(prefix, sizeof prefix, "  %d: %s %p%s, taken at ", i, lock_class_name(h.cls), h.lock,
               h.mode == kTry ? " (try_lock)" : "");
    print_where(prefix, h.ip);
  }
}

[[noreturn]] void fail(const void* frame) {
  print_held();
  print_stack(frame);
  os::print("slub lockdep: the order of the lock classes is in src/base/lock_rank.h\n");
  abort();
}

[[noreturn]] void report_order(LockClass c, const void* lock, const void* ip, const void* frame,
                               const Held& held, const char* why) {
  os::print("slub lockdep: %s\n", why);
  os::print("  taking  %s %p (rank %d) at ", lock_class_name(c), lock, rank(c));
  print_where("", ip);
  os::print("  holding %s %p (rank %d), taken at ", lock_class_name(held.cls), held.lock,
            rank(held.cls));
  print_where("", held.ip);
  fail(frame);
}

// Reserves the next entry (see the comment at the top on signal handlers).
Held* reserve(LockClass c, const void* lock, const void* ip, const void* frame) {
  const int d = t_depth;
  if (d == kMaxHeld) {
    os::print("slub lockdep: more than %d locks held; taking %s %p at ", kMaxHeld,
              lock_class_name(c), lock);
    print_where("", ip);
    fail(frame);
  }
  t_held[d].cls = LockClass::kNr;
  barrier();
  t_depth = d + 1;
  barrier();
  return &t_held[d];
}

// Closes the gap of a released entry: the entry being written is marked kNr meanwhile, and
// its source stays in place until it is overwritten in turn (a duplicate is harmless).
void move_entry(Held* dst, const Held& src) {
  dst->cls = LockClass::kNr;
  barrier();
  dst->lock = src.lock;
  dst->ip = src.ip;
  dst->count = src.count;
  dst->mode = src.mode;
  barrier();
  dst->cls = src.cls;
}

}  // namespace

void acquire(LockClass c, const void* lock, Mode mode, const void* nest) {
  const void* ip = __builtin_return_address(0);
  const void* frame = __builtin_frame_address(0);
  const int d = t_depth;
  if (mode != kTry) {
    bool nest_held = false;
    for (int i = 0; i < d; ++i) {
      const Held& h = t_held[i];
      if (h.cls == LockClass::kNr) continue;
      if (h.lock == lock) report_order(c, lock, ip, frame, h, "lock taken twice by one thread");
      if (nest != nullptr && h.lock == nest) nest_held = true;
      if (rank(h.cls) < rank(c)) continue;
      if (h.cls == c && mode == kNest && h.mode == kNest) continue;  // joins the group
      report_order(c, lock, ip, frame, h,
                   h.cls == c ? "two locks of one class without lock_nest"
                              : "lock taken out of order (its rank is not above a held one's)");
    }
    if (mode == kNest && !nest_held) {
      os::print("slub lockdep: lock_nest of %s %p without holding the nest lock %p\n",
                lock_class_name(c), lock, nest);
      os::print("  at ");
      print_where("", ip);
      fail(frame);
    }
    // A lock_nest of the class of the innermost entry joins it (fork: thousands of slots).
    if (mode == kNest && d > 0 && t_held[d - 1].cls == c && t_held[d - 1].mode == kNest) {
      Held& top = t_held[d - 1];
      top.lock = nullptr;
      top.count++;
      return;
    }
  }
  Held* h = reserve(c, lock, ip, frame);
  h->lock = lock;
  h->ip = ip;
  h->count = 1;
  h->mode = mode;
  barrier();
  h->cls = c;
}

void release(LockClass c, const void* lock) {
  const int d = t_depth;
  int found = -1;
  for (int i = d - 1; i >= 0 && found < 0; --i)
    if (t_held[i].lock == lock && t_held[i].cls == c) found = i;
  // A lock of a lock_nest group: the group is known by its class and count only.
  for (int i = d - 1; i >= 0 && found < 0; --i)
    if (t_held[i].lock == nullptr && t_held[i].cls == c) found = i;
  if (found < 0) {
    os::print("slub lockdep: releasing %s %p, which this thread does not hold\n",
              lock_class_name(c), lock);
    os::print("  at ");
    print_where("", __builtin_return_address(0));
    fail(__builtin_frame_address(0));
  }
  Held& h = t_held[found];
  if (h.lock == nullptr && --h.count > 0) return;
  for (int i = found; i + 1 < d; ++i) move_entry(&t_held[i], t_held[i + 1]);
  t_depth = d - 1;
}

int held_count() {
  int n = 0;
  for (int i = 0; i < t_depth; ++i)
    if (t_held[i].cls != LockClass::kNr) n += static_cast<int>(t_held[i].count);
  return n;
}

}  // namespace slub::lockdep

#endif  // SLUB_LOCKDEP
