// SPDX-License-Identifier: MIT
// pal/rcu: RCU grace periods from liburcu (Debian liburcu8, the default "memb" flavour of
// <urcu.h>), loaded with dlopen the first time a SLAB_TYPESAFE_BY_RCU cache is created, so
// that programs without such caches never load it. Readers use rcu_read_lock() of the same
// flavour: #include <urcu.h> and link -lurcu.
#pragma once

namespace slub {

// Layout of liburcu's struct rcu_head (a wait-free queue node, then the callback).
struct RcuHead {
  RcuHead* next;
  void (*func)(RcuHead*);
};
static_assert(sizeof(RcuHead) == 16);

namespace rcu {

// Loads liburcu and starts its call_rcu worker; true if RCU is usable. Not from inside the
// allocator's locked paths (dlopen and pthread_create allocate).
bool load();
bool loaded();
// Runs fn(head) after a grace period, from liburcu's call_rcu thread.
void call(RcuHead* head, void (*fn)(RcuHead*));
// Waits for every queued callback to have run.
void barrier();
// fork(): liburcu's call_rcu threads must be paused around it.
void before_fork();
// fork(): the lock of load(), held across (the last lock fork_prepare takes).
void fork_lock();
void fork_unlock();
void after_fork_parent();
void after_fork_child();

}  // namespace rcu
}  // namespace slub
