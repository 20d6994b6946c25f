/* SPDX-License-Identifier: MIT */
/* buggy: small programs with one memory bug each, for the debug mode (SLUB_DEBUG) of slub.
 *
 *   usage: buggy MODE      (run with LD_PRELOAD=libslub.so SLUB_DEBUG=FZPU)
 *
 * Each bug sits in its own noinline function with a telling name, so the reports' "Allocated
 * in", "Freed in" and "Call trace:" lines can name it (the program is built with -O0 -g
 * -rdynamic -fno-builtin and is not linked against slub). The allocator reports the bug and
 * repairs or quarantines the object, so the program goes on and prints "survived" at its end.
 * Without slub (plain glibc) most modes are undefined behaviour: do not run them that way.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The cache API, looked up with dlsym (the program is not linked against slub). */
struct kmem_cache;
typedef struct kmem_cache* (*create_fn)(const char*, size_t, size_t, unsigned long,
                                        void (*)(void*));
typedef void* (*alloc_fn)(struct kmem_cache*);
typedef void (*free_fn)(struct kmem_cache*, void*);

/* The bug functions are global and -rdynamic exports them, so dladdr names them; static ones
 * are named from the program's symbol table (buggy_static.c and symbol_names.sh test that). */
void overflow_past_request(void);
void overflow_by_one(void);
void underflow_by_one(void);
char* write_after_free(void);
void reallocate_until_found(void);
void double_free(void);
void free_interior_pointer(void);
void free_stack_address(void);
void corrupt_free_pointer(long offset);
void free_to_wrong_cache(create_fn create, alloc_fn alloc, free_fn cache_free);
void overflow_cache_object(struct kmem_cache* cache);
void* make_node(struct kmem_cache* c);
void* make_leaf(struct kmem_cache* c);
void wrong_cache(void);
void cache_flags_validate(void);
void print_calls(void);
void clean_workload(void);
void clean_threads(void);

/* Keeps the compiler from reasoning about a pointer (and from dropping stores through it). */
static void* volatile sink;
static void* launder(void* p) {
  sink = p;
  return sink;
}

/* malloc(50) is served by kmalloc-64: byte 50 is past the request but inside the class. */
__attribute__((noinline)) void overflow_past_request(void) {
  char* p = launder(malloc(50));
  p[50] = 0x41; /* one byte past the requested size */
  free(p);
}

/* malloc(64) fills kmalloc-64 exactly: byte 64 lies in the right red zone. */
__attribute__((noinline)) void overflow_by_one(void) {
  char* p = launder(malloc(64));
  p[64] = 0x41;
  free(p);
}

/* One byte before the block: the left red zone. */
__attribute__((noinline)) void underflow_by_one(void) {
  char* p = launder(malloc(64));
  p[-1] = 0x41;
  free(p);
}

__attribute__((noinline)) char* write_after_free(void) {
  char* p = launder(malloc(64));
  free(p);
  memset(p, 0x41, 4); /* the first 4 bytes of the freed (poisoned) object */
  return p;
}

/* The poisoned object is found out when it is handed out again: allocate the same size until
 * it comes back (the free put it on top of its slab's freelist). */
__attribute__((noinline)) void reallocate_until_found(void) {
  enum { kN = 256 };
  static void* blocks[kN];
  char* stale = write_after_free();
  int found = -1;
  for (int i = 0; i < kN; i++) {
    blocks[i] = malloc(64);
    if (blocks[i] == stale && found < 0) found = i;
  }
  for (int i = 0; i < kN; i++) free(blocks[i]);
  printf("stale object handed out again at allocation %d\n", found);
}

__attribute__((noinline)) void double_free(void) {
  char* p = launder(malloc(64));
  free(p);
  free(p);
}

__attribute__((noinline)) void free_interior_pointer(void) {
  char* p = launder(malloc(64));
  free(p + 8);
  free(p); /* the real free, so nothing leaks */
}

__attribute__((noinline)) void free_stack_address(void) {
  char on_stack[64];
  free(launder(on_stack));
}

/* Overwrites the 8 bytes at `offset` of a freed 64-byte object (mode "freepointer [OFFSET]",
 * default 72): with SLUB_DEBUG=FZPU the free pointer of a kmalloc-64 object sits outside the
 * object, after the right red zone (the kernel's layout: object 64, red zone 8, free pointer
 * at 72). Writing only there leaves the poison and the red zones intact. */
__attribute__((noinline)) void corrupt_free_pointer(long offset) {
  char* p = launder(malloc(64));
  free(p);
  memset(p + offset, 0x41, 8);
  /* Validation happens when the slab's freelist is walked: allocate until it is. */
  enum { kN = 256 };
  static void* blocks[kN];
  for (int i = 0; i < kN; i++) blocks[i] = malloc(64);
  for (int i = 0; i < kN; i++) free(blocks[i]);
}

/* kmem_cache_free() to a cache the object does not come from. */
__attribute__((noinline)) void free_to_wrong_cache(create_fn create, alloc_fn alloc,
                                                   free_fn cache_free) {
  /* Different sizes and SLAB_NO_MERGE (0x1000), so the two can never be one merged cache. */
  struct kmem_cache* a = create("buggy_cache_a", 96, 0, 0x1000UL, NULL);
  struct kmem_cache* b = create("buggy_cache_b", 200, 0, 0x1000UL, NULL);
  if (a == NULL || b == NULL) {
    fprintf(stderr, "kmem_cache_create failed\n");
    exit(1);
  }
  void* obj = alloc(a);
  cache_free(b, obj); /* wrong: obj is from buggy_cache_a */
  cache_free(a, obj);
}

void wrong_cache(void) {
  create_fn create = (create_fn)dlsym(RTLD_DEFAULT, "kmem_cache_create");
  alloc_fn alloc = (alloc_fn)dlsym(RTLD_DEFAULT, "kmem_cache_alloc");
  free_fn cache_free = (free_fn)dlsym(RTLD_DEFAULT, "kmem_cache_free");
  if (create == NULL || alloc == NULL || cache_free == NULL) {
    fprintf(stderr, "the kmem_cache API is not there: run with LD_PRELOAD=libslub.so\n");
    exit(1);
  }
  free_to_wrong_cache(create, alloc, cache_free);
}

/* Debugging switched on by creation flags (no SLUB_DEBUG needed), and the bug found by
 * kmem_cache_validate() rather than by a free. */
__attribute__((noinline)) void overflow_cache_object(struct kmem_cache* cache) {
  char* obj = launder(((alloc_fn)dlsym(RTLD_DEFAULT, "kmem_cache_alloc"))(cache));
  obj[40] = 0x41; /* one byte past a 40-byte object */
}

void cache_flags_validate(void) {
  create_fn create = (create_fn)dlsym(RTLD_DEFAULT, "kmem_cache_create");
  free_fn cache_free = (free_fn)dlsym(RTLD_DEFAULT, "kmem_cache_free");
  int (*validate)(struct kmem_cache*) =
      (int (*)(struct kmem_cache*))dlsym(RTLD_DEFAULT, "kmem_cache_validate");
  if (create == NULL || cache_free == NULL || validate == NULL) {
    fprintf(stderr, "the kmem_cache API (kmem_cache_validate) is not there\n");
    exit(1);
  }
  /* SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER */
  struct kmem_cache* c =
      create("buggy_flags", 40, 0, 0x100UL | 0x400UL | 0x800UL | 0x10000UL, NULL);
  if (c == NULL) {
    fprintf(stderr, "kmem_cache_create failed\n");
    exit(1);
  }
  sink = NULL;
  overflow_cache_object(c);
  void* obj = sink;
  printf("kmem_cache_validate: %d errors\n", validate(c));
  printf("kmem_cache_validate again: %d errors\n", validate(c));
  cache_free(c, obj);
}

/* No bug: a cache with U, objects from two call sites, and its alloc_calls listing. */
__attribute__((noinline)) void* make_node(struct kmem_cache* c) {
  return ((alloc_fn)dlsym(RTLD_DEFAULT, "kmem_cache_alloc"))(c);
}
__attribute__((noinline)) void* make_leaf(struct kmem_cache* c) {
  return ((alloc_fn)dlsym(RTLD_DEFAULT, "kmem_cache_alloc"))(c);
}

void print_calls(void) {
  create_fn create = (create_fn)dlsym(RTLD_DEFAULT, "kmem_cache_create");
  int (*calls)(struct kmem_cache*, int, int) =
      (int (*)(struct kmem_cache*, int, int))dlsym(RTLD_DEFAULT, "kmem_cache_print_calls");
  if (create == NULL || calls == NULL) {
    fprintf(stderr, "the kmem_cache API (kmem_cache_print_calls) is not there\n");
    exit(1);
  }
  struct kmem_cache* c = create("buggy_tree", 48, 0, 0x10000UL /* SLAB_STORE_USER */, NULL);
  if (c == NULL) exit(1);
  for (int i = 0; i < 30; i++) make_node(c);
  for (int i = 0; i < 12; i++) make_leaf(c);
  printf("call sites: %d\n", calls(c, 0, 1));
}

/* No bug: ordinary use of several size classes, for the "no false reports" runs. */
__attribute__((noinline)) void clean_workload(void) {
  enum { kN = 2000 };
  static char* blocks[kN];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < kN; i++) {
      size_t n = 1 + (size_t)(i * 37 + round * 11) % 700;
      blocks[i] = malloc(n);
      memset(blocks[i], i & 0xff, n);
    }
    for (int i = 0; i < kN; i += 2) {
      blocks[i] = realloc(blocks[i], 1 + (size_t)(i * 13) % 300);
      blocks[i][0] = 1;
    }
    for (int i = 0; i < kN; i++) free(blocks[i]);
  }
  char* z = calloc(10, 10);
  for (int i = 0; i < 100; i++)
    if (z[i] != 0) abort();
  free(z);
}

/* No bug: threads that allocate blocks and hand them to the next thread, which frees them
 * (remote frees), for the "no false reports" runs of the debug paths under contention. */
enum { kThreads = 4, kPerThread = 5000, kRing = 64 };
static struct {
  pthread_mutex_t lock;
  void* slots[kRing];
  unsigned head, tail;
} rings[kThreads];

static void* thread_work(void* arg) {
  const unsigned me = (unsigned)(size_t)arg;
  unsigned sent = 0, got = 0;
  while (sent < kPerThread || got < kPerThread) {
    if (sent < kPerThread) { /* give a block to the next thread, if its ring has room */
      unsigned to = (me + 1) % kThreads;
      size_t n = 1 + (sent * 7919u + me) % 1000;
      pthread_mutex_lock(&rings[to].lock);
      if (rings[to].head - rings[to].tail < kRing) {
        char* p = malloc(n);
        memset(p, (int)me, n);
        rings[to].slots[rings[to].head++ % kRing] = p;
        sent++;
      }
      pthread_mutex_unlock(&rings[to].lock);
    }
    void* p = NULL; /* free one block from the previous thread */
    pthread_mutex_lock(&rings[me].lock);
    if (rings[me].head != rings[me].tail) p = rings[me].slots[rings[me].tail++ % kRing];
    pthread_mutex_unlock(&rings[me].lock);
    if (p != NULL) {
      free(p);
      got++;
    }
  }
  return NULL;
}

void clean_threads(void) {
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; i++) pthread_mutex_init(&rings[i].lock, NULL);
  for (int i = 0; i < kThreads; i++) pthread_create(&t[i], NULL, thread_work, (void*)(size_t)i);
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
}

static const struct {
  const char* name;
  void (*fn)(void);
} modes[] = {
    {"kmalloc_redzone", overflow_past_request},
    {"right_redzone", overflow_by_one},
    {"left_redzone", underflow_by_one},
    {"use_after_free", reallocate_until_found},
    {"double_free", double_free},
    {"invalid_pointer", free_interior_pointer},
    {"foreign_pointer", free_stack_address},
    {"wrong_cache", wrong_cache},
    {"cache_flags_validate", cache_flags_validate},
    {"print_calls", print_calls},
    {"clean", clean_workload},
    {"clean_threads", clean_threads},
};

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODE\nmodes:", argv[0]);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
      fprintf(stderr, " %s", modes[i].name);
    fprintf(stderr, " freepointer [OFFSET]\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0); /* output comes before a possible abort */
  if (strcmp(argv[1], "freepointer") == 0) {
    corrupt_free_pointer(argc > 2 ? strtol(argv[2], NULL, 0) : 72);
  } else {
    size_t i = 0;
    while (i < sizeof modes / sizeof modes[0] && strcmp(argv[1], modes[i].name) != 0) i++;
    if (i == sizeof modes / sizeof modes[0]) {
      fprintf(stderr, "unknown mode %s\n", argv[1]);
      return 2;
    }
    modes[i].fn();
  }
  /* The allocator's count of BUG reports, when it is there (LD_PRELOAD=libslub.so). */
  long (*errors)(void) = (long (*)(void))dlsym(RTLD_DEFAULT, "slub_debug_errors");
  if (errors != NULL) printf("slub_debug_errors: %ld\n", errors());
  printf("survived\n");
  return 0;
}
