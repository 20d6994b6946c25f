// SPDX-License-Identifier: MIT
// Functional tests of the kmem_cache API and of slub::cache<T>: creation and its errors,
// alignment, constructors and constructed state, zeroing, counts, shrink, destroy, the cache
// list, and frees to the wrong cache.
#include <slub/slub.h>
#include <slub/slub.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>
#include <unistd.h>

#include "func_util.h"

using namespace slub_func;

namespace {

// Frees every object and destroys the cache, expecting success.
void free_all_and_destroy(kmem_cache* c, std::vector<void*>& objs) {
  for (void* p : objs) kmem_cache_free(c, p);
  objs.clear();
  EXPECT_EQ(kmem_cache_destroy(c), 0) << kmem_cache_name(c);
}

kmem_cache_info info_of(const kmem_cache* c) {
  kmem_cache_info i{};
  EXPECT_EQ(kmem_cache_get_info(c, &i), 0);
  return i;
}

// Pins the calling thread to the CPU it is on for the scope, so that per-CPU state stays put
// (a migration could otherwise strand freed objects on another CPU's partial list).
class PinToCurrentCpu {
 public:
  PinToCurrentCpu() {
    ok_ = sched_getaffinity(0, sizeof old_, &old_) == 0;
    int cpu = sched_getcpu();
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu < 0 ? 0 : cpu, &one);
    if (ok_) sched_setaffinity(0, sizeof one, &one);
  }
  ~PinToCurrentCpu() {
    if (ok_) sched_setaffinity(0, sizeof old_, &old_);
  }

 private:
  cpu_set_t old_;
  bool ok_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Creation

TEST(CacheCreate, NameSizeAndSlotSize) {
  char name[32] = "func-create-basic";
  kmem_cache* c = kmem_cache_create(name, 72, 0, 0, nullptr);
  ASSERT_NE(c, nullptr);
  std::strcpy(name, "overwritten");  // the name was copied
  EXPECT_STREQ(kmem_cache_name(c), "func-create-basic");
  EXPECT_EQ(kmem_cache_size(c), 72u);
  EXPECT_GE(kmem_cache_slot_size(c), 72u);
  kmem_cache_info i = info_of(c);
  EXPECT_STREQ(i.name, "func-create-basic");
  EXPECT_EQ(i.object_size, 72u);
  EXPECT_EQ(i.slot_size, kmem_cache_slot_size(c));
  EXPECT_GT(i.objs_per_slab, 0u);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(CacheCreate, RejectsZeroSize) {
  errno = 0;
  EXPECT_EQ(kmem_cache_create("func-zero", 0, 0, 0, nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
}

TEST(CacheCreate, RejectsNonPowerOfTwoAlign) {
  for (size_t align : {3ul, 12ul, 24ul, 48ul, 100ul, 4095ul}) {
    errno = 0;
    kmem_cache* c = kmem_cache_create("func-badalign", 64, align, 0, nullptr);
    EXPECT_EQ(c, nullptr) << "align " << align;
    EXPECT_EQ(errno, EINVAL) << "align " << align;
    if (c != nullptr) kmem_cache_destroy(c);
  }
}

// ---------------------------------------------------------------------------------------------
// Alignment

TEST(CacheAlign, ObjectsAlignedToRequestedAlign) {
  for (size_t align = 8; align <= 4096; align *= 2) {
    for (size_t size : {1ul, 24ul, align / 2 + 1, align, align + 8, 3 * align}) {
      std::string name = "func-align-" + std::to_string(align) + "-" + std::to_string(size);
      kmem_cache* c = kmem_cache_create(name.c_str(), size, align, 0, nullptr);
      ASSERT_NE(c, nullptr) << name;
      EXPECT_EQ(kmem_cache_slot_size(c) % align, 0u) << name;
      std::vector<void*> objs;
      for (int i = 0; i < 80; ++i) {
        void* p = kmem_cache_alloc(c);
        ASSERT_NE(p, nullptr) << name;
        EXPECT_TRUE(is_aligned(p, align)) << name << ": object " << p;
        fill_block(p, size, align);
        objs.push_back(p);
      }
      for (void* p : objs) EXPECT_TRUE(verify_block(p, size, align)) << name;
      free_all_and_destroy(c, objs);
    }
  }
}

TEST(CacheAlign, HwcacheAlignGivesCacheLineAlignment) {
  for (size_t size : {64ul, 65ul, 72ul, 100ul, 128ul, 200ul, 1000ul}) {
    std::string name = "func-hwcache-" + std::to_string(size);
    kmem_cache* c = kmem_cache_create(name.c_str(), size, 0, SLAB_HWCACHE_ALIGN, nullptr);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(kmem_cache_slot_size(c) % 64, 0u) << name;
    std::vector<void*> objs;
    for (int i = 0; i < 100; ++i) {
      void* p = kmem_cache_alloc(c);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(is_aligned(p, 64)) << name << ": object " << p;
      objs.push_back(p);
    }
    free_all_and_destroy(c, objs);
  }
}

TEST(CacheAlign, DefaultAlignIsAtLeastEight) {
  for (size_t size : {8ul, 12ul, 20ul, 36ul}) {
    kmem_cache* c = kmem_cache_create("func-default-align", size, 0, 0, nullptr);
    ASSERT_NE(c, nullptr);
    std::vector<void*> objs;
    for (int i = 0; i < 50; ++i) {
      void* p = kmem_cache_alloc(c);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(is_aligned(p, 8)) << "size " << size << ": " << p;
      objs.push_back(p);
    }
    free_all_and_destroy(c, objs);
  }
}

// ---------------------------------------------------------------------------------------------
// Constructors

namespace {

constexpr size_t kCtorSize = 96;
std::atomic<size_t> g_ctor_calls{0};

void magic_ctor(void* obj) {
  g_ctor_calls.fetch_add(1, std::memory_order_relaxed);
  // Fill the whole object: all of it is constructed state that must survive free + alloc.
  fill_pattern(obj, kCtorSize, 0xc7057);
}

}  // namespace

TEST(CacheCtor, RunsOncePerObjectAndStateSurvivesFreeAndAlloc) {
  PinToCurrentCpu pin;
  g_ctor_calls = 0;
  kmem_cache* c = kmem_cache_create("func-ctor", kCtorSize, 0, 0, magic_ctor);
  ASSERT_NE(c, nullptr);

  const size_t n = 3000;
  std::vector<void*> objs;
  for (size_t i = 0; i < n; ++i) {
    void* p = kmem_cache_alloc(c);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(check_pattern(p, kCtorSize, 0xc7057), kCtorSize) << "object not constructed";
    objs.push_back(p);
  }
  kmem_cache_info i = info_of(c);
  EXPECT_GE(g_ctor_calls.load(), n);
  // Once per object when its slab is made: no slab was released yet, so exactly the objects.
  EXPECT_EQ(g_ctor_calls.load(), i.total_objs) << "ctor calls vs objects in all slabs";

  // Free and re-allocate, many times: the constructed state is still there, and the ctor is
  // not run on reuse of an object.
  for (int round = 0; round < 5; ++round) {
    size_t calls_before = g_ctor_calls.load();
    for (size_t k = 0; k < n; k += 2) kmem_cache_free(c, objs[k]);
    for (size_t k = 0; k < n; k += 2) {
      objs[k] = kmem_cache_alloc(c);
      ASSERT_NE(objs[k], nullptr);
    }
    for (void* p : objs)
      ASSERT_EQ(check_pattern(p, kCtorSize, 0xc7057), kCtorSize)
          << "constructed state lost across free + alloc (round " << round << ")";
    EXPECT_EQ(g_ctor_calls.load(), calls_before)
        << "ctor ran again although no new slab was needed";
  }
  free_all_and_destroy(c, objs);
}

namespace {
std::atomic<size_t> g_small_ctor_calls{0};
void small_ctor(void* obj) {
  g_small_ctor_calls.fetch_add(1, std::memory_order_relaxed);
  std::memcpy(obj, "MAGIC!!", 8);
}
}  // namespace

TEST(CacheCtor, SmallObjectKeepsStateWhole) {
  // An 8-byte object with a ctor: the free pointer cannot live inside the object.
  g_small_ctor_calls = 0;
  kmem_cache* c = kmem_cache_create("func-ctor-small", 8, 0, 0, small_ctor);
  ASSERT_NE(c, nullptr);
  std::vector<void*> objs;
  for (int i = 0; i < 1000; ++i) {
    void* p = kmem_cache_alloc(c);
    ASSERT_NE(p, nullptr);
    objs.push_back(p);
  }
  EXPECT_GE(g_small_ctor_calls.load(), 1000u);
  for (void* p : objs) kmem_cache_free(c, p);
  for (auto& p : objs) {
    p = kmem_cache_alloc(c);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(std::memcmp(p, "MAGIC!!", 8), 0) << "constructed state of an 8-byte object lost";
  }
  free_all_and_destroy(c, objs);
}

// ---------------------------------------------------------------------------------------------
// zalloc

TEST(CacheZalloc, ZeroesDirtyObjects) {
  for (size_t size : {8ul, 24ul, 100ul, 512ul, 4000ul, 20000ul}) {
    kmem_cache* c = kmem_cache_create("func-zalloc", size, 0, 0, nullptr);
    ASSERT_NE(c, nullptr);
    std::vector<void*> objs;
    for (int i = 0; i < 64; ++i) {
      void* p = kmem_cache_alloc(c);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0xFF, size);
      objs.push_back(p);
    }
    for (void* p : objs) kmem_cache_free(c, p);
    objs.clear();
    for (int i = 0; i < 64; ++i) {
      void* p = kmem_cache_zalloc(c);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(all_bytes(p, size, 0)) << "zalloc of size " << size << " not zeroed";
      std::memset(p, 0xFF, size);
      objs.push_back(p);
    }
    free_all_and_destroy(c, objs);
  }
}

// ---------------------------------------------------------------------------------------------
// Distinct objects

TEST(CacheObjects, ManyObjectsAreDistinctAndDoNotOverlap) {
  for (size_t size : {8ul, 40ul, 192ul, 1500ul, 9000ul}) {
    kmem_cache* c = kmem_cache_create("func-distinct", size, 0, 0, nullptr);
    ASSERT_NE(c, nullptr);
    const size_t n = size <= 200 ? 20000 : 2000;
    std::vector<void*> objs;
    for (size_t i = 0; i < n; ++i) {
      void* p = kmem_cache_alloc(c);
      ASSERT_NE(p, nullptr);
      fill_block(p, size, i);
      objs.push_back(p);
    }
    for (size_t i = 0; i < n; ++i)
      ASSERT_TRUE(verify_block(objs[i], size, i)) << "object " << i << " of size " << size;
    std::vector<uintptr_t> sorted;
    for (void* p : objs) sorted.push_back(reinterpret_cast<uintptr_t>(p));
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 1; i < sorted.size(); ++i)
      ASSERT_GE(sorted[i] - sorted[i - 1], size) << "objects overlap (size " << size << ")";
    free_all_and_destroy(c, objs);
  }
}

// ---------------------------------------------------------------------------------------------
// Counts, shrink, destroy

TEST(CacheInfo, CountsFollowAllocations) {
  kmem_cache* c = kmem_cache_create("func-info", 128, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(c, nullptr);
  kmem_cache_info i0 = info_of(c);
  EXPECT_EQ(i0.active_objs, 0u);

  const size_t n = 5000;
  std::vector<void*> objs;
  for (size_t k = 0; k < n; ++k) objs.push_back(kmem_cache_alloc(c));
  kmem_cache_info i = info_of(c);
  EXPECT_STREQ(i.name, "func-info");
  EXPECT_EQ(i.object_size, 128u);
  EXPECT_GE(i.slot_size, 128u);
  EXPECT_GT(i.objs_per_slab, 0u);
  EXPECT_GE(i.active_objs, n);
  EXPECT_GE(i.total_objs, i.active_objs);
  EXPECT_GT(i.nr_slabs, 0u);
  EXPECT_GE(i.nr_slabs * i.objs_per_slab, n) << "slabs cannot hold the live objects";
  EXPECT_LE(i.total_objs, i.nr_slabs * i.objs_per_slab);
  EXPECT_GE(i.nr_slabs, i.nr_partial);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  EXPECT_LE(i.slot_size * i.objs_per_slab, page << i.order) << "objects do not fit the slab";

  for (void* p : objs) kmem_cache_free(c, p);
  objs.clear();
  EXPECT_GE(kmem_cache_shrink(c), 0);
  kmem_cache_info after = info_of(c);
  EXPECT_EQ(after.active_objs, 0u) << "objects still active after freeing all and shrinking";
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(CacheShrink, ReleasesEmptySlabs) {
  kmem_cache* c = kmem_cache_create("func-shrink", 256, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(c, nullptr);
  std::vector<void*> objs;
  for (int k = 0; k < 20000; ++k) {
    void* p = kmem_cache_alloc(c);
    ASSERT_NE(p, nullptr);
    objs.push_back(p);
  }
  kmem_cache_info full = info_of(c);
  ASSERT_GT(full.nr_slabs, 0u);
  for (void* p : objs) kmem_cache_free(c, p);
  objs.clear();

  int released = kmem_cache_shrink(c);
  EXPECT_GT(released, 0) << "shrink after a big alloc/free released nothing";
  kmem_cache_info after = info_of(c);
  EXPECT_LT(after.nr_slabs, full.nr_slabs) << "nr_slabs did not drop";
  EXPECT_EQ(after.nr_slabs, 0u) << "shrink of an all-free cache kept empty slabs";
  EXPECT_EQ(after.active_objs, 0u);
  EXPECT_LE(static_cast<size_t>(released), full.nr_slabs);

  // The cache still works after a shrink.
  for (int k = 0; k < 1000; ++k) {
    void* p = kmem_cache_alloc(c);
    ASSERT_NE(p, nullptr);
    fill_block(p, 256, 1);
    objs.push_back(p);
  }
  for (void* p : objs) EXPECT_TRUE(verify_block(p, 256, 1));
  free_all_and_destroy(c, objs);
}

TEST(CacheDestroy, NonEmptyCacheIsBusyAndStillUsable) {
  kmem_cache* c = kmem_cache_create("func-busy", 48, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(c, nullptr);
  std::vector<void*> objs;
  for (int k = 0; k < 100; ++k) {
    void* p = kmem_cache_alloc(c);
    ASSERT_NE(p, nullptr);
    fill_block(p, 48, 2);
    objs.push_back(p);
  }
  errno = 0;
  EXPECT_EQ(kmem_cache_destroy(c), -1);
  EXPECT_EQ(errno, EBUSY);

  // Intact and usable.
  EXPECT_STREQ(kmem_cache_name(c), "func-busy");
  for (void* p : objs) EXPECT_TRUE(verify_block(p, 48, 2)) << "object changed by failed destroy";
  for (int k = 0; k < 100; ++k) {
    void* p = kmem_cache_alloc(c);
    ASSERT_NE(p, nullptr);
    for (void* o : objs) ASSERT_NE(o, p);
    fill_block(p, 48, 2);
    objs.push_back(p);
  }
  // One object left: still busy.
  for (size_t k = 1; k < objs.size(); ++k) kmem_cache_free(c, objs[k]);
  errno = 0;
  EXPECT_EQ(kmem_cache_destroy(c), -1);
  EXPECT_EQ(errno, EBUSY);
  kmem_cache_free(c, objs[0]);
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

TEST(CacheDestroy, ObjectsFreedFromAnotherThreadThenDestroy) {
  kmem_cache* c = kmem_cache_create("func-destroy-remote", 64, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(c, nullptr);
  std::vector<void*> objs;
  for (int k = 0; k < 2000; ++k) objs.push_back(kmem_cache_alloc(c));
  std::thread t([&] {
    for (void* p : objs) kmem_cache_free(c, p);
  });
  t.join();
  objs.clear();
  EXPECT_EQ(kmem_cache_destroy(c), 0);
}

// ---------------------------------------------------------------------------------------------
// The cache list

namespace {
void collect_name(const kmem_cache* c, void* arg) {
  static_cast<std::vector<std::string>*>(arg)->push_back(kmem_cache_name(c));
}
}  // namespace

TEST(CacheList, ForEachListsCachesInCreationOrder) {
  kmem_cache* a = kmem_cache_create("func-list-alpha", 40, 0, SLAB_NO_MERGE, nullptr);
  kmem_cache* b = kmem_cache_create("func-list-beta", 40, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::vector<std::string> names;
  kmem_cache_for_each(collect_name, &names);
  auto ia = std::find(names.begin(), names.end(), "func-list-alpha");
  auto ib = std::find(names.begin(), names.end(), "func-list-beta");
  ASSERT_NE(ia, names.end()) << "created cache not listed";
  ASSERT_NE(ib, names.end()) << "created cache not listed";
  EXPECT_LT(ia - names.begin(), ib - names.begin()) << "not in creation order";

  EXPECT_EQ(kmem_cache_destroy(a), 0);
  names.clear();
  kmem_cache_for_each(collect_name, &names);
  EXPECT_EQ(std::find(names.begin(), names.end(), "func-list-alpha"), names.end())
      << "destroyed cache still listed";
  EXPECT_NE(std::find(names.begin(), names.end(), "func-list-beta"), names.end());
  EXPECT_EQ(kmem_cache_destroy(b), 0);
}

// ---------------------------------------------------------------------------------------------
// Bad frees

TEST(CacheBadFree, WrongCacheAndInteriorPointerDoNotCorrupt) {
  kmem_cache* a = kmem_cache_create("func-bad-a", 64, 0, SLAB_NO_MERGE, nullptr);
  kmem_cache* b = kmem_cache_create("func-bad-b", 128, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::vector<void*> as, bs;
  for (int k = 0; k < 50; ++k) {
    as.push_back(kmem_cache_alloc(a));
    bs.push_back(kmem_cache_alloc(b));
    fill_block(as.back(), 64, 10);
    fill_block(bs.back(), 128, 11);
  }
  size_t active_a = info_of(a).active_objs;
  size_t active_b = info_of(b).active_objs;

  // An object of A freed to B, one of B freed to A, and interior pointers to their own cache.
  void* victim_a = as[7];
  void* victim_b = bs[9];
  EXPECT_NO_FATAL_FAILURE({
    kmem_cache_free(b, victim_a);
    kmem_cache_free(a, victim_b);
    kmem_cache_free(a, static_cast<char*>(victim_a) + 8);
    kmem_cache_free(b, static_cast<char*>(victim_b) + 64);
    kmem_cache_free(b, static_cast<char*>(victim_b) + 1);
  });
  EXPECT_EQ(info_of(a).active_objs, active_a) << "a bad free changed A's counts";
  EXPECT_EQ(info_of(b).active_objs, active_b) << "a bad free changed B's counts";

  // Both caches keep handing out distinct objects, never the victims nor inside them.
  for (int k = 0; k < 3000; ++k) {
    void* pa = kmem_cache_alloc(a);
    void* pb = kmem_cache_alloc(b);
    ASSERT_NE(pa, nullptr);
    ASSERT_NE(pb, nullptr);
    auto in = [](void* p, void* obj, size_t size) {
      auto x = reinterpret_cast<uintptr_t>(p), o = reinterpret_cast<uintptr_t>(obj);
      return x + 1 > o && x < o + size;
    };
    ASSERT_FALSE(in(pa, victim_a, 64) || in(pa, victim_b, 128)) << "A handed out a live object";
    ASSERT_FALSE(in(pb, victim_a, 64) || in(pb, victim_b, 128)) << "B handed out a live object";
    fill_block(pa, 64, 10);
    fill_block(pb, 128, 11);
    as.push_back(pa);
    bs.push_back(pb);
  }
  for (void* p : as) EXPECT_TRUE(verify_block(p, 64, 10)) << "object of A corrupted";
  for (void* p : bs) EXPECT_TRUE(verify_block(p, 128, 11)) << "object of B corrupted";
  std::vector<uintptr_t> all;
  for (void* p : as) all.push_back(reinterpret_cast<uintptr_t>(p));
  for (void* p : bs) all.push_back(reinterpret_cast<uintptr_t>(p));
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "an object handed out twice";

  free_all_and_destroy(a, as);
  free_all_and_destroy(b, bs);
}

TEST(CacheBadFree, ForeignPointerIsIgnored) {
  kmem_cache* c = kmem_cache_create("func-bad-foreign", 32, 0, SLAB_NO_MERGE, nullptr);
  ASSERT_NE(c, nullptr);
  alignas(64) unsigned char stack_buf[256];
  fill_pattern(stack_buf, sizeof stack_buf, 6);
  void* m = slub_malloc(32);  // a kmalloc block, not an object of this cache
  ASSERT_NE(m, nullptr);
  fill_pattern(m, 32, 7);
  EXPECT_NO_FATAL_FAILURE({
    kmem_cache_free(c, stack_buf);
    kmem_cache_free(c, stack_buf + 32);
    kmem_cache_free(c, m);
    kmem_cache_free(c, nullptr);
  });
  EXPECT_EQ(check_pattern(stack_buf, sizeof stack_buf, 6), sizeof stack_buf);
  EXPECT_EQ(check_pattern(m, 32, 7), 32u) << "kmalloc block written by a bad kmem_cache_free";
  std::vector<void*> objs;
  for (int k = 0; k < 500; ++k) {
    void* p = kmem_cache_alloc(c);
    ASSERT_NE(p, nullptr);
    ASSERT_NE(p, m);
    ASSERT_NE(p, static_cast<void*>(stack_buf));
    ASSERT_NE(p, static_cast<void*>(stack_buf + 32));
    objs.push_back(p);
  }
  free_all_and_destroy(c, objs);
  slub_free(m);
}

// ---------------------------------------------------------------------------------------------
// slub::cache<T>

namespace {

struct Tracked {
  static inline std::atomic<int> constructed{0};
  static inline std::atomic<int> destroyed{0};
  uint64_t id;
  std::string label;
  char payload[40];
  Tracked(uint64_t i, const std::string& l) : id(i), label(l) {
    constructed++;
    std::memset(payload, static_cast<int>(i & 0xff), sizeof payload);
  }
  ~Tracked() {
    destroyed++;
    id = ~0ull;
  }
  bool intact(uint64_t i) const {
    if (id != i || label != "obj" + std::to_string(i)) return false;
    for (char ch : payload)
      if (ch != static_cast<char>(i & 0xff)) return false;
    return true;
  }
};

struct alignas(128) OverAligned {
  char data[200];
};

struct Thrower {
  explicit Thrower(bool t) {
    if (t) throw std::runtime_error("boom");
  }
  char x[24];
};

}  // namespace

TEST(CacheCpp, MakeDisposeRunConstructorsAndDestructors) {
  Tracked::constructed = 0;
  Tracked::destroyed = 0;
  {
    slub::cache<Tracked> c("func-cpp-tracked");
    std::vector<Tracked*> v;
    for (uint64_t i = 0; i < 1000; ++i) v.push_back(c.make(i, "obj" + std::to_string(i)));
    EXPECT_EQ(Tracked::constructed.load(), 1000);
    EXPECT_EQ(Tracked::destroyed.load(), 0);
    for (uint64_t i = 0; i < v.size(); ++i) {
      EXPECT_TRUE(v[i]->intact(i)) << "object " << i;
      EXPECT_TRUE(is_aligned(v[i], alignof(Tracked)));
    }
    EXPECT_GE(c.info().active_objs, 1000u);
    for (Tracked* t : v) c.dispose(t);
    EXPECT_EQ(Tracked::destroyed.load(), 1000);
    c.dispose(nullptr);
    EXPECT_EQ(Tracked::destroyed.load(), 1000);

    {
      auto u = c.make_unique(7, "obj7");
      EXPECT_TRUE(u->intact(7));
      EXPECT_EQ(Tracked::constructed.load(), 1001);
    }
    EXPECT_EQ(Tracked::destroyed.load(), 1001) << "make_unique did not dispose";
    c.shrink();
    EXPECT_EQ(c.info().active_objs, 0u);
  }
}

TEST(CacheCpp, OverAlignedType) {
  slub::cache<OverAligned> c("func-cpp-overaligned");
  std::vector<OverAligned*> v;
  for (int i = 0; i < 200; ++i) {
    v.push_back(c.make());
    EXPECT_TRUE(is_aligned(v.back(), 128)) << v.back();
  }
  for (auto* p : v) c.dispose(p);
}

TEST(CacheCpp, ThrowingConstructorFreesTheObject) {
  slub::cache<Thrower> c("func-cpp-thrower", SLAB_NO_MERGE);
  std::vector<Thrower*> v;
  for (int i = 0; i < 10; ++i) v.push_back(c.make(false));
  for (int i = 0; i < 100; ++i) EXPECT_THROW(c.make(true), std::runtime_error);
  for (auto* p : v) c.dispose(p);
  c.shrink();
  EXPECT_EQ(c.info().active_objs, 0u) << "objects of throwing constructors leaked";
}

TEST(CacheCpp, MovedCacheKeepsWorking) {
  slub::cache<Tracked> a("func-cpp-move");
  Tracked* t = a.make(1, "obj1");
  slub::cache<Tracked> b(std::move(a));
  EXPECT_EQ(a.get(), nullptr);
  EXPECT_TRUE(t->intact(1));
  b.dispose(t);
  auto u = b.make_unique(2, "obj2");
  EXPECT_TRUE(u->intact(2));
}
