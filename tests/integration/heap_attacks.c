/* SPDX-License-Identifier: MIT */
/* heap_attacks: the heap attacks issue [sheaves] names, as a program that uses only malloc,
 * free and realloc, to run under LD_PRELOAD=libslub.so (heap_attacks.sh). Each attack prints
 * one line and exits 0 when the allocator withstood it ("safe: ..."), 1 when it handed out
 * memory it must not have ("HIJACKED: ..."):
 *
 *   uaf-freeptr    a use-after-free write puts the address of a live block over every word
 *                  of freed blocks (so over their free pointers, wherever they sit); then
 *                  mallocs of that size must never return a live block
 *   partial-byte   the same, but flipping bit 3 of each word's low byte (a one-byte partial
 *                  overwrite: the free pointer, decoded, now points 8 bytes off an object)
 *   double-free    free(p); free(q); free(p): the next mallocs must not return p twice
 *   realloc-freed  free(p); free(q); realloc(p, n): the next mallocs must not return p
 *                  twice, nor a block overlapping what realloc returned
 *
 * Built with -fno-builtin so the compiler keeps every call, and the use-after-free accesses
 * go through a volatile pointer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kSize = 64, kBlocks = 4096 };

static void* blocks[kBlocks];

static int cmp_ptr(const void* a, const void* b) {
  const uintptr_t x = *(const uintptr_t*)a, y = *(const uintptr_t*)b;
  return x < y ? -1 : x > y;
}

/* Whether [p, p + kSize) overlaps one of the n sorted live blocks. */
static int overlaps_live(void* const* live, size_t n, const void* p) {
  const uintptr_t a = (uintptr_t)p;
  size_t lo = 0, hi = n;
  while (lo < hi) { /* first live block starting at or after a */
    const size_t mid = (lo + hi) / 2;
    if ((uintptr_t)live[mid] < a)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < n && (uintptr_t)live[lo] < a + kSize) return 1;
  return lo > 0 && (uintptr_t)live[lo - 1] + kSize > a;
}

/* Blocks of kSize, every other one freed (so no slab becomes empty and the freed ones stay
 * mapped); the freed ones get `poison` applied to every word. Then as many mallocs again, each
 * checked against the live blocks and for 16-byte alignment. */
static int freeptr_attack(const char* name, int partial) {
  for (int i = 0; i < kBlocks; ++i) {
    blocks[i] = malloc(kSize);
    if (blocks[i] == NULL) {
      printf("error: malloc failed\n");
      return 2;
    }
    memset(blocks[i], 0x5a, kSize);
  }
  for (int i = 1; i < kBlocks; i += 2) free(blocks[i]);
  void* const target = blocks[0];
  for (int i = 1; i < kBlocks; i += 2) {
    volatile uintptr_t* w = (volatile uintptr_t*)blocks[i];
    for (size_t k = 0; k < kSize / sizeof(uintptr_t); ++k) {
      if (partial)
        w[k] ^= 0x08; /* the low byte only */
      else
        w[k] = (uintptr_t)target;
    }
  }
  void* live[kBlocks / 2];
  size_t n = 0;
  for (int i = 0; i < kBlocks; i += 2) live[n++] = blocks[i];
  qsort(live, n, sizeof live[0], cmp_ptr);
  for (int i = 0; i < kBlocks; ++i) {
    void* p = malloc(kSize);
    if (p == NULL) continue;
    if ((uintptr_t)p % 16 != 0) {
      printf("HIJACKED: %s: malloc returned %p, not 16-byte aligned\n", name, p);
      return 1;
    }
    if (overlaps_live(live, n, p)) {
      printf("HIJACKED: %s: malloc returned %p, inside a live block\n", name, p);
      return 1;
    }
  }
  printf("safe: %s: %d mallocs, none misaligned or inside a live block\n", name, kBlocks);
  return 0;
}

/* After free(p); free(q); <bad>, the next mallocs of the size: none may repeat. */
static int distinct_after(const char* name, void* extra) {
  void* got[8];
  for (int i = 0; i < 8; ++i) {
    got[i] = malloc(kSize);
    for (int j = 0; j < i; ++j)
      if (got[i] != NULL && got[i] == got[j]) {
        printf("HIJACKED: %s: malloc returned %p twice\n", name, got[i]);
        return 1;
      }
    if (extra != NULL && got[i] != NULL && (uintptr_t)got[i] < (uintptr_t)extra + kSize &&
        (uintptr_t)extra < (uintptr_t)got[i] + kSize) {
      printf("HIJACKED: %s: malloc returned %p, which overlaps realloc's %p\n", name, got[i],
             extra);
      return 1;
    }
  }
  printf("safe: %s: the next 8 mallocs are distinct\n", name);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s uaf-freeptr|partial-byte|double-free|realloc-freed\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  const char* what = argv[1];
  if (strcmp(what, "uaf-freeptr") == 0) return freeptr_attack(what, 0);
  if (strcmp(what, "partial-byte") == 0) return freeptr_attack(what, 1);
  void* p = malloc(kSize);
  void* q = malloc(kSize);
  if (p == NULL || q == NULL) return 2;
  free(p);
  free(q);
  if (strcmp(what, "double-free") == 0) {
    free(p);
    return distinct_after(what, NULL);
  }
  if (strcmp(what, "realloc-freed") == 0) {
    void* r = realloc(p, kSize);
    return distinct_after(what, r);
  }
  fprintf(stderr, "%s: unknown attack %s\n", argv[0], what);
  return 2;
}
