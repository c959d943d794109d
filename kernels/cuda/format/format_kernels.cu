#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <type_traits>

#include "device_helpers.cuh"
#include "format/format_kernels.h"

namespace sparsed::cuda::fmt {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
// A 1-D grid for `count` threads (grid-stride loops cover the rest).
unsigned GridFor(int64_t count) {
  return static_cast<unsigned>(std::clamp<int64_t>(CeilDiv(count, kThreads), 1, kMaxBlocks));
}
// A 1-D grid of one warp per row.
unsigned WarpGridFor(int64_t rows) { return GridFor(std::min<int64_t>(rows, kMaxBlocks) * 32); }

// First i in [0, n) with a[i] >= x (n when none).
template <class T>
__device__ int64_t LowerBound(const T* a, int64_t n, T x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}
// The row holding entry e: the last r with row_ptr[r] <= e.
__device__ int64_t RowOf(const int64_t* row_ptr, int64_t rows, int64_t e) {
  int64_t lo = 0, hi = rows + 1;  // first index with row_ptr[i] > e, minus one
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (row_ptr[mid] <= e) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo - 1;
}

// Values as raw words: uint32_t for f32, uint16_t for f16 / bf16.
__device__ __forceinline__ bool NonZero(uint32_t w) { return (w & 0x7fffffffu) != 0; }
__device__ __forceinline__ bool NonZero(uint16_t w) { return (w & 0x7fffu) != 0; }

// |w| as the bits of an f32 (non-negative floats order like their bits).
__device__ __forceinline__ uint32_t AbsBits(uint32_t w, ValueType t) {
  if (t == ValueType::kF32) return w & 0x7fffffffu;
  if (t == ValueType::kBF16) return (w << 16) & 0x7fffffffu;
  return __float_as_uint(__half2float(__ushort_as_half(static_cast<unsigned short>(w)))) &
         0x7fffffffu;
}
__device__ __forceinline__ double ToDouble(uint32_t w, ValueType t) {
  if (t == ValueType::kF32) return __uint_as_float(w);
  if (t == ValueType::kBF16) return __uint_as_float(w << 16);
  return __half2float(__ushort_as_half(static_cast<unsigned short>(w)));
}

// Calls f(Word{}) with the word type of `elem_bytes`.
template <class F>
void ByWord(int elem_bytes, F&& f) {
  if (elem_bytes == 4) {
    f(uint32_t{});
  } else {
    f(uint16_t{});
  }
}

// ------------------------------------------------------------- indices

template <class In, class Out>
__global__ void CopyIndicesKernel(const In* __restrict__ in, Out* __restrict__ out, int64_t n) {
  for (int64_t i = ThreadIndex(); i < n; i += ThreadCount()) out[i] = static_cast<Out>(in[i]);
}

__global__ void IotaKernel(int64_t* out, int64_t n) {
  for (int64_t i = ThreadIndex(); i < n; i += ThreadCount()) out[i] = i;
}

__global__ void RowPtrFromSortedKernel(const int64_t* __restrict__ rows, int64_t nnz, int64_t nrows,
                                       int64_t* __restrict__ row_ptr) {
  for (int64_t r = ThreadIndex(); r <= nrows; r += ThreadCount()) {
    row_ptr[r] = LowerBound(rows, nnz, r);
  }
}

__global__ void ExpandRowsKernel(const int64_t* __restrict__ row_ptr, int64_t nrows, int64_t nnz,
                                 int64_t* __restrict__ rows) {
  for (int64_t e = ThreadIndex(); e < nnz; e += ThreadCount()) rows[e] = RowOf(row_ptr, nrows, e);
}

template <class T>
__global__ void GatherKernel(const T* __restrict__ in, const int64_t* __restrict__ perm,
                             T* __restrict__ out, int64_t n) {
  for (int64_t i = ThreadIndex(); i < n; i += ThreadCount()) out[i] = in[perm[i]];
}

// ------------------------------------------------------ row compaction

template <class W>
struct DenseSource {
  using Word = W;
  const W* v;
  int64_t cols;
  __device__ int64_t Len(int64_t) const { return cols; }
  __device__ bool Get(int64_t r, int64_t t, int64_t* col, W* val) const {
    *col = t;
    *val = v[r * cols + t];
    return NonZero(*val);
  }
};

template <class W>
struct CsrSource {
  using Word = W;
  const int64_t* row_ptr;
  const int64_t* col_idx;
  const W* v;
  const uint8_t* flags;
  __device__ int64_t Len(int64_t r) const { return row_ptr[r + 1] - row_ptr[r]; }
  __device__ bool Get(int64_t r, int64_t t, int64_t* col, W* val) const {
    const int64_t e = row_ptr[r] + t;
    *col = col_idx[e];
    *val = v[e];
    return flags != nullptr ? flags[e] != 0 : NonZero(*val);
  }
};

template <class W>
struct BsrSource {
  using Word = W;
  BsrArrays a;
  __device__ int64_t Len(int64_t r) const {
    const int64_t br = r / a.block_rows;
    return (a.block_row_ptr[br + 1] - a.block_row_ptr[br]) * a.block_cols;
  }
  __device__ bool Get(int64_t r, int64_t t, int64_t* col, W* val) const {
    const int64_t br = r / a.block_rows, rr = r % a.block_rows;
    const int64_t b = a.block_row_ptr[br] + t / a.block_cols, cc = t % a.block_cols;
    *col = a.block_col_idx[b] * a.block_cols + cc;
    if (*col >= a.cols) return false;  // edge padding
    *val = static_cast<const W*>(a.values)[(b * a.block_rows + rr) * a.block_cols + cc];
    return NonZero(*val);
  }
};

__device__ __forceinline__ int NmPosition(const NmArrays& a, int64_t r, int64_t g, int s) {
  if (a.packed) {
    const int64_t words = (a.groups + 7) / 8;
    const uint32_t word = static_cast<uint32_t>(a.meta[r * words + g / 8]);
    return static_cast<int>((word >> (4 * (g % 8) + 2 * s)) & 3u);
  }
  return a.meta[(r * a.groups + g) * a.n + s];
}

template <class W>
struct NmSource {
  using Word = W;
  NmArrays a;
  __device__ int64_t Len(int64_t) const { return a.groups * a.n; }
  __device__ bool Get(int64_t r, int64_t t, int64_t* col, W* val) const {
    const int64_t g = t / a.n;
    const int s = static_cast<int>(t % a.n);
    *col = g * a.m + NmPosition(a, r, g, s);
    *val = static_cast<const W*>(a.values)[r * a.groups * a.n + t];
    return NonZero(*val);
  }
};

// One warp per row: ballot the kept candidates of 32 at a time, in order.
template <class Src, bool kFill>
__global__ void CompactKernel(Src src, int64_t rows, int64_t* __restrict__ counts,
                              const int64_t* __restrict__ row_ptr, int64_t* __restrict__ col_out,
                              typename Src::Word* __restrict__ val_out) {
  using W = typename Src::Word;
  const int lane = threadIdx.x & 31;
  const int64_t warps = ThreadCount() / 32;
  for (int64_t r = ThreadIndex() / 32; r < rows; r += warps) {
    const int64_t len = src.Len(r);
    int64_t base = kFill ? row_ptr[r] : 0;
    for (int64_t t0 = 0; t0 < len; t0 += 32) {
      const int64_t t = t0 + lane;
      int64_t col = 0;
      W val{};
      const bool keep = t < len && src.Get(r, t, &col, &val);
      const unsigned mask = __ballot_sync(0xffffffffu, keep);
      if (kFill && keep) {
        const int64_t pos = base + __popc(mask & ((1u << lane) - 1u));
        col_out[pos] = col;
        val_out[pos] = val;
      }
      base += __popc(mask);
    }
    if (!kFill && lane == 0) counts[r] = base;
  }
  if (!kFill && ThreadIndex() == 0) counts[rows] = 0;
}

template <class Src>
cudaError_t LaunchCount(const Src& src, int64_t rows, int64_t* counts, cudaStream_t stream) {
  CompactKernel<Src, false>
      <<<WarpGridFor(rows), kThreads, 0, stream>>>(src, rows, counts, nullptr, nullptr, nullptr);
  return cudaGetLastError();
}

template <class Src>
cudaError_t LaunchFill(const Src& src, int64_t rows, const int64_t* row_ptr, int64_t* col_idx,
                       void* values, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  CompactKernel<Src, true><<<WarpGridFor(rows), kThreads, 0, stream>>>(
      src, rows, nullptr, row_ptr, col_idx, static_cast<typename Src::Word*>(values));
  return cudaGetLastError();
}

// ------------------------------------------------------- hub → formats

template <class W>
__global__ void ScatterDenseKernel(const int64_t* __restrict__ row_ptr,
                                   const int64_t* __restrict__ col_idx, const W* __restrict__ v,
                                   int64_t rows, int64_t cols, int64_t nnz, W* __restrict__ dense) {
  for (int64_t e = ThreadIndex(); e < nnz; e += ThreadCount()) {
    dense[RowOf(row_ptr, rows, e) * cols + col_idx[e]] = v[e];
  }
}

__global__ void BlockKeysKernel(const int64_t* __restrict__ row_ptr,
                                const int64_t* __restrict__ col_idx, int64_t rows, int64_t nnz,
                                int64_t R, int64_t C, int64_t nbc, uint64_t* __restrict__ keys) {
  for (int64_t e = ThreadIndex(); e < nnz; e += ThreadCount()) {
    const int64_t r = RowOf(row_ptr, rows, e);
    keys[e] = static_cast<uint64_t>((r / R) * nbc + col_idx[e] / C);
  }
}

__global__ void BlockStructureKernel(const uint64_t* __restrict__ keys, int64_t nblocks,
                                     int64_t nbr, int64_t nbc, int64_t* __restrict__ brp,
                                     int64_t* __restrict__ bci) {
  const int64_t n = max(nblocks, nbr + 1);
  for (int64_t i = ThreadIndex(); i < n; i += ThreadCount()) {
    if (i <= nbr) brp[i] = LowerBound(keys, nblocks, static_cast<uint64_t>(i * nbc));
    if (i < nblocks) bci[i] = static_cast<int64_t>(keys[i] % static_cast<uint64_t>(nbc));
  }
}

template <class W>
__global__ void BsrScatterKernel(const int64_t* __restrict__ row_ptr,
                                 const int64_t* __restrict__ col_idx, const W* __restrict__ v,
                                 int64_t rows, int64_t nnz, int64_t R, int64_t C, int64_t nbc,
                                 const uint64_t* __restrict__ keys, int64_t nblocks,
                                 W* __restrict__ blocks) {
  for (int64_t e = ThreadIndex(); e < nnz; e += ThreadCount()) {
    const int64_t r = RowOf(row_ptr, rows, e), c = col_idx[e];
    const int64_t b = LowerBound(keys, nblocks, static_cast<uint64_t>((r / R) * nbc + c / C));
    blocks[(b * R + r % R) * C + c % C] = v[e];
  }
}

template <class W>
__global__ void NmFromCsrKernel(const int64_t* __restrict__ row_ptr,
                                const int64_t* __restrict__ col_idx, const W* __restrict__ v,
                                int64_t rows, int64_t groups, int n, int m, bool packed,
                                W* __restrict__ out, int32_t* __restrict__ meta,
                                unsigned long long* bad_group) {
  const int64_t total = rows * groups;
  const int64_t words = (groups + 7) / 8;
  for (int64_t q = ThreadIndex(); q < total; q += ThreadCount()) {
    const int64_t r = q / groups, g = q % groups;
    const int64_t lo = row_ptr[r], hi = row_ptr[r + 1];
    const int64_t first = g * m, last = first + m;
    const int64_t e0 = lo + LowerBound(col_idx + lo, hi - lo, first);
    uint32_t taken = 0;
    int count = 0;
    // Stored zeros count as empty positions (as on the host): only non-zero
    // entries take slots and count toward n.
    for (int64_t e = e0; e < hi && col_idx[e] < last; ++e) {
      if (!NonZero(v[e])) continue;
      taken |= 1u << (col_idx[e] - first);
      ++count;
    }
    if (count > n) {
      atomicMin(bad_group, static_cast<unsigned long long>(q));
      continue;
    }
    uint32_t fill = 0;
    for (int p = 0, need = n - count; p < m && need > 0; ++p) {
      if (!((taken >> p) & 1u)) {
        fill |= 1u << p;
        --need;
      }
    }
    int slot = 0;
    int64_t e = e0;
    uint32_t nibble = 0;
    for (int p = 0; p < m; ++p) {
      W val;
      if ((taken >> p) & 1u) {
        while (col_idx[e] - first < p) ++e;  // entries are sorted; p has one
        val = v[e];
      } else if ((fill >> p) & 1u) {
        val = W{0};
      } else {
        continue;
      }
      out[q * n + slot] = val;
      if (packed) {
        nibble |= static_cast<uint32_t>(p) << (2 * slot);
      } else {
        meta[q * n + slot] = p;
      }
      ++slot;
    }
    if (packed) atomicOr(&meta[r * words + g / 8], static_cast<int>(nibble << (4 * (g % 8))));
  }
}

// ------------------------------------------------------------ transposes

template <class W>
__global__ void DenseTransposeKernel(const W* __restrict__ in, W* __restrict__ out, int64_t rows,
                                     int64_t cols) {
  __shared__ W tile[32][33];
  const int64_t tiles_c = (cols + 31) / 32, tiles = tiles_c * ((rows + 31) / 32);
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {  // uniform per block
    const int64_t r0 = (t / tiles_c) * 32, c0 = (t % tiles_c) * 32;
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
      const int64_t r = r0 + i, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[i][threadIdx.x] = in[r * cols + c];
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += blockDim.y) {
      const int64_t c = c0 + i, r = r0 + threadIdx.x;
      if (r < rows && c < cols) out[c * rows + r] = tile[threadIdx.x][i];
    }
    __syncthreads();
  }
}

template <class W>
__global__ void BlockTransposeKernel(const W* __restrict__ in, const int64_t* __restrict__ perm,
                                     int64_t nblocks, int64_t R, int64_t C, W* __restrict__ out) {
  const int64_t size = R * C, total = nblocks * size;
  for (int64_t i = ThreadIndex(); i < total; i += ThreadCount()) {
    const int64_t p = i / size, rem = i % size;
    const int64_t c = rem / R, r = rem % R;  // out block is C x R
    out[i] = in[(perm[p] * R + r) * C + c];
  }
}

// --------------------------------------------------------------- pruning

template <class W>
__global__ void MagnitudeKeysKernel(const int64_t* __restrict__ row_ptr, const W* __restrict__ v,
                                    ValueType type, int64_t rows, int64_t nnz, bool per_row,
                                    uint64_t* __restrict__ keys) {
  for (int64_t e = ThreadIndex(); e < nnz; e += ThreadCount()) {
    const uint64_t inv = 0xffffffffu - AbsBits(v[e], type);
    keys[e] = per_row ? (static_cast<uint64_t>(RowOf(row_ptr, rows, e)) << 32) | inv : inv;
  }
}

__global__ void MarkKeptKernel(const int64_t* __restrict__ perm,
                               const int64_t* __restrict__ row_ptr, int64_t rows, int64_t nnz,
                               bool per_row, int64_t keep, uint8_t* __restrict__ flags) {
  for (int64_t p = ThreadIndex(); p < nnz; p += ThreadCount()) {
    const int64_t e = perm[p];
    // Sorted by row first, row r's entries occupy [row_ptr[r], row_ptr[r+1]).
    const int64_t rank = per_row ? p - row_ptr[RowOf(row_ptr, rows, e)] : p;
    if (rank < keep) flags[e] = 1;
  }
}

template <class W>
__global__ void NmPruneKernel(const W* __restrict__ dense, ValueType type, int64_t rows,
                              int64_t cols, int n, int m, bool packed, W* __restrict__ out,
                              int32_t* __restrict__ meta) {
  const int64_t groups = cols / m, total = rows * groups, words = (groups + 7) / 8;
  for (int64_t q = ThreadIndex(); q < total; q += ThreadCount()) {
    const int64_t r = q / groups, g = q % groups;
    const W* in = dense + r * cols + g * m;
    uint32_t chosen = 0;
    for (int k = 0; k < n; ++k) {
      int best = -1;
      uint32_t best_abs = 0;
      for (int p = 0; p < m; ++p) {
        if ((chosen >> p) & 1u) continue;
        const uint32_t a = AbsBits(in[p], type);
        if (best < 0 || a > best_abs) {  // strict: ties keep the smaller position
          best = p;
          best_abs = a;
        }
      }
      chosen |= 1u << best;
    }
    int slot = 0;
    uint32_t nibble = 0;
    for (int p = 0; p < m; ++p) {
      if (!((chosen >> p) & 1u)) continue;
      out[q * n + slot] = in[p];
      if (packed) {
        nibble |= static_cast<uint32_t>(p) << (2 * slot);
      } else {
        meta[q * n + slot] = p;
      }
      ++slot;
    }
    if (packed) atomicOr(&meta[r * words + g / 8], static_cast<int>(nibble << (4 * (g % 8))));
  }
}

template <class W>
__global__ void FirstNanKernel(const W* __restrict__ v, ValueType type, int64_t count,
                               unsigned long long* first) {
  for (int64_t e = ThreadIndex(); e < count; e += ThreadCount()) {
    if (AbsBits(v[e], type) > 0x7f800000u) atomicMin(first, static_cast<unsigned long long>(e));
  }
}

template <class W>
__global__ void BlockNormsKernel(const W* __restrict__ dense, ValueType type, int64_t rows,
                                 int64_t cols, int64_t R, int64_t C, int64_t nbr, int64_t nbc,
                                 double* __restrict__ norms, uint64_t* __restrict__ keys) {
  for (int64_t q = ThreadIndex(); q < nbr * nbc; q += ThreadCount()) {
    const int64_t r0 = (q / nbc) * R, c0 = (q % nbc) * C;
    const int64_t r1 = min(rows, r0 + R), c1 = min(cols, c0 + C);
    double s = 0.0;
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t c = c0; c < c1; ++c) {
        const double x = ToDouble(dense[r * cols + c], type);
        s = __dadd_rn(s, __dmul_rn(x, x));  // no FMA: the host sums the same way
      }
    }
    // Ranked on the squared norm, as the host does (a square root could make
    // two distinct sums equal and change the tie-break).
    norms[q] = s;
    keys[q] = ~static_cast<uint64_t>(__double_as_longlong(s));
  }
}

__global__ void MarkKeptBlocksKernel(const int64_t* __restrict__ perm,
                                     const double* __restrict__ norms, int64_t keep,
                                     uint8_t* __restrict__ flags) {
  for (int64_t p = ThreadIndex(); p < keep; p += ThreadCount()) {
    const int64_t q = perm[p];
    if (norms[q] != 0.0) flags[q] = 1;
  }
}

__global__ void FlagsToCountsKernel(const uint8_t* __restrict__ flags, int64_t count,
                                    int64_t* __restrict__ out) {
  for (int64_t i = ThreadIndex(); i <= count; i += ThreadCount()) {
    out[i] = i < count ? flags[i] : 0;
  }
}

__global__ void KeptBlockStructureKernel(const uint8_t* __restrict__ flags,
                                         const int64_t* __restrict__ scan, int64_t nbr, int64_t nbc,
                                         int64_t* __restrict__ brp, int64_t* __restrict__ bci,
                                         int64_t* __restrict__ pos) {
  const int64_t total = nbr * nbc, n = max(total, nbr + 1);
  for (int64_t i = ThreadIndex(); i < n; i += ThreadCount()) {
    if (i < total && flags[i]) {
      const int64_t b = scan[i];
      bci[b] = i % nbc;
      pos[b] = i;
    }
    if (i <= nbr) brp[i] = scan[i * nbc];
  }
}

template <class W>
__global__ void GatherBlocksKernel(const W* __restrict__ dense, int64_t rows, int64_t cols,
                                   int64_t R, int64_t C, int64_t nbc,
                                   const int64_t* __restrict__ pos, int64_t nblocks,
                                   W* __restrict__ out) {
  const int64_t size = R * C, total = nblocks * size;
  for (int64_t idx = ThreadIndex(); idx < total; idx += ThreadCount()) {
    const int64_t b = idx / size, rem = idx % size;
    const int64_t q = pos[b];
    const int64_t r = (q / nbc) * R + rem / C, c = (q % nbc) * C + rem % C;
    out[idx] = r < rows && c < cols ? dense[r * cols + c] : W{0};
  }
}

}  // namespace

// ----------------------------------------------------------- launchers

cudaError_t CopyIndices(const void* in, bool in64, void* out, bool out64, int64_t count,
                        cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (in64 == out64) {
    return cudaMemcpyAsync(out, in, count * (in64 ? 8 : 4), cudaMemcpyDeviceToDevice, stream);
  }
  if (in64) {
    CopyIndicesKernel<<<GridFor(count), kThreads, 0, stream>>>(static_cast<const int64_t*>(in),
                                                               static_cast<int32_t*>(out), count);
  } else {
    CopyIndicesKernel<<<GridFor(count), kThreads, 0, stream>>>(static_cast<const int32_t*>(in),
                                                               static_cast<int64_t*>(out), count);
  }
  return cudaGetLastError();
}

cudaError_t Iota(int64_t* out, int64_t count, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  IotaKernel<<<GridFor(count), kThreads, 0, stream>>>(out, count);
  return cudaGetLastError();
}

cudaError_t RowPtrFromSorted(const int64_t* rows, int64_t nnz, int64_t nrows, int64_t* row_ptr,
                             cudaStream_t stream) {
  RowPtrFromSortedKernel<<<GridFor(nrows + 1), kThreads, 0, stream>>>(rows, nnz, nrows, row_ptr);
  return cudaGetLastError();
}

cudaError_t ExpandRows(const int64_t* row_ptr, int64_t nrows, int64_t nnz, int64_t* rows,
                       cudaStream_t stream) {
  if (nnz == 0) return cudaSuccess;
  ExpandRowsKernel<<<GridFor(nnz), kThreads, 0, stream>>>(row_ptr, nrows, nnz, rows);
  return cudaGetLastError();
}

cudaError_t GatherIndices(const int64_t* in, const int64_t* perm, int64_t* out, int64_t count,
                          cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  GatherKernel<<<GridFor(count), kThreads, 0, stream>>>(in, perm, out, count);
  return cudaGetLastError();
}

cudaError_t GatherValues(const void* in, int elem_bytes, const int64_t* perm, void* out,
                         int64_t count, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    GatherKernel<<<GridFor(count), kThreads, 0, stream>>>(static_cast<const W*>(in), perm,
                                                          static_cast<W*>(out), count);
  });
  return cudaGetLastError();
}

cudaError_t DenseNonzeroCount(const void* dense, int elem_bytes, int64_t rows, int64_t cols,
                              int64_t* counts, cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    err = LaunchCount(DenseSource<W>{static_cast<const W*>(dense), cols}, rows, counts, stream);
  });
  return err;
}

cudaError_t DenseNonzeroFill(const void* dense, int elem_bytes, int64_t rows, int64_t cols,
                             const int64_t* row_ptr, int64_t* col_idx, void* values,
                             cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    err = LaunchFill(DenseSource<W>{static_cast<const W*>(dense), cols}, rows, row_ptr, col_idx,
                     values, stream);
  });
  return err;
}

cudaError_t CsrKeepCount(const int64_t* row_ptr, const int64_t* col_idx, const void* values,
                         int elem_bytes, const uint8_t* flags, int64_t rows, int64_t* counts,
                         cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    err = LaunchCount(CsrSource<W>{row_ptr, col_idx, static_cast<const W*>(values), flags}, rows,
                      counts, stream);
  });
  return err;
}

cudaError_t CsrKeepFill(const int64_t* in_row_ptr, const int64_t* in_col_idx, const void* in_values,
                        int elem_bytes, const uint8_t* flags, int64_t rows, const int64_t* row_ptr,
                        int64_t* col_idx, void* values, cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    err = LaunchFill(CsrSource<W>{in_row_ptr, in_col_idx, static_cast<const W*>(in_values), flags},
                     rows, row_ptr, col_idx, values, stream);
  });
  return err;
}

cudaError_t BsrNonzeroCount(const BsrArrays& a, int elem_bytes, int64_t rows, int64_t* counts,
                            cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  ByWord(elem_bytes,
         [&](auto w) { err = LaunchCount(BsrSource<decltype(w)>{a}, rows, counts, stream); });
  return err;
}

cudaError_t BsrNonzeroFill(const BsrArrays& a, int elem_bytes, int64_t rows, const int64_t* row_ptr,
                           int64_t* col_idx, void* values, cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    err = LaunchFill(BsrSource<decltype(w)>{a}, rows, row_ptr, col_idx, values, stream);
  });
  return err;
}

cudaError_t NmNonzeroCount(const NmArrays& a, int elem_bytes, int64_t rows, int64_t* counts,
                           cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  ByWord(elem_bytes,
         [&](auto w) { err = LaunchCount(NmSource<decltype(w)>{a}, rows, counts, stream); });
  return err;
}

cudaError_t NmNonzeroFill(const NmArrays& a, int elem_bytes, int64_t rows, const int64_t* row_ptr,
                          int64_t* col_idx, void* values, cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    err = LaunchFill(NmSource<decltype(w)>{a}, rows, row_ptr, col_idx, values, stream);
  });
  return err;
}

cudaError_t CsrScatterDense(const int64_t* row_ptr, const int64_t* col_idx, const void* values,
                            int elem_bytes, int64_t rows, int64_t cols, int64_t nnz, void* dense,
                            cudaStream_t stream) {
  if (nnz == 0) return cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    ScatterDenseKernel<<<GridFor(nnz), kThreads, 0, stream>>>(
        row_ptr, col_idx, static_cast<const W*>(values), rows, cols, nnz, static_cast<W*>(dense));
  });
  return cudaGetLastError();
}

cudaError_t BlockKeys(const int64_t* row_ptr, const int64_t* col_idx, int64_t rows, int64_t nnz,
                      int64_t R, int64_t C, int64_t block_col_count, uint64_t* keys,
                      cudaStream_t stream) {
  if (nnz == 0) return cudaSuccess;
  BlockKeysKernel<<<GridFor(nnz), kThreads, 0, stream>>>(row_ptr, col_idx, rows, nnz, R, C,
                                                         block_col_count, keys);
  return cudaGetLastError();
}

cudaError_t BlockStructure(const uint64_t* keys, int64_t nblocks, int64_t block_row_count,
                           int64_t block_col_count, int64_t* block_row_ptr, int64_t* block_col_idx,
                           cudaStream_t stream) {
  BlockStructureKernel<<<GridFor(std::max(nblocks, block_row_count + 1)), kThreads, 0, stream>>>(
      keys, nblocks, block_row_count, block_col_count, block_row_ptr, block_col_idx);
  return cudaGetLastError();
}

cudaError_t BsrScatter(const int64_t* row_ptr, const int64_t* col_idx, const void* values,
                       int elem_bytes, int64_t rows, int64_t nnz, int64_t R, int64_t C,
                       int64_t block_col_count, const uint64_t* keys, int64_t nblocks, void* blocks,
                       cudaStream_t stream) {
  if (nnz == 0) return cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    BsrScatterKernel<<<GridFor(nnz), kThreads, 0, stream>>>(
        row_ptr, col_idx, static_cast<const W*>(values), rows, nnz, R, C, block_col_count, keys,
        nblocks, static_cast<W*>(blocks));
  });
  return cudaGetLastError();
}

cudaError_t NmFromCsr(const int64_t* row_ptr, const int64_t* col_idx, const void* values,
                      int elem_bytes, int64_t rows, int64_t groups, int n, int m, bool packed,
                      void* out_values, int32_t* meta, unsigned long long* bad_group,
                      cudaStream_t stream) {
  if (rows * groups == 0) return cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    NmFromCsrKernel<<<GridFor(rows * groups), kThreads, 0, stream>>>(
        row_ptr, col_idx, static_cast<const W*>(values), rows, groups, n, m, packed,
        static_cast<W*>(out_values), meta, bad_group);
  });
  return cudaGetLastError();
}

cudaError_t DenseTranspose(const void* in, int elem_bytes, int64_t rows, int64_t cols, void* out,
                           cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const int64_t tiles = CeilDiv(rows, 32) * CeilDiv(cols, 32);
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(tiles, kMaxBlocks));
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    DenseTransposeKernel<<<grid, dim3(32, 8), 0, stream>>>(static_cast<const W*>(in),
                                                           static_cast<W*>(out), rows, cols);
  });
  return cudaGetLastError();
}

cudaError_t BlockTransposeValues(const void* in, int elem_bytes, const int64_t* perm,
                                 int64_t nblocks, int64_t R, int64_t C, void* out,
                                 cudaStream_t stream) {
  const int64_t total = nblocks * R * C;
  if (total == 0) return cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    BlockTransposeKernel<<<GridFor(total), kThreads, 0, stream>>>(
        static_cast<const W*>(in), perm, nblocks, R, C, static_cast<W*>(out));
  });
  return cudaGetLastError();
}

cudaError_t MagnitudeKeys(const int64_t* row_ptr, const void* values, ValueType type, int64_t rows,
                          int64_t nnz, bool per_row, uint64_t* keys, cudaStream_t stream) {
  if (nnz == 0) return cudaSuccess;
  ByWord(static_cast<int>(SizeOf(type)), [&](auto w) {
    using W = decltype(w);
    MagnitudeKeysKernel<<<GridFor(nnz), kThreads, 0, stream>>>(
        row_ptr, static_cast<const W*>(values), type, rows, nnz, per_row, keys);
  });
  return cudaGetLastError();
}

cudaError_t MarkKept(const int64_t* perm, const int64_t* row_ptr, int64_t rows, int64_t nnz,
                     bool per_row, int64_t keep, uint8_t* flags, cudaStream_t stream) {
  if (nnz == 0 || keep <= 0) return cudaSuccess;
  MarkKeptKernel<<<GridFor(nnz), kThreads, 0, stream>>>(perm, row_ptr, rows, nnz, per_row, keep,
                                                        flags);
  return cudaGetLastError();
}

cudaError_t FirstNan(const void* values, ValueType type, int64_t count, int64_t* first,
                     cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const auto run = [&](auto w) {
    using W = decltype(w);
    FirstNanKernel<<<GridFor(count), kThreads, 0, stream>>>(
        static_cast<const W*>(values), type, count, reinterpret_cast<unsigned long long*>(first));
  };
  if (type == ValueType::kF32) {
    run(uint32_t{});
  } else {
    run(uint16_t{});
  }
  return cudaGetLastError();
}

cudaError_t NmPruneDense(const void* dense, ValueType type, int64_t rows, int64_t cols, int n,
                         int m, bool packed, void* out_values, int32_t* meta, cudaStream_t stream) {
  const int64_t total = rows * (cols / m);
  if (total == 0) return cudaSuccess;
  ByWord(static_cast<int>(SizeOf(type)), [&](auto w) {
    using W = decltype(w);
    NmPruneKernel<<<GridFor(total), kThreads, 0, stream>>>(static_cast<const W*>(dense), type, rows,
                                                           cols, n, m, packed,
                                                           static_cast<W*>(out_values), meta);
  });
  return cudaGetLastError();
}

cudaError_t BlockNorms(const void* dense, ValueType type, int64_t rows, int64_t cols, int64_t R,
                       int64_t C, int64_t block_row_count, int64_t block_col_count, double* norms,
                       uint64_t* keys, cudaStream_t stream) {
  const int64_t total = block_row_count * block_col_count;
  if (total == 0) return cudaSuccess;
  ByWord(static_cast<int>(SizeOf(type)), [&](auto w) {
    using W = decltype(w);
    BlockNormsKernel<<<GridFor(total), kThreads, 0, stream>>>(static_cast<const W*>(dense), type,
                                                              rows, cols, R, C, block_row_count,
                                                              block_col_count, norms, keys);
  });
  return cudaGetLastError();
}

cudaError_t MarkKeptBlocks(const int64_t* perm, const double* norms, int64_t keep, uint8_t* flags,
                           cudaStream_t stream) {
  if (keep <= 0) return cudaSuccess;
  MarkKeptBlocksKernel<<<GridFor(keep), kThreads, 0, stream>>>(perm, norms, keep, flags);
  return cudaGetLastError();
}

cudaError_t FlagsToCounts(const uint8_t* flags, int64_t count, int64_t* out, cudaStream_t stream) {
  FlagsToCountsKernel<<<GridFor(count + 1), kThreads, 0, stream>>>(flags, count, out);
  return cudaGetLastError();
}

cudaError_t KeptBlockStructure(const uint8_t* flags, const int64_t* scan, int64_t block_row_count,
                               int64_t block_col_count, int64_t* block_row_ptr,
                               int64_t* block_col_idx, int64_t* block_pos, cudaStream_t stream) {
  const int64_t n = std::max(block_row_count * block_col_count, block_row_count + 1);
  KeptBlockStructureKernel<<<GridFor(n), kThreads, 0, stream>>>(
      flags, scan, block_row_count, block_col_count, block_row_ptr, block_col_idx, block_pos);
  return cudaGetLastError();
}

cudaError_t GatherBlocks(const void* dense, int elem_bytes, int64_t rows, int64_t cols, int64_t R,
                         int64_t C, int64_t block_col_count, const int64_t* block_pos,
                         int64_t nblocks, void* out, cudaStream_t stream) {
  const int64_t total = nblocks * R * C;
  if (total == 0) return cudaSuccess;
  ByWord(elem_bytes, [&](auto w) {
    using W = decltype(w);
    GatherBlocksKernel<<<GridFor(total), kThreads, 0, stream>>>(
        static_cast<const W*>(dense), rows, cols, R, C, block_col_count, block_pos, nblocks,
        static_cast<W*>(out));
  });
  return cudaGetLastError();
}

}  // namespace sparsed::cuda::fmt
