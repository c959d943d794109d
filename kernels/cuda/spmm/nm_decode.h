// 2:4 × a few dense columns on CUDA cores: the decode-sized product (one to
// a handful of tokens), where the weight is read once and nothing else
// matters. Same problem and output contract as the tensor-core kernels
// (nm_tc_kernels.h); no padding of the tokens to an instruction's 8 or 64
// columns and no split-k partials: one warp per row of A walks its stored
// values and metadata words 16 bytes at a time, reads the few dense columns
// it selects through L1, and reduces across its lanes.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "spmm/nm_tc_kernels.h"

namespace sparsed::cuda::kernels {

// The column counts compiled: a kernel for at most `tokens` columns of P
// (1, 2), each taking any n up to its count.
const std::vector<int>& NmDecodeTokenCounts();

// Whether the decode kernel takes p: 16-bit values, k % 4 == 0, 1 ≤ n ≤
// the largest count, m and k below 2^31.
bool NmDecodeSupports(const NmTcProblem& p);

// Queues the product with the kernel for at most `tokens` columns (one of
// NmDecodeTokenCounts(), ≥ p.n); the epilogue is fused. cudaErrorInvalidValue
// for anything NmDecodeSupports refuses.
cudaError_t LaunchNmDecode(const NmTcProblem& p, int tokens, cudaStream_t stream);

}  // namespace sparsed::cuda::kernels
