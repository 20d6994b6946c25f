// SPDX-License-Identifier: MIT
// core/debug: the debug sanity mode, as the kernel's slub_debug. Compiled in always, switched
// on per cache by creation flags or by SLUB_DEBUG at start-up:
//   F consistency checks on free (slab, object boundary, double free, counters)
//   Z red zones around objects (and past the requested size of kmalloc blocks)
//   P poison free objects (0x6b..., last byte 0xa5; padding 0x5a), checked when handed out
//   U record the last alloc and free (caller, short stack, thread, CPU, time)
//   T trace every alloc and free
// A debug cache never has a CPU freelist (so it never takes the lockless fast path) and does
// each alloc and free under its node's list_lock; every function here that touches a slab is
// called with that lock held. Reports go to SLUB_DEBUG_LOG or stderr (pal/os.h write_report),
// in the kernel's format, without calling malloc; after a report the allocator repairs what it
// can and carries on, or aborts with SLUB_DEBUG_ABORT=1.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/kmem_cache.h"

namespace slub {

// Poison and red-zone bytes (include/linux/poison.h).
inline constexpr uint8_t kPoisonInuse = 0x5a;  // padding, and a new slab
inline constexpr uint8_t kPoisonFree = 0x6b;   // free object body
inline constexpr uint8_t kPoisonEnd = 0xa5;    // last byte of a free object body
inline constexpr uint8_t kRedInactive = 0xbb;  // red zone of a free object
inline constexpr uint8_t kRedActive = 0xcc;    // red zone of an allocated object

// The last alloc or free of an object (U), stored after the object.
struct Track {
  const void* addr;  // the caller of the allocator
  uint32_t handle;   // stack depot handle of a short backtrace, 0 if none
  int32_t cpu;
  int32_t tid;
  uint32_t unused;
  uint64_t when_ns;  // CLOCK_MONOTONIC
};
static_assert(sizeof(Track) == kTrackSize);
enum TrackItem { kTrackAlloc = 0, kTrackFree = 1 };

// Applies SLUB_DEBUG, SLUB_DEBUG_LOG and SLUB_DEBUG_ABORT (pal/options; once, at start-up;
// no malloc).
void debug_init();
// The creation flags of a cache named `name` once SLUB_DEBUG is applied (kmem_cache_flags).
unsigned long kmem_cache_flags(const char* name, unsigned long flags);
// Parses a slub_debug string and answers for `name` (exposed for tests).
unsigned long debug_flags_for(const char* spec, const char* name, unsigned long flags);

// Prepares a new slab of a debug cache (no lock needed: nobody else sees it yet).
void setup_slab_debug(KmemCache* s, PageDesc* slab, unsigned objects);

// Checks an object being handed out and marks it allocated. False: do not hand it out.
// `handle` is the caller's stack (stack_depot_capture), taken before the node lock.
bool alloc_debug_processing(KmemCache* s, PageDesc* slab, void* object, size_t orig_size,
                            const void* caller, uint32_t handle);
// Checks an object being freed and marks it free. False: it must not be freed.
bool free_debug_processing(KmemCache* s, PageDesc* slab, void* object, const void* caller,
                           uint32_t handle);
// Checks a whole slab (counters, freelist, every object). Returns the errors found.
int validate_slab(KmemCache* s, PageDesc* slab);

// Reports of bad frees seen before a slab is locked.
void report_invalid_pointer(KmemCache* s, PageDesc* slab, const void* p);
void report_wrong_cache(KmemCache* s, KmemCache* owner, PageDesc* slab, const void* p);

// The size the user asked for (kmalloc caches with Z or U), else object_size.
size_t get_orig_size(const KmemCache* s, const void* object);
Track* get_track(const KmemCache* s, void* object, TrackItem item);

// The user's call into the allocator: the first return address on the stack outside the
// allocator. With `handle`, also stores the backtrace from there in the deduplicating stack
// depot (0 if none). Call it before taking any lock: it unwinds the stack.
const void* debug_caller(uint32_t* handle);
// Writes "  sym+0xoff/0xsize [module] file.c:line" lines for a depot handle.
void print_stack(uint32_t handle);
// A longer stack kept by its owner (KFENCE's slots): up to `max` return addresses from the
// user's call into the allocator outward, or, with `from`, from the frame whose address is
// `from` (a fault's instruction, seen through the signal frame) outward. Returns the count.
int capture_stack(const void** out, int max, const void* from = nullptr);
// print_stack's lines for such a stack; with `exact_first`, frames[0] is an instruction's own
// address (a fault's), not a return address.
void print_frames(const void* const* frames, int n, bool exact_first = false);
// Describes `addr` as "sym+0xoff/0xsize [module]", followed by " file.c:line" when the object
// has a line table and `lines` is set, or as "0xADDR [module+0xoff]" when the object names no
// function there (stripped, or no such symbol): that sets the flag print_names_hint reads,
// unless the object is a system library (under /lib or /usr/lib).
// With `exact`, addr is an instruction's own address (a fault's), not a return address.
void symbolize(const void* addr, char* buf, size_t len, bool lines = true, bool exact = false);
// After a report with a frame that symbolize could not name: once per process, a line that
// says how to get names (build unstripped with -g, or `tools/slub decode`).
void print_names_hint();

// Output of reports (pal/os.h write_report: SLUB_DEBUG_LOG's file, else stderr, else the copy
// of stderr kept at start-up); serialised by a report lock.
void debug_print(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void report_lock();
void report_unlock();
// fork(): the report lock and the stack depot's, taken by fork_prepare after every list lock
// (a report of a bad pointer is made under no other lock) and released on both sides.
void debug_fork_lock();
void debug_fork_unlock();
int debug_fd();       // the descriptor reports are written to first (os::report_fd)
long debug_errors();  // BUG reports so far

}  // namespace slub
