// Raising a kernel's dynamic shared-memory limit once per device.
#pragma once

#include <cuda_runtime.h>

#include <atomic>

namespace sparsed::cuda::kernels {

// Raises kKernel's dynamic shared-memory limit to `bytes`, once per device
// (the limit is per device, and the call costs host time on every
// decode-sized launch).
template <auto kKernel>
cudaError_t EnsureDynamicSmem(int bytes) {
  constexpr int kMaxDevices = 64;
  static std::atomic<bool> raised[kMaxDevices];
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  if (device < kMaxDevices && raised[device].load(std::memory_order_acquire)) return cudaSuccess;
  err = cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err != cudaSuccess) return err;
  if (device < kMaxDevices) raised[device].store(true, std::memory_order_release);
  return cudaSuccess;
}

}  // namespace sparsed::cuda::kernels
