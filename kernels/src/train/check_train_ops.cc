// Backend-independent checks of the training primitives (descriptions only).
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_join.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/train_ops.h"

namespace sparsed {
namespace {

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

std::string ShapeOf(const Tensor& t) { return ShapeString(t.desc().shape); }

// A dense f32 tensor of `rank` dimensions (0 = any rank).
absl::Status CheckDenseF32(const Tensor* t, std::string_view field, size_t rank) {
  if (t == nullptr) return Invalid(StrCat(field, " is missing"));
  RETURN_IF_ERROR(ValidateDesc(t->desc(), field));
  if (t->format() != Format::kDense) {
    return Invalid(StrCat(field, ".format = ", FormatName(t->format()), " must be dense"));
  }
  if (t->desc().dtype != DType::kF32) {
    return Invalid(StrCat(field, ".dtype = ", DTypeName(t->desc().dtype), " must be f32"));
  }
  if (rank != 0 && t->desc().shape.size() != rank) {
    return Invalid(StrCat(field, ".shape = ", ShapeOf(*t), " must be ", rank, "-D"));
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(std::string_view field, float v) {
  if (!std::isfinite(v)) return Invalid(StrCat(field, " = ", v, " is not finite"));
  return absl::OkStatus();
}

absl::Status CheckSameDevice(const Tensor& t, const Tensor& ref, std::string_view field,
                             std::string_view ref_field) {
  if (t.device() != ref.device()) {
    return Invalid(StrCat(field, " is on ", t.device().ToString(), " but ", ref_field, " is on ",
                          ref.device().ToString()));
  }
  return absl::OkStatus();
}

// {m, n} of op(a) · op(b) for 2-D a and b, or INVALID_ARGUMENT when the
// inner dimensions differ.
absl::StatusOr<std::pair<int64_t, int64_t>> ProductShape(const Tensor& a, const Tensor& b,
                                                         bool transpose_a, bool transpose_b) {
  const auto& as = a.desc().shape;
  const auto& bs = b.desc().shape;
  const int64_t m = transpose_a ? as[1] : as[0], ka = transpose_a ? as[0] : as[1];
  const int64_t kb = transpose_b ? bs[1] : bs[0], n = transpose_b ? bs[0] : bs[1];
  if (ka != kb) {
    return Invalid(StrCat("shape mismatch: op(a) is [", m, ", ", ka, "] but op(b) is [", kb, ", ",
                          n, "] (inner dimensions ", ka, " != ", kb, ")"));
  }
  return std::pair{m, n};
}

absl::Status CheckCsrPattern(const Tensor* t, std::string_view field) {
  if (t == nullptr) return Invalid(StrCat(field, " is missing"));
  RETURN_IF_ERROR(ValidateDesc(t->desc(), field));
  if (t->format() != Format::kCsr) {
    return Invalid(StrCat(field, ".format = ", FormatName(t->format()), " must be csr"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> CheckSddmm(const SddmmArgs& args) {
  RETURN_IF_ERROR(CheckDenseF32(args.a, "a", 2));
  RETURN_IF_ERROR(CheckDenseF32(args.b, "b", 2));
  RETURN_IF_ERROR(CheckCsrPattern(args.pattern, "pattern"));
  RETURN_IF_ERROR(CheckSameDevice(*args.b, *args.a, "b", "a"));
  RETURN_IF_ERROR(CheckSameDevice(*args.pattern, *args.a, "pattern", "a"));
  ASSIGN_OR_RETURN(const auto mn,
                   ProductShape(*args.a, *args.b, args.transpose_a, args.transpose_b));
  const auto [m, n] = mn;
  const TensorDesc& p = args.pattern->desc();
  if (p.rows() != m || p.cols() != n) {
    return Invalid(StrCat("pattern.shape = ", ShapeOf(*args.pattern), " must be op(a)·op(b)'s [", m,
                          ", ", n, "]"));
  }
  RETURN_IF_ERROR(CheckFinite("alpha", args.alpha));
  RETURN_IF_ERROR(CheckFinite("beta", args.beta));
  if (args.beta != 0.0f && args.c == nullptr) {
    return Invalid(StrCat("c is missing but beta = ", args.beta, " needs it"));
  }
  if (args.c != nullptr) {
    RETURN_IF_ERROR(CheckDenseF32(args.c, "c", 1));
    RETURN_IF_ERROR(CheckSameDevice(*args.c, *args.a, "c", "a"));
    if (args.c->desc().shape[0] != p.nnz) {
      return Invalid(
          StrCat("c.shape = ", ShapeOf(*args.c), " must be [", p.nnz, "] (the pattern's nnz)"));
    }
  }
  return p.nnz;
}

absl::StatusOr<std::vector<int64_t>> CheckDenseMatmul(const DenseMatmulArgs& args) {
  RETURN_IF_ERROR(CheckDenseF32(args.a, "a", 2));
  RETURN_IF_ERROR(CheckDenseF32(args.b, "b", 2));
  RETURN_IF_ERROR(CheckSameDevice(*args.b, *args.a, "b", "a"));
  ASSIGN_OR_RETURN(const auto mn,
                   ProductShape(*args.a, *args.b, args.transpose_a, args.transpose_b));
  const auto [m, n] = mn;
  const int64_t end = args.row_end < 0 ? m : args.row_end;
  if (args.row_end < -1 || end > m) {
    return Invalid(StrCat("row_end = ", args.row_end, " must be -1 or in [row_begin, ", m, "]"));
  }
  if (args.row_begin < 0 || args.row_begin > end) {
    return Invalid(StrCat("row_begin = ", args.row_begin, " must be in [0, ", end, "]"));
  }
  return std::vector<int64_t>{end - args.row_begin, n};
}

absl::Status CheckOptimizerHyper(const OptimizerHyper& h, std::string_view field) {
  const std::string f(field);
  if (h.kind != OptimizerKind::kSgd && h.kind != OptimizerKind::kAdam &&
      h.kind != OptimizerKind::kAdamW) {
    return Invalid(StrCat(f, ".kind = ", static_cast<int>(h.kind), " is not sgd, adam or adamw"));
  }
  auto in_range = [&](std::string_view name, float v, float lo, float hi,
                      bool hi_open) -> absl::Status {
    if (!std::isfinite(v) || v < lo || (hi_open ? v >= hi : v > hi)) {
      return Invalid(
          StrCat(f, ".", name, " = ", v, " must be in [", lo, ", ", hi, hi_open ? ")" : "]"));
    }
    return absl::OkStatus();
  };
  if (!std::isfinite(h.lr) || h.lr < 0) {
    return Invalid(StrCat(f, ".lr = ", h.lr, " must be finite and >= 0"));
  }
  if (!std::isfinite(h.weight_decay) || h.weight_decay < 0) {
    return Invalid(StrCat(f, ".weight_decay = ", h.weight_decay, " must be finite and >= 0"));
  }
  RETURN_IF_ERROR(in_range("momentum", h.momentum, 0.0f, 1.0f, true));
  RETURN_IF_ERROR(in_range("beta1", h.beta1, 0.0f, 1.0f, true));
  RETURN_IF_ERROR(in_range("beta2", h.beta2, 0.0f, 1.0f, true));
  if (!std::isfinite(h.eps) || h.eps <= 0) {
    return Invalid(StrCat(f, ".eps = ", h.eps, " must be finite and > 0"));
  }
  if (h.nesterov && (h.kind != OptimizerKind::kSgd || h.momentum == 0.0f)) {
    return Invalid(StrCat(f, ".nesterov needs sgd with momentum > 0"));
  }
  return absl::OkStatus();
}

absl::Status CheckOptimizerUpdate(const OptimizerUpdateArgs& args) {
  RETURN_IF_ERROR(CheckOptimizerHyper(args.hyper));
  if (args.step < 1) return Invalid(StrCat("step = ", args.step, " must be >= 1"));
  RETURN_IF_ERROR(CheckFinite("grad_scale", args.grad_scale));
  RETURN_IF_ERROR(CheckDenseF32(args.param, "param", 1));
  RETURN_IF_ERROR(CheckDenseF32(args.grad, "grad", 1));
  const int64_t n = args.param->desc().shape[0];
  auto same = [&](const Tensor* t, std::string_view field) -> absl::Status {
    RETURN_IF_ERROR(CheckDenseF32(t, field, 1));
    RETURN_IF_ERROR(CheckSameDevice(*t, *args.param, field, "param"));
    if (t->desc().shape[0] != n) {
      return Invalid(StrCat(field, ".shape = ", ShapeOf(*t), " must be param's [", n, "]"));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(same(args.grad, "grad"));
  const bool adam = args.hyper.kind != OptimizerKind::kSgd;
  if (adam || args.hyper.momentum > 0) RETURN_IF_ERROR(same(args.state1, "state1"));
  if (adam) RETURN_IF_ERROR(same(args.state2, "state2"));
  return absl::OkStatus();
}

absl::Status CheckTopK(const Tensor& scores, int64_t k) {
  RETURN_IF_ERROR(CheckDenseF32(&scores, "scores", 1));
  const int64_t n = scores.desc().shape[0];
  if (k < 0 || k > n) return Invalid(StrCat("k = ", k, " must be in [0, ", n, "]"));
  return absl::OkStatus();
}

absl::Status CheckAxpby(const Tensor& x, const Tensor& y) {
  RETURN_IF_ERROR(CheckDenseF32(&x, "x", 0));
  RETURN_IF_ERROR(CheckDenseF32(&y, "y", 0));
  RETURN_IF_ERROR(CheckSameDevice(x, y, "x", "y"));
  if (x.desc().numel() != y.desc().numel()) {
    return Invalid(
        StrCat("x.shape = ", ShapeOf(x), " and y.shape = ", ShapeOf(y), " differ in size"));
  }
  return absl::OkStatus();
}

absl::Status CheckReluBackward(const Tensor& dy, const Tensor& y) {
  RETURN_IF_ERROR(CheckDenseF32(&dy, "dy", 0));
  RETURN_IF_ERROR(CheckDenseF32(&y, "y", 0));
  RETURN_IF_ERROR(CheckSameDevice(dy, y, "dy", "y"));
  if (dy.desc().shape != y.desc().shape) {
    return Invalid(StrCat("dy.shape = ", ShapeOf(dy), " must equal y.shape = ", ShapeOf(y)));
  }
  return absl::OkStatus();
}

absl::Status CheckColumnSums(const Tensor& x) { return CheckDenseF32(&x, "x", 2); }

absl::Status CheckGrowthScores(const Tensor& tile, const Tensor& pattern, int64_t row_begin) {
  RETURN_IF_ERROR(CheckDenseF32(&tile, "tile", 2));
  RETURN_IF_ERROR(CheckCsrPattern(&pattern, "pattern"));
  RETURN_IF_ERROR(CheckSameDevice(pattern, tile, "pattern", "tile"));
  const int64_t rows = tile.desc().shape[0];
  if (tile.desc().shape[1] != pattern.desc().cols()) {
    return Invalid(StrCat("tile.shape = ", ShapeOf(tile), " must have the pattern's ",
                          pattern.desc().cols(), " columns"));
  }
  if (row_begin < 0 || row_begin + rows > pattern.desc().rows()) {
    return Invalid(StrCat("row_begin = ", row_begin, " with ", rows,
                          " tile rows must lie within the pattern's ", pattern.desc().rows(),
                          " rows"));
  }
  return absl::OkStatus();
}

absl::Status CheckGatherOrZero(const Tensor& src, const std::vector<int64_t>& index) {
  RETURN_IF_ERROR(CheckDenseF32(&src, "src", 1));
  const int64_t n = src.desc().shape[0];
  for (size_t i = 0; i < index.size(); ++i) {
    if (index[i] < -1 || index[i] >= n) {
      return Invalid(StrCat("index[", i, "] = ", index[i], " must be -1 or in [0, ", n, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsed
