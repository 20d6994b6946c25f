// Helpers shared by the unit tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

// Runs fn with stderr captured (the allocator writes its reports there with write(2)) and
// returns what was written.
template <typename F>
std::string stderr_of(F fn) {
  testing::internal::CaptureStderr();
  fn();
  return testing::internal::GetCapturedStderr();
}
