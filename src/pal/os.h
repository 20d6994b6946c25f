// SPDX-License-Identifier: MIT
// pal/os: every OS call of the allocator goes through here (mmap, madvise, write, environment).
// Nothing here calls malloc.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>

struct stat;

namespace slub::os {

// Memory from the OS. Writable mappings are charged against the system's overcommit policy
// as any plain mmap is (no MAP_NORESERVE): a request the kernel's heuristic (or, under
// vm.overcommit_memory=2, its commit limit) refuses fails here, and malloc returns NULL with
// ENOMEM, as glibc's does. Only PROT_NONE reservations skip the charge.

// Maps `size` bytes (page multiple) of readable, writable, demand-zero memory aligned to
// `align` (a power of two). Returns nullptr on failure. Maps no more address space than asked
// when the limit is tight (RLIMIT_AS): an aligned spot is then found by hint, not by mapping
// size + align and trimming.
void* map_aligned(size_t size, size_t align);
// Maps `size` bytes (page multiple) with no alignment demand beyond a page.
void* map(size_t size);
void unmap(void* p, size_t size);
// Reserves `size` bytes of address space aligned to `align`, inaccessible and not charged
// (PROT_NONE); commit() makes a part of it usable, charged as a writable mapping.
void* reserve_aligned(size_t size, size_t align);
bool commit(void* p, size_t size);
// Makes [p, p+size) inaccessible again (PROT_NONE); its pages keep their contents. Keeps errno.
bool protect(void* p, size_t size);
// Reserves `size` bytes readable as zero and not charged (a private read-only mapping of the
// zero page); commit() makes parts of it writable. nullptr on failure.
void* reserve_readonly(size_t size);
// Gives the pages back to the OS; they stay mapped and read back as zero.
void purge(void* p, size_t size);

// Address space the process may still map under RLIMIT_AS (its soft limit minus what was
// mapped when first asked), or SIZE_MAX without a limit. Read once: the reservations of the
// allocator (chunk regions, CPU areas, metadata, the statistics area) are sized from it.
size_t address_space_budget();
// `dflt` when there is no limit, else about budget/`share`, a power of two kept within
// [min, dflt]: the size of a reservation that must leave room for the program.
size_t reservation_size(size_t dflt, size_t min, size_t share);

// NUMA memory policy of [p, p+size): pages are taken from `node` (an OS node id) while it has
// memory (mbind(2) with MPOL_PREFERRED). False if the kernel refuses (no NUMA support).
bool bind_node(void* p, size_t size, int node);

// Where reports go: every message of the allocator (print, report, fatal, the debug reports,
// the exit tables of SLUB_REPORT) is written by write_report, to
//   1. SLUB_DEBUG_LOG's file, when one was opened (set_report_log), else
//   2. descriptor 2, whatever the program has made of it (a log it dup2'ed onto 2 gets the
//      reports), else, when 2 is closed (EBADF: coreutils close stderr at exit),
//   3. the copy of the stderr the process started with, kept by keep_stderr() at start-up on a
//      high close-on-exec descriptor (>= 900, so that a program's low descriptors stay as it
//      expects; an exec closes it). It is used only while it is still the file it was: a
//      program that closed it and reused the number does not get reports in its file.
// A fork child inherits both descriptors.
void keep_stderr();           // once, at start-up; again in a process does nothing
void set_report_log(int fd);  // takes fd (moved to a high number); -1: none
bool write_report(const char* buf, size_t len);  // false if no descriptor took it all
int report_fd();       // the descriptor write_report tries first: the log's, else 2
int kept_stderr_fd();  // the kept copy, or -1

// Writes a message to the report output above; formats with vsnprintf into a stack buffer,
// which does not allocate for the conversions we use (%s %d %u %zu %lx %p).
void print(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void vprint(const char* fmt, va_list ap);
// Writes all `len` bytes to `fd` (write(2), again after a short write); false on an error.
bool write_all(int fd, const char* buf, size_t len);
// Like print, but only the first kReportLimit calls print; later ones are counted, and one
// line says that further reports are suppressed.
void report(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// SLUB_STRICT=1: report() aborts after printing instead of carrying on.
bool strict();
// 64 random bits from getrandom(2) (non-blocking), or a mix of time and addresses.
uint64_t random_u64();
// fork(): the random pool's lock (new slabs draw from it under no other lock), held across.
void random_fork_lock();
void random_fork_unlock();
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Environment lookup without allocation (getenv does not allocate). Only pal/options.cc asks:
// every option is read through its table (pal/options.h).
const char* env_str(const char* name);

// Reads a small text file into buf (NUL-terminated); returns bytes read or -1.
long read_file(const char* path, char* buf, size_t size);

// Shared memory for the statistics area (/dev/shm/<name>). create_shm makes a new, empty file
// (mode 0600, O_EXCL and O_NOFOLLOW: an existing name, a planted file or a link, is never
// opened) and returns its descriptor, or -errno. open_shm_readonly opens an existing one
// without following links, fills *st and returns the descriptor or -errno. back_shm gives
// [off, off+len) real pages (the file grows to cover them), so that stores into a shared
// mapping of them can never fault: false (ENOSPC, EFBIG, ...) when the file system cannot.
int create_shm(const char* name);
int open_shm_readonly(const char* name, struct stat* st);
bool back_shm(int fd, size_t off, size_t len);
// Maps `size` bytes of fd shared (writable or read-only); nullptr on failure.
void* map_shared(int fd, size_t size, bool writable);
void close_fd(int fd);
void remove_shm(const char* name);
unsigned effective_uid();
// Futexes on memory shared between processes (not FUTEX_PRIVATE). wait returns when *addr is
// no longer `val`, when woken, or after timeout_ms.
void futex_wait(uint32_t* addr, uint32_t val, unsigned timeout_ms);
void futex_wake(uint32_t* addr);
// A process's start time in clock ticks since boot (/proc/<pid>/stat field 22; pid 0: this
// process), 0 if unknown: with the pid it names a process even after pids are reused.
uint64_t process_start_time(int pid = 0);
// True when the main thread has ended (pthread_exit: the process shows as a zombie) and at most
// `service_threads` other threads are left: the program's own threads are all gone.
bool only_service_threads_left(int service_threads);
// The program's short name (/proc/self/comm) into buf.
void program_name(char* buf, size_t len);

uint64_t now_ns();  // CLOCK_MONOTONIC
void sleep_ms(unsigned ms);
int gettid();
int pid();

}  // namespace slub::os
