// SDDMM: one group of G lanes (G = 4 .. 32, chosen from k) per stored entry.
// The lanes of a group stride over k reading a row of op(A) and a row of
// op(B)ᵀ with unit stride (coalesced), accumulate in f32 and reduce with
// shuffles. Consecutive groups take consecutive entries, which mostly share a
// row, so the op(A) row stays in L1.
#include <algorithm>

#include "train/train_kernels.h"

namespace sparsed::cuda::train {
namespace {

constexpr int kThreads = 256;

// The row r with row_ptr[r] <= p < row_ptr[r + 1] (empty rows skipped).
__device__ __forceinline__ int64_t RowOf(const int64_t* __restrict__ row_ptr, int64_t m,
                                         int64_t p) {
  int64_t lo = 0, hi = m;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (row_ptr[mid] <= p) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

template <int G>
__global__ void __launch_bounds__(kThreads) SddmmKernel(SddmmProblem p) {
  static_assert(G >= 2 && G <= 32 && (G & (G - 1)) == 0, "group size is a power of two");
  const int lane = threadIdx.x % G;
  const int warp_lane = threadIdx.x % 32;
  // The lanes of this group (a loop trip count is uniform within a group).
  const unsigned mask = G == 32 ? 0xffffffffu : ((1u << G) - 1u) << (warp_lane / G * G);
  const int64_t groups = static_cast<int64_t>(gridDim.x) * (kThreads / G);
  for (int64_t e = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G; e < p.nnz;
       e += groups) {
    const int64_t row = RowOf(p.row_ptr, p.m, e);
    const float* __restrict__ ar = p.a + row * p.lda;
    const float* __restrict__ br = p.bt + p.col_idx[e] * p.ldb;
    float acc = 0.0f;
    for (int64_t q = lane; q < p.k; q += G) acc = fmaf(ar[q], br[q], acc);
#pragma unroll
    for (int off = G / 2; off > 0; off /= 2) acc += __shfl_xor_sync(mask, acc, off, G);
    if (lane == 0) {
      float v = p.alpha * acc;
      if (p.beta != 0.0f) v = fmaf(p.beta, p.c[e], v);
      p.out[e] = v;
    }
  }
}

template <int G>
cudaError_t Launch(const SddmmProblem& p, int num_sms, cudaStream_t stream) {
  const int64_t per_block = kThreads / G;
  const int64_t wanted = (p.nnz + per_block - 1) / per_block;
  // Enough blocks to fill the device several times over; the rest loop.
  const int64_t cap = std::max<int64_t>(num_sms, 1) * 32;
  const unsigned blocks = static_cast<unsigned>(std::min(wanted, cap));
  SddmmKernel<G><<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchSddmm(const SddmmProblem& p, int num_sms, cudaStream_t stream) {
  if (p.nnz == 0) return cudaSuccess;
  if (p.k > 64) return Launch<32>(p, num_sms, stream);
  if (p.k > 32) return Launch<16>(p, num_sms, stream);
  if (p.k > 16) return Launch<8>(p, num_sms, stream);
  return Launch<4>(p, num_sms, stream);
}

}  // namespace sparsed::cuda::train
