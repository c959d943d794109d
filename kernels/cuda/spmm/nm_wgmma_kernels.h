// 2:4 SpMM on Hopper's warpgroup sparse tensor cores (wgmma.mma_async.sp
// m64nNk32, sm_90a only): the prefill-sized tiles. Same problem and output
// contract as the mma.sp kernels (nm_tc_kernels.h), for the one operand
// layout large products take: op(B) stored [n][k] (b_nmajor, the F.linear
// activation X [tokens, k]), which the instruction reads as it lies.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "spmm/nm_tc_kernels.h"

namespace sparsed::cuda::kernels {

// A CTA tile: bm rows of A (bm / 64 warpgroups, one m64 wgmma each) × bn
// columns of P, 64 logical k per stage, `stages` deep, with up to `wait`
// wgmma groups left in flight while the next stage is issued. `ws`: the
// warp-specialised kernel (nm_wgmma_ws_kernels_sm90a.cu: one more
// warpgroup loads the stages with the tensor memory accelerator, the others
// only multiply) instead of every thread loading with cp.async.
struct NmWgTile {
  int bm, bn, stages, wait;
  bool ws = false;
  // Measured correct on a GPU (test_cuda_nm_spmm and bench_nm_spmm's check
  // against cuBLAS); the others are experimental (the tuner's nm_wgmma).
  bool verified = false;
  // Stages a consumer multiplies per wgmma commit group (warp-specialised
  // tiles with wait 0): each group ends by waiting for its wgmma, so more
  // stages per group drain the tensor pipe less often.
  int group = 1;
  // CTAs of a cluster along m that share op(B) (warp-specialised tiles): 2
  // multicasts each stage's op(B) to a pair, halving its traffic from L2.
  int cluster = 1;
};
// The tiles compiled, the cp.async ones then the warp-specialised ones.
const std::vector<NmWgTile>& NmWgTiles();
inline constexpr int kNmWgKTile = 64;

// Whether the wgmma kernels take p (b_nmajor, 16-bit values, k % 4 == 0).
bool NmWgSupports(const NmTcProblem& p);
// Whether the warp-specialised ones do: also what the tensor maps need
// (k % 16 == 0, ldb % 8 == 0, A and op(B) 16-byte aligned, sizes < 2^31).
bool NmWsSupports(const NmTcProblem& p);

// Queues the product for one tile (a compute capability 9.0 device is the
// caller's to check: the code is sm_90a). splits > 1 writes f32 partials to
// `partial` [splits, m, n] for LaunchNmTcFinish. cudaErrorInvalidValue for
// a tile not in NmWgTiles() or a problem NmWgSupports refuses.
cudaError_t LaunchNmWg(const NmTcProblem& p, const NmWgTile& tile, int splits, float* partial,
                       cudaStream_t stream);

// The warp-specialised half (nm_wgmma_ws_kernels_sm90a.cu), reached
// through NmWgTiles() and LaunchNmWg.
const std::vector<NmWgTile>& NmWsTiles();
cudaError_t LaunchNmWs(const NmTcProblem& p, const NmWgTile& tile, int splits, float* partial,
                       cudaStream_t stream);

}  // namespace sparsed::cuda::kernels
