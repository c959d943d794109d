// Backend-independent operand checks for SpMM (descriptions only, no data).
#include <cmath>
#include <string>

#include "absl/strings/str_join.h"
#include "sparsed/spmm.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

std::string Dims(int64_t r, int64_t c) { return StrCat("[", r, ", ", c, "]"); }

std::string ShapeOf(const Tensor& t) { return ShapeString(t.desc().shape); }

absl::Status CheckFinite(std::string_view field, float v) {
  if (!std::isfinite(v)) return Invalid(StrCat(field, " = ", v, " is not finite"));
  return absl::OkStatus();
}

// A dense operand must be a 2-D matrix.
absl::Status CheckMatrix(const Tensor& t, std::string_view field) {
  if (t.desc().shape.size() != 2) {
    return Invalid(StrCat(field, ".shape = ", ShapeOf(t), " must be 2-D for spmm"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> CheckSpmm(const SpmmArgs& args) {
  if (args.a == nullptr) return Invalid("a is missing");
  if (args.b == nullptr) return Invalid("b is missing");
  const Tensor& a = *args.a;
  const Tensor& b = *args.b;
  RETURN_IF_ERROR(ValidateDesc(a.desc(), "a"));
  RETURN_IF_ERROR(ValidateDesc(b.desc(), "b"));
  const bool a_sparse = IsSparse(a.format()), b_sparse = IsSparse(b.format());
  if (a_sparse == b_sparse) {
    return Invalid(StrCat("a is ", FormatName(a.format()), " and b is ", FormatName(b.format()),
                          ": exactly one of a, b must be sparse (coo, csr, csc, bsr or nm) and the "
                          "other dense"));
  }
  RETURN_IF_ERROR(CheckMatrix(a, "a"));
  RETURN_IF_ERROR(CheckMatrix(b, "b"));

  const int64_t ar = a.desc().shape[0], ac = a.desc().shape[1];
  const int64_t br = b.desc().shape[0], bc = b.desc().shape[1];
  const int64_t m = args.transpose_a ? ac : ar, ka = args.transpose_a ? ar : ac;
  const int64_t kb = args.transpose_b ? bc : br, n = args.transpose_b ? br : bc;
  if (ka != kb) {
    return Invalid(StrCat("shape mismatch: op(a) is ", Dims(m, ka), " but op(b) is ", Dims(kb, n),
                          " (inner dimensions ", ka, " != ", kb, ")"));
  }

  if (!IsValueType(args.out_dtype)) {
    const std::string_view name = DTypeName(args.out_dtype);
    return Invalid(
        StrCat("out_dtype = ",
               name == "unknown" ? StrCat(static_cast<int>(args.out_dtype)) : std::string(name),
               " is not a value type (f32, f16 or bf16)"));
  }

  RETURN_IF_ERROR(CheckFinite("alpha", args.alpha));
  RETURN_IF_ERROR(CheckFinite("beta", args.beta));
  if (args.epilogue.clamp_max.has_value()) {
    RETURN_IF_ERROR(CheckFinite("epilogue.clamp_max", *args.epilogue.clamp_max));
  }

  if (const Tensor* bias = args.epilogue.bias; bias != nullptr) {
    RETURN_IF_ERROR(ValidateDesc(bias->desc(), "epilogue.bias"));
    if (bias->desc().dtype != DType::kF32) {
      return Invalid(
          StrCat("epilogue.bias.dtype = ", DTypeName(bias->desc().dtype), " must be f32"));
    }
    if (IsSparse(bias->format())) {
      return Invalid(
          StrCat("epilogue.bias.format = ", FormatName(bias->format()), " must be dense"));
    }
    const std::vector<int64_t>& s = bias->desc().shape;
    const bool shape_ok = (s.size() == 1 && s[0] == n) || (s.size() == 2 && s[0] == 1 && s[1] == n);
    if (!shape_ok) {
      return Invalid(StrCat("epilogue.bias.shape = ", ShapeOf(*bias), " must be [", n, "] or [1, ",
                            n, "] (one value per output column; the output is ", Dims(m, n), ")"));
    }
  }

  // beta == 0 means C is not read at all (it may hold anything, even NaN).
  if (args.beta != 0.0f) {
    if (args.c == nullptr) {
      return Invalid(StrCat("c is missing but beta = ", args.beta, " is not 0"));
    }
    const Tensor& c = *args.c;
    RETURN_IF_ERROR(ValidateDesc(c.desc(), "c"));
    if (c.desc().dtype != DType::kF32) {
      return Invalid(StrCat("c.dtype = ", DTypeName(c.desc().dtype), " must be f32"));
    }
    if (IsSparse(c.format())) {
      return Invalid(StrCat("c.format = ", FormatName(c.format()), " must be dense"));
    }
    const std::vector<int64_t>& s = c.desc().shape;
    if (s.size() != 2 || s[0] != m || s[1] != n) {
      return Invalid(StrCat("c.shape = ", ShapeOf(c), " must be the output shape ", Dims(m, n)));
    }
  }
  return std::vector<int64_t>{m, n};
}

}  // namespace sparsed
