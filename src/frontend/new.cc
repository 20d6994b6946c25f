// frontend/new: every C++ operator new and delete, on the malloc front end. Only in
// libslub.so. Failing throwing forms call the new_handler and retry, then throw bad_alloc.
#include <new>

#include "frontend/malloc_impl.h"

using namespace slub;

namespace {

void* alloc_or_handle(size_t size, size_t align, bool nothrow) {
  for (;;) {
    void* p = align == 0 ? fe::do_malloc(size) : fe::do_aligned(align, size);
    if (SLUB_LIKELY(p != nullptr)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

SLUB_FAST_PATH void* new_fast(size_t size) {
  if (SLUB_LIKELY(size <= kKmallocMax)) {
    void* p = slab_alloc(&g_kmalloc_caches[kmalloc_index(size)], size);
    if (SLUB_LIKELY(p != nullptr)) return p;
  }
  return alloc_or_handle(size, 0, false);
}

}  // namespace

#define VIS __attribute__((visibility("default")))

VIS void* operator new(size_t size) {
  return new_fast(size);
}
VIS void* operator new[](size_t size) {
  return new_fast(size);
}
VIS void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return alloc_or_handle(size, 0, true);
}
VIS void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return alloc_or_handle(size, 0, true);
}
VIS void* operator new(size_t size, std::align_val_t al) {
  return alloc_or_handle(size, static_cast<size_t>(al), false);
}
VIS void* operator new[](size_t size, std::align_val_t al) {
  return alloc_or_handle(size, static_cast<size_t>(al), false);
}
VIS void* operator new(size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return alloc_or_handle(size, static_cast<size_t>(al), true);
}
VIS void* operator new[](size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return alloc_or_handle(size, static_cast<size_t>(al), true);
}

VIS void operator delete(void* p) noexcept {
  fe::do_free(p);
}
VIS void operator delete[](void* p) noexcept {
  fe::do_free(p);
}
VIS void operator delete(void* p, const std::nothrow_t&) noexcept {
  fe::do_free(p);
}
VIS void operator delete[](void* p, const std::nothrow_t&) noexcept {
  fe::do_free(p);
}
VIS void operator delete(void* p, size_t) noexcept {
  fe::do_free(p);
}
VIS void operator delete[](void* p, size_t) noexcept {
  fe::do_free(p);
}
VIS void operator delete(void* p, std::align_val_t) noexcept {
  fe::do_free(p);
}
VIS void operator delete[](void* p, std::align_val_t) noexcept {
  fe::do_free(p);
}
VIS void operator delete(void* p, size_t, std::align_val_t) noexcept {
  fe::do_free(p);
}
VIS void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  fe::do_free(p);
}
VIS void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  fe::do_free(p);
}
VIS void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  fe::do_free(p);
}
