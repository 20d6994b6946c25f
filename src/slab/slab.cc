// SPDX-License-Identifier: MIT
// slab.cc: the SLAB clone. Function names follow mm/slab.c (kernel 4.x-6.7) so that the two
// can be read side by side; see slab.h for the structures and the lock order.
#include "slab/slab.h"

#include <cstring>
#include <new>

#include "core/meta.h"
#include "mm/page_alloc.h"
#include "mm/page_map.h"
#include "pal/os.h"
#include "pal/process.h"
#include "pal/rcu.h"
#include "pal/topology.h"

namespace slub {

namespace slab {

namespace {

constexpr unsigned kObjMaxNum = 255;  // 1-byte free indices (4 KiB pages)
constexpr unsigned kObjMinSize = 16;
constexpr unsigned kMaxOrder = 1;                    // slab_max_order with more than 32 MiB of RAM
constexpr unsigned kKmallocMaxOrder = kMaxRunOrder;  // the kernel's 10; runs stop at 1 MiB here
constexpr unsigned kBatchRefillLimit = 16;
constexpr unsigned kAlienLimit = 12;
constexpr uint64_t kReapCpuNs = 2000000000ull;   // REAPTIMEOUT_AC
constexpr uint64_t kReapNodeNs = 4000000000ull;  // REAPTIMEOUT_NODE
constexpr unsigned kCacheLine = 64;

// kmalloc's size classes (with 96 and 192), for the sizes the kernel kmallocs.
size_t kmalloc_round(size_t x) {
  if (x <= 8) return 8;
  if (x <= 16) return 16;
  if (x <= 32) return 32;
  if (x <= 64) return 64;
  if (x <= 96) return 96;
  if (x <= 128) return 128;
  if (x <= 192) return 192;
  size_t r = 256;
  while (r < x) r <<= 1;
  return r;
}

// Memory for a queue structure: the kernel's kmalloc size is what it costs.
void* qalloc(size_t size, size_t* counter) {
  const size_t r = kmalloc_round(size);
  void* p = meta::alloc(r);
  if (p != nullptr) *counter += r;
  return p;
}
void qfree(void* p, size_t size, size_t* counter) {
  if (p == nullptr) return;
  const size_t r = kmalloc_round(size);
  meta::free(p, r);
  *counter -= r;
}

void init_array(ArrayCache* ac, unsigned limit, unsigned batch) {
  ac->avail = 0;
  ac->limit = static_cast<uint16_t>(limit);
  ac->batchcount = static_cast<uint16_t>(batch);
  ac->touched = 0;
}

int node_of_cpu(const SlabCache* q, int cpu) {
  const int n = Topology::node_of(cpu);
  return n < q->nr_nodes ? n : 0;
}
int slab_node(const SlabCache* q, const PageDesc* d) {
  return d->node < q->nr_nodes ? d->node : 0;
}

// ---- slab descriptor fields: freelist = the free-index array, inuse = active, start = s_mem.
unsigned active(const PageDesc* d) {
  return SlabCounters{d->counters}.inuse();
}
void set_active(PageDesc* d, unsigned a, unsigned num) {
  d->set_counters(SlabCounters::make(a, num, false));
}
uint8_t* index_array(const PageDesc* d) {
  return static_cast<uint8_t*>(d->freelist);
}
void* index_to_obj(const KmemCache* s, const PageDesc* d, unsigned idx) {
  return d->start + size_t(idx) * s->size;
}
unsigned obj_to_index(const KmemCache* s, const PageDesc* d, const void* obj) {
  return static_cast<unsigned>(((static_cast<const char*>(obj) - d->start) * s->reciprocal) >> 40);
}

void* slab_get_obj(KmemCache* s, PageDesc* d) {
  const unsigned a = active(d);
  void* obj = index_to_obj(s, d, index_array(d)[a]);
  set_active(d, a + 1, s->q->num);
  return obj;
}

// Returns false (reported, nothing changed) for an object already free in its slab: the
// kernel's SLAB would corrupt its index array; a memchr over the free part costs little.
bool slab_put_obj(KmemCache* s, PageDesc* d, void* obj) {
  const unsigned nr = obj_to_index(s, d, obj);
  const unsigned a = active(d);
  const unsigned num = s->q->num;
  if (SLUB_UNLIKELY(a == 0 ||
                    (index_array(d) != nullptr && memchr(index_array(d) + a, int(nr), num - a)))) {
    os::report("slub: %s (SLAB): double free of %p; ignored\n", s->name, obj);
    return false;
  }
  set_active(d, a - 1, num);
  if (index_array(d) == nullptr) d->freelist = obj;  // OBJFREELIST: the freed object holds it
  index_array(d)[a - 1] = static_cast<uint8_t>(nr);
  return true;
}

// After taking objects: a full slab goes to slabs_full (OBJFREELIST: its array is gone), any
// other to the head of slabs_partial. list_lock held.
void fixup_slab_list(KmemCache* s, SlabNode* n, PageDesc* d) {
  ListHead::del(&d->list);
  if (active(d) == s->q->num) {
    n->slabs_full.add_head(&d->list);
    if (s->q->objfreelist) d->freelist = nullptr;
  } else {
    n->slabs_partial.add_head(&d->list);
  }
}

PageDesc* get_first_slab(SlabNode* n) {
  if (!n->slabs_partial.empty())
    return list_entry<PageDesc, &PageDesc::list>(n->slabs_partial.next);
  n->free_touched = 1;
  if (n->slabs_free.empty()) return nullptr;
  n->free_slabs--;
  return list_entry<PageDesc, &PageDesc::list>(n->slabs_free.next);
}

void rcu_free_slab(RcuHead* head) {
  PageAlloc::free(
      reinterpret_cast<PageDesc*>(reinterpret_cast<char*>(head) - offsetof(PageDesc, list)));
}

void slab_destroy(KmemCache* s, PageDesc* d) {
  if (s->flags & SLAB_TYPESAFE_BY_RCU) {
    rcu::call(reinterpret_cast<RcuHead*>(&d->list), rcu_free_slab);
    return;
  }
  PageAlloc::free(d);
}

// Frees the slabs on a detached chain (linked through cpu_partial.next), with no lock held.
void slabs_destroy(KmemCache* s, PageDesc* chain) {
  while (chain != nullptr) {
    PageDesc* d = chain;
    chain = d->cpu_partial.next;
    slab_destroy(s, d);
  }
}

// Returns objects to their slabs on node `node`; slabs beyond free_limit go on *destroy.
// list_lock of `node` held.
void free_block(KmemCache* s, void** objs, unsigned nr, int node, PageDesc** destroy) {
  SlabCache* q = s->q;
  SlabNode* n = q->node[node];
  for (unsigned i = 0; i < nr; ++i) {
    void* obj = objs[i];
    PageDesc* d = PageMap::desc_of(obj);
    if (!slab_put_obj(s, d, obj)) continue;
    n->free_objects++;
    ListHead::del(&d->list);
    if (active(d) == 0) {
      n->slabs_free.add_head(&d->list);
      n->free_slabs++;
    } else {
      n->slabs_partial.add_tail(&d->list);  // the tail: the others get time to be freed
    }
  }
  while (n->free_objects > n->free_limit && !n->slabs_free.empty()) {
    PageDesc* d = list_entry<PageDesc, &PageDesc::list>(n->slabs_free.prev);
    ListHead::del(&d->list);
    n->free_objects -= q->num;
    n->free_slabs--;
    n->total_slabs--;
    d->cpu_partial.next = *destroy;
    *destroy = d;
  }
}

// Moves up to `max` entries from the top of `from` to `to`. Returns the count.
unsigned transfer_objects(ArrayCache* to, ArrayCache* from, unsigned max) {
  unsigned nr = from->avail < max ? from->avail : max;
  const unsigned room = to->limit - to->avail;
  if (nr > room) nr = room;
  if (nr == 0) return 0;
  from->avail -= nr;
  memcpy(to->entry() + to->avail, from->entry() + from->avail, sizeof(void*) * nr);
  to->avail += nr;
  return nr;
}

// A new slab on `node` (cache_grow_begin): pages, colour, index array, constructor. Not yet on
// any list; nullptr when no memory.
PageDesc* cache_grow_begin(KmemCache* s, int node) {
  SlabCache* q = s->q;
  PageDesc* d = PageAlloc::alloc(q->gfporder, node, PageKind::kSlab);
  if (d == nullptr) return nullptr;
  SlabNode* n = q->node[slab_node(q, d)];
  unsigned offset = 0;
  if (q->colour > 0) {  // racy like the kernel's (a lost step only repeats a colour)
    offset = __atomic_load_n(&n->colour_next, __ATOMIC_RELAXED) + 1;  // advanced before use
    if (offset >= q->colour) offset = 0;
    __atomic_store_n(&n->colour_next, offset, __ATOMIC_RELAXED);
    offset *= q->colour_off;
  }
  char* base = desc_address(d);
  d->cache = s;
  d->start = base + offset;
  if (q->objfreelist)  // the last object (handed out last) holds the array while free
    d->freelist = index_to_obj(s, d, q->num - 1);
  else
    d->freelist = base + (kPageSize << q->gfporder) - q->num;
  set_active(d, 0, q->num);
  for (unsigned i = 0; i < q->num; ++i) {
    if (s->ctor != nullptr) s->ctor(index_to_obj(s, d, i));
    index_array(d)[i] = static_cast<uint8_t>(i);
  }
  d->list.init();
  q->grown.fetch_add(1, std::memory_order_relaxed);
  return d;
}

// Links a grown slab into its node's lists (cache_grow_end).
void cache_grow_end(KmemCache* s, PageDesc* d) {
  if (d == nullptr) return;
  SlabCache* q = s->q;
  SlabNode* n = q->node[slab_node(q, d)];
  LockGuard g(n->list_lock);
  n->total_slabs++;
  if (active(d) == 0) {
    n->slabs_free.add_tail(&d->list);
    n->free_slabs++;
  } else {
    fixup_slab_list(s, n, d);
  }
  n->free_objects += q->num - active(d);
}

// Pops objects from `d` into `ac` until the batch is met or the slab is full. Returns what is
// left of the batch.
int alloc_block(KmemCache* s, ArrayCache* ac, PageDesc* d, int batch) {
  while (active(d) < s->q->num && batch-- > 0) ac->entry()[ac->avail++] = slab_get_obj(s, d);
  return batch;
}

// The per-CPU array is empty: refill it from the shared array, then the node's slabs, then a
// new slab. ac->lock held.
void* cache_alloc_refill(KmemCache* s, ArrayCache* ac, int node) {
  SlabCache* q = s->q;
  int batch = ac->batchcount;
  if (!ac->touched && batch > int(kBatchRefillLimit)) batch = kBatchRefillLimit;
  SlabNode* n = q->node[node];
  ArrayCache* shared = n->shared;
  {
    // (The kernel peeks at free_objects and shared->avail first; a peek here would be a data
    // race on fields written under list_lock, so the lock is always taken.)
    LockGuard g(n->list_lock);
    if (shared != nullptr && transfer_objects(ac, shared, batch)) {
      shared->touched = 1;
    } else if (n->free_objects != 0) {  // else straight to a new slab, free_touched untouched
      while (batch > 0) {
        PageDesc* d = get_first_slab(n);
        if (d == nullptr) break;
        batch = alloc_block(s, ac, d, batch);
        fixup_slab_list(s, n, d);
      }
      n->free_objects -= ac->avail;
    }
  }
  if (ac->avail == 0) {
    PageDesc* d = cache_grow_begin(s, node);
    if (d != nullptr) alloc_block(s, ac, d, batch);
    cache_grow_end(s, d);
    if (ac->avail == 0) return nullptr;
  }
  ac->touched = 1;
  return ac->entry()[--ac->avail];
}

// One object straight from node `node`'s slabs, bypassing the arrays (____cache_alloc_node).
void* cache_alloc_node(KmemCache* s, int node, bool grow) {
  SlabCache* q = s->q;
  SlabNode* n = q->node[node];
  {
    LockGuard g(n->list_lock);
    if (PageDesc* d = get_first_slab(n)) {
      void* obj = slab_get_obj(s, d);
      n->free_objects--;
      fixup_slab_list(s, n, d);
      return obj;
    }
  }
  if (!grow) return nullptr;
  PageDesc* d = cache_grow_begin(s, node);
  void* obj = d != nullptr ? slab_get_obj(s, d) : nullptr;
  cache_grow_end(s, d);
  return obj;
}

// fallback_alloc: other nodes with free objects, nearest first.
void* fallback_alloc(KmemCache* s, int node) {
  const int nodes = s->q->nr_nodes;
  for (int k = 1; k < nodes; ++k) {
    const int m = Topology::nearest(node, k) % nodes;
    if (void* obj = cache_alloc_node(s, m, false)) return obj;
  }
  return nullptr;
}

// Gives the oldest batch of a full per-CPU array to the shared array or the slabs. ac->lock
// held.
void cache_flusharray(KmemCache* s, ArrayCache* ac, int node) {
  SlabCache* q = s->q;
  unsigned batch = ac->batchcount;
  SlabNode* n = q->node[node];
  PageDesc* destroy = nullptr;
  {
    LockGuard g(n->list_lock);
    ArrayCache* shared = n->shared;
    const unsigned room = shared != nullptr ? shared->limit - shared->avail : 0;
    if (room > 0) {
      if (batch > room) batch = room;
      memcpy(shared->entry() + shared->avail, ac->entry(), sizeof(void*) * batch);
      shared->avail += batch;
    } else {
      free_block(s, ac->entry(), batch, node, &destroy);
    }
  }
  ac->avail -= batch;
  memmove(ac->entry(), ac->entry() + batch, sizeof(void*) * ac->avail);
  slabs_destroy(s, destroy);
}

// Empties an alien cache into node `node`: its shared array first, then its slabs.
// alien->lock held.
void drain_alien_cache(KmemCache* s, ArrayCache* ac, int node, PageDesc** destroy) {
  if (ac->avail == 0) return;
  SlabNode* n = s->q->node[node];
  LockGuard g(n->list_lock);
  if (n->shared != nullptr) transfer_objects(n->shared, ac, ac->limit);
  free_block(s, ac->entry(), ac->avail, node, destroy);
  ac->avail = 0;
}

// A free of an object of another node: into this node's alien cache for that node
// (cache_free_alien). Returns false for a local object.
bool cache_free_alien(KmemCache* s, void* obj, int node, int obj_node) {
  SlabCache* q = s->q;
  if (node == obj_node || q->nr_nodes == 1) return false;
  q->node_frees.fetch_add(1, std::memory_order_relaxed);
  SlabNode* n = q->node[node];
  PageDesc* destroy = nullptr;
  if (n->alien != nullptr && n->alien[obj_node] != nullptr) {
    AlienCache* alien = n->alien[obj_node];
    LockGuard g(alien->lock);
    if (alien->ac.avail == alien->ac.limit) {
      q->alien_overflow.fetch_add(1, std::memory_order_relaxed);
      drain_alien_cache(s, &alien->ac, obj_node, &destroy);
    }
    alien->ac.entry()[alien->ac.avail++] = obj;
  } else {
    SlabNode* rn = q->node[obj_node];
    LockGuard g(rn->list_lock);
    free_block(s, &obj, 1, obj_node, &destroy);
  }
  slabs_destroy(s, destroy);
  return true;
}

// Frees `tofree` entries, or all with free_all, of `ac` into node `node` (drain_array_locked).
// list_lock held.
void drain_array_locked(KmemCache* s, ArrayCache* ac, int node, bool free_all, PageDesc** destroy) {
  if (ac == nullptr || ac->avail == 0) return;
  unsigned tofree = free_all ? ac->avail : (ac->limit + 4) / 5;
  if (tofree > ac->avail) tofree = (ac->avail + 1) / 2;
  free_block(s, ac->entry(), tofree, node, destroy);
  ac->avail -= tofree;
  memmove(ac->entry(), ac->entry() + tofree, sizeof(void*) * ac->avail);
}

// The reaper's drain of an array: skipped (and untouched) if used since the last pass, else a
// fifth of its limit goes back. Caller holds the array's lock if it has one.
void drain_array(KmemCache* s, SlabNode* n, ArrayCache* ac, int node) {
  if (ac == nullptr || ac->avail == 0) return;
  if (ac->touched) {
    ac->touched = 0;
    return;
  }
  PageDesc* destroy = nullptr;
  {
    LockGuard g(n->list_lock);
    drain_array_locked(s, ac, node, false, &destroy);
  }
  slabs_destroy(s, destroy);
}

// Frees up to `tofree` slabs of the free list. Returns slabs freed.
int drain_freelist(KmemCache* s, SlabNode* n, long tofree) {
  int freed = 0;
  while (freed < tofree) {
    PageDesc* d;
    {
      LockGuard g(n->list_lock);
      if (n->slabs_free.empty()) break;
      d = list_entry<PageDesc, &PageDesc::list>(n->slabs_free.prev);
      ListHead::del(&d->list);
      n->free_slabs--;
      n->total_slabs--;
      n->free_objects -= s->q->num;
    }
    slab_destroy(s, d);
    ++freed;
  }
  return freed;
}

// The kernel's calculate_slab_order for one placement of the index array. Sets num and
// gfporder; returns the leftover bytes.
size_t calculate_slab_order(SlabCache* q, size_t size, bool objfreelist, unsigned long flags) {
  size_t left_over = 0;
  q->num = 0;
  for (unsigned order = 0; order <= kKmallocMaxOrder; ++order) {
    const size_t slab_bytes = kPageSize << order;
    const size_t per = objfreelist ? size : size + 1;
    size_t num = slab_bytes / per;
    if (num == 0) continue;
    if (num > kObjMaxNum) {
      if (q->num != 0) break;  // the previous order stands
      num = kObjMaxNum;        // not reached with 16-byte objects (ON_SLAB: 240 a page)
    }
    q->num = static_cast<uint32_t>(num);
    q->gfporder = order;
    left_over = slab_bytes - num * per;
    if (flags & SLAB_RECLAIM_ACCOUNT) break;
    if (order >= kMaxOrder) break;
    if (left_over * 8 <= slab_bytes) break;
  }
  return left_over;
}

// Queue sizes by object size (enable_cpucache).
void tune(SlabCache* q, size_t size, int nr_cpus) {
  unsigned limit;
  if (size > 131072)
    limit = 1;
  else if (size > kPageSize)
    limit = 8;
  else if (size > 1024)
    limit = 24;
  else if (size > 256)
    limit = 54;
  else
    limit = 120;
  q->limit = limit;
  q->batchcount = (limit + 1) / 2;
  q->shared = (size <= kPageSize && nr_cpus > 1) ? 8 : 0;
}

constinit std::atomic<int> g_nr_slab_caches{0};  // open SLAB caches: the service reaps them
constinit std::atomic<uint64_t> g_reaper_ns{0};
constinit uint64_t g_reap_start = 0;  // the first pass
constinit int g_reap_cpus = 0;        // CPUs given a first reap time
constinit uint64_t g_next_reap[kMaxCpus] = {};
constinit uint16_t g_reap_node[kMaxCpus] = {};  // each CPU's alien-reap cursor

template <typename F>
void for_each_slab_cache(F fn) {
  for (ListHead* h = g_cache_list.next; h != &g_cache_list; h = h->next) {
    KmemCache* s = list_entry<KmemCache, &KmemCache::list>(h);
    if (s->q != nullptr) fn(s);
  }
}

int max_slab_cpus() {
  int m = 0;
  for_each_slab_cache([&](KmemCache* s) { m = s->q->nr_cpus > m ? s->q->nr_cpus : m; });
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

bool open(KmemCache* s) {
  void* m = meta::alloc(sizeof(SlabCache));
  if (m == nullptr) return false;
  SlabCache* q = new (m) SlabCache();
  s->q = q;
  g_nr_slab_caches.fetch_add(1, std::memory_order_relaxed);  // close() takes it back
  // The clone has no debug mode (docs/SLAB.md): SLUB's debug layout is undone.
  s->flags &= ~(SLAB_DEBUG_FLAGS | kObjectPoison);
  s->track_off = 0;
  s->orig_off = 0;
  // Size: the object to the alignment (at least a word), at least kObjMinSize.
  size_t align = calculate_alignment(s->flags, s->align, s->object_size);
  if (align < sizeof(void*)) align = sizeof(void*);
  size_t size = align_up(s->object_size, align);
  if (size < kObjMinSize) size = align_up(kObjMinSize, align);
  q->colour_off = align > kCacheLine ? static_cast<uint32_t>(align) : kCacheLine;
  size_t left;
  q->objfreelist = s->ctor == nullptr && !(s->flags & SLAB_TYPESAFE_BY_RCU);
  if (q->objfreelist) {
    left = calculate_slab_order(q, size, true, s->flags);
    // The index array must fit in an object.
    if (q->num == 0 || q->num > s->object_size) q->objfreelist = false;
  }
  if (!q->objfreelist) left = calculate_slab_order(q, size, false, s->flags);
  if (q->num == 0) return false;
  q->colour = static_cast<uint32_t>(left / q->colour_off);
  s->size = static_cast<uint32_t>(size);
  s->objects = q->num;
  s->min_objects = static_cast<uint16_t>(q->num);
  s->order = static_cast<uint8_t>(q->gfporder);
  s->min_order = s->order;
  s->reciprocal = ((uint64_t{1} << 40) + size - 1) / size;
  s->red_left_pad = 0;
  s->inuse = static_cast<uint32_t>(size);
  s->offset = 0;
  s->cpu_partial = 0;
  s->cpu_partial_slabs = 0;
  s->min_partial = 0;

  const int nr_cpus = Topology::nr_cpus();
  const int nr_nodes = s->nr_nodes;
  tune(q, size, nr_cpus);
  q->nr_cpus = nr_cpus;
  q->nr_nodes = nr_nodes;
  // Per-CPU arrays for every possible CPU, as alloc_percpu; each initialised (so touched).
  q->cpu_stride = 16 + 8 * q->limit;
  q->cpu_arrays_bytes = size_t(nr_cpus) * q->cpu_stride;
  q->cpu_arrays = static_cast<char*>(meta::alloc(q->cpu_arrays_bytes));
  if (q->cpu_arrays == nullptr) return false;
  q->bytes.cpu = q->cpu_arrays_bytes;
  for (int cpu = 0; cpu < nr_cpus; ++cpu) init_array(q->cpu_ac(cpu), q->limit, q->batchcount);

  q->node = static_cast<SlabNode**>(meta::alloc(sizeof(SlabNode*) * nr_nodes));
  if (q->node == nullptr) return false;
  const uint64_t now = os::now_ns();
  for (int i = 0; i < nr_nodes; ++i) {
    SlabNode* n = static_cast<SlabNode*>(qalloc(sizeof(SlabNode), &q->bytes.node));
    if (n == nullptr) return false;
    new (n) SlabNode();
    q->node[i] = n;
    n->slabs_partial.init();
    n->slabs_full.init();
    n->slabs_free.init();
    int on_node = 0;
    for (int cpu = 0; cpu < nr_cpus; ++cpu) on_node += node_of_cpu(q, cpu) == i;
    n->free_limit = (1 + on_node) * q->batchcount + q->num;
    // The first node reap is jittered by the cache's address, as the kernel does.
    n->next_reap_ns = now + kReapNodeNs + (reinterpret_cast<uintptr_t>(s) % kReapNodeNs);
    if (q->shared > 0) {
      const unsigned lim = q->shared * q->batchcount;
      n->shared = static_cast<ArrayCache*>(qalloc(16 + 8 * lim, &q->bytes.shared));
      if (n->shared == nullptr) return false;
      init_array(n->shared, lim, 0xbaadf00d & 0xffff);
    }
    if (nr_nodes > 1) {  // alien caches: one per other node (limit 12)
      n->alien = static_cast<AlienCache**>(qalloc(8 * nr_nodes, &q->bytes.alien));
      if (n->alien == nullptr) return false;
      const unsigned alimit = q->limit > 1 ? kAlienLimit : q->limit;
      for (int j = 0; j < nr_nodes; ++j) {
        if (j == i) continue;
        AlienCache* a =
            static_cast<AlienCache*>(qalloc(sizeof(AlienCache) + 8 * alimit, &q->bytes.alien));
        if (a == nullptr) return false;
        new (a) AlienCache();
        init_array(&a->ac, alimit, 0xbaadf00d & 0xffff);
        n->alien[j] = a;
      }
    }
  }
  return true;  // the service thread starts after the first allocation (thread creation allocates)
}

void close(KmemCache* s) {
  SlabCache* q = s->q;
  if (q == nullptr) return;
  g_nr_slab_caches.fetch_sub(1, std::memory_order_relaxed);
  if (q->node != nullptr) {
    for (int i = 0; i < q->nr_nodes; ++i) {
      SlabNode* n = q->node[i];
      if (n == nullptr) continue;
      if (n->shared != nullptr) qfree(n->shared, 16 + 8 * n->shared->limit, &q->bytes.shared);
      if (n->alien != nullptr) {
        for (int j = 0; j < q->nr_nodes; ++j)
          if (n->alien[j] != nullptr)
            qfree(n->alien[j], sizeof(AlienCache) + 8 * n->alien[j]->ac.limit, &q->bytes.alien);
        qfree(n->alien, 8 * q->nr_nodes, &q->bytes.alien);
      }
      qfree(n, sizeof(SlabNode), &q->bytes.node);
    }
    meta::free(q->node, sizeof(SlabNode*) * q->nr_nodes);
  }
  if (q->cpu_arrays != nullptr) meta::free(q->cpu_arrays, q->cpu_arrays_bytes);
  q->~SlabCache();
  meta::free(q, sizeof(SlabCache));
  s->q = nullptr;
}

void* alloc(KmemCache* s, int want_node) {
  SlabCache* q = s->q;
  const int cpu = CpuId::current();
  const int local = node_of_cpu(q, cpu < q->nr_cpus ? cpu : 0);
  KmemCacheCpu* c = raw_cpu_ptr(s, cpu);
  if (want_node >= 0 && want_node < q->nr_nodes && want_node != local) {
    // A remote node: every object costs that node's list_lock (____cache_alloc_node).
    q->node_allocs.fetch_add(1, std::memory_order_relaxed);
    void* obj = cache_alloc_node(s, want_node, true);
    if (obj == nullptr) obj = fallback_alloc(s, want_node);
    return obj;
  }
  if (cpu >= q->nr_cpus) return cache_alloc_node(s, local, true);  // a CPU without an array
  ArrayCache* ac = q->cpu_ac(cpu);
  void* obj;
  {
    LockGuard g(ac->lock);
    if (SLUB_LIKELY(ac->avail != 0)) {
      ac->touched = 1;
      obj = ac->entry()[--ac->avail];
      if (c != nullptr) stat(c, ALLOC_FASTPATH);  // allochit
      return obj;
    }
    if (c != nullptr) stat(c, ALLOC_SLOWPATH);  // allocmiss
    obj = cache_alloc_refill(s, ac, local);
  }
  if (obj == nullptr) obj = cache_alloc_node(s, local, true);
  if (obj == nullptr) obj = fallback_alloc(s, local);
  return obj;
}

void free(KmemCache* s, PageDesc* d, void* obj) {
  SlabCache* q = s->q;
  const int cpu = CpuId::current();
  const int local = node_of_cpu(q, cpu < q->nr_cpus ? cpu : 0);
  if (cache_free_alien(s, obj, local, slab_node(q, d))) return;
  if (cpu >= q->nr_cpus) {
    PageDesc* destroy = nullptr;
    {
      LockGuard g(q->node[local]->list_lock);
      free_block(s, &obj, 1, local, &destroy);
    }
    slabs_destroy(s, destroy);
    return;
  }
  KmemCacheCpu* c = raw_cpu_ptr(s, cpu);
  ArrayCache* ac = q->cpu_ac(cpu);
  LockGuard g(ac->lock);
  if (SLUB_LIKELY(ac->avail < ac->limit)) {
    if (c != nullptr) stat(c, FREE_FASTPATH);  // freehit
  } else {
    if (c != nullptr) stat(c, FREE_SLOWPATH);  // freemiss
    cache_flusharray(s, ac, local);
  }
  ac->entry()[ac->avail++] = obj;
}

int shrink(KmemCache* s) {
  SlabCache* q = s->q;
  PageDesc* destroy = nullptr;
  // drain_cpu_caches: every CPU's array (the kernel sends an IPI; here a remote drain under
  // the array's lock), then every alien cache and shared array.
  for (int cpu = 0; cpu < q->nr_cpus; ++cpu) {
    ArrayCache* ac = q->cpu_ac(cpu);
    LockGuard g(ac->lock);
    const int node = node_of_cpu(q, cpu);
    LockGuard g2(q->node[node]->list_lock);
    drain_array_locked(s, ac, node, true, &destroy);
  }
  for (int i = 0; i < q->nr_nodes; ++i) {
    SlabNode* n = q->node[i];
    if (n->alien != nullptr)
      for (int j = 0; j < q->nr_nodes; ++j)
        if (AlienCache* a = n->alien[j]) {
          LockGuard g(a->lock);
          drain_alien_cache(s, &a->ac, j, &destroy);
        }
  }
  for (int i = 0; i < q->nr_nodes; ++i) {
    SlabNode* n = q->node[i];
    LockGuard g(n->list_lock);
    drain_array_locked(s, n->shared, i, true, &destroy);
  }
  int freed = 0;
  for (PageDesc* d = destroy; d != nullptr; d = d->cpu_partial.next) ++freed;
  slabs_destroy(s, destroy);
  for (int i = 0; i < q->nr_nodes; ++i) freed += drain_freelist(s, q->node[i], 1l << 40);
  return freed;
}

size_t busy_slabs(KmemCache* s) {
  size_t n = 0;
  for (int i = 0; i < s->q->nr_nodes; ++i) {
    LockGuard g(s->q->node[i]->list_lock);
    n += s->q->node[i]->total_slabs - s->q->node[i]->free_slabs;
  }
  return n;
}

void node_info(const KmemCache* s, int node, kmem_cache_node_info* info) {
  *info = {};
  SlabNode* n = s->q->node[node];
  LockGuard g(n->list_lock);
  info->nr_slabs = n->total_slabs;
  info->total_objs = n->total_slabs * s->q->num;
  for (ListHead* h = n->slabs_partial.next; h != &n->slabs_partial; h = h->next) {
    info->nr_partial++;
    info->partial_free += s->q->num - active(list_entry<PageDesc, &PageDesc::list>(h));
  }
}

void get_info(const KmemCache* s, kmem_cache_info* info) {
  // Common fields are filled by the caller; SLAB's counts, as /proc/slabinfo shows them
  // (objects parked in arrays count as active).
  size_t free_objs = 0;
  for (int i = 0; i < s->q->nr_nodes; ++i) {
    kmem_cache_node_info ni;
    node_info(s, i, &ni);
    info->nr_slabs += ni.nr_slabs;
    info->total_objs += ni.total_objs;
    info->nr_partial += ni.nr_partial;
    SlabNode* n = s->q->node[i];
    LockGuard g(n->list_lock);
    free_objs += n->free_objects;
  }
  info->active_objs = info->total_objs - free_objs;
}

void queue_info(const KmemCache* s, kmem_cache_queue_info* info) {
  SlabCache* q = s->q;
  *info = {};
  info->allocator = 1;
  info->cpu_bytes = q->bytes.cpu;
  info->shared_bytes = q->bytes.shared;
  info->alien_bytes = q->bytes.alien;
  info->node_bytes = q->bytes.node;
  for (int cpu = 0; cpu < q->nr_cpus; ++cpu) {
    ArrayCache* ac = q->cpu_ac(cpu);
    LockGuard g(ac->lock);
    info->parked_cpu += ac->avail;
  }
  for (int i = 0; i < q->nr_nodes; ++i) {
    SlabNode* n = q->node[i];
    if (n->alien != nullptr)
      for (int j = 0; j < q->nr_nodes; ++j)
        if (AlienCache* a = n->alien[j]) {
          LockGuard g(a->lock);
          info->parked_alien += a->ac.avail;
        }
    LockGuard g(n->list_lock);
    if (n->shared != nullptr) info->parked_shared += n->shared->avail;
    info->free_slab_objects += n->free_slabs * q->num;
    if (!q->objfreelist) info->mgmt_bytes += n->total_slabs * q->num;  // 1 byte per object
  }
  info->limit = q->limit;
  info->batchcount = q->batchcount;
  info->shared = q->shared;
  info->reaper_ns = reaper_cpu_ns();
}

bool reap_cpu(int cpu, uint64_t now) {
  if (!g_slab_mutex.try_lock()) return false;  // mutex_trylock(&slab_mutex)
  int reap_node = g_reap_node[cpu];
  for_each_slab_cache([&](KmemCache* s) {
    SlabCache* q = s->q;
    if (cpu >= q->nr_cpus) return;
    const int node = node_of_cpu(q, cpu);
    SlabNode* n = q->node[node];
    // reap_alien: this CPU's cursor names one other node per pass.
    if (n->alien != nullptr && reap_node < q->nr_nodes) {
      if (AlienCache* a = n->alien[reap_node]) {
        if (a->lock.try_lock()) {
          PageDesc* destroy = nullptr;
          drain_alien_cache(s, &a->ac, reap_node, &destroy);
          a->lock.unlock();
          slabs_destroy(s, destroy);
        }
      }
    }
    ArrayCache* ac = q->cpu_ac(cpu);
    if (ac->lock.try_lock()) {
      drain_array(s, n, ac, node);
      ac->lock.unlock();
    }
    if (now < n->next_reap_ns) return;
    n->next_reap_ns = now + kReapNodeNs;
    if (n->shared != nullptr) {  // the shared array is under list_lock
      PageDesc* destroy = nullptr;
      {
        LockGuard g(n->list_lock);
        if (n->shared->touched)
          n->shared->touched = 0;
        else
          drain_array_locked(s, n->shared, node, false, &destroy);
      }
      slabs_destroy(s, destroy);
    }
    bool touched;
    {
      LockGuard g(n->list_lock);
      touched = n->free_touched;
      n->free_touched = 0;
    }
    if (!touched) {
      const long tofree = (long(n->free_limit) + 5 * q->num - 1) / (5 * q->num);
      q->reaped.fetch_add(drain_freelist(s, n, tofree), std::memory_order_relaxed);
    }
  });
  // next_reap_node: the cursor moves to the next node once per pass.
  const int nodes = Topology::nr_nodes();
  g_reap_node[cpu] = static_cast<uint16_t>((reap_node + 1) % (nodes > 0 ? nodes : 1));
  g_slab_mutex.unlock();
  return true;
}

bool reap_wanted() {
  return g_nr_slab_caches.load(std::memory_order_relaxed) != 0;
}

// The kernel's cache_reap, as its per-CPU delayed work would run it: each CPU's first reap about
// 1 s after the reaping starts (staggered over the 2 s period), then one every 2 s, all from
// the one service thread walking the CPUs, never a thread per CPU.
void reap_pass(uint64_t now) {
  const uint64_t t0 = os::thread_cpu_ns();
  if (g_reap_start == 0) g_reap_start = now;
  int m;
  {
    LockGuard g(g_slab_mutex);
    m = max_slab_cpus();
  }
  for (; g_reap_cpus < m; ++g_reap_cpus)
    g_next_reap[g_reap_cpus] =
        g_reap_start + 1000000000ull + kReapCpuNs * uint64_t(g_reap_cpus) / uint64_t(m);
  for (int cpu = 0; cpu < m; ++cpu) {
    if (now < g_next_reap[cpu]) continue;
    reap_cpu(cpu, now);
    g_next_reap[cpu] = now + kReapCpuNs;
  }
  g_reaper_ns.fetch_add(os::thread_cpu_ns() - t0, std::memory_order_relaxed);
}

uint64_t reaper_cpu_ns() {
  return g_reaper_ns.load(std::memory_order_relaxed);
}

// One class at a time across all caches (every array, then every alien cache, then every
// node), as fork_prepare does for SLUB's: slab.h's lock order for any number of caches (one
// cache's node lock, then another's array lock, would not be in it). g_slab_mutex is held:
// lock_nest, the many locks of one class (base/lock_rank.h).
void lock_all() {
  for_each_slab_cache([](KmemCache* s) {
    SlabCache* q = s->q;
    for (int cpu = 0; cpu < q->nr_cpus; ++cpu) q->cpu_ac(cpu)->lock.lock_nest(g_slab_mutex);
  });
  for_each_slab_cache([](KmemCache* s) {
    SlabCache* q = s->q;
    for (int i = 0; i < q->nr_nodes; ++i)
      if (q->node[i]->alien != nullptr)
        for (int j = 0; j < q->nr_nodes; ++j)
          if (q->node[i]->alien[j] != nullptr) q->node[i]->alien[j]->lock.lock_nest(g_slab_mutex);
  });
  for_each_slab_cache([](KmemCache* s) {
    SlabCache* q = s->q;
    for (int i = 0; i < q->nr_nodes; ++i) q->node[i]->list_lock.lock_nest(g_slab_mutex);
  });
}

void unlock_all(bool child) {
  for_each_slab_cache([child](KmemCache* s) {
    SlabCache* q = s->q;
    auto rel = [child](auto& l) { child ? l.reset() : l.unlock(); };
    for (int i = 0; i < q->nr_nodes; ++i) rel(q->node[i]->list_lock);
    for (int i = 0; i < q->nr_nodes; ++i)
      if (q->node[i]->alien != nullptr)
        for (int j = 0; j < q->nr_nodes; ++j)
          if (q->node[i]->alien[j] != nullptr) rel(q->node[i]->alien[j]->lock);
    for (int cpu = 0; cpu < q->nr_cpus; ++cpu) rel(q->cpu_ac(cpu)->lock);
  });
  if (child) {  // the child's reaping starts afresh, as the kernel's work items would
    g_reap_start = 0;
    g_reap_cpus = 0;
  }
}

}  // namespace slab
}  // namespace slub
