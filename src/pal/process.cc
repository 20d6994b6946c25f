// SPDX-License-Identifier: MIT
#include "pal/process.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>

namespace slub::os {

namespace {
struct ThreadStart {
  void* (*fn)(void*);
  char name[16];
};
constinit ThreadStart g_start = {};  // one start at a time: callers serialise (an atomic flag)

void* thread_trampoline(void* arg) {
  const ThreadStart* st = static_cast<const ThreadStart*>(arg);
  void* (*fn)(void*) = st->fn;
  prctl(PR_SET_NAME, st->name, 0, 0, 0);
  return fn(nullptr);
}
}  // namespace

bool start_thread(void* (*fn)(void*), const char* name) {
  g_start.fn = fn;
  strncpy(g_start.name, name, sizeof g_start.name - 1);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t t;
  bool ok = pthread_create(&t, &attr, thread_trampoline, &g_start) == 0;
  if (!ok) {  // glibc takes static TLS out of the stack: a program with much of it needs more
    pthread_attr_destroy(&attr);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    ok = pthread_create(&t, &attr, thread_trampoline, &g_start) == 0;
  }
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok;
}

uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void at_fork(void (*prepare)(), void (*parent)(), void (*child)()) {
  pthread_atfork(prepare, parent, child);
}

void yield() {
  sched_yield();
}

bool process_exists(int pid) {
  return !(kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
}

bool for_each_dir_entry(const char* path, void (*fn)(const char* name, void* arg), void* arg) {
  DIR* d = opendir(path);
  if (d == nullptr) return false;
  while (dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) fn(e->d_name, arg);
  closedir(d);
  return true;
}

int open_append(const char* path) {
  const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  return fd >= 0 ? fd : -errno;
}

bool symbol_of(const void* addr, SymbolInfo* info, bool want_line) {
  Dl_info dl;
  void* symp = nullptr;
  if (dladdr1(addr, &dl, &symp, RTLD_DL_SYMENT) == 0) return false;
  const auto* sym = static_cast<const ElfW(Sym)*>(symp);
  info->name = dl.dli_sname;
  info->addr = dl.dli_saddr;
  info->size = sym != nullptr ? static_cast<size_t>(sym->st_size) : 0;
  info->object = dl.dli_fname;
  info->object_base = dl.dli_fbase;
  info->file = nullptr;
  info->line = 0;
  if (info->name != nullptr && !want_line) return true;
  // The object's file: its link map has the path ("" for the program) and the load bias.
  Dl_info dl2;
  void* lmp = nullptr;
  if (dladdr1(addr, &dl2, &lmp, RTLD_DL_LINKMAP) == 0 || lmp == nullptr) return true;
  const auto* lm = static_cast<const link_map*>(lmp);
  // The program has no name in its link map: /proc/self/exe, or when it was started by running
  // ld.so (then /proc/self/exe is ld.so), the name dladdr gives it (argv[0]).
  const bool program = lm->l_name == nullptr || lm->l_name[0] == '\0';
  const LoadedObject obj = {
      {program ? "/proc/self/exe" : lm->l_name, program ? dl.dli_fname : nullptr},
      static_cast<uintptr_t>(lm->l_addr),
      reinterpret_cast<uintptr_t>(lm->l_ld)};
  const bool named =
      elf_lookup_loaded(obj, reinterpret_cast<uintptr_t>(addr), want_line, &info->elf);
  if (info->name == nullptr && named) {
    info->name = info->elf.name;
    info->addr = reinterpret_cast<const void*>(static_cast<uintptr_t>(lm->l_addr) +
                                               static_cast<uintptr_t>(info->elf.value));
    info->size = static_cast<size_t>(info->elf.size);
  }
  if (info->elf.line != 0) {
    info->file = info->elf.file;
    info->line = info->elf.line;
  }
  return true;
}

namespace {
struct TextQuery {
  const void* base;  // the object's load address (dladdr's dli_fbase)
  uintptr_t addr;
  uintptr_t lo, hi;
  bool shared, found;
};

int find_text(struct dl_phdr_info* info, size_t, void* arg) {
  auto* q = static_cast<TextQuery*>(arg);
  if (reinterpret_cast<const void*>(info->dlpi_addr) != q->base && info->dlpi_addr != 0) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (q->addr >= lo && q->addr < lo + ph.p_memsz) {
      q->lo = lo;
      q->hi = lo + ph.p_memsz;
      q->shared = info->dlpi_name != nullptr && info->dlpi_name[0] != '\0';
      q->found = true;
      return 1;
    }
  }
  return 0;
}
}  // namespace

bool text_segment_of(const void* addr, uintptr_t* lo, uintptr_t* hi, bool* shared) {
  Dl_info dl;
  if (dladdr(addr, &dl) == 0) return false;
  TextQuery q{dl.dli_fbase, reinterpret_cast<uintptr_t>(addr), 0, 0, false, false};
  dl_iterate_phdr(find_text, &q);
  if (!q.found) return false;
  *lo = q.lo;
  *hi = q.hi;
  *shared = q.shared;
  return true;
}

void* find_symbol(const char* name, bool next) {
  return dlsym(next ? RTLD_NEXT : RTLD_DEFAULT, name);
}

namespace {
constinit FaultHandler g_fault_fn = nullptr;
constinit struct sigaction g_old_segv = {};
constinit std::atomic<bool> g_fault_installed{false};
constinit std::atomic<bool> g_old_segv_read{false};  // g_old_segv holds the replaced action

// The default action for a SIGSEGV: put it back and let the fault happen again (the
// instruction runs again on return), or, for a signal that was sent and not raised by a fault,
// send it again (it is blocked here, so it arrives when the handler returns).
void default_action(const siginfo_t* info) {
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGSEGV, &dfl, nullptr);
  if (info == nullptr || info->si_code <= 0) raise(SIGSEGV);
}

void on_segv(int sig, siginfo_t* info, void* uc_arg) {
  auto* uc = static_cast<ucontext_t*>(uc_arg);
  // si_code > 0: a fault the kernel raised for an access (not kill or sigqueue). Bits 1 and 4
  // of the page-fault error code say the access was a write, an instruction fetch (x86-64).
  const bool fault = info != nullptr && info->si_code > 0;
  const auto err = uc->uc_mcontext.gregs[REG_ERR];
  if (fault && g_fault_fn != nullptr &&
      g_fault_fn(info->si_addr, (err & 2) != 0, (err & 16) != 0,
                 reinterpret_cast<const void*>(uc->uc_mcontext.gregs[REG_RIP])))
    return;
  // Another thread's fault between the install and the publication of what it replaced: the
  // installer is two stores away.
  while (!g_old_segv_read.load(std::memory_order_acquire)) {
  }
  const struct sigaction old = g_old_segv;
  if (old.sa_handler == SIG_DFL) return default_action(info);
  if (old.sa_handler == SIG_IGN) {
    if (fault) default_action(info);  // an ignored fault would run again forever: it kills
    return;
  }
  // The program's handler, run as the kernel would have run it: with the mask at the signal
  // plus its sa_mask, SIGSEGV blocked unless SA_NODEFER, and SA_RESETHAND honoured.
  if (old.sa_flags & SA_RESETHAND) {
    g_old_segv.sa_handler = SIG_DFL;
    g_old_segv.sa_flags &= ~SA_SIGINFO;
  }
  sigset_t mask = uc->uc_sigmask, prev;
  for (int s = 1; s < NSIG; ++s)
    if (sigismember(&old.sa_mask, s) == 1) sigaddset(&mask, s);
  if (old.sa_flags & SA_NODEFER)
    sigdelset(&mask, SIGSEGV);
  else
    sigaddset(&mask, SIGSEGV);
  pthread_sigmask(SIG_SETMASK, &mask, &prev);
  if (old.sa_flags & SA_SIGINFO)
    old.sa_sigaction(sig, info, uc_arg);
  else
    old.sa_handler(sig);
  pthread_sigmask(SIG_SETMASK, &prev, nullptr);
}
}  // namespace

bool install_fault_handler(FaultHandler fn) {
  if (g_fault_installed.exchange(true)) return true;
  g_fault_fn = fn;
  const int saved = errno;
  // Swapped in with one call: read first and installed by a second, a handler another thread
  // installed in between was overwritten and never chained to.
  struct sigaction sa = {}, old = {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  // A SIGSEGV sent to this thread in between would wait for the publication forever: blocked
  // until then (no fault can happen here).
  sigset_t segv, prev;
  sigemptyset(&segv);
  sigaddset(&segv, SIGSEGV);
  pthread_sigmask(SIG_BLOCK, &segv, &prev);
  const bool ok = sigaction(SIGSEGV, &sa, &old) == 0;
  if (ok) {
    g_old_segv = old;
    g_old_segv_read.store(true, std::memory_order_release);
  } else {
    g_fault_installed.store(false);
  }
  pthread_sigmask(SIG_SETMASK, &prev, nullptr);
  errno = saved;
  return ok;
}

void abort_process() {
  abort();
}

void exit_process(int status) {
  exit(status);
}

}  // namespace slub::os
