// SPDX-License-Identifier: MIT
// Compiled by g++ in the gxx_compile integration test, with the compiler itself (cc1plus, as,
// ld) running under LD_PRELOAD=libslub.so; the binary then runs preloaded as well. C++17.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

std::uint64_t fnv1a(const std::string& s, std::uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

struct Shape {
  virtual ~Shape() = default;
  virtual long area() const = 0;
};
struct Rect : Shape {
  long w, h;
  Rect(long w, long h) : w(w), h(h) {}
  long area() const override { return w * h; }
};
struct Square : Shape {
  long s;
  explicit Square(long s) : s(s) {}
  long area() const override { return s * s; }
};

}  // namespace

int main() {
  std::map<std::string, std::vector<int>> index;
  std::unordered_map<int, std::string> names;
  for (int i = 0; i < 50000; ++i) {
    std::string key = "word" + std::to_string(i % 5003) + std::string(i % 13, 'q');
    index[key].push_back(i);
    names.emplace(i, std::to_string(i * 31));
  }
  std::uint64_t h = 0;
  std::size_t total = 0;
  for (const auto& [k, v] : index) {
    h = fnv1a(k, h);
    total += v.size();
  }

  std::vector<std::unique_ptr<Shape>> shapes;
  for (int i = 0; i < 20000; ++i) {
    if (i % 3)
      shapes.push_back(std::make_unique<Rect>(i % 17, i % 23));
    else
      shapes.push_back(std::make_unique<Square>(i % 29));
  }
  long area = std::accumulate(shapes.begin(), shapes.end(), 0L,
                              [](long a, const auto& s) { return a + s->area(); });
  shapes.erase(std::remove_if(shapes.begin(), shapes.end(),
                              [](const auto& s) { return s->area() % 2 == 0; }),
               shapes.end());

  std::ostringstream os;
  for (int i = 0; i < 10000; ++i) os << names[i] << (i % 10 ? ',' : '\n');
  std::string text = os.str();

  std::cout << "keys " << index.size() << " values " << total << " hash " << h << '\n'
            << "area " << area << " odd shapes " << shapes.size() << '\n'
            << "text " << text.size() << " hash " << fnv1a(text) << '\n';
  return 0;
}
