#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "device_helpers.cuh"
#include "spmm/blocked_spmm_kernels.h"

namespace sparsed::cuda::kernels {
namespace {

constexpr int kRowsPerCta = 8;  // threadIdx.y; threadIdx.x covers 32 columns of C
constexpr int64_t kMaxGrid = 65535;

__device__ __forceinline__ float Finish(float acc, int64_t i, int64_t j, int64_t n,
                                        const Epilogue& e) {
  return FinishEpilogue(e, acc, i * n + j, j);
}

// CTA (32, 8) per (block row, 32 columns of C); rows of the block row are
// strided over threadIdx.y.
template <class T, class I>
__global__ void BsrSpmmKernel(const I* __restrict__ brp, const I* __restrict__ bci,
                              const T* __restrict__ a, int64_t R, int64_t C, int64_t m, int64_t k,
                              const T* __restrict__ b, int64_t n, float* __restrict__ c,
                              Epilogue e) {
  const int64_t nbr = (m + R - 1) / R, tiles = (n + 31) / 32;
  for (int64_t br = blockIdx.y; br < nbr; br += gridDim.y) {
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int64_t j = tile * 32 + threadIdx.x;
      if (j >= n) continue;
      for (int64_t rr = threadIdx.y; rr < R; rr += blockDim.y) {
        const int64_t i = br * R + rr;
        if (i >= m) break;
        float acc = 0.0f;
        for (int64_t blk = brp[br]; blk < brp[br + 1]; ++blk) {
          const int64_t c0 = bci[blk] * C;
          const T* row = a + (blk * R + rr) * C;
          const int64_t len = min(C, k - c0);
          for (int64_t cc = 0; cc < len; ++cc) {
            acc += ToFloat(row[cc]) * ToFloat(b[(c0 + cc) * n + j]);
          }
        }
        c[i * n + j] = Finish(acc, i, j, n, e);
      }
    }
  }
}

template <class T>
__global__ void NmSpmmKernel(const T* __restrict__ a, const int32_t* __restrict__ meta, int nm_n,
                             int nm_m, bool packed, int64_t m, int64_t k, const T* __restrict__ b,
                             int64_t n, float* __restrict__ c, Epilogue e) {
  const int64_t groups = k / nm_m, words = (groups + 7) / 8, tiles = (n + 31) / 32;
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; i < m;
       i += static_cast<int64_t>(gridDim.y) * blockDim.y) {
    for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      const int64_t j = tile * 32 + threadIdx.x;
      if (j >= n) continue;
      float acc = 0.0f;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t slot0 = (i * groups + g) * nm_n;
        const uint32_t word = packed ? static_cast<uint32_t>(meta[i * words + g / 8]) : 0u;
        for (int s = 0; s < nm_n; ++s) {
          const int pos =
              packed ? static_cast<int>((word >> (4 * (g % 8) + 2 * s)) & 3u) : meta[slot0 + s];
          acc += ToFloat(a[slot0 + s]) * ToFloat(b[(g * nm_m + pos) * n + j]);
        }
      }
      c[i * n + j] = Finish(acc, i, j, n, e);
    }
  }
}

template <class F>
void ByType(ValueType type, F&& f) {
  if (type == ValueType::kF16) {
    f(__half{});
  } else if (type == ValueType::kBF16) {
    f(__nv_bfloat16{});
  } else {
    f(float{});
  }
}

unsigned Cap(int64_t v) { return static_cast<unsigned>(std::clamp<int64_t>(v, 1, kMaxGrid)); }

}  // namespace

cudaError_t LaunchBsrSpmm(ValueType type, bool idx64, const void* block_row_ptr,
                          const void* block_col_idx, const void* a_values, int64_t R, int64_t C,
                          int64_t m, int64_t k, const void* b, int64_t n, float* c,
                          const Epilogue& e, cudaStream_t stream) {
  if (m == 0 || n == 0) return cudaSuccess;
  const dim3 grid(Cap((n + 31) / 32), Cap((m + R - 1) / R));
  ByType(type, [&](auto tag) {
    using T = decltype(tag);
    if (idx64) {
      BsrSpmmKernel<T><<<grid, dim3(32, kRowsPerCta), 0, stream>>>(
          static_cast<const int64_t*>(block_row_ptr), static_cast<const int64_t*>(block_col_idx),
          static_cast<const T*>(a_values), R, C, m, k, static_cast<const T*>(b), n, c, e);
    } else {
      BsrSpmmKernel<T><<<grid, dim3(32, kRowsPerCta), 0, stream>>>(
          static_cast<const int32_t*>(block_row_ptr), static_cast<const int32_t*>(block_col_idx),
          static_cast<const T*>(a_values), R, C, m, k, static_cast<const T*>(b), n, c, e);
    }
  });
  return cudaGetLastError();
}

cudaError_t LaunchNmSpmm(ValueType type, const void* a_values, const int32_t* meta, int nm_n,
                         int nm_m, bool packed, int64_t m, int64_t k, const void* b, int64_t n,
                         float* c, const Epilogue& e, cudaStream_t stream) {
  if (m == 0 || n == 0) return cudaSuccess;
  const dim3 grid(Cap((n + 31) / 32), Cap((m + kRowsPerCta - 1) / kRowsPerCta));
  ByType(type, [&](auto tag) {
    using T = decltype(tag);
    NmSpmmKernel<T><<<grid, dim3(32, kRowsPerCta), 0, stream>>>(static_cast<const T*>(a_values),
                                                                meta, nm_n, nm_m, packed, m, k,
                                                                static_cast<const T*>(b), n, c, e);
  });
  return cudaGetLastError();
}

}  // namespace sparsed::cuda::kernels
