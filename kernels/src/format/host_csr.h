// The intermediate every conversion goes through: a host CSR copy of a matrix
// with int64 indices and values kept as raw bit patterns, so that no value is
// ever rounded (f16/bf16 never pass through float).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/buffer.h"
#include "sparsed/convert.h"
#include "sparsed/tensor.h"

namespace sparsed::format {

// Bit pattern of element i of a values array with elements of `es` bytes
// (2 or 4); 16-bit patterns are zero-extended.
inline uint32_t LoadBits(const void* p, int64_t es, int64_t i) {
  if (es == 2) return static_cast<const uint16_t*>(p)[i];
  return static_cast<const uint32_t*>(p)[i];
}
inline void StoreBits(void* p, int64_t es, int64_t i, uint32_t bits) {
  if (es == 2) {
    static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(bits);
  } else {
    static_cast<uint32_t*>(p)[i] = bits;
  }
}
// +0 or -0 in any of the value types (all keep the sign in the top bit).
inline bool IsZeroBits(int64_t es, uint32_t bits) {
  return (bits & (es == 2 ? 0x7fffu : 0x7fffffffu)) == 0;
}
// The value as a float, for error messages.
float BitsToFloat(DType dtype, uint32_t bits);

struct HostCsr {
  int64_t rows = 0, cols = 0;
  DType dtype = DType::kF32;
  std::vector<int64_t> row_ptr;  // rows + 1
  std::vector<int64_t> col_idx;  // strictly increasing within a row
  std::vector<uint32_t> bits;    // value bit patterns, parallel to col_idx
  int64_t nnz() const { return static_cast<int64_t>(col_idx.size()); }
};

// The entries of a valid, canonical, 2-D host tensor of any format. Dense,
// BSR and N:M drop zero values (their zeros are fill); COO, CSR and CSC keep
// every stored entry.
HostCsr ReadHostCsr(const Tensor& t);
// RESOURCE_EXHAUSTED when the offsets of a host CSR of `d` (rows + 1 int64s)
// and, with_transpose, of its transpose (cols + 1 more) would take more than
// half the machine's memory: a valid [2e14, 0] COO must not make a conversion
// throw bad_alloc.
absl::Status CheckHostCsrFits(const TensorDesc& d, bool with_transpose);
// CheckHostCsrFits, then the host memory of the conversion (offsets, indices
// and value bits, read and written, and the transpose's) reserved against
// the host's memory account, so memory_limit_bytes bounds it (issue 17: a
// 52-byte request for a huge empty matrix took gigabytes of scratch).
absl::StatusOr<ScratchReservation> ReserveHostCsr(const TensorDesc& d, bool with_transpose);

// The transpose (a counting sort by column; rows come out sorted).
HostCsr TransposeHostCsr(const HostCsr& a);

// Parameters of the tensor WriteHostCsr builds; block_* only for BSR and
// nm_* only for N:M (already checked to be sane for the shape).
struct WriteSpec {
  Format format = Format::kCsr;
  std::optional<DType> index_dtype;  // unset: the narrowest that fits
  int64_t block_rows = 0, block_cols = 0;
  int nm_n = 0, nm_m = 0;
};

// A new host tensor of `spec.format` holding a's entries, per convert.h's
// rules (BSR blocks zero-filled; N:M groups filled to n slots, zero-valued
// entries counting as empty; more than n non-zeros in a group is
// INVALID_ARGUMENT naming the row and group).
absl::StatusOr<Tensor> WriteHostCsr(const HostCsr& a, const WriteSpec& spec);

}  // namespace sparsed::format
