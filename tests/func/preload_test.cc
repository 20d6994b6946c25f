// SPDX-License-Identifier: MIT
// Runs under LD_PRELOAD=libslub.so and is NOT linked with slub: every libc allocation entry point
// and every C++ operator new/delete must land in slub. Ownership is asked of the preloaded
// library through dlsym(RTLD_DEFAULT, "slub_owns").
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <thread>
#include <atomic>
#include <string>
#include <vector>

namespace {

using owns_fn = int (*)(const void*);

owns_fn find_owns() {
  static owns_fn fn = reinterpret_cast<owns_fn>(dlsym(RTLD_DEFAULT, "slub_owns"));
  return fn;
}

// Whether slub owns p; fails the test (with a message saying how to run it) when slub is not
// preloaded.
#define EXPECT_SLUB_OWNS(p, what)                                                  \
  do {                                                                             \
    owns_fn owns_ = find_owns();                                                   \
    ASSERT_NE(owns_, nullptr) << "slub_owns not found: run this test with "        \
                                 "LD_PRELOAD=/path/to/libslub.so (ctest does)";    \
    EXPECT_TRUE(owns_(p)) << (what) << " returned " << static_cast<const void*>(p) \
                          << ", which slub does not own";                          \
  } while (0)

bool aligned(const void* p, size_t a) {
  return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0;
}

size_t page_size() {
  return static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Where pointers escape to, so that no new/delete pair is elided (GCC removes unused ones).
void* volatile g_sink;

// Keeps the compiler from reasoning about a size.
size_t opaque(size_t n) {
  volatile size_t v = n;
  return v;
}

}  // namespace

TEST(Preload, SlubIsPreloaded) {
  ASSERT_NE(find_owns(), nullptr)
      << "dlsym(RTLD_DEFAULT, \"slub_owns\") failed: this test must run with "
         "LD_PRELOAD=libslub.so";
  // And malloc itself resolves to the preloaded library.
  Dl_info info{};
  void* sym = dlsym(RTLD_DEFAULT, "malloc");
  ASSERT_NE(sym, nullptr);
  ASSERT_NE(dladdr(sym, &info), 0);
  ASSERT_NE(info.dli_fname, nullptr);
  EXPECT_NE(std::string(info.dli_fname).find("libslub"), std::string::npos)
      << "malloc resolves to " << info.dli_fname;
}

TEST(Preload, MallocFamily) {
  for (size_t n : {0ul, 1ul, 24ul, 100ul, 4096ul, 70000ul, 3ul << 20}) {
    void* p = malloc(opaque(n));
    ASSERT_NE(p, nullptr);
    EXPECT_SLUB_OWNS(p, "malloc(" + std::to_string(n) + ")");
    EXPECT_GE(malloc_usable_size(p), n);
    std::memset(p, 0x42, malloc_usable_size(p));
    free(p);
  }

  void* c = calloc(opaque(100), 10);
  ASSERT_NE(c, nullptr);
  EXPECT_SLUB_OWNS(c, "calloc");
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(static_cast<char*>(c)[i], 0);

  std::memset(c, 0x17, 1000);
  void* r = realloc(c, opaque(100000));
  ASSERT_NE(r, nullptr);
  EXPECT_SLUB_OWNS(r, "realloc");
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(static_cast<unsigned char*>(r)[i], 0x17);

  void* ra = reallocarray(r, opaque(300), 1000);
  ASSERT_NE(ra, nullptr);
  EXPECT_SLUB_OWNS(ra, "reallocarray");
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(static_cast<unsigned char*>(ra)[i], 0x17);
  EXPECT_GE(malloc_usable_size(ra), 300000u);
  free(ra);

  void* r0 = realloc(nullptr, opaque(50));
  ASSERT_NE(r0, nullptr);
  EXPECT_SLUB_OWNS(r0, "realloc(NULL, 50)");
  free(r0);

  free(nullptr);
  EXPECT_EQ(malloc_usable_size(nullptr), 0u);
}

TEST(Preload, AlignedFamily) {
  const size_t page = page_size();
  for (size_t a : {8ul, 64ul, 4096ul, 1ul << 20}) {
    void* p = nullptr;
    ASSERT_EQ(posix_memalign(&p, a, opaque(a + 1)), 0);
    EXPECT_TRUE(aligned(p, a));
    EXPECT_SLUB_OWNS(p, "posix_memalign");
    free(p);

    void* q = aligned_alloc(a, opaque(2 * a));
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(aligned(q, a));
    EXPECT_SLUB_OWNS(q, "aligned_alloc");
    free(q);

    void* m = memalign(a, opaque(3));
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(aligned(m, a));
    EXPECT_SLUB_OWNS(m, "memalign");
    free(m);
  }
  void* v = valloc(opaque(10));
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(aligned(v, page));
  EXPECT_SLUB_OWNS(v, "valloc");
  free(v);

  void* pv = pvalloc(opaque(10));
  ASSERT_NE(pv, nullptr);
  EXPECT_TRUE(aligned(pv, page));
  EXPECT_GE(malloc_usable_size(pv), page);
  EXPECT_SLUB_OWNS(pv, "pvalloc");
  free(pv);

  void* bad = reinterpret_cast<void*>(0x1234);
  EXPECT_EQ(posix_memalign(&bad, opaque(24), 64), EINVAL);
  EXPECT_EQ(bad, reinterpret_cast<void*>(0x1234));
  errno = 0;
  EXPECT_EQ(aligned_alloc(opaque(24), 64), nullptr);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Preload, OverflowSetsEnomem) {
  errno = 0;
  EXPECT_EQ(malloc(opaque(SIZE_MAX)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(calloc(opaque(SIZE_MAX / 2), 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* p = malloc(opaque(10));
  ASSERT_NE(p, nullptr);
  errno = 0;
  void* r = reallocarray(p, opaque(SIZE_MAX / 2), 3);
  EXPECT_EQ(r, nullptr);
  EXPECT_EQ(errno, ENOMEM);
  free(r != nullptr ? r : p);
}

namespace {
// vm.overcommit_memory: 0 heuristic (the default), 1 always, 2 strict accounting.
int overcommit_policy() {
  FILE* f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int v = -1;
  if (f != nullptr) {
    if (fscanf(f, "%d", &v) != 1) v = -1;
    fclose(f);
  }
  return v;
}

// MemTotal + SwapTotal from /proc/meminfo, in bytes.
size_t ram_plus_swap() {
  FILE* f = fopen("/proc/meminfo", "r");
  size_t total = 0;
  char key[64];
  unsigned long long kb;
  while (f != nullptr && fscanf(f, "%63s %llu kB", key, &kb) == 2)
    if (strcmp(key, "MemTotal:") == 0 || strcmp(key, "SwapTotal:") == 0) total += kb * 1024;
  if (f != nullptr) fclose(f);
  return total;
}
}  // namespace

// Requests the kernel would refuse to a plain mmap (its overcommit heuristic, or the commit
// limit under strict accounting) fail as glibc's do: NULL with ENOMEM, bad_alloc for new, and
// the program goes on allocating. (Before, huge blocks were mapped with MAP_NORESERVE, which
// skips the heuristic: malloc(200 GiB) succeeded on a 24 GiB machine.)
TEST(Preload, AllocationsBeyondMemoryFailWithEnomem) {
  if (overcommit_policy() == 1)
    GTEST_SKIP() << "vm.overcommit_memory=1: the kernel grants any mapping, to glibc too";
  const size_t sizes[] = {size_t{4} << 40, size_t{64} << 40, 2 * ram_plus_swap()};
  for (size_t n : sizes) {
    SCOPED_TRACE("size " + std::to_string(n >> 30) + " GiB");
    errno = 0;
    void* p = malloc(opaque(n));
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(errno, ENOMEM);
    free(p);
    errno = 0;
    p = calloc(1, opaque(n));
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(errno, ENOMEM);
    free(p);
    errno = 0;
    p = aligned_alloc(4096, opaque(n));
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(errno, ENOMEM);
    free(p);
    void* small = malloc(opaque(100));
    ASSERT_NE(small, nullptr);
    memset(small, 1, 100);
    errno = 0;
    void* r = realloc(small, opaque(n));
    EXPECT_EQ(r, nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(static_cast<unsigned char*>(small)[99], 1) << "realloc lost the old block";
    free(r != nullptr ? r : small);
    EXPECT_THROW(::operator delete(::operator new(opaque(n))), std::bad_alloc);
    EXPECT_EQ(::operator new(opaque(n), std::nothrow), nullptr);
  }
  // And the heap goes on working.
  std::vector<void*> v;
  for (int i = 0; i < 1000; ++i) {
    v.push_back(malloc(opaque(16 + i * 64)));
    ASSERT_NE(v.back(), nullptr);
    memset(v.back(), i, 16 + i * 64);
  }
  void* big = malloc(opaque(size_t{64} << 20));
  ASSERT_NE(big, nullptr);
  memset(big, 7, size_t{64} << 20);
  EXPECT_SLUB_OWNS(big, "malloc(64 MiB) after the failures");
  free(big);
  for (void* p : v) free(p);
}

TEST(Preload, FreeSizedAndLibcAliases) {
  // Not declared by this glibc's headers: looked up in the preloaded library.
  using free_sized_fn = void (*)(void*, size_t);
  using free_aligned_sized_fn = void (*)(void*, size_t, size_t);
  auto fs = reinterpret_cast<free_sized_fn>(dlsym(RTLD_DEFAULT, "free_sized"));
  auto fas = reinterpret_cast<free_aligned_sized_fn>(dlsym(RTLD_DEFAULT, "free_aligned_sized"));
  ASSERT_NE(fs, nullptr) << "free_sized not exported";
  ASSERT_NE(fas, nullptr) << "free_aligned_sized not exported";
  void* p = malloc(opaque(200));
  ASSERT_NE(p, nullptr);
  fs(p, 200);
  void* q = aligned_alloc(256, opaque(512));
  ASSERT_NE(q, nullptr);
  fas(q, 256, 512);

  // The __libc_* names resolve to slub first (glibc exports them too).
  using malloc_fn = void* (*)(size_t);
  using free_fn = void (*)(void*);
  auto lm = reinterpret_cast<malloc_fn>(dlsym(RTLD_DEFAULT, "__libc_malloc"));
  auto lf = reinterpret_cast<free_fn>(dlsym(RTLD_DEFAULT, "__libc_free"));
  ASSERT_NE(lm, nullptr);
  ASSERT_NE(lf, nullptr);
  void* x = lm(64);
  ASSERT_NE(x, nullptr);
  owns_fn owns = find_owns();
  ASSERT_NE(owns, nullptr);
  if (owns(x)) {
    lf(x);
  } else {
    ADD_FAILURE() << "__libc_malloc is not slub's";  // leak it: freeing could mix heaps
  }
}

TEST(Preload, LibcInternalAllocationsComeFromSlub) {
  // glibc's own functions call malloc through its interposable symbol.
  char* s = strdup("a string duplicated by glibc");
  ASSERT_NE(s, nullptr);
  EXPECT_SLUB_OWNS(s, "strdup");
  free(s);
  char* a = nullptr;
  ASSERT_GT(asprintf(&a, "%d-%s", 42, "x"), 0);
  EXPECT_SLUB_OWNS(a, "asprintf");
  free(a);
}

TEST(Preload, OperatorNewAndDeleteAllForms) {
  int* i = new int(5);
  EXPECT_SLUB_OWNS(i, "new int");
  delete i;

  char* arr = new char[opaque(1000)];
  EXPECT_SLUB_OWNS(arr, "new char[]");
  std::memset(arr, 1, 1000);
  delete[] arr;

  int* nt = new (std::nothrow) int(3);
  ASSERT_NE(nt, nullptr);
  EXPECT_SLUB_OWNS(nt, "new (nothrow) int");
  delete nt;

  char* nta = new (std::nothrow) char[opaque(5000)];
  ASSERT_NE(nta, nullptr);
  EXPECT_SLUB_OWNS(nta, "new (nothrow) char[]");
  delete[] nta;

  // Explicit operator calls, sized and unsized, aligned and not.
  void* p = ::operator new(opaque(48));
  EXPECT_SLUB_OWNS(p, "operator new(size_t)");
  ::operator delete(p, 48);

  p = ::operator new[](opaque(480));
  EXPECT_SLUB_OWNS(p, "operator new[](size_t)");
  ::operator delete[](p, 480);

  for (size_t a : {32ul, 64ul, 256ul, 4096ul, 65536ul, 1ul << 20}) {
    std::align_val_t al{a};
    void* q = ::operator new(opaque(100), al);
    EXPECT_TRUE(aligned(q, a)) << "aligned new " << a;
    EXPECT_SLUB_OWNS(q, "operator new(size_t, align_val_t)");
    ::operator delete(q, al);

    q = ::operator new(opaque(100), al);
    ::operator delete(q, 100, al);

    q = ::operator new[](opaque(3 * a), al);
    EXPECT_TRUE(aligned(q, a));
    EXPECT_SLUB_OWNS(q, "operator new[](size_t, align_val_t)");
    ::operator delete[](q, al);

    q = ::operator new[](opaque(3 * a), al);
    ::operator delete[](q, 3 * a, al);

    q = ::operator new(opaque(a), al, std::nothrow);
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(aligned(q, a));
    EXPECT_SLUB_OWNS(q, "operator new(size_t, align_val_t, nothrow)");
    ::operator delete(q, al, std::nothrow);

    q = ::operator new[](opaque(a), al, std::nothrow);
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(aligned(q, a));
    EXPECT_SLUB_OWNS(q, "operator new[](size_t, align_val_t, nothrow)");
    ::operator delete[](q, al, std::nothrow);
  }

  // Small sizes with a small extended alignment: every block of a batch (so that some land
  // on odd 8-byte slots of a size class) must honour the alignment.
  for (size_t a : {16ul, 32ul}) {
    std::vector<void*> batch;
    for (size_t size : {1ul, 8ul, 9ul, 24ul}) {
      for (int i = 0; i < 64; ++i) {
        void* q = ::operator new (opaque(size), std::align_val_t{a});
        EXPECT_TRUE(aligned(q, a)) << "aligned new of " << size << " bytes, alignment " << a;
        batch.push_back(q);
      }
    }
    for (void* q : batch) ::operator delete (q, std::align_val_t{a});
  }

  void* n1 = ::operator new(opaque(16), std::nothrow);
  EXPECT_SLUB_OWNS(n1, "operator new(nothrow)");
  ::operator delete(n1, std::nothrow);
  void* n2 = ::operator new[](opaque(16), std::nothrow);
  EXPECT_SLUB_OWNS(n2, "operator new[](nothrow)");
  ::operator delete[](n2, std::nothrow);

  // An over-aligned type through a new-expression.
  struct alignas(128) Big {
    char b[300];
  };
  Big* big = new Big;
  EXPECT_TRUE(aligned(big, 128));
  EXPECT_SLUB_OWNS(big, "new over-aligned type");
  delete big;
  Big* bigs = new Big[opaque(7)];
  EXPECT_TRUE(aligned(bigs, 128));
  delete[] bigs;

  // Standard containers.
  std::vector<int> v(100000, 7);
  EXPECT_SLUB_OWNS(v.data(), "std::vector");
  std::string s(1000, 'x');
  EXPECT_SLUB_OWNS(s.data(), "std::string");
  auto sp = std::make_shared<std::vector<double>>(500);
  EXPECT_SLUB_OWNS(sp.get(), "std::make_shared");
}

TEST(Preload, ImpossibleNewThrowsAndNothrowReturnsNull) {
  size_t huge = opaque(SIZE_MAX / 2);
  EXPECT_THROW(
      {
        char* p = new char[huge];
        g_sink = p;
        delete[] p;
      },
      std::bad_alloc);
  EXPECT_THROW(::operator delete(::operator new(huge)), std::bad_alloc);
  EXPECT_THROW(
      ::operator delete (::operator new (huge, std::align_val_t{64}), std::align_val_t{64}),
      std::bad_alloc);
  EXPECT_EQ(new (std::nothrow) char[huge], nullptr);
  EXPECT_EQ(::operator new(huge, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](huge, std::nothrow), nullptr);
  EXPECT_EQ(::operator new (huge, std::align_val_t{4096}, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](huge, std::align_val_t{4096}, std::nothrow), nullptr);
}

namespace {
int g_handler_calls = 0;
void once_handler() {
  ++g_handler_calls;
  std::set_new_handler(nullptr);  // give up next time: operator new then throws
}
}  // namespace

TEST(Preload, NewCallsTheNewHandlerBeforeThrowing) {
  g_handler_calls = 0;
  std::set_new_handler(once_handler);
  EXPECT_THROW(::operator delete(::operator new(opaque(SIZE_MAX / 2))), std::bad_alloc);
  EXPECT_EQ(g_handler_calls, 1) << "operator new did not call the new_handler";
  std::set_new_handler(nullptr);
}

namespace {
void throwing_handler() {
  throw std::bad_alloc();
}
}  // namespace

// The nothrow forms with a new_handler that throws: nullptr (the standard's "catch and return
// null"), the catch being libstdc++'s own nothrow operator, since libslub.so does not link the
// C++ runtime.
TEST(Preload, NothrowNewReturnsNullWhenTheNewHandlerThrows) {
  std::set_new_handler(throwing_handler);
  const size_t huge = opaque(SIZE_MAX / 2);
  EXPECT_EQ(::operator new(huge, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](huge, std::nothrow), nullptr);
  EXPECT_EQ(::operator new (huge, std::align_val_t{64}, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](huge, std::align_val_t{64}, std::nothrow), nullptr);
  EXPECT_THROW(::operator delete(::operator new(huge)), std::bad_alloc);
  std::set_new_handler(nullptr);
  void* p = ::operator new(opaque(64), std::nothrow);
  EXPECT_SLUB_OWNS(p, "nothrow new after the failures");
  ::operator delete(p);
}

TEST(Preload, ManyAllocationsAcrossThreads) {
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&bad, t] {
      std::vector<std::unique_ptr<char[]>> v;
      for (int i = 0; i < 5000; ++i) {
        size_t n = 8 + (i * 37 + t * 101) % 5000;
        v.emplace_back(new char[n]);
        std::memset(v.back().get(), t, n);
        if (v.size() > 100) v.erase(v.begin());
      }
      owns_fn owns = find_owns();
      for (auto& p : v)
        if (owns == nullptr || !owns(p.get())) bad++;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}
