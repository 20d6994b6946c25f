// SPDX-License-Identifier: MIT
// Helpers shared by the functional tests: deterministic byte patterns that depend on a seed, so
// that a block overwritten by another block (or handed out twice) is caught by a verify.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace slub_func {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A seed for a block from its address, its size and a caller's seed.
inline uint64_t block_seed(const void* p, size_t size, uint64_t seed) {
  return splitmix64(reinterpret_cast<uintptr_t>(p) ^ splitmix64(size ^ (seed << 20)));
}

// Word i of the pattern for `seed`.
inline uint64_t pattern_word(uint64_t seed, size_t i) {
  return splitmix64(seed + i * 0x632be59bd9b4e019ULL);
}

inline void fill_pattern(void* p, size_t n, uint64_t seed) {
  auto* b = static_cast<unsigned char*>(p);
  size_t words = n / 8;
  for (size_t i = 0; i < words; ++i) {
    uint64_t w = pattern_word(seed, i);
    std::memcpy(b + i * 8, &w, 8);
  }
  if (n % 8 != 0) {
    uint64_t w = pattern_word(seed, words);
    std::memcpy(b + words * 8, &w, n % 8);
  }
}

// Returns the offset of the first byte that differs from the pattern, or n if all match.
inline size_t check_pattern(const void* p, size_t n, uint64_t seed) {
  const auto* b = static_cast<const unsigned char*>(p);
  size_t words = n / 8;
  for (size_t i = 0; i < words; ++i) {
    uint64_t w = pattern_word(seed, i);
    if (std::memcmp(b + i * 8, &w, 8) != 0) {
      for (size_t k = 0; k < 8; ++k)
        if (b[i * 8 + k] != reinterpret_cast<const unsigned char*>(&w)[k]) return i * 8 + k;
    }
  }
  if (n % 8 != 0) {
    uint64_t w = pattern_word(seed, words);
    for (size_t k = 0; k < n % 8; ++k)
      if (b[words * 8 + k] != reinterpret_cast<const unsigned char*>(&w)[k]) return words * 8 + k;
  }
  return n;
}

// Fills with the pattern of (address, size, seed); verify_block checks it.
inline void fill_block(void* p, size_t n, uint64_t seed) {
  fill_pattern(p, n, block_seed(p, n, seed));
}
inline bool verify_block(const void* p, size_t n, uint64_t seed) {
  return check_pattern(p, n, block_seed(p, n, seed)) == n;
}

// True when every byte of [p, p+n) equals v.
inline bool all_bytes(const void* p, size_t n, unsigned char v) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i)
    if (b[i] != v) return false;
  return true;
}

inline bool is_aligned(const void* p, size_t align) {
  return (reinterpret_cast<uintptr_t>(p) & (align - 1)) == 0;
}

// A small, fast, seedable generator for the stress tests.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() { return s = splitmix64(s); }
  uint64_t below(uint64_t n) { return next() % n; }
  // A size in [lo, hi], log-uniform so small sizes dominate as in real programs.
  size_t log_size(size_t lo, size_t hi) {
    int lo_bits = 63 - __builtin_clzll(lo);
    int hi_bits = 63 - __builtin_clzll(hi);
    int b = lo_bits + static_cast<int>(below(hi_bits - lo_bits + 1));
    size_t base = size_t{1} << b;
    size_t v = base + below(base);
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    return v;
  }
};

}  // namespace slub_func
