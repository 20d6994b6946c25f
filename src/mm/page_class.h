// SPDX-License-Identifier: MIT
// mm/page_class: one 32-bit entry per 4 KiB page of the address space, telling the free fast
// path what the page holds without touching its 64-byte descriptor (a cold line for an object
// of a random slab): the cache of a sheaf cache's slab and the slab's node, or 0 for anything
// else (other slabs, large blocks, free pages, memory that is not ours), which goes to the
// descriptor-based slow path.
//
//   entry = cache index << 6 | node << 16 | owner << 26    (cache index 1..kEntryCaches-1)
//
// owner (1..31, 0 for none) is set only for caches of small objects that share cache lines
// (owner_tracked): it names the CPU, modulo 31, whose sheaf the slab's objects went to last.
// A CPU's slot expects its own owner, so that another CPU's free of such an object misses the
// fast path and goes to its slab instead of into that CPU's sheaf (no passive false sharing:
// the next malloc there would hand a line shared with the owner's objects to a thread on
// another core). Bit 31 stays 0 (the sheaf word's closed bit).
//
// so that the entry's low half times 8 is the cache descriptor's offset in g_caches (512 bytes
// apart): the free fast path finds the cache with one scaled address. Caches of higher index
// have no entries (their frees go by the descriptor); the low 6 bits of an entry are 0, which
// the sheaves' fast paths rely on (a full sheaf's word reads entry + 1, no entry at all).
//
// The table is a flat array over the user address space (2^35 pages, 128 GiB of address
// space), reserved read-only: untouched parts read as zero from the shared zero page and cost
// nothing. The part covering a chunk is made writable (2 MiB of table, for 2 GiB of addresses,
// at a time) when the chunk is created. Where the kernel refuses the reservation (RLIMIT_AS,
// valgrind), smaller tables are tried (covering 2^44, then 2^41 bytes); pages beyond the table
// have no entry, and their frees take the slow path.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/base.h"

namespace slub {

class PageClass {
 public:
  // Reserves the table (once; idempotent). False when even the smallest is refused.
  static bool init();

  // The entry of the page holding `p` (0 if none).
  SLUB_FAST_PATH static uint32_t get(const void* p) {
    const uintptr_t page = reinterpret_cast<uintptr_t>(p) >> kPageShift;
    if (SLUB_UNLIKELY(page >= pages_)) return 0;
    return __atomic_load_n(&table_[page], __ATOMIC_RELAXED);  // set() may run meanwhile
  }
  // Makes the table's part covering [chunk, chunk + 2 MiB) writable. Called when a chunk is
  // created; false if it is beyond the table or the kernel refuses (then set() leaves the
  // chunk's pages without entries).
  static bool commit_chunk(uintptr_t chunk);
  // Sets the entries of the 2^order pages at `run` (a run in a committed chunk) to `v`.
  static void set(const void* run, unsigned order, uint32_t v);

  // Caches that can have entries (the index fits the low half).
  static constexpr unsigned kEntryCaches = 1024;
  // The entry of a cache's slab on `node`. For a cache without entries (index >= kEntryCaches)
  // the value only serves the sheaves' node test (Pcs), in that cache's own slots: its low
  // half is then not its index, only its node counts.
  static uint32_t make(unsigned cache_index, unsigned node) {
    return (cache_index % kEntryCaches) << 6 | node << 16;
  }
  static unsigned cache_index(uint32_t e) { return (e & 0xffff) >> 6; }
  static unsigned node(uint32_t e) { return (e >> 16) & 0x3ff; }
  // The owner field (see above): 0 for none, else 1 + cpu % 31.
  static constexpr unsigned kOwnerShift = 26;
  static unsigned owner(uint32_t e) { return e >> kOwnerShift; }
  static unsigned owner_of_cpu(int cpu) { return 1 + static_cast<unsigned>(cpu) % 31; }
  static uint32_t with_owner(uint32_t e, unsigned owner) {
    return (e & ((1u << kOwnerShift) - 1)) | owner << kOwnerShift;
  }
  // The byte offset of the entry's cache in g_caches.
  static uintptr_t cache_offset(uint32_t e) { return uintptr_t{e & 0xffff} * 8; }

  // For the fast paths' asm and the tests.
  static const uint32_t* table() { return table_; }
  static uintptr_t pages() { return pages_; }

 private:
  static inline uint32_t* table_ = nullptr;
  static inline uintptr_t pages_ = 0;  // entries in the table; 0 until init()
};

}  // namespace slub
