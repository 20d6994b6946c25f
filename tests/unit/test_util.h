// SPDX-License-Identifier: MIT
// Helpers shared by the unit tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include <slub/slub.h>

#include "pal/topology.h"

// Runs fn with stderr captured (the allocator writes its reports there with write(2)) and
// returns what was written.
template <typename F>
std::string stderr_of(F fn) {
  testing::internal::CaptureStderr();
  fn();
  return testing::internal::GetCapturedStderr();
}

// Runs `fn` on a thread bound to virtual CPU `vcpu`.
template <typename F>
void on_vcpu(int vcpu, F fn) {
  std::thread t([&] {
    ASSERT_EQ(slub_bind_vcpu(vcpu), 0);
    fn();
    slub_bind_vcpu(-1);
  });
  t.join();
}

// The k-th CPU of `node` in the current topology (k = 0: the first), or -1.
inline int cpu_of_node(int node, int k = 0) {
  for (int cpu = 0; cpu < slub::Topology::nr_cpus(); ++cpu)
    if (slub::Topology::node_of(cpu) == node && k-- == 0) return cpu;
  return -1;
}

// A cache of the classic mode (no sheaves: the per-CPU slab, partials and the tid +
// cmpxchg16b fast path), what the tests of those internals need whatever SLUB_SHEAVES says.
inline kmem_cache* classic_cache(const char* name, size_t size, unsigned long flags = 0) {
  kmem_cache_args a{};
  a.use_sheaf_capacity = 1;
  a.sheaf_capacity = 0;
  return kmem_cache_create_args(name, size, &a, flags);
}
