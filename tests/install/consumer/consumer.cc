// SPDX-License-Identifier: MIT
// The C++ interface (slub/slub.hpp) of an installed slub: a typed cache and its RAII handles.
// Prints "consumer_cxx: ok ..." and exits 0.
#include <slub/slub.hpp>

#include <cstdio>
#include <cstring>
#include <vector>

struct Point {
  Point(double px, double py) : x(px), y(py) {}
  double x, y;
};

int main() {
  slub::cache<Point> points("consumer_points");
  std::vector<slub::cache<Point>::unique_ptr> held;
  for (int i = 0; i < 100; ++i) held.push_back(points.make_unique(i, 2.0 * i));
  double sum = 0;
  for (const auto& p : held) sum += p->x + p->y;
  if (sum != 3 * 4950.0 || std::strcmp(slub_version(), SLUB_VERSION_STRING) != 0) {
    std::fprintf(stderr, "consumer_cxx: wrong sum %g or version %s\n", sum, slub_version());
    return 1;
  }
  std::printf("consumer_cxx: ok, slub %s, sum %g\n", slub_version(), sum);
  return 0;
}
