#include "server/request_cost.h"

#include <algorithm>
#include <cmath>

#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

double Cols(const TensorDesc& d) { return d.shape.size() < 2 ? 1.0 : double(d.shape[1]); }
double Rows(const TensorDesc& d) { return d.shape.empty() ? 1.0 : double(d.shape[0]); }

}  // namespace

double StoredWork(const TensorDesc& d) {
  if (d.format == Format::kDense) return static_cast<double>(d.numel());
  return static_cast<double>(d.stored_values());
}

double SpmmDescWork(const TensorDesc& a, const TensorDesc& b, bool transpose_a, bool transpose_b) {
  const bool a_sparse = a.format != Format::kDense;
  const TensorDesc& sparse = a_sparse ? a : b;
  const TensorDesc& dense = a_sparse ? b : a;
  const bool dense_t = a_sparse ? transpose_b : transpose_a;
  // Each stored entry meets one row (or column) of the dense operand: its
  // extent along the dimension that is not contracted.
  const double other =
      a_sparse ? (dense_t ? Rows(dense) : Cols(dense)) : (dense_t ? Cols(dense) : Rows(dense));
  const double out = (a_sparse ? (transpose_a ? Cols(sparse) : Rows(sparse)) : other) *
                     (a_sparse ? other : (transpose_b ? Rows(sparse) : Cols(sparse)));
  return StoredWork(sparse) * other + 2 * out + Rows(sparse) + Cols(sparse) + StoredWork(dense);
}

double SpmmWork(const SpmmArgs& args) {
  return SpmmDescWork(args.a->desc(), args.b->desc(), args.transpose_a, args.transpose_b);
}

double UnaryWork(const TensorDesc& source, double result_entries) {
  const double stored = StoredWork(source);
  // Sorting (magnitude prune, COO canonicalisation) costs a log factor.
  const double sort = stored * std::max(1.0, std::log2(std::max(2.0, stored)));
  return sort + Rows(source) + Cols(source) + result_entries;
}

double ConvertedEntries(const TensorDesc& source, Format to, int64_t block_rows,
                        int64_t block_cols) {
  const double rows = Rows(source), cols = Cols(source), stored = StoredWork(source);
  switch (to) {
    case Format::kDense:
      return rows * cols;
    case Format::kBsr: {
      const double r = double(block_rows), c = block_cols > 0 ? double(block_cols) : r;
      return std::min(stored * r * c, (rows + r) * (cols + c));
    }
    default:
      return stored + rows;
  }
}

double SddmmDescWork(const TensorDesc& a, const TensorDesc& b, const TensorDesc& pattern,
                     bool transpose_a) {
  const double k = transpose_a ? Rows(a) : Cols(a);
  return StoredWork(pattern) * k + StoredWork(a) + StoredWork(b);
}

double SddmmWork(const SddmmArgs& args) {
  return SddmmDescWork(args.a->desc(), args.b->desc(), args.pattern->desc(), args.transpose_a);
}

double DenseMatmulDescWork(const TensorDesc& a, const TensorDesc& b, bool transpose_a,
                           bool transpose_b, int64_t row_begin, int64_t row_end) {
  const double rows_total = transpose_a ? Cols(a) : Rows(a);
  const double k = transpose_a ? Rows(a) : Cols(a);
  const double n = transpose_b ? Rows(b) : Cols(b);
  const double end = row_end < 0 ? rows_total : static_cast<double>(row_end);
  const double rows = std::max(0.0, end - static_cast<double>(row_begin));
  return rows * k * n + rows * n;
}

double DenseMatmulWork(const DenseMatmulArgs& args) {
  return DenseMatmulDescWork(args.a->desc(), args.b->desc(), args.transpose_a, args.transpose_b,
                             args.row_begin, args.row_end);
}

double CreateLayerWork(const train::LayerConfig& config) {
  const double weights = double(config.in_features) * double(config.out_features);
  if (config.init == train::InitKind::kRandomPattern) {
    return weights * (1.0 - config.sparsity) * 4 + double(config.out_features);
  }
  return weights * 4;  // draw every weight, rank, keep
}

double LayerCallWork(int64_t batch, int64_t in_features, int64_t out_features, int64_t weights) {
  return double(batch) * (double(weights) + double(in_features) + double(out_features));
}

absl::Status CheckWork(double work, double max_work, std::string_view what) {
  if (max_work <= 0 || work <= max_work) return absl::OkStatus();
  char est[32], max[32];
  std::snprintf(est, sizeof(est), "%.3g", work);
  std::snprintf(max, sizeof(max), "%.3g", max_work);
  return absl::ResourceExhaustedError(StrCat(what, ": estimated cost ", est,
                                             " operations is more than max_request_work = ", max,
                                             "; split the request or raise the limit"));
}

}  // namespace sparsed::server
