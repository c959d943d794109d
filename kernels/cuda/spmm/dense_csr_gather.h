// C = finish(alpha · D · Sᵀ) for D dense [m, k] f32 row-major and S CSR
// [n, k] f32 int32 (the F.linear form with a CSR weight: output column j is
// the sparse row j of S), without atomics, transposes or a CSR variant's
// reduction to S·Dᵀ; the epilogue fused (epilogue.h; c_in and C row-major
// [m, n]). The Sparse DNN layer Y·W is this form with S = Wᵀ stored.
//
// A CTA owns TB tokens (rows of D and C) at a time and stages their columns
// of D transposed in shared memory (Ds[kk][t]: the TB tokens of one column
// contiguous, 16-byte blocks XOR-swizzled so the transposing stores are
// conflict-free); a lane group of TB/4 lanes, 4 tokens a lane, walks one
// row j of S: its entries are loaded coalesced, 32 at a time, into a
// per-warp list in shared memory, and each entry costs one broadcast read
// of (column, value) and one conflict-free float4 read of Ds[col][tokens]
// per lane. A warp runs 128/TB rows at once. The sums go to
// a shared C tile [TB][rows of the batch] and leave coalesced along j with
// the epilogue applied. The grid is persistent (as many CTAs as fit on the
// device): CTA p takes an equal slice of the (token tile, row j) pairs in
// order, so D is staged once per tile a slice touches (in the clustered
// configuration two CTAs share a slice and each stages half of the tile into
// both, through distributed shared memory).
//
// k wider than shared memory is staged in up to 16 column chunks; each chunk
// scans the whole row and keeps the entries in its columns, so column order
// within a row is not relied on (duplicates add up), and partial sums stay
// in the C tile between chunks. Rows of any length (0 or more than 32
// entries) are taken in windows of 32. Results do not depend on the grid
// (each sum is added in the row's stored order, chunk by chunk).
//
// Several compiled configurations (tile shapes) are kept so one GPU run can
// time them all; CudaBackendOptions::csr_dense_gather_config picks one.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "epilogue.h"

namespace sparsed::cuda::kernels {

// The compiled configurations, by index [0, kDenseGatherConfigs).
inline constexpr int kDenseGatherConfigs = 4;

// A configuration's name ("t32_w8_b256": tokens per tile, warps per CTA,
// rows of S per batch, …); nullptr for an index out of range.
const char* DenseGatherConfigName(int config);

// The configuration to use for a requested index: itself when in range,
// -1 (none) when not; a negative request means the default, which is the
// environment variable SPARSED_DENSE_GATHER_CONFIG (read once) when it names
// a configuration, else 0.
int ResolveDenseGatherConfig(int requested);

// Tokens (rows of D and C) a CTA of `config` stages for D of k columns on
// the current device; 0 when the launch would be refused (config out of
// range, k < 1, or k needing more than 16 column chunks). The dispatcher
// takes the kernel only where this is > 0.
int DenseCsrGatherRows(int64_t k, int config);

// Preconditions: DenseCsrGatherRows(k, config) > 0; S's indices valid
// (row_ptr non-decreasing from 0, col < k); c does not alias d, c_in or S.
// cudaErrorInvalidValue when the sizes or config are not supported.
cudaError_t LaunchDenseCsrGather(int config, const float* d, int64_t m, int64_t k,
                                 const int32_t* row_ptr, const int32_t* col_idx,
                                 const float* values, int64_t n, const Epilogue& e, float* c,
                                 cudaStream_t stream);

}  // namespace sparsed::cuda::kernels
