// Pruning: a dense or sparse tensor in, a sparse tensor out (host reference).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed {

enum class PruneMode : int {
  kMagnitude = 1,  // keep the largest |w| to a target sparsity -> CSR
  kNm = 2,         // keep the n largest |w| of every m along rows -> N:M
  kBlock = 3,      // keep the R x C blocks of largest Frobenius norm -> BSR
};

struct PruneOptions {
  PruneMode mode = PruneMode::kMagnitude;
  // kMagnitude: fraction of the rows*cols positions that end up zero, in
  // [0, 1]; kBlock: fraction of the block positions that end up empty.
  // Kept = total - round(sparsity * total); already-zero positions count as
  // pruned first, so a tensor sparser than the target keeps all its entries.
  double sparsity = 0.0;
  bool per_row = false;  // kMagnitude: the target applies to every row
  int nm_n = 0;          // kNm
  int nm_m = 0;
  int64_t block_rows = 0;  // kBlock
  int64_t block_cols = 0;
};

// Ties are broken deterministically: among equal |w| (or block norms) the
// entry (block) with the smaller row-major position is kept. Values keep
// their dtype; ranking uses the exact stored values. The result is a new
// tensor on the host: CSR (kMagnitude), N:M (kNm), BSR (kBlock).
// INVALID_ARGUMENT names the offending option and value.
absl::StatusOr<Tensor> Prune(const Tensor& t, const PruneOptions& options);

// Checks options against a tensor description without touching data.
absl::Status CheckPrune(const TensorDesc& desc, const PruneOptions& options);

}  // namespace sparsed
