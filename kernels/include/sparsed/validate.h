// Content validation of tensors (the description is checked by ValidateDesc).
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed {

struct ValidateOptions {
  // Accept indices that are unsorted or duplicated within a row (COO, CSR) or
  // a column (CSC); the caller will canonicalise with SortAndSumDuplicates.
  // Range checks still apply. BSR and N:M are always checked for order.
  bool allow_unsorted = false;
  // Reject NaN and Inf values.
  bool reject_non_finite = false;
};

// Checks a host tensor's arrays against its description. Every violation is
// INVALID_ARGUMENT naming `field`, the component, the position and the value:
//   csr: row_ptr[0] == 0, non-decreasing, row_ptr[rows] == nnz; col_idx in
//        [0, cols); strictly increasing within a row (unless allow_unsorted).
//   csc: the same with col_ptr[cols + 1] and row_idx in [0, rows), strictly
//        increasing within a column (unless allow_unsorted).
//   coo: row_idx in [0, rows), col_idx in [0, cols); (row, col) strictly
//        increasing in row-major order (unless allow_unsorted).
//   bsr: block_row_ptr[0] == 0, non-decreasing, block_row_ptr[last] == nnz;
//        block_col_idx in [0, block_col_count), strictly increasing within a
//        block row; the zero padding of edge blocks (positions outside the
//        matrix) holds +0 or -0.
//   nm:  2:4 meta: in each group's nibble the two positions differ and the
//        first (low 2 bits) is the smaller; the unused high nibbles of a
//        row's last word are 0. Other n:m: positions in [0, m), strictly
//        increasing within a group.
//   dense: nothing beyond sizes (and finiteness if asked).
absl::Status ValidateTensor(const Tensor& t, const ValidateOptions& options = {},
                            std::string_view field = "tensor");

// Returns a canonical copy of a valid-but-unsorted COO, CSR or CSC tensor:
// entries sorted row-major (CSC: column-major, i.e. by row within each
// column), duplicates summed in stored order in float64 (nnz may shrink).
// Dense passes through; BSR and N:M are INVALID_ARGUMENT.
absl::StatusOr<Tensor> SortAndSumDuplicates(const Tensor& t);

}  // namespace sparsed
