// Direct SpMM kernels for BSR and N:M A (not transposed) times a dense
// row-major B: C[m, n] = finish(alpha * A * B + beta * C_in) with float
// accumulation and the epilogue of CsrSpmmProblem. Straightforward kernels
// (correctness first); transposed and dense-times-sparse forms are reduced to
// the CSR path by the backend.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "epilogue.h"
#include "spmm/csr_spmm_problem.h"

namespace sparsed::cuda::kernels {

// A is BSR [m, k] with R x C blocks (int64 block indices when idx64, else
// int32); B is [k, n] of `type`.
cudaError_t LaunchBsrSpmm(ValueType type, bool idx64, const void* block_row_ptr,
                          const void* block_col_idx, const void* a_values, int64_t R, int64_t C,
                          int64_t m, int64_t k, const void* b, int64_t n, float* c,
                          const Epilogue& e, cudaStream_t stream);

// A is N:M [m, k] (values and metadata as tensor.h lays them out).
cudaError_t LaunchNmSpmm(ValueType type, const void* a_values, const int32_t* meta, int nm_n,
                         int nm_m, bool packed, int64_t m, int64_t k, const void* b, int64_t n,
                         float* c, const Epilogue& e, cudaStream_t stream);

}  // namespace sparsed::cuda::kernels
