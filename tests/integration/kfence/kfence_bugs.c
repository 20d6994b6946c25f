/* SPDX-License-Identifier: MIT */
/* kfence_bugs: one memory bug per mode on a KFENCE pool object, for kfence_bugs.sh.
 *
 *   usage: kfence_bugs MODE   (run with LD_PRELOAD=libslub.so SLUB_KFENCE_SAMPLE=1)
 *
 * Each mode allocates with malloc until slub_kfence_object() says the block is a pool object
 * placed where the bug needs it (at its page's start for an underflow, against its end for an
 * overflow or a canary write), commits its bug once in a noinline function with a telling
 * name (so the report's title and stack lines can name it; the program is built with -O0 -g
 * -rdynamic -fno-builtin and is not linked against slub), and prints "survived". Before the
 * bug it prints the object's and the bad access's addresses and its pid, which the script
 * compares with the report. Lines marked "line:NAME" are the ones the report must name.
 * Without slub the program exits 77 (no slub_kfence_object); the bugs are never run there.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kPage = 4096, kMallocAlign = 16, kTries = 64 };
enum placement { AT_START, AT_END, ANYWHERE };

/* Global, so that -rdynamic exports them and dladdr names them in the reports. */
char* find_pool_object(size_t size, enum placement where);
void read_left_of_object(void);
void read_right_of_object(void);
void write_left_of_object(void);
void write_right_of_object(void);
void read_after_free(void);
void write_after_free(void);
void free_twice(void);
void free_middle_of_object(void);
void write_past_request(void);
void write_before_object(void);
void clean_workload(void);
void wait_for_sample(void);

static int (*kfence_object)(const void*);
/* The blocks find_pool_object passed over, freed at the end (pool objects among them too). */
static void* passed[kTries];
static int npassed;

static int placed_as(const char* p, size_t size, enum placement where) {
  uintptr_t a = (uintptr_t)p, page_end = (a & ~(uintptr_t)(kPage - 1)) + kPage;
  switch (where) {
    case AT_START:
      return a % kPage == 0;
    case AT_END:
      /* The object's end is at most alignment-1 bytes before its page's end. */
      return a % kPage != 0 && page_end - (a + size) < kMallocAlign;
    default:
      return 1;
  }
}

/* malloc(size) until a pool object placed as `where` comes back. */
__attribute__((noinline)) char* find_pool_object(size_t size, enum placement where) {
  for (int i = 0; i < kTries; i++) {
    char* p = malloc(size); /* line:alloc */
    if (p == NULL) {
      fprintf(stderr, "malloc(%zu) failed\n", size);
      exit(1);
    }
    if (kfence_object(p)) {
      if (malloc_usable_size(p) != size) {
        fprintf(stderr, "malloc_usable_size of the %zu-byte pool object %p is %zu\n", size,
                (void*)p, malloc_usable_size(p));
        exit(1);
      }
      if (placed_as(p, size, where)) return p;
    }
    passed[npassed++] = p;
  }
  fprintf(stderr, "no %zu-byte pool object at its page's %s in %d allocations\n", size,
          where == AT_START ? "start" : "end", kTries);
  exit(1);
}

/* What the script compares with the report: the object, the bad address, the process. */
static void announce(const char* object, const char* bad) {
  printf("object 0x%lx\naccess 0x%lx\npid %d\n", (unsigned long)object, (unsigned long)bad,
         (int)getpid());
}

static volatile char sink;

__attribute__((noinline)) void read_left_of_object(void) {
  char* p = find_pool_object(32, AT_START);
  announce(p, p - 1);
  sink = ((volatile char*)p)[-1]; /* line:read_left */
  free(p);
}

/* A 32-byte object at its page's end: byte 32 is the guard page's first. */
__attribute__((noinline)) void read_right_of_object(void) {
  char* p = find_pool_object(32, AT_END);
  announce(p, p + 32);
  sink = ((volatile char*)p)[32]; /* line:read_right */
  free(p);
}

__attribute__((noinline)) void write_left_of_object(void) {
  char* p = find_pool_object(32, AT_START);
  announce(p, p - 1);
  ((volatile char*)p)[-1] = 0x41; /* line:write_left */
  free(p);
}

__attribute__((noinline)) void write_right_of_object(void) {
  char* p = find_pool_object(32, AT_END);
  announce(p, p + 32);
  ((volatile char*)p)[32] = 0x41; /* line:write_right */
  free(p);
}

__attribute__((noinline)) void read_after_free(void) {
  char* p = find_pool_object(32, ANYWHERE);
  announce(p, p + 8);
  free(p);                       /* line:uaf_read_free */
  sink = ((volatile char*)p)[8]; /* line:uaf_read */
}

__attribute__((noinline)) void write_after_free(void) {
  char* p = find_pool_object(32, ANYWHERE);
  announce(p, p + 8);
  free(p);                       /* line:uaf_write_free */
  ((volatile char*)p)[8] = 0x41; /* line:uaf_write */
}

__attribute__((noinline)) void free_twice(void) {
  char* p = find_pool_object(32, ANYWHERE);
  announce(p, p);
  free(p); /* line:double_first_free */
  free(p); /* line:double_second_free */
}

__attribute__((noinline)) void free_middle_of_object(void) {
  char* p = find_pool_object(32, ANYWHERE);
  announce(p, p + 8);
  free(p + 8); /* line:invalid_free */
  free(p);     /* the real free, so that nothing is left behind */
}

/* A 13-byte object against its page's end is placed at the aligned-down address (16-byte
 * malloc alignment: 3 bytes before the end), so bytes 13..15 are canaries: the write does not
 * fault, and the free finds it. */
__attribute__((noinline)) void write_past_request(void) {
  char* p = find_pool_object(13, AT_END);
  uintptr_t page_end = ((uintptr_t)p & ~(uintptr_t)(kPage - 1)) + kPage;
  if (page_end - ((uintptr_t)p + 13) < 1) {
    fprintf(stderr, "no canary byte after the 13-byte pool object %p\n", (void*)p);
    exit(1);
  }
  announce(p, p + 13);
  ((volatile char*)p)[13] = 0x41;
  free(p); /* line:canary_free */
}

/* An object against its page's end has canaries before it, from the page's start. */
__attribute__((noinline)) void write_before_object(void) {
  char* p = find_pool_object(32, AT_END);
  announce(p, p - 1);
  ((volatile char*)p)[-1] = 0x41;
  free(p); /* line:canary_left_free */
}

/* No bug: every size up to a page and beyond, more objects than the pool has slots, every byte
 * of each written, realloc, calloc and aligned allocations; no report may come of it. */
__attribute__((noinline)) void clean_workload(void) {
  enum { kN = 600 };
  static char* blocks[kN];
  int pooled = 0;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < kN; i++) {
      size_t n = 1 + (size_t)(i * 37 + round * 11) % 5000;
      blocks[i] = malloc(n);
      if (kfence_object(blocks[i])) pooled++;
      memset(blocks[i], i & 0xff, n);
    }
    for (int i = 0; i < kN; i += 2) {
      size_t n = 1 + (size_t)(i * 13) % 300;
      blocks[i] = realloc(blocks[i], n);
      if (blocks[i][0] != (char)(i & 0xff)) {
        fprintf(stderr, "realloc lost the contents of block %d\n", i);
        exit(1);
      }
      memset(blocks[i], 1, n);
    }
    for (int i = 0; i < kN; i++) free(blocks[i]);
  }
  for (int i = 0; i < 100; i++) {
    size_t n = 1 + (size_t)i * 41 % 4000;
    unsigned char* z = calloc(1, n);
    for (size_t j = 0; j < n; j++)
      if (z[j] != 0) {
        fprintf(stderr, "calloc(1, %zu) byte %zu is not zero\n", n, j);
        exit(1);
      }
    free(z);
    size_t align = (size_t)16 << (i % 6);
    char* a = aligned_alloc(align, align);
    if ((uintptr_t)a % align != 0) {
      fprintf(stderr, "aligned_alloc(%zu) returned %p\n", align, (void*)a);
      exit(1);
    }
    memset(a, 2, align);
    free(a);
  }
  printf("pool objects: %d\n", pooled);
}

/* No bug: under SLUB_KFENCE=<ms> (the service thread's sampling, not SLUB_KFENCE_SAMPLE),
 * malloc and free until a block comes from the pool. Not timed: the cap only ends a run whose
 * sampling is broken, minutes after any sane interval. */
__attribute__((noinline)) void wait_for_sample(void) {
  for (long n = 1; n <= 2000000000L; n++) {
    char* p = malloc(32);
    const int pooled = kfence_object(p);
    p[0] = 1;
    free(p);
    if (pooled) {
      printf("sampled after %ld allocations\n", n);
      return;
    }
  }
  fprintf(stderr, "no allocation sampled\n");
  exit(1);
}

static const struct {
  const char* name;
  void (*fn)(void);
} modes[] = {
    {"oob-read-left", read_left_of_object},
    {"oob-read-right", read_right_of_object},
    {"oob-write-left", write_left_of_object},
    {"oob-write-right", write_right_of_object},
    {"uaf-read", read_after_free},
    {"uaf-write", write_after_free},
    {"double-free", free_twice},
    {"invalid-free", free_middle_of_object},
    {"canary", write_past_request},
    {"canary-left", write_before_object},
    {"clean", clean_workload},
    {"interval", wait_for_sample},
};

int main(int argc, char** argv) {
  size_t i = 0;
  while (argc == 2 && i < sizeof modes / sizeof modes[0] && strcmp(argv[1], modes[i].name) != 0)
    i++;
  if (argc != 2 || i == sizeof modes / sizeof modes[0]) {
    fprintf(stderr, "usage: %s MODE\nmodes:", argv[0]);
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
      fprintf(stderr, " %s", modes[m].name);
    fprintf(stderr, "\n");
    return 2;
  }
  kfence_object = (int (*)(const void*))dlsym(RTLD_DEFAULT, "slub_kfence_object");
  if (kfence_object == NULL) {
    fprintf(stderr, "no slub_kfence_object: run with LD_PRELOAD=libslub.so\n");
    return 77;
  }
  setvbuf(stdout, NULL, _IONBF, 0); /* the output comes before a possible abort */
  modes[i].fn();
  for (int k = 0; k < npassed; k++) free(passed[k]);
  printf("survived\n");
  return 0;
}
