// The benchmark matrices of bench_spmm, as canonical host CSR (f32, int32):
// uniform random, R-MAT power law, the 2-D 5-point Laplacian, and Matrix
// Market files.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed::bench {

// rows x cols, each entry present with probability `density` (row lengths
// binomial), values uniform in [-1, 1].
Tensor UniformRandomCsr(int64_t rows, int64_t cols, double density, uint64_t seed);

// R-MAT graph of 2^scale vertices and edge_factor * 2^scale edges drawn with
// probabilities (0.57, 0.19, 0.19, 0.05); duplicate edges merged.
Tensor RmatCsr(int scale, int edge_factor, uint64_t seed);

// The 5-point Laplacian of a grid x grid mesh: (grid^2) x (grid^2).
Tensor Laplacian5Csr(int64_t grid);

// A Matrix Market file (sparsed's reader), canonical CSR with int32 indices.
absl::StatusOr<Tensor> MatrixMarketCsr(const std::string& path);

}  // namespace sparsed::bench
