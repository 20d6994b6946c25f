// SPDX-License-Identifier: MIT
// Functional tests of the prefixed malloc family (slub_malloc, ...) through the public C API,
// checked against what a user of glibc or jemalloc expects: alignment, realloc contents, calloc
// zeroing, overflow and bad-argument errors, usable size, ownership and foreign pointers.
#include <slub/slub.h>

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "func_util.h"

using namespace slub_func;

namespace {

constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;

size_t page_size() {
  return static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// The alignment C requires for a block of `size` bytes: that of the strictest fundamental type
// that fits (16 bytes on x86-64 for 16 and up, 8 for 8..15, ...).
size_t required_align(size_t size) {
  if (size >= alignof(max_align_t)) return alignof(max_align_t);
  size_t a = 1;
  while (a * 2 <= size) a *= 2;
  return a;
}

// Sizes spread over every range: tiny, each power of two and its neighbours, large, huge.
std::vector<size_t> spread_sizes(size_t max) {
  std::set<size_t> s;
  for (size_t i = 1; i <= 64; ++i) s.insert(i);
  for (size_t p = 64; p <= max; p *= 2) {
    for (size_t d : {p - 1, p, p + 1, p + p / 4, p + p / 2, p + 3 * p / 4}) {
      if (d >= 1 && d <= max) s.insert(d);
    }
  }
  return {s.begin(), s.end()};
}

// Checks one aligned block: non-NULL, aligned, usable >= size, writable over its usable size.
void check_aligned_block(void* p, size_t align, size_t size, const char* fn) {
  ASSERT_NE(p, nullptr) << fn << "(align=" << align << ", size=" << size << ") failed";
  EXPECT_TRUE(is_aligned(p, align))
      << fn << "(align=" << align << ", size=" << size << ") returned " << p;
  size_t usable = slub_malloc_usable_size(p);
  EXPECT_GE(usable, size) << fn << "(align=" << align << ", size=" << size << ")";
  std::memset(p, 0x5c, usable);
  EXPECT_TRUE(all_bytes(p, usable, 0x5c));
  EXPECT_TRUE(slub_owns(p)) << fn << "(align=" << align << ", size=" << size << ")";
}

std::vector<size_t> aligned_sizes(size_t align) {
  std::vector<size_t> v = {1, align - 1, align, align + 1, 3 * align};
  v.erase(std::remove(v.begin(), v.end(), size_t{0}), v.end());
  return v;
}

std::vector<size_t> alignments() {
  std::vector<size_t> v;
  for (size_t a = 8; a <= 4 * MiB; a *= 2) v.push_back(a);
  return v;
}

int g_global_buffer[1024];

}  // namespace

// ---------------------------------------------------------------------------------------------
// Alignment

TEST(MallocAlignment, MallocFollowsCAlignmentRule) {
  for (size_t size : spread_sizes(4 * MiB)) {
    std::vector<void*> blocks;
    for (int i = 0; i < (size < 64 * KiB ? 16 : 2); ++i) {
      void* p = slub_malloc(size);
      ASSERT_NE(p, nullptr) << "size " << size;
      EXPECT_TRUE(is_aligned(p, required_align(size)))
          << "slub_malloc(" << size << ") = " << p << " not aligned to " << required_align(size);
      blocks.push_back(p);
    }
    for (void* p : blocks) slub_free(p);
  }
}

TEST(MallocAlignment, PosixMemalignAllPowersOfTwo) {
  for (size_t align : alignments()) {
    for (size_t size : aligned_sizes(align)) {
      void* p = reinterpret_cast<void*>(0x1);
      int rc = slub_posix_memalign(&p, align, size);
      ASSERT_EQ(rc, 0) << "posix_memalign(align=" << align << ", size=" << size << ")";
      check_aligned_block(p, align, size, "posix_memalign");
      slub_free(p);
    }
  }
}

TEST(MallocAlignment, AlignedAllocAllPowersOfTwo) {
  std::vector<size_t> aligns = {1, 2, 4};
  for (size_t a : alignments()) aligns.push_back(a);
  for (size_t align : aligns) {
    for (size_t size : aligned_sizes(align)) {
      void* p = slub_aligned_alloc(align, size);
      check_aligned_block(p, align, size, "aligned_alloc");
      slub_free(p);
    }
  }
}

TEST(MallocAlignment, MemalignAllPowersOfTwo) {
  std::vector<size_t> aligns = {1, 2, 4};
  for (size_t a : alignments()) aligns.push_back(a);
  for (size_t align : aligns) {
    for (size_t size : aligned_sizes(align)) {
      void* p = slub_memalign(align, size);
      check_aligned_block(p, align, size, "memalign");
      slub_free(p);
    }
  }
}

TEST(MallocAlignment, ManyLiveAlignedBlocksDoNotOverlap) {
  // Many live blocks at once, so that aligned blocks carved out of the same slab are checked.
  for (size_t align : {16ul, 32ul, 64ul, 128ul, 256ul, 4096ul, 65536ul}) {
    for (size_t size : {8ul, 24ul, 100ul, 700ul, 5000ul}) {
      std::vector<std::pair<void*, size_t>> v;
      for (int i = 0; i < 64; ++i) {
        void* p = slub_aligned_alloc(align, size);
        ASSERT_NE(p, nullptr);
        ASSERT_TRUE(is_aligned(p, align)) << "align " << align << " size " << size;
        fill_block(p, size, align * 131 + i);
        v.emplace_back(p, size);
      }
      for (int i = 0; i < 64; ++i)
        EXPECT_TRUE(verify_block(v[i].first, v[i].second, align * 131 + i))
            << "aligned block overwritten: align " << align << " size " << size;
      for (auto& b : v) slub_free(b.first);
    }
  }
}

TEST(MallocAlignment, VallocIsPageAligned) {
  const size_t page = page_size();
  for (size_t size : {1ul, 100ul, page - 1, page, page + 1, 3 * page, 1 * MiB + 5}) {
    void* p = slub_valloc(size);
    check_aligned_block(p, page, size, "valloc");
    slub_free(p);
  }
}

TEST(MallocAlignment, PvallocRoundsUpToAPage) {
  const size_t page = page_size();
  for (size_t size : {1ul, 100ul, page - 1, page, page + 1, 3 * page + 7}) {
    void* p = slub_pvalloc(size);
    size_t rounded = (size + page - 1) / page * page;
    check_aligned_block(p, page, rounded, "pvalloc");
    slub_free(p);
  }
  // glibc's pvalloc(0) gives a page as well.
  void* p = slub_pvalloc(0);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(is_aligned(p, page));
  slub_free(p);
}

TEST(MallocAlignment, PosixMemalignRejectsBadAlignment) {
  for (size_t align : {size_t{0}, size_t{3}, size_t{24}, sizeof(void*) / 2, size_t{1}, size_t{2},
                       size_t{48}, size_t{4096 + 8}}) {
    void* sentinel = reinterpret_cast<void*>(0xdeadbeef);
    void* out = sentinel;
    int rc = slub_posix_memalign(&out, align, 64);
    EXPECT_EQ(rc, EINVAL) << "posix_memalign(align=" << align << ")";
    EXPECT_EQ(out, sentinel) << "posix_memalign(align=" << align << ") wrote *out on failure";
  }
}

TEST(MallocAlignment, AlignedAllocRejectsNonPowerOfTwo) {
  for (size_t align :
       {size_t{0}, size_t{3}, size_t{24}, size_t{48}, size_t{1000}, size_t{3} << 20}) {
    errno = 0;
    void* p = slub_aligned_alloc(align, 64);
    EXPECT_EQ(p, nullptr) << "aligned_alloc(align=" << align << ")";
    EXPECT_EQ(errno, EINVAL) << "aligned_alloc(align=" << align << ")";
    if (p != nullptr) slub_free(p);
  }
}

TEST(MallocAlignment, ReallocOfAlignedBlockKeepsContents) {
  for (size_t align : {64ul, 4096ul, 1 * MiB}) {
    void* p = slub_aligned_alloc(align, 1000);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, 1000, align);
    void* q = slub_realloc(p, 3 * MiB);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(check_pattern(q, 1000, align), 1000u) << "align " << align;
    slub_free(q);
  }
}

// ---------------------------------------------------------------------------------------------
// realloc

namespace {

// Every size from 1 to 64 KiB that sits next to a power of two or on a multiple of 16 (and one
// past it), then geometric steps up to 4 MiB: every size-class boundary is crossed both ways.
std::vector<size_t> realloc_sizes() {
  std::set<size_t> s;
  for (size_t i = 1; i <= 64 * KiB; ++i) {
    bool near_pow2 = false;
    for (int d = -2; d <= 2; ++d) {
      size_t j = i + d;
      if (j != 0 && (j & (j - 1)) == 0) near_pow2 = true;
    }
    if (near_pow2 || i % 16 == 0 || i % 16 == 1) s.insert(i);
  }
  for (double x = 64.0 * KiB; x <= 4.0 * MiB; x *= 1.07) {
    size_t v = static_cast<size_t>(x);
    s.insert(v);
    s.insert(v + 1);
  }
  for (size_t p = 64 * KiB; p <= 4 * MiB; p *= 2) {
    s.insert(p - 1);
    s.insert(p);
    s.insert(p + 1);
  }
  return {s.begin(), s.end()};
}

}  // namespace

TEST(MallocRealloc, KeepsContentsAcrossEverySizeClass) {
  const std::vector<size_t> sizes = realloc_sizes();
  const size_t max = sizes.back();
  // The reference bytes: block contents must always be a prefix of this.
  std::vector<unsigned char> ref(max);
  fill_pattern(ref.data(), max, 0x5eed);

  void* p = slub_malloc(1);
  ASSERT_NE(p, nullptr);
  std::memcpy(p, ref.data(), 1);
  size_t cur = 1;
  // Grow.
  for (size_t n : sizes) {
    if (n == cur) continue;
    void* q = slub_realloc(p, n);
    ASSERT_NE(q, nullptr) << "realloc " << cur << " -> " << n;
    ASSERT_EQ(std::memcmp(q, ref.data(), std::min(cur, n)), 0)
        << "realloc " << cur << " -> " << n << " lost contents";
    ASSERT_GE(slub_malloc_usable_size(q), n);
    if (n > cur) std::memcpy(static_cast<char*>(q) + cur, ref.data() + cur, n - cur);
    p = q;
    cur = n;
  }
  // Shrink back down.
  for (auto it = sizes.rbegin(); it != sizes.rend(); ++it) {
    size_t n = *it;
    if (n == cur) continue;
    void* q = slub_realloc(p, n);
    ASSERT_NE(q, nullptr) << "realloc " << cur << " -> " << n;
    ASSERT_EQ(std::memcmp(q, ref.data(), n), 0)
        << "realloc " << cur << " -> " << n << " lost contents";
    ASSERT_GE(slub_malloc_usable_size(q), n);
    p = q;
    cur = n;
  }
  slub_free(p);
}

TEST(MallocRealloc, KeepsContentsWithNeighboursLive) {
  // Same walk, coarser, with other live blocks of the same sizes around so an in-place grow
  // that runs over a neighbour is caught.
  std::vector<size_t> sizes;
  for (size_t s = 8; s <= 2 * MiB; s = s * 5 / 4 + 1) sizes.push_back(s);
  std::vector<std::pair<void*, size_t>> neighbours;
  void* p = slub_malloc(4);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 4, 77);
  size_t cur = 4;
  for (size_t n : sizes) {
    for (int i = 0; i < 3; ++i) {
      void* nb = slub_malloc(n);
      ASSERT_NE(nb, nullptr);
      fill_block(nb, n, 3);
      neighbours.emplace_back(nb, n);
    }
    void* q = slub_realloc(p, n);
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(check_pattern(q, cur, 77), cur) << "realloc " << cur << " -> " << n;
    fill_pattern(q, n, 77);
    p = q;
    cur = n;
  }
  for (auto& [nb, n] : neighbours) {
    EXPECT_TRUE(verify_block(nb, n, 3)) << "neighbour of size " << n << " overwritten";
    slub_free(nb);
  }
  slub_free(p);
}

TEST(MallocRealloc, NullPointerActsAsMalloc) {
  for (size_t n : {0ul, 1ul, 16ul, 1000ul, 100 * KiB, 3 * MiB}) {
    void* p = slub_realloc(nullptr, n);
    ASSERT_NE(p, nullptr) << "realloc(NULL, " << n << ")";
    EXPECT_GE(slub_malloc_usable_size(p), n);
    EXPECT_TRUE(slub_owns(p));
    std::memset(p, 0x11, n);
    slub_free(p);
  }
}

TEST(MallocRealloc, ZeroSizeFreesOrReturnsUniqueBlock) {
  std::vector<void*> live;
  for (size_t n : {1ul, 64ul, 5000ul, 2 * MiB}) {
    void* p = slub_malloc(n);
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, n);
    void* q = slub_realloc(p, 0);
    if (q != nullptr) {
      // Like malloc(0): a unique, usable, freeable block.
      EXPECT_TRUE(slub_owns(q));
      for (void* o : live) EXPECT_NE(o, q);
      live.push_back(q);
    }
  }
  // The heap is still sound.
  void* a = slub_malloc(64);
  ASSERT_NE(a, nullptr);
  for (void* o : live) EXPECT_NE(o, a);
  slub_free(a);
  for (void* o : live) slub_free(o);
}

TEST(MallocRealloc, ReallocarrayMultipliesAndKeepsContents) {
  void* p = slub_reallocarray(nullptr, 10, 8);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(slub_malloc_usable_size(p), 80u);
  fill_pattern(p, 80, 9);
  void* q = slub_reallocarray(p, 1000, 24);
  ASSERT_NE(q, nullptr);
  EXPECT_GE(slub_malloc_usable_size(q), 24000u);
  EXPECT_EQ(check_pattern(q, 80, 9), 80u);
  slub_free(q);
}

// ---------------------------------------------------------------------------------------------
// calloc

TEST(MallocCalloc, ZeroesReusedDirtyMemory) {
  std::vector<size_t> sizes = spread_sizes(256 * KiB);
  for (int round = 0; round < 3; ++round) {
    // Dirty: allocate many of each size, fill with 0xAB over the usable size, free.
    for (size_t size : sizes) {
      std::vector<void*> v;
      for (int i = 0; i < 8; ++i) {
        void* p = slub_malloc(size);
        ASSERT_NE(p, nullptr);
        std::memset(p, 0xAB, slub_malloc_usable_size(p));
        v.push_back(p);
      }
      for (void* p : v) slub_free(p);
    }
    // calloc the same sizes: the requested bytes are all zero.
    for (size_t size : sizes) {
      std::vector<void*> v;
      for (int i = 0; i < 8; ++i) {
        void* p = slub_calloc(1, size);
        ASSERT_NE(p, nullptr);
        EXPECT_TRUE(all_bytes(p, size, 0)) << "calloc(1, " << size << ") not zeroed";
        std::memset(p, 0xAB, slub_malloc_usable_size(p));  // dirty it for the next round
        v.push_back(p);
      }
      for (void* p : v) slub_free(p);
    }
  }
}

TEST(MallocCalloc, ZeroesWholeUsableSize) {
  // C only promises nmemb * size zero bytes, but glibc and jemalloc zero the whole usable size,
  // and a program may use malloc_usable_size() to grow into the tail of a calloc'd block.
  std::vector<size_t> sizes = spread_sizes(256 * KiB);
  for (int round = 0; round < 2; ++round) {
    for (size_t size : sizes) {
      std::vector<void*> v;
      for (int i = 0; i < 8; ++i) {
        void* p = slub_malloc(size);
        ASSERT_NE(p, nullptr);
        std::memset(p, 0xAB, slub_malloc_usable_size(p));
        v.push_back(p);
      }
      for (void* p : v) slub_free(p);
    }
    for (size_t size : sizes) {
      std::vector<void*> v;
      for (int i = 0; i < 8; ++i) {
        void* p = slub_calloc(1, size);
        ASSERT_NE(p, nullptr);
        size_t usable = slub_malloc_usable_size(p);
        EXPECT_TRUE(all_bytes(p, usable, 0))
            << "calloc(1, " << size << "): tail up to usable size " << usable << " not zeroed";
        v.push_back(p);
      }
      for (void* p : v) slub_free(p);
    }
  }
}

TEST(MallocCalloc, ZeroesLargeBlocks) {
  for (size_t size : {64 * KiB, 1 * MiB, 8 * MiB}) {
    for (int round = 0; round < 3; ++round) {
      void* d = slub_malloc(size);
      ASSERT_NE(d, nullptr);
      std::memset(d, 0xAB, slub_malloc_usable_size(d));
      slub_free(d);
      void* p = slub_calloc(size / 16, 16);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(all_bytes(p, slub_malloc_usable_size(p), 0))
          << "calloc of " << size << " bytes not zeroed (round " << round << ")";
      std::memset(p, 0xAB, size);
      slub_free(p);
    }
  }
}

TEST(MallocCalloc, ZeroElementsGivesFreeableBlock) {
  void* a = slub_calloc(0, 16);
  void* b = slub_calloc(16, 0);
  void* c = slub_calloc(0, SIZE_MAX);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
  slub_free(a);
  slub_free(b);
  slub_free(c);
}

// ---------------------------------------------------------------------------------------------
// Overflow and impossible sizes

TEST(MallocOverflow, ImpossibleSizesFailWithEnomem) {
  struct Case {
    const char* what;
    void* (*fn)();
  };
  const Case cases[] = {
      {"calloc(SIZE_MAX/2, 3)", [] { return slub_calloc(SIZE_MAX / 2, 3); }},
      {"calloc(2^32, 2^32)", [] { return slub_calloc(size_t{1} << 32, size_t{1} << 32); }},
      {"calloc(SIZE_MAX, SIZE_MAX)", [] { return slub_calloc(SIZE_MAX, SIZE_MAX); }},
      {"malloc(SIZE_MAX)", [] { return slub_malloc(SIZE_MAX); }},
      {"malloc(SIZE_MAX - 4095)", [] { return slub_malloc(SIZE_MAX - 4095); }},
      {"malloc(PTRDIFF_MAX + 1)", [] { return slub_malloc(static_cast<size_t>(PTRDIFF_MAX) + 1); }},
      {"malloc(2^50)", [] { return slub_malloc(size_t{1} << 50); }},
      {"realloc(NULL, SIZE_MAX)", [] { return slub_realloc(nullptr, SIZE_MAX); }},
      {"reallocarray(NULL, SIZE_MAX/2, 3)",
       [] { return slub_reallocarray(nullptr, SIZE_MAX / 2, 3); }},
      {"aligned_alloc(64, SIZE_MAX - 10)", [] { return slub_aligned_alloc(64, SIZE_MAX - 10); }},
      {"aligned_alloc(1 MiB, SIZE_MAX - 10)",
       [] { return slub_aligned_alloc(1 << 20, SIZE_MAX - 10); }},
      {"memalign(64, SIZE_MAX - 10)", [] { return slub_memalign(64, SIZE_MAX - 10); }},
      {"memalign(4096, SIZE_MAX - 4096)", [] { return slub_memalign(4096, SIZE_MAX - 4096); }},
      {"valloc(SIZE_MAX)", [] { return slub_valloc(SIZE_MAX); }},
      {"valloc(SIZE_MAX - 100)", [] { return slub_valloc(SIZE_MAX - 100); }},
      {"pvalloc(SIZE_MAX)", [] { return slub_pvalloc(SIZE_MAX); }},
      {"pvalloc(SIZE_MAX - 100)", [] { return slub_pvalloc(SIZE_MAX - 100); }},
  };
  for (const Case& c : cases) {
    errno = 0;
    void* p = c.fn();
    EXPECT_EQ(p, nullptr) << c.what << " returned a block";
    EXPECT_EQ(errno, ENOMEM) << c.what << " errno";
    if (p != nullptr) slub_free(p);
  }
  // The allocator still works afterwards.
  void* p = slub_malloc(100);
  ASSERT_NE(p, nullptr);
  slub_free(p);
}

TEST(MallocOverflow, PosixMemalignHugeReturnsEnomem) {
  for (size_t align : {8ul, 64ul, 4096ul, 1 * MiB}) {
    for (size_t size : {SIZE_MAX, SIZE_MAX - 10, SIZE_MAX - align, SIZE_MAX / 2 + 1}) {
      void* sentinel = reinterpret_cast<void*>(0xfeed);
      void* out = sentinel;
      int rc = slub_posix_memalign(&out, align, size);
      EXPECT_EQ(rc, ENOMEM) << "posix_memalign(" << align << ", " << size << ")";
      EXPECT_EQ(out, sentinel) << "posix_memalign(" << align << ", " << size
                               << ") wrote *out on failure";
    }
  }
}

TEST(MallocOverflow, FailedReallocLeavesBlockUntouched) {
  for (size_t n : {24ul, 3000ul, 200 * KiB, 2 * MiB}) {
    void* p = slub_malloc(n);
    ASSERT_NE(p, nullptr);
    fill_block(p, n, 5);
    size_t usable = slub_malloc_usable_size(p);

    errno = 0;
    EXPECT_EQ(slub_realloc(p, SIZE_MAX), nullptr) << "realloc(" << n << " -> SIZE_MAX)";
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(slub_realloc(p, SIZE_MAX - 64), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(slub_realloc(p, static_cast<size_t>(PTRDIFF_MAX) + 1), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(slub_reallocarray(p, SIZE_MAX / 2, 3), nullptr) << "reallocarray overflow";
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(slub_reallocarray(p, size_t{1} << 32, size_t{1} << 32), nullptr);
    EXPECT_EQ(errno, ENOMEM);

    // The block is still live, the same size and unchanged.
    EXPECT_TRUE(slub_owns(p));
    EXPECT_EQ(slub_malloc_usable_size(p), usable);
    EXPECT_TRUE(verify_block(p, n, 5)) << "failed realloc changed a block of " << n;
    slub_free(p);
  }
}

// ---------------------------------------------------------------------------------------------
// malloc_usable_size

TEST(MallocUsableSize, WholeUsableRangeWritableWithoutTouchingNeighbours) {
  for (size_t size : spread_sizes(2 * MiB)) {
    const int n = size <= 64 * KiB ? 24 : 4;
    std::vector<void*> v;
    std::vector<size_t> usable;
    for (int i = 0; i < n; ++i) {
      void* p = slub_malloc(size);
      ASSERT_NE(p, nullptr);
      size_t u = slub_malloc_usable_size(p);
      ASSERT_GE(u, size) << "usable size of a block of " << size;
      v.push_back(p);
      usable.push_back(u);
    }
    // Fill each block's whole usable range with its own byte, then check them all.
    for (int i = 0; i < n; ++i) std::memset(v[i], 0x30 + i, usable[i]);
    for (int i = 0; i < n; ++i) {
      EXPECT_TRUE(all_bytes(v[i], usable[i], static_cast<unsigned char>(0x30 + i)))
          << "block " << i << " of size " << size << " (usable " << usable[i]
          << ") overwritten by a neighbour";
      EXPECT_EQ(slub_malloc_usable_size(v[i]), usable[i]) << "usable size changed";
    }
    for (void* p : v) slub_free(p);
  }
}

TEST(MallocUsableSize, NullIsZero) {
  EXPECT_EQ(slub_malloc_usable_size(nullptr), 0u);
}

TEST(MallocUsableSize, AlignedBlocksToo) {
  for (size_t align : {32ul, 256ul, 8192ul}) {
    std::vector<void*> v;
    for (int i = 0; i < 16; ++i) {
      void* p = slub_aligned_alloc(align, 100);
      ASSERT_NE(p, nullptr);
      v.push_back(p);
    }
    for (int i = 0; i < 16; ++i) std::memset(v[i], i + 1, slub_malloc_usable_size(v[i]));
    for (int i = 0; i < 16; ++i)
      EXPECT_TRUE(all_bytes(v[i], slub_malloc_usable_size(v[i]), i + 1))
          << "aligned block " << i << " (align " << align << ") overwritten";
    for (void* p : v) slub_free(p);
  }
}

// ---------------------------------------------------------------------------------------------
// malloc(0), free(NULL), free_sized

TEST(MallocZero, ReturnsUniqueFreeablePointers) {
  std::vector<void*> v;
  for (int i = 0; i < 200; ++i) {
    void* p = slub_malloc(0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(slub_owns(p));
    v.push_back(p);
  }
  std::vector<void*> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end())
      << "malloc(0) returned the same pointer twice";
  for (void* p : v) slub_free(p);
}

TEST(MallocZero, FreeNullIsANoOp) {
  slub_free(nullptr);
  slub_free_sized(nullptr, 0);
  slub_free_aligned_sized(nullptr, 64, 0);
  void* p = slub_malloc(32);
  ASSERT_NE(p, nullptr);
  slub_free(p);
}

TEST(MallocFreeSized, FreeSizedAndFreeAlignedSizedWork) {
  for (int round = 0; round < 4; ++round) {
    std::vector<std::pair<void*, size_t>> v;
    for (size_t size : spread_sizes(1 * MiB)) {
      void* p = slub_malloc(size);
      ASSERT_NE(p, nullptr);
      fill_block(p, size, round);
      v.emplace_back(p, size);
    }
    for (auto& [p, size] : v) {
      ASSERT_TRUE(verify_block(p, size, round));
      slub_free_sized(p, size);
    }
    std::vector<std::tuple<void*, size_t, size_t>> a;
    for (size_t align : {8ul, 16ul, 64ul, 4096ul, 64 * KiB}) {
      for (size_t size : {align, 2 * align, 5 * align}) {
        void* p = slub_aligned_alloc(align, size);
        ASSERT_NE(p, nullptr);
        fill_block(p, size, round);
        a.emplace_back(p, align, size);
      }
    }
    for (auto& [p, align, size] : a) {
      ASSERT_TRUE(verify_block(p, size, round));
      slub_free_aligned_sized(p, align, size);
    }
  }
  // Freed memory is reused soundly: fresh blocks are distinct and hold their contents.
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) {
    void* p = slub_malloc(48);
    ASSERT_NE(p, nullptr);
    fill_block(p, 48, 1);
    v.push_back(p);
  }
  for (void* p : v) EXPECT_TRUE(verify_block(p, 48, 1));
  for (void* p : v) slub_free(p);
}

// ---------------------------------------------------------------------------------------------
// slub_owns

TEST(MallocOwns, TrueForLiveBlocksOfEverySize) {
  std::vector<void*> v;
  for (size_t size : {1ul, 8ul, 16ul, 100ul, 1000ul, 4096ul, 10000ul, 32 * KiB, 64 * KiB, 256 * KiB,
                      1 * MiB, 8 * MiB, 64 * MiB}) {
    void* p = slub_malloc(size);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(slub_owns(p)) << "malloc(" << size << ")";
    v.push_back(p);
  }
  for (size_t align : {64ul, 4096ul, 2 * MiB}) {
    void* p = nullptr;
    ASSERT_EQ(slub_posix_memalign(&p, align, 3 * align), 0);
    EXPECT_TRUE(slub_owns(p)) << "posix_memalign(" << align << ")";
    v.push_back(p);
  }
  void* c = slub_calloc(100, 100);
  EXPECT_TRUE(slub_owns(c));
  v.push_back(c);
  for (void* p : v) slub_free(p);
}

TEST(MallocOwns, FalseForForeignMemory) {
  int on_stack = 0;
  EXPECT_FALSE(slub_owns(&on_stack)) << "stack address";
  EXPECT_FALSE(slub_owns(g_global_buffer)) << "global";
  EXPECT_FALSE(slub_owns(&g_global_buffer[100])) << "global";
  EXPECT_FALSE(slub_owns(nullptr)) << "NULL";
  EXPECT_FALSE(slub_owns(reinterpret_cast<void*>(&page_size))) << "code";

  const size_t len = 4 * MiB;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  EXPECT_FALSE(slub_owns(m)) << "mmap'd memory";
  EXPECT_FALSE(slub_owns(static_cast<char*>(m) + len / 2)) << "mmap'd memory";
  munmap(m, len);

  // The C library's own heap is not slub's (libslub.a does not replace malloc).
  void* g = std::malloc(100);
  ASSERT_NE(g, nullptr);
  EXPECT_FALSE(slub_owns(g)) << "glibc malloc block";
  std::free(g);
}

TEST(MallocOwns, InteriorBytesOfSlabMemoryAreOwned) {
  // "any byte of slab memory": an interior byte of a small block is owned too.
  for (size_t size : {16ul, 64ul, 200ul, 1024ul}) {
    auto* p = static_cast<char*>(slub_malloc(size));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(slub_owns(p + size / 2)) << "interior byte of a block of " << size;
    EXPECT_TRUE(slub_owns(p + size - 1)) << "last byte of a block of " << size;
    slub_free(p);
  }
}

// ---------------------------------------------------------------------------------------------
// Foreign pointers

TEST(MallocForeign, FreeOfForeignPointersIsIgnoredAndHeapStaysSound) {
  // Live blocks before the bad frees, checked after.
  std::vector<std::pair<void*, size_t>> before;
  for (size_t size : spread_sizes(128 * KiB)) {
    void* p = slub_malloc(size);
    ASSERT_NE(p, nullptr);
    fill_block(p, size, 42);
    before.emplace_back(p, size);
  }

  alignas(64) unsigned char stack_buf[4096];
  fill_pattern(stack_buf, sizeof stack_buf, 1);
  fill_pattern(g_global_buffer, sizeof g_global_buffer, 2);
  const size_t len = 1 * MiB;
  auto* m = static_cast<unsigned char*>(
      mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  fill_pattern(m, len, 3);
  void* glibc_block = std::malloc(256);
  ASSERT_NE(glibc_block, nullptr);
  fill_pattern(glibc_block, 256, 4);

  std::vector<void*> foreign = {stack_buf, stack_buf + 64, stack_buf + 16, g_global_buffer, m,
                                m + 4096,  m + 64 * 1024,  m + 48,         glibc_block};
  EXPECT_NO_FATAL_FAILURE({
    for (void* f : foreign) slub_free(f);
    for (void* f : foreign) slub_free_sized(f, 64);
    (void)slub_malloc_usable_size(stack_buf);
    (void)slub_malloc_usable_size(m);
  });

  // The foreign memory was not written to.
  EXPECT_EQ(check_pattern(stack_buf, sizeof stack_buf, 1), sizeof stack_buf) << "stack buffer";
  EXPECT_EQ(check_pattern(g_global_buffer, sizeof g_global_buffer, 2), sizeof g_global_buffer)
      << "global buffer";
  EXPECT_EQ(check_pattern(m, len, 3), len) << "mmap'd region";
  EXPECT_EQ(check_pattern(glibc_block, 256, 4), 256u) << "glibc block";

  // Later allocations never hand the foreign memory out, and existing blocks are intact.
  std::vector<std::pair<void*, size_t>> after;
  for (int round = 0; round < 4; ++round) {
    for (size_t size : spread_sizes(128 * KiB)) {
      void* p = slub_malloc(size);
      ASSERT_NE(p, nullptr);
      auto* b = static_cast<unsigned char*>(p);
      for (void* f : foreign)
        EXPECT_NE(p, f) << "slub_malloc(" << size << ") returned a foreign pointer";
      EXPECT_FALSE(b >= stack_buf && b < stack_buf + sizeof stack_buf);
      EXPECT_FALSE(b >= m && b < m + len) << "slub_malloc returned memory inside the mmap";
      fill_block(p, size, 43);
      after.emplace_back(p, size);
    }
  }
  for (auto& [p, size] : before)
    EXPECT_TRUE(verify_block(p, size, 42)) << "block of " << size << " corrupted";
  for (auto& [p, size] : after)
    EXPECT_TRUE(verify_block(p, size, 43)) << "block of " << size << " corrupted";
  for (auto& [p, size] : before) slub_free(p);
  for (auto& [p, size] : after) slub_free(p);

  std::free(glibc_block);
  munmap(m, len);
}

TEST(MallocForeign, ReallocOfForeignPointerDoesNotTouchIt) {
  alignas(16) unsigned char stack_buf[512];
  fill_pattern(stack_buf, sizeof stack_buf, 8);
  void* q = nullptr;
  EXPECT_NO_FATAL_FAILURE(q = slub_realloc(stack_buf + 16, 1000));
  EXPECT_EQ(check_pattern(stack_buf, sizeof stack_buf, 8), sizeof stack_buf);
  EXPECT_NE(q, static_cast<void*>(stack_buf + 16));
  if (q != nullptr) {
    EXPECT_TRUE(slub_owns(q));
    slub_free(q);
  }
  void* p = slub_malloc(100);
  ASSERT_NE(p, nullptr);
  slub_free(p);
}
