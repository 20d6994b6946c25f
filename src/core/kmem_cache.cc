// SPDX-License-Identifier: MIT
#include "core/kmem_cache.h"

#include <cstring>
#include <new>

#include "core/debug.h"
#include "core/kmalloc.h"
#include "core/meta.h"
#include "pal/options.h"
#include "pal/os.h"
#include "pal/process.h"

namespace slub {

constinit KmemCache g_caches[kMaxCaches] = {};
constinit std::atomic<char*> g_cpu_area[kMaxCpus] = {};
constinit char* g_pcs_base = nullptr;
constinit SpinLock<LockClass::kSlabMutex> g_slab_mutex;
constinit std::atomic<int> g_init_state{0};

void wait_for_init() {
  while (g_init_state.load(std::memory_order_acquire) == 1) os::yield();
}
constinit ListHead g_cache_list = {&g_cache_list, &g_cache_list};

namespace {
constinit SpinLock<LockClass::kCpuArea> g_area_lock;
constinit uint16_t g_used_cpus[kMaxCpus] = {};
constinit std::atomic<int> g_nr_used_cpus{0};
constinit int g_pcs_cpus = 0;  // areas of CPUs 0 .. g_pcs_cpus-1 are in the reservation
// Slots of the CPU areas, in kCpuAreaUnit units, and cache indexes: g_slab_mutex.
constexpr size_t kAreaUnits = kCpuAreaSize / kCpuAreaUnit;
constinit uint64_t g_unit_bitmap[kAreaUnits / 64] = {};
// Index 0 is never a cache; 1 .. kNumKmalloc are the kmalloc caches.
constinit uint64_t g_index_bitmap[kMaxCaches / 64] = {(uint64_t{1} << (kNumKmalloc + 1)) - 1};

constexpr unsigned kSlubMaxOrder = 3;  // PAGE_ALLOC_COSTLY_ORDER, as the kernel's default

bool unit_used(size_t u) {
  return (g_unit_bitmap[u / 64] >> (u % 64)) & 1;
}

// First fit for `bytes` (a multiple of kCpuAreaUnit) within the usable part of an area; the
// offset, or -1.
long alloc_area_slot(size_t bytes) {
  const size_t n = bytes / kCpuAreaUnit, units = cpu_area_size() / kCpuAreaUnit;
  for (size_t start = 0; start + n <= units;) {
    size_t k = 0;
    while (k < n && !unit_used(start + k)) ++k;
    if (k == n) {
      for (k = 0; k < n; ++k) g_unit_bitmap[(start + k) / 64] |= uint64_t{1} << ((start + k) % 64);
      return static_cast<long>(start * kCpuAreaUnit);
    }
    start += k + 1;
  }
  return -1;
}

void free_area_slot(size_t off, size_t bytes) {
  for (size_t u = off / kCpuAreaUnit; u < (off + bytes) / kCpuAreaUnit; ++u)
    g_unit_bitmap[u / 64] &= ~(uint64_t{1} << (u % 64));
}

size_t pcs_bytes(uint32_t cap) {
  return align_up(Pcs::bytes(cap), kCpuAreaUnit);
}

}  // namespace

long alloc_cache_index() {
  for (size_t w = 0; w < kMaxCaches / 64; ++w) {
    if (~g_index_bitmap[w] == 0) continue;
    const unsigned b = __builtin_ctzll(~g_index_bitmap[w]);
    g_index_bitmap[w] |= uint64_t{1} << b;
    return static_cast<long>(w * 64 + b);
  }
  return -1;
}

void free_cache_index(unsigned i) {
  g_index_bitmap[i / 64] &= ~(uint64_t{1} << (i % 64));
}

size_t calculate_alignment(unsigned long flags, size_t align, size_t size) {
  if (flags & SLAB_HWCACHE_ALIGN) {
    size_t ralign = kCacheLine;
    while (size <= ralign / 2) ralign /= 2;
    if (ralign > align) align = ralign;
  }
  if (align < sizeof(void*)) align = sizeof(void*);
  return align_up(align, sizeof(void*));
}

size_t cpu_area_size() {
  static constinit std::atomic<size_t> size{0};
  size_t v = size.load(std::memory_order_relaxed);
  if (SLUB_UNLIKELY(v == 0)) {  // the same answer every time: the budget is read once
    v = os::reservation_size(kCpuAreaSize, size_t{64} << 10, 32);
    size.store(v, std::memory_order_relaxed);
  }
  return v;
}

void cpu_areas_init() {
  LockGuard g(g_area_lock);
  if (g_pcs_base != nullptr) return;
  // With room in the address space: one reservation for the possible CPUs and the two dummies,
  // read-only (reads give zero, nothing is charged); a CPU's part is made writable when it is
  // first used. Under a tight RLIMIT_AS the areas are mapped one by one, smaller, and caches
  // have no sheaves (their fast paths need the reservation).
  // Every CPU id rseq may show (a virtual topology may name fewer CPUs than the machine has).
  const int cpus = Topology::nr_cpus() > Topology::possible_cpus() ? Topology::nr_cpus()
                                                                   : Topology::possible_cpus();
  const size_t bytes = (static_cast<size_t>(cpus) + 2) * kCpuAreaSize;
  if (cpu_area_size() != kCpuAreaSize || os::address_space_budget() / 8 < bytes) return;
  char* r = static_cast<char*>(os::reserve_readonly(bytes));
  if (r == nullptr) return;
  g_pcs_cpus = cpus;
  g_pcs_base = r + 2 * kCpuAreaSize;
}

int pcs_cpus() {
  return g_pcs_cpus;
}

char* get_cpu_area(int cpu) {
  char* a = g_cpu_area[cpu].load(std::memory_order_acquire);
  if (a != nullptr) return a;
  LockGuard g(g_area_lock);
  a = g_cpu_area[cpu].load(std::memory_order_relaxed);
  if (a != nullptr) return a;
  if (cpu < g_pcs_cpus) {
    a = g_pcs_base + static_cast<size_t>(cpu) * kCpuAreaSize;
    if (!os::commit(a, kCpuAreaSize)) return nullptr;
  } else {
    a = static_cast<char*>(os::map(cpu_area_size()));
    if (a == nullptr) return nullptr;
  }
  int n = g_nr_used_cpus.load(std::memory_order_relaxed);
  g_used_cpus[n] = static_cast<uint16_t>(cpu);
  g_cpu_area[cpu].store(a, std::memory_order_release);
  g_nr_used_cpus.store(n + 1, std::memory_order_release);
  return a;
}

void cpu_area_lock() {
  g_area_lock.lock();
}
void cpu_area_unlock() {
  g_area_lock.unlock();
}

int nr_used_cpus() {
  return g_nr_used_cpus.load(std::memory_order_acquire);
}
int used_cpu(int i) {
  return g_used_cpus[i];
}

unsigned order_objects(unsigned order, size_t size) {
  return static_cast<unsigned>((kPageSize << order) / size);
}

unsigned calculate_order(size_t size, int nr_cpus) {
  unsigned min_objects = 4 * (fls(static_cast<unsigned long>(nr_cpus)) + 1);
  if (const long env = options::number(options::kOptMinObjects); env > 0)
    min_objects = static_cast<unsigned>(env);
  unsigned max_objects = order_objects(kSlubMaxOrder, size);
  if (max_objects < 1) max_objects = 1;
  if (min_objects > max_objects) min_objects = max_objects;
  unsigned min_order = get_order(size_t{min_objects} * size);
  if (order_objects(min_order, size) > kMaxObjsPerSlab)
    return get_order(size * kMaxObjsPerSlab) - 1;
  for (unsigned fraction = 16; fraction > 1; fraction /= 2) {
    for (unsigned order = min_order; order <= kSlubMaxOrder; ++order) {
      const size_t slab = kPageSize << order;
      if (slab % size <= slab / fraction) return order;
    }
  }
  return get_order(size);  // does not fit in slub_max_order: one object per minimal slab
}

// The slot layout, as the kernel's calculate_sizes (offsets from the object start):
//   [left red zone: red_left_pad (Z)] object [right red zone up to inuse (Z)]
//   [free pointer if outside] [alloc and free Track (U)] [requested size (kmalloc, Z or U)]
//   [one word of padding (Z)] [alignment padding]
bool calculate_sizes(KmemCache* s, int nr_cpus) {
  const unsigned long flags = s->flags & ~kObjectPoison;
  size_t size = align_up(s->object_size, sizeof(void*));
  s->flags = flags;
  if ((flags & SLAB_POISON) && !(flags & SLAB_TYPESAFE_BY_RCU) && s->ctor == nullptr)
    s->flags |= kObjectPoison;
  // A word-aligned object gets one word of right red zone; others use their slack.
  if ((flags & SLAB_RED_ZONE) && size == s->object_size) size += sizeof(void*);
  s->inuse = static_cast<uint32_t>(size);
  if (s->ctor != nullptr || (flags & SLAB_TYPESAFE_BY_RCU) || (s->flags & kObjectPoison) ||
      ((flags & SLAB_RED_ZONE) && s->object_size < sizeof(void*))) {
    // The object must keep its contents (or its poison) while free: the free pointer goes
    // after it.
    s->offset = static_cast<uint32_t>(size);
    size += sizeof(void*);
  } else {
    // Near the middle, away from the edges that small overflows hit (kernel >= 5.7).
    s->offset = static_cast<uint32_t>(align_down(s->object_size / 2, sizeof(void*)));
  }
  s->track_off = 0;
  if (flags & SLAB_STORE_USER) {
    s->track_off = static_cast<uint32_t>(size);
    size += 2 * kTrackSize;
  }
  s->orig_off = 0;
  if (s->is_kmalloc && (flags & (SLAB_STORE_USER | SLAB_RED_ZONE))) {
    s->orig_off = static_cast<uint32_t>(size);
    size += sizeof(uint64_t);
  }
  s->align = static_cast<uint32_t>(calculate_alignment(flags, s->align, s->object_size));
  s->red_left_pad = 0;
  if (flags & SLAB_RED_ZONE) {
    size += sizeof(void*);  // catches overwrites from the previous object before metadata
    s->red_left_pad = static_cast<uint32_t>(align_up(sizeof(void*), s->align));
    size += s->red_left_pad;
  }
  size = align_up(size, s->align);
  if (size > (kPageSize << kMaxRunOrder)) return false;
  s->size = static_cast<uint32_t>(size);
  s->order = static_cast<uint8_t>(calculate_order(size, nr_cpus));
  if (s->order > kMaxRunOrder) return false;
  s->objects = order_objects(s->order, size);
  s->min_order = static_cast<uint8_t>(get_order(size));
  s->min_objects = static_cast<uint16_t>(order_objects(s->min_order, size));
  s->reciprocal = ((uint64_t{1} << 40) + size - 1) / size;

  unsigned mp = ilog2(size) / 2;
  s->min_partial = mp < 5 ? 5 : (mp > 10 ? 10 : mp);
  if (s->is_debug())
    s->cpu_partial = 0;
  else if (size >= kPageSize)
    s->cpu_partial = 6;
  else if (size >= 1024)
    s->cpu_partial = 24;
  else if (size >= 256)
    s->cpu_partial = 52;
  else
    s->cpu_partial = 120;
  s->cpu_partial_slabs = (s->cpu_partial * 2 + s->objects - 1) / s->objects;
  // The free fast path's object-start test: size = odd << div_shift; an offset x into the
  // slab is an object start iff rotr(x * div_inv, div_shift) <= max_index (the rotation puts
  // any low bits of x that must be zero at the top; for a multiple of size it gives x / size).
  s->div_shift = static_cast<uint8_t>(__builtin_ctzll(size));
  const uint64_t odd = size >> s->div_shift;
  uint64_t inv = odd;  // Newton's iteration for the inverse modulo 2^64: 3, 6, 12, 24, 48, 96 bits
  for (int i = 0; i < 5; ++i) inv *= 2 - odd * inv;
  s->div_inv = inv;
  s->slab_mask = static_cast<uint32_t>((kPageSize << s->order) - 1);
  s->max_index = s->objects - 1;
  // The double-free tag goes into the object's first word, or where the free pointer sits when
  // the object must keep its contents while free (ctor, RCU, poison) or has only one word.
  s->tag_off = s->freeptr_outside() || s->offset == 0 ? s->offset : 0;
  return true;
}

// The kernel's sheaf capacities (calculate_sheaf_capacity, Linux 7.0) for objects of `size`.
uint32_t default_sheaf_capacity(size_t size) {
  if (size >= kPageSize) return 4;
  if (size >= 1024) return 12;
  if (size >= 256) return 28;
  return kSheafSmallCap;
}

bool sheaves_enabled() {
  return options::flag(options::kOptSheaves);
}

bool kmem_cache_open(KmemCache* s, const char* name, size_t size, size_t align, unsigned long flags,
                     kmem_ctor_t ctor, int sheaf_capacity) {
  s->object_size = static_cast<uint32_t>(size);
  s->align = static_cast<uint32_t>(align);
  s->flags = kmem_cache_flags(name, flags);  // SLUB_DEBUG may add debug flags
  s->ctor = ctor;
  s->refcount = 1;
  size_t n = strlen(name);
  if (n >= sizeof s->name) n = sizeof s->name - 1;
  memcpy(s->name, name, n);
  s->name[n] = '\0';
  if (!calculate_sizes(s, Topology::nr_cpus())) return false;
  s->random = os::random_u64();
  if (options::flag(options::kOptFreelistRandom) && s->objects > 1) {
    // Fisher-Yates over the object indices, once per cache (the kernel's init_cache_random_seq).
    s->random_seq = static_cast<uint16_t*>(meta::alloc(sizeof(uint16_t) * s->objects));
    if (s->random_seq != nullptr) {
      for (uint32_t i = 0; i < s->objects; ++i) s->random_seq[i] = static_cast<uint16_t>(i);
      for (uint32_t i = s->objects - 1; i > 0; --i) {
        const uint32_t j = static_cast<uint32_t>(os::random_u64() % (i + 1));
        const uint16_t t = s->random_seq[i];
        s->random_seq[i] = s->random_seq[j];
        s->random_seq[j] = t;
      }
    }
  }

  const long slot = alloc_area_slot(sizeof(KmemCacheCpu));
  if (slot < 0) {  // every cache has a slot in every CPU's area: the areas are full
    os::print(
        "slub: kmem_cache_create(%s): no room for its per-CPU slot (%zu KiB a CPU, "
        "full with the caches open)\n",
        s->name, cpu_area_size() >> 10);
    return false;
  }
  s->cpu_off = static_cast<uint32_t>(slot);
  s->has_cpu_slot = true;
  s->tag = os::random_u64() | 1;  // never 0, what an allocation leaves
  // Sheaves: unless the cache is a debug or SLAB one, asked for none (capacity 0, or
  // SLUB_SHEAVES=0), or there is no room for them (no reservation of CPU areas, or no slot).
  uint32_t cap =
      sheaf_capacity < 0 ? default_sheaf_capacity(s->size) : static_cast<uint32_t>(sheaf_capacity);
  if (cap > kSheafMaxCap) cap = kSheafMaxCap;
  if (sheaf_capacity > 0 && cap < default_sheaf_capacity(s->size))
    cap = default_sheaf_capacity(s->size);  // as the kernel: at least the default
  if (s->is_debug() || (s->flags & SLAB_QUEUED) || !sheaves_enabled() || g_pcs_base == nullptr)
    cap = 0;
  if (cap != 0) {
    const long off = alloc_area_slot(pcs_bytes(cap));
    if (off >= 0) {
      s->pcs_off = static_cast<uint32_t>(off + Pcs::below(cap));  // the word (Pcs)
      s->pcs_base = reinterpret_cast<uint64_t>(g_pcs_base + s->pcs_off);
      s->sheaf_cap = cap;
    }
  }

  s->remote_node_defrag_ratio = 1000;
  s->nr_nodes = Topology::nr_nodes();
  s->node = static_cast<KmemCacheNode**>(meta::alloc(sizeof(KmemCacheNode*) * s->nr_nodes));
  if (s->node == nullptr) return false;  // the caller's kmem_cache_release undoes the rest
  for (int i = 0; i < s->nr_nodes; ++i) {
    void* m = meta::alloc(sizeof(KmemCacheNode));
    if (m == nullptr) {
      s->nr_nodes = i;  // release frees the nodes made so far
      return false;
    }
    s->node[i] = new (m) KmemCacheNode();
    s->node[i]->partial.init();
    s->node[i]->full.init();
  }
  g_cache_list.add_tail(&s->list);
  return true;
}

void report_bad_freeptr(const KmemCache* s, const void* object, const void* next) {
  os::report(
      "slub: %s: free pointer of object %p is corrupted (decodes to %p); the rest of "
      "its freelist is dropped\n",
      s->name, object, next);
}

void kmem_cache_release(KmemCache* s) {
  if (s->list.next != nullptr) ListHead::del(&s->list);
  if (s->has_cpu_slot) {  // a cache that failed to open may not have one
    // The slots go to the next cache created: they must start from zero.
    const int used = nr_used_cpus();
    for (int i = 0; i < used; ++i) {
      const int cpu = used_cpu(i);
      if (KmemCacheCpu* c = per_cpu_ptr(s, cpu)) {
        if (c->spare != nullptr) meta::free(c->spare, sheaf_bytes(c->spare->cap));  // empty
        memset(static_cast<void*>(c), 0, sizeof *c);
      }
      if (s->sheaf_cap != 0)
        if (Pcs* pcs = pcs_ptr(s, cpu))
          memset(reinterpret_cast<char*>(pcs) - Pcs::below(s->sheaf_cap), 0,
                 pcs_bytes(s->sheaf_cap));
    }
    free_area_slot(s->cpu_off, sizeof(KmemCacheCpu));
    if (s->sheaf_cap != 0)
      free_area_slot(s->pcs_off - Pcs::below(s->sheaf_cap), pcs_bytes(s->sheaf_cap));
    s->has_cpu_slot = false;
    s->sheaf_cap = 0;
    s->pcs_base = 0;
  }
  if (s->random_seq != nullptr) meta::free(s->random_seq, sizeof(uint16_t) * s->objects);
  s->random_seq = nullptr;
  if (s->node != nullptr) {
    for (int i = 0; i < s->nr_nodes; ++i) meta::free(s->node[i], sizeof(KmemCacheNode));
    meta::free(s->node, sizeof(KmemCacheNode*) * s->nr_nodes);
    s->node = nullptr;
  }
}

}  // namespace slub
