// 2:4 × dense on Hopper's warpgroup sparse tensor cores (wgmma.mma_async.sp
// m64nNk32, bf16/f16, f32 accumulation). Contract in nm_wgmma_kernels.h.
// Compiled for sm_90a only (kernels/CMakeLists.txt gives it its own object
// library).
//
// Per CTA: bm / 64 warpgroups, each holding a 64 × bn accumulator tile
// (bn / 2 f32 registers per thread). Per 64-deep stage of logical k, A
// contributes bm rows × 32 stored values and two metadata words per row,
// op(B) bn rows × 64 values. Both operands lie in shared memory row after
// row (A: 64 bytes a row, op(B): 128 bytes), their 16-byte chunks permuted
// within each 8-row atom as the instruction's 64-byte and 128-byte swizzle
// modes read them. The permutation is what keeps both sides free of bank
// conflicts: the eight chunks one global row gives (one coalesced read) land
// in eight distinct banks groups, and so do the tensor core's reads. (An
// unswizzled layout, measured on an H100, ran 4× slower than cuBLAS.)
#include <algorithm>

#include "spmm/nm_wgmma_common.cuh"
#include "spmm/wgmma_sp.cuh"

namespace sparsed::cuda::kernels {
namespace {

using namespace wg;

template <int BM, int BN, int THREADS>
__device__ __forceinline__ void LoadStage(const Params& p, unsigned char* stage, i64 kt, i64 row0,
                                          i64 n0) {
  using L = WgLayout<BM, BN>;
  const unsigned a_s = SmemAddr(stage), b_s = a_s + L::kA, m_s = b_s + L::kB;
  const int tid = threadIdx.x;
  const i64 a_ld = p.k / 2, a_col0 = kt * 32;  // stored values
  if (p.a_vec16) {
    for (int c = tid; c < BM * 4; c += THREADS) {
      const int r = c >> 2, ch = c & 3;
      const i64 gr = row0 + r, gc = a_col0 + ch * 8;
      const i64 left = gr < p.m ? a_ld - gc : 0;
      const int bytes = left >= 8 ? 16 : left > 0 ? static_cast<int>(left) * 2 : 0;
      CpAsync16(a_s + ASwizzled(r, ch), bytes > 0 ? p.a + gr * a_ld + gc : p.a, bytes);
    }
  } else {  // pairs of stored values (a_ld is even)
    for (int c = tid; c < BM * 16; c += THREADS) {
      const int r = c >> 4, pr = c & 15;
      const i64 gr = row0 + r, gc = a_col0 + pr * 2;
      const bool ok = gr < p.m && gc < a_ld;
      CpAsync4(a_s + ASwizzled(r, pr >> 2) + (pr & 3) * 4, ok ? p.a + gr * a_ld + gc : p.a,
               ok ? 4 : 0);
    }
  }
  for (int c = tid; c < BM * 2; c += THREADS) {
    const int r = c >> 1, w = c & 1;
    const i64 gr = row0 + r, gw = kt * 2 + w;
    const bool ok = gr < p.m && gw < p.words;
    CpAsync4(m_s + c * 4, ok ? p.meta + gr * p.words + gw : p.meta, ok ? 4 : 0);
  }
  const i64 k0 = kt * kNmWgKTile;
  if (p.b_vec16) {
    for (int c = tid; c < BN * 8; c += THREADS) {
      const int nn = c >> 3, ch = c & 7;
      const i64 gn = n0 + nn, gk = k0 + ch * 8;
      const i64 left = gn < p.n ? p.k - gk : 0;
      const int bytes = left >= 8 ? 16 : left > 0 ? static_cast<int>(left) * 2 : 0;
      CpAsync16(b_s + BSwizzled(nn, ch), bytes > 0 ? p.b + gn * p.ldb + gk : p.b, bytes);
    }
  } else {  // unaligned rows: plain stores (fenced like the copies)
    u16* bs = reinterpret_cast<u16*>(stage + L::kA);
    for (int c = tid; c < BN * 64; c += THREADS) {
      const int nn = c >> 6, kk = c & 63;
      const i64 gn = n0 + nn, gk = k0 + kk;
      bs[BSwizzled(nn, kk >> 3) / 2 + (kk & 7)] =
          gn < p.n && gk < p.k ? p.b[gn * p.ldb + gk] : u16{0};
    }
  }
}

template <bool kBf16, int BM, int BN, int STAGES, int WAIT>
__global__ void __launch_bounds__(BM / 64 * 128) NmWgKernel(Params p) {
  constexpr int kThreads = BM / 64 * 128;
  constexpr int kAhead = STAGES - 1 - WAIT;  // stages loaded ahead of the one computed
  static_assert(kAhead >= 1, "too few stages for the wgmma groups left in flight");
  using L = WgLayout<BM, BN>;
  extern __shared__ __align__(1024) unsigned char smem[];

  i64 row0 = 0, n0 = 0, t_begin = 0;
  TileOrigin<BM, BN>(p, row0, n0);
  const int tiles = SplitTiles(p, &t_begin);

  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int g = lane / 4, tq = lane % 4;
  const int r_lo = wg * 64 + warp * 16 + g;  // this thread's rows r_lo and r_lo + 8 of the tile

  float acc[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0.0f;

  unsigned e_prev[2] = {0, 0};
  uint64_t desc_prev[2][2] = {{0, 0}, {0, 0}};
#pragma unroll
  for (int s = 0; s < kAhead; ++s) {
    if (s < tiles) LoadStage<BM, BN, kThreads>(p, smem + s * L::kStage, t_begin + s, row0, n0);
    CpAsyncCommit();
  }
  for (int t = 0; t < tiles; ++t) {
    // Stage t has landed, and every warpgroup has finished the wgmma that
    // read the slot loaded next (WAIT groups back).
    CpAsyncWait<kAhead - 1>();
    FenceProxyAsync();
    __syncthreads();
    if (t + kAhead < tiles) {
      LoadStage<BM, BN, kThreads>(p, smem + ((t + kAhead) % STAGES) * L::kStage,
                                  t_begin + t + kAhead, row0, n0);
    }
    CpAsyncCommit();

    const unsigned char* st = smem + (t % STAGES) * L::kStage;
    const unsigned a_s = SmemAddr(st) + wg * 64 * 64;  // this warpgroup's 64 rows
    const unsigned b_s = SmemAddr(st) + L::kA;
    const unsigned* ms = reinterpret_cast<const unsigned*>(st + L::kA + L::kB);
    unsigned e[2];
    StageMetadata(ms, r_lo, tq, e);
    uint64_t desc[2][2];
#pragma unroll
    for (int s = 0; s < 2; ++s) {  // k32 step s: 32 bytes into A's rows, 64 into op(B)'s
      desc[s][0] = Desc(a_s + s * 32, 8 * 64, 2);
      desc[s][1] = Desc(b_s + s * 64, 8 * 128, 1);
    }
    FenceAccumulators<BN / 2>(acc);
    WgmmaFence();
#pragma unroll
    for (int s = 0; s < 2; ++s) WgmmaSp<BN, kBf16>::Mma(acc, desc[s][0], desc[s][1], e[s], 1);
    WgmmaCommit();
    FenceAccumulators<BN / 2>(acc);
    WgmmaWait<WAIT>();
    FenceAccumulators<BN / 2>(acc);
    // The registers a wgmma read must not be reused while it may still run:
    // using the previous stage's after the wait keeps them apart from this
    // stage's in the register allocation.
    if constexpr (WAIT > 0) {
      asm volatile("" ::"r"(e_prev[0]), "r"(e_prev[1]), "l"(desc_prev[0][0]), "l"(desc_prev[0][1]),
                   "l"(desc_prev[1][0]), "l"(desc_prev[1][1]));
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        e_prev[s] = e[s];
        desc_prev[s][0] = desc[s][0];
        desc_prev[s][1] = desc[s][1];
      }
    }
  }
  WgmmaWait<0>();
  FenceAccumulators<BN / 2>(acc);
  CpAsyncWait<0>();

  // Warp w of a warpgroup holds rows 16w + g and 16w + g + 8, columns
  // 8j + 2tq and 8j + 2tq + 1 in acc[4j .. 4j + 3].
  if (p.o.partial == nullptr) {
    static_assert(
        BN * (BM + 4) * 4 <= STAGES * L::kStage && BM * (BN + 4) * 4 <= STAGES * L::kStage,
        "the staged tile must fit in the pipeline's shared memory");
    __syncthreads();  // every warpgroup is done reading the stages
    StoreTileStaged<BM, BN, kThreads>(p, reinterpret_cast<float*>(smem), acc, row0, n0, r_lo, tq,
                                      threadIdx.x);
    return;
  }
  EmitPartialTile<BN>(p, acc, row0, n0, r_lo, tq);
}

template <bool kBf16, int BM, int BN, int ST, int WT>
cudaError_t LaunchTile(const NmTcProblem& pr, int splits, float* partial, cudaStream_t stream) {
  constexpr int kSmem = ST * WgLayout<BM, BN>::kStage;
  cudaError_t err = EnsureDynamicSmem<NmWgKernel<kBf16, BM, BN, ST, WT>>(kSmem);
  if (err != cudaSuccess) return err;
  const Params p = ParamsOf(pr, BM, BN, splits, partial);
  const dim3 grid(static_cast<unsigned>(static_cast<i64>(p.m_tiles) * p.n_tiles), 1,
                  static_cast<unsigned>(splits));
  NmWgKernel<kBf16, BM, BN, ST, WT><<<grid, BM / 64 * 128, kSmem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

// Every compiled tile {bm, bn, stages, wgmma groups in flight, verified}:
// one list (X-macro) so that the tile list and the launch cannot disagree.
// Measured on an H100 (docs/PERFORMANCE.md): the tiles that keep a group in
// flight lost contributions (relative error 0.02-0.35) except 64 x 128, and
// were dropped; these three are correct.
#define SPARSED_NM_WG_TILES(X) \
  X(128, 256, 4, 0, true)      \
  X(128, 128, 4, 0, true)      \
  X(64, 128, 6, 1, true)

const std::vector<NmWgTile>& NmWgTiles() {
#define SPARSED_NM_WG_ENTRY(BM, BN, ST, WT, OK) {BM, BN, ST, WT, false, OK},
  static const std::vector<NmWgTile> tiles = [] {
    std::vector<NmWgTile> v = {SPARSED_NM_WG_TILES(SPARSED_NM_WG_ENTRY)};
    v.insert(v.end(), NmWsTiles().begin(), NmWsTiles().end());
    return v;
  }();
#undef SPARSED_NM_WG_ENTRY
  return tiles;
}

bool NmWgSupports(const NmTcProblem& p) {
  return p.b_nmajor && p.type != ValueType::kF32 && p.k % 4 == 0 && p.m > 0 && p.n > 0 && p.k > 0;
}

cudaError_t LaunchNmWg(const NmTcProblem& pr, const NmWgTile& t, int splits, float* partial,
                       cudaStream_t stream) {
  if (t.ws) return LaunchNmWs(pr, t, splits, partial, stream);
  if (pr.m == 0 || pr.n == 0) return cudaSuccess;
  if (!NmWgSupports(pr) || !LaunchShapeOk(pr, t, splits, partial)) return cudaErrorInvalidValue;
  const bool bf16 = pr.type == ValueType::kBF16;
#define SPARSED_NM_WG_LAUNCH(BM, BN, ST, WT, OK)                                  \
  if (t.bm == BM && t.bn == BN && t.stages == ST && t.wait == WT) {               \
    return bf16 ? LaunchTile<true, BM, BN, ST, WT>(pr, splits, partial, stream)   \
                : LaunchTile<false, BM, BN, ST, WT>(pr, splits, partial, stream); \
  }
  SPARSED_NM_WG_TILES(SPARSED_NM_WG_LAUNCH)
#undef SPARSED_NM_WG_LAUNCH
  return cudaErrorInvalidValue;
}

}  // namespace sparsed::cuda::kernels
