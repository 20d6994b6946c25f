/* SPDX-License-Identifier: MIT */
/* slub: a SLUB-style allocator for user space. Public C API.
 *
 * Caches of fixed-size objects in the manner of the Linux kernel's kmem_cache API, plus the
 * prefixed malloc family (slub_malloc, ...) that libslub.so also exports under the libc names.
 * Every function is thread-safe. None of them calls the C library's malloc (slub_malloc_info's
 * fwrite aside: stdio may allocate its FILE's buffer).
 */
#ifndef SLUB_SLUB_H
#define SLUB_SLUB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <slub/version.h> /* SLUB_VERSION_MAJOR, _MINOR, _PATCH, _STRING: these headers' version */

#ifdef __cplusplus
extern "C" {
#endif

/* Cache creation flags, numbered as in the kernel's include/linux/slab.h where one exists. */
#define SLAB_CONSISTENCY_CHECKS 0x00000100UL /* F: check every free (debug) */
#define SLAB_RED_ZONE 0x00000400UL           /* Z: red zones around objects (debug) */
#define SLAB_POISON 0x00000800UL             /* P: poison free objects (debug) */
#define SLAB_NO_MERGE 0x00001000UL           /* never merge with another cache */
#define SLAB_HWCACHE_ALIGN 0x00002000UL      /* align objects on cache lines */
#define SLAB_CACHE_DMA 0x00004000UL          /* kept for API compatibility; merge-relevant */
#define SLAB_CACHE_DMA32 0x00008000UL        /* kept for API compatibility; merge-relevant */
#define SLAB_STORE_USER 0x00010000UL         /* U: record last alloc/free owner (debug) */
#define SLAB_PANIC 0x00040000UL              /* abort if creation fails */
#define SLAB_TYPESAFE_BY_RCU 0x00080000UL    /* slab memory freed only after a grace period */
#define SLAB_TRACE 0x00200000UL              /* T: log every alloc and free (debug) */
#define SLAB_NOLEAKTRACE 0x00800000UL        /* kernel compatibility; no effect */
#define SLAB_RECLAIM_ACCOUNT 0x00020000UL    /* objects are reclaimable; merge-relevant */
#define SLAB_ACCOUNT 0x04000000UL            /* kernel compatibility; merge-relevant */
#define SLAB_QUEUED                                                       \
  0x10000000UL /* a cache of the SLAB clone, not SLUB (docs/SLAB.md); the \
                  default for every cache under SLUB_ALLOCATOR=slab */

/* The debug flags together: a cache with any of them never takes the lockless fast path. */
#define SLAB_DEBUG_FLAGS \
  (SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TRACE)

struct kmem_cache;
typedef void (*kmem_ctor_t)(void* object);

/* Creates a cache of objects of `size` bytes aligned to `align` (0: the natural minimum of
 * 8 bytes; otherwise a power of two). `ctor`, if given, runs once per object when its slab is
 * made; objects keep their constructed state across free and alloc. The name is copied.
 * Returns NULL with errno set (EINVAL for bad arguments, ENOMEM) on failure. */
struct kmem_cache* kmem_cache_create(const char* name, size_t size, size_t align,
                                     unsigned long flags, kmem_ctor_t ctor);

/* The same with a usercopy region [useroffset, useroffset + usersize) (the kernel's
 * kmem_cache_create_usercopy); a cache with one is never merged with another. */
struct kmem_cache* kmem_cache_create_usercopy(const char* name, size_t size, size_t align,
                                              unsigned long flags, size_t useroffset,
                                              size_t usersize, kmem_ctor_t ctor);

/* The creation arguments of kmem_cache_create_args, as the kernel's struct kmem_cache_args.
 * Zero-initialised it gives kmem_cache_create's behaviour. */
struct kmem_cache_args {
  size_t align;                /* as kmem_cache_create's */
  size_t useroffset, usersize; /* as kmem_cache_create_usercopy's */
  kmem_ctor_t ctor;
  /* Sheaves: with use_sheaf_capacity set, the objects a CPU's sheaf holds: 0 for none, the
   * classic per-CPU slab of the 2007-2025 design (tid and cmpxchg16b fast path), else at least
   * that many (at most 128; the defaults are the kernel's: 60 below 256 bytes, 28 below 1 KiB,
   * 12 below 4 KiB, 4 above). Such a cache is never merged. Without use_sheaf_capacity the
   * default, or none under SLUB_SHEAVES=0. */
  unsigned int sheaf_capacity;
  int use_sheaf_capacity;
};
struct kmem_cache* kmem_cache_create_args(const char* name, size_t size,
                                          const struct kmem_cache_args* args, unsigned long flags);
/* The sheaf capacity of a cache (0: the classic mode, no sheaves). */
unsigned int kmem_cache_sheaf_capacity(const struct kmem_cache* cache);

/* Merging (docs/MERGING.md): kmem_cache_create may return an existing compatible cache, which
 * then counts the new name as an alias; kmem_cache_destroy of any of its names drops one
 * reference, and the cache goes when the last one does. SLUB_NOMERGE=1 turns merging off.
 * kmem_cache_name gives the first name. This fills `names` with up to `max` alias names and
 * returns how many there are. */
int kmem_cache_aliases(const struct kmem_cache* cache, const char** names, int max);

/* Allocates one object; NULL with errno = ENOMEM on failure. */
void* kmem_cache_alloc(struct kmem_cache* cache);
/* Allocates one object and zeroes its object_size bytes. */
void* kmem_cache_zalloc(struct kmem_cache* cache);
/* Frees an object of this cache. NULL is ignored. A pointer that is not an object of the
 * cache is reported on stderr and left alone. */
void kmem_cache_free(struct kmem_cache* cache, void* object);

/* Debug mode (docs/DEBUGGING.md). Flushes the per-CPU slabs and checks every slab of the cache
 * on the node lists (all slabs of a debug cache, which keeps full slabs listed; the partial
 * slabs of others): counters, freelist, and for debug caches red zones, poison and padding of
 * every object. Reports each problem, repairs what it can, and returns the number found.
 * Exact for debug caches; other caches may change under it while it runs. */
int kmem_cache_validate(struct kmem_cache* cache);

/* With U (SLAB_STORE_USER): writes the call sites that allocated the live objects
 * (free_calls = 0) or freed the free objects (free_calls = 1), most frequent first, one line
 * each: count, function, age min/avg/max in ms, thread ids, CPUs. Returns the number of call
 * sites, or -1 when the cache does not track users. */
int kmem_cache_print_calls(struct kmem_cache* cache, int free_calls, int fd);

/* The number of problems the debug mode has reported (BUG reports) since the program began. */
long slub_debug_errors(void);

/* Flushes the per-CPU slabs of the cache and releases its empty slabs to the page allocator.
 * Returns the number of slabs released. */
int kmem_cache_shrink(struct kmem_cache* cache);

/* Destroys a cache. If objects are still allocated it reports them on stderr, leaves the cache
 * intact and usable, and returns -1 with errno = EBUSY. Returns 0 on success. */
int kmem_cache_destroy(struct kmem_cache* cache);

/* The cache's name, the user object size and the slot size (object plus metadata). */
const char* kmem_cache_name(const struct kmem_cache* cache);
size_t kmem_cache_size(const struct kmem_cache* cache);
size_t kmem_cache_slot_size(const struct kmem_cache* cache);

/* Per-cache counts, summed over CPUs and nodes when read. */
struct kmem_cache_info {
  const char* name;
  size_t object_size;     /* bytes the user asked for */
  size_t slot_size;       /* bytes per object in a slab */
  unsigned order;         /* slab order (2^order pages) */
  unsigned objs_per_slab; /* objects in a slab of that order */
  size_t active_objs;     /* objects allocated (including those on per-CPU freelists) */
  size_t total_objs;      /* objects in all slabs */
  size_t nr_slabs;        /* slabs of the cache */
  size_t nr_partial;      /* slabs on node partial lists */
  size_t nr_cpu_slabs;    /* active per-CPU slabs plus per-CPU partial slabs */
  unsigned min_partial;   /* partial slabs a node keeps before freeing empty ones */
  unsigned cpu_partial;   /* per-CPU partial budget in objects */
  int aliases;            /* other names merged into this cache */
  char unique_id[32];     /* the kernel's ":[flags-]0000064" id if mergeable, else the name */
};
int kmem_cache_get_info(const struct kmem_cache* cache, struct kmem_cache_info* info);

/* Calls `fn` for every cache, in creation order. */
void kmem_cache_for_each(void (*fn)(const struct kmem_cache* cache, void* arg), void* arg);

/* The malloc family, prefixed. libslub.so exports them under the libc names too. */
void* slub_malloc(size_t size);
void slub_free(void* ptr);
void* slub_calloc(size_t nmemb, size_t size);
void* slub_realloc(void* ptr, size_t size);
void* slub_reallocarray(void* ptr, size_t nmemb, size_t size);
int slub_posix_memalign(void** out, size_t align, size_t size);
void* slub_aligned_alloc(size_t align, size_t size);
void* slub_memalign(size_t align, size_t size);
void* slub_valloc(size_t size);
void* slub_pvalloc(size_t size);
size_t slub_malloc_usable_size(const void* ptr);
void slub_free_sized(void* ptr, size_t size);
void slub_free_aligned_sized(void* ptr, size_t align, size_t size);

/* glibc's malloc extensions with slub's numbers (docs/MALLINFO.md gives every field's meaning).
 * libslub.so exports them under glibc's names too (mallinfo2, mallinfo, malloc_trim,
 * malloc_stats, malloc_info, mallopt). The struct has the fields of glibc's struct mallinfo2,
 * in its order. */
struct slub_mallinfo2 {
  size_t arena;    /* bytes of the page allocator's chunks that hold memory: all chunk bytes
                      minus free pages not resident (never used, or given back) */
  size_t ordblks;  /* free objects on the node lists + free resident page runs */
  size_t smblks;   /* free objects parked in front of the slabs (sheaves, CPU slabs, CPU
                      partials, barns; SLAB's arrays) */
  size_t hblks;    /* huge blocks (their own mappings) */
  size_t hblkhd;   /* their bytes */
  size_t usmblks;  /* 0 (as glibc) */
  size_t fsmblks;  /* bytes of the smblks objects (slot sizes) */
  size_t uordblks; /* bytes the program holds: objects in use (slot sizes, parked ones left out)
                      and large blocks' pages */
  size_t fordblks; /* free bytes: fsmblks, the node lists' free objects, free resident pages */
  size_t keepcost; /* what slub_malloc_trim gives back at least: free resident pages and the
                      wholly free slabs on node lists */
};
struct slub_mallinfo2 slub_mallinfo2(void);
/* Flushes every cache's per-CPU layers, releases its empty slabs (kmem_cache_shrink of every
 * cache) and gives free pages back to the OS, all but `pad` bytes of them. Returns 1 when some
 * memory went back to the OS, else 0. */
int slub_malloc_trim(size_t pad);
/* glibc's summary ("Arena 0:", "system bytes", "in use bytes", "Total (incl. mmap):", "max mmap
 * regions", "max mmap bytes"), then one line per cache with slabs; on stderr (or in
 * SLUB_DEBUG_LOG's file, as every report). */
void slub_malloc_stats(void);
/* glibc's XML (<malloc version="1">, a <heap> per NUMA node, then the totals) on `fp`. `options`
 * must be 0 (else -1 with errno EINVAL, as glibc). Returns 0, or -1 if writing failed. */
int slub_malloc_info(int options, FILE* fp);
/* glibc's mallopt: M_TRIM_THRESHOLD (-1) sets the budget of free resident pages (as
 * SLUB_DIRTY_MAX_KB), M_MMAP_THRESHOLD (-3) gives requests of at least `value` bytes above the
 * largest kmalloc class (32 KiB) their own mapping (0 .. 1 MiB; larger requests always have
 * one). Returns 1 when the option was applied, 0 for a bad value or any other option. */
int slub_mallopt(int param, int value);

/* Nonzero if the allocator owns `ptr` (the start of a live block or any byte of slab memory). */
int slub_owns(const void* ptr);
/* Nonzero if `ptr` is a live object of the KFENCE pool (SLUB_KFENCE, SLUB_KFENCE_SAMPLE): a
 * sampled allocation, alone on a page between guard pages (docs/DEBUGGING.md). */
int slub_kfence_object(const void* ptr);
/* The KFENCE pool's counters (the kernel's /sys/kernel/debug/kfence/stats; `tools/slabinfo
 * --kfence` shows them with the live objects). */
struct slub_kfence_stats {
  int enabled;                   /* a pool exists: SLUB_KFENCE or SLUB_KFENCE_SAMPLE is set */
  unsigned interval_ms;          /* SLUB_KFENCE (0 in the SLUB_KFENCE_SAMPLE mode) */
  unsigned sample_every;         /* SLUB_KFENCE_SAMPLE */
  unsigned objects;              /* the pool's slots (SLUB_KFENCE_NUM_OBJECTS) */
  uint64_t allocated;            /* objects live now */
  uint64_t allocations, frees;   /* since start-up */
  uint64_t bugs;                 /* reports */
  uint64_t skipped_incompatible; /* sampled but too large for a page, or an RCU cache */
  uint64_t skipped_capacity;     /* sampled while every slot was in use */
  uint64_t pool_bytes;           /* address space, guard pages included */
  uint64_t resident_bytes;       /* pages of live objects (freed ones go back to the OS) */
  uint64_t meta_bytes;           /* the slots' descriptors */
};
void slub_kfence_get_stats(struct slub_kfence_stats* out);

/* Virtual CPU mode: binds the calling thread to virtual CPU `vcpu` (0 .. SLUB_MAX_CPUS-1), or
 * unbinds it with -1. Bound threads use that CPU's per-CPU state whatever core they run on. */
#define SLUB_MAX_CPUS 4096
int slub_bind_vcpu(int vcpu);
/* The CPU the calling thread counts as on (real or virtual). */
int slub_current_cpu(void);
/* Which per-CPU fast path runs: 1 = rseq critical sections (plain stores, restarted by the
 * kernel), 0 = compare-and-swap (no rseq: valgrind, old kernels, SLUB_RSEQ=0, or any thread
 * was ever bound to a virtual CPU). */
int slub_fast_path_rseq(void);

/* NUMA (docs/NUMA.md). Nodes are numbered 0 .. slub_nr_nodes()-1 (the OS's node ids on a real
 * machine; hwloc gives the CPU-to-node map and distances). */
#define SLUB_MAX_NODES 1024
#define SLUB_NO_NODE (-1)
int slub_nr_nodes(void);
/* The node of CPU `cpu` (real or virtual), or -1 if out of range. */
int slub_cpu_node(int cpu);
/* The kernel's node_distance(): 10 for a node to itself, larger for farther nodes; -1 if out of
 * range. */
int slub_node_distance(int a, int b);
/* The node whose memory holds `ptr` (any byte of a slab or a large block), or -1. */
int slub_node_of(const void* ptr);
/* Declares a virtual topology, SLUB_TOPOLOGY's syntax: "cpus=16,nodes=4,distance=10:20" and
 * optionally "ring=1" (remote distance grows with the hops around a ring). Caches created
 * afterwards get one node structure per virtual node; caches created before keep theirs.
 * Returns 0, or -1 with errno EINVAL (and a message on stderr) for a bad spec. */
int slub_set_topology(const char* spec);

/* An object from node `node`'s slabs (the kernel's kmem_cache_alloc_node); SLUB_NO_NODE: any
 * node, as kmem_cache_alloc. NULL with errno EINVAL for a node out of range, ENOMEM. */
void* kmem_cache_alloc_node(struct kmem_cache* cache, int node);
/* malloc from node `node`'s slabs or pages (the kernel's kmalloc_node). */
void* slub_malloc_node(size_t size, int node);

/* Per-node counts of a cache (the kernel's /sys/kernel/slab/<cache>/ "N<node>=" values). */
struct kmem_cache_node_info {
  size_t nr_partial;   /* slabs on the node's partial list */
  size_t nr_slabs;     /* slabs of the cache on the node */
  size_t total_objs;   /* objects in those slabs */
  size_t partial_free; /* free objects in the partial slabs */
};
int kmem_cache_get_node_info(const struct kmem_cache* cache, int node,
                             struct kmem_cache_node_info* info);
/* The kernel's remote_node_defrag_ratio in its sysfs units, 0..100 (default 100): how often a
 * CPU whose node has no partial slab takes one from another node (nearest first, only from
 * nodes keeping more than min_partial) instead of allocating a new slab. Returns the old
 * value, or -1 with errno EINVAL. */
int kmem_cache_set_remote_node_defrag_ratio(struct kmem_cache* cache, unsigned percent);

/* What the allocator's queues and per-CPU structures hold, for SLUB and the SLAB clone alike
 * (the 4096-CPU harness compares them; docs/SLAB.md gives the formulas). */
struct kmem_cache_queue_info {
  int allocator;            /* 0: SLUB, 1: SLAB */
  size_t cpu_bytes;         /* SLUB: the CPU slots of CPUs in use (384 bytes), their main
                               sheaves (40 + 8 x capacity, rounded to 64) and spare sheaves
                               (16 + 8 x capacity);
                               SLAB: the per-CPU arrays of every possible CPU, 16 + 8 x limit
                               each */
  size_t shared_bytes;      /* SLAB: shared arrays (kmalloc-rounded) */
  size_t alien_bytes;       /* SLAB: alien caches and their pointer tables */
  size_t node_bytes;        /* per-node structures (SLUB: with the barns' sheaves) */
  size_t mgmt_bytes;        /* SLAB: on-slab free-index arrays (ON_SLAB caches) */
  size_t parked_cpu;        /* objects free but held per CPU: SLUB CPU slabs (and their objects
                               never used), CPU partial slabs and sheaves; SLAB per-CPU
                               arrays */
  size_t parked_shared;     /* SLAB: objects in shared arrays */
  size_t parked_alien;      /* SLAB: objects in alien caches */
  size_t parked_node;       /* SLUB: objects in the nodes' barns (full sheaves) */
  size_t free_slab_objects; /* objects of wholly free slabs kept on node lists */
  unsigned limit, batchcount, shared; /* SLAB's tunables (0 for SLUB) */
  unsigned long long reaper_ns;       /* CPU time of SLAB's reaping (all caches) */
};
int kmem_cache_get_queue_info(const struct kmem_cache* cache, struct kmem_cache_queue_info* info);

/* One pass of the flusher, now: hands back to their nodes the per-CPU slabs (and per-CPU
 * partial slabs and sheaves) of every CPU slot that saw no fast-path operation since the
 * previous pass.
 * Returns the number of CPU slots flushed. */
int slub_flush_idle(void);

/* Prints a table of the caches in use and the page allocator's counts on stderr. libslub.so
 * does this at exit when SLUB_REPORT=1. */
void slub_print_report(void);
/* For every cache that tracks users (U), the call sites of its live objects on stderr: a leak
 * summary. libslub.so prints it after the report at exit when SLUB_REPORT=1. */
void slub_print_alloc_calls(void);

/* The formats of slub_options_print. */
#define SLUB_OPTIONS_TEXT 0     /* aligned columns: tools/slub options */
#define SLUB_OPTIONS_MARKDOWN 1 /* the Markdown table of docs/OPTIONS.md */
#define SLUB_OPTIONS_ROFF 2     /* man(7) paragraphs, one per option: the options of slub(7) */

/* Writes the table of the environment variables the allocator reads (SLUB_*: name, type,
 * default, accepted values, one line of help) to `fd` in `format` (SLUB_OPTIONS_*). Returns 0,
 * or -1 if a write failed (errno EINVAL for an unknown format). tools/slub options prints
 * it. */
int slub_options_print(int fd, int format);

/* The version of the library, "MAJOR.MINOR.PATCH": that of the libslub.so or libslub.a in use,
 * which a program can compare with the SLUB_VERSION_STRING of the headers it was built with.
 * `slub_options --version` prints it. */
const char* slub_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SLUB_SLUB_H */
