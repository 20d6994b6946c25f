/* SPDX-License-Identifier: MIT */
/* buggy_static: memory bugs in static functions of a program built without -rdynamic, so that
 * nothing of it is exported and dladdr names none of its functions: the debug reports must
 * name them from the program's own symbol table, and give file:line from its line table
 * (built with -O0 -g -fno-builtin; symbol_names.sh checks the reports).
 *
 *   usage: buggy_static overflow|double_free|both   (LD_PRELOAD=libslub.so SLUB_DEBUG=FZPU)
 *
 * The comments "line:NAME" mark the lines the reports must point at; the test reads their
 * numbers from this file. The allocator repairs or quarantines, so the program prints
 * "survived" at its end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* volatile sink;
static void* launder(void* p) {
  sink = p;
  return sink;
}

/* malloc(64) fills kmalloc-64 exactly: byte 64 lies in the right red zone. */
__attribute__((noinline)) static void overflow_in_static(void) {
  char* p = launder(malloc(64)); /* line:overflow_alloc */
  p[64] = 0x41;
  free(p); /* line:overflow_free */
}

__attribute__((noinline)) static void double_free_in_static(void) {
  char* p = launder(malloc(64)); /* line:double_alloc */
  free(p);                       /* line:double_first_free */
  free(p);                       /* line:double_second_free */
}

/* One more static frame between main and the bug, for the stack lines. */
__attribute__((noinline)) static void run_mode(const char* mode) {
  if (strcmp(mode, "overflow") == 0)
    overflow_in_static(); /* line:run_overflow */
  else if (strcmp(mode, "double_free") == 0)
    double_free_in_static();            /* line:run_double_free */
  else if (strcmp(mode, "both") == 0) { /* two reports */
    overflow_in_static();
    double_free_in_static(); /* line:run_both_double_free */
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    exit(2);
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s overflow|double_free|both\n", argv[0]);
    return 2;
  }
  run_mode(argv[1]);
  printf("survived\n");
  return 0;
}
