// Raw device memory, implemented by the CUDA part of the build (without it,
// every call fails with FAILED_PRECONDITION). Most code uses Buffer and
// Tensor::CopyTo instead.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/device.h"

namespace sparsed {

// Allocates from CUDA device `device`'s memory pool (cudaMallocAsync; the pool
// keeps freed memory for reuse). RESOURCE_EXHAUSTED when the device is full.
// The memory is usable on any stream once this returns.
absl::StatusOr<void*> DeviceAllocate(int device, int64_t bytes);
// Returns memory to the pool. All work using it must have completed.
void DeviceFree(int device, void* p);

// Copies `bytes` from src to dst, each on the host or a CUDA device; returns
// when the copy is complete. Host to host is a plain memcpy (also without CUDA).
absl::Status CopyBytes(void* dst, const Device& dst_device, const void* src,
                       const Device& src_device, int64_t bytes);

// What the pool of a CUDA device holds from the driver (reserved) and hands
// out (used), per cudaMemPoolGetAttribute. Zeros without CUDA.
struct DevicePoolStats {
  int64_t reserved_bytes = 0;
  int64_t used_bytes = 0;
};
DevicePoolStats GetDevicePoolStats(int device);

}  // namespace sparsed
