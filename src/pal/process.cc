#include "pal/process.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

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
  const bool ok = pthread_create(&t, &attr, thread_trampoline, &g_start) == 0;
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

int getpid() {
  return static_cast<int>(::getpid());
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

bool write_all(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    const ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    len -= static_cast<size_t>(w);
  }
  return true;
}

int open_append(const char* path) {
  const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  return fd >= 0 ? fd : -errno;
}

bool symbol_of(const void* addr, SymbolInfo* info) {
  Dl_info dl;
  if (dladdr(addr, &dl) == 0) return false;
  *info = {dl.dli_sname, dl.dli_saddr, dl.dli_fname, dl.dli_fbase};
  return true;
}

}  // namespace slub::os
