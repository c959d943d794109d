// 2:4 × dense on sparse tensor cores: mma.sp::ordered_metadata m16n8k32
// (bf16/f16, f32 accumulation), A's compressed values, its metadata words
// and B's tiles pipelined through shared memory with cp.async. Contract in
// nm_tc_kernels.h.
//
// Per CTA: a BM × BN tile of P over a range of 64-deep logical k-tiles (all
// of k, or one split of it). Per k-tile and row, A contributes 32 stored
// values (64 B) and two metadata words; B contributes 64 × BN values.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "spmm/nm_tc_common.cuh"
#include "spmm/nm_tc_kernels.h"
#include "spmm/ptx_copy.cuh"

namespace sparsed::cuda::kernels {
namespace {

using u16 = unsigned short;
using i64 = long long;
using namespace sparsed::cuda::ptx;

// d += A(16×32, 2:4, `a` holding 16×16 stored values) · B(32×8), metadata
// `e` from threads 0 and 1 of each quad (sparsity selector 0).
template <bool kBf16>
__device__ __forceinline__ void MmaSp(float* d, const unsigned* a, const unsigned* b, unsigned e) {
  if constexpr (kBf16) {
    asm volatile(
        "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]),
          "r"(e));
  } else {
    asm volatile(
        "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]),
          "r"(e));
  }
}

struct Params {
  const u16* a;
  const unsigned* meta;
  const u16* b;
  NmOut o;                  // out and epilogue, or the split-k partials
  i64 m, n, k, ldb, words;  // words: metadata words per row
  int k_tiles_per_split;    // of WK · 64 logical k
  bool a_vec16, b_vec16;
};

// One pipeline stage: WK · KS · 32 logical k (each of the WK warp groups
// along k takes KS k32 steps of it). Shared rows are padded by 16 bytes:
// ldmatrix rows of a warp then fall into distinct banks without a swizzle.
template <int BM, int BN, int WK, int KS, bool B_NMAJOR>
struct Layout {
  static constexpr int kKt = 32 * KS * WK;  // logical k per stage
  static constexpr int kAKt = kKt / 2;      // stored values per row
  static constexpr int kALd = kAKt + 8;
  static constexpr int kWords = kKt / 32;  // metadata words per row
  static constexpr int kBLd = B_NMAJOR ? kKt + 8 : BN + 8;
  static constexpr int kBRows = B_NMAJOR ? BN : kKt;
  static constexpr int kAStage = BM * kALd;      // u16
  static constexpr int kBStage = kBRows * kBLd;  // u16
  static constexpr int kMStage = BM * kWords;    // u32 words
  static constexpr int kStageBytes = (kAStage + kBStage) * 2 + kMStage * 4;
};

// A tile with no edge (every row and column inside the operand): ROWS rows
// of CPR 16-byte chunks (T = u16) or CPR words (T = unsigned), one source
// pointer and one shared address per thread, stepped by constant strides
// — the general loops below spend most of a stage's issue slots on index
// arithmetic and bounds (ncu: the integer pipe busiest, tensor pipe idle).
template <int ROWS, int CPR, int THREADS, int SMEM_LD, class T>
__device__ __forceinline__ void CopyInterior(T* dst, const T* src, i64 ld) {
  static_assert(THREADS % CPR == 0, "a thread's chunks must share a column");
  constexpr int kPer = sizeof(T) == 2 ? 8 : 1;  // elements per copy
  constexpr int kRowsPerPass = THREADS / CPR;
  const int r = threadIdx.x / CPR, col = (threadIdx.x % CPR) * kPer;
  const T* s = src + r * ld + col;
  const unsigned d = SmemAddr(dst + r * SMEM_LD + col);
#pragma unroll
  for (int i = 0; i < (ROWS + kRowsPerPass - 1) / kRowsPerPass; ++i) {
    if (ROWS % kRowsPerPass == 0 || r + i * kRowsPerPass < ROWS) {
      const unsigned di = d + i * kRowsPerPass * SMEM_LD * static_cast<int>(sizeof(T));
      if constexpr (sizeof(T) == 2) {
        CpAsync16(di, s + i * kRowsPerPass * ld, 16);
      } else {
        CpAsync4(di, s + i * kRowsPerPass * ld, 4);
      }
    }
  }
}

template <int BM, int BN, int WK, int KS, int THREADS, bool B_NMAJOR>
__device__ __forceinline__ void LoadTile(const Params& p, u16* as, u16* bs, unsigned* ms, i64 kt,
                                         i64 row0, i64 n0) {
  using L = Layout<BM, BN, WK, KS, B_NMAJOR>;
  constexpr int kKt = L::kKt, kAKt = L::kAKt, kALd = L::kALd, kWords = L::kWords;
  const int tid = threadIdx.x;
  const i64 a_ld = p.k / 2;      // stored values per row
  const i64 a_col0 = kt * kAKt;  // first stored column of this k-tile
  const bool rows_in = row0 + BM <= p.m;
  // A: BM rows × kAKt stored values.
  if (p.a_vec16 && rows_in && a_col0 + kAKt <= a_ld) {
    CopyInterior<BM, kAKt / 8, THREADS, kALd>(as, p.a + row0 * a_ld + a_col0, a_ld);
  } else if (p.a_vec16) {
    for (int c = tid; c < BM * (kAKt / 8); c += THREADS) {
      const int r = c / (kAKt / 8), col = (c % (kAKt / 8)) * 8;
      const i64 gr = row0 + r, gc = a_col0 + col;
      const i64 left = gr < p.m ? a_ld - gc : 0;
      const int bytes = left >= 8 ? 16 : left > 0 ? static_cast<int>(left) * 2 : 0;
      CpAsync16(SmemAddr(as + r * kALd + col), bytes > 0 ? p.a + gr * a_ld + gc : p.a, bytes);
    }
  } else {
    for (int c = tid; c < BM * (kAKt / 2); c += THREADS) {
      const int r = c / (kAKt / 2), col = (c % (kAKt / 2)) * 2;
      const i64 gr = row0 + r, gc = a_col0 + col;
      const bool ok = gr < p.m && gc < a_ld;  // a_ld is even: pairs never straddle
      CpAsync4(SmemAddr(as + r * kALd + col), ok ? p.a + gr * a_ld + gc : p.a, ok ? 4 : 0);
    }
  }
  // Metadata: kWords words per row.
  if (rows_in && (kt + 1) * kWords <= p.words) {
    CopyInterior<BM, kWords, THREADS, kWords>(ms, p.meta + row0 * p.words + kt * kWords, p.words);
  } else {
    for (int c = tid; c < BM * kWords; c += THREADS) {
      const int r = c / kWords, w = c % kWords;
      const i64 gr = row0 + r, gw = kt * kWords + w;
      const bool ok = gr < p.m && gw < p.words;
      CpAsync4(SmemAddr(ms + c), ok ? p.meta + gr * p.words + gw : p.meta, ok ? 4 : 0);
    }
  }
  // B: the kKt logical rows of op(B) from kt·kKt, BN columns from n0.
  const i64 k0 = kt * kKt;
  const bool b_in = p.b_vec16 && n0 + BN <= p.n && k0 + kKt <= p.k;
  if constexpr (B_NMAJOR) {
    if (b_in) {
      CopyInterior<BN, kKt / 8, THREADS, L::kBLd>(bs, p.b + n0 * p.ldb + k0, p.ldb);
    } else if (p.b_vec16) {
      for (int c = tid; c < BN * (kKt / 8); c += THREADS) {
        const int nn = c / (kKt / 8), kk = (c % (kKt / 8)) * 8;
        const i64 gn = n0 + nn, gk = k0 + kk;
        const i64 left = gn < p.n ? p.k - gk : 0;
        const int bytes = left >= 8 ? 16 : left > 0 ? static_cast<int>(left) * 2 : 0;
        CpAsync16(SmemAddr(bs + nn * L::kBLd + kk), bytes > 0 ? p.b + gn * p.ldb + gk : p.b, bytes);
      }
    } else {
      for (int c = tid; c < BN * kKt; c += THREADS) {
        const int nn = c / kKt, kk = c % kKt;
        const i64 gn = n0 + nn, gk = k0 + kk;
        bs[nn * L::kBLd + kk] = gn < p.n && gk < p.k ? p.b[gn * p.ldb + gk] : u16{0};
      }
    }
  } else {
    if (b_in) {
      CopyInterior<kKt, BN / 8, THREADS, L::kBLd>(bs, p.b + k0 * p.ldb + n0, p.ldb);
    } else if (p.b_vec16) {
      for (int c = tid; c < kKt * (BN / 8); c += THREADS) {
        const int kk = c / (BN / 8), nn = (c % (BN / 8)) * 8;
        const i64 gk = k0 + kk, gn = n0 + nn;
        const i64 left = gk < p.k ? p.n - gn : 0;
        const int bytes = left >= 8 ? 16 : left > 0 ? static_cast<int>(left) * 2 : 0;
        CpAsync16(SmemAddr(bs + kk * L::kBLd + nn), bytes > 0 ? p.b + gk * p.ldb + gn : p.b, bytes);
      }
    } else {
      for (int c = tid; c < kKt * BN; c += THREADS) {
        const int kk = c / BN, nn = c % BN;
        const i64 gk = k0 + kk, gn = n0 + nn;
        bs[kk * L::kBLd + nn] = gk < p.k && gn < p.n ? p.b[gk * p.ldb + gn] : u16{0};
      }
    }
  }
}

// WK > 1: the warps along k each take KS k32 steps of a stage, and their
// partial tiles are summed through shared memory at the end (decode sizes,
// where a CTA holds few rows and columns).
template <bool kBf16, int BM, int BN, int WM, int WN, int WK, int KS, int STAGES, bool B_NMAJOR>
__global__ void __launch_bounds__(WM* WN* WK * 32) NmTcKernel(Params p) {
  constexpr int kThreads = WM * WN * WK * 32;
  constexpr int kWarpM = BM / WM, kWarpN = BN / WN;
  constexpr int kMt = kWarpM / 16, kNt = kWarpN / 8;
  using L = Layout<BM, BN, WK, KS, B_NMAJOR>;
  constexpr int kKt = L::kKt, kALd = L::kALd, kWords = L::kWords;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  u16* a_smem = reinterpret_cast<u16*>(smem_raw);
  u16* b_smem = a_smem + STAGES * L::kAStage;
  unsigned* m_smem = reinterpret_cast<unsigned*>(b_smem + STAGES * L::kBStage);

  const i64 row0 = static_cast<i64>(blockIdx.x) * BM;
  const i64 n0 = static_cast<i64>(blockIdx.y) * BN;
  const i64 k_tiles = (p.k + kKt - 1) / kKt;
  const i64 t_begin = static_cast<i64>(blockIdx.z) * p.k_tiles_per_split;
  const i64 t_end = min(k_tiles, t_begin + p.k_tiles_per_split);
  const i64 tiles = t_end > t_begin ? t_end - t_begin : 0;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wk = warp / (WM * WN), wm = (warp % (WM * WN)) / WN, wn = warp % WN;
  const int g = lane / 4, tq = lane % 4;

  float acc[kMt][kNt][4];
#pragma unroll
  for (int i = 0; i < kMt; ++i)
#pragma unroll
    for (int j = 0; j < kNt; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;

  auto issue = [&](i64 t) {
    const int stage = static_cast<int>(t % STAGES);
    LoadTile<BM, BN, WK, KS, kThreads, B_NMAJOR>(
        p, a_smem + stage * L::kAStage, b_smem + stage * L::kBStage, m_smem + stage * L::kMStage,
        t_begin + t, row0, n0);
  };
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < tiles) issue(s);
    CpAsyncCommit();
  }
  const bool m_edge = row0 + BM > p.m;

  for (i64 t = 0; t < tiles; ++t) {
    CpAsyncWait<STAGES - 2>();
    __syncthreads();
    if (t + STAGES - 1 < tiles) issue(t + STAGES - 1);
    CpAsyncCommit();

    const int stage = static_cast<int>(t % STAGES);
    const u16* as = a_smem + stage * L::kAStage;
    const u16* bs = b_smem + stage * L::kBStage;
    const unsigned* ms = m_smem + stage * L::kMStage;
    const bool fix = m_edge || (t_begin + t + 1) * kKt > p.k;
#pragma unroll
    for (int s2 = 0; s2 < KS; ++s2) {  // this warp's k32 steps of the stage
      const int s = wk * KS + s2;
      unsigned af[kMt][4], ef[kMt];
#pragma unroll
      for (int i = 0; i < kMt; ++i) {
        const int mbase = wm * kWarpM + i * 16;
        Ldsm4(SmemAddr(as + (mbase + (lane % 16)) * kALd + s * 16 + (lane / 16) * 8), af[i]);
        // Threads 0 and 1 of a quad: k 0-15 (thread 0) or 16-31 (thread 1)
        // of rows g (low half) and g + 8 (high half).
        unsigned w0 = ms[(mbase + g) * kWords + s], w1 = ms[(mbase + g + 8) * kWords + s];
        if (fix) {
          w0 = FixPaddingNibbles(w0);
          w1 = FixPaddingNibbles(w1);
        }
        ef[i] = __byte_perm(w0, w1, tq & 1 ? 0x7632 : 0x5410);
      }
      // Every B fragment of the step before the first mma.sp: the asm
      // statements keep their order, so a load issued between two mma.sp
      // would stall the next one on shared-memory latency.
      unsigned bf[kNt][4];
#pragma unroll
      for (int j = 0; j < kNt; ++j) {
        const int nbase = wn * kWarpN + j * 8;
        if constexpr (B_NMAJOR) {
          Ldsm4(SmemAddr(bs + (nbase + (lane % 8)) * L::kBLd + s * 32 + (lane / 8) * 8), bf[j]);
        } else {
          Ldsm4T(SmemAddr(bs + (s * 32 + lane) * L::kBLd + nbase), bf[j]);
        }
      }
#pragma unroll
      for (int j = 0; j < kNt; ++j)
#pragma unroll
        for (int i = 0; i < kMt; ++i) MmaSp<kBf16>(acc[i][j], af[i], bf[j], ef[i]);
    }
  }
  CpAsyncWait<0>();
  if constexpr (WK > 1) {
    // Warps wk > 0 hand their tiles to warp group 0 through the (now idle)
    // stage buffers: [wk - 1][warp in group][element][lane].
    __syncthreads();
    float* red = reinterpret_cast<float*>(smem_raw);
    constexpr int kElems = kMt * kNt * 4;
    const int wg = warp % (WM * WN);
    if (wk > 0) {
#pragma unroll
      for (int i = 0; i < kMt; ++i)
#pragma unroll
        for (int j = 0; j < kNt; ++j)
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            red[(((wk - 1) * WM * WN + wg) * kElems + (i * kNt + j) * 4 + q) * 32 + lane] =
                acc[i][j][q];
          }
    }
    __syncthreads();
    if (wk > 0) return;
#pragma unroll
    for (int o = 0; o < WK - 1; ++o)
#pragma unroll
      for (int i = 0; i < kMt; ++i)
#pragma unroll
        for (int j = 0; j < kNt; ++j)
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            acc[i][j][q] += red[((o * WM * WN + wg) * kElems + (i * kNt + j) * 4 + q) * 32 + lane];
          }
  }

  // Thread (g, tq) holds rows g and g + 8, columns 2tq and 2tq + 1 of each
  // 16 × 8 tile.
#pragma unroll
  for (int i = 0; i < kMt; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int j = 0; j < kNt; ++j) {
        NmEmitPair(p.o, blockIdx.z, row0 + wm * kWarpM + i * 16 + g + h * 8,
                   n0 + wn * kWarpN + j * 8 + tq * 2, acc[i][j][2 * h], acc[i][j][2 * h + 1]);
      }
}

__global__ void NmTcFinishKernel(NmOut o, const float* partial, int splits) {
  const i64 total = o.m * o.n;
  for (i64 idx = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<i64>(gridDim.x) * blockDim.x) {
    float acc = 0.0f;
    for (int z = 0; z < splits; ++z) acc += partial[z * total + idx];
    NmFinish(o, idx / o.n, idx % o.n, acc);
  }
}

Params ParamsOf(const NmTcProblem& pr, int k_stage, int splits, float* partial) {
  Params p{};
  p.a = static_cast<const u16*>(pr.a_values);
  p.meta = reinterpret_cast<const unsigned*>(pr.meta);
  p.b = static_cast<const u16*>(pr.b);
  p.o = NmOutOf(pr, splits > 1 ? partial : nullptr);
  p.m = pr.m;
  p.n = pr.n;
  p.k = pr.k;
  p.ldb = pr.ldb;
  p.words = (pr.k / 4 + 7) / 8;
  const i64 k_tiles = (pr.k + k_stage - 1) / k_stage;
  p.k_tiles_per_split = static_cast<int>((k_tiles + splits - 1) / splits);
  auto aligned16 = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  p.a_vec16 = pr.k % 16 == 0 && aligned16(pr.a_values);
  p.b_vec16 = pr.ldb % 8 == 0 && aligned16(pr.b) && (pr.b_nmajor ? pr.k % 8 == 0 : pr.n % 8 == 0);
  return p;
}

template <bool kBf16, int BM, int BN, int WM, int WN, int WK, int KS, int STAGES, bool B_NMAJOR>
cudaError_t LaunchTile(const Params& p, int splits, cudaStream_t stream) {
  constexpr int kPipe = STAGES * Layout<BM, BN, WK, KS, B_NMAJOR>::kStageBytes;
  constexpr int kReduce = (WK - 1) * WM * WN * (BM / WM / 16) * (BN / WN / 8) * 4 * 32 * 4;
  constexpr int kSmem = kPipe > kReduce ? kPipe : kReduce;
  auto* kernel = NmTcKernel<kBf16, BM, BN, WM, WN, WK, KS, STAGES, B_NMAJOR>;
  const cudaError_t err =
      EnsureDynamicSmem<NmTcKernel<kBf16, BM, BN, WM, WN, WK, KS, STAGES, B_NMAJOR>>(kSmem);
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>((p.m + BM - 1) / BM),
                  static_cast<unsigned>((p.n + BN - 1) / BN), static_cast<unsigned>(splits));
  kernel<<<grid, WM * WN * WK * 32, kSmem, stream>>>(p);
  return cudaGetLastError();
}

template <bool kBf16, int BM, int BN, int WM, int WN, int WK, int KS, int STAGES>
cudaError_t LaunchLayout(const Params& p, bool b_nmajor, int splits, cudaStream_t stream) {
  return b_nmajor ? LaunchTile<kBf16, BM, BN, WM, WN, WK, KS, STAGES, true>(p, splits, stream)
                  : LaunchTile<kBf16, BM, BN, WM, WN, WK, KS, STAGES, false>(p, splits, stream);
}

template <int BM, int BN, int WM, int WN, int WK, int KS, int STAGES>
cudaError_t LaunchTyped(const NmTcProblem& pr, int splits, float* partial, cudaStream_t stream) {
  const Params p = ParamsOf(pr, 32 * KS * WK, splits, partial);
  return pr.type == ValueType::kBF16
             ? LaunchLayout<true, BM, BN, WM, WN, WK, KS, STAGES>(p, pr.b_nmajor, splits, stream)
             : LaunchLayout<false, BM, BN, WM, WN, WK, KS, STAGES>(p, pr.b_nmajor, splits, stream);
}

}  // namespace

// Every compiled tile: {bm, bn, warps along m, n and k, k32 steps per warp
// per stage, stages}. Kept as one list (X-macro) so the variant list and
// the dispatch cannot disagree. 64 × 64 warp tiles (4 × 8 mma.sp per k32
// step against 12 ldmatrix) for large n; for decode sizes, narrow tiles
// whose warps split k (and CTAs split it further); deeper stages (ks 4: 128
// logical k per warp) where memory latency, not issue, bounds a tile.
#define SPARSED_NM_TILES(X)  \
  X(128, 256, 2, 4, 1, 2, 3) \
  X(128, 128, 2, 2, 1, 2, 3) \
  X(128, 128, 2, 2, 1, 4, 3) \
  X(128, 64, 4, 2, 1, 2, 4)  \
  X(128, 64, 4, 2, 1, 4, 3)  \
  X(64, 32, 4, 1, 1, 2, 5)   \
  X(64, 16, 4, 1, 1, 2, 6)   \
  X(64, 8, 4, 1, 1, 2, 6)    \
  X(64, 8, 4, 1, 1, 4, 4)    \
  X(16, 8, 1, 1, 4, 2, 4)    \
  X(16, 8, 1, 1, 4, 4, 4)    \
  X(16, 16, 1, 1, 4, 2, 4)   \
  X(32, 32, 2, 1, 2, 2, 4)

const std::vector<NmTcTile>& NmTcTiles() {
#define SPARSED_NM_TILE_ENTRY(BM, BN, WM, WN, WK, KS, ST) {BM, BN, WM, WN, WK, KS, ST},
  static const std::vector<NmTcTile> tiles = {SPARSED_NM_TILES(SPARSED_NM_TILE_ENTRY)};
#undef SPARSED_NM_TILE_ENTRY
  return tiles;
}

int NmTcKTile(const NmTcTile& t) { return 32 * t.ks * t.wk; }

cudaError_t LaunchNmTc(const NmTcProblem& pr, const NmTcTile& t, int splits, float* partial,
                       cudaStream_t stream) {
  if (pr.m == 0 || pr.n == 0) return cudaSuccess;
  if (splits < 1 || (splits > 1 && partial == nullptr) || pr.type == ValueType::kF32 ||
      (pr.n + t.bn - 1) / t.bn > 65535 || splits > 65535) {
    return cudaErrorInvalidValue;
  }
#define SPARSED_NM_TILE_LAUNCH(BM, BN, WM, WN, WK, KS, ST)                                \
  if (t.bm == BM && t.bn == BN && t.wm == WM && t.wn == WN && t.wk == WK && t.ks == KS && \
      t.stages == ST) {                                                                   \
    return LaunchTyped<BM, BN, WM, WN, WK, KS, ST>(pr, splits, partial, stream);          \
  }
  SPARSED_NM_TILES(SPARSED_NM_TILE_LAUNCH)
#undef SPARSED_NM_TILE_LAUNCH
  return cudaErrorInvalidValue;
}

cudaError_t LaunchNmTcFinish(const NmTcProblem& pr, int splits, const float* partial,
                             cudaStream_t stream) {
  if (pr.m == 0 || pr.n == 0) return cudaSuccess;
  const i64 total = pr.m * pr.n;
  const int threads = 256;
  const unsigned blocks =
      static_cast<unsigned>(std::min<i64>((total + threads - 1) / threads, 8192));
  NmTcFinishKernel<<<blocks, threads, 0, stream>>>(NmOutOf(pr, nullptr), partial, splits);
  return cudaGetLastError();
}

}  // namespace sparsed::cuda::kernels
