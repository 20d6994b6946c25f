/* SPDX-License-Identifier: MIT */
/* The program of mallinfo.sh: glibc's malloc extensions as a program sees them (linked
 * normally; slub comes in by LD_PRELOAD). It allocates COUNT blocks of SIZE bytes (default 20000
 * of 256) and prints mallinfo2's fields before, after the allocation and after the free, one
 * line each ("<when> arena=... uordblks=..."). With --serve it stops after the allocation:
 * prints "ready", then the fields again for every line read on stdin (read(2): stdio would
 * allocate a buffer), and frees at EOF. With --trim it calls malloc_trim(0) after the free and
 * prints "trim=<result>" and the fields; with --report, malloc_stats() (stderr) and the XML of
 * malloc_info(0, stdout) between "<<<" and ">>>" lines, then "info1=<result> errno=<errno>" for
 * malloc_info(1, stdout). The block table is static: no large block of ours in the counts. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BLOCKS 100000
static void* blocks[MAX_BLOCKS];

static void show(const char* when) {
  struct mallinfo2 m = mallinfo2();
  printf(
      "%s arena=%zu ordblks=%zu smblks=%zu hblks=%zu hblkhd=%zu usmblks=%zu fsmblks=%zu "
      "uordblks=%zu fordblks=%zu keepcost=%zu\n",
      when, m.arena, m.ordblks, m.smblks, m.hblks, m.hblkhd, m.usmblks, m.fsmblks, m.uordblks,
      m.fordblks, m.keepcost);
  struct mallinfo mi = mallinfo(); /* the int version: the same, clamped */
  printf("%s-int arena=%d uordblks=%d fordblks=%d\n", when, mi.arena, mi.uordblks, mi.fordblks);
  fflush(stdout);
}

int main(int argc, char** argv) {
  int serve = 0, trim = 0, report = 0;
  size_t count = 20000, size = 256;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--serve") == 0)
      serve = 1;
    else if (strcmp(argv[i], "--trim") == 0)
      trim = 1;
    else if (strcmp(argv[i], "--report") == 0)
      report = 1;
    else if (strncmp(argv[i], "--count=", 8) == 0)
      count = strtoul(argv[i] + 8, NULL, 10);
    else if (strncmp(argv[i], "--size=", 7) == 0)
      size = strtoul(argv[i] + 7, NULL, 10);
    else {
      fprintf(stderr, "usage: %s [--serve] [--trim] [--report] [--count=N] [--size=BYTES]\n",
              argv[0]);
      return 2;
    }
  }
  printf("start\n"); /* stdout's buffer comes first, so that the counts below are ours */
  show("before");
  if (count > MAX_BLOCKS) return 2;
  for (size_t i = 0; i < count; i++) {
    blocks[i] = malloc(size);
    if (blocks[i] == NULL) return 1;
    memset(blocks[i], 0x5a, size);
  }
  show("allocated");
  if (serve) {
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (read(0, line, sizeof line) > 0) show("serve");
  }
  for (size_t i = 0; i < count; i++) free(blocks[i]);
  show("freed");
  if (report) {
    malloc_stats();
    printf("<<<\n");
    fflush(stdout);
    int rc = malloc_info(0, stdout);
    printf(">>>\ninfo0=%d\n", rc);
    errno = 0;
    rc = malloc_info(1, stdout);
    printf("info1=%d errno=%d\n", rc, errno);
  }
  if (trim) {
    printf("trim=%d\n", malloc_trim(0));
    show("trimmed");
  }
  return 0;
}
