// What the 2:4 tensor-core kernels share (mma.sp in nm_tc_kernels.cu,
// wgmma.sp in nm_wgmma_kernels.cu): where a product element goes (the fused
// epilogue into out, or an f32 partial for split-k) and the metadata fix-up
// for padding. nvcc only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dynamic_smem.h"
#include "epilogue.h"
#include "spmm/nm_tc_kernels.h"

namespace sparsed::cuda::kernels {

// The destination of P = A · op(B) and its epilogue (NmTcProblem's output
// fields); with `partial` set, split z writes raw f32 sums to
// partial[z][row][col] instead and LaunchNmTcFinish applies the epilogue.
struct NmOut {
  void* out;
  float* partial;
  long long m, n, ldc;
  int kind;  // 0 f32, 1 bf16, 2 f16
  bool c_trans;
  Epilogue e;
};

inline NmOut NmOutOf(const NmTcProblem& pr, float* partial) {
  NmOut o{};
  o.out = pr.out;
  o.partial = partial;
  o.m = pr.m;
  o.n = pr.n;
  o.ldc = pr.ldc;
  o.kind = pr.out_type == OutType::kF32 ? 0 : pr.out_type == OutType::kBF16 ? 1 : 2;
  o.c_trans = pr.c_trans;
  o.e = pr.epilogue;
  return o;
}

// Zero nibbles (groups past k, rows past m: zero-filled words) become 0b0100,
// positions 0 and 1, which the instruction accepts; their values are zero.
__device__ __forceinline__ unsigned FixPaddingNibbles(unsigned w) {
  const unsigned nonzero = (w | (w >> 1) | (w >> 2) | (w >> 3)) & 0x11111111u;
  return w | ((~nonzero & 0x11111111u) << 2);
}

// P's element (row, col) with the epilogue into out.
__device__ __forceinline__ void NmFinish(const NmOut& o, long long row, long long col, float acc) {
  const long long idx = o.c_trans ? col * o.ldc + row : row * o.ldc + col;
  const float v = FinishEpilogue(o.e, acc, idx, o.c_trans ? row : col);
  if (o.kind == 0) {
    static_cast<float*>(o.out)[idx] = v;
  } else if (o.kind == 1) {
    static_cast<__nv_bfloat16*>(o.out)[idx] = __float2bfloat16_rn(v);
  } else {
    static_cast<__half*>(o.out)[idx] = __float2half_rn(v);
  }
}

// Columns col and col + 1 of P's row `row` (an mma fragment's pair), for
// split `split`; either may lie past the edge.
__device__ __forceinline__ void NmEmitPair(const NmOut& o, int split, long long row, long long col,
                                           float v0, float v1) {
  if (row >= o.m || col >= o.n) return;
  if (o.partial != nullptr) {
    float* dst = o.partial + (static_cast<long long>(split) * o.m + row) * o.n + col;
    dst[0] = v0;
    if (col + 1 < o.n) dst[1] = v1;
    return;
  }
  NmFinish(o, row, col, v0);
  if (col + 1 < o.n) NmFinish(o, row, col + 1, v1);
}

}  // namespace sparsed::cuda::kernels
