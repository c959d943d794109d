// Our CSR SpMM kernels. Accumulation is in f32 whatever the value type.
// B rows are read with 16-byte vector loads when n is a multiple of the
// vector width (VEC elements), else element by element (VEC = 1).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <climits>
#include <type_traits>

#include "csr_spmm_kernels.h"
#include "device_helpers.cuh"

namespace sparsed::cuda::kernels {
namespace {

struct Args {
  int64_t m, k, n, nnz;
  const int32_t* __restrict__ row_ptr;
  const int32_t* __restrict__ col_idx;
  const void* __restrict__ a_values;
  const void* __restrict__ b;
  float* __restrict__ c;
  Epilogue e;
  int64_t skip_longer_than;  // warp_row leaves rows longer than this to others
};

Args ArgsOf(const CsrSpmmProblem& p) {
  return Args{
      p.m,        p.k,
      p.n,        p.nnz,
      p.row_ptr,  p.col_idx,
      p.a_values, p.b,
      p.c,        Epilogue{p.alpha, p.beta, p.c_in, p.bias, p.relu, p.has_clamp, p.clamp_max},
      INT64_MAX};
}

// Loads VEC consecutive elements of T at p (aligned to their size) as floats.
template <class T, int VEC>
__device__ __forceinline__ void LoadVec(const T* __restrict__ p, float (&out)[VEC]) {
  if constexpr (VEC == 1) {
    out[0] = ToFloat(__ldg(p));
  } else if constexpr (sizeof(T) == 4) {
    static_assert(VEC == 4);
    const float4 v = __ldg(reinterpret_cast<const float4*>(p));
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  } else {
    static_assert(VEC == 8);
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 f;
      if constexpr (std::is_same_v<T, __half>) {
        f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      } else {
        f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i]));
      }
      out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
  }
}

__device__ __forceinline__ float Finish(const Args& a, float acc, int64_t i, int64_t j) {
  return FinishEpilogue(a.e, acc, i * a.n + j, j);
}

// Writes VEC finished values of row i starting at column j.
template <int VEC>
__device__ __forceinline__ void StoreVec(const Args& a, const float (&acc)[VEC], int64_t i,
                                         int64_t j) {
  float out[VEC];
#pragma unroll
  for (int q = 0; q < VEC; ++q) out[q] = Finish(a, acc[q], i, j + q);
  float* dst = a.c + i * a.n + j;
  if constexpr (VEC % 4 == 0) {
#pragma unroll
    for (int q = 0; q < VEC; q += 4) {
      *reinterpret_cast<float4*>(dst + q) = make_float4(out[q], out[q + 1], out[q + 2], out[q + 3]);
    }
  } else {
#pragma unroll
    for (int q = 0; q < VEC; ++q) dst[q] = out[q];
  }
}

template <class T>
constexpr int kVec = 16 / sizeof(T);

// ---------------------------------------------------------------- row split

template <class T, int VEC>
__global__ void __launch_bounds__(128) RowSplitKernel(Args a) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= a.m) return;
  const T* __restrict__ vals = static_cast<const T*>(a.a_values);
  const T* __restrict__ b = static_cast<const T*>(a.b);
  const int start = a.row_ptr[row], end = a.row_ptr[row + 1];
  constexpr int kChunk = 4;  // vectors per pass over the row
  for (int64_t c0 = 0; c0 < a.n; c0 += kChunk * VEC) {
    float acc[kChunk][VEC] = {};
    for (int e = start; e < end; ++e) {
      const int64_t col = a.col_idx[e];
      const float v = ToFloat(vals[e]);
#pragma unroll
      for (int q = 0; q < kChunk; ++q) {
        const int64_t j = c0 + q * VEC;
        if (j < a.n) {
          float x[VEC];
          LoadVec<T, VEC>(b + col * a.n + j, x);
#pragma unroll
          for (int r = 0; r < VEC; ++r) acc[q][r] = fmaf(v, x[r], acc[q][r]);
        }
      }
    }
#pragma unroll
    for (int q = 0; q < kChunk; ++q) {
      const int64_t j = c0 + q * VEC;
      if (j < a.n) StoreVec<VEC>(a, acc[q], row, j);
    }
  }
}

// ------------------------------------------------------ sub-warp accumulation

// The sub-warp of LANES threads (mask `mask`) adds the products of entries
// [e_begin, e_end) of A with their rows of B into acc, for its CPL column
// vectors: lane l covers columns tile0 + (v * LANES + l) * VEC, v < CPL.
template <class T, int VEC, int LANES, int CPL>
__device__ __forceinline__ void AccumulateRange(const Args& a, int e_begin, int e_end, int lane,
                                                unsigned mask, int64_t tile0,
                                                float (&acc)[CPL][VEC]) {
  const T* __restrict__ vals = static_cast<const T*>(a.a_values);
  const T* __restrict__ b = static_cast<const T*>(a.b);
  bool col_ok[CPL];
  int64_t col_of[CPL];
#pragma unroll
  for (int v = 0; v < CPL; ++v) {
    col_of[v] = tile0 + static_cast<int64_t>(v * LANES + lane) * VEC;
    col_ok[v] = col_of[v] < a.n;
  }
  for (int e0 = e_begin; e0 < e_end; e0 += LANES) {
    const int e = e0 + lane;
    int my_col = 0;
    float my_val = 0.0f;
    if (e < e_end) {
      my_col = a.col_idx[e];
      my_val = ToFloat(vals[e]);
    }
    const int count = min(LANES, e_end - e0);
    // U entries at a time: their B loads are independent and overlap. Fewer
    // when each entry already loads many vectors (register pressure).
    constexpr int U = CPL * VEC <= 8 ? 4 : CPL * VEC <= 16 ? 2 : 1;
    int t = 0;
    for (; t + U <= count; t += U) {
      int64_t col[U];
      float val[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        col[u] = __shfl_sync(mask, my_col, t + u, LANES);
        val[u] = __shfl_sync(mask, my_val, t + u, LANES);
      }
      float x[U][CPL][VEC];
#pragma unroll
      for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int v = 0; v < CPL; ++v) {
          if (col_ok[v]) {
            LoadVec<T, VEC>(b + col[u] * a.n + col_of[v], x[u][v]);
          } else {
#pragma unroll
            for (int r = 0; r < VEC; ++r) x[u][v][r] = 0.0f;
          }
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int v = 0; v < CPL; ++v) {
#pragma unroll
          for (int r = 0; r < VEC; ++r) acc[v][r] = fmaf(val[u], x[u][v][r], acc[v][r]);
        }
      }
    }
    for (; t < count; ++t) {
      const int64_t col = __shfl_sync(mask, my_col, t, LANES);
      const float val = __shfl_sync(mask, my_val, t, LANES);
#pragma unroll
      for (int v = 0; v < CPL; ++v) {
        if (col_ok[v]) {
          float x[VEC];
          LoadVec<T, VEC>(b + col * a.n + col_of[v], x);
#pragma unroll
          for (int r = 0; r < VEC; ++r) acc[v][r] = fmaf(val, x[r], acc[v][r]);
        }
      }
    }
  }
}

template <int LANES>
__device__ __forceinline__ unsigned SubWarpMask() {
  if constexpr (LANES == 32) {
    return 0xffffffffu;
  } else {
    const int group = (threadIdx.x % 32) / LANES;
    return ((1u << LANES) - 1u) << (group * LANES);
  }
}

// ------------------------------------------------------------ warp per row

template <class T, int VEC, int LANES, int CPL>
__global__ void __launch_bounds__(256) WarpRowKernel(Args a) {
  const int lane = threadIdx.x % LANES;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / LANES) + threadIdx.x / LANES;
  const int64_t tile0 = static_cast<int64_t>(blockIdx.y) * (LANES * VEC * CPL);
  if (row >= a.m) return;  // whole sub-warps leave together
  const int start = a.row_ptr[row], end = a.row_ptr[row + 1];
  if (end - start > a.skip_longer_than) return;  // a long row: split elsewhere
  float acc[CPL][VEC] = {};
  AccumulateRange<T, VEC, LANES, CPL>(a, start, end, lane, SubWarpMask<LANES>(), tile0, acc);
#pragma unroll
  for (int v = 0; v < CPL; ++v) {
    const int64_t j = tile0 + static_cast<int64_t>(v * LANES + lane) * VEC;
    if (j < a.n) StoreVec<VEC>(a, acc[v], row, j);
  }
}

// ------------------------------------------------------ nnz split in a row

// G lanes per row split its entries (lane l takes every G-th one) and each
// keeps the whole 32-column tile of the row in registers; at the end the G
// partial tiles are summed by recursive halving, leaving 32 / G columns per
// lane. More loads in flight per row than warp_row: for long rows and narrow B.
constexpr int kSplitTile = 32;  // columns per row tile

template <class T, int VEC, int G>
__global__ void __launch_bounds__(256) NnzSplitKernel(Args a) {
  constexpr int W = kSplitTile / VEC;  // vectors per lane per entry
  const int lane = threadIdx.x % G;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / G) + threadIdx.x / G;
  const int64_t tile0 = static_cast<int64_t>(blockIdx.y) * kSplitTile;
  if (row >= a.m) return;  // whole groups leave together
  const unsigned mask = SubWarpMask<G>();
  const T* __restrict__ vals = static_cast<const T*>(a.a_values);
  const T* __restrict__ b = static_cast<const T*>(a.b);
  float v[kSplitTile] = {};
  const int start = a.row_ptr[row], end = a.row_ptr[row + 1];
  // Which of this lane's W vectors lie inside B (all but in the last tile).
  bool in_b[W];
#pragma unroll
  for (int w = 0; w < W; ++w) in_b[w] = tile0 + w * VEC < a.n;
  for (int e = start + lane; e < end; e += G) {
    const int64_t col = a.col_idx[e];
    const float x = ToFloat(vals[e]);
    const T* __restrict__ brow = b + col * a.n + tile0;
    float y[W][VEC];
#pragma unroll
    for (int w = 0; w < W; ++w) {
      if (in_b[w]) {
        LoadVec<T, VEC>(brow + w * VEC, y[w]);
      } else {
#pragma unroll
        for (int r = 0; r < VEC; ++r) y[w][r] = 0.0f;
      }
    }
#pragma unroll
    for (int w = 0; w < W; ++w) {
#pragma unroll
      for (int r = 0; r < VEC; ++r) v[w * VEC + r] = fmaf(x, y[w][r], v[w * VEC + r]);
    }
  }
  // Recursive halving: at each step a lane keeps one half of its live values
  // (the upper half when its bit is set) and adds its partner's copy of it.
  constexpr int kSteps = G == 32 ? 5 : G == 16 ? 4 : G == 8 ? 3 : G == 4 ? 2 : 1;
  int base = 0;
#pragma unroll
  for (int k = 0; k < kSteps; ++k) {
    const int bit = (G / 2) >> k;
    const int half = (kSplitTile / 2) >> k;
    const bool upper = (lane & bit) != 0;
#pragma unroll
    for (int i = 0; i < (kSplitTile / 2) >> k; ++i) {
      // Both halves are exchanged so that no register is chosen by a
      // run-time condition (that would put v in local memory).
      const float lo = v[i], hi = v[i + half];
      const float lo_sum = lo + __shfl_xor_sync(mask, lo, bit, G);
      const float hi_sum = hi + __shfl_xor_sync(mask, hi, bit, G);
      v[i] = upper ? hi_sum : lo_sum;
    }
    if (upper) base += half;
  }
  constexpr int kMine = kSplitTile / G;
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int64_t j = tile0 + base + i;
    if (j < a.n) a.c[row * a.n + j] = Finish(a, v[i], row, j);
  }
}

// ------------------------------------------------- long rows in segments

// Sub-warp per segment [seg_begin[s], seg_end[s]) of a long row: the raw
// partial sums of its tile go to partials[s][n].
template <class T, int VEC, int LANES, int CPL>
__global__ void __launch_bounds__(256)
    SegmentKernel(Args a, const int32_t* __restrict__ seg_begin,
                  const int32_t* __restrict__ seg_end, int64_t num_segs,
                  float* __restrict__ partials) {
  const int lane = threadIdx.x % LANES;
  const int64_t s = static_cast<int64_t>(blockIdx.x) * (blockDim.x / LANES) + threadIdx.x / LANES;
  const int64_t tile0 = static_cast<int64_t>(blockIdx.y) * (LANES * VEC * CPL);
  if (s >= num_segs) return;
  float acc[CPL][VEC] = {};
  AccumulateRange<T, VEC, LANES, CPL>(a, seg_begin[s], seg_end[s], lane, SubWarpMask<LANES>(),
                                      tile0, acc);
#pragma unroll
  for (int v = 0; v < CPL; ++v) {
    const int64_t j = tile0 + static_cast<int64_t>(v * LANES + lane) * VEC;
    if (j < a.n) {
#pragma unroll
      for (int r = 0; r < VEC; ++r) partials[s * a.n + j + r] = acc[v][r];
    }
  }
}

// Block row y finishes long row long_rows[y] from its segments'
// partials[row_seg[y] .. row_seg[y + 1]): threadIdx.x walks 32 columns,
// threadIdx.y splits the segments, and shared memory sums the splits.
constexpr int kFinishCols = 32, kFinishSplit = 8;

__global__ void __launch_bounds__(kFinishCols* kFinishSplit)
    LongRowFinishKernel(Args a, const int32_t* __restrict__ long_rows,
                        const int32_t* __restrict__ row_seg, const float* __restrict__ partials) {
  __shared__ float part[kFinishSplit][kFinishCols + 1];
  const int64_t row = long_rows[blockIdx.y];
  const int s0 = row_seg[blockIdx.y], s1 = row_seg[blockIdx.y + 1];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kFinishCols + threadIdx.x;
  float sum = 0;
  if (j < a.n) {
    for (int s = s0 + threadIdx.y; s < s1; s += kFinishSplit) {
      sum += partials[static_cast<int64_t>(s) * a.n + j];
    }
  }
  part[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && j < a.n) {
    for (int q = 1; q < kFinishSplit; ++q) sum += part[q][threadIdx.x];
    a.c[row * a.n + j] = Finish(a, sum, row, j);
  }
}

// ------------------------------------------------------------ block per row

constexpr int kBlockRowThreads = 128;

template <class T, int VEC>
__global__ void __launch_bounds__(kBlockRowThreads) BlockRowKernel(Args a) {
  __shared__ int s_col[kBlockRowThreads];
  __shared__ float s_val[kBlockRowThreads];
  const T* __restrict__ vals = static_cast<const T*>(a.a_values);
  const T* __restrict__ b = static_cast<const T*>(a.b);
  const int64_t row = blockIdx.x;
  const int64_t j = (static_cast<int64_t>(blockIdx.y) * kBlockRowThreads + threadIdx.x) * VEC;
  const bool active = j < a.n;
  const int start = a.row_ptr[row], end = a.row_ptr[row + 1];
  float acc[VEC] = {};
  for (int e0 = start; e0 < end; e0 += kBlockRowThreads) {
    __syncthreads();
    if (e0 + static_cast<int>(threadIdx.x) < end) {
      s_col[threadIdx.x] = a.col_idx[e0 + threadIdx.x];
      s_val[threadIdx.x] = ToFloat(vals[e0 + threadIdx.x]);
    }
    __syncthreads();
    const int count = min(kBlockRowThreads, end - e0);
    if (!active) continue;
    int t = 0;
    for (; t + 4 <= count; t += 4) {
      float x[4][VEC];
#pragma unroll
      for (int u = 0; u < 4; ++u) LoadVec<T, VEC>(b + int64_t{s_col[t + u]} * a.n + j, x[u]);
#pragma unroll
      for (int u = 0; u < 4; ++u) {
#pragma unroll
        for (int r = 0; r < VEC; ++r) acc[r] = fmaf(s_val[t + u], x[u][r], acc[r]);
      }
    }
    for (; t < count; ++t) {
      float x[VEC];
      LoadVec<T, VEC>(b + int64_t{s_col[t]} * a.n + j, x);
#pragma unroll
      for (int r = 0; r < VEC; ++r) acc[r] = fmaf(s_val[t], x[r], acc[r]);
    }
  }
  if (active) StoreVec<VEC>(a, acc, row, j);
}

// ------------------------------------------------------------ nnz balanced

// First index i in [lo, hi) with row_ptr[i] >= value (hi if none).
__device__ __forceinline__ int64_t LowerBound(const int32_t* __restrict__ row_ptr, int64_t lo,
                                              int64_t hi, int64_t value) {
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (row_ptr[mid] < value) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// Sub-warp per chunk of `chunk` non-zeros [c*chunk, (c+1)*chunk). The chunk
// owns the rows that start inside it (the last chunk also the empty rows at
// the end). An owned row that ends inside is finished here; one that runs on
// is written raw to partials[2c+1]; the row that runs in from before is
// written raw to partials[2c]. The fix-up kernel sums those.
template <class T, int VEC, int LANES, int CPL>
__global__ void __launch_bounds__(256)
    NnzBalancedKernel(Args a, int64_t chunk, int64_t num_chunks, float* __restrict__ partials) {
  const int lane = threadIdx.x % LANES;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * (blockDim.x / LANES) + threadIdx.x / LANES;
  const int64_t tile0 = static_cast<int64_t>(blockIdx.y) * (LANES * VEC * CPL);
  if (c >= num_chunks) return;
  const unsigned mask = SubWarpMask<LANES>();
  const int64_t e_begin = c * chunk;
  const int64_t e_end = min(e_begin + chunk, a.nnz);
  const int64_t own_begin = LowerBound(a.row_ptr, 0, a.m, e_begin);
  const int64_t own_end = c == num_chunks - 1 ? a.m : LowerBound(a.row_ptr, own_begin, a.m, e_end);

  auto store_raw = [&](float* dst, const float(&acc)[CPL][VEC]) {
#pragma unroll
    for (int v = 0; v < CPL; ++v) {
      const int64_t j = tile0 + static_cast<int64_t>(v * LANES + lane) * VEC;
      if (j < a.n) {
#pragma unroll
        for (int r = 0; r < VEC; ++r) dst[j + r] = acc[v][r];
      }
    }
  };

  if (own_begin > 0) {
    const int64_t r = own_begin - 1;
    const int64_t r_end = a.row_ptr[r + 1];
    if (a.row_ptr[r] < e_begin && r_end > e_begin) {
      float acc[CPL][VEC] = {};
      AccumulateRange<T, VEC, LANES, CPL>(a, static_cast<int>(e_begin),
                                          static_cast<int>(min(r_end, e_end)), lane, mask, tile0,
                                          acc);
      store_raw(partials + (2 * c) * a.n, acc);
    }
  }
  for (int64_t r = own_begin; r < own_end; ++r) {
    const int64_t start = a.row_ptr[r], end = a.row_ptr[r + 1];
    float acc[CPL][VEC] = {};
    AccumulateRange<T, VEC, LANES, CPL>(a, static_cast<int>(start),
                                        static_cast<int>(min(end, e_end)), lane, mask, tile0, acc);
    if (end > e_end) {
      store_raw(partials + (2 * c + 1) * a.n, acc);
    } else {
#pragma unroll
      for (int v = 0; v < CPL; ++v) {
        const int64_t j = tile0 + static_cast<int64_t>(v * LANES + lane) * VEC;
        if (j < a.n) StoreVec<VEC>(a, acc[v], r, j);
      }
    }
  }
}

// One thread per (row, column): rows cut by chunk boundaries get their parts
// summed and finished.
__global__ void NnzBalancedFixupKernel(Args a, int64_t chunk, const float* __restrict__ partials) {
  const int64_t row = blockIdx.y * static_cast<int64_t>(gridDim.z) + blockIdx.z;
  if (row >= a.m) return;
  const int64_t start = a.row_ptr[row], end = a.row_ptr[row + 1];
  if (end == start) return;
  const int64_t c0 = start / chunk, c1 = (end - 1) / chunk;
  if (c0 == c1) return;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < a.n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = partials[(2 * c0 + 1) * a.n + j];
    for (int64_t c = c0 + 1; c <= c1; ++c) sum += partials[(2 * c) * a.n + j];
    a.c[row * a.n + j] = Finish(a, sum, row, j);
  }
}

// ------------------------------------------------------------ dispatch

template <class F>
cudaError_t WithType(ValueType t, F&& f) {
  switch (t) {
    case ValueType::kF16:
      return f(__half{});
    case ValueType::kBF16:
      return f(__nv_bfloat16{});
    default:
      return f(float{});
  }
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class T, int VEC, int LANES, int CPL>
cudaError_t WarpRowLaunch(const CsrSpmmProblem& p, cudaStream_t s,
                          const LongRowSplit* split = nullptr) {
  constexpr int kThreads = 256;
  const unsigned tiles = static_cast<unsigned>(CeilDiv(p.n, LANES * VEC * CPL));
  Args args = ArgsOf(p);
  if (split != nullptr) args.skip_longer_than = split->threshold;
  const dim3 grid(static_cast<unsigned>(CeilDiv(p.m, kThreads / LANES)), tiles);
  WarpRowKernel<T, VEC, LANES, CPL><<<grid, kThreads, 0, s>>>(args);
  if (split == nullptr || split->num_segs == 0) return cudaGetLastError();
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const dim3 seg_grid(static_cast<unsigned>(CeilDiv(split->num_segs, kThreads / LANES)), tiles);
  SegmentKernel<T, VEC, LANES, CPL><<<seg_grid, kThreads, 0, s>>>(
      args, split->seg_begin, split->seg_end, split->num_segs, split->partials);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const dim3 fin_grid(static_cast<unsigned>(CeilDiv(p.n, kFinishCols)),
                      static_cast<unsigned>(split->num_long));
  LongRowFinishKernel<<<fin_grid, dim3(kFinishCols, kFinishSplit), 0, s>>>(
      args, split->long_rows, split->row_seg, split->partials);
  return cudaGetLastError();
}

template <class T, int VEC, int LANES, int CPL>
cudaError_t NnzLaunch(const CsrSpmmProblem& p, int64_t chunk, float* partials, cudaStream_t s) {
  constexpr int kThreads = 256;
  const int64_t num_chunks = CeilDiv(p.nnz, chunk);
  const dim3 grid(static_cast<unsigned>(CeilDiv(num_chunks, kThreads / LANES)),
                  static_cast<unsigned>(CeilDiv(p.n, LANES * VEC * CPL)));
  NnzBalancedKernel<T, VEC, LANES, CPL>
      <<<grid, kThreads, 0, s>>>(ArgsOf(p), chunk, num_chunks, partials);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const unsigned fix_threads = static_cast<unsigned>(std::min<int64_t>(128, CeilDiv(p.n, 32) * 32));
  const unsigned rows_z = 1024;
  const dim3 fix_grid(static_cast<unsigned>(CeilDiv(p.n, fix_threads)),
                      static_cast<unsigned>(CeilDiv(p.m, rows_z)), rows_z);
  NnzBalancedFixupKernel<<<fix_grid, fix_threads, 0, s>>>(ArgsOf(p), chunk, partials);
  return cudaGetLastError();
}

// Calls f.template Launch<LANES, CPL>() for the supported shapes.
template <class F>
cudaError_t WithShape(int lanes, int vectors, const F& f) {
  if (lanes == 32 && vectors == 4) return f.template Launch<32, 4>();
  if (lanes == 32 && vectors == 2) return f.template Launch<32, 2>();
  if (lanes == 32) return f.template Launch<32, 1>();
  if (lanes == 16) return f.template Launch<16, 1>();
  if (lanes == 8) return f.template Launch<8, 1>();
  return f.template Launch<4, 1>();
}

template <class T>
struct WarpRowLauncher {
  const CsrSpmmProblem& p;
  bool aligned;
  cudaStream_t s;
  const LongRowSplit* split;
  template <int LANES, int CPL>
  cudaError_t Launch() const {
    return aligned ? WarpRowLaunch<T, kVec<T>, LANES, CPL>(p, s, split)
                   : WarpRowLaunch<T, 1, LANES, CPL>(p, s, split);
  }
};

template <class T>
struct NnzLauncher {
  const CsrSpmmProblem& p;
  bool aligned;
  int64_t chunk;
  float* partials;
  cudaStream_t s;
  template <int LANES, int CPL>
  cudaError_t Launch() const {
    return aligned ? NnzLaunch<T, kVec<T>, LANES, CPL>(p, chunk, partials, s)
                   : NnzLaunch<T, 1, LANES, CPL>(p, chunk, partials, s);
  }
};

template <class T, int VEC, int G>
cudaError_t NnzSplitLaunch(const CsrSpmmProblem& p, cudaStream_t s) {
  constexpr int kThreads = 256;
  const dim3 grid(static_cast<unsigned>(CeilDiv(p.m, kThreads / G)),
                  static_cast<unsigned>(CeilDiv(p.n, kSplitTile)));
  NnzSplitKernel<T, VEC, G><<<grid, kThreads, 0, s>>>(ArgsOf(p));
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchNnzSplit(const CsrSpmmProblem& p, int lanes, cudaStream_t s) {
  if (p.m == 0 || p.n == 0) return cudaSuccess;
  const bool aligned = VectorAligned(p);
  return WithType(p.type, [&](auto tag) {
    using T = decltype(tag);
    if (lanes == 32) {
      return aligned ? NnzSplitLaunch<T, kVec<T>, 32>(p, s) : NnzSplitLaunch<T, 1, 32>(p, s);
    }
    return aligned ? NnzSplitLaunch<T, kVec<T>, 8>(p, s) : NnzSplitLaunch<T, 1, 8>(p, s);
  });
}

bool VectorAligned(const CsrSpmmProblem& p) { return p.n % (16 / SizeOf(p.type)) == 0; }

void PickWarpRowShape(const CsrSpmmProblem& p, int* lanes, int* vectors) {
  const int64_t vec = VectorAligned(p) ? 16 / SizeOf(p.type) : 1;
  const int64_t needed = CeilDiv(p.n, vec);  // vectors across the row
  *lanes = needed <= 4 ? 4 : needed <= 8 ? 8 : needed <= 16 ? 16 : 32;
  *vectors = needed <= 32 ? 1 : needed <= 64 ? 2 : 4;
}

cudaError_t LaunchRowSplit(const CsrSpmmProblem& p, cudaStream_t s) {
  if (p.m == 0 || p.n == 0) return cudaSuccess;
  const bool aligned = VectorAligned(p);
  return WithType(p.type, [&](auto tag) {
    using T = decltype(tag);
    const unsigned grid = static_cast<unsigned>(CeilDiv(p.m, 128));
    if (aligned) {
      RowSplitKernel<T, kVec<T>><<<grid, 128, 0, s>>>(ArgsOf(p));
    } else {
      RowSplitKernel<T, 1><<<grid, 128, 0, s>>>(ArgsOf(p));
    }
    return cudaGetLastError();
  });
}

cudaError_t LaunchWarpRow(const CsrSpmmProblem& p, int lanes, int vectors, cudaStream_t s,
                          const LongRowSplit* split) {
  if (p.m == 0 || p.n == 0) return cudaSuccess;
  const bool aligned = VectorAligned(p);
  return WithType(p.type, [&](auto tag) {
    using T = decltype(tag);
    return WithShape(lanes, vectors, WarpRowLauncher<T>{p, aligned, s, split});
  });
}

cudaError_t LaunchBlockRow(const CsrSpmmProblem& p, cudaStream_t s) {
  if (p.m == 0 || p.n == 0) return cudaSuccess;
  const bool aligned = VectorAligned(p);
  return WithType(p.type, [&](auto tag) {
    using T = decltype(tag);
    const int vec = aligned ? kVec<T> : 1;
    const dim3 grid(static_cast<unsigned>(p.m),
                    static_cast<unsigned>(CeilDiv(p.n, kBlockRowThreads * vec)));
    if (aligned) {
      BlockRowKernel<T, kVec<T>><<<grid, kBlockRowThreads, 0, s>>>(ArgsOf(p));
    } else {
      BlockRowKernel<T, 1><<<grid, kBlockRowThreads, 0, s>>>(ArgsOf(p));
    }
    return cudaGetLastError();
  });
}

int64_t NnzBalancedPartialFloats(const CsrSpmmProblem& p, int64_t chunk) {
  return 2 * CeilDiv(std::max<int64_t>(p.nnz, 1), chunk) * p.n;
}

cudaError_t LaunchNnzBalanced(const CsrSpmmProblem& p, int64_t chunk, int lanes, float* partials,
                              cudaStream_t s) {
  if (p.m == 0 || p.n == 0) return cudaSuccess;
  int vectors = 1, row_lanes = 0;
  PickWarpRowShape(p, &row_lanes, &vectors);
  // Without non-zeros there are no chunks; every row is just finished.
  if (p.nnz == 0) return LaunchWarpRow(p, row_lanes, vectors, s);
  const bool aligned = VectorAligned(p);
  if (lanes != 32) vectors = 1;
  return WithType(p.type, [&](auto tag) {
    using T = decltype(tag);
    return WithShape(lanes, vectors, NnzLauncher<T>{p, aligned, chunk, partials, s});
  });
}

}  // namespace sparsed::cuda::kernels
