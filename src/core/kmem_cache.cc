#include "core/kmem_cache.h"

#include <cstring>
#include <new>

#include "core/debug.h"
#include "core/meta.h"
#include "pal/os.h"

namespace slub {

constinit std::atomic<char*> g_cpu_area[kMaxCpus] = {};
constinit SpinLock g_slab_mutex;
constinit ListHead g_cache_list = {&g_cache_list, &g_cache_list};

namespace {
constinit SpinLock g_area_lock;
constinit uint16_t g_used_cpus[kMaxCpus] = {};
constinit std::atomic<int> g_nr_used_cpus{0};
constinit uint64_t g_slot_bitmap[kMaxCaches / 64] = {};  // protected by g_slab_mutex

constexpr unsigned kSlubMaxOrder = 3;  // PAGE_ALLOC_COSTLY_ORDER, as the kernel's default

long alloc_cpu_slot() {
  const size_t slots = cpu_area_size() / sizeof(KmemCacheCpu);
  for (size_t w = 0; w < slots / 64; ++w) {
    if (~g_slot_bitmap[w] == 0) continue;
    unsigned b = __builtin_ctzll(~g_slot_bitmap[w]);
    g_slot_bitmap[w] |= uint64_t{1} << b;
    return static_cast<long>(w * 64 + b);
  }
  return -1;
}

void free_cpu_slot(size_t slot) {
  g_slot_bitmap[slot / 64] &= ~(uint64_t{1} << (slot % 64));
}

}  // namespace

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

char* get_cpu_area(int cpu) {
  char* a = g_cpu_area[cpu].load(std::memory_order_acquire);
  if (a != nullptr) return a;
  LockGuard g(g_area_lock);
  a = g_cpu_area[cpu].load(std::memory_order_relaxed);
  if (a != nullptr) return a;
  a = static_cast<char*>(os::map(cpu_area_size()));
  if (a == nullptr) return nullptr;
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
  long env = os::env_long("SLUB_MIN_OBJECTS", 0);
  if (env > 0) min_objects = static_cast<unsigned>(env);
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
  // Sheaves (kmem_cache.h): at most 8 KiB of objects a CPU for sizes up to 256 bytes, 14 KiB
  // up to 1 KiB and 24 KiB up to a page; none for bigger objects, whose slabs hold few, nor
  // for debug caches, whose every free is checked under the node lock. SLUB_SHEAF=0: none.
  if (s->is_debug() || size > kPageSize || os::env_long("SLUB_SHEAF", 1) == 0)
    s->sheaf_cap = 0;
  else
    s->sheaf_cap = size <= 256 ? kSheafMaxCap : (size <= 1024 ? 14 : 6);
  return true;
}

bool kmem_cache_open(KmemCache* s, const char* name, size_t size, size_t align, unsigned long flags,
                     kmem_ctor_t ctor) {
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
  if (os::env_long("SLUB_FREELIST_RANDOM", 0) != 0 && s->objects > 1) {
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

  long slot = alloc_cpu_slot();
  if (slot < 0) return false;
  s->cpu_off = static_cast<uint32_t>(slot * sizeof(KmemCacheCpu));
  s->has_cpu_slot = true;

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
  if (s->has_cpu_slot) {  // a cache that failed to open may not have one (cpu_off 0 is taken)
    // The slot goes to the next cache created: it must start from zero counts.
    const int used = nr_used_cpus();
    for (int i = 0; i < used; ++i)
      if (KmemCacheCpu* c = per_cpu_ptr(s, used_cpu(i))) {
        memset(c->stat, 0, sizeof c->stat);
        if (c->sheaf != nullptr) {  // empty by now (destroy flushed every CPU)
          meta::free(c->sheaf, sheaf_bytes(c->sheaf->cap));
          c->sheaf = nullptr;
        }
      }
    free_cpu_slot(s->cpu_off / sizeof(KmemCacheCpu));
    s->has_cpu_slot = false;
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
