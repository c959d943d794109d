#include "train_kernels.h"

#include <algorithm>
#include <cmath>
#include <span>
#include <string_view>

#include "sparsed/cancel.h"
#include "sparsed/parallel.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed::cpu {
namespace {

// Rows (or elements) per parallel chunk: enough work per thread to pay for it.
constexpr int64_t kRowGrain = 16;
constexpr int64_t kElementGrain = 1 << 15;

absl::Status CheckOnHost(const Tensor* t, std::string_view field) {
  if (t != nullptr && !t->device().is_cpu()) {
    return absl::InvalidArgumentError(StrCat(field, " is on ", t->device().ToString(),
                                             " but the cpu backend needs host tensors"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> AllocateDense(std::vector<int64_t> shape) {
  return Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, std::move(shape), 0});
}

// Row i of op(A) as doubles, A row-major [rows, cols] as stored: op(A) row i
// is A's row i, or A's column i when transposed.
void GatherRow(const float* a, int64_t cols, bool transpose, int64_t i, int64_t k, double* row) {
  if (transpose) {
    for (int64_t q = 0; q < k; ++q) row[q] = a[q * cols + i];
  } else {
    const float* src = a + i * cols;
    for (int64_t q = 0; q < k; ++q) row[q] = src[q];
  }
}

double Dot(const double* x, const float* y, int64_t k) {
  double s = 0.0;
  for (int64_t q = 0; q < k; ++q) s += x[q] * static_cast<double>(y[q]);
  return s;
}

// The rows [begin, end) of a CSR pattern can be indexed safely: row_ptr
// non-decreasing within [0, nnz], col_idx in [0, cols). Cheaper than
// ValidateTensor when only a tile's rows are touched; order is not required.
template <class I>
absl::Status CheckPatternRows(const Tensor& pattern, int64_t begin, int64_t end) {
  const std::span<const I> row_ptr = pattern.data<I>("row_ptr");
  const std::span<const I> col_idx = pattern.data<I>("col_idx");
  const int64_t nnz = static_cast<int64_t>(col_idx.size()), cols = pattern.desc().cols();
  for (int64_t r = begin; r <= end; ++r) {
    const int64_t v = row_ptr[r];
    const int64_t lo = r > begin ? static_cast<int64_t>(row_ptr[r - 1]) : 0;
    if (v < lo || v > nnz) {
      return absl::InvalidArgumentError(
          StrCat("pattern.row_ptr[", r, "] = ", v, " must be in [", lo, ", ", nnz, "]"));
    }
  }
  for (int64_t e = row_ptr[begin]; e < static_cast<int64_t>(row_ptr[end]); ++e) {
    if (col_idx[e] < 0 || col_idx[e] >= cols) {
      return absl::InvalidArgumentError(
          StrCat("pattern.col_idx[", e, "] = ", col_idx[e], " must be in [0, ", cols, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> Sddmm(const SddmmArgs& args, int threads) {
  ASSIGN_OR_RETURN(const int64_t nnz, CheckSddmm(args));
  RETURN_IF_ERROR(CheckOnHost(args.a, "a"));
  RETURN_IF_ERROR(CheckOnHost(args.b, "b"));
  RETURN_IF_ERROR(CheckOnHost(args.pattern, "pattern"));
  RETURN_IF_ERROR(CheckOnHost(args.c, "c"));
  // The kernel indexes with the pattern's indices; the output follows the
  // pattern's order, so unsorted rows are fine.
  RETURN_IF_ERROR(ValidateTensor(*args.pattern, {.allow_unsorted = true}, "pattern"));

  const auto& as = args.a->desc().shape;
  const auto& bs = args.b->desc().shape;
  const int64_t m = args.pattern->desc().rows(), n = args.pattern->desc().cols();
  const int64_t k = args.transpose_a ? as[0] : as[1];
  ASSIGN_OR_RETURN(Tensor out, AllocateDense({nnz}));
  if (nnz == 0) return out;

  // Column j of op(B) as k contiguous floats at b_cols + j * k: B's row j
  // when transposed, else a transposed copy of B.
  const float* b = args.b->data<float>("values").data();
  std::vector<float> b_transposed;
  const float* b_cols = b;
  if (!args.transpose_b) {
    b_transposed.resize(static_cast<size_t>(n * k));
    for (int64_t q = 0; q < k; ++q) {
      for (int64_t j = 0; j < n; ++j) b_transposed[j * k + q] = b[q * bs[1] + j];
    }
    b_cols = b_transposed.data();
  }
  const float* a = args.a->data<float>("values").data();
  const float* c = args.beta != 0.0f ? args.c->data<float>("values").data() : nullptr;
  float* o = out.data<float>("values").data();
  const double alpha = args.alpha, beta = args.beta;

  VisitIndexType(args.pattern->desc().index_dtype, [&](auto tag) {
    using I = decltype(tag);
    const std::span<const I> row_ptr = args.pattern->data<I>("row_ptr");
    const std::span<const I> col_idx = args.pattern->data<I>("col_idx");
    ParallelForCancellable(m, kRowGrain, threads, [&](int64_t begin, int64_t end) {
      std::vector<double> a_row(k);
      for (int64_t i = begin; i < end; ++i) {
        if (row_ptr[i] == row_ptr[i + 1]) continue;
        GatherRow(a, as[1], args.transpose_a, i, k, a_row.data());
        for (int64_t p = row_ptr[i]; p < static_cast<int64_t>(row_ptr[i + 1]); ++p) {
          double x = alpha * Dot(a_row.data(), b_cols + col_idx[p] * k, k);
          if (c != nullptr) x += beta * static_cast<double>(c[p]);
          o[p] = static_cast<float>(x);
        }
      }
    });
  });
  RETURN_IF_ERROR(CancelStatus());  // stopped early: incomplete
  return out;
}

absl::StatusOr<Tensor> DenseMatmul(const DenseMatmulArgs& args, int threads) {
  ASSIGN_OR_RETURN(const std::vector<int64_t> shape, CheckDenseMatmul(args));
  RETURN_IF_ERROR(CheckOnHost(args.a, "a"));
  RETURN_IF_ERROR(CheckOnHost(args.b, "b"));
  const auto& as = args.a->desc().shape;
  const auto& bs = args.b->desc().shape;
  const int64_t k = args.transpose_a ? as[0] : as[1];
  const int64_t rows = shape[0], n = shape[1];
  ASSIGN_OR_RETURN(Tensor out, AllocateDense(shape));
  const float* a = args.a->data<float>("values").data();
  const float* b = args.b->data<float>("values").data();
  float* o = out.data<float>("values").data();

  ParallelForCancellable(rows, kRowGrain, threads, [&](int64_t begin, int64_t end) {
    std::vector<double> a_row(k), acc(n);
    for (int64_t r = begin; r < end; ++r) {
      GatherRow(a, as[1], args.transpose_a, args.row_begin + r, k, a_row.data());
      float* dst = o + r * n;
      if (args.transpose_b) {
        // B is [n, k]: each output is a dot product of contiguous rows.
        for (int64_t j = 0; j < n; ++j)
          dst[j] = static_cast<float>(Dot(a_row.data(), b + j * k, k));
      } else {
        // B is [k, n]: accumulate scaled rows of B.
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t q = 0; q < k; ++q) {
          const double v = a_row[q];
          const float* b_row = b + q * bs[1];
          for (int64_t j = 0; j < n; ++j) acc[j] += v * static_cast<double>(b_row[j]);
        }
        for (int64_t j = 0; j < n; ++j) dst[j] = static_cast<float>(acc[j]);
      }
    }
  });
  RETURN_IF_ERROR(CancelStatus());  // stopped early: incomplete
  return out;
}

absl::Status OptimizerUpdate(const OptimizerUpdateArgs& args, int threads) {
  RETURN_IF_ERROR(CheckOptimizerUpdate(args));
  RETURN_IF_ERROR(CheckOnHost(args.param, "param"));
  RETURN_IF_ERROR(CheckOnHost(args.grad, "grad"));
  const OptimizerHyper& h = args.hyper;
  const bool adam = h.kind != OptimizerKind::kSgd;
  const bool momentum = !adam && h.momentum > 0.0f;
  if (adam || momentum) RETURN_IF_ERROR(CheckOnHost(args.state1, "state1"));
  if (adam) RETURN_IF_ERROR(CheckOnHost(args.state2, "state2"));

  const int64_t n = args.param->desc().shape[0];
  float* p = args.param->data<float>("values").data();
  const float* g_in = args.grad->data<float>("values").data();
  float* s1 = adam || momentum ? args.state1->data<float>("values").data() : nullptr;
  float* s2 = adam ? args.state2->data<float>("values").data() : nullptr;

  const double lr = h.lr, wd = h.weight_decay, mu = h.momentum, scale = args.grad_scale;
  const double b1 = h.beta1, b2 = h.beta2, eps = h.eps;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(args.step));
  const double bias2 = 1.0 - std::pow(b2, static_cast<double>(args.step));

  ParallelFor(n, kElementGrain, threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double param = p[i];
      double g = scale * static_cast<double>(g_in[i]);
      if (h.kind == OptimizerKind::kSgd) {
        g += wd * param;
        double step = g;
        if (momentum) {
          const double buf = mu * static_cast<double>(s1[i]) + g;
          s1[i] = static_cast<float>(buf);
          step = h.nesterov ? g + mu * buf : buf;
        }
        param -= lr * step;
      } else {
        if (h.kind == OptimizerKind::kAdamW) {
          param -= lr * wd * param;
        } else {
          g += wd * param;
        }
        const double m = b1 * static_cast<double>(s1[i]) + (1.0 - b1) * g;
        const double v = b2 * static_cast<double>(s2[i]) + (1.0 - b2) * g * g;
        s1[i] = static_cast<float>(m);
        s2[i] = static_cast<float>(v);
        param -= lr * (m / bias1) / (std::sqrt(v / bias2) + eps);
      }
      p[i] = static_cast<float>(param);
    }
  });
  return absl::OkStatus();
}

absl::StatusOr<TopKResult> TopK(const Tensor& scores, int64_t k, TopKOrder order) {
  RETURN_IF_ERROR(CheckTopK(scores, k));
  RETURN_IF_ERROR(CheckOnHost(&scores, "scores"));
  if (order != TopKOrder::kLargest && order != TopKOrder::kLargestMagnitude &&
      order != TopKOrder::kSmallestMagnitude) {
    return absl::InvalidArgumentError(
        StrCat("order = ", static_cast<int>(order), " is not a known top-k order"));
  }
  const std::span<const float> s = scores.data<float>("values");
  const int64_t n = static_cast<int64_t>(s.size());
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(s[i])) {
      return absl::InvalidArgumentError(StrCat("scores[", i, "] = NaN: top-k needs numbers"));
    }
  }
  TopKResult result;
  if (k == 0) return result;

  // A strict total order (no NaN; equal keys broken by index), so
  // nth_element + sort pick the same entries in the same order as a stable
  // sort of the whole array would.
  const bool magnitude = order != TopKOrder::kLargest;
  const bool smallest = order == TopKOrder::kSmallestMagnitude;
  auto better = [&](int64_t x, int64_t y) {
    const float kx = magnitude ? std::fabs(s[x]) : s[x];
    const float ky = magnitude ? std::fabs(s[y]) : s[y];
    if (kx != ky) return smallest ? kx < ky : kx > ky;
    return x < y;
  };
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  if (k < n) std::nth_element(idx.begin(), idx.begin() + k, idx.end(), better);
  idx.resize(static_cast<size_t>(k));
  std::sort(idx.begin(), idx.end(), better);
  result.values.reserve(idx.size());
  for (int64_t i : idx) result.values.push_back(s[i]);
  result.indices = std::move(idx);
  return result;
}

absl::Status Axpby(float a, const Tensor& x, float b, Tensor& y, int threads) {
  RETURN_IF_ERROR(CheckAxpby(x, y));
  RETURN_IF_ERROR(CheckOnHost(&x, "x"));
  RETURN_IF_ERROR(CheckOnHost(&y, "y"));
  const float* xs = x.data<float>("values").data();
  float* ys = y.data<float>("values").data();
  const double da = a, db = b;
  ParallelFor(y.desc().numel(), kElementGrain, threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double v = da * static_cast<double>(xs[i]);
      if (b != 0.0f) v += db * static_cast<double>(ys[i]);
      ys[i] = static_cast<float>(v);
    }
  });
  return absl::OkStatus();
}

absl::StatusOr<Tensor> ReluBackward(const Tensor& dy, const Tensor& y, int threads) {
  RETURN_IF_ERROR(CheckReluBackward(dy, y));
  RETURN_IF_ERROR(CheckOnHost(&dy, "dy"));
  RETURN_IF_ERROR(CheckOnHost(&y, "y"));
  ASSIGN_OR_RETURN(Tensor out, AllocateDense(dy.desc().shape));
  const float* g = dy.data<float>("values").data();
  const float* ys = y.data<float>("values").data();
  float* o = out.data<float>("values").data();
  ParallelFor(dy.desc().numel(), kElementGrain, threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) o[i] = ys[i] > 0.0f ? g[i] : 0.0f;
  });
  return out;
}

absl::StatusOr<Tensor> ColumnSums(const Tensor& x, int threads) {
  RETURN_IF_ERROR(CheckColumnSums(x));
  RETURN_IF_ERROR(CheckOnHost(&x, "x"));
  const int64_t rows = x.desc().shape[0], cols = x.desc().shape[1];
  ASSIGN_OR_RETURN(Tensor out, AllocateDense({cols}));
  const float* xs = x.data<float>("values").data();
  float* o = out.data<float>("values").data();
  // Parallel over column ranges; each walks every row of its range.
  ParallelFor(cols, 64, threads, [&](int64_t begin, int64_t end) {
    std::vector<double> acc(end - begin, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = xs + r * cols;
      for (int64_t j = begin; j < end; ++j) acc[j - begin] += row[j];
    }
    for (int64_t j = begin; j < end; ++j) o[j] = static_cast<float>(acc[j - begin]);
  });
  return out;
}

absl::Status GrowthScores(Tensor& tile, const Tensor& pattern, int64_t row_begin, int threads) {
  RETURN_IF_ERROR(CheckGrowthScores(tile, pattern, row_begin));
  RETURN_IF_ERROR(CheckOnHost(&tile, "tile"));
  RETURN_IF_ERROR(CheckOnHost(&pattern, "pattern"));
  const int64_t rows = tile.desc().shape[0], n = tile.desc().shape[1];
  float* t = tile.data<float>("values").data();
  return VisitIndexType(pattern.desc().index_dtype, [&](auto tag) -> absl::Status {
    using I = decltype(tag);
    RETURN_IF_ERROR(CheckPatternRows<I>(pattern, row_begin, row_begin + rows));
    const std::span<const I> row_ptr = pattern.data<I>("row_ptr");
    const std::span<const I> col_idx = pattern.data<I>("col_idx");
    ParallelFor(rows, kRowGrain, threads, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        float* row = t + r * n;
        for (int64_t j = 0; j < n; ++j) row[j] = std::fabs(row[j]);
        const int64_t i = row_begin + r;
        for (int64_t p = row_ptr[i]; p < static_cast<int64_t>(row_ptr[i + 1]); ++p) {
          row[col_idx[p]] = -1.0f;
        }
      }
    });
    return absl::OkStatus();
  });
}

absl::StatusOr<Tensor> GatherOrZero(const Tensor& src, const std::vector<int64_t>& index) {
  RETURN_IF_ERROR(CheckGatherOrZero(src, index));
  RETURN_IF_ERROR(CheckOnHost(&src, "src"));
  ASSIGN_OR_RETURN(Tensor out, AllocateDense({static_cast<int64_t>(index.size())}));
  const float* s = src.data<float>("values").data();
  float* o = out.data<float>("values").data();
  for (size_t i = 0; i < index.size(); ++i) o[i] = index[i] >= 0 ? s[index[i]] : 0.0f;
  return out;
}

}  // namespace sparsed::cpu
