// SPDX-License-Identifier: MIT
// slub: C++ interface. A typed cache of T, with RAII ownership of the cache and of objects.
#pragma once

#include <slub/slub.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace slub {

// A kmem_cache holding objects of type T. alloc/make return constructed objects; the cache is
// destroyed with the wrapper (it must be empty by then, as with kmem_cache_destroy).
template <typename T>
class cache {
 public:
  explicit cache(const char* name, unsigned long flags = 0)
      : c_(kmem_cache_create(name, sizeof(T), alignof(T), flags, nullptr)) {
    if (c_ == nullptr) throw std::runtime_error(std::string("kmem_cache_create failed: ") + name);
  }
  cache(const cache&) = delete;
  cache& operator=(const cache&) = delete;
  cache(cache&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  ~cache() {
    if (c_ != nullptr) kmem_cache_destroy(c_);
  }

  // Constructs a T in a new object; throws std::bad_alloc when memory runs out.
  template <typename... Args>
  T* make(Args&&... args) {
    void* p = kmem_cache_alloc(c_);
    if (p == nullptr) throw std::bad_alloc();
    try {
      return new (p) T(std::forward<Args>(args)...);
    } catch (...) {
      kmem_cache_free(c_, p);
      throw;
    }
  }
  // Destroys and frees an object made by make().
  void dispose(T* obj) noexcept {
    if (obj == nullptr) return;
    obj->~T();
    kmem_cache_free(c_, obj);
  }

  struct deleter {
    cache* owner;
    void operator()(T* obj) const noexcept { owner->dispose(obj); }
  };
  using unique_ptr = std::unique_ptr<T, deleter>;
  template <typename... Args>
  unique_ptr make_unique(Args&&... args) {
    return unique_ptr(make(std::forward<Args>(args)...), deleter{this});
  }

  int shrink() noexcept { return kmem_cache_shrink(c_); }
  kmem_cache_info info() const {
    kmem_cache_info i{};
    kmem_cache_get_info(c_, &i);
    return i;
  }
  kmem_cache* get() const noexcept { return c_; }

 private:
  kmem_cache* c_;
};

}  // namespace slub
