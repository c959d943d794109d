// C = finish(alpha · D · Sᵀ) for D dense [m, k] f32 row-major and S CSR
// [n, k] f32 int32 (the F.linear form with a CSR weight: each output column
// j is a sparse row of S), gathered without atomics, transposes or a CSR
// variant's reduction to S·Dᵀ: a CTA keeps `rows` rows of D in shared memory
// and its threads each walk one row of S, so C is written in order, row by
// row, with the epilogue fused (epilogue.h; c_in and C row-major [m, n]).
// The Sparse DNN layer Y·W is this form with S = Wᵀ stored.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "epilogue.h"

namespace sparsed::cuda::kernels {

// Rows of D a CTA keeps for k columns (0: k too wide for shared memory).
int DenseCsrGatherRows(int64_t k);

// Preconditions: DenseCsrGatherRows(k) > 0; indices valid (col < k); c does
// not alias d, c_in or S.
cudaError_t LaunchDenseCsrGather(const float* d, int64_t m, int64_t k, const int32_t* row_ptr,
                                 const int32_t* col_idx, const float* values, int64_t n,
                                 const Epilogue& e, float* c, cudaStream_t stream);

}  // namespace sparsed::cuda::kernels
