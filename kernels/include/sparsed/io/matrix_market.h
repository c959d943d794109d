// Matrix Market (.mtx) reading and writing.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed::io {

// Reads "%%MatrixMarket matrix coordinate|array real|integer|pattern
// general|symmetric|skew-symmetric". Coordinate files become COO f32 tensors
// (symmetric and skew-symmetric storage expanded to both triangles, pattern
// entries = 1, duplicates kept as in the file, entries sorted row-major); array
// files become dense f32 tensors (column-major in the file, row-major here).
// Errors are INVALID_ARGUMENT naming `source` and the line number.
absl::StatusOr<Tensor> ParseMatrixMarket(std::istream& in, std::string_view source = "<input>");
absl::StatusOr<Tensor> ReadMatrixMarket(const std::string& path);

// Writes COO/CSR as "coordinate real general" and dense 2-D as "array real
// general", with values printed so that they read back bit-exact.
absl::Status WriteMatrixMarket(const Tensor& t, std::ostream& out);
absl::Status WriteMatrixMarket(const Tensor& t, const std::string& path);

}  // namespace sparsed::io
