// SPDX-License-Identifier: MIT
#include "core/service.h"

#include "core/kfence.h"
#include "core/kmem_cache.h"
#include "mm/page_alloc.h"
#include "pal/os.h"
#include "pal/process.h"

namespace slub {

constinit std::atomic<bool> g_service_started{false};

namespace {
using ServiceMain = void* (*)(void*);
constinit ServiceMain g_main = nullptr;
constinit bool g_allowed = true;
constinit bool g_eager = false;
constexpr size_t kServiceDirtyPages = 1024;  // 4 MiB free but resident
constinit uint64_t g_start_ns = 0;           // the process's start (a fork child's: the fork)
constinit std::atomic<unsigned> g_asked{0};  // requests while the thread is not running

// KFENCE wants the thread to arm its sampler, but not in a process that is gone before the
// first interval ends (most processes of a shell script): once the process is that old.
// The clock is read on every 64th request only.
bool kfence_wants_thread() {
  const unsigned ms = kfence::interval_ms();
  if (ms == 0 || (g_asked.fetch_add(1, std::memory_order_relaxed) & 63) != 0) return false;
  return os::now_ns() - g_start_ns >= uint64_t{ms} * 1000000;
}
}  // namespace

void service_configure(void* (*main)(void*), bool allowed, bool eager) {
  g_main = main;
  g_allowed = allowed;
  g_eager = eager;
  g_start_ns = os::now_ns();
}

void service_request_slow(bool needed) {
  // Not from inside a slow path (a signal handler's nested call): thread creation allocates.
  if (g_main == nullptr || !g_allowed || t_thread.slow_depth != 0) return;
  if (!needed && !g_eager && nr_used_cpus() < 2 && PageAlloc::dirty_pages() < kServiceDirtyPages &&
      !kfence_wants_thread())
    return;
  if (g_service_started.exchange(true)) return;
  if (!os::start_thread(g_main, "slub-service")) g_service_started.store(false);
}

void service_forget() {
  g_service_started.store(false);
  g_start_ns = os::now_ns();
}

}  // namespace slub
