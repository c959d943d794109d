// Validation of pruning options against a tensor description.
#include <cmath>
#include <string>

#include "absl/strings/str_join.h"
#include "prune_internal.h"
#include "sparsed/prune.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

constexpr int64_t kMaxBlockSide = 1024;

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

std::string_view ModeName(PruneMode mode) {
  switch (mode) {
    case PruneMode::kMagnitude:
      return "MAGNITUDE";
    case PruneMode::kNm:
      return "NM";
    case PruneMode::kBlock:
      return "BLOCK";
  }
  return "unknown";
}

// Options that belong to other modes must be left at their defaults.
absl::Status CheckUnusedOptions(const PruneOptions& o) {
  const std::string_view mode = ModeName(o.mode);
  if (o.mode == PruneMode::kNm && o.sparsity != 0.0) {
    return Invalid(StrCat("sparsity = ", o.sparsity, " is not used by NM pruning (n:m sets it)"));
  }
  if (o.mode != PruneMode::kMagnitude && o.per_row) {
    return Invalid(StrCat("per_row = true is only for MAGNITUDE pruning, not ", mode));
  }
  if (o.mode != PruneMode::kNm && (o.nm_n != 0 || o.nm_m != 0)) {
    return Invalid(StrCat("nm = ", o.nm_n, ":", o.nm_m, " is only for NM pruning, not ", mode));
  }
  if (o.mode != PruneMode::kBlock && (o.block_rows != 0 || o.block_cols != 0)) {
    return Invalid(StrCat("block = [", o.block_rows, ", ", o.block_cols,
                          "] is only for BLOCK pruning, not ", mode));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckPrune(const TensorDesc& desc, const PruneOptions& o) {
  const int mode = static_cast<int>(o.mode);
  if (mode < static_cast<int>(PruneMode::kMagnitude) ||
      mode > static_cast<int>(PruneMode::kBlock)) {
    return Invalid(StrCat("mode = ", mode, " is not one of MAGNITUDE (1), NM (2), BLOCK (3)"));
  }
  RETURN_IF_ERROR(ValidateDesc(desc, "tensor"));
  if (desc.shape.size() != 2) {
    return Invalid(
        StrCat("tensor.shape = ", ShapeString(desc.shape), " must have 2 dimensions to be pruned"));
  }
  RETURN_IF_ERROR(CheckUnusedOptions(o));
  if (o.mode != PruneMode::kNm &&
      !(std::isfinite(o.sparsity) && o.sparsity >= 0.0 && o.sparsity <= 1.0)) {
    return Invalid(StrCat("sparsity = ", o.sparsity, " is not a number in [0, 1]"));
  }
  if (o.mode == PruneMode::kNm) {
    if (o.nm_n < 1 || o.nm_m > 32 || o.nm_n >= o.nm_m) {
      return Invalid(StrCat("nm = ", o.nm_n, ":", o.nm_m, " must satisfy 1 <= n < m <= 32"));
    }
    if (desc.cols() % o.nm_m != 0) {
      return Invalid(StrCat("nm = ", o.nm_n, ":", o.nm_m,
                            ": m does not divide tensor.shape[1] = ", desc.cols()));
    }
    // rows * groups * n, computed without overflow (groups * n <= cols).
    const int64_t per_row = desc.cols() / o.nm_m * o.nm_n;
    if (per_row > 0 && desc.rows() > prune_internal::kMaxStoredValues / per_row) {
      return Invalid(StrCat("tensor.shape = ", ShapeString(desc.shape), " pruned to nm = ", o.nm_n,
                            ":", o.nm_m, " would store more than 2^31 values"));
    }
  }
  if (o.mode == PruneMode::kBlock) {
    if (o.block_rows < 1 || o.block_rows > kMaxBlockSide || o.block_cols < 1 ||
        o.block_cols > kMaxBlockSide) {
      return Invalid(StrCat("block = [", o.block_rows, ", ", o.block_cols,
                            "] needs both sides in [1, ", kMaxBlockSide, "]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsed
