// Test helpers shared by the unit tests: status expectations naming the
// expression, StatusOr unwrapping that fails the test instead of aborting,
// and whole-file reads and writes for tests that damage files on purpose.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// `expr` (an absl::Status) has code `want_code` and a message containing `substr`.
#define EXPECT_ERROR(expr, want_code, substr)                                                \
  do {                                                                                       \
    const absl::Status _s = (expr);                                                          \
    EXPECT_EQ(_s.code(), want_code) << _s;                                                   \
    EXPECT_THAT(std::string(_s.message()), ::testing::HasSubstr(substr)) << "in: " << #expr; \
  } while (0)
#define EXPECT_INVALID(expr, substr) EXPECT_ERROR(expr, absl::StatusCode::kInvalidArgument, substr)

namespace sparsed::test {

// v's value; a failed expectation (and a default T) when v holds an error.
template <class T>
T Must(absl::StatusOr<T> v) {
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? std::move(v).value() : T();
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace sparsed::test
