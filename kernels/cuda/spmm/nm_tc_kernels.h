// 2:4 SpMM on sparse tensor cores (mma.sp m16n8k32, bf16/f16 values, f32
// accumulation): the problem every N:M tensor-core variant solves and the
// kernels' launch interface (C++17: nvcc compiles it with the kernels).
//
//   P[m, n] = A[m, k] · op(B)[k, n]                           (f32 accumulation)
//   out     = min(relu?(alpha·P + beta·C_in + bias), clamp_max)   (each optional)
//
// A is 2:4 along its rows exactly as tensor.h stores N:M 2:4: values
// [m, k/2] row-major (the two kept values of each group of four, in
// position order), meta [m, ceil(k/32)] int32 words, 8 groups per word, one
// nibble per group (first position in bits 0-1, second in bits 2-3), each
// row starting a new word. op(B) [k, n] is row-major with row stride ldb, or
// stored [n][k] (b_nmajor: Xᵀ of a row-major activation X [n, k]). out is
// row-major [m, n] with row stride ldc, or [n][m] (c_trans: Y = X·Wᵀ computed
// as Yᵀ = W·Xᵀ); C_in (f32) is laid out like out; bias is indexed by out's
// column (P's column, or P's row when c_trans).
//
// Preconditions (checked by Supports): k % 4 == 0 (groups of four), values
// and B of one 16-bit type, positions ascending within a group (what every
// 2:4 tensor of ours holds: validate_blocked checks it).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "epilogue.h"
#include "spmm/csr_spmm_problem.h"  // ValueType, OutType

namespace sparsed::cuda {

struct NmTcProblem {
  int64_t m = 0, n = 0, k = 0;
  const void* a_values = nullptr;  // m · k/2 of `type`
  const int32_t* meta = nullptr;   // m · ceil(k/32) words
  ValueType type = ValueType::kBF16;
  const void* b = nullptr;
  int64_t ldb = 0;
  bool b_nmajor = false;
  void* out = nullptr;
  OutType out_type = OutType::kF32;
  int64_t ldc = 0;
  bool c_trans = false;
  Epilogue epilogue;
};

namespace kernels {

// A CTA tile: bm × bn of P with wm × wn × wk warps (wk warps along k, each
// taking ks k32 steps of a stage: 32·ks·wk logical k per stage), `stages`
// deep; the grid's z dimension splits k further (`splits` > 1 writes f32
// partial products to `partial` [splits, m, n], which LaunchNmTcFinish
// reduces).
struct NmTcTile {
  int bm, bn, wm, wn, wk, ks, stages;
};
// The tiles compiled (nm_tc_kernels.cu); LaunchNmTc takes one of these.
const std::vector<NmTcTile>& NmTcTiles();
// Logical k per pipeline stage of a tile (32 · ks · wk).
int NmTcKTile(const NmTcTile& tile);

// Queues the product for one tile: with splits == 1 the epilogue is fused
// and out written; else f32 partials go to `partial` and LaunchNmTcFinish
// must follow. cudaErrorInvalidValue for a tile not in NmTcTiles().
cudaError_t LaunchNmTc(const NmTcProblem& p, const NmTcTile& tile, int splits, float* partial,
                       cudaStream_t stream);
// Sums `splits` partial products and applies the epilogue into p.out.
cudaError_t LaunchNmTcFinish(const NmTcProblem& p, int splits, const float* partial,
                             cudaStream_t stream);

}  // namespace kernels
}  // namespace sparsed::cuda
