/* SPDX-License-Identifier: MIT */
/* A program built against an installed slub (tests/install/install_test.sh builds it with the
 * CMake package and with pkg-config, against libslub.so and libslub.a): a cache, objects
 * allocated, written, checked and freed, the prefixed malloc, and the library's version against
 * the headers'. Built with CONSUMER_SHARED (linked with libslub.so) it also checks that malloc
 * is slub's and prints the file it came from. Prints one line "consumer: ok ..." and exits 0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slub/slub.h>

#define NR_OBJECTS 1000
#define OBJECT_SIZE 48

static int fail(const char* what) {
  fprintf(stderr, "consumer: %s\n", what);
  return 1;
}

int main(void) {
  if (strcmp(slub_version(), SLUB_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: slub_version() is %s, the headers are %s\n", slub_version(),
            SLUB_VERSION_STRING);
    return 1;
  }
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", SLUB_VERSION_MAJOR, SLUB_VERSION_MINOR,
           SLUB_VERSION_PATCH);
  if (strcmp(want, SLUB_VERSION_STRING) != 0) return fail("SLUB_VERSION_* disagree");

  struct kmem_cache* c = kmem_cache_create("consumer_objects", OBJECT_SIZE, 0, 0, NULL);
  if (c == NULL) return fail("kmem_cache_create failed");
  static unsigned char* objs[NR_OBJECTS];
  for (int i = 0; i < NR_OBJECTS; ++i) {
    objs[i] = kmem_cache_alloc(c);
    if (objs[i] == NULL) return fail("kmem_cache_alloc failed");
    memset(objs[i], i & 0xff, OBJECT_SIZE);
  }
  for (int i = 0; i < NR_OBJECTS; ++i) {
    for (int k = 0; k < OBJECT_SIZE; ++k)
      if (objs[i][k] != (unsigned char)(i & 0xff)) return fail("an object was overwritten");
    kmem_cache_free(c, objs[i]);
  }
  if (kmem_cache_destroy(c) != 0) return fail("kmem_cache_destroy failed");

  char* s = slub_malloc(100);
  if (s == NULL) return fail("slub_malloc failed");
  snprintf(s, 100, "slub %s", slub_version());
  const char* from = "libslub.a";
#ifdef CONSUMER_SHARED
  /* libslub.so defines malloc: a program linked with it allocates from slub. */
  Dl_info info;
  if (dladdr((void*)&malloc, &info) == 0 || info.dli_fname == NULL ||
      strstr(info.dli_fname, "libslub.so") == NULL)
    return fail("malloc is not libslub.so's");
  from = info.dli_fname;
#endif
  printf("consumer: ok, %s, %d objects, malloc from %s\n", s, NR_OBJECTS, from);
  slub_free(s);
  return 0;
}
