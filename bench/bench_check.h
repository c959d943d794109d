// Error handling for the benchmark programs: a failed status ends the run
// with its location and message (a benchmark has nothing to recover).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CHECK_OK(expr)                                                                \
  do {                                                                                \
    absl::Status _s = (expr);                                                         \
    if (!_s.ok()) {                                                                   \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, _s.ToString().c_str()); \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

namespace sparsed::bench {

// The value, or the end of the run.
template <class T>
T Must(absl::StatusOr<T> v) {
  CHECK_OK(v.status());
  return std::move(v).value();
}

}  // namespace sparsed::bench
