// Format conversions on the host (exact: no value is lost or rounded).
#pragma once

#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed {

// Converts a valid, canonical tensor between dense, COO and CSR. Converting to
// a sparse format drops explicit zeros only when coming from dense. The index
// dtype of a sparse result is `index_dtype`, or the narrowest that fits when
// unset (i32 unless a dimension or nnz needs i64).
absl::StatusOr<Tensor> Convert(const Tensor& t, Format to,
                               std::optional<DType> index_dtype = std::nullopt);

// The transpose as a new tensor of the same format (dense, COO or CSR).
absl::StatusOr<Tensor> Transpose(const Tensor& t);

// The narrowest index dtype that holds every dimension and nnz.
DType NarrowestIndexType(const TensorDesc& desc);

}  // namespace sparsed
