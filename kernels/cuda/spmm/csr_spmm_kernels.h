// Launchers of our CSR SpMM kernels (csr_spmm_kernels.cu). Each queues work on
// `stream` and returns the launch error. Problems are CsrSpmmProblem's
// (csr_spmm.h); the launchers assume the variant checked Supports().
#pragma once

#include <cuda_runtime.h>

#include "csr_spmm_problem.h"

namespace sparsed::cuda::kernels {

// One thread per row, walking all columns in chunks.
cudaError_t LaunchRowSplit(const CsrSpmmProblem& p, cudaStream_t stream);

// Rows longer than `threshold` cut into segments (device arrays): segment s
// covers non-zeros [seg_begin[s], seg_end[s]); long row y is long_rows[y] and
// owns segments [row_seg[y], row_seg[y + 1]); partials holds num_segs * n
// floats.
struct LongRowSplit {
  int64_t threshold = 0;
  int64_t num_segs = 0, num_long = 0;
  const int32_t* seg_begin = nullptr;
  const int32_t* seg_end = nullptr;
  const int32_t* long_rows = nullptr;
  const int32_t* row_seg = nullptr;
  float* partials = nullptr;
};

// `lanes` (4, 8, 16 or 32) threads per row, each covering `vectors` (1, 2 or
// 4; > 1 only with 32 lanes) 16-byte vectors of B's row per non-zero. With
// `split`, rows longer than its threshold are computed in segments by more
// sub-warps and finished by a third pass.
cudaError_t LaunchWarpRow(const CsrSpmmProblem& p, int lanes, int vectors, cudaStream_t stream,
                          const LongRowSplit* split = nullptr);

// `lanes` (8 or 32) threads per row split its non-zeros; each holds a
// 32-column tile of the row; partial tiles are reduced across the lanes.
cudaError_t LaunchNnzSplit(const CsrSpmmProblem& p, int lanes, cudaStream_t stream);

// A block of 128 threads per row; A's entries staged in shared memory; for
// wide B (n >= 128 vector widths).
cudaError_t LaunchBlockRow(const CsrSpmmProblem& p, cudaStream_t stream);

// Equal-nnz partitions of `chunk` non-zeros per sub-warp; rows cut by a
// partition boundary are summed by a fix-up pass. `partials` is a device
// buffer of NnzBalancedPartialFloats(p, chunk) floats.
int64_t NnzBalancedPartialFloats(const CsrSpmmProblem& p, int64_t chunk);
cudaError_t LaunchNnzBalanced(const CsrSpmmProblem& p, int64_t chunk, int lanes, float* partials,
                              cudaStream_t stream);

// acc[cols, n] += alpha · Sᵀ · B for S CSR [rows, cols] (nnz stored entries)
// and B dense [rows, n], f32: entry (i, j, v) adds alpha · v · B[i, :] to acc
// row j. Sᵀ is never built; additions are atomic, so the order in which an
// element's terms are summed (its last bits) can vary from run to run.
cudaError_t LaunchCsrScatterSpmm(const int32_t* row_ptr, const int32_t* col_idx,
                                 const float* values, int64_t rows, int64_t nnz, const float* b,
                                 int64_t n, float alpha, float* acc, cudaStream_t stream);

// Lanes per row and vectors per lane that cover n columns.
void PickWarpRowShape(const CsrSpmmProblem& p, int* lanes, int* vectors);
// Whether n is a multiple of the 16-byte vector width of p's value type.
bool VectorAligned(const CsrSpmmProblem& p);

}  // namespace sparsed::cuda::kernels
