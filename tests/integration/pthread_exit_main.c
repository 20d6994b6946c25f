/* SPDX-License-Identifier: MIT */
/* main ends with pthread_exit while a worker still allocates: the process must end when the
 * worker does, even with slub's flusher thread running (found by python's test_threading). */
#include <pthread.h>
#include <stdlib.h>

static void* work(void* arg) {
  (void)arg;
  for (int i = 0; i < 200000; i++) free(malloc(16 + (i % 1000) * 40));
  return 0;
}

int main(void) {
  pthread_t t;
  pthread_create(&t, 0, work, 0);
  pthread_exit(0);
}
