#include "server/op_requests.h"

#include <cmath>
#include <string>
#include <string_view>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

std::string ShapeText(const TensorDesc& d) { return ShapeString(d.shape); }

std::string BlockText(const google::protobuf::RepeatedField<int64_t>& block) {
  std::string s = "[";
  for (int i = 0; i < block.size(); ++i) s = StrCat(s, i ? ", " : "", block[i]);
  return s + "]";
}

absl::Status Need2D(const TensorDesc& d, std::string_view what) {
  if (d.shape.size() == 2) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat("source has shape ", ShapeText(d), "; ", what, " needs a 2-D tensor"));
}

// [R, C] or [R] (R x R), each at least 1 and at most the source's extent
// (a larger block would only be zero padding).
absl::Status ParseBlock(const google::protobuf::RepeatedField<int64_t>& block,
                        std::string_view field, const TensorDesc& d, int64_t* r, int64_t* c) {
  if (block.empty()) {
    return absl::InvalidArgumentError(StrCat(field, " is missing (give [R, C] or [R])"));
  }
  if (block.size() > 2) {
    return absl::InvalidArgumentError(StrCat(field, " = ", BlockText(block), " has ", block.size(),
                                             " entries (give [R, C] or [R])"));
  }
  *r = block[0];
  *c = block.size() == 2 ? block[1] : block[0];
  if (*r < 1 || *c < 1) {
    return absl::InvalidArgumentError(
        StrCat(field, " = ", BlockText(block), ": block sides must be at least 1"));
  }
  if (*r > std::max<int64_t>(d.rows(), 1) || *c > std::max<int64_t>(d.cols(), 1)) {
    return absl::InvalidArgumentError(StrCat(field, " = ", BlockText(block),
                                             " is larger than the source (", d.rows(), "x",
                                             d.cols(), ")"));
  }
  return absl::OkStatus();
}

// 1 <= n < m <= 32 and m divides the columns. `name` is how the pair is
// called in the request ("n:m" or "nm"), `m_field` the field of m.
absl::Status CheckNm(int32_t n, int32_t m, std::string_view name, std::string_view m_field,
                     const TensorDesc& d) {
  if (n < 1 || m <= n || m > 32) {
    return absl::InvalidArgumentError(
        StrCat(name, " = ", n, ":", m, " is not a valid pattern (need 1 <= n < m <= 32)"));
  }
  if (d.cols() % m != 0) {
    return absl::InvalidArgumentError(StrCat(m_field, " = ", m, " does not divide the ", d.cols(),
                                             " columns of the source (", name, " = ", n, ":", m,
                                             ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckSparsity(double s, std::string_view field) {
  if (std::isfinite(s) && s >= 0.0 && s <= 1.0) return absl::OkStatus();
  return absl::InvalidArgumentError(StrCat(field, " = ", s, " is outside [0, 1]"));
}

}  // namespace

absl::StatusOr<DType> SpmmOutDType(const v1::SpmmRequest& req, DType a, DType b) {
  const int requested = static_cast<int>(req.out_dtype());
  if (requested == 0) {
    const bool same_16_bit = a == b && (a == DType::kF16 || a == DType::kBF16);
    return same_16_bit ? a : DType::kF32;
  }
  if (!IsValueType(static_cast<DType>(requested))) {
    const std::string name = v1::DType_Name(req.out_dtype());
    return absl::InvalidArgumentError(
        StrCat("out_dtype = ", name.empty() ? StrCat(requested) : name,
               " is not a value type (F32, F16 or BF16)"));
  }
  return static_cast<DType>(requested);
}

absl::StatusOr<ConvertOptions> ConvertOptionsFrom(const v1::ConvertRequest& req,
                                                  const TensorDesc& source) {
  const int to = static_cast<int>(req.to());
  if (to == 0) {
    return absl::InvalidArgumentError("to is missing (set one of DENSE, COO, CSR, CSC, BSR, NM)");
  }
  if (to < static_cast<int>(Format::kDense) || to > static_cast<int>(Format::kNm)) {
    return absl::InvalidArgumentError(
        StrCat("to = ", to, " is not a format (DENSE, COO, CSR, CSC, BSR, NM)"));
  }
  const Format target = static_cast<Format>(to);
  const std::string target_name = v1::Format_Name(req.to());  // "CSR", as in the request
  ConvertOptions options;
  if (target == Format::kBsr) {
    RETURN_IF_ERROR(Need2D(source, "conversion to bsr"));
    RETURN_IF_ERROR(
        ParseBlock(req.block(), "block", source, &options.block_rows, &options.block_cols));
  } else if (!req.block().empty()) {
    return absl::InvalidArgumentError(StrCat("block = ", BlockText(req.block()),
                                             " is only for to = BSR (to = ", target_name, ")"));
  }
  if (target == Format::kNm) {
    RETURN_IF_ERROR(Need2D(source, "conversion to nm"));
    RETURN_IF_ERROR(CheckNm(req.n(), req.m(), "n:m", "m", source));
    options.nm_n = req.n();
    options.nm_m = req.m();
  } else if (req.n() != 0 || req.m() != 0) {
    return absl::InvalidArgumentError(
        StrCat("n:m = ", req.n(), ":", req.m(), " is only for to = NM (to = ", target_name, ")"));
  }
  if (IsSparse(target)) RETURN_IF_ERROR(Need2D(source, StrCat("conversion to ", target_name)));
  const int idx = static_cast<int>(req.index_dtype());
  if (idx != 0) {
    if (!IsIndexType(static_cast<DType>(idx))) {
      return absl::InvalidArgumentError(StrCat("index_dtype = ",
                                               v1::DType_Name(req.index_dtype()).empty()
                                                   ? StrCat(idx)
                                                   : v1::DType_Name(req.index_dtype()),
                                               " is not an index type (I32 or I64)"));
    }
    options.index_dtype = static_cast<DType>(idx);
  }
  return options;
}

absl::StatusOr<PruneOptions> PruneOptionsFrom(const v1::PruneRequest& req,
                                              const TensorDesc& source) {
  PruneOptions options;
  switch (req.mode_case()) {
    case v1::PruneRequest::kMagnitude:
      RETURN_IF_ERROR(Need2D(source, "prune"));
      RETURN_IF_ERROR(CheckSparsity(req.magnitude().sparsity(), "magnitude.sparsity"));
      options.mode = PruneMode::kMagnitude;
      options.sparsity = req.magnitude().sparsity();
      options.per_row = req.magnitude().per_row();
      return options;
    case v1::PruneRequest::kNm:
      RETURN_IF_ERROR(Need2D(source, "prune"));
      RETURN_IF_ERROR(CheckNm(req.nm().n(), req.nm().m(), "nm", "nm.m", source));
      options.mode = PruneMode::kNm;
      options.nm_n = req.nm().n();
      options.nm_m = req.nm().m();
      return options;
    case v1::PruneRequest::kBlock:
      RETURN_IF_ERROR(Need2D(source, "prune"));
      RETURN_IF_ERROR(ParseBlock(req.block().block(), "block.block", source, &options.block_rows,
                                 &options.block_cols));
      RETURN_IF_ERROR(CheckSparsity(req.block().sparsity(), "block.sparsity"));
      options.mode = PruneMode::kBlock;
      options.sparsity = req.block().sparsity();
      return options;
    case v1::PruneRequest::MODE_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("mode is missing (set magnitude, nm or block)");
}

absl::Status CheckSpyRequest(const v1::InspectRequest& req) {
  for (const auto& [field, v] :
       {std::pair<std::string_view, int32_t>{"spy_height", req.spy_height()},
        {"spy_width", req.spy_width()}}) {
    if (v < 0 || v > kMaxSpyCells) {
      return absl::InvalidArgumentError(
          StrCat(field, " = ", v, " is outside [0, ", kMaxSpyCells, "]"));
    }
  }
  if ((req.spy_height() == 0) != (req.spy_width() == 0)) {
    return absl::InvalidArgumentError(StrCat("spy_height = ", req.spy_height(),
                                             ", spy_width = ", req.spy_width(),
                                             ": both 0 (no grid) or both at least 1"));
  }
  return absl::OkStatus();
}

}  // namespace sparsed::server
