/* SPDX-License-Identifier: MIT */
/* slub statistics: the kernel's SLUB counters (enum stat_item in mm/slub.c), and the layout of
 * the per-process statistics area that tools/slabinfo reads from outside the program.
 *
 * Counters are kept per CPU slot without atomics and summed when read (a count may be lost
 * when two threads share a slot at the same instant, as in the kernel). */
#ifndef SLUB_STATS_H
#define SLUB_STATS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum slub_stat_item {
  ALLOC_FASTPATH,          /* allocation from the CPU freelist */
  FREE_FASTPATH,           /* free to the CPU freelist */
  ALLOC_SLOWPATH,          /* allocation by the slow path */
  FREE_SLOWPATH,           /* free by the slow path */
  FREE_FROZEN,             /* free to a frozen slab (another CPU's active slab) */
  FREE_ADD_PARTIAL,        /* free made a slab partial: added to a node partial list */
  FREE_REMOVE_PARTIAL,     /* free made a partial slab empty: removed from the list */
  ALLOC_FROM_PARTIAL,      /* CPU slab taken from a node partial list */
  ALLOC_SLAB,              /* CPU slab taken from the page allocator */
  ALLOC_REFILL,            /* CPU freelist refilled from its slab's remote frees */
  ALLOC_NODE_MISMATCH,     /* CPU slab on the wrong node */
  FREE_SLAB,               /* slab returned to the page allocator */
  CPUSLAB_FLUSH,           /* CPU slab flushed (shrink, destroy, flusher) */
  DEACTIVATE_FULL,         /* retired CPU slab was full */
  DEACTIVATE_EMPTY,        /* retired CPU slab was empty and freed */
  DEACTIVATE_TO_HEAD,      /* retired CPU slab to the head of the partial list */
  DEACTIVATE_TO_TAIL,      /* retired CPU slab to the tail of the partial list */
  DEACTIVATE_REMOTE_FREES, /* retired CPU slab had remote frees */
  DEACTIVATE_BYPASS,       /* CPU slab ran full and was dropped without deactivation */
  ORDER_FALLBACK,          /* new slab of the minimal order because the preferred failed */
  CMPXCHG_DOUBLE_CPU_FAIL, /* fast-path compare-and-swap failed: retried */
  CMPXCHG_DOUBLE_FAIL,     /* slab compare-and-swap failed: retried */
  CPU_PARTIAL_ALLOC,       /* CPU slab taken from the CPU partial chain */
  CPU_PARTIAL_FREE,        /* free adopted a full slab into the CPU partial chain */
  CPU_PARTIAL_NODE,        /* slab moved from a node partial list to the CPU partial chain */
  CPU_PARTIAL_DRAIN,       /* CPU partial chain drained to the node lists */
  /* Sheaves (the kernel's 6.18 counters). The sheaves' fast paths count nothing: these count
   * the work of their slow paths. */
  SHEAF_REFILL,  /* objects put into a main sheaf from slabs */
  SHEAF_FLUSH,   /* objects flushed from sheaves back to their slabs */
  SHEAF_SWAP,    /* main sheaf empty (alloc) or full (free): swapped with the spare */
  SHEAF_ALLOC,   /* spare or barn sheaf allocated */
  SHEAF_FREE,    /* spare or barn sheaf freed */
  BARN_GET,      /* a full sheaf taken from the node's barn */
  BARN_GET_FAIL, /* the barn had no full sheaf */
  BARN_PUT,      /* a full sheaf given to the barn */
  BARN_PUT_FAIL, /* the barn was full: the sheaf was flushed to slabs instead */
  FREE_REMOTE,   /* free of another node's object, or of a small object of another CPU's slab
                    (sheaves): straight to its slab */
  NR_SLUB_STAT_ITEMS
};

/* sysfs-style names of the items ("alloc_fastpath", ...). */
extern const char* const slub_stat_names[NR_SLUB_STAT_ITEMS];

struct kmem_cache;
/* Sums the counters of a cache over its CPUs into out[NR_SLUB_STAT_ITEMS]. */
int kmem_cache_get_stats(const struct kmem_cache* cache, uint64_t* out);

/* ---- The statistics area: /dev/shm/slub.<pid>, mode 0600, removed at exit. ----
 * Made by the program's service thread when the process is a second old (short-lived
 * processes never make one), as a new file (never an existing name: a file planted at that
 * name by another user is left alone, and the program runs without an area). Its size is what
 * has real pages behind it (the header page, then records of whole caches): it grows with the
 * number of caches, and readers map what the file size covers. The thread writes a snapshot of
 * every cache into it once a second and when asked. Readers check `seq`: odd while the snapshot is
 * being written, and the same before and after reading when the copy is consistent. A reader asks
 * for something by writing cmd_arg and cmd, then incrementing cmd_seq and waking it (FUTEX_WAKE);
 * the program answers in result, sets done_seq to cmd_seq and wakes done_seq. The answers that
 * are text (alloc_calls, free_calls, kfence) are written into `reply`, after the cache records:
 * result is the number of bytes there. The program gives the reply real pages when it first
 * writes one (the file then reaches past the records, with a hole before the reply); a reader
 * maps the file anew when it is longer than its mapping. */
#define SLUB_SHM_MAGIC 0x31534255424c5355ull /* "USLBUBS1" */
#define SLUB_SHM_VERSION 5
#define SLUB_SHM_MAX_CACHES 1024
#define SLUB_SHM_MAX_ALIASES 8
#define SLUB_SHM_MAX_NODES 8
#define SLUB_SHM_REPLY_BYTES (64 * 1024)

enum slub_shm_cmd {
  SLUB_CMD_NONE = 0,
  SLUB_CMD_REFRESH = 1,     /* publish a snapshot now */
  SLUB_CMD_VALIDATE = 2,    /* kmem_cache_validate on cmd_arg (or every cache if empty) */
  SLUB_CMD_SHRINK = 3,      /* kmem_cache_shrink on cmd_arg (or every cache if empty) */
  SLUB_CMD_ALLOC_CALLS = 4, /* the kernel's alloc_calls of the cache named cmd_arg into reply */
  SLUB_CMD_FREE_CALLS = 5,  /* the same for free_calls */
  SLUB_CMD_KFENCE = 6,      /* the KFENCE pool's stats and objects (the kernel's
                               /sys/kernel/debug/kfence/stats and objects) into reply; a
                               program older than the command answers 0 (a refresh) */
};

/* result of SLUB_CMD_ALLOC_CALLS and SLUB_CMD_FREE_CALLS when it is not a length (of
 * SLUB_CMD_KFENCE: only SLUB_CALLS_NO_ROOM). */
enum slub_shm_calls_error {
  SLUB_CALLS_NO_CACHE = -1,    /* no cache or alias of that name */
  SLUB_CALLS_NOT_TRACKED = -2, /* the cache does not store its users (no SLUB_DEBUG=U) */
  SLUB_CALLS_NO_ROOM = -3,     /* the reply could not be given pages (a full /dev/shm) */
};

struct slub_shm_cache {
  char name[48];
  char unique_id[32];
  char aliases[SLUB_SHM_MAX_ALIASES][48];
  uint32_t nr_aliases; /* may exceed SLUB_SHM_MAX_ALIASES: only the first are listed */
  uint32_t order;
  uint64_t flags;
  uint64_t object_size, slot_size, align, objs_per_slab;
  uint64_t objects;       /* in use: total minus free objects on node partial lists */
  uint64_t total_objects; /* in all slabs */
  uint64_t slabs, partial, cpu_slabs;
  uint64_t min_partial, cpu_partial;
  uint64_t node_partial[SLUB_SHM_MAX_NODES]; /* partial slabs of nodes 0..7 */
  uint64_t node_slabs[SLUB_SHM_MAX_NODES];   /* all slabs of nodes 0..7 */
  uint64_t node_objects[SLUB_SHM_MAX_NODES]; /* objects in those slabs */
  uint64_t stats[NR_SLUB_STAT_ITEMS];
};

struct slub_shm_header {
  uint64_t magic;
  uint32_t version;
  int32_t pid;
  uint64_t start_time; /* /proc/<pid>/stat field 22, to tell a reused pid */
  uint64_t seq;        /* even: stable; odd: being written */
  uint64_t updated_ns; /* CLOCK_MONOTONIC of the last snapshot */
  uint32_t nr_caches;
  uint32_t nr_cpus_used, nr_cpus, nr_nodes;
  uint64_t chunks, free_pages, dirty_pages, huge_blocks, huge_bytes, meta_bytes;
  uint32_t cmd, cmd_seq, done_seq;
  int32_t result;
  char cmd_arg[48];
  char exe[128];
  uint32_t nr_caches_total; /* caches in the process; more than nr_caches when the area
                               could not grow (a full /dev/shm) */
  uint32_t reserved;
};

struct slub_shm {
  struct slub_shm_header hdr;
  char pad[4096 - sizeof(struct slub_shm_header)];
  struct slub_shm_cache caches[SLUB_SHM_MAX_CACHES];
  char reply[SLUB_SHM_REPLY_BYTES]; /* text answers: lines, not NUL-terminated */
};

#ifdef __cplusplus
}
#endif

#endif /* SLUB_STATS_H */
