// 2:4 × dense on Hopper's warpgroup sparse tensor cores, warp-specialised:
// warpgroup 0 is the producer, the bm / 64 others the consumers. The
// producer's first warp fills each pipeline stage — A's stored values and
// op(B)'s rows with one tensor-memory-accelerator copy each (swizzled by the
// copy engine exactly as nm_wgmma_common.cuh lays them out), the metadata
// words with cp.async — and signals the stage's "full" mbarrier; the
// consumers wait on it, issue two wgmma.mma_async.sp m64nNk32 per stage, and
// once a stage's wgmma has completed (one group left in flight) arrive on
// its "empty" mbarrier so that the producer may refill it. Nothing but the
// tensor cores touches the operands between global memory and the
// accumulators: no load instructions in the consumers, no register staging,
// no proxy fence (both the copy engine and wgmma are the async proxy).
//
// Contract as the cp.async kernel (nm_wgmma_kernels.h); NmWsSupports adds
// what the tensor maps need. Compiled for sm_90a only.
#include <cuda.h>  // CUtensorMap and its enums (types only: no driver library is linked)
#include <cudaTypedefs.h>

#include "spmm/nm_wgmma_common.cuh"
#include "spmm/wgmma_sp.cuh"

namespace sparsed::cuda::kernels {
namespace {

using namespace wg;

// A's stored values and op(B), as the copy engine reads them.
struct WsMaps {
  CUtensorMap a, b;
};

__device__ __forceinline__ void MbarInit(unsigned bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// One arrival that also expects `bytes` of copy-engine transactions.
__device__ __forceinline__ void MbarArriveExpectTx(unsigned bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void MbarArrive(unsigned bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ bool MbarTryWait(unsigned bar, unsigned parity) {
  unsigned done;
  asm volatile(
      "{\n.reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}
// Until the phase of parity `parity` has completed.
__device__ __forceinline__ void MbarWait(unsigned bar, unsigned parity) {
  while (!MbarTryWait(bar, parity)) {
  }
}
// An arrival on `bar` once this thread's earlier cp.async copies have
// landed; not counted in advance (the barrier's count includes it).
__device__ __forceinline__ void CpAsyncArriveNoinc(unsigned bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// The box of `map` at (c0 inner, c1 outer) into shared memory at dst,
// completing `bytes` transactions on bar.
__device__ __forceinline__ void TmaLoad2d(unsigned dst, const CUtensorMap* map, int c0, int c1,
                                          unsigned bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes "
      "[%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}

// The same box multicast to the CTAs of `mask` in the cluster: each gets it
// at dst in its own shared memory and `bytes` completed on its own mbarrier
// at bar's offset.
__device__ __forceinline__ void TmaLoad2dMulticast(unsigned dst, const CUtensorMap* map, int c0,
                                                   int c1, unsigned bar, unsigned short mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      ".multicast::cluster [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(mask)
      : "memory");
}
__device__ __forceinline__ unsigned ClusterRank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
// Every thread of every CTA of the cluster meets here; shared-memory writes
// before it (mbarrier inits included) are visible to the cluster after it.
__device__ __forceinline__ void ClusterSync() {
  asm volatile(
      "barrier.cluster.arrive.release.aligned;\n"
      "barrier.cluster.wait.acquire.aligned;\n" ::
          : "memory");
}
// An arrival on the mbarrier at `bar`'s offset in CTA `rank`'s shared memory.
__device__ __forceinline__ void MbarArriveCluster(unsigned bar, unsigned rank) {
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(bar), "r"(rank));
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];\n" ::"r"(remote) : "memory");
}

// Per-thread register budgets once the roles split, for CTAs of two
// consumer warpgroups (384 threads start with at most 168 registers each;
// 128 × 40 + 256 × 232 fits the 64 K of an SM). A CTA of one consumer
// keeps what it was compiled with (up to 255).
constexpr int kProducerRegisters = 40, kConsumerRegisters = 232;

// An arrival of this consumer warp on stage barrier `bar` of every CTA of
// the cluster (CLUSTER 1: of its own), once all its lanes are done with it.
template <int CLUSTER>
__device__ __forceinline__ void ReleaseStage(unsigned bar, int lane) {
  __syncwarp();
  if (lane != 0) return;
  if constexpr (CLUSTER == 1) {
    MbarArrive(bar);
  } else {
#pragma unroll
    for (int r = 0; r < CLUSTER; ++r) MbarArriveCluster(bar, r);
  }
}

// The consumer warpgroups' part: wait for each stage, multiply it, release
// it, then store the tile (or its split-k partial).
template <bool kBf16, int BM, int BN, int STAGES, int WAIT, int GROUP, int CLUSTER>
__device__ __forceinline__ void ConsumeAndStore(const Params& p, unsigned char* smem,
                                                unsigned full0, unsigned empty0, int tiles,
                                                i64 row0, i64 n0, int wg, int warp, int lane) {
  constexpr int kConsumers = BM / 64;
  constexpr int kConsumerThreads = kConsumers * 128;
  using L = WgLayout<BM, BN>;
  if constexpr (kConsumers >= 2) {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegisters));
  }
  const int cw = wg - 1;  // consumer warpgroup: rows 64 cw .. 64 cw + 63 of the tile
  const int g = lane / 4, tq = lane % 4;
  const int r_lo = cw * 64 + warp * 16 + g;

  float acc[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0.0f;
  // Issues stage t's two k32 steps into the open wgmma group, once its
  // copies have landed.
  auto multiply_stage = [&](int t, unsigned* e) {
    const int s = t % STAGES;
    MbarWait(full0 + 8 * s, (t / STAGES) & 1);
    const unsigned char* st = smem + s * L::kStage;
    const unsigned a_s = SmemAddr(st) + cw * 64 * 64;
    const unsigned b_s = SmemAddr(st) + L::kA;
    StageMetadata(reinterpret_cast<const unsigned*>(st + L::kA + L::kB), r_lo, tq, e);
    FenceAccumulators<BN / 2>(acc);
    WgmmaFence();
#pragma unroll
    for (int k = 0; k < 2; ++k) {  // k32 step k: 32 bytes into A's rows, 64 into op(B)'s
      WgmmaSp<BN, kBf16>::Mma(acc, Desc(a_s + k * 32, 8 * 64, 2), Desc(b_s + k * 64, 8 * 128, 1),
                              e[k], 1);
    }
  };
  if constexpr (WAIT == 0) {
    // GROUP stages per commit group, then wait for it: the tensor pipe
    // drains once per GROUP stages (CUTLASS's sparse mainloop also keeps no
    // wgmma.sp group in flight across its waits).
    for (int t = 0; t < tiles; t += GROUP) {
      unsigned e[GROUP][2] = {};
#pragma unroll
      for (int g = 0; g < GROUP; ++g) {
        if (t + g < tiles) multiply_stage(t + g, e[g]);
      }
      WgmmaCommit();
      FenceAccumulators<BN / 2>(acc);
      WgmmaWait<0>();
      FenceAccumulators<BN / 2>(acc);
#pragma unroll
      for (int g = 0; g < GROUP; ++g) asm volatile("" ::"r"(e[g][0]), "r"(e[g][1]));
#pragma unroll
      for (int g = 0; g < GROUP; ++g) {
        if (t + g < tiles)
          ReleaseStage<CLUSTER>(empty0 + 8 * ((t + g) % STAGES), lane);  // completed
      }
    }
  } else {
    static_assert(GROUP == 1, "groups are for tiles that wait for every group");
    unsigned e_prev[2] = {0, 0};
    for (int t = 0; t < tiles; ++t) {
      unsigned e[2];
      multiply_stage(t, e);
      WgmmaCommit();
      FenceAccumulators<BN / 2>(acc);
      WgmmaWait<WAIT>();
      FenceAccumulators<BN / 2>(acc);
      // The previous stage's wgmma has completed: its slot may be refilled.
      // Its metadata registers are used here so that they stayed untouched
      // while it could still read them.
      asm volatile("" ::"r"(e_prev[0]), "r"(e_prev[1]));
      if (t > 0) ReleaseStage<CLUSTER>(empty0 + 8 * ((t - 1) % STAGES), lane);
      e_prev[0] = e[0];
      e_prev[1] = e[1];
    }
  }
  WgmmaWait<0>();
  FenceAccumulators<BN / 2>(acc);

  if (p.o.partial == nullptr) {
    static_assert(
        BN * (BM + 4) * 4 <= STAGES * L::kStage && BM * (BN + 4) * 4 <= STAGES * L::kStage,
        "the staged tile must fit in the pipeline's shared memory");
    // Every consumer is done reading the stages, and every copy has landed
    // (each stage's full barrier was waited for), so the tile may reuse them.
    asm volatile("bar.sync 1, %0;\n" ::"n"(kConsumerThreads) : "memory");
    StoreTileStaged<BM, BN, kConsumerThreads, 1>(p, reinterpret_cast<float*>(smem), acc, row0, n0,
                                                 r_lo, tq, threadIdx.x - 128);
    return;
  }
  EmitPartialTile<BN>(p, acc, row0, n0, r_lo, tq);
}

// CLUSTER 2: CTA pairs along m share op(B): each loads half of the stage's
// op(B) rows and multicasts it to both, so op(B) crosses L2 half as often
// (a pair computes a 2·BM × BN tile). A stage is refilled only once the
// consumers of both CTAs have released it (each consumer warp arrives on
// the empty barriers of both).
template <bool kBf16, int BM, int BN, int STAGES, int WAIT, int GROUP, int CLUSTER>
__global__ void __launch_bounds__((BM / 64 + 1) * 128, 1)
    NmWsKernel(const __grid_constant__ WsMaps maps, const Params p) {
  static_assert(CLUSTER == 1 || CLUSTER == 2, "pairs at most");
  constexpr int kConsumers = BM / 64;
  constexpr int kConsumerWarps = kConsumers * 4;
  using L = WgLayout<BM, BN>;
  extern __shared__ __align__(1024) unsigned char smem[];
  // The mbarriers follow the stages: full[s], then empty[s].
  const unsigned full0 = SmemAddr(smem + STAGES * L::kStage), empty0 = full0 + STAGES * 8;

  i64 row0 = 0, n0 = 0, t_begin = 0;
  const unsigned rank = CLUSTER > 1 ? ClusterRank() : 0;
  if constexpr (CLUSTER == 1) {
    TileOrigin<BM, BN>(p, row0, n0);
  } else {
    // The pair's 2·BM-row tile, then this CTA's half of it.
    TileOriginOf<BM * CLUSTER, BN>(p, (p.m_tiles + CLUSTER - 1) / CLUSTER, blockIdx.x / CLUSTER,
                                   row0, n0);
    row0 += static_cast<i64>(rank) * BM;
  }
  const int tiles = SplitTiles(p, &t_begin);

  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      MbarInit(full0 + 8 * s, 1 + 32);  // the copy thread's arrival + 32 metadata lanes
      MbarInit(empty0 + 8 * s, CLUSTER * kConsumerWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if constexpr (CLUSTER > 1) {
    ClusterSync();  // the peer's barriers exist before anything lands on them
  } else {
    __syncthreads();
  }

  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  if (wg == 0) {
    if constexpr (kConsumers >= 2) {
      asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegisters));
    }
    if (warp == 0) {
      for (int t = 0; t < tiles; ++t) {
        const int s = t % STAGES;
        // A refill waits until the consumers (of both CTAs of a pair) have
        // finished the stage's last use.
        if (t >= STAGES) MbarWait(empty0 + 8 * s, ((t / STAGES) & 1) ^ 1);
        const unsigned full = full0 + 8 * s, st = SmemAddr(smem + s * L::kStage);
        const i64 kt = t_begin + t;
        if (lane == 0) {
          // Both boxes (all of op(B), whichever CTA sends each half),
          // zero-filled past the edges.
          MbarArriveExpectTx(full, L::kA + L::kB);
          TmaLoad2d(st, &maps.a, static_cast<int>(kt * 32), static_cast<int>(row0), full);
          if constexpr (CLUSTER == 1) {
            TmaLoad2d(st + L::kA, &maps.b, static_cast<int>(kt * kNmWgKTile), static_cast<int>(n0),
                      full);
          } else {
            constexpr int kHalf = BN / CLUSTER;
            TmaLoad2dMulticast(st + L::kA + rank * kHalf * 128, &maps.b,
                               static_cast<int>(kt * kNmWgKTile),
                               static_cast<int>(n0 + rank * kHalf), full,
                               static_cast<unsigned short>((1u << CLUSTER) - 1));
          }
        }
        const unsigned m_s = st + L::kA + L::kB;
        for (int c = lane; c < BM * 2; c += 32) {
          const int r = c >> 1, w = c & 1;
          const i64 gr = row0 + r, gw = kt * 2 + w;
          const bool ok = gr < p.m && gw < p.words;
          CpAsync4(m_s + c * 4, ok ? p.meta + gr * p.words + gw : p.meta, ok ? 4 : 0);
        }
        CpAsyncArriveNoinc(full);
      }
    }
  } else {
    ConsumeAndStore<kBf16, BM, BN, STAGES, WAIT, GROUP, CLUSTER>(p, smem, full0, empty0, tiles,
                                                                 row0, n0, wg, warp, lane);
  }
  // A CTA of a pair leaves only once its peer can no longer multicast into
  // it or arrive on its barriers.
  if constexpr (CLUSTER > 1) ClusterSync();
}

// cuTensorMapEncodeTiled, from the driver through the runtime (the build
// links no driver library); null when the driver has none.
PFN_cuTensorMapEncodeTiled_v12000 TensorMapEncoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// A row-major [rows][cols] 16-bit matrix with rows `ld` elements apart, read
// in boxes of box_cols × box_rows in a swizzle mode; false when the driver
// refuses.
bool EncodeMap(CUtensorMap* map, bool bf16, const void* base, i64 rows, i64 cols, i64 ld,
               int box_cols, int box_rows, CUtensorMapSwizzle swizzle) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = TensorMapEncoder();
  if (encode == nullptr) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(ld) * 2};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(box_cols), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  return encode(map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2,
                const_cast<void*>(base), dims, strides, box, elem_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <bool kBf16, int BM, int BN, int ST, int WT, int G, int C>
cudaError_t LaunchWsTile(const NmTcProblem& pr, int splits, float* partial, cudaStream_t stream) {
  constexpr int kSmem = ST * WgLayout<BM, BN>::kStage + 2 * ST * 8;
  auto* kernel = NmWsKernel<kBf16, BM, BN, ST, WT, G, C>;
  cudaError_t err = EnsureDynamicSmem<NmWsKernel<kBf16, BM, BN, ST, WT, G, C>>(kSmem);
  if (err != cudaSuccess) return err;
  const Params p = ParamsOf(pr, BM, BN, splits, partial);
  WsMaps maps{};
  // op(B)'s box: the tile's columns, or the half each CTA of a pair sends.
  if (!EncodeMap(&maps.a, kBf16, pr.a_values, pr.m, pr.k / 2, pr.k / 2, 32, BM,
                 CU_TENSOR_MAP_SWIZZLE_64B) ||
      !EncodeMap(&maps.b, kBf16, pr.b, pr.n, pr.k, pr.ldb, kNmWgKTile, BN / C,
                 CU_TENSOR_MAP_SWIZZLE_128B)) {
    return cudaErrorInvalidValue;
  }
  const i64 m_groups = (p.m_tiles + C - 1) / C;  // CTA pairs share a column tile
  const i64 ctas = m_groups * C * p.n_tiles;
  if (ctas > (i64{1} << 31) - 1) return cudaErrorInvalidValue;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(ctas), 1, static_cast<unsigned>(splits));
  config.blockDim = dim3((BM / 64 + 1) * 128);
  config.dynamicSmemBytes = kSmem;
  config.stream = stream;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = C;
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  config.attrs = &cluster;
  config.numAttrs = C > 1 ? 1 : 0;
  err = cudaLaunchKernelEx(&config, kernel, maps, p);
  return err != cudaSuccess ? err : cudaGetLastError();
}

}  // namespace

// Every compiled warp-specialised tile {bm, bn, stages, wgmma groups left in
// flight, stages per commit group, CTAs sharing op(B), verified}. Measured on an H100
// (docs/PERFORMANCE.md): with 256 columns and a group in flight results were
// wrong (relative error 1e-3 to 2e-2; those tiles were dropped); waiting for
// every stage's wgmma they are correct and as fast (0.74-0.81x cuBLAS),
// since the producer keeps loading ahead; 128 x 128 and the 64-column tiles
// (the fastest at 16-64 tokens) are correct either way. Two or three stages
// per commit group were correct and 2-8% slower (ncu: the consumers wait on
// the stages' copies, not on the tensor pipe), so none is compiled.
#define SPARSED_NM_WS_TILES(X)   \
  X(128, 128, 6, 1, 1, 1, true)  \
  X(128, 256, 5, 0, 1, 1, true)  \
  X(64, 256, 5, 0, 1, 1, true)   \
  X(128, 64, 6, 1, 1, 1, true)   \
  X(64, 64, 8, 1, 1, 1, true)    \
  X(128, 256, 5, 0, 1, 2, false) \
  X(64, 256, 5, 0, 1, 2, false)  \
  X(128, 128, 6, 0, 1, 2, false)

const std::vector<NmWgTile>& NmWsTiles() {
#define SPARSED_NM_WS_ENTRY(BM, BN, ST, WT, G, C, OK) {BM, BN, ST, WT, true, OK, G, C},
  static const std::vector<NmWgTile> tiles = {SPARSED_NM_WS_TILES(SPARSED_NM_WS_ENTRY)};
#undef SPARSED_NM_WS_ENTRY
  return tiles;
}

bool NmWsSupports(const NmTcProblem& p) {
  auto aligned16 = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  constexpr i64 kMax = (i64{1} << 31) - 1;
  return NmWgSupports(p) && p.k % 16 == 0 && p.ldb % 8 == 0 && p.ldb >= p.k &&
         aligned16(p.a_values) && aligned16(p.b) && p.m <= kMax && p.n <= kMax && p.k <= kMax;
}

cudaError_t LaunchNmWs(const NmTcProblem& pr, const NmWgTile& t, int splits, float* partial,
                       cudaStream_t stream) {
  if (pr.m == 0 || pr.n == 0) return cudaSuccess;
  if (!NmWsSupports(pr) || !LaunchShapeOk(pr, t, splits, partial)) return cudaErrorInvalidValue;
  const bool bf16 = pr.type == ValueType::kBF16;
#define SPARSED_NM_WS_LAUNCH(BM, BN, ST, WT, G, C, OK)                                    \
  if (t.bm == BM && t.bn == BN && t.stages == ST && t.wait == WT && t.group == G &&       \
      t.cluster == C) {                                                                   \
    return bf16 ? LaunchWsTile<true, BM, BN, ST, WT, G, C>(pr, splits, partial, stream)   \
                : LaunchWsTile<false, BM, BN, ST, WT, G, C>(pr, splits, partial, stream); \
  }
  SPARSED_NM_WS_TILES(SPARSED_NM_WS_LAUNCH)
#undef SPARSED_NM_WS_LAUNCH
  return cudaErrorInvalidValue;
}

}  // namespace sparsed::cuda::kernels
