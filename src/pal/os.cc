// SPDX-License-Identifier: MIT
#include "pal/os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "base/base.h"
#include "pal/options.h"

namespace slub::os {

namespace {
constexpr unsigned kReportLimit = 16;
std::atomic<unsigned> g_reports{0};
}  // namespace

namespace {
void* raw_map(void* hint, size_t size, int prot, int flags) {
  void* p = mmap(hint, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// `size` bytes aligned on `align`. The first try maps just `size` (the kernel aligns large
// anonymous mappings on 2 MiB by itself); else, with address space to spare, size + align
// trimmed to the aligned part; else exactly `size` at an aligned address next to where the
// kernel would put it (MAP_FIXED_NOREPLACE never replaces a mapping).
void* aligned_mapping(size_t size, size_t align, int prot, int flags) {
  char* p = static_cast<char*>(raw_map(nullptr, size, prot, flags));
  if (p == nullptr || align <= kPageSize || (reinterpret_cast<uintptr_t>(p) & (align - 1)) == 0)
    return p;
  munmap(p, size);
  const size_t span = size + align;
  if (span > size && (address_space_budget() == SIZE_MAX || address_space_budget() / 4 > span)) {
    if (char* raw = static_cast<char*>(raw_map(nullptr, span, prot, flags))) {
      char* q = reinterpret_cast<char*>(align_up(reinterpret_cast<uintptr_t>(raw), align));
      if (q > raw) munmap(raw, q - raw);
      char* end = q + size;
      if (raw + span > end) munmap(end, raw + span - end);
      return q;
    }
  }
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  for (uintptr_t hint : {align_up(at, align), align_down(at, align)}) {
    void* q = raw_map(reinterpret_cast<void*>(hint), size, prot, flags | MAP_FIXED_NOREPLACE);
    if (q == reinterpret_cast<void*>(hint)) return q;
    if (q != nullptr) munmap(q, size);  // a kernel older than 4.17 took the hint as a hint
  }
  return nullptr;
}
}  // namespace

void* map(size_t size) {
  return raw_map(nullptr, size, PROT_READ | PROT_WRITE, 0);
}

void* map_aligned(size_t size, size_t align) {
  return aligned_mapping(size, align, PROT_READ | PROT_WRITE, 0);
}

void* reserve_aligned(size_t size, size_t align) {
  return aligned_mapping(size, align, PROT_NONE, MAP_NORESERVE);
}

void* reserve_readonly(size_t size) {
  return raw_map(nullptr, size, PROT_READ, 0);
}

bool commit(void* p, size_t size) {
  const int saved = errno;
  const bool ok = mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
  errno = saved;
  return ok;
}

bool protect(void* p, size_t size) {
  const int saved = errno;
  const bool ok = mprotect(p, size, PROT_NONE) == 0;
  errno = saved;
  return ok;
}

void unmap(void* p, size_t size) {
  munmap(p, size);
}

size_t address_space_budget() {
  static constinit std::atomic<size_t> cached{0};  // 0: not read yet
  size_t b = cached.load(std::memory_order_relaxed);
  if (SLUB_LIKELY(b != 0)) return b;
  rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
    b = SIZE_MAX;
  } else {
    char buf[128];
    size_t mapped = 0;  // /proc/self/statm: the first field is the mapped size in pages
    if (read_file("/proc/self/statm", buf, sizeof buf) > 0)
      mapped = static_cast<size_t>(strtoull(buf, nullptr, 10)) * kPageSize;
    b = rl.rlim_cur > mapped ? static_cast<size_t>(rl.rlim_cur) - mapped : 1;
  }
  cached.store(b, std::memory_order_relaxed);
  return b;
}

size_t reservation_size(size_t dflt, size_t min, size_t share) {
  const size_t budget = address_space_budget();
  if (budget == SIZE_MAX) return dflt;
  size_t v = budget / share;
  if (v < min) return min;
  if (v >= dflt) return dflt;
  return size_t{1} << (fls(v) - 1);  // a power of two below budget/share
}

void purge(void* p, size_t size) {
  int saved = errno;
  madvise(p, size, MADV_DONTNEED);
  errno = saved;
}

bool bind_node(void* p, size_t size, int node) {
  // The kernel's MPOL_PREFERRED: pages come from `node` while it has free memory, then from the
  // others (a strict MPOL_BIND would turn a full node into an out-of-memory kill).
  constexpr int kMpolPreferred = 1;
  constexpr unsigned long kMaskBits = 1024;
  unsigned long mask[kMaskBits / (8 * sizeof(unsigned long))] = {};
  if (node < 0 || static_cast<unsigned long>(node) >= kMaskBits) return false;
  mask[node / (8 * sizeof(unsigned long))] |= 1ul << (node % (8 * sizeof(unsigned long)));
  int saved = errno;
  long rc = syscall(SYS_mbind, p, size, kMpolPreferred, mask, kMaskBits + 1, 0);
  errno = saved;
  return rc == 0;
}

bool write_all(int fd, const char* buf, size_t len) {
  int saved = errno;
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    buf += w;
    len -= static_cast<size_t>(w);
  }
  errno = saved;
  return len == 0;
}

// ---- report output (os.h: where reports go) ----
namespace {
// Written at start-up (keep_stderr, set_report_log), read by every report: atomics only so that
// a report of a thread started before start-up ended reads a whole value.
constinit std::atomic<int> g_log_fd{-1};
constinit std::atomic<int> g_kept_fd{-1};
constinit dev_t g_kept_dev = 0;  // what the kept copy is (set before g_kept_fd is published)
constinit ino_t g_kept_ino = 0;

// A copy of fd at a high number, close-on-exec, or -1. 900 first (far above what programs
// count on); lower when RLIMIT_NOFILE is smaller than that.
int dup_high(int fd) {
  const int saved = errno;
  int copy = -1;
  for (const int min : {900, 200, 30}) {
    copy = fcntl(fd, F_DUPFD_CLOEXEC, min);
    if (copy >= 0 || errno != EINVAL) break;  // EINVAL: min is at or above the limit
  }
  errno = saved;
  return copy;
}

// write_all that tells why it stopped: 0 when everything was written, else the errno.
int write_fd(int fd, const char* buf, size_t len) {
  while (len > 0) {
    const ssize_t w = write(fd, buf, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    buf += w;
    len -= static_cast<size_t>(w);
  }
  return 0;
}

// The kept copy while it is still the stderr it was made from, else -1.
int kept_if_same() {
  const int fd = g_kept_fd.load(std::memory_order_acquire);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_dev != g_kept_dev || st.st_ino != g_kept_ino)
    return -1;
  return fd;
}
}  // namespace

void keep_stderr() {
  if (g_kept_fd.load(std::memory_order_relaxed) >= 0) return;
  struct stat st;
  const int saved = errno;
  const bool open = fstat(2, &st) == 0;
  errno = saved;
  if (!open) return;  // started without a stderr: nothing to keep
  const int copy = dup_high(2);
  if (copy < 0) return;
  g_kept_dev = st.st_dev;
  g_kept_ino = st.st_ino;
  g_kept_fd.store(copy, std::memory_order_release);
}

void set_report_log(int fd) {
  if (fd >= 0) {
    if (const int high = dup_high(fd); high >= 0) {
      close(fd);
      fd = high;
    }
  }
  const int old = g_log_fd.exchange(fd, std::memory_order_acq_rel);
  if (old >= 0 && old != fd) close(old);
}

int report_fd() {
  const int log = g_log_fd.load(std::memory_order_acquire);
  return log >= 0 ? log : 2;
}

int kept_stderr_fd() {
  return g_kept_fd.load(std::memory_order_acquire);
}

bool write_report(const char* buf, size_t len) {
  const int saved = errno;
  bool ok;
  if (const int log = g_log_fd.load(std::memory_order_acquire); log >= 0) {
    ok = write_fd(log, buf, len) == 0;
  } else {
    const int err = write_fd(2, buf, len);
    ok = err == 0;
    if (err == EBADF) {  // the program closed its stderr: the copy kept at start-up
      const int kept = kept_if_same();
      ok = kept >= 0 && write_fd(kept, buf, len) == 0;
    }
  }
  errno = saved;
  return ok;
}

void vprint(const char* fmt, va_list ap) {
  char buf[512];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) return;
  size_t len = static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1;
  write_report(buf, len);
}

void print(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprint(fmt, ap);
  va_end(ap);
}

bool strict() {
  return options::flag(options::kOptStrict);
}

// Random words come from a pool filled by one getrandom call: start-up creates some 40
// caches, each with its own key, and a system call per key cost every process 41 of them.
// The pool is refilled when used up, and anew in a fork child (by pid), so that parent and
// child do not draw the same words.
namespace {
constinit SpinLock<LockClass::kRandom> g_random_lock;
}  // namespace

void random_fork_lock() {
  g_random_lock.lock();
}

void random_fork_unlock() {
  g_random_lock.unlock();
}

uint64_t random_u64() {
  static constinit uint64_t pool[64] = {};
  static constinit unsigned left = 0;
  static constinit int pool_pid = 0;
  LockGuard g(g_random_lock);
  const int pid = getpid();
  if (left == 0 || pid != pool_pid) {
    const int saved = errno;
    if (syscall(SYS_getrandom, pool, sizeof pool, 0x1 /* GRND_NONBLOCK */) !=
        static_cast<long>(sizeof pool)) {
      // No entropy yet (early boot) or no getrandom: a mix of time, addresses and pid.
      uint64_t v = now_ns() ^ reinterpret_cast<uintptr_t>(&v) ^ (static_cast<uint64_t>(pid) << 32);
      for (uint64_t& w : pool) w = (v += 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
    }
    errno = saved;
    left = sizeof pool / sizeof pool[0];
    pool_pid = pid;
  }
  const uint64_t v = pool[--left];
  pool[left] = 0;  // a used word does not stay in memory
  return v;
}

void report(const char* fmt, ...) {
  if (strict()) {  // SLUB_STRICT=1: every report is fatal
    va_list ap;
    va_start(ap, fmt);
    vprint(fmt, ap);
    va_end(ap);
    print("slub: SLUB_STRICT is set: aborting\n");
    abort();
  }
  unsigned n = g_reports.fetch_add(1, std::memory_order_relaxed);
  if (n > kReportLimit) return;
  if (n == kReportLimit) {
    print("slub: further reports suppressed\n");
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vprint(fmt, ap);
  va_end(ap);
}

void fatal(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprint(fmt, ap);
  va_end(ap);
  abort();
}

const char* env_str(const char* name) {
  return getenv(name);
}

long read_file(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = '\0';
  return n;
}

int create_shm(const char* name) {
  const int saved = errno;
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int rc = fd >= 0 ? fd : -errno;
  // Readable by the same user only, whatever the umask; the file is new and ours.
  if (fd >= 0 && fchmod(fd, 0600) != 0) {
    rc = -errno;
    close(fd);
    shm_unlink(name);
  }
  errno = saved;
  return rc;
}

int open_shm_readonly(const char* name, struct stat* st) {
  const int saved = errno;
  int fd = shm_open(name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
  int rc = fd >= 0 ? fd : -errno;
  if (fd >= 0 && fstat(fd, st) != 0) {
    rc = -errno;
    close(fd);
  }
  errno = saved;
  return rc;
}

bool back_shm(int fd, size_t off, size_t len) {
  const int saved = errno;
  bool ok = fallocate(fd, 0, static_cast<off_t>(off), static_cast<off_t>(len)) == 0;
  if (!ok && errno == EOPNOTSUPP) {
    // A file system without fallocate: written zeros are real pages too.
    static const char zeros[4096] = {};
    ok = true;
    for (size_t done = 0; ok && done < len;) {
      const size_t n = len - done < sizeof zeros ? len - done : sizeof zeros;
      const ssize_t w = pwrite(fd, zeros, n, static_cast<off_t>(off + done));
      ok = w > 0;
      if (ok) done += static_cast<size_t>(w);
    }
  }
  errno = saved;
  return ok;
}

void* map_shared(int fd, size_t size, bool writable) {
  void* p = mmap(nullptr, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void close_fd(int fd) {
  if (fd >= 0) close(fd);
}

void remove_shm(const char* name) {
  const int saved = errno;
  shm_unlink(name);
  errno = saved;
}

unsigned effective_uid() {
  return geteuid();
}

void futex_wait(uint32_t* addr, uint32_t val, unsigned timeout_ms) {
  timespec ts{static_cast<time_t>(timeout_ms / 1000),
              static_cast<long>(timeout_ms % 1000) * 1000000L};
  syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, nullptr, 0);
}

void futex_wake(uint32_t* addr) {
  syscall(SYS_futex, addr, FUTEX_WAKE, 1 << 30, nullptr, nullptr, 0);
}

uint64_t process_start_time(int pid) {
  char path[64], buf[1024];
  if (pid == 0)
    snprintf(path, sizeof path, "/proc/self/stat");
  else
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
  if (read_file(path, buf, sizeof buf) <= 0) return 0;
  const char* p = strrchr(buf, ')');  // the command name may hold spaces and parentheses
  if (p == nullptr) return 0;
  // After ") " come fields 3, 4, ...; starttime is field 22.
  int field = 2;
  for (++p; *p != '\0' && field < 22; ++p)
    if (*p == ' ') ++field;
  return strtoull(p, nullptr, 10);
}

bool only_service_threads_left(int service_threads) {
  char buf[1024];
  if (read_file("/proc/self/stat", buf, sizeof buf) <= 0) return false;
  const char* p = strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return false;
  const char state = p[2];  // field 3: the thread group leader's state
  int field = 2;
  for (++p; *p != '\0' && field < 20; ++p)
    if (*p == ' ') ++field;
  const long threads = strtol(p, nullptr, 10);  // field 20: num_threads
  return state == 'Z' && threads <= 1 + service_threads;
}

void program_name(char* buf, size_t len) {
  if (read_file("/proc/self/comm", buf, len) <= 0) {
    buf[0] = '\0';
    return;
  }
  if (char* nl = strchr(buf, '\n')) *nl = '\0';
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void sleep_ms(unsigned ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int gettid() {
  return static_cast<int>(syscall(SYS_gettid));
}

int pid() {
  return static_cast<int>(getpid());
}

}  // namespace slub::os
