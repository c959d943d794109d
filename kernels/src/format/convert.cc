// Conversions between dense, COO and CSR, and transposition.
#include "sparsed/convert.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "sparsed/cast.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace {

// A row-major view of the entries of a canonical sparse tensor: for each row,
// the half-open range of positions into col_idx/values. CSR has it directly;
// COO's row pointers are counted (entries are sorted, so positions coincide).
template <class I>
std::vector<int64_t> RowStarts(const Tensor& t) {
  const int64_t rows = t.desc().rows();
  std::vector<int64_t> start(rows + 1, 0);
  if (t.format() == Format::kCsr) {
    std::span<const I> rp = t.data<I>("row_ptr");
    for (int64_t r = 0; r <= rows; ++r) start[r] = rp[r];
  } else {
    std::span<const I> ri = t.data<I>("row_idx");
    for (int64_t e = 0; e < t.desc().nnz; ++e) ++start[ri[e] + 1];
    for (int64_t r = 0; r < rows; ++r) start[r + 1] += start[r];
  }
  return start;
}

// Writes the row structure of a sparse result (row_ptr for CSR, row_idx for
// COO) from row starts.
template <class J>
void WriteRows(Tensor& out, const std::vector<int64_t>& start) {
  const int64_t rows = out.desc().rows();
  if (out.format() == Format::kCsr) {
    std::span<J> rp = out.data<J>("row_ptr");
    for (int64_t r = 0; r <= rows; ++r) rp[r] = static_cast<J>(start[r]);
  } else {
    std::span<J> ri = out.data<J>("row_idx");
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t e = start[r]; e < start[r + 1]; ++e) ri[e] = static_cast<J>(r);
    }
  }
}

TensorDesc SparseDesc(Format f, int64_t rows, int64_t cols, int64_t nnz,
                      std::optional<DType> index_dtype) {
  TensorDesc d{f, DType::kF32, DType::kI32, {rows, cols}, nnz};
  d.index_dtype = index_dtype.value_or(NarrowestIndexType(d));
  return d;
}

// Sparse (COO or CSR, index type I) to sparse (format `to`, index dtype J).
template <class I, class J>
absl::StatusOr<Tensor> SparseToSparse(const Tensor& t, Format to, std::optional<DType> idx) {
  const TensorDesc& d = t.desc();
  ASSIGN_OR_RETURN(Tensor out,
                   Tensor::Allocate(SparseDesc(to, d.rows(), d.cols(), d.nnz, idx), t.device()));
  WriteRows<J>(out, RowStarts<I>(t));
  std::span<const I> ci = t.data<I>("col_idx");
  std::span<J> co = out.data<J>("col_idx");
  for (int64_t e = 0; e < d.nnz; ++e) co[e] = static_cast<J>(ci[e]);
  std::span<const float> vi = t.data<float>("values");
  if (!vi.empty()) std::memcpy(out.data<float>("values").data(), vi.data(), vi.size_bytes());
  return out;
}

// Row starts of the nonzeros of a dense matrix.
std::vector<int64_t> DenseRowStarts(const Tensor& t) {
  const int64_t rows = t.desc().rows(), cols = t.desc().cols();
  std::span<const float> v = t.data<float>("values");
  std::vector<int64_t> start(rows + 1, 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t count = 0;
    for (int64_t c = 0; c < cols; ++c) count += v[r * cols + c] != 0.0f;
    start[r + 1] = start[r] + count;
  }
  return start;
}

template <class J>
absl::StatusOr<Tensor> DenseToSparse(const Tensor& t, Format to, const std::vector<int64_t>& start,
                                     DType idx) {
  const int64_t rows = t.desc().rows(), cols = t.desc().cols();
  std::span<const float> v = t.data<float>("values");
  ASSIGN_OR_RETURN(Tensor out,
                   Tensor::Allocate(SparseDesc(to, rows, cols, start[rows], idx), t.device()));
  WriteRows<J>(out, start);
  std::span<J> co = out.data<J>("col_idx");
  std::span<float> vo = out.data<float>("values");
  int64_t e = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float x = v[r * cols + c];
      if (x != 0.0f) {
        co[e] = static_cast<J>(c);
        vo[e++] = x;
      }
    }
  }
  return out;
}

template <class I>
absl::StatusOr<Tensor> SparseToDense(const Tensor& t) {
  const int64_t rows = t.desc().rows(), cols = t.desc().cols();
  ASSIGN_OR_RETURN(
      Tensor out,
      Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {rows, cols}, 0}, t.device()));
  std::span<float> o = out.data<float>("values");
  std::fill(o.begin(), o.end(), 0.0f);
  const std::vector<int64_t> start = RowStarts<I>(t);
  std::span<const I> ci = t.data<I>("col_idx");
  std::span<const float> vi = t.data<float>("values");
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t e = start[r]; e < start[r + 1]; ++e) o[r * cols + ci[e]] = vi[e];
  }
  return out;
}

// Transposes a canonical COO or CSR tensor into the same format and index
// dtype: a counting sort by column, which visits rows in order, so each
// output row comes out sorted.
template <class I>
absl::StatusOr<Tensor> TransposeSparse(const Tensor& t) {
  const TensorDesc& d = t.desc();
  const int64_t rows = d.rows(), cols = d.cols(), nnz = d.nnz;
  TensorDesc od = d;
  od.shape = {cols, rows};
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(od, t.device()));
  std::span<const I> ci = t.data<I>("col_idx");
  std::span<const float> vi = t.data<float>("values");
  std::vector<int64_t> start(cols + 1, 0);
  for (int64_t e = 0; e < nnz; ++e) ++start[ci[e] + 1];
  for (int64_t c = 0; c < cols; ++c) start[c + 1] += start[c];
  std::vector<int64_t> next(start.begin(), start.end() - 1);
  const std::vector<int64_t> row_start = RowStarts<I>(t);
  std::span<I> co = out.data<I>("col_idx");
  std::span<float> vo = out.data<float>("values");
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t e = row_start[r]; e < row_start[r + 1]; ++e) {
      const int64_t pos = next[ci[e]]++;
      co[pos] = static_cast<I>(r);
      vo[pos] = vi[e];
    }
  }
  WriteRows<I>(out, start);
  return out;
}

absl::StatusOr<Tensor> TransposeDense(const Tensor& t) {
  if (t.desc().shape.size() == 1) return t.Clone();  // a vector is its own transpose
  const int64_t rows = t.desc().rows(), cols = t.desc().cols();
  TensorDesc od = t.desc();
  od.shape = {cols, rows};
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(od, t.device()));
  std::span<const float> in = t.data<float>("values");
  std::span<float> o = out.data<float>("values");
  constexpr int64_t kTile = 32;  // keeps both sides of a tile in cache
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) o[c * rows + r] = in[r * cols + c];
      }
    }
  }
  return out;
}

absl::Status CheckInput(const Tensor& t) {
  // Conversions index with the stored indices, so the content must be valid.
  return ValidateTensor(t, {}, "tensor");
}

}  // namespace

DType NarrowestIndexType(const TensorDesc& desc) {
  constexpr int64_t kMax32 = std::numeric_limits<int32_t>::max();
  bool fits = desc.nnz <= kMax32;
  for (int64_t d : desc.shape) fits = fits && d <= kMax32;
  return fits ? DType::kI32 : DType::kI64;
}

absl::StatusOr<Tensor> Convert(const Tensor& t, Format to, const ConvertOptions& options) {
  if (t.desc().dtype != DType::kF32) {
    return ViaF32(t, [&](const Tensor& f) { return Convert(f, to, options); });
  }
  const std::optional<DType> index_dtype = options.index_dtype;
  RETURN_IF_ERROR(CheckInput(t));
  const int to_int = static_cast<int>(to);
  if (to_int < static_cast<int>(Format::kDense) || to_int > static_cast<int>(Format::kCsr)) {
    return absl::InvalidArgumentError(
        StrCat("target format = ", to_int, " is not one of DENSE, COO, CSR"));
  }
  if (index_dtype.has_value() && !IsIndexType(*index_dtype)) {
    return absl::InvalidArgumentError(
        StrCat("index_dtype = ", static_cast<int>(*index_dtype), " is not one of I32, I64"));
  }
  const TensorDesc& d = t.desc();
  if (IsSparse(to) && d.shape.size() != 2) {
    return absl::InvalidArgumentError(StrCat("tensor.shape has ", d.shape.size(),
                                             " dimension(s); only 2-D tensors convert to ",
                                             FormatName(to)));
  }
  if (IsSparse(to) && index_dtype.has_value()) {
    // Report "i32 cannot index ..." before anything is computed.
    RETURN_IF_ERROR(ValidateDesc({to, DType::kF32, *index_dtype, d.shape, 0}, "result"));
  }
  if (!IsSparse(to)) {
    if (!IsSparse(d.format)) return t.Clone();
    return VisitIndexType(d.index_dtype, [&](auto i) { return SparseToDense<decltype(i)>(t); });
  }
  if (!IsSparse(d.format)) {
    const std::vector<int64_t> start = DenseRowStarts(t);
    const DType idx = index_dtype.value_or(
        NarrowestIndexType({to, DType::kF32, DType::kI32, d.shape, start.back()}));
    return VisitIndexType(idx,
                          [&](auto j) { return DenseToSparse<decltype(j)>(t, to, start, idx); });
  }
  const DType out_idx = index_dtype.value_or(NarrowestIndexType(d));
  return VisitIndexType(d.index_dtype, [&](auto i) {
    return VisitIndexType(
        out_idx, [&](auto j) { return SparseToSparse<decltype(i), decltype(j)>(t, to, out_idx); });
  });
}

absl::StatusOr<Tensor> Transpose(const Tensor& t) {
  if (t.desc().dtype != DType::kF32) {
    return ViaF32(t, [](const Tensor& f) { return Transpose(f); });
  }
  RETURN_IF_ERROR(CheckInput(t));
  if (!IsSparse(t.format())) return TransposeDense(t);
  return VisitIndexType(t.desc().index_dtype,
                        [&](auto i) { return TransposeSparse<decltype(i)>(t); });
}

}  // namespace sparsed

namespace sparsed {

absl::StatusOr<Tensor> TransposeView(const Tensor& t) {
  const TensorDesc& d = t.desc();
  if (d.format != Format::kCsr && d.format != Format::kCsc) {
    return absl::InvalidArgumentError(StrCat("a transpose view needs CSR or CSC, not ",
                                             FormatName(d.format),
                                             " (convert, or transpose into a new tensor)"));
  }
  TensorDesc v = d;
  v.shape = {d.cols(), d.rows()};
  if (d.format == Format::kCsr) {
    v.format = Format::kCsc;  // CSC of Aᵀ: col_ptr = row_ptr, row_idx = col_idx
    return Tensor::View(v, t, {"row_ptr", "col_idx", "values"});
  }
  v.format = Format::kCsr;  // CSR of Aᵀ: row_ptr = col_ptr, col_idx = row_idx
  return Tensor::View(v, t, {"col_ptr", "row_idx", "values"});
}

}  // namespace sparsed
