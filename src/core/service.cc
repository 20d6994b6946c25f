// SPDX-License-Identifier: MIT
#include "core/service.h"

#include "core/kfence.h"
#include "core/kmem_cache.h"
#include "mm/page_alloc.h"
#include "pal/process.h"

namespace slub {

constinit std::atomic<bool> g_service_started{false};

namespace {
using ServiceMain = void* (*)(void*);
constinit ServiceMain g_main = nullptr;
constinit bool g_allowed = true;
constinit bool g_eager = false;
constexpr size_t kServiceDirtyPages = 1024;  // 4 MiB free but resident
}  // namespace

void service_configure(void* (*main)(void*), bool allowed, bool eager) {
  g_main = main;
  g_allowed = allowed;
  g_eager = eager;
}

void service_request_slow(bool needed) {
  // Not from inside a slow path (a signal handler's nested call): thread creation allocates.
  if (g_main == nullptr || !g_allowed || t_thread.slow_depth != 0) return;
  // KFENCE's sampling is armed by the thread (kfence.h): a process that has it on has the
  // thread from its first slow path. (Waiting until the process is an interval old was tried:
  // a program whose steady state stays on the fast paths then never asks again, and is never
  // sampled.)
  if (!needed && !g_eager && kfence::interval_ms() == 0 && nr_used_cpus() < 2 &&
      PageAlloc::dirty_pages() < kServiceDirtyPages)
    return;
  if (g_service_started.exchange(true)) return;
  if (!os::start_thread(g_main, "slub-service")) g_service_started.store(false);
}

void service_forget() {
  g_service_started.store(false);
}

}  // namespace slub
