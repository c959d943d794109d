// HostCsr -> tensor of any format.
#include <algorithm>
#include <bit>
#include <cstring>
#include <span>

#include "host_csr.h"
#include "nm_meta.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::format {
namespace {

template <class J>
void PutIndices(Tensor& t, std::string_view name, const std::vector<int64_t>& v) {
  std::span<J> s = t.data<J>(name);
  for (size_t i = 0; i < v.size(); ++i) s[i] = static_cast<J>(v[i]);
}

void PutAllBits(Tensor& t, const HostCsr& a) {
  const int64_t es = SizeOf(a.dtype);
  void* v = t.component("values")->data();
  for (int64_t e = 0; e < a.nnz(); ++e) StoreBits(v, es, e, a.bits[e]);
}

void ZeroValues(Tensor& t) {
  Buffer* b = t.component("values");
  if (b->size() > 0) std::memset(b->data(), 0, b->size());
}

// Block structure of a BSR result: for each block row, the sorted distinct
// block columns that some entry falls in.
struct BlockPattern {
  std::vector<int64_t> ptr;   // block rows + 1
  std::vector<int64_t> cols;  // block column of each stored block
};

BlockPattern PatternOf(const HostCsr& a, int64_t R, int64_t C) {
  const int64_t block_rows = (a.rows + R - 1) / R;
  BlockPattern p;
  p.ptr.assign(block_rows + 1, 0);
  std::vector<int64_t> seen;
  for (int64_t br = 0; br < block_rows; ++br) {
    seen.clear();
    const int64_t r1 = std::min(a.rows, (br + 1) * R);
    for (int64_t e = a.row_ptr[br * R]; e < a.row_ptr[r1]; ++e) seen.push_back(a.col_idx[e] / C);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    p.cols.insert(p.cols.end(), seen.begin(), seen.end());
    p.ptr[br + 1] = static_cast<int64_t>(p.cols.size());
  }
  return p;
}

template <class J>
void FillBsr(Tensor& t, const HostCsr& a, const BlockPattern& p) {
  const int64_t R = t.desc().block_rows, C = t.desc().block_cols, es = SizeOf(a.dtype);
  PutIndices<J>(t, "block_row_ptr", p.ptr);
  PutIndices<J>(t, "block_col_idx", p.cols);
  ZeroValues(t);
  void* v = t.component("values")->data();
  for (int64_t r = 0; r < a.rows; ++r) {
    const int64_t br = r / R, i = r % R;
    int64_t blk = p.ptr[br];
    for (int64_t e = a.row_ptr[r]; e < a.row_ptr[r + 1]; ++e) {
      const int64_t bc = a.col_idx[e] / C;
      while (p.cols[blk] < bc) ++blk;  // both sorted: a moving pointer finds the block
      StoreBits(v, es, (blk * R + i) * C + (a.col_idx[e] - bc * C), a.bits[e]);
    }
  }
}

// Every group keeps exactly n slots: the non-zero entries' positions plus the
// lowest unused positions, in increasing order, the added slots holding 0.
absl::Status FillNm(Tensor& t, const HostCsr& a) {
  const TensorDesc& d = t.desc();
  const int64_t n = d.nm_n, m = d.nm_m, groups = d.nm_groups(), es = SizeOf(a.dtype);
  const bool packed = d.nm_packed_2_4();
  ZeroValues(t);
  std::span<int32_t> meta = t.data<int32_t>("meta");
  std::fill(meta.begin(), meta.end(), 0);
  void* v = t.component("values")->data();
  for (int64_t r = 0; r < a.rows; ++r) {
    int64_t e = a.row_ptr[r];
    const int64_t end = a.row_ptr[r + 1];
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t c0 = g * m;
      uint32_t used = 0;  // bit p: position p holds a non-zero entry
      const int64_t first = e;
      for (; e < end && a.col_idx[e] < c0 + m; ++e) {
        if (!IsZeroBits(es, a.bits[e])) used |= 1u << (a.col_idx[e] - c0);
      }
      const int count = std::popcount(used);
      if (count > n) {
        return absl::InvalidArgumentError(StrCat("tensor row ", r, ", group ", g, " (columns ", c0,
                                                 "..", c0 + m - 1, ") has ", count,
                                                 " non-zeros but ", n, ":", m, " keeps at most ", n,
                                                 " per group (prune to N:M instead)"));
      }
      uint32_t kept = used;
      for (int k = count; k < n; ++k) kept |= kept + 1;  // sets the lowest clear bit
      int64_t x = first, s = 0;
      uint32_t nibble = 0;
      for (int64_t p = 0; p < m; ++p) {
        if (!(kept & (1u << p))) continue;
        const int64_t slot = (r * groups + g) * n + s;
        if (used & (1u << p)) {
          while (a.col_idx[x] != c0 + p) ++x;
          StoreBits(v, es, slot, a.bits[x]);
        }
        if (packed) {
          nibble |= static_cast<uint32_t>(p) << (2 * s);
        } else {
          meta[slot] = static_cast<int32_t>(p);
        }
        ++s;
      }
      if (packed) {
        const int64_t w = r * PackedWordsPerRow(groups) + g / 8;
        meta[w] = static_cast<int32_t>(static_cast<uint32_t>(meta[w]) | nibble << (4 * (g % 8)));
      }
    }
  }
  return absl::OkStatus();
}

template <class J>
absl::Status Fill(Tensor& t, const HostCsr& a, const BlockPattern& blocks) {
  switch (t.format()) {
    case Format::kCoo: {
      std::vector<int64_t> rows(a.nnz());
      for (int64_t r = 0; r < a.rows; ++r) {
        std::fill(rows.begin() + a.row_ptr[r], rows.begin() + a.row_ptr[r + 1], r);
      }
      PutIndices<J>(t, "row_idx", rows);
      PutIndices<J>(t, "col_idx", a.col_idx);
      PutAllBits(t, a);
      break;
    }
    case Format::kCsr:
      PutIndices<J>(t, "row_ptr", a.row_ptr);
      PutIndices<J>(t, "col_idx", a.col_idx);
      PutAllBits(t, a);
      break;
    case Format::kCsc: {
      const HostCsr at = TransposeHostCsr(a);
      PutIndices<J>(t, "col_ptr", at.row_ptr);
      PutIndices<J>(t, "row_idx", at.col_idx);
      PutAllBits(t, at);
      break;
    }
    case Format::kBsr:
      FillBsr<J>(t, a, blocks);
      break;
    case Format::kNm:
      return FillNm(t, a);
    case Format::kDense:
      break;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> WriteHostCsr(const HostCsr& a, const WriteSpec& spec) {
  if (spec.format == Format::kDense) {
    ASSIGN_OR_RETURN(Tensor t,
                     Tensor::Allocate({Format::kDense, a.dtype, DType::kI32, {a.rows, a.cols}, 0}));
    ZeroValues(t);
    const int64_t es = SizeOf(a.dtype);
    void* v = t.component("values")->data();
    for (int64_t r = 0; r < a.rows; ++r) {
      for (int64_t e = a.row_ptr[r]; e < a.row_ptr[r + 1]; ++e) {
        StoreBits(v, es, r * a.cols + a.col_idx[e], a.bits[e]);
      }
    }
    return t;
  }
  TensorDesc d{spec.format, a.dtype, DType::kI32, {a.rows, a.cols}, a.nnz()};
  BlockPattern blocks;
  if (spec.format == Format::kBsr) {
    d.block_rows = spec.block_rows;
    d.block_cols = spec.block_cols;
    blocks = PatternOf(a, spec.block_rows, spec.block_cols);
    d.nnz = static_cast<int64_t>(blocks.cols.size());
  } else if (spec.format == Format::kNm) {
    d.nm_n = spec.nm_n;
    d.nm_m = spec.nm_m;
    d.nnz = a.rows * (a.cols / spec.nm_m) * spec.nm_n;
  }
  d.index_dtype = spec.index_dtype.value_or(NarrowestIndexType(d));
  RETURN_IF_ERROR(ValidateDesc(d, "result"));
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(d));
  RETURN_IF_ERROR(
      VisitIndexType(d.index_dtype, [&](auto tag) { return Fill<decltype(tag)>(t, a, blocks); }));
  return t;
}

}  // namespace sparsed::format
