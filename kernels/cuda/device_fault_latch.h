// The first device fault a backend met (cuda_check.h: an illegal address,
// an uncorrectable ECC error, …), kept so that every later op fails at once
// with a clear error naming the device and that fault, instead of reaching a
// context that returns the same sticky error from some unrelated call.
// Thread-safe; Check() costs one atomic load while the device is healthy.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "absl/status/status.h"

namespace sparsed::cuda {

class DeviceFaultLatch {
 public:
  explicit DeviceFaultLatch(std::string device) : device_(std::move(device)) {}

  // OK, or UNAVAILABLE (a device-fault status) naming the device and the
  // first fault noted.
  absl::Status Check() const;
  // Keeps `s` when it is a device fault and none was kept yet.
  void Note(const absl::Status& s);

 private:
  const std::string device_;
  std::atomic<bool> faulted_{false};
  mutable std::mutex mu_;
  absl::Status fault_;  // guarded by mu_; set once
};

}  // namespace sparsed::cuda
