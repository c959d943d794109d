// Where a buffer lives: host memory or one CUDA device.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sparsed {

struct Device {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  static Device Cpu() { return {}; }
  static Device Cuda(int i) { return {Kind::kCuda, i}; }
  bool is_cpu() const { return kind == Kind::kCpu; }
  // "cpu" or "cuda:N".
  std::string ToString() const;
  friend bool operator==(const Device&, const Device&) = default;
};

// Parses "cpu" or "cuda:N" (not "auto").
absl::StatusOr<Device> ParseDevice(std::string_view text);

}  // namespace sparsed
