// SPDX-License-Identifier: MIT
// Preloaded by the unit.unaligned_mmap tests: large anonymous mappings land 4 KiB past a 2 MiB
// boundary, as on kernels before 6.7 (Debian 12's 6.1, CI's), which do not align them on 2 MiB
// by themselves. This machine's kernel does, and hid failures that only CI saw.
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  const size_t kHuge = (size_t)2 << 20;
  if (addr == NULL && (flags & MAP_ANONYMOUS) && len >= kHuge / 2) {
    // Only as much extra as the placement needs (RLIMIT_AS counts it while mapped).
    const size_t span = len + kHuge + 4096;
    char* p = (char*)syscall(SYS_mmap, NULL, span, prot, flags, fd, off);
    if (p != MAP_FAILED) {
      char* q = (char*)((((uintptr_t)p + kHuge - 1) & ~(uintptr_t)(kHuge - 1)) + 4096);
      if (q > p) syscall(SYS_munmap, p, (size_t)(q - p));
      if (p + span > q + len) syscall(SYS_munmap, q + len, (size_t)(p + span - (q + len)));
      return q;
    }
    // No room for the detour (a tight RLIMIT_AS): where the kernel puts it.
  }
  return (void*)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
