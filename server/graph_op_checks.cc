#include "server/graph_op_checks.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <utility>

#include "server/op_requests.h"
#include "server/request_cost.h"
#include "server/training_requests.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/convert.h"
#include "sparsed/prune.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

// "1200x1024" for a matrix, "[5]" otherwise.
std::string Dims(const TensorDesc& d) {
  if (d.shape.size() == 2) return StrCat(d.shape[0], "x", d.shape[1]);
  return ShapeString(d.shape);
}

// "output 'h2' (dense f32 1200x1024)".
std::string Describe(const OperandInfo& o) {
  const TensorDesc& d = *o.desc;
  return StrCat(o.what, " (", FormatName(d.format), " ", DTypeName(d.dtype), " ", Dims(d), ")");
}

absl::Status CheckFinite(std::string_view field, float v) {
  if (std::isfinite(v)) return absl::OkStatus();
  return Invalid(StrCat(field, " = ", v, " is not finite"));
}

// ranks: 0 any, 2 a matrix, 12 a vector or a matrix.
absl::Status CheckDense(const OperandInfo& o, std::string_view field, std::string_view op,
                        int ranks, bool f32) {
  const TensorDesc& d = *o.desc;
  const size_t rank = d.shape.size();
  const bool rank_ok = ranks == 0 || (ranks == 2 ? rank == 2 : rank == 1 || rank == 2);
  if (d.format == Format::kDense && (!f32 || d.dtype == DType::kF32) && rank_ok) {
    return absl::OkStatus();
  }
  return Invalid(StrCat(field, ": ", Describe(o), " must be dense", f32 ? " f32" : "",
                        ranks == 2    ? " 2-D"
                        : ranks == 12 ? " 1-D or 2-D"
                                      : "",
                        " for ", op));
}

// Stored entries a conversion or prune can find in `d` (dense: every element;
// BSR and N:M: with their zero fill).
double EntriesBound(const TensorDesc& d) { return StoredWork(d); }

int64_t ClampCount(double v) { return static_cast<int64_t>(std::clamp(v, 0.0, 9.0e18)); }

// Kept = total - round(sparsity * total), as prune.h defines it.
int64_t KeepCount(int64_t total, double sparsity) {
  const double pruned = std::round(sparsity * static_cast<double>(total));
  if (!(pruned > 0.0)) return total;
  if (pruned >= static_cast<double>(total)) return 0;
  return total - static_cast<int64_t>(pruned);
}

int64_t BlockGrid(const TensorDesc& d, int64_t r, int64_t c) {
  return ((d.rows() + r - 1) / r) * ((d.cols() + c - 1) / c);
}

// A dense description of `shape` and `dtype`.
TensorDesc DenseDesc(std::vector<int64_t> shape, DType dtype) {
  TensorDesc d;
  d.format = Format::kDense;
  d.dtype = dtype;
  d.shape = std::move(shape);
  return d;
}

// The index dtype a prune result gets: the source's when it fits.
DType PruneIndexType(const TensorDesc& src, TensorDesc result) {
  if (IsSparse(src.format)) {
    result.index_dtype = src.index_dtype;
    if (ValidateDesc(result).ok()) return src.index_dtype;
  }
  return NarrowestIndexType(result);
}

absl::Status CheckSpmmOp(const v1::GraphSpmm& s, const OperandInfos& in, const std::string& f,
                         PlanStep& step) {
  const OperandInfo &A = in[0], &B = in[1];
  const TensorDesc &a = *A.desc, &b = *B.desc;
  if (IsSparse(a.format) == IsSparse(b.format)) {
    return Invalid(StrCat(f, ": a is ", Describe(A), " and b is ", Describe(B),
                          "; exactly one of a, b must be sparse (coo, csr, csc, bsr or nm) and "
                          "the other dense"));
  }
  for (const auto& [o, name] : {std::pair{&A, "a"}, std::pair{&B, "b"}}) {
    if (o->desc->shape.size() != 2) {
      return Invalid(StrCat(f, ".", name, ": ", Describe(*o), " must be 2-D for spmm"));
    }
  }
  const bool ta = s.transpose_a(), tb = s.transpose_b();
  const int64_t m = ta ? a.cols() : a.rows(), ka = ta ? a.rows() : a.cols();
  const int64_t kb = tb ? b.cols() : b.rows(), n = tb ? b.rows() : b.cols();
  if (ka != kb) {
    return Invalid(StrCat(f, ".b: ", B.what, " is ", Dims(b), " but a (", A.what, ") is ", Dims(a),
                          "; op(a) has ", ka, " columns and op(b) has ", kb, " rows",
                          ta || tb ? " (after transpose_a/transpose_b)" : ""));
  }
  v1::SpmmRequest dtype_request;
  dtype_request.set_out_dtype(s.out_dtype());
  absl::StatusOr<DType> out_dtype = SpmmOutDType(dtype_request, a.dtype, b.dtype);
  if (!out_dtype.ok()) return WithField(f, out_dtype.status());
  RETURN_IF_ERROR(CheckFinite(StrCat(f, ".alpha"), s.has_alpha() ? s.alpha() : 1.0f));
  RETURN_IF_ERROR(CheckFinite(StrCat(f, ".beta"), s.beta()));
  if (s.has_clamp_max()) RETURN_IF_ERROR(CheckFinite(StrCat(f, ".clamp_max"), s.clamp_max()));
  if (const OperandInfo& bias = in[3]; bias.desc != nullptr) {
    const auto& bs = bias.desc->shape;
    const bool shape_ok =
        (bs.size() == 1 && bs[0] == n) || (bs.size() == 2 && bs[0] == 1 && bs[1] == n);
    if (bias.desc->format != Format::kDense || bias.desc->dtype != DType::kF32 || !shape_ok) {
      return Invalid(StrCat(f, ".bias: ", Describe(bias), " must be dense f32 [", n, "] or [1, ", n,
                            "] (one value per output column; the output is ", m, "x", n, ")"));
    }
  }
  if (s.beta() != 0.0f) {
    const OperandInfo& c = in[2];
    if (c.desc == nullptr) {
      return Invalid(StrCat(f, ".c is missing but beta = ", s.beta(), " is not 0"));
    }
    const auto& cs = c.desc->shape;
    if (c.desc->format != Format::kDense || c.desc->dtype != DType::kF32 || cs.size() != 2 ||
        cs[0] != m || cs[1] != n) {
      return Invalid(StrCat(f, ".c: ", Describe(c), " must be dense f32 ", m, "x", n,
                            " (the output's shape)"));
    }
  }
  step.dtype = *out_dtype;
  step.out = DenseDesc({m, n}, *out_dtype);
  step.work = SpmmDescWork(a, b, ta, tb);
  return absl::OkStatus();
}

absl::Status CheckConvertOp(const v1::GraphConvert& c, const OperandInfos& in, const std::string& f,
                            PlanStep& step) {
  const TensorDesc& src = *in[0].desc;
  v1::ConvertRequest request;
  request.set_to(c.to());
  *request.mutable_block() = c.block();
  request.set_n(c.n());
  request.set_m(c.m());
  request.set_index_dtype(c.index_dtype());
  absl::StatusOr<ConvertOptions> options = ConvertOptionsFrom(request, src);
  // Its messages begin with the request's field ("to = 9 ...", "source has ...").
  if (!options.ok()) {
    return absl::Status(options.status().code(), StrCat(f, ".", options.status().message()));
  }
  const Format to = static_cast<Format>(c.to());
  if (absl::Status s = CheckConvert(src, to, *options); !s.ok()) return WithField(f, s);

  TensorDesc o = src;
  o.format = to;
  o.block_rows = o.block_cols = 0;
  o.nm_n = o.nm_m = 0;
  // Zeros of a dense source and the fill of BSR / N:M are dropped: only the
  // data tells how many entries remain.
  bool exact = in[0].exact && src.format != Format::kDense && src.format != Format::kBsr &&
               src.format != Format::kNm;
  const int64_t entries = ClampCount(EntriesBound(src));
  switch (to) {
    case Format::kDense:
      o.nnz = 0;
      exact = true;
      break;
    case Format::kBsr:
      o.block_rows = options->block_rows;
      o.block_cols = options->block_cols;
      o.nnz = std::min(entries, BlockGrid(src, o.block_rows, o.block_cols));
      exact = false;
      break;
    case Format::kNm:
      o.nm_n = options->nm_n;
      o.nm_m = options->nm_m;
      o.nnz = src.rows() * (src.cols() / o.nm_m) * o.nm_n;
      exact = true;
      break;
    default:
      o.nnz = entries;
      break;
  }
  o.index_dtype =
      to == Format::kDense ? DType::kI32 : options->index_dtype.value_or(NarrowestIndexType(o));
  step.convert = *options;
  step.out = o;
  step.exact_nnz = exact;
  step.work = UnaryWork(src, ConvertedEntries(src, to, options->block_rows, options->block_cols));
  return absl::OkStatus();
}

absl::Status CheckTransposeOp(const OperandInfos& in, const std::string& f, PlanStep& step) {
  const TensorDesc& src = *in[0].desc;
  if (src.shape.size() != 2) {
    return Invalid(StrCat(f, ".source: ", Describe(in[0]), " must be 2-D to be transposed"));
  }
  TensorDesc o = src;
  o.shape = {src.cols(), src.rows()};
  std::swap(o.block_rows, o.block_cols);
  if (src.format == Format::kNm) {
    if (o.cols() % src.nm_m != 0) {
      return Invalid(StrCat(f, ".source: ", Describe(in[0]), " is ", src.nm_n, ":", src.nm_m,
                            " along its rows; its transpose would have ", o.cols(),
                            " columns, which m = ", src.nm_m, " does not divide"));
    }
    o.nnz = o.rows() * (o.cols() / o.nm_m) * o.nm_n;
  }
  step.out = o;
  step.exact_nnz = in[0].exact;
  step.work = UnaryWork(src, StoredWork(src));
  return absl::OkStatus();
}

absl::Status CheckPruneOp(const v1::GraphPrune& p, const OperandInfos& in, const std::string& f,
                          PlanStep& step) {
  const TensorDesc& src = *in[0].desc;
  v1::PruneRequest request;
  switch (p.mode_case()) {
    case v1::GraphPrune::kMagnitude:
      *request.mutable_magnitude() = p.magnitude();
      break;
    case v1::GraphPrune::kNm:
      *request.mutable_nm() = p.nm();
      break;
    case v1::GraphPrune::kBlock:
      *request.mutable_block() = p.block();
      break;
    case v1::GraphPrune::MODE_NOT_SET:
      break;
  }
  absl::StatusOr<PruneOptions> options = PruneOptionsFrom(request, src);
  if (!options.ok()) {
    return absl::Status(options.status().code(), StrCat(f, ".", options.status().message()));
  }
  if (absl::Status s = CheckPrune(src, *options); !s.ok()) return WithField(f, s);
  TensorDesc o;
  o.dtype = src.dtype;
  o.shape = src.shape;
  const int64_t entries = ClampCount(EntriesBound(src));
  bool exact = false;
  switch (options->mode) {
    case PruneMode::kMagnitude: {
      o.format = Format::kCsr;
      const int64_t kept = options->per_row ? src.rows() * KeepCount(src.cols(), options->sparsity)
                                            : KeepCount(src.rows() * src.cols(), options->sparsity);
      o.nnz = std::min(kept, entries);
      break;
    }
    case PruneMode::kNm:
      o.format = Format::kNm;
      o.nm_n = options->nm_n;
      o.nm_m = options->nm_m;
      o.nnz = src.rows() * (src.cols() / o.nm_m) * o.nm_n;
      exact = true;
      break;
    case PruneMode::kBlock: {
      o.format = Format::kBsr;
      o.block_rows = options->block_rows;
      o.block_cols = options->block_cols;
      const int64_t grid = BlockGrid(src, o.block_rows, o.block_cols);
      o.nnz = std::min({KeepCount(grid, options->sparsity), grid, entries});
      break;
    }
  }
  o.index_dtype = PruneIndexType(src, o);
  step.prune = *options;
  step.out = o;
  step.exact_nnz = exact;
  step.work = UnaryWork(src, StoredWork(src));
  return absl::OkStatus();
}

absl::Status CheckSddmmOp(const v1::GraphSddmm& s, const OperandInfos& in, const std::string& f,
                          PlanStep& step) {
  RETURN_IF_ERROR(CheckDense(in[0], StrCat(f, ".a"), "sddmm", 2, true));
  RETURN_IF_ERROR(CheckDense(in[1], StrCat(f, ".b"), "sddmm", 2, true));
  const OperandInfo& P = in[2];
  if (P.desc->format != Format::kCsr) {
    return Invalid(StrCat(f, ".pattern: ", Describe(P), " must be csr"));
  }
  const TensorDesc &a = *in[0].desc, &b = *in[1].desc, &p = *P.desc;
  const bool ta = s.transpose_a(), tb = s.transpose_b();
  const int64_t m = ta ? a.cols() : a.rows(), ka = ta ? a.rows() : a.cols();
  const int64_t kb = tb ? b.cols() : b.rows(), n = tb ? b.rows() : b.cols();
  if (ka != kb) {
    return Invalid(StrCat(f, ".b: ", in[1].what, " is ", Dims(b), " but a (", in[0].what, ") is ",
                          Dims(a), "; op(a) has ", ka, " columns and op(b) has ", kb, " rows"));
  }
  if (p.rows() != m || p.cols() != n) {
    return Invalid(StrCat(f, ".pattern: ", Describe(P), " must be op(a)·op(b)'s ", m, "x", n));
  }
  RETURN_IF_ERROR(CheckFinite(StrCat(f, ".alpha"), s.has_alpha() ? s.alpha() : 1.0f));
  RETURN_IF_ERROR(CheckFinite(StrCat(f, ".beta"), s.beta()));
  const OperandInfo& C = in[3];
  if (s.beta() != 0.0f && C.desc == nullptr) {
    return Invalid(StrCat(f, ".c is missing but beta = ", s.beta(), " needs it"));
  }
  if (C.desc != nullptr) {
    RETURN_IF_ERROR(CheckDense(C, StrCat(f, ".c"), "sddmm", 12, true));
    // Checked by the kernel at run time when the pattern's nnz is not known yet.
    if (P.exact && (C.desc->shape.size() != 1 || C.desc->shape[0] != p.nnz)) {
      return Invalid(StrCat(f, ".c: ", Describe(C), " must be [", p.nnz, "] (the pattern's nnz)"));
    }
  }
  TensorDesc o = p;
  o.dtype = DType::kF32;
  step.out = o;
  step.exact_nnz = P.exact;
  step.work = SddmmDescWork(a, b, p, ta);
  return absl::OkStatus();
}

absl::Status CheckDenseMatmulOp(const v1::GraphDenseMatmul& d, const OperandInfos& in,
                                const std::string& f, PlanStep& step) {
  RETURN_IF_ERROR(CheckDense(in[0], StrCat(f, ".a"), "dense_matmul", 2, true));
  RETURN_IF_ERROR(CheckDense(in[1], StrCat(f, ".b"), "dense_matmul", 2, true));
  const TensorDesc &a = *in[0].desc, &b = *in[1].desc;
  const bool ta = d.transpose_a(), tb = d.transpose_b();
  const int64_t m = ta ? a.cols() : a.rows(), ka = ta ? a.rows() : a.cols();
  const int64_t kb = tb ? b.cols() : b.rows(), n = tb ? b.rows() : b.cols();
  if (ka != kb) {
    return Invalid(StrCat(f, ".b: ", in[1].what, " is ", Dims(b), " but a (", in[0].what, ") is ",
                          Dims(a), "; op(a) has ", ka, " columns and op(b) has ", kb, " rows"));
  }
  const int64_t row_end = RowEndFrom(d.row_end());
  const int64_t end = row_end < 0 ? m : row_end;
  if (row_end < -1 || end > m) {
    return Invalid(
        StrCat(f, ".row_end = ", d.row_end(), " must be 0, -1 or in [row_begin, ", m, "]"));
  }
  if (d.row_begin() < 0 || d.row_begin() > end) {
    return Invalid(StrCat(f, ".row_begin = ", d.row_begin(), " must be in [0, ", end, "]"));
  }
  step.out = DenseDesc({end - d.row_begin(), n}, DType::kF32);
  step.work = DenseMatmulDescWork(a, b, ta, tb, d.row_begin(), row_end);
  return absl::OkStatus();
}

absl::Status CheckLayerForwardOp(const OperandInfos& in, const std::string& f, PlanStep& step) {
  if (step.layer == nullptr) return absl::InternalError(StrCat(f, ": the layer is not resolved"));
  std::lock_guard lock(step.layer->mu);
  const train::LayerConfig& c = step.layer->layer.config();
  absl::Status x_ok = CheckActivation(*in[0].desc, "x", c.in_features, "in_features");
  if (!x_ok.ok()) {
    return Invalid(StrCat(f, ".", x_ok.message(), " (x is ", in[0].what, "; layer ", step.layer->id,
                          " is ", c.in_features, " -> ", c.out_features, ")"));
  }
  const int64_t batch = in[0].desc->rows();
  step.out = DenseDesc({batch, c.out_features}, DType::kF32);
  step.work =
      LayerCallWork(batch, c.in_features, c.out_features, step.layer->layer.weight().desc().nnz);
  return absl::OkStatus();
}

// grad_out against the layer's out_features; the shape of the call it is for
// is checked by validation (graph_validate.cc), which knows the call.
absl::Status CheckLayerBackwardOp(const OperandInfos& in, const std::string& f, PlanStep& step) {
  if (step.layer == nullptr) return absl::InternalError(StrCat(f, ": the layer is not resolved"));
  std::lock_guard lock(step.layer->mu);
  const train::LayerConfig& c = step.layer->layer.config();
  absl::Status dy_ok = CheckActivation(*in[0].desc, "grad_out", c.out_features, "out_features");
  if (!dy_ok.ok()) {
    return Invalid(StrCat(f, ".", dy_ok.message(), " (grad_out is ", in[0].what, "; layer ",
                          step.layer->id, " is ", c.in_features, " -> ", c.out_features, ")"));
  }
  const int64_t batch = in[0].desc->rows();
  step.out = DenseDesc({batch, c.in_features}, DType::kF32);
  // As Training.Backward: dX, dW at the pattern and db, each about a forward.
  step.work = 3 * LayerCallWork(batch, c.in_features, c.out_features,
                                step.layer->layer.weight().desc().nnz);
  return absl::OkStatus();
}

// grad_scale and the optimizer as Training.Step reads them. The step has no
// result; its work is the optimizer's pass over the parameters (pruning and
// RigL, when due, are not estimated, as for Training.Step).
absl::Status CheckLayerStepOp(const v1::GraphLayerStep& s, const std::string& f, PlanStep& step) {
  if (step.layer == nullptr) return absl::InternalError(StrCat(f, ": the layer is not resolved"));
  absl::StatusOr<float> scale = GradScaleFrom(s.grad_scale());
  // Its message begins with the request's field ("grad_scale = inf ...").
  if (!scale.ok()) {
    return absl::Status(scale.status().code(), StrCat(f, ".", scale.status().message()));
  }
  step.grad_scale = *scale;
  if (s.has_optimizer()) {
    ASSIGN_OR_RETURN(step.hyper, OptimizerFrom(s.optimizer(), StrCat(f, ".optimizer")));
  }
  std::lock_guard lock(step.layer->mu);
  const train::LayerConfig& c = step.layer->layer.config();
  step.out = TensorDesc{};
  step.work = 8.0 * static_cast<double>(step.layer->layer.weight().desc().nnz +
                                        (c.bias ? c.out_features : 0));
  return absl::OkStatus();
}

// The identity an elementwise op through the SpMM epilogue multiplies by.
double IdentityWork(const TensorDesc& x) {
  const int64_t cols = x.shape.size() == 2 ? x.shape[1] : x.numel();
  const int64_t rows = x.shape.size() == 2 ? x.shape[0] : 1;
  TensorDesc id{Format::kCsr, DType::kF32, DType::kI32, {cols, cols}, cols};
  return SpmmDescWork(DenseDesc({rows, cols}, x.dtype), id, false, false);
}

absl::Status CheckElementwiseOp(const v1::GraphOp& op, GraphOpKind kind, const OperandInfos& in,
                                const std::string& f, PlanStep& step) {
  const OperandInfo& X = in[0];
  const std::string x_field = StrCat(f, ".x");
  const std::string_view name = GraphOpKindName(kind);
  const double numel = double(X.desc->numel());
  switch (kind) {
    case GraphOpKind::kAdd: {
      RETURN_IF_ERROR(CheckDense(X, x_field, name, 0, true));
      RETURN_IF_ERROR(CheckDense(in[1], StrCat(f, ".y"), name, 0, true));
      if (in[1].desc->shape != X.desc->shape) {
        return Invalid(StrCat(f, ".y: ", Describe(in[1]), " must have x's shape ", Dims(*X.desc),
                              " (x is ", X.what, ")"));
      }
      const v1::GraphAdd& add = op.add();
      RETURN_IF_ERROR(CheckFinite(StrCat(f, ".alpha"), add.has_alpha() ? add.alpha() : 1.0f));
      RETURN_IF_ERROR(CheckFinite(StrCat(f, ".beta"), add.has_beta() ? add.beta() : 1.0f));
      step.work = 3 * numel;
      step.out = DenseDesc(X.desc->shape, DType::kF32);
      break;
    }
    case GraphOpKind::kScale:
      RETURN_IF_ERROR(CheckDense(X, x_field, name, 0, true));
      RETURN_IF_ERROR(CheckFinite(StrCat(f, ".factor"), op.scale().factor()));
      step.work = 2 * numel;
      step.out = DenseDesc(X.desc->shape, DType::kF32);
      break;
    case GraphOpKind::kRelu:
      RETURN_IF_ERROR(CheckDense(X, x_field, name, 0, true));
      step.work = 2 * numel;
      step.out = DenseDesc(X.desc->shape, DType::kF32);
      break;
    case GraphOpKind::kClamp: {
      RETURN_IF_ERROR(CheckDense(X, x_field, name, 12, false));
      const v1::GraphClamp& c = op.clamp();
      if (!c.has_min() && !c.has_max()) {
        return Invalid(StrCat(f,
                              " sets neither min nor max (set max, and min = 0 for a lower "
                              "bound)"));
      }
      if (c.has_min() && c.min() != 0.0f) {
        return Invalid(StrCat(f, ".min = ", c.min(),
                              " is not supported: the lower bound can only be 0 (ReLU)"));
      }
      if (c.has_max()) RETURN_IF_ERROR(CheckFinite(StrCat(f, ".max"), c.max()));
      step.dtype = X.desc->dtype;
      step.work = IdentityWork(*X.desc);
      step.out = DenseDesc(X.desc->shape, X.desc->dtype);
      break;
    }
    case GraphOpKind::kCast: {
      RETURN_IF_ERROR(CheckDense(X, x_field, name, 12, false));
      const DType to = static_cast<DType>(op.cast().dtype());
      if (!IsValueType(to)) {
        const std::string dtype_name = v1::DType_Name(op.cast().dtype());
        return Invalid(
            StrCat(f, ".dtype = ", dtype_name.empty() ? StrCat(int(op.cast().dtype())) : dtype_name,
                   " is not a value type (F32, F16 or BF16)"));
      }
      step.dtype = to;
      step.work = IdentityWork(*X.desc);
      step.out = DenseDesc(X.desc->shape, to);
      break;
    }
    default:
      return absl::InternalError(StrCat(f, ": ", name, " is not an elementwise op"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view GraphOpKindName(GraphOpKind kind) {
  switch (kind) {
    case GraphOpKind::kSpmm:
      return "spmm";
    case GraphOpKind::kConvert:
      return "convert";
    case GraphOpKind::kTranspose:
      return "transpose";
    case GraphOpKind::kPrune:
      return "prune";
    case GraphOpKind::kSddmm:
      return "sddmm";
    case GraphOpKind::kDenseMatmul:
      return "dense_matmul";
    case GraphOpKind::kAdd:
      return "add";
    case GraphOpKind::kScale:
      return "scale";
    case GraphOpKind::kRelu:
      return "relu";
    case GraphOpKind::kClamp:
      return "clamp";
    case GraphOpKind::kCast:
      return "cast";
    case GraphOpKind::kLayerForward:
      return "layer_forward";
    case GraphOpKind::kLayerBackward:
      return "layer_backward";
    case GraphOpKind::kLayerStep:
      return "layer_step";
  }
  return "unknown";
}

absl::Status WithField(std::string_view field, const absl::Status& status) {
  return absl::Status(status.code(), StrCat(field, ": ", status.message()));
}

absl::StatusOr<GraphOpKind> GraphOpKindOf(const v1::GraphOp& op, std::string_view field) {
  switch (op.op_case()) {
    case v1::GraphOp::kSpmm:
      return GraphOpKind::kSpmm;
    case v1::GraphOp::kConvert:
      return GraphOpKind::kConvert;
    case v1::GraphOp::kTranspose:
      return GraphOpKind::kTranspose;
    case v1::GraphOp::kPrune:
      return GraphOpKind::kPrune;
    case v1::GraphOp::kSddmm:
      return GraphOpKind::kSddmm;
    case v1::GraphOp::kDenseMatmul:
      return GraphOpKind::kDenseMatmul;
    case v1::GraphOp::kAdd:
      return GraphOpKind::kAdd;
    case v1::GraphOp::kScale:
      return GraphOpKind::kScale;
    case v1::GraphOp::kRelu:
      return GraphOpKind::kRelu;
    case v1::GraphOp::kClamp:
      return GraphOpKind::kClamp;
    case v1::GraphOp::kCast:
      return GraphOpKind::kCast;
    case v1::GraphOp::kLayerForward:
      return GraphOpKind::kLayerForward;
    case v1::GraphOp::kLayerBackward:
      return GraphOpKind::kLayerBackward;
    case v1::GraphOp::kLayerStep:
      return GraphOpKind::kLayerStep;
    case v1::GraphOp::kRepeat:
      return Invalid(StrCat(field, ": repeats do not nest (a repeat body holds plain ops)"));
    case v1::GraphOp::OP_NOT_SET:
      break;
  }
  return Invalid(
      StrCat(field, " ('", op.name(),
             "') sets no op (spmm, convert, transpose, prune, sddmm, dense_matmul, add, "
             "scale, relu, clamp, cast, layer_forward, layer_backward, layer_step or repeat)"));
}

OperandSlots OperandSlotsOf(const v1::GraphOp& op, GraphOpKind kind) {
  auto req = [](bool has, const v1::GraphOperand& o, std::string_view name) {
    return OperandSlot{has ? &o : nullptr, name, true};
  };
  auto opt = [](bool has, const v1::GraphOperand& o, std::string_view name) {
    return OperandSlot{has ? &o : nullptr, name, false};
  };
  switch (kind) {
    case GraphOpKind::kSpmm: {
      const v1::GraphSpmm& s = op.spmm();
      return {req(s.has_a(), s.a(), "a"), req(s.has_b(), s.b(), "b"), opt(s.has_c(), s.c(), "c"),
              opt(s.has_bias(), s.bias(), "bias")};
    }
    case GraphOpKind::kConvert:
      return {req(op.convert().has_source(), op.convert().source(), "source")};
    case GraphOpKind::kTranspose:
      return {req(op.transpose().has_source(), op.transpose().source(), "source")};
    case GraphOpKind::kPrune:
      return {req(op.prune().has_source(), op.prune().source(), "source")};
    case GraphOpKind::kSddmm: {
      const v1::GraphSddmm& s = op.sddmm();
      return {req(s.has_a(), s.a(), "a"), req(s.has_b(), s.b(), "b"),
              req(s.has_pattern(), s.pattern(), "pattern"), opt(s.has_c(), s.c(), "c")};
    }
    case GraphOpKind::kDenseMatmul: {
      const v1::GraphDenseMatmul& d = op.dense_matmul();
      return {req(d.has_a(), d.a(), "a"), req(d.has_b(), d.b(), "b")};
    }
    case GraphOpKind::kAdd:
      return {req(op.add().has_x(), op.add().x(), "x"), req(op.add().has_y(), op.add().y(), "y")};
    case GraphOpKind::kScale:
      return {req(op.scale().has_x(), op.scale().x(), "x")};
    case GraphOpKind::kRelu:
      return {req(op.relu().has_x(), op.relu().x(), "x")};
    case GraphOpKind::kClamp:
      return {req(op.clamp().has_x(), op.clamp().x(), "x")};
    case GraphOpKind::kCast:
      return {req(op.cast().has_x(), op.cast().x(), "x")};
    case GraphOpKind::kLayerForward:
      return {req(op.layer_forward().has_x(), op.layer_forward().x(), "x")};
    case GraphOpKind::kLayerBackward:
      return {req(op.layer_backward().has_grad_out(), op.layer_backward().grad_out(), "grad_out")};
    case GraphOpKind::kLayerStep:
      return {};
  }
  return {};
}

absl::Status CheckGraphOp(const OperandInfos& in, std::string_view field, PlanStep& step) {
  const std::string f = StrCat(field, ".", GraphOpKindName(step.kind));
  const v1::GraphOp& op = *step.op;
  step.exact_nnz = true;
  switch (step.kind) {
    case GraphOpKind::kSpmm:
      RETURN_IF_ERROR(CheckSpmmOp(op.spmm(), in, f, step));
      break;
    case GraphOpKind::kConvert:
      RETURN_IF_ERROR(CheckConvertOp(op.convert(), in, f, step));
      break;
    case GraphOpKind::kTranspose:
      RETURN_IF_ERROR(CheckTransposeOp(in, f, step));
      break;
    case GraphOpKind::kPrune:
      RETURN_IF_ERROR(CheckPruneOp(op.prune(), in, f, step));
      break;
    case GraphOpKind::kSddmm:
      RETURN_IF_ERROR(CheckSddmmOp(op.sddmm(), in, f, step));
      break;
    case GraphOpKind::kDenseMatmul:
      RETURN_IF_ERROR(CheckDenseMatmulOp(op.dense_matmul(), in, f, step));
      break;
    case GraphOpKind::kLayerForward:
      RETURN_IF_ERROR(CheckLayerForwardOp(in, f, step));
      break;
    case GraphOpKind::kLayerBackward:
      RETURN_IF_ERROR(CheckLayerBackwardOp(in, f, step));
      break;
    case GraphOpKind::kLayerStep:
      RETURN_IF_ERROR(CheckLayerStepOp(op.layer_step(), f, step));
      break;
    default:
      RETURN_IF_ERROR(CheckElementwiseOp(op, step.kind, in, f, step));
      break;
  }
  step.out_bytes = 0;
  if (HasResult(step.kind)) {
    ASSIGN_OR_RETURN(step.out_bytes, DescBytes(step.out, f));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> DescBytes(const TensorDesc& desc, std::string_view field) {
  absl::StatusOr<std::vector<ComponentSpec>> specs = ComponentsOf(desc);
  if (!specs.ok()) return WithField(StrCat(field, " (its result)"), specs.status());
  int64_t bytes = 0;
  for (const ComponentSpec& s : *specs) bytes += s.bytes();
  return bytes;
}

}  // namespace sparsed::server
