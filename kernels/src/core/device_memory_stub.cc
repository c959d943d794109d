// Without the CUDA part compiled in there is no device memory.
#ifndef SPARSED_HAVE_CUDA
#include <cstring>

#include "sparsed/device_memory.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {
absl::Status NoCuda(std::string_view what) {
  return absl::FailedPreconditionError(StrCat(what, ": this build of sparsed has no CUDA support"));
}
}  // namespace

absl::StatusOr<void*> DeviceAllocate(int device, int64_t) {
  return NoCuda(StrCat("allocating on cuda:", device));
}
void DeviceFree(int, void*) {}
absl::Status CopyBytes(void* dst_ptr, const Device& dst, const void* src_ptr, const Device& src,
                       int64_t bytes) {
  if (dst.is_cpu() && src.is_cpu()) {
    if (bytes > 0) std::memcpy(dst_ptr, src_ptr, static_cast<size_t>(bytes));
    return absl::OkStatus();
  }
  return NoCuda(StrCat("copying from ", src.ToString(), " to ", dst.ToString()));
}
DevicePoolStats GetDevicePoolStats(int) { return {}; }
StreamOrderScope::StreamOrderScope(int, void*) : prev_device_(-1), prev_stream_(nullptr) {}
StreamOrderScope::~StreamOrderScope() = default;
}  // namespace sparsed
#endif
