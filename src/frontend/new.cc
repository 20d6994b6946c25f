// SPDX-License-Identifier: MIT
// frontend/new: every C++ operator new and delete, on the malloc front end. Only in
// libslub.so. Failing throwing forms call the new_handler and retry, then throw bad_alloc.
//
// libslub.so does not link the C++ runtime: loading libstdc++ into every preloaded process
// cost 0.45 ms at start-up (a preloaded /bin/true took 0.36 ms without it and 0.81 ms with
// it), and C programs never need it. What a failing operator new needs of it
// (std::get_new_handler, std::__throw_bad_alloc, the nothrow forms' catch) is looked up when an
// allocation fails; a program that calls operator new has libstdc++ loaded by then. This file
// is compiled without exceptions (nothing here throws or catches), with unwind tables, so that
// an exception from a new_handler or from __throw_bad_alloc passes through these frames.

#include <new>

#include "frontend/malloc_impl.h"
#include "pal/os.h"
#include "pal/process.h"

using namespace slub;

namespace {

// A symbol of the C++ runtime, looked up once (nullptr when no C++ runtime is loaded). `next`:
// the definition after ours (libstdc++'s own operator, where ours interposes it).
void* cxx_symbol(std::atomic<void*>& cached, const char* name, bool next) {
  void* p = cached.load(std::memory_order_acquire);
  if (p == nullptr) {
    p = os::find_symbol(name, next);
    cached.store(p, std::memory_order_release);
  }
  return p;
}

std::new_handler current_new_handler() {
  static constinit std::atomic<void*> fn{nullptr};
  auto get = reinterpret_cast<std::new_handler (*)()>(
      cxx_symbol(fn, "_ZSt15get_new_handlerv", false));  // std::get_new_handler()
  return get != nullptr ? get() : nullptr;
}

[[noreturn]] void throw_bad_alloc() {
  static constinit std::atomic<void*> fn{nullptr};
  auto thrower = reinterpret_cast<void (*)()>(
      cxx_symbol(fn, "_ZSt17__throw_bad_allocv", false));  // std::__throw_bad_alloc()
  if (thrower != nullptr) thrower();
  os::fatal(
      "slub: operator new: out of memory, and no C++ runtime is loaded to throw "
      "std::bad_alloc\n");
}

// The throwing forms: malloc, then the new_handler and again, until it gives up by throwing.
void* alloc_or_throw(size_t size, size_t align) {
  for (;;) {
    void* p = align == 0 ? fe::do_malloc(size) : fe::do_aligned(align, size);
    if (SLUB_LIKELY(p != nullptr)) return p;
    std::new_handler handler = current_new_handler();
    if (handler == nullptr) throw_bad_alloc();
    handler();
  }
}

// The nothrow forms. Without a new_handler a failure is nullptr. With one, the standard's
// behaviour (call it; nullptr if it throws) needs a catch: libstdc++'s own nothrow operator,
// which calls the throwing operator (ours) inside try and returns nullptr on any exception.
// `name` is that operator's mangled name; `args` forwards the call.
template <typename Fn, typename... Args>
void* alloc_nothrow(std::atomic<void*>& cached, const char* name, size_t size, size_t align,
                    Args... args) {
  void* p = align == 0 ? fe::do_malloc(size) : fe::do_aligned(align, size);
  if (SLUB_LIKELY(p != nullptr) || current_new_handler() == nullptr) return p;
  auto runtime = reinterpret_cast<Fn>(cxx_symbol(cached, name, true));
  return runtime != nullptr ? runtime(args...) : nullptr;
}

using NothrowNew = void* (*)(size_t, const std::nothrow_t&);
using NothrowAlignedNew = void* (*)(size_t, std::align_val_t, const std::nothrow_t&);
constinit std::atomic<void*> g_new_nt{nullptr}, g_new_arr_nt{nullptr}, g_new_al_nt{nullptr},
    g_new_arr_al_nt{nullptr};

SLUB_FAST_PATH void* new_fast(size_t size) {
  if (void* p = fe::do_malloc(size); SLUB_LIKELY(p != nullptr)) return p;
  return alloc_or_throw(size, 0);
}

}  // namespace

#define VIS __attribute__((visibility("default")))

VIS void* operator new(size_t size) {
  return new_fast(size);
}
VIS void* operator new[](size_t size) {
  return new_fast(size);
}
VIS void* operator new(size_t size, const std::nothrow_t& nt) noexcept {
  return alloc_nothrow<NothrowNew>(g_new_nt, "_ZnwmRKSt9nothrow_t", size, 0, size, nt);
}
VIS void* operator new[](size_t size, const std::nothrow_t& nt) noexcept {
  return alloc_nothrow<NothrowNew>(g_new_arr_nt, "_ZnamRKSt9nothrow_t", size, 0, size, nt);
}
VIS void* operator new(size_t size, std::align_val_t al) {
  return alloc_or_throw(size, static_cast<size_t>(al));
}
VIS void* operator new[](size_t size, std::align_val_t al) {
  return alloc_or_throw(size, static_cast<size_t>(al));
}
VIS void* operator new(size_t size, std::align_val_t al, const std::nothrow_t& nt) noexcept {
  return alloc_nothrow<NothrowAlignedNew>(g_new_al_nt, "_ZnwmSt11align_val_tRKSt9nothrow_t", size,
                                          static_cast<size_t>(al), size, al, nt);
}
VIS void* operator new[](size_t size, std::align_val_t al, const std::nothrow_t& nt) noexcept {
  return alloc_nothrow<NothrowAlignedNew>(g_new_arr_al_nt, "_ZnamSt11align_val_tRKSt9nothrow_t",
                                          size, static_cast<size_t>(al), size, al, nt);
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
