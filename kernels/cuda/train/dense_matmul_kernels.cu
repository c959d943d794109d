// Dense f32 matmul tiles without cuBLAS: a shared-memory tiled SGEMM. A block
// of 256 threads computes a 64 x 64 tile of C, each thread a 4 x 4 register
// block (rows ty + 16 i, columns tx + 16 j), walking k in slices of 16 that
// are staged in shared memory. The loads of a slice are laid out along the
// contiguous dimension of each stored operand (template flags per transpose),
// so every transpose combination reads coalesced; out-of-range elements load
// as 0, so any m, n, k works. Column tiles are walked by a grid-stride loop
// (gridDim.y is limited to 65535).
#include <algorithm>

#include "train/train_kernels.h"

namespace sparsed::cuda::train {
namespace {

constexpr int kBm = 64, kBn = 64, kBk = 16, kThreads = 256;
constexpr int kPad = 4;  // keeps the transposed stores from all hitting one bank

template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads) SgemmKernel(SgemmProblem p) {
  __shared__ float as[kBk][kBm + kPad];
  __shared__ float bs[kBk][kBn + kPad];
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kBm;  // tile row (local)
  const int64_t col_tiles = (p.n + kBn - 1) / kBn;
  for (int64_t tj = blockIdx.y; tj < col_tiles; tj += gridDim.y) {
    const int64_t j0 = tj * kBn;
    float acc[4][4] = {};
    for (int64_t k0 = 0; k0 < p.k; k0 += kBk) {
#pragma unroll
      for (int t = 0; t < kBm * kBk / kThreads; ++t) {
        const int e = tid + t * kThreads;
        // op(A)[i, q] is a[i * lda + q] (A) or a[q * lda + i] (Aᵀ).
        const int r = TA ? e % kBm : e / kBk;
        const int q = TA ? e / kBm : e % kBk;
        const int64_t gi = i0 + r, gq = k0 + q;
        float v = 0.0f;
        if (gi < p.rows && gq < p.k) {
          const int64_t ai = p.row_begin + gi;
          v = TA ? p.a[gq * p.lda + ai] : p.a[ai * p.lda + gq];
        }
        as[q][r] = v;
      }
#pragma unroll
      for (int t = 0; t < kBk * kBn / kThreads; ++t) {
        const int e = tid + t * kThreads;
        // op(B)[q, j] is b[q * ldb + j] (B) or b[j * ldb + q] (Bᵀ).
        const int c = TB ? e / kBk : e % kBn;
        const int q = TB ? e % kBk : e / kBn;
        const int64_t gj = j0 + c, gq = k0 + q;
        float v = 0.0f;
        if (gj < p.n && gq < p.k) v = TB ? p.b[gj * p.ldb + gq] : p.b[gq * p.ldb + gj];
        bs[q][c] = v;
      }
      __syncthreads();
#pragma unroll
      for (int q = 0; q < kBk; ++q) {
        float av[4], bv[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) av[i] = as[q][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) bv[j] = bs[q][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t gi = i0 + ty + 16 * i;
      if (gi >= p.rows) continue;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t gj = j0 + tx + 16 * j;
        if (gj < p.n) p.c[gi * p.n + gj] = acc[i][j];
      }
    }
  }
}

template <bool TA, bool TB>
cudaError_t Launch(const SgemmProblem& p, cudaStream_t stream) {
  const int64_t row_tiles = (p.rows + kBm - 1) / kBm;
  const int64_t col_tiles = (p.n + kBn - 1) / kBn;
  if (row_tiles > 0x7fffffff) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(row_tiles),
                  static_cast<unsigned>(std::min<int64_t>(col_tiles, 65535)));
  SgemmKernel<TA, TB><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchSgemm(const SgemmProblem& p, cudaStream_t stream) {
  if (p.rows == 0 || p.n == 0) return cudaSuccess;
  if (p.transpose_a) {
    return p.transpose_b ? Launch<true, true>(p, stream) : Launch<true, false>(p, stream);
  }
  return p.transpose_b ? Launch<false, true>(p, stream) : Launch<false, false>(p, stream);
}

}  // namespace sparsed::cuda::train
