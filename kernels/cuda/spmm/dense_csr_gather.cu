#include <algorithm>

#include "dynamic_smem.h"
#include "spmm/dense_csr_gather.h"

namespace sparsed::cuda::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxRows = 8;
constexpr int64_t kSmemBytes = 192 * 1024;  // of D rows per CTA, at most

// blockIdx.x: rows [R·x, R·x + R) of D and C; blockIdx.y: columns
// [kThreads·y, kThreads·y + kThreads) of C, one per thread.
template <int R>
__global__ void __launch_bounds__(kThreads)
    DenseCsrGatherKernel(const float* __restrict__ d, int64_t m, int64_t k,
                         const int32_t* __restrict__ row_ptr, const int32_t* __restrict__ col_idx,
                         const float* __restrict__ values, int64_t n, Epilogue e,
                         float* __restrict__ c) {
  extern __shared__ float tile[];  // [R][k]
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * R;
  const int rows = static_cast<int>(m - row0 < R ? m - row0 : R);
  const bool vec4 = k % 4 == 0 && reinterpret_cast<uintptr_t>(d) % 16 == 0;
  if (vec4) {
    const int64_t width = k / 4;
    for (int64_t i = threadIdx.x; i < rows * width; i += kThreads) {
      const int64_t r = i / width, q = i % width;
      reinterpret_cast<float4*>(tile)[r * width + q] =
          reinterpret_cast<const float4*>(d + (row0 + r) * k)[q];
    }
  } else {
    for (int64_t i = threadIdx.x; i < rows * k; i += kThreads) {
      tile[i] = d[(row0 + i / k) * k + i % k];
    }
  }
  __syncthreads();
  const int64_t j = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (j >= n) return;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.0f;
  for (int32_t x = row_ptr[j]; x < row_ptr[j + 1]; ++x) {
    const int32_t col = col_idx[x];
    const float v = values[x];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] += v * tile[r * k + col];  // rows past m: never stored
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (r < rows) {
      const int64_t idx = (row0 + r) * n + j;
      c[idx] = FinishEpilogue(e, acc[r], idx, j);
    }
  }
}

}  // namespace

int DenseCsrGatherRows(int64_t k) { return k > 0 && kMaxRows * k * 4 <= kSmemBytes ? kMaxRows : 0; }

cudaError_t LaunchDenseCsrGather(const float* d, int64_t m, int64_t k, const int32_t* row_ptr,
                                 const int32_t* col_idx, const float* values, int64_t n,
                                 const Epilogue& e, float* c, cudaStream_t stream) {
  if (m == 0 || n == 0) return cudaSuccess;
  if (DenseCsrGatherRows(k) != kMaxRows) return cudaErrorInvalidValue;
  const int64_t smem = kMaxRows * k * 4;
  const cudaError_t raised =
      EnsureDynamicSmem<DenseCsrGatherKernel<kMaxRows>>(static_cast<int>(kSmemBytes));
  if (raised != cudaSuccess) return raised;
  const dim3 grid(static_cast<unsigned>((m + kMaxRows - 1) / kMaxRows),
                  static_cast<unsigned>((n + kThreads - 1) / kThreads));
  if (grid.x == 0 || (m + kMaxRows - 1) / kMaxRows > (int64_t{1} << 31) - 1 ||
      (n + kThreads - 1) / kThreads > 65535) {
    return cudaErrorInvalidValue;
  }
  DenseCsrGatherKernel<kMaxRows>
      <<<grid, kThreads, smem, stream>>>(d, m, k, row_ptr, col_idx, values, n, e, c);
  return cudaGetLastError();
}

}  // namespace sparsed::cuda::kernels
