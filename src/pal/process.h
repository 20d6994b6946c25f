// SPDX-License-Identifier: MIT
// pal/process: the OS calls about threads, processes, directories, files and symbols (pal/os.h has
// memory, output and the environment). glibc may call malloc in some of them (pthread_create,
// pthread_atfork, opendir, dlsym): callers hold no allocator lock and are not inside a slow path.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pal/elf.h"

namespace slub::os {

// Starts a detached thread running fn(nullptr) with a 64 KiB stack (the default size if that
// is refused: a program with much static TLS) and every signal blocked
// (the program's signals must never be delivered to it); `name` (15 characters at most) is
// what /proc/PID/task/TID/comm shows. False if the thread could not be created.
bool start_thread(void* (*fn)(void*), const char* name);
// CPU time the calling thread has used, in nanoseconds.
uint64_t thread_cpu_ns();
// pthread_atfork: the three handlers run around every fork of the process.
void at_fork(void (*prepare)(), void (*parent)(), void (*child)());
void yield();

// False only when no process `pid` exists (kill(pid, 0) fails with ESRCH).
bool process_exists(int pid);
// Calls fn(name, arg) for each entry of the directory at `path` (not . and ..); false if it
// cannot be opened.
bool for_each_dir_entry(const char* path, void (*fn)(const char* name, void* arg), void* arg);

// Opens `path` for appending (created 0644, close-on-exec): the descriptor or -errno.
int open_append(const char* path);

// The function `addr` is in: its name (nullptr if none), address and size (0 if unknown), and
// its object's path and base; false when no loaded object contains addr. The name is dladdr's
// (exported symbols) or else the object file's symbol table (pal/elf.h: static functions too,
// when the file is not stripped); with `want_line`, also the source file and line from the
// file's DWARF line table (-g). The strings live in `info` or in the loader's tables.
struct SymbolInfo {
  const char* name;
  const void* addr;
  size_t size;
  const char* object;
  const void* object_base;
  const char* file;  // source file, without its directory; nullptr if unknown
  unsigned line;     // 0 if unknown
  ElfWhere elf;      // where name and file are kept when read from the file
};
bool symbol_of(const void* addr, SymbolInfo* info, bool want_line = false);
// The executable segment [*lo, *hi) of the loaded object that contains `addr`, and whether that
// object is a shared library (false: the program itself). False if none contains it.
bool text_segment_of(const void* addr, uintptr_t* lo, uintptr_t* hi, bool* shared);
[[noreturn]] void abort_process();

// SIGSEGV: `fn` is asked first about every fault the kernel raises (the address, whether the
// access was a write or an instruction fetch, the faulting instruction) and returns true when it
// made the access possible (the instruction runs again). Any other SIGSEGV goes to the action that
// was in place before: the program's handler, or the default one (the process dies as it would
// have). A handler the program installs later replaces this one as usual. Installed once; false if
// sigaction refused.
using FaultHandler = bool (*)(void* addr, bool write, bool fetch, const void* ip);
bool install_fault_handler(FaultHandler fn);
[[noreturn]] void exit_process(int status);  // exit(3): atexit handlers, stdio flushed
// dlsym: the definition of `name` in the global scope, or with `next` the one after the caller's
// object (RTLD_NEXT: what ours interposes); nullptr if there is none.
void* find_symbol(const char* name, bool next);

}  // namespace slub::os
