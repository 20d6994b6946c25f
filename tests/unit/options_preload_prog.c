/* SPDX-License-Identifier: MIT */
/* A plain malloc and free, for options_test to run with LD_PRELOAD=libslub.so: SLUB_REPORT is
 * read by libslub.so's exit-time report only. */
#include <stdlib.h>

int main(void) {
  void* volatile p = malloc(100);
  free(p);
  return 0;
}
