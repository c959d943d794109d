#include "spmm/nm_decode.h"
#include "spmm/nm_tc_common.cuh"

namespace sparsed::cuda::kernels {
namespace {

using u16 = unsigned short;
using i64 = long long;

constexpr int kWarps = 8;  // rows per CTA, one per warp
// Words each lane has in flight before it multiplies: the weight stream is
// all the kernel waits for, so a lane keeps this many 36-byte loads (two
// 16-byte value loads and a metadata word) outstanding.
constexpr int kAhead = 2;

template <bool kBf16>
__device__ __forceinline__ float ToFloat(unsigned h) {
  if constexpr (kBf16) {
    return __uint_as_float(h << 16);
  } else {
    return __half2float(__ushort_as_half(static_cast<u16>(h)));
  }
}

// Element `pos` (0-3) of a group of four 16-bit values held in two words.
__device__ __forceinline__ unsigned Pick(unsigned lo, unsigned hi, unsigned pos) {
  const unsigned w = (pos & 2) ? hi : lo;
  return (pos & 1) ? (w >> 16) : (w & 0xFFFFu);
}

struct DecodeParams {
  const u16* a;          // [m][k/2]
  const unsigned* meta;  // [m][ceil(k/32)]
  const u16* b;          // X [n][ldb] (b_nmajor) or B [k][ldb]
  i64 ldb, m, n, k;
  bool b_nmajor, vec_a, vec_b;
  NmOut o;
};

// The 32 dense values of column t at logical k 32w .. 32w + 31 (of which
// the first `groups` groups of four exist), as 16 words.
template <int kGroups>
__device__ __forceinline__ void LoadColumn(const DecodeParams& p, int t, i64 w, int groups,
                                           unsigned* x) {
  if (kGroups == 8 && p.vec_b) {
    const uint4* src = reinterpret_cast<const uint4*>(p.b + t * p.ldb + 32 * w);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint4 v = __ldg(src + i);
      x[4 * i] = v.x;
      x[4 * i + 1] = v.y;
      x[4 * i + 2] = v.z;
      x[4 * i + 3] = v.w;
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    unsigned lo = 0, hi = 0;
    if (i / 2 < groups) {
      const i64 kk = 32 * w + 2 * i;
      lo = p.b_nmajor ? p.b[t * p.ldb + kk] : p.b[kk * p.ldb + t];
      hi = p.b_nmajor ? p.b[t * p.ldb + kk + 1] : p.b[(kk + 1) * p.ldb + t];
    }
    x[i] = lo | (hi << 16);
  }
}

// The stored values of word w of the row (16, or 2 per existing group).
__device__ __forceinline__ void LoadValues(const DecodeParams& p, const u16* arow, i64 w,
                                           int groups, unsigned* av) {
  if (groups == 8 && p.vec_a) {
    const uint4* src = reinterpret_cast<const uint4*>(arow + 16 * w);
    const uint4 v0 = __ldg(src), v1 = __ldg(src + 1);
    av[0] = v0.x, av[1] = v0.y, av[2] = v0.z, av[3] = v0.w;
    av[4] = v1.x, av[5] = v1.y, av[6] = v1.z, av[7] = v1.w;
    return;
  }
#pragma unroll
  for (int g = 0; g < 8; ++g) {
    av[g] = g < groups ? static_cast<unsigned>(arow[16 * w + 2 * g]) |
                             (static_cast<unsigned>(arow[16 * w + 2 * g + 1]) << 16)
                       : 0u;
  }
}

// acc[t] += the word's 16 stored values times the dense values they select.
template <bool kBf16, int T, int kGroups>
__device__ __forceinline__ void MultiplyWord(const DecodeParams& p, i64 w, int groups, unsigned mw,
                                             const unsigned* av, float* acc) {
#pragma unroll
  for (int t = 0; t < T; ++t) {
    if (t >= p.n) break;
    unsigned x[16];
    LoadColumn<kGroups>(p, t, w, groups, x);
#pragma unroll
    for (int g = 0; g < 8; ++g) {
      const unsigned nib = (mw >> (4 * g)) & 15u;
      const float a0 = ToFloat<kBf16>(av[g] & 0xFFFFu), a1 = ToFloat<kBf16>(av[g] >> 16);
      acc[t] = fmaf(a0, ToFloat<kBf16>(Pick(x[2 * g], x[2 * g + 1], nib & 3u)), acc[t]);
      acc[t] = fmaf(a1, ToFloat<kBf16>(Pick(x[2 * g], x[2 * g + 1], nib >> 2)), acc[t]);
    }
  }
}

template <bool kBf16, int T>
__global__ void __launch_bounds__(kWarps * 32) NmDecodeKernel(const DecodeParams p) {
  const i64 row = static_cast<i64>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= p.m) return;  // the whole warp
  const int lane = threadIdx.x % 32;
  const i64 words = (p.k + 31) / 32, full = p.k / 32;
  const u16* arow = p.a + row * (p.k / 2);
  const unsigned* mrow = p.meta + row * words;
  float acc[T];
#pragma unroll
  for (int t = 0; t < T; ++t) acc[t] = 0.0f;

  // Full words, kAhead per lane at a time: every load issued before any
  // multiply waits on one.
  i64 w = lane;
  for (; w + 32 * (kAhead - 1) < full; w += 32 * kAhead) {
    unsigned mw[kAhead], av[kAhead][8];
#pragma unroll
    for (int u = 0; u < kAhead; ++u) {
      mw[u] = __ldg(mrow + w + 32 * u);
      LoadValues(p, arow, w + 32 * u, 8, av[u]);
    }
#pragma unroll
    for (int u = 0; u < kAhead; ++u) MultiplyWord<kBf16, T, 8>(p, w + 32 * u, 8, mw[u], av[u], acc);
  }
  for (; w < full; w += 32) {
    unsigned av[8];
    const unsigned mw = __ldg(mrow + w);
    LoadValues(p, arow, w, 8, av);
    MultiplyWord<kBf16, T, 8>(p, w, 8, mw, av, acc);
  }
  // The last, partial word (k % 32 != 0): its lane takes the groups that exist.
  if (full < words && lane == full % 32) {
    const int groups = static_cast<int>((p.k - 32 * full) / 4);
    unsigned av[8];
    LoadValues(p, arow, full, groups, av);
    MultiplyWord<kBf16, T, 0>(p, full, groups, __ldg(mrow + full), av, acc);
  }

#pragma unroll
  for (int t = 0; t < T; ++t) {
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], s);
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
    if (lane == t && t < p.n) NmFinish(p.o, row, t, acc[t]);
  }
}

}  // namespace

const std::vector<int>& NmDecodeTokenCounts() {
  // Measured on an H100 (docs/PERFORMANCE.md): one column streams at 1.3-1.5x
  // cuBLAS; each further column costs as much again in L1 reads and selects,
  // so from three columns on the mma.sp tiles win and no kernel is kept.
  static const std::vector<int> counts = {1, 2};
  return counts;
}

bool NmDecodeSupports(const NmTcProblem& p) {
  constexpr int64_t kMax = (int64_t{1} << 31) - 1;
  return p.type != ValueType::kF32 && p.k % 4 == 0 && p.m > 0 && p.n >= 1 &&
         p.n <= NmDecodeTokenCounts().back() && p.k > 0 && p.m <= kMax && p.k <= kMax &&
         p.ldb >= (p.b_nmajor ? p.k : p.n);
}

cudaError_t LaunchNmDecode(const NmTcProblem& pr, int tokens, cudaStream_t stream) {
  if (!NmDecodeSupports(pr) || tokens < pr.n) return cudaErrorInvalidValue;
  auto aligned16 = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  DecodeParams p{};
  p.a = static_cast<const u16*>(pr.a_values);
  p.meta = reinterpret_cast<const unsigned*>(pr.meta);
  p.b = static_cast<const u16*>(pr.b);
  p.ldb = pr.ldb;
  p.m = pr.m;
  p.n = pr.n;
  p.k = pr.k;
  p.b_nmajor = pr.b_nmajor;
  p.vec_a = pr.k % 16 == 0 && aligned16(pr.a_values);
  p.vec_b = pr.b_nmajor && pr.ldb % 8 == 0 && aligned16(pr.b);
  p.o = NmOutOf(pr, nullptr);
  const dim3 grid(static_cast<unsigned>((pr.m + kWarps - 1) / kWarps));
  const bool bf16 = pr.type == ValueType::kBF16;
#define SPARSED_NM_DECODE_LAUNCH(T)                                  \
  if (tokens == T) {                                                 \
    if (bf16) {                                                      \
      NmDecodeKernel<true, T><<<grid, kWarps * 32, 0, stream>>>(p);  \
    } else {                                                         \
      NmDecodeKernel<false, T><<<grid, kWarps * 32, 0, stream>>>(p); \
    }                                                                \
    return cudaGetLastError();                                       \
  }
  SPARSED_NM_DECODE_LAUNCH(1)
  SPARSED_NM_DECODE_LAUNCH(2)
#undef SPARSED_NM_DECODE_LAUNCH
  return cudaErrorInvalidValue;
}

}  // namespace sparsed::cuda::kernels
