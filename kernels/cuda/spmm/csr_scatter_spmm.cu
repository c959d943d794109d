// Products with a transposed CSR operand, read as stored: stored entry
// (i, j, v) of S adds alpha · v · B[i, :] to row j of the output. Work is
// split by non-zeros (not rows), so long rows do not serialise a warp.
#include <algorithm>
#include <cstdint>

#include "csr_spmm_kernels.h"

namespace sparsed::cuda::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kEntriesPerGroup = 8;  // stored entries a lane group takes per warp chunk

// Lane groups of G threads; each group adds one stored entry's scaled B row,
// G threads striding over its columns (float4 vectors when kVec4).
template <int G, bool kVec4>
__global__ void __launch_bounds__(kThreads)
    CsrScatterKernel(const int32_t* __restrict__ row_ptr, const int32_t* __restrict__ col_idx,
                     const float* __restrict__ values, int64_t rows, int64_t nnz,
                     const float* __restrict__ b, int64_t n, float alpha, float* acc) {
  constexpr int kGroups = 32 / G;
  constexpr int64_t kChunk = int64_t{kGroups} * kEntriesPerGroup;
  const int lane = threadIdx.x % 32, group = lane / G, l = lane % G;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  const int64_t width = kVec4 ? n / 4 : n;
  for (int64_t begin = warp * kChunk; begin < nnz; begin += warps * kChunk) {
    const int64_t end = min(begin + kChunk, nnz);
    int64_t x = begin + group;
    if (x >= end) continue;
    // The row of entry x: the last r with row_ptr[r] <= x (empty rows skipped).
    int64_t lo = 0, hi = rows - 1;
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (row_ptr[mid] <= x) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    int64_t r = lo;
    for (; x < end; x += kGroups) {
      while (row_ptr[r + 1] <= x) ++r;
      const float v = alpha * values[x];
      const int64_t j = col_idx[x];
      if constexpr (kVec4) {
        const float4* in = reinterpret_cast<const float4*>(b + r * n);
        float4* out = reinterpret_cast<float4*>(acc + j * n);
        for (int64_t c = l; c < width; c += G) {
          const float4 bv = in[c];
          const float4 add = make_float4(v * bv.x, v * bv.y, v * bv.z, v * bv.w);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
          atomicAdd(out + c, add);
#else
          float* o = reinterpret_cast<float*>(out + c);
          atomicAdd(o, add.x);
          atomicAdd(o + 1, add.y);
          atomicAdd(o + 2, add.z);
          atomicAdd(o + 3, add.w);
#endif
        }
      } else {
        const float* in = b + r * n;
        float* out = acc + j * n;
        for (int64_t c = l; c < width; c += G) atomicAdd(out + c, v * in[c]);
      }
    }
  }
}

template <bool kVec4>
cudaError_t LaunchWithGroup(int g, unsigned blocks, const int32_t* row_ptr, const int32_t* col_idx,
                            const float* values, int64_t rows, int64_t nnz, const float* b,
                            int64_t n, float alpha, float* acc, cudaStream_t stream) {
#define SPARSED_SCATTER_CASE(G)                                                                   \
  case G:                                                                                         \
    CsrScatterKernel<G, kVec4>                                                                    \
        <<<blocks, kThreads, 0, stream>>>(row_ptr, col_idx, values, rows, nnz, b, n, alpha, acc); \
    break;
  switch (g) {
    SPARSED_SCATTER_CASE(1)
    SPARSED_SCATTER_CASE(2)
    SPARSED_SCATTER_CASE(4)
    SPARSED_SCATTER_CASE(8)
    SPARSED_SCATTER_CASE(16)
    default:
      CsrScatterKernel<32, kVec4>
          <<<blocks, kThreads, 0, stream>>>(row_ptr, col_idx, values, rows, nnz, b, n, alpha, acc);
  }
#undef SPARSED_SCATTER_CASE
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchCsrScatterSpmm(const int32_t* row_ptr, const int32_t* col_idx,
                                 const float* values, int64_t rows, int64_t nnz, const float* b,
                                 int64_t n, float alpha, float* acc, cudaStream_t stream) {
  if (rows == 0 || nnz == 0 || n == 0) return cudaSuccess;
  const bool vec4 = n % 4 == 0 && reinterpret_cast<uintptr_t>(b) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(acc) % 16 == 0;
  const int64_t width = vec4 ? n / 4 : n;
  int g = 1;
  while (g < 32 && g < width) g *= 2;
  const int64_t chunk = int64_t{32 / g} * kEntriesPerGroup;
  const int64_t warps = (nnz + chunk - 1) / chunk;
  const unsigned blocks = static_cast<unsigned>(
      std::min<int64_t>((warps + kThreads / 32 - 1) / (kThreads / 32), int64_t{1} << 20));
  return vec4 ? LaunchWithGroup<true>(g, blocks, row_ptr, col_idx, values, rows, nnz, b, n, alpha,
                                      acc, stream)
              : LaunchWithGroup<false>(g, blocks, row_ptr, col_idx, values, rows, nnz, b, n, alpha,
                                       acc, stream);
}

}  // namespace sparsed::cuda::kernels
