// SDDMM: one group of G lanes (G = 2 .. 32, chosen from k) per stored entry.
// The lanes of a group stride over k reading a row of op(A) and a row of
// op(B)ᵀ with unit stride (coalesced; 16-byte loads where k and the leading
// dimensions allow), accumulate in f32 and reduce with shuffles. A group
// takes runs of consecutive entries, which mostly share a row, so the op(A)
// row stays in L1, and searches for the row once per run.
#include <algorithm>
#include <cstdint>

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

// Each group takes runs of kRun consecutive entries: one row search per run,
// then the row advances as the run crosses row ends.
constexpr int64_t kRun = 8;

template <int G, bool kVec4>
__global__ void __launch_bounds__(kThreads) SddmmKernel(SddmmProblem p) {
  static_assert(G >= 2 && G <= 32 && (G & (G - 1)) == 0, "group size is a power of two");
  const int lane = threadIdx.x % G;
  const int warp_lane = threadIdx.x % 32;
  // The lanes of this group (a loop trip count is uniform within a group).
  const unsigned mask = G == 32 ? 0xffffffffu : ((1u << G) - 1u) << (warp_lane / G * G);
  const int64_t groups = static_cast<int64_t>(gridDim.x) * (kThreads / G);
  const int64_t group = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  for (int64_t base = group * kRun; base < p.nnz; base += groups * kRun) {
    const int64_t end = min(base + kRun, p.nnz);
    int64_t row = RowOf(p.row_ptr, p.m, base);
    for (int64_t e = base; e < end; ++e) {
      while (p.row_ptr[row + 1] <= e) ++row;
      const float* __restrict__ ar = p.a + row * p.lda;
      const float* __restrict__ br = p.bt + p.col_idx[e] * p.ldb;
      float acc = 0.0f;
      if constexpr (kVec4) {
        // 16-byte loads: k, lda and ldb are multiples of 4, rows 16-byte aligned.
        const float4* a4 = reinterpret_cast<const float4*>(ar);
        const float4* b4 = reinterpret_cast<const float4*>(br);
        for (int64_t q = lane; q < p.k / 4; q += G) {
          const float4 x = a4[q], y = b4[q];
          acc = fmaf(x.x, y.x, acc);
          acc = fmaf(x.y, y.y, acc);
          acc = fmaf(x.z, y.z, acc);
          acc = fmaf(x.w, y.w, acc);
        }
      } else {
        for (int64_t q = lane; q < p.k; q += G) acc = fmaf(ar[q], br[q], acc);
      }
#pragma unroll
      for (int off = G / 2; off > 0; off /= 2) acc += __shfl_xor_sync(mask, acc, off, G);
      if (lane == 0) {
        float v = p.alpha * acc;
        if (p.beta != 0.0f) v = fmaf(p.beta, p.c[e], v);
        p.out[e] = v;
      }
    }
  }
}

template <int G, bool kVec4>
cudaError_t Launch(const SddmmProblem& p, int num_sms, cudaStream_t stream) {
  const int64_t per_block = kThreads / G * kRun;
  const int64_t wanted = (p.nnz + per_block - 1) / per_block;
  // Enough blocks to fill the device several times over; the rest loop.
  const int64_t cap = std::max<int64_t>(num_sms, 1) * 32;
  const unsigned blocks = static_cast<unsigned>(std::min(wanted, cap));
  SddmmKernel<G, kVec4><<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

// The group size for `width` elements (or vectors) per dot product.
template <bool kVec4>
cudaError_t LaunchFor(const SddmmProblem& p, int64_t width, int num_sms, cudaStream_t stream) {
  if (width > 64) return Launch<32, kVec4>(p, num_sms, stream);
  if (width > 32) return Launch<16, kVec4>(p, num_sms, stream);
  if (width > 16) return Launch<8, kVec4>(p, num_sms, stream);
  if (width > 4 || !kVec4) return Launch<4, kVec4>(p, num_sms, stream);
  return Launch<2, kVec4>(p, num_sms, stream);
}

}  // namespace

cudaError_t LaunchSddmm(const SddmmProblem& p, int num_sms, cudaStream_t stream) {
  if (p.nnz == 0) return cudaSuccess;
  const bool vec4 = p.k % 4 == 0 && p.lda % 4 == 0 && p.ldb % 4 == 0 &&
                    reinterpret_cast<uintptr_t>(p.a) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(p.bt) % 16 == 0;
  return vec4 ? LaunchFor<true>(p, p.k / 4, num_sms, stream)
              : LaunchFor<false>(p, p.k, num_sms, stream);
}

}  // namespace sparsed::cuda::train
