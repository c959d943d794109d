// Content validation of tensors (the description is checked by ValidateDesc).
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed {

struct ValidateOptions {
  // Accept indices that are unsorted or duplicated within a row (the caller
  // will canonicalise with SortAndSumDuplicates). Range checks still apply.
  bool allow_unsorted = false;
  // Reject NaN and Inf values.
  bool reject_non_finite = false;
};

// Checks a host tensor's arrays against its description. Every violation is
// INVALID_ARGUMENT naming `field`, the component, the position and the value:
//   csr: row_ptr[0] == 0, non-decreasing, row_ptr[rows] == nnz; col_idx in
//        [0, cols); strictly increasing within a row (unless allow_unsorted).
//   coo: row_idx in [0, rows), col_idx in [0, cols); (row, col) strictly
//        increasing in row-major order (unless allow_unsorted).
//   dense: nothing beyond sizes (and finiteness if asked).
absl::Status ValidateTensor(const Tensor& t, const ValidateOptions& options = {},
                            std::string_view field = "tensor");

// Returns a canonical copy of a valid-but-unsorted COO or CSR tensor: entries
// sorted row-major, duplicates summed (nnz may shrink). Dense passes through.
absl::StatusOr<Tensor> SortAndSumDuplicates(const Tensor& t);

}  // namespace sparsed
