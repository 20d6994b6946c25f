// SPDX-License-Identifier: MIT
// libFuzzer target: the kmem_cache API against a shadow model.
//
// The input is a program: one opcode byte (modulo kOps), a slot or cache byte, then operands.
// Up to 8 caches live at once (cache slots), created with fuzzed sizes, alignments, flags
// (SLAB_HWCACHE_ALIGN, the debug flags F Z P U, SLAB_NO_MERGE, accounting flags, sometimes
// SLAB_TYPESAFE_BY_RCU) and maybe a constructor; mergeable ones may come back as aliases of
// an earlier cache. Objects live in a table of 256 slots with their shadow (cache, size,
// pattern tag). Checks: alignment (the asked one, 8 bytes at least, and the kernel's cache-line
// rule for SLAB_HWCACHE_ALIGN); objects of a cache with a constructor come out of
// kmem_cache_alloc in their constructed state (the harness restores it before freeing, as the
// API asks); zalloc objects read zero; the pattern is intact at free; kmem_cache_validate
// finds nothing; kmem_cache_get_info counts are consistent with the objects held;
// kmem_cache_destroy of a cache whose objects are all freed returns 0, and of one that still
// has objects -1/EBUSY leaving it usable. Some objects are freed (or allocated) by the remote
// thread on vCPU 1, and the fuzzing thread moves between virtual CPUs. slub_malloc blocks mix
// in (op 15) so that caches and kmalloc share the page allocator.
#include <cerrno>

#include "fuzz_common.h"

using namespace fz;

namespace {

constexpr int kSlots = 256;
constexpr int kCaches = 8;
constexpr size_t kMaxLive = 128u << 20;
constexpr size_t kMaxObject = 1u << 20;  // kPageSize << kMaxRunOrder

struct Cache {
  kmem_cache* c = nullptr;
  size_t size = 0;   // object size asked for
  size_t align = 0;  // alignment objects must have
  unsigned long flags = 0;
  bool ctor = false;
  bool debug = false;
};

struct Obj {
  void* p = nullptr;
  int cache = -1;  // cache slot; -1: a slub_malloc block
  size_t len = 0;  // bytes filled (the cache's object size asked for, or the malloc size)
  uint64_t tag = 0;
};

Cache g_cache[kCaches];
Obj g_obj[kSlots];
size_t g_live = 0;
unsigned long g_name_counter = 0;

// ---- constructors: one per cache slot, filling the whole object with that slot's pattern --

size_t g_ctor_size[kCaches];
uint64_t ctor_tag(int k) {
  return 0xC7C7C7C700000000ull | (0x1000u + static_cast<unsigned>(k));
}
template <int K>
void ctor_fn(void* p) {
  fill(p, g_ctor_size[K], ctor_tag(K));
}
constexpr kmem_ctor_t kCtors[kCaches] = {ctor_fn<0>, ctor_fn<1>, ctor_fn<2>, ctor_fn<3>,
                                         ctor_fn<4>, ctor_fn<5>, ctor_fn<6>, ctor_fn<7>};

// ---- decoding ----

// Object sizes: the top 3 bits of the first byte pick a range, a 16-bit value the size in it.
//   0-3: 1..256   4: 1..4096   5: 1..32 KiB   6: 1..1 MiB (steps of 16)   7: an edge
size_t decode_obj_size(Reader& in) {
  static const size_t kEdges[] = {1,
                                  7,
                                  8,
                                  9,
                                  15,
                                  16,
                                  24,
                                  32,
                                  33,
                                  63,
                                  64,
                                  96,
                                  128,
                                  192,
                                  255,
                                  256,
                                  512,
                                  1000,
                                  1024,
                                  2048,
                                  4095,
                                  4096,
                                  4097,
                                  8192,
                                  16384,
                                  65536,
                                  262144,
                                  524288,
                                  kMaxObject - 4096,
                                  kMaxObject};
  uint8_t b = in.u8();
  uint32_t v = in.u16();
  switch (b >> 5) {
    case 0:
    case 1:
    case 2:
    case 3:
      return 1 + v % 256;
    case 4:
      return 1 + v % 4096;
    case 5:
      return 1 + v % 32768;
    case 6:
      return 1 + (static_cast<size_t>(v) * 16) % kMaxObject;
    default:
      return kEdges[(b & 31) % (sizeof kEdges / sizeof kEdges[0])];
  }
}

// Alignment: 0 (default) for a byte below 64, 2^(b%13) (1..4096) up to 0xF7, else
// 2^(13 + b%8) (8 KiB..1 MiB).
size_t decode_obj_align(uint8_t b) {
  if (b < 64) return 0;
  if (b < 0xF8) return size_t{1} << (b % 13);
  return size_t{1} << (13 + b % 8);
}

// The kernel's calculate_alignment: what objects of a cache must be aligned on.
size_t expected_align(unsigned long flags, size_t align, size_t size) {
  if (flags & SLAB_HWCACHE_ALIGN) {
    size_t ralign = 64;
    while (size <= ralign / 2) ralign /= 2;
    if (ralign > align) align = ralign;
  }
  return align < sizeof(void*) ? sizeof(void*) : align;
}

// What an object is counted for against kMaxLive. Debug caches count 16 times: their checks
// read every byte of the slot (1 MiB of padding for a 1 MiB-aligned object), alloc, free and
// validate alike, and a few dozen such objects made inputs of seconds.
size_t cost(size_t len, size_t align, bool debug = false) {
  return (len + align + 64) * (debug ? 16 : 1);
}
bool room_for(size_t len, size_t align, bool debug = false) {
  return g_live + cost(len, align, debug) <= kMaxLive;
}

// ---- objects ----

void check_cache_object(int c, void* p, bool zeroed, const char* what) {
  Cache& k = g_cache[c];
  FZ_CHECK(p != nullptr, "%s from cache %d (%s, size %zu) returned NULL (errno %d)", what, c,
           kmem_cache_name(k.c), k.size, errno);
  FZ_CHECK(aligned_to(p, k.align),
           "%s from cache %d (size %zu flags %#lx) = %p: not aligned on %zu", what, c, k.size,
           k.flags, p, k.align);
  FZ_CHECK(slub_owns(p), "%s = %p: slub_owns says no", what, p);
  if (zeroed)
    verify_zero(p, k.size, what);
  else if (k.ctor)
    verify(p, k.size, ctor_tag(c), k.size, "object not in its constructed state");
}

void install(int s, void* p, int c, size_t len, size_t align) {
  g_ranges.add(p, len, c >= 0 ? "kmem_cache_alloc" : "malloc");
  Obj& o = g_obj[s];
  o = Obj{p, c, len, next_tag()};
  fill(p, len, o.tag);
  g_live += cost(len, align, c >= 0 && g_cache[c].debug);
  if (c >= 0) trace("  slot %d = %p (cache %d)", s, p, c);
}

size_t obj_align(const Obj& o) {
  return o.cache >= 0 ? g_cache[o.cache].align : 0;
}

void forget(int s) {
  Obj& o = g_obj[s];
  g_ranges.remove(o.p);
  g_live -= cost(o.len, obj_align(o), o.cache >= 0 && g_cache[o.cache].debug);
  o = Obj{};
}

// Frees slot s here: back to its constructed state first if its cache has a constructor.
void free_local(int s) {
  Obj& o = g_obj[s];
  if (o.p == nullptr) return;
  verify(o.p, o.len, o.tag, o.len, "free");
  trace("free slot %d %p (cache %d)", s, o.p, o.cache);
  if (o.cache < 0) {
    slub_free(o.p);
  } else {
    Cache& k = g_cache[o.cache];
    if (k.ctor) kCtors[o.cache](o.p);
    kmem_cache_free(k.c, o.p);
  }
  forget(s);
}

void remote_free_task(Task& t) {
  verify(t.p, t.len, t.tag, t.len, "remote free");
  if (t.ctx == nullptr) {
    slub_free(t.p);
    return;
  }
  if (t.how >= 0) kCtors[t.how](t.p);
  kmem_cache_free(static_cast<kmem_cache*>(t.ctx), t.p);
}

void free_remote(int s) {
  Obj& o = g_obj[s];
  if (o.p == nullptr) return;
  trace("remote free slot %d %p (cache %d)", s, o.p, o.cache);
  Task t;
  t.fn = remote_free_task;
  t.p = o.p;
  t.len = o.len;
  t.tag = o.tag;
  t.ctx = o.cache >= 0 ? g_cache[o.cache].c : nullptr;
  t.how = o.cache >= 0 && g_cache[o.cache].ctor ? o.cache : -1;
  g_remote.submit(t);
  forget(s);
}

void do_alloc(int c, int s, bool zero) {
  Cache& k = g_cache[c];
  if (k.c == nullptr) return;
  free_local(s);
  if (!room_for(k.size, k.align, k.debug)) return;
  trace("%s(cache %d) -> slot %d", zero ? "zalloc" : "alloc", c, s);
  void* p = zero ? kmem_cache_zalloc(k.c) : kmem_cache_alloc(k.c);
  check_cache_object(c, p, zero, zero ? "kmem_cache_zalloc" : "kmem_cache_alloc");
  install(s, p, c, k.size, k.align);
}

void remote_alloc_task(Task& t) {
  auto* c = static_cast<kmem_cache*>(t.ctx);
  *t.out = t.how ? kmem_cache_zalloc(c) : kmem_cache_alloc(c);
}

void do_remote_alloc(int c, int s, bool zero) {
  Cache& k = g_cache[c];
  if (k.c == nullptr) return;
  free_local(s);
  if (!room_for(k.size, k.align, k.debug)) return;
  trace("remote %s(cache %d) -> slot %d", zero ? "zalloc" : "alloc", c, s);
  void* p = nullptr;
  Task t;
  t.fn = remote_alloc_task;
  t.ctx = k.c;
  t.how = zero;
  t.out = &p;
  g_remote.run(t);
  check_cache_object(c, p, zero, "remote kmem_cache_alloc");
  install(s, p, c, k.size, k.align);
}

void do_touch(int s) {
  Obj& o = g_obj[s];
  if (o.p == nullptr) return;
  verify(o.p, o.len, o.tag, o.len, "touch");
  FZ_CHECK(slub_owns(o.p), "slub_owns(%p) is false for a live object", o.p);
  o.tag = next_tag();
  fill(o.p, o.len, o.tag);
}

// ---- caches ----

void free_objects_of(int c) {
  for (int s = 0; s < kSlots; ++s)
    if (g_obj[s].p != nullptr && g_obj[s].cache == c) free_local(s);
}

void destroy(int c) {
  Cache& k = g_cache[c];
  if (k.c == nullptr) return;
  free_objects_of(c);
  g_remote.drain();  // its objects handed to the remote thread are freed too
  trace("destroy cache %d (%s)", c, kmem_cache_name(k.c));
  int r = kmem_cache_destroy(k.c);
  FZ_CHECK(r == 0, "kmem_cache_destroy(cache %d) = %d (errno %d) with every object freed", c, r,
           errno);
  k = Cache{};
}

// create: cache slot, size, align byte, flags byte, extra byte.
//   flags bits: 0 HWCACHE_ALIGN, 1 RED_ZONE, 2 POISON, 3 CONSISTENCY_CHECKS, 4 STORE_USER,
//               5 NO_MERGE, 6 RECLAIM_ACCOUNT, 7 ACCOUNT
//   extra bits: 0 constructor, 1-3 all set: TYPESAFE_BY_RCU, 4 CACHE_DMA32,
//               6-7 both set: invalid arguments instead (EINVAL expected)
void do_create(Reader& in, int c) {
  size_t size = decode_obj_size(in);
  size_t align = decode_obj_align(in.u8());
  uint8_t fb = in.u8(), extra = in.u8();
  destroy(c);
  static const unsigned long kFlagBits[8] = {
      SLAB_HWCACHE_ALIGN, SLAB_RED_ZONE, SLAB_POISON,          SLAB_CONSISTENCY_CHECKS,
      SLAB_STORE_USER,    SLAB_NO_MERGE, SLAB_RECLAIM_ACCOUNT, SLAB_ACCOUNT};
  unsigned long flags = 0;
  for (int i = 0; i < 8; ++i)
    if (fb & (1u << i)) flags |= kFlagBits[i];
  if ((extra & 0x0E) == 0x0E) flags |= SLAB_TYPESAFE_BY_RCU;
  if (extra & 0x10) flags |= SLAB_CACHE_DMA32;
  const bool ctor = extra & 1;
  char name[48];
  snprintf(name, sizeof name, "fuzz-%d-%lu", c, ++g_name_counter);

  if ((extra & 0xC0) == 0xC0) {  // invalid: size 0, size over 1 MiB, or a bad alignment
    size_t bad_size = size, bad_align = align;
    switch (extra & 0x30) {
      case 0x00:
        bad_size = 0;
        break;
      case 0x10:
        bad_size = kMaxObject + 1 + size;
        break;
      case 0x20:
        bad_align = 3 * (align ? align : 8);
        break;
      default:
        bad_align = kMaxObject << 1;
        break;
    }
    errno = 0;
    kmem_cache* bad = kmem_cache_create(name, bad_size, bad_align, flags, nullptr);
    FZ_CHECK(bad == nullptr && errno == EINVAL, "kmem_cache_create(%zu, align %zu) = %p errno %d",
             bad_size, bad_align, static_cast<void*>(bad), errno);
    return;
  }

  g_ctor_size[c] = size;
  trace("create cache %d: %s size %zu align %zu flags %#lx%s", c, name, size, align, flags,
        ctor ? " ctor" : "");
  errno = 0;
  kmem_cache* kc = kmem_cache_create(name, size, align, flags, ctor ? kCtors[c] : nullptr);
  if (kc == nullptr) {
    // Allowed: metadata and alignment push the slot past 1 MiB; liburcu missing (ENOSYS).
    const size_t a = align > 64 ? align : 64;
    const bool too_big = size + 2 * a + 256 > kMaxObject;
    FZ_CHECK(too_big || ((flags & SLAB_TYPESAFE_BY_RCU) && errno == ENOSYS),
             "kmem_cache_create(%s, %zu, align %zu, flags %#lx) failed: errno %d", name, size,
             align, flags, errno);
    return;
  }
  FZ_CHECK(kmem_cache_size(kc) >= size, "kmem_cache_size(%s) = %zu < %zu", name,
           kmem_cache_size(kc), size);
  FZ_CHECK(kmem_cache_slot_size(kc) >= kmem_cache_size(kc), "slot size %zu < object size %zu",
           kmem_cache_slot_size(kc), kmem_cache_size(kc));
  Cache& k = g_cache[c];
  k.c = kc;
  k.size = size;
  k.align = expected_align(flags, align, size);
  k.flags = flags;
  k.ctor = ctor;
  k.debug = (flags & SLAB_DEBUG_FLAGS) != 0;
  trace("  -> %p (%s)", static_cast<void*>(kc), kmem_cache_name(kc));
}

// Objects held (here) in caches that are the same kmem_cache as cache slot c (aliases).
size_t held_in(int c) {
  size_t n = 0;
  for (int s = 0; s < kSlots; ++s) {
    const Obj& o = g_obj[s];
    if (o.p != nullptr && o.cache >= 0 && g_cache[o.cache].c == g_cache[c].c) ++n;
  }
  return n;
}

void do_info(int c) {
  Cache& k = g_cache[c];
  if (k.c == nullptr) return;
  g_remote.drain();  // counts are exact only while nothing else frees
  kmem_cache_info info;
  FZ_CHECK(kmem_cache_get_info(k.c, &info) == 0, "kmem_cache_get_info failed");
  size_t held = held_in(c);
  trace(
      "info cache %d: objsize %zu slot %zu order %u objs/slab %u active %zu total %zu slabs %zu "
      "partial %zu cpu %zu aliases %d held %zu",
      c, info.object_size, info.slot_size, info.order, info.objs_per_slab, info.active_objs,
      info.total_objs, info.nr_slabs, info.nr_partial, info.nr_cpu_slabs, info.aliases, held);
  FZ_CHECK(info.object_size >= k.size && info.slot_size >= info.object_size,
           "cache %d: object size %zu slot size %zu for %zu", c, info.object_size, info.slot_size,
           k.size);
  FZ_CHECK(info.active_objs >= held, "cache %d (%s): active_objs %zu < %zu objects held", c,
           info.name, info.active_objs, held);
  FZ_CHECK(info.total_objs >= info.active_objs, "cache %d: total_objs %zu < active_objs %zu", c,
           info.total_objs, info.active_objs);
  FZ_CHECK(info.total_objs <= info.nr_slabs * info.objs_per_slab,
           "cache %d: total_objs %zu > %zu slabs x %u", c, info.total_objs, info.nr_slabs,
           info.objs_per_slab);
  FZ_CHECK(info.objs_per_slab >= 1 &&
               size_t{info.objs_per_slab} * info.slot_size <= (size_t{4096} << info.order),
           "cache %d: %u objects of %zu bytes in an order-%u slab", c, info.objs_per_slab,
           info.slot_size, info.order);
}

void do_validate(int c) {
  Cache& k = g_cache[c];
  if (k.c == nullptr) return;
  if (!k.debug) g_remote.drain();  // validation is exact for others only while nothing frees
  trace("validate cache %d", c);
  int r = kmem_cache_validate(k.c);
  FZ_CHECK(r == 0, "kmem_cache_validate(cache %d, %s, flags %#lx) = %d", c, kmem_cache_name(k.c),
           k.flags, r);
}

void do_shrink(int c) {
  Cache& k = g_cache[c];
  if (k.c == nullptr) return;
  trace("shrink cache %d", c);
  int r = kmem_cache_shrink(k.c);
  FZ_CHECK(r >= 0, "kmem_cache_shrink = %d", r);
}

// kmem_cache_destroy of a cache that still has objects: -1/EBUSY, and the cache stays whole.
void do_destroy_busy(int c) {
  Cache& k = g_cache[c];
  if (k.c == nullptr) return;
  g_remote.drain();
  kmem_cache_info info;
  kmem_cache_get_info(k.c, &info);
  if (info.aliases != 0 || held_in(c) == 0) return;  // an alias just drops a reference
  trace("destroy busy cache %d", c);
  errno = 0;
  int r = quietly([&] { return kmem_cache_destroy(k.c); });
  FZ_CHECK(r == -1 && errno == EBUSY, "kmem_cache_destroy with %zu objects held = %d errno %d",
           held_in(c), r, errno);
  for (int s = 0; s < kSlots; ++s)
    if (g_obj[s].p != nullptr && g_obj[s].cache == c)
      verify(g_obj[s].p, g_obj[s].len, g_obj[s].tag, g_obj[s].len, "after a refused destroy");
  void* p = kmem_cache_alloc(k.c);
  check_cache_object(c, p, false, "alloc after a refused destroy");
  if (k.ctor) kCtors[c](p);
  kmem_cache_free(k.c, p);
}

void do_malloc_block(int s, Reader& in) {
  uint16_t v = in.u16();
  size_t len = (v & 0x8000) ? 32768 + static_cast<size_t>(v & 0x7FFF) * 8 : v % 4097;
  free_local(s);
  if (!room_for(len, 0)) return;
  void* p = slub_malloc(len);
  FZ_CHECK(p != nullptr, "slub_malloc(%zu) = NULL", len);
  trace("malloc(%zu) -> slot %d = %p", len, s, p);
  install(s, p, -1, len, 0);
}

int decode_vcpu(uint8_t v) {
  static const int kVcpus[] = {0, 1, 2, 3, -1, 4095, 0, 2};
  return kVcpus[v % 8];
}

void end_of_input() {
  g_remote.drain();
  for (int s = 0; s < kSlots; ++s) free_local(s);
  g_remote.drain();
  for (int c = 0; c < kCaches; ++c) {
    if (g_cache[c].c != nullptr && g_cache[c].debug) do_validate(c);
    destroy(c);
  }
  check_input_clean(g_live, g_ranges.size());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  common_init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  begin_input(data, size);
  Reader in(data, size);
  g_name_counter = 0;
  constexpr int kOps = 16;
  while (in.more()) {
    ++g_op_index;
    uint8_t op = in.u8() % kOps;
    uint8_t a = in.u8();
    int c = a % kCaches;  // for cache operations
    int s = a;            // for slot operations
    switch (op) {
      case 0:  // create: cache, size, align, flags, extra (see do_create)
        do_create(in, c);
        break;
      case 1:  // alloc: cache, slot
        do_alloc(c, in.u8(), false);
        break;
      case 2:  // zalloc: cache, slot
        do_alloc(c, in.u8(), true);
        break;
      case 3:  // free: slot
        free_local(s);
        break;
      case 4:  // remote free: slot
        free_remote(s);
        break;
      case 5: {  // burst of allocs: cache, first slot, count (1..64)
        int first = in.u8(), k = 1 + in.u8() % 64;
        for (int i = 0; i < k; ++i) do_alloc(c, (first + i) % kSlots, false);
        break;
      }
      case 6: {  // free a range: first slot, count (1..64), mode (0 fwd 1 rev 2 remote 3 mixed)
        int k = 1 + in.u8() % 64;
        uint8_t mode = in.u8() % 4;
        for (int i = 0; i < k; ++i) {
          int slot = mode == 1 ? (s + k - 1 - i) % kSlots : (s + i) % kSlots;
          if (mode == 2 || (mode == 3 && (i & 1)))
            free_remote(slot);
          else
            free_local(slot);
        }
        break;
      }
      case 7:  // shrink: cache
        do_shrink(c);
        break;
      case 8:  // validate: cache
        do_validate(c);
        break;
      case 9:  // destroy: cache (its objects are freed first)
        destroy(c);
        break;
      case 10:  // info: cache
        do_info(c);
        break;
      case 11: {  // virtual CPU: the byte picks it; bit 3 also runs a flusher pass
        int v = decode_vcpu(a);
        trace("bind vcpu %d%s", v, (a & 8) ? " + flush_idle" : "");
        FZ_CHECK(slub_bind_vcpu(v) == 0, "slub_bind_vcpu(%d) failed", v);
        if (a & 8) slub_flush_idle();
        break;
      }
      case 12:  // touch: slot
        do_touch(s);
        break;
      case 13: {  // remote alloc: cache, slot, zero
        int slot = in.u8();
        do_remote_alloc(c, slot, in.u8() & 1);
        break;
      }
      case 14:  // destroy while objects are held: cache
        do_destroy_busy(c);
        break;
      default:  // slub_malloc block: slot, 16-bit size code
        do_malloc_block(s, in);
        break;
    }
  }
  end_of_input();
  return 0;
}
