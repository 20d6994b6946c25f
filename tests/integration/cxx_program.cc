// SPDX-License-Identifier: MIT
// A C++ program linked normally (not against slub) that exercises every kind of operator new
// and delete, plus a few C allocation calls, from several threads. The cxx_program integration
// test runs it with and without LD_PRELOAD=libslub.so; the output must be identical, so every
// line printed is independent of thread scheduling and of addresses (only sums, counts and
// alignment checks).
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

std::atomic<long> misaligned{0};

void check_align(const void* p, std::size_t align) {
  if (reinterpret_cast<std::uintptr_t>(p) % align != 0) misaligned.fetch_add(1);
}

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

struct alignas(64) Line {
  std::uint64_t words[8];
  Line() : Line(0) {}
  explicit Line(std::uint64_t seed) {
    for (int i = 0; i < 8; ++i) words[i] = seed * 8 + i;
  }
};

struct Small {
  int a;
  short b;
  Small(int a, short b) : a(a), b(b) {}
};

// Single-object and array new/delete of many sizes; sized delete is used by the compiler for
// the class types (C++14 sized deallocation).
std::uint64_t plain_new_delete() {
  std::uint64_t h = 0;
  std::vector<Small*> smalls;
  std::vector<char*> arrays;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 5000; ++i) {
      smalls.push_back(new Small(i, static_cast<short>(round)));
      std::size_t n = static_cast<std::size_t>((i * 37 + round) % 3000) + 1;
      char* a = new char[n];
      std::memset(a, i & 0x7f, n);
      a[n - 1] = static_cast<char>(n & 0x7f);
      arrays.push_back(a);
    }
    // Free every other one now, in reverse order, and the rest later.
    for (std::size_t i = smalls.size(); i-- > 0;) {
      if (i % 2 == 0 && smalls[i]) {
        h = mix(h, static_cast<std::uint64_t>(smalls[i]->a + smalls[i]->b));
        delete smalls[i];
        smalls[i] = nullptr;
      }
    }
  }
  for (Small* s : smalls) {
    if (s) {
      h = mix(h, static_cast<std::uint64_t>(s->a));
      delete s;
    }
  }
  for (char* a : arrays) {
    h = mix(h, static_cast<unsigned char>(a[0]));
    delete[] a;
  }
  // A few large arrays: page-allocator and mmap territory.
  for (std::size_t mb : {1, 3, 8, 33}) {
    auto* big = new std::uint32_t[mb << 18];
    for (std::size_t i = 0; i < (mb << 18); i += 1024) big[i] = static_cast<std::uint32_t>(i);
    h = mix(h, big[(mb << 18) - 1024]);
    delete[] big;
  }
  return h;
}

// Over-aligned types and explicit std::align_val_t, including arrays and nothrow forms.
std::uint64_t aligned_new_delete() {
  std::uint64_t h = 0;
  std::vector<Line*> lines;
  for (int i = 0; i < 20000; ++i) {
    Line* l = new Line(static_cast<std::uint64_t>(i));
    check_align(l, 64);
    lines.push_back(l);
  }
  for (Line* l : lines) {
    h = mix(h, l->words[7]);
    delete l;
  }
  auto* arr = new Line[333]{Line(1), Line(2)};
  check_align(arr, 64);
  h = mix(h, arr[1].words[0]);
  delete[] arr;

  for (std::size_t align : {16, 32, 64, 128, 256, 512, 4096, 65536}) {
    for (std::size_t size : {1, 8, 100, 256, 1000, 5000, 70000}) {
      void* p = ::operator new(size, std::align_val_t(align));
      check_align(p, align);
      std::memset(p, 0xab, size);
      h = mix(h, size + align);
      if (size % 2)
        ::operator delete(p, std::align_val_t(align));
      else
        ::operator delete(p, size, std::align_val_t(align));
      void* q = ::operator new[](size, std::align_val_t(align), std::nothrow);
      if (!q) {
        std::cout << "nothrow aligned new[] failed\n";
        continue;
      }
      check_align(q, align);
      ::operator delete[](q, std::align_val_t(align), std::nothrow);
    }
  }
  for (int i = 0; i < 1000; ++i) {
    void* p = ::operator new(static_cast<std::size_t>(i) + 1, std::align_val_t(256));
    check_align(p, 256);
    ::operator delete(p, std::align_val_t(256));
  }
  return h;
}

// nothrow new, and what happens on requests that cannot be satisfied.
void nothrow_and_failures() {
  long ok = 0;
  for (int i = 0; i < 10000; ++i) {
    int* p = new (std::nothrow) int(i);
    int* a = new (std::nothrow) int[static_cast<std::size_t>(i % 100) + 1];
    if (p && a) ++ok;
    delete p;
    delete[] a;
  }
  std::cout << "nothrow new ok " << ok << '\n';

  // Direct calls of the operator functions: a new-expression here could be elided.
  volatile std::size_t huge = std::size_t{1} << 62;
  void* h1 = ::operator new[](huge, std::nothrow);
  std::cout << "nothrow new[] of 2^62 bytes: " << (h1 ? "non-null" : "null") << '\n';
  ::operator delete[](h1, std::nothrow);
  try {
    void* h2 = ::operator new(huge);
    std::cout << "new of 2^62 bytes: returned\n";
    ::operator delete(h2);
  } catch (const std::bad_alloc&) {
    std::cout << "new of 2^62 bytes: bad_alloc\n";
  }
}

// The C calls a C++ program also makes: malloc/calloc/realloc chains, aligned_alloc,
// posix_memalign.
std::uint64_t c_allocations() {
  std::uint64_t h = 0;
  char* buf = nullptr;
  std::size_t len = 0;
  for (int i = 0; i < 2000; ++i) {
    std::size_t n = len + static_cast<std::size_t>(i % 97) + 1;
    char* nb = static_cast<char*>(std::realloc(buf, n));
    if (!nb) std::abort();
    std::memset(nb + len, 'a' + i % 26, n - len);
    buf = nb;
    len = n;
  }
  for (std::size_t i = 0; i < len; i += 7) h = mix(h, static_cast<unsigned char>(buf[i]));
  buf = static_cast<char*>(std::realloc(buf, 10));
  h = mix(h, static_cast<unsigned char>(buf[9]));
  std::free(buf);

  long zero = 0;
  for (int i = 1; i < 3000; i += 13) {
    auto* z = static_cast<unsigned char*>(std::calloc(static_cast<std::size_t>(i), 8));
    bool all = true;
    for (int j = 0; j < i * 8; ++j) all = all && z[j] == 0;
    zero += all;
    std::free(z);
  }
  std::cout << "calloc zeroed " << zero << '\n';
  for (std::size_t align : {8, 64, 1024, 8192}) {
    void* p = std::aligned_alloc(align, align * 3);
    check_align(p, align);
    std::free(p);
    void* q = nullptr;
    if (posix_memalign(&q, align, 1000) != 0) std::abort();
    check_align(q, align);
    std::free(q);
  }
  return h;
}

// Threads in a ring: thread i allocates objects and strings and hands them to thread i+1,
// which frees them (every object is freed by a thread that did not allocate it).
struct Parcel {
  std::vector<int> numbers;
  std::string text;
  std::map<int, std::string> table;
};

class Channel {
 public:
  void push(Parcel* p) {
    std::lock_guard<std::mutex> lock(mu_);
    q_.push_back(p);
    cv_.notify_one();
  }
  Parcel* pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !q_.empty(); });
    Parcel* p = q_.front();
    q_.pop_front();
    return p;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Parcel*> q_;
};

std::uint64_t threads_cross_free() {
  constexpr int kThreads = 4;
  constexpr int kParcels = 4000;
  std::array<Channel, kThreads> channels;
  std::atomic<std::uint64_t> sum{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &channels, &sum] {
      std::uint64_t local = 0;
      Channel& out = channels[(t + 1) % kThreads];
      Channel& in = channels[t];
      for (int i = 0; i < kParcels; ++i) {
        auto* p = new Parcel;
        for (int j = 0; j < i % 50; ++j) p->numbers.push_back(t * 100000 + i + j);
        p->text = std::string(static_cast<std::size_t>(i % 300), static_cast<char>('a' + t));
        for (int j = 0; j < i % 7; ++j) p->table[j] = std::to_string(i * j);
        out.push(p);
        // Receive one and free it here, on another thread than the one that made it.
        Parcel* r = in.pop();
        for (int n : r->numbers) local += static_cast<std::uint64_t>(n);
        local += r->text.size();
        for (const auto& [k, v] : r->table) local += static_cast<std::uint64_t>(k) + v.size();
        delete r;
      }
      sum.fetch_add(local);
    });
  }
  for (auto& th : threads) th.join();

  // Threads that only free: memory allocated here, freed by short-lived threads.
  std::vector<std::unique_ptr<std::string>> strings;
  for (int i = 0; i < 20000; ++i) strings.push_back(std::make_unique<std::string>(i % 200, 'x'));
  std::vector<std::thread> freers;
  for (int t = 0; t < kThreads; ++t) {
    freers.emplace_back([t, &strings] {
      for (std::size_t i = static_cast<std::size_t>(t); i < strings.size(); i += kThreads)
        strings[i].reset();
    });
  }
  for (auto& th : freers) th.join();
  return sum.load();
}

// Container churn on the main thread.
std::uint64_t container_churn() {
  std::uint64_t h = 0;
  std::map<std::string, std::vector<std::string>> m;
  std::unordered_map<long, std::string> u;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 10000; ++i) {
      std::string key = "key" + std::to_string((i * 7919 + round) % 4001);
      m[key].push_back(std::to_string(i) + std::string(static_cast<std::size_t>(i % 40), 'y'));
      u[i + round * 10000L] = key;
    }
    for (auto it = m.begin(); it != m.end();) {
      if (it->second.size() > 3)
        it = m.erase(it);
      else
        ++it;
    }
    for (long k = round * 10000L; k < round * 10000L + 10000; k += 2) u.erase(k);
    std::vector<std::string> v(m.size());
    std::size_t j = 0;
    for (const auto& kv : m) v[j++] = kv.first + "=" + std::to_string(kv.second.size());
    for (const auto& s : v) h = mix(h, s.size());
  }
  return mix(mix(h, m.size()), u.size());
}

}  // namespace

int main() {
  std::cout << "plain new/delete " << plain_new_delete() << '\n';
  std::cout << "aligned new/delete " << aligned_new_delete() << '\n';
  nothrow_and_failures();
  std::uint64_t c = c_allocations();
  std::cout << "C allocations " << c << '\n';
  std::cout << "threads cross free " << threads_cross_free() << '\n';
  std::cout << "container churn " << container_churn() << '\n';
  std::cout << "misaligned " << misaligned.load() << '\n';
  return misaligned.load() == 0 ? 0 : 1;
}
