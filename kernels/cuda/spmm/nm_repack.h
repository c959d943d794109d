// N:M with n ≤ 2 and m a multiple of 4 (1:4, 1:8, 2:8, 2:16, 2:32, …) as
// packed 2:4, so that the 2:4 tensor-core kernels take it: every group of
// four columns of such a row holds at most two of the kept values. A group
// with one value gets a zero beside it, one with none two zeros (positions
// stay ascending, as mma.sp's ordered metadata requires).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace sparsed::cuda::kernels {

// In: values [rows, k/m · n] of a 16-bit type and positions [rows, k/m · n]
// (strictly increasing in [0, m) within a group, as validation guarantees).
// Out: values24 [rows, k/2] and meta24 [rows, ceil(k/32)] words in
// NmTcProblem's layout. Preconditions: n ∈ {1, 2}, m % 4 == 0, k % m == 0.
cudaError_t LaunchNmRepackTo24(const uint16_t* values, const int32_t* positions, int n, int m,
                               int64_t rows, int64_t k, uint16_t* values24, int32_t* meta24,
                               cudaStream_t stream);

}  // namespace sparsed::cuda::kernels
