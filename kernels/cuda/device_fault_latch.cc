#include "device_fault_latch.h"

#include "cuda_check.h"
#include "sparsed/str_cat.h"

namespace sparsed::cuda {

absl::Status DeviceFaultLatch::Check() const {
  if (!faulted_.load(std::memory_order_acquire)) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status s = absl::UnavailableError(
      StrCat("device ", device_, " has failed and computes nothing more (", fault_.message(),
             "); the tensors held on it are unavailable until the daemon restarts"));
  s.SetPayload(kDeviceFaultPayload, fault_.GetPayload(kDeviceFaultPayload).value_or(absl::Cord()));
  return s;
}

void DeviceFaultLatch::Note(const absl::Status& s) {
  if (!IsDeviceFaultStatus(s) || faulted_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (faulted_.load(std::memory_order_relaxed)) return;
  fault_ = s;
  faulted_.store(true, std::memory_order_release);
}

}  // namespace sparsed::cuda
