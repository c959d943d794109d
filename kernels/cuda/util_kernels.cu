#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <type_traits>

#include "device_helpers.cuh"
#include "util_kernels.h"

namespace sparsed::cuda::kernels {
namespace {

constexpr int kThreads = 256;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
unsigned GridFor(int64_t count) {
  return static_cast<unsigned>(std::min<int64_t>(CeilDiv(count, kThreads), 65536));
}

__global__ void RowStatsKernel(const int32_t* __restrict__ row_ptr, int64_t m, long long* stats,
                               double* sum_sq) {
  long long local_max = 0, local_empty = 0;
  double local_sq = 0;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < m;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const long long len = row_ptr[r + 1] - row_ptr[r];
    local_max = max(local_max, len);
    local_empty += len == 0;
    local_sq += static_cast<double>(len) * len;
  }
  for (int off = 16; off > 0; off /= 2) {
    local_max = max(local_max, __shfl_down_sync(0xffffffffu, local_max, off));
    local_empty += __shfl_down_sync(0xffffffffu, local_empty, off);
    local_sq += __shfl_down_sync(0xffffffffu, local_sq, off);
  }
  if (threadIdx.x % 32 == 0) {
    atomicMax(&stats[0], local_max);
    atomicAdd(reinterpret_cast<unsigned long long*>(&stats[1]),
              static_cast<unsigned long long>(local_empty));
    atomicAdd(sum_sq, local_sq);
  }
}

template <class T>
__global__ void TransposeKernel(const T* __restrict__ in, T* __restrict__ out, int64_t rows,
                                int64_t cols) {
  __shared__ T tile[32][33];
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * 32,
                r0 = static_cast<int64_t>(blockIdx.y) * 32;
  for (int i = threadIdx.y; i < 32; i += blockDim.y) {
    const int64_t r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = in[r * cols + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < 32; i += blockDim.y) {
    const int64_t c = c0 + i, r = r0 + threadIdx.x;  // out row c, column r
    if (r < rows && c < cols) out[c * rows + r] = tile[threadIdx.x][i];
  }
}

__global__ void BiasReluClampKernel(float* c, int64_t m, int64_t n, const float* bias, bool relu,
                                    bool has_clamp, float clamp_max) {
  const Epilogue e{1.0f, 0.0f, nullptr, bias, relu, has_clamp, clamp_max};
  const int64_t total = m * n;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    c[i] = FinishEpilogue(e, c[i], i, i % n);
  }
}

// t is [n, m]; out is [m, n].
__global__ void TransposeFinishKernel(const float* __restrict__ t, float* __restrict__ out,
                                      int64_t m, int64_t n, float alpha, float beta,
                                      const float* __restrict__ c_in, const float* bias, bool relu,
                                      bool has_clamp, float clamp_max) {
  __shared__ float tile[32][33];
  const Epilogue e{alpha, beta, c_in, bias, relu, has_clamp, clamp_max};
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * 32;  // along m
  const int64_t j0 = static_cast<int64_t>(blockIdx.y) * 32;  // along n
  for (int q = threadIdx.y; q < 32; q += blockDim.y) {
    const int64_t j = j0 + q, i = i0 + threadIdx.x;
    if (j < n && i < m) tile[q][threadIdx.x] = t[j * m + i];
  }
  __syncthreads();
  for (int q = threadIdx.y; q < 32; q += blockDim.y) {
    const int64_t i = i0 + q, j = j0 + threadIdx.x;
    if (i < m && j < n) {
      out[i * n + j] = FinishEpilogue(e, tile[threadIdx.x][q], i * n + j, j);
    }
  }
}

__global__ void ScaledCopyKernel(const float* __restrict__ in, float beta, float* __restrict__ out,
                                 int64_t count) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = beta * in[i];
  }
}

template <class T>
__global__ void ToF32Kernel(const T* __restrict__ in, float* __restrict__ out, int64_t count) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if constexpr (sizeof(T) == 2 && std::is_same_v<T, __half>) {
      out[i] = __half2float(in[i]);
    } else {
      out[i] = __bfloat162float(in[i]);
    }
  }
}

__global__ void NarrowKernel(const int64_t* __restrict__ in, int32_t* __restrict__ out,
                             int64_t count) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = static_cast<int32_t>(in[i]);
  }
}

}  // namespace

cudaError_t LaunchRowStats(const int32_t* row_ptr, int64_t m, long long* stats, double* sum_sq,
                           cudaStream_t stream) {
  if (m == 0) return cudaSuccess;
  RowStatsKernel<<<std::min<unsigned>(GridFor(m), 1024), kThreads, 0, stream>>>(row_ptr, m, stats,
                                                                                sum_sq);
  return cudaGetLastError();
}

cudaError_t LaunchTranspose(const void* in, void* out, int64_t rows, int64_t cols,
                            int64_t elem_bytes, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(CeilDiv(cols, 32)),
                  static_cast<unsigned>(CeilDiv(rows, 32)));
  const dim3 block(32, 8);
  if (elem_bytes == 4) {
    TransposeKernel<float><<<grid, block, 0, stream>>>(static_cast<const float*>(in),
                                                       static_cast<float*>(out), rows, cols);
  } else {
    TransposeKernel<uint16_t><<<grid, block, 0, stream>>>(static_cast<const uint16_t*>(in),
                                                          static_cast<uint16_t*>(out), rows, cols);
  }
  return cudaGetLastError();
}

cudaError_t LaunchBiasReluClamp(float* c, int64_t m, int64_t n, const float* bias, bool relu,
                                bool has_clamp, float clamp_max, cudaStream_t stream) {
  if (m * n == 0 || (bias == nullptr && !relu && !has_clamp)) return cudaSuccess;
  BiasReluClampKernel<<<GridFor(m * n), kThreads, 0, stream>>>(c, m, n, bias, relu, has_clamp,
                                                               clamp_max);
  return cudaGetLastError();
}

cudaError_t LaunchTransposeFinish(const float* t, float* out, int64_t m, int64_t n, float alpha,
                                  float beta, const float* c_in, const float* bias, bool relu,
                                  bool has_clamp, float clamp_max, cudaStream_t stream) {
  if (m == 0 || n == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(CeilDiv(m, 32)), static_cast<unsigned>(CeilDiv(n, 32)));
  TransposeFinishKernel<<<grid, dim3(32, 8), 0, stream>>>(t, out, m, n, alpha, beta, c_in, bias,
                                                          relu, has_clamp, clamp_max);
  return cudaGetLastError();
}

cudaError_t LaunchScaledCopy(const float* in, float beta, float* out, int64_t count,
                             cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  ScaledCopyKernel<<<GridFor(count), kThreads, 0, stream>>>(in, beta, out, count);
  return cudaGetLastError();
}

cudaError_t LaunchToF32(const void* in, ValueType type, float* out, int64_t count,
                        cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (type == ValueType::kF16) {
    ToF32Kernel<__half>
        <<<GridFor(count), kThreads, 0, stream>>>(static_cast<const __half*>(in), out, count);
  } else {
    ToF32Kernel<__nv_bfloat16><<<GridFor(count), kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(in), out, count);
  }
  return cudaGetLastError();
}

template <class T>
__global__ void FromF32Kernel(const float* __restrict__ in, T* __restrict__ out, int64_t count) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if constexpr (std::is_same_v<T, __half>) {
      out[i] = __float2half_rn(in[i]);
    } else {
      out[i] = __float2bfloat16_rn(in[i]);
    }
  }
}

cudaError_t LaunchFromF32(const float* in, ValueType type, void* out, int64_t count,
                          cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (type == ValueType::kF16) {
    FromF32Kernel<__half>
        <<<GridFor(count), kThreads, 0, stream>>>(in, static_cast<__half*>(out), count);
  } else {
    FromF32Kernel<__nv_bfloat16>
        <<<GridFor(count), kThreads, 0, stream>>>(in, static_cast<__nv_bfloat16*>(out), count);
  }
  return cudaGetLastError();
}

cudaError_t LaunchNarrowIndices(const int64_t* in, int32_t* out, int64_t count,
                                cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  NarrowKernel<<<GridFor(count), kThreads, 0, stream>>>(in, out, count);
  return cudaGetLastError();
}

}  // namespace sparsed::cuda::kernels
