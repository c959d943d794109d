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
// Returns memory to the pool. All work using it must have completed, except
// work queued on the stream of a StreamOrderScope active for the device.
void DeviceFree(int device, void* p);

// While one lives, this thread's DeviceAllocate, DeviceFree and CopyBytes
// for CUDA device `device` are ordered on `stream` (a cudaStream_t) instead
// of the pool's own stream, without host synchronisation for allocation and
// free: memory allocated under the scope is usable by work queued on
// `stream` at once, and by other streams once `stream` has been
// synchronised; memory freed under it is reused only after the work queued
// on `stream` before the free (OpBatch's CUDA implementation). Scopes nest;
// destroying one restores the previous. No effect without CUDA.
class StreamOrderScope {
 public:
  StreamOrderScope(int device, void* stream);
  ~StreamOrderScope();
  StreamOrderScope(const StreamOrderScope&) = delete;
  StreamOrderScope& operator=(const StreamOrderScope&) = delete;

 private:
  int prev_device_;
  void* prev_stream_;
};

// Copies `bytes` from src to dst, each on the host or a CUDA device; returns
// when the copy is complete. Host to host is a plain memcpy (also without CUDA).
// Under a StreamOrderScope for the device, the copy runs on the scope's
// stream, after the work already queued there.
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
