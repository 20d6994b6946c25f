/* SPDX-License-Identifier: MIT */
/* callgrind_pair: instructions per malloc(64)+free pair, for valgrind --tool=callgrind.
 *
 * Usage: callgrind_pair N [SIZE]
 * Warms up with 1000 malloc/free pairs (lazy binding, allocator initialisation, the first
 * slab), then calls run_pairs(N, SIZE), which does N more pairs. tools/bench.sh runs it under
 * callgrind with --toggle-collect=run_pairs for N and 2N and reports (I(2N) - I(N)) / N, so that
 * everything but the steady-state pair (including run_pairs' own entry) cancels. The figure
 * includes the loop's own few instructions per pair and the PLT jumps into malloc and free.
 *
 * Not linked to slub: the allocator is chosen with LD_PRELOAD. Built with
 * -fno-builtin-malloc -fno-builtin-free so the compiler cannot drop the pairs.
 */
#include <stdio.h>
#include <stdlib.h>

/* An escape hatch the optimiser cannot see through: the pointer is "used". */
static inline void escape(void* p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void run_pairs(long n, size_t size) {
  for (long i = 0; i < n; ++i) {
    void* p = malloc(size);
    escape(p);
    free(p);
  }
}

__attribute__((noinline)) static void warm_up(size_t size) {
  for (int i = 0; i < 1000; ++i) {
    void* p = malloc(size);
    escape(p);
    free(p);
  }
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s N [SIZE]\n", argv[0]);
    return 2;
  }
  long n = strtol(argv[1], NULL, 10);
  size_t size = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 64;
  if (n < 0) return 2;
  warm_up(size);
  run_pairs(n, size);
  return 0;
}
