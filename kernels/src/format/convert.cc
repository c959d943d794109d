// Convert between the six formats: every pair goes through a HostCsr (see
// host_csr.h), so each format only needs a reader and a writer.
#include "sparsed/convert.h"

#include <limits>

#include "host_csr.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace {

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

// Options that belong to another target are rejected rather than ignored, so
// that a typo in the target format does not silently drop the block size.
absl::Status CheckOptions(const TensorDesc& d, Format to, const ConvertOptions& o) {
  if (to != Format::kBsr) {
    if (o.block_rows != 0) {
      return Invalid(StrCat("options.block_rows = ", o.block_rows,
                            " is only for a bsr target, not ", FormatName(to)));
    }
    if (o.block_cols != 0) {
      return Invalid(StrCat("options.block_cols = ", o.block_cols,
                            " is only for a bsr target, not ", FormatName(to)));
    }
  }
  if (to != Format::kNm) {
    if (o.nm_n != 0) {
      return Invalid(
          StrCat("options.nm_n = ", o.nm_n, " is only for an nm target, not ", FormatName(to)));
    }
    if (o.nm_m != 0) {
      return Invalid(
          StrCat("options.nm_m = ", o.nm_m, " is only for an nm target, not ", FormatName(to)));
    }
  }
  if (to == Format::kBsr) {
    if (o.block_rows < 1) {
      return Invalid(StrCat("options.block_rows = ", o.block_rows,
                            " must be >= 1 (a bsr target needs the block height)"));
    }
    if (o.block_cols < 1) {
      return Invalid(StrCat("options.block_cols = ", o.block_cols,
                            " must be >= 1 (a bsr target needs the block width)"));
    }
    // The upper bound on block sides lives in ValidateDesc.
    TensorDesc probe{Format::kBsr, d.dtype, DType::kI64, d.shape, 0};
    probe.block_rows = o.block_rows;
    probe.block_cols = o.block_cols;
    RETURN_IF_ERROR(ValidateDesc(probe, "options"));
    if (o.index_dtype.has_value()) {
      probe.index_dtype = *o.index_dtype;
      RETURN_IF_ERROR(ValidateDesc(probe, "result"));
    }
  }
  if (to == Format::kNm) {
    if (o.nm_m < 2 || o.nm_m > 32 || o.nm_n < 1 || o.nm_n >= o.nm_m) {
      return Invalid(StrCat("options.nm_n:nm_m = ", o.nm_n, ":", o.nm_m,
                            " must satisfy 1 <= n < m <= 32 (an nm target needs both)"));
    }
    if (d.cols() % o.nm_m != 0) {
      return Invalid(StrCat("options.nm_m = ", o.nm_m, " does not divide tensor.shape[1] = ",
                            d.cols(), " (groups of m run along rows)"));
    }
  }
  if (IsSparse(to) && to != Format::kBsr && to != Format::kNm && o.index_dtype.has_value()) {
    // Report "i32 cannot index ..." before anything is computed.
    RETURN_IF_ERROR(ValidateDesc({to, d.dtype, *o.index_dtype, d.shape, 0}, "result"));
  }
  return absl::OkStatus();
}

}  // namespace

DType NarrowestIndexType(const TensorDesc& desc) {
  constexpr int64_t kMax32 = std::numeric_limits<int32_t>::max();
  bool fits = desc.nnz <= kMax32;
  for (int64_t d : desc.shape) fits = fits && d <= kMax32;
  return fits ? DType::kI32 : DType::kI64;
}

absl::StatusOr<Tensor> Convert(const Tensor& t, Format to, const ConvertOptions& options) {
  if (!t.device().is_cpu()) {
    return Invalid(StrCat("tensor is on ", t.device().ToString(), "; Convert needs a host tensor"));
  }
  // Conversions index with the stored indices, so the content must be valid.
  RETURN_IF_ERROR(ValidateTensor(t, {}, "tensor"));
  const int to_int = static_cast<int>(to);
  if (to_int < static_cast<int>(Format::kDense) || to_int > static_cast<int>(Format::kNm)) {
    return Invalid(
        StrCat("target format = ", to_int, " is not one of DENSE, COO, CSR, CSC, BSR, NM"));
  }
  if (options.index_dtype.has_value() && !IsIndexType(*options.index_dtype)) {
    return Invalid(StrCat("index_dtype = ", static_cast<int>(*options.index_dtype),
                          " is not one of I32, I64"));
  }
  const TensorDesc& d = t.desc();
  if (IsSparse(to) && d.shape.size() != 2) {
    return Invalid(StrCat("tensor.shape has ", d.shape.size(),
                          " dimension(s); only 2-D tensors convert to ", FormatName(to)));
  }
  RETURN_IF_ERROR(CheckOptions(d, to, options));
  if (!IsSparse(to) && !IsSparse(d.format)) return t.Clone();  // keeps -0 and 1-D shapes

  format::WriteSpec spec;
  spec.format = to;
  spec.index_dtype = options.index_dtype;
  spec.block_rows = options.block_rows;
  spec.block_cols = options.block_cols;
  spec.nm_n = options.nm_n;
  spec.nm_m = options.nm_m;
  ASSIGN_OR_RETURN(const ScratchReservation scratch,
                   format::ReserveHostCsr(d, to == Format::kCsc || d.format == Format::kCsc));
  return format::WriteHostCsr(format::ReadHostCsr(t), spec);
}

absl::Status CheckConvert(const TensorDesc& desc, Format to, const ConvertOptions& options) {
  return CheckOptions(desc, to, options);
}

}  // namespace sparsed
