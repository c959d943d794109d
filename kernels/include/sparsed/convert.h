// Format conversions (exact: no value is lost or rounded) and transposition.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed {

// Parameters of the target format.
struct ConvertOptions {
  // Index dtype of a sparse result; unset: the narrowest that fits (i32 unless
  // a dimension or nnz needs i64).
  std::optional<DType> index_dtype;
  int64_t block_rows = 0;  // BSR target: block R x C (both required)
  int64_t block_cols = 0;
  int nm_n = 0;  // N:M target (both required); the source's pattern must
  int nm_m = 0;  // already have at most n non-zeros in every group of m
  // Block options for a non-BSR target, or n:m options for a non-N:M target,
  // are INVALID_ARGUMENT naming the option (never silently ignored).
  // index_dtype is accepted for every target (dense ignores it; N:M only
  // records it in the description: its meta is always i32).
};

// Converts a valid, canonical host tensor to format `to`. Values keep their
// dtype. Rules:
// - to a sparse format from dense, zeros are dropped;
// - to BSR, every block holding an entry is stored, zero-filled elsewhere
//   (incomplete edge blocks are padded with zeros);
// - to N:M, every group keeps exactly n slots, zero-filled where the group
//   has fewer entries (the filled slots take the lowest unused positions);
//   a group with more than n non-zeros is INVALID_ARGUMENT naming the row and
//   group (prune to N:M instead); stored zeros count as empty;
// - from BSR and N:M to another format, the zero fill is dropped, and so is
//   any stored zero value;
// - among dense, COO, CSR and CSC, stored entries (even explicit zeros) are
//   kept as they are; a zero counts as an entry for BSR too (its block is
//   stored).
// Values are copied bit for bit (f16/bf16 never pass through float), so
// dense -> X -> dense and X -> Y -> X (X without stored zeros) are exact.
// Host tensors only (INVALID_ARGUMENT otherwise).
absl::StatusOr<Tensor> Convert(const Tensor& t, Format to, const ConvertOptions& options = {});
inline absl::StatusOr<Tensor> Convert(const Tensor& t, Format to,
                                      std::optional<DType> index_dtype) {
  ConvertOptions options;
  options.index_dtype = index_dtype;
  return Convert(t, to, options);
}

// Checks `options` for a conversion of a tensor so described to `to`
// without touching data (what Convert checks first; backends share it).
absl::Status CheckConvert(const TensorDesc& desc, Format to, const ConvertOptions& options);

// The transpose as a new tensor of the same format and index dtype (BSR:
// block C x R, stored blocks kept; N:M is converted through CSR and needs the
// transposed pattern to fit N:M, else INVALID_ARGUMENT). Host tensors only.
absl::StatusOr<Tensor> Transpose(const Tensor& t);

// The transpose as a zero-copy view sharing t's memory: CSR of Aᵀ is CSC of A
// and vice versa (CSR [m,k] -> CSC [k,m] over the same arrays). Other formats:
// INVALID_ARGUMENT.
absl::StatusOr<Tensor> TransposeView(const Tensor& t);

// The narrowest index dtype that holds every dimension and nnz.
DType NarrowestIndexType(const TensorDesc& desc);

}  // namespace sparsed
