/* SPDX-License-Identifier: MIT */
/* The program slabinfo's end-to-end test inspects. Run with LD_PRELOAD=libslub.so; it is not
 * linked with slub and finds the cache API with dlsym. It keeps exactly 1000 live objects in a
 * cache "slabinfo_test_obj" of 200-byte objects (plus an alias "slabinfo_test_alias" that
 * merges into it, with no objects), and 5000 live malloc(3000) blocks (kmalloc-3k); prints
 * "ready", then sleeps until SIGTERM (exit(0): the library removes its statistics area) or
 * for at most 60 s. The objects are allocated by slabinfo_test_make_objects, and 100 more
 * objects are allocated and freed by slabinfo_test_churn: run with SLUB_DEBUG=U,slabinfo_test_obj
 * (the cache then tracks its callers and no longer merges the alias), slabinfo's alloc_calls
 * and free_calls name those functions (linked with -rdynamic, so that dladdr finds them).
 * SLABINFO_TEST_EXTRA_CACHES=N creates N more caches after those (unmerged, empty), to fill the
 * statistics area's records. SLABINFO_TEST_MALLOCS_FIRST=N makes N live malloc(100) blocks
 * (a kmalloc cache) before anything else: with SLUB_KFENCE_SAMPLE=1 they take KFENCE pool slots
 * before the cache's 1000 objects can fill the pool. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void* (*create_fn)(const char*, size_t, size_t, unsigned long, void (*)(void*));
typedef void* (*alloc_fn)(void*);
typedef void (*free_fn)(void*, void*);

static volatile sig_atomic_t terminated;
static void on_term(int sig) {
  (void)sig;
  terminated = 1;
}

static void* objs[1000];
static void* blocks[5000];
static void* first[100];

int slabinfo_test_make_objects(void* cache, alloc_fn alloc);
int slabinfo_test_churn(void* cache, alloc_fn alloc, free_fn release);

__attribute__((noinline)) int slabinfo_test_make_objects(void* cache, alloc_fn alloc) {
  for (int i = 0; i < 1000; i++) {
    objs[i] = alloc(cache);
    if (objs[i] == NULL) return -1;
    memset(objs[i], 0xab, 200);
  }
  return 0;
}

__attribute__((noinline)) int slabinfo_test_churn(void* cache, alloc_fn alloc, free_fn release) {
  void* tmp[100];
  for (int i = 0; i < 100; i++)
    if ((tmp[i] = alloc(cache)) == NULL) return -1;
  for (int i = 0; i < 100; i++) release(cache, tmp[i]);
  return 0;
}

int main(void) {
  const char* nfirst = getenv("SLABINFO_TEST_MALLOCS_FIRST");
  for (int i = 0, n = nfirst != NULL ? atoi(nfirst) : 0; i < n && i < 100; i++) {
    first[i] = malloc(100);
    if (first[i] == NULL) return 1;
    memset(first[i], 0xef, 100);
  }
  create_fn create = (create_fn)dlsym(RTLD_DEFAULT, "kmem_cache_create");
  alloc_fn alloc = (alloc_fn)dlsym(RTLD_DEFAULT, "kmem_cache_alloc");
  free_fn release = (free_fn)dlsym(RTLD_DEFAULT, "kmem_cache_free");
  if (create == NULL || alloc == NULL || release == NULL) {
    fprintf(stderr, "test_prog: kmem_cache_create not found: run with LD_PRELOAD=libslub.so\n");
    return 77;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term; /* no SA_RESTART: sleeps end early */
  sigaction(SIGTERM, &sa, NULL);

  void* cache = create("slabinfo_test_obj", 200, 0, 0, NULL);
  void* alias = create("slabinfo_test_alias", 200, 0, 0, NULL);
  if (cache == NULL || alias == NULL) {
    perror("test_prog: kmem_cache_create");
    return 1;
  }
  if (slabinfo_test_make_objects(cache, alloc) != 0 || slabinfo_test_churn(cache, alloc, release))
    return 1;
  for (int i = 0; i < 5000; i++) {
    blocks[i] = malloc(3000);
    if (blocks[i] == NULL) return 1;
    memset(blocks[i], 0xcd, 3000);
  }
  const char* extra = getenv("SLABINFO_TEST_EXTRA_CACHES");
  for (int i = 0, n = extra != NULL ? atoi(extra) : 0; i < n; i++) {
    char name[48];
    snprintf(name, sizeof name, "slabinfo_test_extra_%d", i);
    if (create(name, 64, 0, 0x00001000UL /* SLAB_NO_MERGE */, NULL) == NULL) {
      perror("test_prog: kmem_cache_create");
      return 1;
    }
  }
  printf("ready\n");
  fflush(stdout);
  for (int i = 0; i < 600 && !terminated; i++) usleep(100000);
  return 0;
}
