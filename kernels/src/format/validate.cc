// Content validation and canonicalisation of host tensors.
#include "sparsed/validate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <span>
#include <vector>

#include "compressed_check.h"
#include "sparsed/cast.h"
#include "sparsed/convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "validate_formats.h"

namespace sparsed {
namespace {

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

// Every component buffer exists and has exactly the size the description
// implies (defensive: Tensor::Allocate guarantees it for well-made tensors).
absl::Status CheckComponentSizes(const Tensor& t, std::string_view field) {
  ASSIGN_OR_RETURN(std::vector<ComponentSpec> specs, ComponentsOf(t.desc()));
  for (const ComponentSpec& spec : specs) {
    const Buffer* b = t.component(spec.name);
    if (b == nullptr) {
      return Invalid(
          StrCat(field, ".", spec.name, " is missing (", FormatName(t.format()), " stores it)"));
    }
    if (b->size() != spec.bytes()) {
      return Invalid(StrCat(field, ".", spec.name, " has ", b->size(), " bytes but ", spec.count,
                            " x ", DTypeName(spec.dtype), " needs ", spec.bytes()));
    }
    if (b->size() > 0 && b->data() == nullptr) {
      return Invalid(StrCat(field, ".", spec.name, " has no data"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(const Tensor& t, std::string_view field) {
  std::span<const float> v = t.data<float>("values");
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return Invalid(StrCat(field, ".values[", i, "] = ", v[i], " is not finite"));
    }
  }
  return absl::OkStatus();
}

template <class I>
absl::Status CheckCsr(const Tensor& t, const ValidateOptions& options, std::string_view field) {
  const TensorDesc& d = t.desc();
  return format::CheckCompressed<I>(t.data<I>("row_ptr"), t.data<I>("col_idx"), d.rows(), d.cols(),
                                    d.nnz, !options.allow_unsorted, format::kCsrNames, field);
}

template <class I>
absl::Status CheckCsc(const Tensor& t, const ValidateOptions& options, std::string_view field) {
  const TensorDesc& d = t.desc();
  return format::CheckCompressed<I>(t.data<I>("col_ptr"), t.data<I>("row_idx"), d.cols(), d.rows(),
                                    d.nnz, !options.allow_unsorted, format::kCscNames, field);
}

template <class I>
absl::Status CheckCoo(const Tensor& t, const ValidateOptions& options, std::string_view field) {
  const int64_t rows = t.desc().rows(), cols = t.desc().cols(), nnz = t.desc().nnz;
  std::span<const I> row_idx = t.data<I>("row_idx");
  std::span<const I> col_idx = t.data<I>("col_idx");
  for (int64_t e = 0; e < nnz; ++e) {
    const int64_t r = row_idx[e], c = col_idx[e];
    if (r < 0 || r >= rows) {
      return Invalid(
          StrCat(field, ".row_idx[", e, "] = ", r, " is outside [0, rows = ", rows, ")"));
    }
    if (c < 0 || c >= cols) {
      return Invalid(StrCat(field, ".col_idx[", e, "] = ", c, " is outside [0, cols = ", cols,
                            ") (row ", r, ")"));
    }
    if (!options.allow_unsorted && e > 0) {
      const int64_t pr = row_idx[e - 1], pc = col_idx[e - 1];
      if (r < pr || (r == pr && c <= pc)) {
        return Invalid(StrCat(field, " entry ", e, " (row_idx = ", r, ", col_idx = ", c,
                              ") does not come after entry ", e - 1, " (row_idx = ", pr,
                              ", col_idx = ", pc,
                              ") (entries must be strictly increasing in row-major order; set "
                              "sort_and_sum_duplicates to have them sorted and duplicates "
                              "summed)"));
      }
    }
  }
  return absl::OkStatus();
}

// Sorts each row's entries by column (stable, so duplicates are summed in
// their stored order) and sums duplicates into out_* (appended).
template <class I>
void CanonicaliseRow(std::span<const I> cols, std::span<const float> vals,
                     std::vector<int64_t>& order, std::vector<I>& out_cols,
                     std::vector<float>& out_vals) {
  order.resize(cols.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t x, int64_t y) { return cols[x] < cols[y]; });
  for (size_t i = 0; i < order.size();) {
    const I c = cols[order[i]];
    double sum = 0;
    for (; i < order.size() && cols[order[i]] == c; ++i) sum += vals[order[i]];
    out_cols.push_back(c);
    out_vals.push_back(static_cast<float>(sum));
  }
}

// CSR: each row sorted by column, duplicates summed (memory O(rows + nnz),
// as the input's row_ptr already is).
template <class I>
absl::StatusOr<Tensor> CanonicaliseCsr(const Tensor& t) {
  const TensorDesc& d = t.desc();
  const int64_t rows = d.rows();
  std::span<const I> row_ptr = t.data<I>("row_ptr");
  std::span<const I> col_idx = t.data<I>("col_idx");
  std::span<const float> values = t.data<float>("values");
  std::vector<int64_t> out_row_ptr(rows + 1, 0), order;
  std::vector<I> out_cols;
  std::vector<float> out_vals;
  out_cols.reserve(d.nnz);
  out_vals.reserve(d.nnz);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = row_ptr[r], e = row_ptr[r + 1];
    CanonicaliseRow<I>(col_idx.subspan(b, e - b), values.subspan(b, e - b), order, out_cols,
                       out_vals);
    out_row_ptr[r + 1] = static_cast<int64_t>(out_cols.size());
  }
  TensorDesc od = d;
  od.nnz = static_cast<int64_t>(out_cols.size());
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(od, t.device()));
  std::copy(out_cols.begin(), out_cols.end(), out.data<I>("col_idx").begin());
  std::copy(out_vals.begin(), out_vals.end(), out.data<float>("values").begin());
  std::span<I> rp = out.data<I>("row_ptr");
  for (int64_t r = 0; r <= rows; ++r) rp[r] = static_cast<I>(out_row_ptr[r]);
  return out;
}

// COO: entries stably sorted by (row, column), so duplicates are summed in
// their stored order. Memory O(nnz) whatever the number of rows (a COO with
// 10^14 rows and a few entries is valid; found by fuzz_matrix_market).
template <class I>
absl::StatusOr<Tensor> CanonicaliseCoo(const Tensor& t) {
  const TensorDesc& d = t.desc();
  std::span<const I> row_idx = t.data<I>("row_idx");
  std::span<const I> col_idx = t.data<I>("col_idx");
  std::span<const float> values = t.data<float>("values");
  std::vector<int64_t> order(d.nnz);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
    return row_idx[x] != row_idx[y] ? row_idx[x] < row_idx[y] : col_idx[x] < col_idx[y];
  });
  std::vector<I> out_rows, out_cols;
  std::vector<float> out_vals;
  for (size_t i = 0; i < order.size();) {
    const I r = row_idx[order[i]], c = col_idx[order[i]];
    double sum = 0;
    for (; i < order.size() && row_idx[order[i]] == r && col_idx[order[i]] == c; ++i) {
      sum += values[order[i]];
    }
    out_rows.push_back(r);
    out_cols.push_back(c);
    out_vals.push_back(static_cast<float>(sum));
  }
  TensorDesc od = d;
  od.nnz = static_cast<int64_t>(out_cols.size());
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(od, t.device()));
  std::copy(out_rows.begin(), out_rows.end(), out.data<I>("row_idx").begin());
  std::copy(out_cols.begin(), out_cols.end(), out.data<I>("col_idx").begin());
  std::copy(out_vals.begin(), out_vals.end(), out.data<float>("values").begin());
  return out;
}

}  // namespace

absl::Status ValidateTensor(const Tensor& t, const ValidateOptions& options,
                            std::string_view field) {
  RETURN_IF_ERROR(ValidateDesc(t.desc(), field));
  RETURN_IF_ERROR(CheckComponentSizes(t, field));
  if (!t.device().is_cpu()) {
    // Device tensors are checked on a host copy (bounded by the tensor's size).
    ASSIGN_OR_RETURN(Tensor host, t.CopyTo(Device::Cpu()));
    return ValidateTensor(host, options, field);
  }
  if (options.reject_non_finite && t.desc().dtype != DType::kF32) {
    ASSIGN_OR_RETURN(Tensor f32, CastValues(t, DType::kF32));
    return ValidateTensor(f32, options, field);
  }
  switch (t.format()) {
    case Format::kDense:
      break;
    case Format::kCsr:
      RETURN_IF_ERROR(VisitIndexType(t.desc().index_dtype, [&](auto tag) {
        return CheckCsr<decltype(tag)>(t, options, field);
      }));
      break;
    case Format::kCoo:
      RETURN_IF_ERROR(VisitIndexType(t.desc().index_dtype, [&](auto tag) {
        return CheckCoo<decltype(tag)>(t, options, field);
      }));
      break;
    case Format::kCsc:
      RETURN_IF_ERROR(VisitIndexType(t.desc().index_dtype, [&](auto tag) {
        return CheckCsc<decltype(tag)>(t, options, field);
      }));
      break;
    case Format::kBsr:
      RETURN_IF_ERROR(format::CheckBsrContent(t, field));
      break;
    case Format::kNm:
      RETURN_IF_ERROR(format::CheckNmContent(t, field));
      break;
  }
  if (options.reject_non_finite) RETURN_IF_ERROR(CheckFinite(t, field));
  return absl::OkStatus();
}

absl::StatusOr<Tensor> SortAndSumDuplicates(const Tensor& t) {
  ValidateOptions options;
  options.allow_unsorted = true;
  RETURN_IF_ERROR(ValidateTensor(t, options));
  if (!IsSparse(t.format())) return t.Clone();
  if (t.format() == Format::kBsr || t.format() == Format::kNm) {
    return absl::InvalidArgumentError(StrCat("SortAndSumDuplicates takes coo, csr or csc, not ",
                                             FormatName(t.format()),
                                             " (whose layout has no duplicates to sum)"));
  }
  if (t.format() == Format::kCsc) {
    // CSC of A is CSR of Aᵀ: canonicalise that (sorting within columns).
    ASSIGN_OR_RETURN(Tensor as_csr, TransposeView(t));
    ASSIGN_OR_RETURN(Tensor sorted, SortAndSumDuplicates(as_csr));
    return TransposeView(sorted);
  }
  if (t.desc().dtype != DType::kF32) {
    return ViaF32(t, [](const Tensor& f) { return SortAndSumDuplicates(f); });
  }
  return VisitIndexType(t.desc().index_dtype, [&](auto tag) -> absl::StatusOr<Tensor> {
    using I = decltype(tag);
    return t.format() == Format::kCoo ? CanonicaliseCoo<I>(t) : CanonicaliseCsr<I>(t);
  });
}

}  // namespace sparsed
