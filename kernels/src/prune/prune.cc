// Prune: checks, brings the input to a form the modes read (dense, COO or
// CSR), and dispatches to the mode.
#include "sparsed/prune.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "prune_internal.h"
#include "sparsed/buffer.h"
#include "sparsed/convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace prune_internal {

int64_t KeepCount(int64_t total, double sparsity) {
  const double pruned = std::round(sparsity * static_cast<double>(total));
  if (!(pruned > 0.0)) return total;
  if (pruned >= static_cast<double>(total)) return 0;
  return total - static_cast<int64_t>(pruned);
}

DType ResultIndexType(const TensorDesc& input, TensorDesc result) {
  if (IsSparse(input.format)) {
    result.index_dtype = input.index_dtype;
    if (ValidateDesc(result).ok()) return input.index_dtype;
  }
  return NarrowestIndexType(result);
}

}  // namespace prune_internal

namespace {

// NaN has no magnitude to rank by; reject it rather than guess. The values
// are scanned first; rows are indexed (O(rows) scratch) only to name one.
template <class I>
absl::Status CheckNoNan(const Tensor& t) {
  const std::byte* values = t.component("values")->as<std::byte>();
  const int64_t count = t.component("values")->size() / SizeOf(t.desc().dtype);
  bool any = false;
  for (int64_t e = 0; e < count && !any; ++e) {
    any = std::isnan(prune_internal::AbsValueAt(values, t.desc().dtype, e));
  }
  if (!any) return absl::OkStatus();
  const prune_internal::RowEntries<I> m(t);
  for (int64_t r = 0; r < m.rows(); ++r) {
    for (int64_t e = m.begin(r); e < m.end(r); ++e) {
      if (std::isnan(m.abs(e))) {
        return absl::InvalidArgumentError(StrCat("tensor holds NaN at row ", r, ", column ",
                                                 m.col(r, e), "; NaN cannot be ranked"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> Prune(const Tensor& t, const PruneOptions& options) {
  RETURN_IF_ERROR(CheckPrune(t.desc(), options));
  if (!t.device().is_cpu()) {
    return absl::InvalidArgumentError(
        StrCat("tensor is on ", t.device().ToString(), "; pruning runs on host tensors"));
  }
  RETURN_IF_ERROR(ValidateTensor(t, {}, "tensor"));
  // The modes read dense, COO and CSR directly; other formats go through CSR
  // (never through dense), keeping their index dtype.
  std::optional<Tensor> converted;
  if (t.format() != Format::kDense && t.format() != Format::kCoo && t.format() != Format::kCsr) {
    ASSIGN_OR_RETURN(converted, Convert(t, Format::kCsr, t.desc().index_dtype));
  }
  const Tensor& source = converted.has_value() ? *converted : t;
  // The host memory the modes work in (row starts, ranked candidates, block
  // norms) counts against the memory limit like any buffer: a tiny request
  // for a huge empty matrix must not bypass it.
  const TensorDesc& sd = source.desc();
  const int64_t entries = sd.format == Format::kDense ? sd.numel() : sd.nnz;
  ASSIGN_OR_RETURN(const ScratchReservation scratch,
                   ScratchReservation::Take(8 * (sd.rows() + 1) * 2 + 32 * entries, Device::Cpu(),
                                            "prune working memory"));
  RETURN_IF_ERROR(VisitIndexType(source.desc().index_dtype,
                                 [&](auto i) { return CheckNoNan<decltype(i)>(source); }));
  switch (options.mode) {
    case PruneMode::kMagnitude:
      return prune_internal::PruneMagnitude(source, options);
    case PruneMode::kNm:
      return prune_internal::PruneNm(source, options);
    case PruneMode::kBlock:
      return prune_internal::PruneBlock(source, options);
  }
  return absl::InvalidArgumentError("unknown prune mode");  // CheckPrune rules this out
}

}  // namespace sparsed
