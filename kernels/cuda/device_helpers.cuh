// Device helpers the nvcc-compiled kernels share: value conversions and
// grid-stride indexing. (JIT templates are self-contained; see epilogue.h.)
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "epilogue.h"

namespace sparsed::cuda {

__device__ __forceinline__ float ToFloat(float x) { return x; }
__device__ __forceinline__ float ToFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }

// This thread's index in a 1-D grid, and the grid's thread count (stride).
__device__ __forceinline__ int64_t ThreadIndex() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t ThreadCount() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

}  // namespace sparsed::cuda
