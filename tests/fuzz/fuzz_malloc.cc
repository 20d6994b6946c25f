// SPDX-License-Identifier: MIT
// libFuzzer target: the prefixed malloc family against a shadow model.
//
// The input is a program: one opcode byte (taken modulo kOps) and its operand bytes, until the
// input ends. Operations act on a table of 256 slots; a slot holds one live block and its
// shadow (requested size, filled length = usable size, alignment, pattern tag). Every block is
// filled with its pattern up to its usable size when it is made and checked whole before it is
// freed or reallocated (realloc: the old contents up to min(old usable, new size) must be in
// the new block); calloc memory must read zero; pointers must have the alignment asked for;
// usable size >= requested. Some frees are done by the remote thread (bound to vCPU 1) and
// the fuzzing thread moves between virtual CPUs, so remote frees and shared CPU slots run.
// At the end of each input the remote thread is drained and every block freed.
//
// fuzz_malloc_debug is the same program with SLUB_DEBUG=FZPU (every kmalloc cache in debug
// mode: red zones, poison, consistency checks, owner tracking); SLUB_DEBUG_ABORT=1 turns any
// report into a crash, and slub_debug_errors() must not move.
//
// Operand encodings are in the comments of the operations below; tests/fuzz/make_seeds.py
// writes the seed corpus with the same numbers.
#include <cerrno>

#include "fuzz_common.h"

using namespace fz;

namespace {

constexpr int kSlots = 256;
constexpr size_t kMaxLive = 256u << 20;  // bytes held at once
constexpr size_t kMiB = 1u << 20;

struct Block {
  void* p = nullptr;
  size_t req = 0;    // bytes asked for
  size_t len = 0;    // bytes filled: the usable size when it was made
  size_t align = 0;  // alignment it must have
  uint64_t tag = 0;
  bool from_aligned_alloc = false;  // free_aligned_sized is allowed
};

Block g_slot[kSlots];
size_t g_live = 0;

size_t cost(size_t req, size_t align) {
  return req + align + 16;
}

// The alignment plain malloc gives: 8 for the kmalloc-8 class, 16 above.
size_t default_align(size_t req) {
  return req <= 8 ? 8 : 16;
}

// Sizes: the top 3 bits of the first byte pick a range, a 16-bit value the size in it.
//   0,1: 0..64   2: 0..512   3: 0..4096   4: 0..32 KiB   5: 32 KiB..1 MiB (large runs)
//   6: 1..5 MiB (huge mappings)   7: a size-class boundary, -1/0/+1
size_t decode_size(Reader& in) {
  static const size_t kEdges[] = {
      8,    16,    32,    48,    64,    80,     96,     112,    128,     160,     192,
      224,  256,   320,   384,   448,   512,    640,    768,    1024,    2048,    4096,
      8192, 16384, 24576, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 1048576 + 4096};
  uint8_t b = in.u8();
  uint32_t v = in.u16();
  switch (b >> 5) {
    case 0:
    case 1:
      return v % 65;
    case 2:
      return v % 513;
    case 3:
      return v % 4097;
    case 4:
      return v % 32769;
    case 5:
      return 32768 + (static_cast<size_t>(v) * 16) % (kMiB - 32768 + 1);
    case 6:
      return kMiB + static_cast<size_t>(v) * 64;
    default: {
      size_t e = kEdges[(b & 31) % (sizeof kEdges / sizeof kEdges[0])];
      return e + (v % 3) - 1;
    }
  }
}

// Alignments: 2^(byte % 23), 1 byte .. 4 MiB.
size_t decode_align(Reader& in) {
  return size_t{1} << (in.u8() % 23);
}

// ---- shadow bookkeeping ----

void verify_slot(int s, const char* what) {
  Block& b = g_slot[s];
  verify(b.p, b.len, b.tag, b.len, what);
}

// Records a new block in slot s (empty) after checking it.
void install(int s, void* p, size_t req, size_t align, bool zeroed, bool from_aligned,
             const char* what) {
  FZ_CHECK(p != nullptr, "%s(%zu, align %zu) returned NULL (errno %d)", what, req, align, errno);
  FZ_CHECK(aligned_to(p, align), "%s(%zu) = %p: not aligned on %zu", what, req, p, align);
  size_t usable = slub_malloc_usable_size(p);
  FZ_CHECK(usable >= req, "%s(%zu) = %p: usable size %zu < requested", what, req, p, usable);
  FZ_CHECK(slub_owns(p), "%s(%zu) = %p: slub_owns says no", what, req, p);
  // calloc: the whole usable size reads zero (the allocator promises it, as glibc does).
  if (zeroed) verify_zero(p, usable, what);
  g_ranges.add(p, usable, what);
  Block& b = g_slot[s];
  b = Block{p, req, usable, align, next_tag(), from_aligned};
  fill(p, usable, b.tag);
  g_live += cost(req, align);
  trace("  slot %d = %p req %zu usable %zu align %zu", s, p, req, usable, align);
}

void forget(int s) {
  Block& b = g_slot[s];
  g_ranges.remove(b.p);
  g_live -= cost(b.req, b.align);
  b = Block{};
}

// Frees slot s here; how: 0 free, 1 free_sized, 2 free_aligned_sized (free_sized if the
// block did not come from aligned_alloc).
void free_local(int s, int how) {
  Block& b = g_slot[s];
  if (b.p == nullptr) return;
  verify_slot(s, "free");
  trace("free slot %d %p how %d", s, b.p, how);
  if (how == 2 && b.from_aligned_alloc)
    slub_free_aligned_sized(b.p, b.align, b.req);
  else if (how != 0)
    slub_free_sized(b.p, b.req);
  else
    slub_free(b.p);
  forget(s);
}

void remote_free_task(Task& t) {
  verify(t.p, t.len, t.tag, t.len, "remote free");
  if (t.how == 1)
    slub_free_sized(t.p, t.req);
  else
    slub_free(t.p);
}

void free_remote(int s, int how) {
  Block& b = g_slot[s];
  if (b.p == nullptr) return;
  trace("remote free slot %d %p", s, b.p);
  Task t;
  t.fn = remote_free_task;
  t.p = b.p;
  t.len = b.len;
  t.req = b.req;
  t.tag = b.tag;
  t.how = how & 1;
  g_remote.submit(t);
  forget(s);
}

void remote_alloc_task(Task& t) {
  *t.out = t.how ? slub_calloc(1, t.req) : slub_malloc(t.req);
}

bool room_for(size_t req, size_t align) {
  return g_live + cost(req, align) <= kMaxLive;
}

// Makes slot s empty.
void vacate(int s) {
  free_local(s, 0);
}

void do_malloc(int s, size_t req) {
  vacate(s);
  if (!room_for(req, 0)) return;
  trace("malloc(%zu) -> slot %d", req, s);
  install(s, slub_malloc(req), req, default_align(req), false, false, "malloc");
}

void do_calloc(Reader& in, int s) {
  uint8_t mode = in.u8();
  size_t n = mode % 17;
  size_t size = decode_size(in);
  vacate(s);
  if (mode & 0x80) {  // overflowing product: NULL, ENOMEM
    size_t big = (SIZE_MAX / 2) + 1 + (n << 4);
    errno = 0;
    void* p = slub_calloc(big, 2 + n);
    FZ_CHECK(p == nullptr && errno == ENOMEM, "calloc(%zu, %zu) overflow: %p errno %d", big, 2 + n,
             p, errno);
    errno = 0;
    p = slub_malloc(SIZE_MAX - n);  // beyond PTRDIFF_MAX: NULL, ENOMEM
    FZ_CHECK(p == nullptr && errno == ENOMEM, "malloc(SIZE_MAX - %zu): %p errno %d", n, p, errno);
    errno = 0;
    p = slub_aligned_alloc(size_t{64} << (n % 8), SIZE_MAX / 2 + n);
    FZ_CHECK(p == nullptr && errno == ENOMEM, "aligned_alloc(huge): %p errno %d", p, errno);
    return;
  }
  if (n != 0 && size > (64u << 20) / n) size = (64u << 20) / n;
  size_t total = n * size;
  if (!room_for(total, 0)) return;
  trace("calloc(%zu, %zu) -> slot %d", n, size, s);
  install(s, slub_calloc(n, size), total, default_align(total), true, false, "calloc");
}

// posix_memalign(align, size); a set top bit of the mode byte asks with an invalid alignment
// (not a power of two, or below sizeof(void*)): EINVAL, *out untouched.
void do_posix_memalign(Reader& in, int s) {
  uint8_t mode = in.u8();
  size_t align = decode_align(in);
  size_t req = decode_size(in);
  vacate(s);
  void* sentinel = reinterpret_cast<void*>(uintptr_t{0x5A5A5A5A});
  void* out = sentinel;
  if (mode & 0x80) {
    size_t bad = (mode & 1) ? (align < 8 ? align : 4) : align * 3 + 8;
    if (is_pow2(bad) && bad >= sizeof(void*)) bad = 24;
    int r = slub_posix_memalign(&out, bad, req);
    FZ_CHECK(r == EINVAL && out == sentinel, "posix_memalign(align %zu): %d, out %p", bad, r, out);
    return;
  }
  if (align < sizeof(void*)) align = sizeof(void*);
  if (!room_for(req, align)) return;
  trace("posix_memalign(%zu, %zu) -> slot %d", align, req, s);
  int r = slub_posix_memalign(&out, align, req);
  FZ_CHECK(r == 0, "posix_memalign(%zu, %zu) = %d", align, req, r);
  size_t want = align > default_align(req) ? align : default_align(req);
  install(s, out, req, want, false, false, "posix_memalign");
}

void do_aligned_alloc(Reader& in, int s) {
  uint8_t mode = in.u8();
  size_t align = decode_align(in);
  size_t req = decode_size(in);
  vacate(s);
  if (mode & 0x80) {  // not a power of two: NULL, EINVAL
    size_t bad = align * 3;
    errno = 0;
    void* p = slub_aligned_alloc(bad, req);
    FZ_CHECK(p == nullptr && errno == EINVAL, "aligned_alloc(%zu): %p errno %d", bad, p, errno);
    return;
  }
  if (!room_for(req, align)) return;
  trace("aligned_alloc(%zu, %zu) -> slot %d", align, req, s);
  size_t want = align > default_align(req) ? align : default_align(req);
  install(s, slub_aligned_alloc(align, req), req, want, false, true, "aligned_alloc");
}

// memalign (alignment rounded up to a power of two, as glibc), valloc, pvalloc.
void do_memalign_family(Reader& in, int s) {
  uint8_t mode = in.u8();
  size_t align = decode_align(in);
  size_t req = decode_size(in);
  vacate(s);
  switch (mode % 3) {
    case 0: {
      size_t ask = (mode & 0x80) && align > 2 ? align - align / 4 : align;  // not a power of 2
      if (!room_for(req, align)) return;
      trace("memalign(%zu, %zu) -> slot %d", ask, req, s);
      size_t want = align > default_align(req) ? align : default_align(req);
      install(s, slub_memalign(ask, req), req, want, false, false, "memalign");
      break;
    }
    case 1:
      if (!room_for(req, kPage)) return;
      trace("valloc(%zu) -> slot %d", req, s);
      install(s, slub_valloc(req), req, kPage, false, false, "valloc");
      break;
    default: {
      size_t rounded = ((req == 0 ? 1 : req) + kPage - 1) & ~(kPage - 1);
      if (!room_for(rounded, kPage)) return;
      trace("pvalloc(%zu) -> slot %d", req, s);
      install(s, slub_pvalloc(req), rounded, kPage, false, false, "pvalloc");
      break;
    }
  }
}

// realloc(slot, total) or reallocarray(slot, nmemb, total / nmemb); 0 frees (NULL back), an
// empty slot is malloc. The old contents up to min(old usable size, new size) must survive.
void do_realloc(int s, size_t req, size_t nmemb) {
  Block& b = g_slot[s];
  const bool array = nmemb != 0;
  const size_t elem = array ? req / nmemb : req;
  const size_t total = array ? elem * nmemb : req;
  auto call = [&](void* p) {
    return array ? slub_reallocarray(p, nmemb, elem) : slub_realloc(p, total);
  };
  if (b.p == nullptr) {
    if (!room_for(total, 0)) return;
    trace("realloc(NULL, %zu) -> slot %d", total, s);
    install(s, call(nullptr), total, default_align(total), false, false, "realloc(NULL)");
    return;
  }
  verify_slot(s, "realloc (before)");
  if (total == 0) {
    trace("realloc(slot %d %p, 0)", s, b.p);
    void* q = call(b.p);
    FZ_CHECK(q == nullptr, "realloc(%p, 0) = %p, expected the block freed and NULL", b.p, q);
    forget(s);
    return;
  }
  if (g_live - cost(b.req, b.align) + cost(total, 0) > kMaxLive) return;
  trace("realloc(slot %d %p [%zu], %zu)", s, b.p, b.len, total);
  void* q = call(b.p);
  FZ_CHECK(q != nullptr, "realloc(%p, %zu) = NULL (errno %d)", b.p, total, errno);
  const size_t old_len = b.len, keep = b.len < total ? b.len : total;
  verify(q, old_len, b.tag, keep, "realloc (contents kept)");
  forget(s);
  install(s, q, total, default_align(total), false, false, "realloc");
}

// reallocarray with an overflowing product: NULL, ENOMEM, the block untouched.
void do_reallocarray_overflow(int s) {
  Block& b = g_slot[s];
  if (b.p == nullptr) return;
  errno = 0;
  void* q = slub_reallocarray(b.p, SIZE_MAX / 4, 8);
  FZ_CHECK(q == nullptr && errno == ENOMEM, "reallocarray overflow: %p errno %d", q, errno);
  verify_slot(s, "reallocarray overflow (block untouched)");
}

// Checks the block, its usable size (it may not shrink), and fills it with a new tag.
void do_touch(int s) {
  Block& b = g_slot[s];
  if (b.p == nullptr) return;
  verify_slot(s, "touch");
  size_t usable = slub_malloc_usable_size(b.p);
  FZ_CHECK(usable == b.len, "usable size of %p changed: %zu, was %zu", b.p, usable, b.len);
  FZ_CHECK(slub_owns(b.p), "slub_owns(%p) is false for a live block", b.p);
  b.tag = next_tag();
  fill(b.p, b.len, b.tag);
}

int decode_vcpu(uint8_t v) {
  static const int kVcpus[] = {0, 1, 2, 3, -1, 4095, 0, 2};
  return kVcpus[v % 8];
}

void end_of_input() {
  g_remote.drain();
  for (int s = 0; s < kSlots; ++s) free_local(s, 0);
  check_input_clean(g_live, g_ranges.size());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
#ifdef FZ_DEBUG_MODE
  setenv("SLUB_DEBUG", "FZPU", 0);
#endif
  common_init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  begin_input(data, size);
  Reader in(data, size);
  constexpr int kOps = 16;
  while (in.more()) {
    ++g_op_index;
    uint8_t op = in.u8() % kOps;
    int s = in.u8();
    switch (op) {
      case 0:  // malloc: slot, size
      case 1:
        do_malloc(s, decode_size(in));
        break;
      case 2:  // calloc: slot, mode (n = mode%17, bit 7 overflow), size
        do_calloc(in, s);
        break;
      case 3:  // posix_memalign: slot, mode (bit 7 invalid align), align, size
        do_posix_memalign(in, s);
        break;
      case 4:  // aligned_alloc: slot, mode (bit 7 invalid align), align, size
        do_aligned_alloc(in, s);
        break;
      case 5:  // memalign/valloc/pvalloc: slot, mode, align, size
        do_memalign_family(in, s);
        break;
      case 6: {  // realloc: slot, size (a size byte 0x00 0x00 0x00 is realloc(p, 0) -> free)
        size_t req = decode_size(in);
        do_realloc(s, req, 0);
        break;
      }
      case 7: {  // reallocarray: slot, nmemb, size; nmemb 255: overflow
        uint8_t n = in.u8();
        size_t req = decode_size(in);
        if (n == 255)
          do_reallocarray_overflow(s);
        else
          do_realloc(s, req, 1 + n % 15);
        break;
      }
      case 8:  // free: slot, how (0 free, 1 free_sized, 2 free_aligned_sized)
      case 9:
        free_local(s, in.u8() % 3);
        break;
      case 10:  // remote free: slot, how (bit 0: free_sized)
        free_remote(s, in.u8());
        break;
      case 11: {  // remote malloc/calloc into a slot: slot, mode (bit 0 calloc), size
        uint8_t mode = in.u8();
        size_t req = decode_size(in);
        vacate(s);
        if (!room_for(req, 0)) break;
        void* p = nullptr;
        Task t;
        t.fn = remote_alloc_task;
        t.req = req;
        t.how = mode & 1;
        t.out = &p;
        trace("remote %s(%zu) -> slot %d", t.how ? "calloc" : "malloc", req, s);
        g_remote.run(t);
        install(s, p, req, default_align(req), t.how != 0, false, "remote malloc");
        break;
      }
      case 12:  // touch: slot (check, usable size, refill)
        do_touch(s);
        break;
      case 13: {  // virtual CPU: the slot byte picks it; bit 3 also runs a flusher pass
        int v = decode_vcpu(static_cast<uint8_t>(s));
        trace("bind vcpu %d%s", v, (s & 8) ? " + flush_idle" : "");
        FZ_CHECK(slub_bind_vcpu(v) == 0, "slub_bind_vcpu(%d) failed", v);
        if (s & 8) slub_flush_idle();
        break;
      }
      case 14: {  // burst of mallocs: first slot, count (1..32), size
        int k = 1 + in.u8() % 32;
        size_t req = decode_size(in);
        for (int i = 0; i < k; ++i) do_malloc((s + i) % kSlots, req);
        break;
      }
      default: {  // free a range: first slot, count (1..64), mode (0 forward 1 reverse 2 remote
                  // 3 alternate local/remote)
        int k = 1 + in.u8() % 64;
        uint8_t mode = in.u8() % 4;
        for (int i = 0; i < k; ++i) {
          int slot = mode == 1 ? (s + k - 1 - i) % kSlots : (s + i) % kSlots;
          if (mode == 2 || (mode == 3 && (i & 1)))
            free_remote(slot, i);
          else
            free_local(slot, i % 3);
        }
        break;
      }
    }
  }
  end_of_input();
  return 0;
}
