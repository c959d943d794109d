// The "hub" of the device conversions: every format converts to and from a
// CSR with int64 indices on the device, so n formats need 2n paths instead
// of n². Hub arrays are workspace temporaries or alias the source tensor
// (never written through).
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "exec_context.h"
#include "sparsed/convert.h"
#include "sparsed/tensor.h"

namespace sparsed::cuda {

struct HubCsr {
  int64_t rows = 0, cols = 0, nnz = 0;
  const int64_t* row_ptr = nullptr;  // rows + 1
  const int64_t* col_idx = nullptr;  // nnz, sorted within each row
  const void* values = nullptr;      // nnz of dtype
  DType dtype = DType::kF32;
  int elem_bytes() const { return static_cast<int>(SizeOf(dtype)); }
};

// The transpose of a CSR pattern: row_ptr (cols + 1), col_idx (nnz) and perm,
// where entry p of the transpose is entry perm[p] of the input (stable: each
// output row lists input rows in increasing order). perm is null for nnz 0.
struct TransposedPattern {
  int64_t* row_ptr = nullptr;
  int64_t* col_idx = nullptr;
  int64_t* perm = nullptr;
};
absl::StatusOr<TransposedPattern> TransposePattern(int64_t rows, int64_t cols, int64_t nnz,
                                                   const int64_t* row_ptr, const int64_t* col_idx,
                                                   const ExecContext& ctx, Workspace& ws);

// A 2-D dense or any sparse tensor on the device as a hub CSR. Dense drops
// zeros; BSR and N:M drop padding and stored zeros; COO, CSR and CSC keep
// every stored entry.
absl::StatusOr<HubCsr> ToHub(const Tensor& t, const ExecContext& ctx, Workspace& ws);
absl::StatusOr<HubCsr> TransposeHub(const HubCsr& h, const ExecContext& ctx, Workspace& ws);
// The entries with flags[e] != 0 (flags null: the non-zero entries).
absl::StatusOr<HubCsr> CompactHub(const HubCsr& h, const uint8_t* flags, const ExecContext& ctx,
                                  Workspace& ws);
// A new tensor of format `to` on ctx's device holding the hub's entries, per
// the rules of convert.h. Options must have been checked (CheckConvertTarget).
absl::StatusOr<Tensor> FromHub(const HubCsr& h, Format to, const ConvertOptions& options,
                               const ExecContext& ctx, Workspace& ws);
// The hub as a dense row-major [rows, cols] workspace array.
absl::StatusOr<const void*> HubToDense(const HubCsr& h, const ExecContext& ctx, Workspace& ws);

// Checks the target of a conversion of `desc` to `to` without touching data.
absl::Status CheckConvertTarget(const TensorDesc& desc, Format to, const ConvertOptions& options);

// int64 copy (or alias, when already int64) of an index component.
absl::StatusOr<const int64_t*> WideIndices(const Tensor& t, std::string_view component,
                                           const ExecContext& ctx, Workspace& ws);
// Exclusive prefix sum of `count` int64 values (a new workspace array).
absl::StatusOr<int64_t*> ExclusiveScan(const int64_t* in, int64_t count, const ExecContext& ctx,
                                       Workspace& ws);
// Stable ascending radix sort of (key, value) pairs on the low end_bit bits.
absl::Status SortPairs(const uint64_t* keys_in, uint64_t* keys_out, const int64_t* values_in,
                       int64_t* values_out, int64_t count, int end_bit, const ExecContext& ctx,
                       Workspace& ws);
// Reads one int64 from the device once the stream has reached it.
absl::StatusOr<int64_t> ReadBack(const int64_t* p, const ExecContext& ctx);
// Bits needed to hold every value in [0, max_value] (at least 1).
int BitsFor(uint64_t max_value);

}  // namespace sparsed::cuda
