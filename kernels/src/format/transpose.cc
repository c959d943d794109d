// Transpose (a new tensor of the same format) and TransposeView (CSR <-> CSC
// over the same memory).
#include <algorithm>
#include <span>

#include "host_csr.h"
#include "sparsed/convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace {

using format::LoadBits;
using format::StoreBits;

absl::StatusOr<Tensor> TransposeDense(const Tensor& t) {
  if (t.desc().shape.size() == 1) return t.Clone();  // a vector is its own transpose
  const int64_t rows = t.desc().rows(), cols = t.desc().cols(), es = SizeOf(t.desc().dtype);
  TensorDesc od = t.desc();
  od.shape = {cols, rows};
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(od, t.device()));
  const void* in = t.component("values")->data();
  void* o = out.component("values")->data();
  constexpr int64_t kTile = 32;  // keeps both sides of a tile in cache
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c)
          StoreBits(o, es, c * rows + r, LoadBits(in, es, r * cols + c));
      }
    }
  }
  return out;
}

// BSR [rows, cols] with R x C blocks -> BSR [cols, rows] with C x R blocks:
// block (br, bc) becomes block (bc, br) with its contents transposed. A
// counting sort by block column visits block rows in order, so block columns
// come out sorted. Stored blocks (even all-zero ones) are kept.
template <class I>
absl::StatusOr<Tensor> TransposeBsr(const Tensor& t) {
  const TensorDesc& d = t.desc();
  const int64_t R = d.block_rows, C = d.block_cols, es = SizeOf(d.dtype);
  const int64_t brc = d.block_row_count(), bcc = d.block_col_count();
  TensorDesc od = d;
  od.shape = {d.cols(), d.rows()};
  od.block_rows = C;
  od.block_cols = R;
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(od, t.device()));
  std::span<const I> bp = t.data<I>("block_row_ptr");
  std::span<const I> bc = t.data<I>("block_col_idx");
  std::span<I> obp = out.data<I>("block_row_ptr");
  std::span<I> obc = out.data<I>("block_col_idx");
  std::vector<int64_t> start(bcc + 1, 0);
  for (int64_t blk = 0; blk < d.nnz; ++blk) ++start[bc[blk] + 1];
  for (int64_t c = 0; c < bcc; ++c) start[c + 1] += start[c];
  for (int64_t c = 0; c <= bcc; ++c) obp[c] = static_cast<I>(start[c]);
  const void* in = t.component("values")->data();
  void* o = out.component("values")->data();
  for (int64_t br = 0; br < brc; ++br) {
    for (int64_t blk = bp[br]; blk < bp[br + 1]; ++blk) {
      const int64_t pos = start[bc[blk]]++;
      obc[pos] = static_cast<I>(br);
      for (int64_t i = 0; i < R; ++i) {
        for (int64_t j = 0; j < C; ++j) {
          StoreBits(o, es, (pos * C + j) * R + i, LoadBits(in, es, (blk * R + i) * C + j));
        }
      }
    }
  }
  return out;
}

// N:M through CSR: the transposed pattern must itself be N:M.
absl::StatusOr<Tensor> TransposeNm(const Tensor& t) {
  const TensorDesc& d = t.desc();
  if (d.rows() % d.nm_m != 0) {
    return absl::InvalidArgumentError(
        StrCat("the transpose of an ", d.nm_n, ":", d.nm_m, " tensor of shape [", d.rows(), ", ",
               d.cols(), "] has ", d.rows(), " columns, not a multiple of m = ", d.nm_m));
  }
  format::WriteSpec spec;
  spec.format = Format::kNm;
  spec.index_dtype = d.index_dtype;
  spec.nm_n = d.nm_n;
  spec.nm_m = d.nm_m;
  absl::StatusOr<Tensor> out =
      format::WriteHostCsr(format::TransposeHostCsr(format::ReadHostCsr(t)), spec);
  if (!out.ok() && out.status().code() == absl::StatusCode::kInvalidArgument) {
    return absl::InvalidArgumentError(
        StrCat("the transpose does not fit ", d.nm_n, ":", d.nm_m, ": ", out.status().message()));
  }
  return out;
}

}  // namespace

absl::StatusOr<Tensor> Transpose(const Tensor& t) {
  if (!t.device().is_cpu()) {
    return absl::InvalidArgumentError(
        StrCat("tensor is on ", t.device().ToString(), "; Transpose needs a host tensor"));
  }
  RETURN_IF_ERROR(ValidateTensor(t, {}, "tensor"));
  ScratchReservation scratch;
  if (IsSparse(t.format())) {
    ASSIGN_OR_RETURN(scratch, format::ReserveHostCsr(t.desc(), true));
  }
  switch (t.format()) {
    case Format::kDense:
      return TransposeDense(t);
    case Format::kBsr:
      return VisitIndexType(t.desc().index_dtype,
                            [&](auto tag) { return TransposeBsr<decltype(tag)>(t); });
    case Format::kNm:
      return TransposeNm(t);
    default: {
      // COO, CSR, CSC keep every stored entry (explicit zeros too).
      format::WriteSpec spec;
      spec.format = t.format();
      spec.index_dtype = t.desc().index_dtype;
      return format::WriteHostCsr(format::TransposeHostCsr(format::ReadHostCsr(t)), spec);
    }
  }
}

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
