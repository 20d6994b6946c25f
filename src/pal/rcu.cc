// SPDX-License-Identifier: MIT
#include "pal/rcu.h"

#include <dlfcn.h>

#include <atomic>

#include "base/base.h"

namespace slub::rcu {

namespace {
using CallFn = void (*)(RcuHead*, void (*)(RcuHead*));
using VoidFn = void (*)();
using DataFn = void* (*)();

constinit SpinLock<LockClass::kRcuLoad> g_load_lock;
constinit std::atomic<bool> g_loaded{false};
constinit CallFn g_call = nullptr;
constinit VoidFn g_barrier = nullptr;
constinit VoidFn g_before_fork = nullptr;
constinit VoidFn g_after_parent = nullptr;
constinit VoidFn g_after_child = nullptr;

template <typename T>
T sym(void* lib, const char* name) {
  return reinterpret_cast<T>(dlsym(lib, name));
}
}  // namespace

bool load() {
  if (g_loaded.load(std::memory_order_acquire)) return true;
  // dlopen allocates: not under g_load_lock (a spin lock); racing loaders get the same handle.
  void* lib = dlopen("liburcu.so.8", RTLD_NOW | RTLD_GLOBAL);
  if (lib == nullptr) return false;
  auto call = sym<CallFn>(lib, "urcu_memb_call_rcu");
  auto barrier = sym<VoidFn>(lib, "urcu_memb_barrier");
  auto get_data = sym<DataFn>(lib, "urcu_memb_get_default_call_rcu_data");
  if (call == nullptr || barrier == nullptr || get_data == nullptr) return false;
  // dlsym may allocate too (a failed lookup's dlerror): every symbol before the lock, which
  // fork_prepare takes last, after the allocator's own.
  auto before_fork = sym<VoidFn>(lib, "urcu_memb_call_rcu_before_fork");
  auto after_parent = sym<VoidFn>(lib, "urcu_memb_call_rcu_after_fork_parent");
  auto after_child = sym<VoidFn>(lib, "urcu_memb_call_rcu_after_fork_child");
  get_data();  // starts the call_rcu thread now, outside the allocator's own paths
  LockGuard g(g_load_lock);
  g_call = call;
  g_barrier = barrier;
  g_before_fork = before_fork;
  g_after_parent = after_parent;
  g_after_child = after_child;
  g_loaded.store(true, std::memory_order_release);
  return true;
}

bool loaded() {
  return g_loaded.load(std::memory_order_acquire);
}
void call(RcuHead* head, void (*fn)(RcuHead*)) {
  g_call(head, fn);
}
void barrier() {
  if (loaded()) g_barrier();
}
void fork_lock() {
  g_load_lock.lock();
}
void fork_unlock() {
  g_load_lock.unlock();
}

void before_fork() {
  if (loaded() && g_before_fork != nullptr) g_before_fork();
}
void after_fork_parent() {
  if (loaded() && g_after_parent != nullptr) g_after_parent();
}
void after_fork_child() {
  if (loaded() && g_after_child != nullptr) g_after_child();
}

}  // namespace slub::rcu
