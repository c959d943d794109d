// Small device kernels the backend uses around SpMM. Each queues work on
// `stream` and returns the launch error.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "spmm/csr_spmm_problem.h"

namespace sparsed::cuda::kernels {

// stats[0] = max row length, stats[1] = empty rows (int64); sum_sq = sum of
// squared row lengths (double). Outputs must be zeroed first.
cudaError_t LaunchRowStats(const int32_t* row_ptr, int64_t m, long long* stats, double* sum_sq,
                           cudaStream_t stream);

// out[cols, rows] = in[rows, cols]ᵀ for 4-byte (f32) or 2-byte elements.
cudaError_t LaunchTranspose(const void* in, void* out, int64_t rows, int64_t cols,
                            int64_t elem_bytes, cudaStream_t stream);

// In place on c[m, n]: c = min(relu?(c + bias[j]), clamp_max).
cudaError_t LaunchBiasReluClamp(float* c, int64_t m, int64_t n, const float* bias, bool relu,
                                bool has_clamp, float clamp_max, cudaStream_t stream);

// out[m, n] = finish(alpha * t[n, m]ᵀ + beta * c_in) with bias/relu/clamp as
// in CsrSpmmProblem: finishes a product computed transposed.
cudaError_t LaunchTransposeFinish(const float* t, float* out, int64_t m, int64_t n, float alpha,
                                  float beta, const float* c_in, const float* bias, bool relu,
                                  bool has_clamp, float clamp_max, cudaStream_t stream);

// out[i] = beta * in[i] for i < count.
cudaError_t LaunchScaledCopy(const float* in, float beta, float* out, int64_t count,
                             cudaStream_t stream);

// out[i] = float(in[i]) for f16 / bf16 input.
cudaError_t LaunchToF32(const void* in, ValueType type, float* out, int64_t count,
                        cudaStream_t stream);

// out[i] = in[i] rounded to nearest even as f16 / bf16 (`type`).
cudaError_t LaunchFromF32(const float* in, ValueType type, void* out, int64_t count,
                          cudaStream_t stream);

// out[i] = int32(in[i]); the caller knows every value fits.
cudaError_t LaunchNarrowIndices(const int64_t* in, int32_t* out, int64_t count,
                                cudaStream_t stream);

}  // namespace sparsed::cuda::kernels
