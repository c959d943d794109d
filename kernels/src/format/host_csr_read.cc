// Tensor (any format) -> HostCsr.
#include <algorithm>
#include <span>

#include "host_csr.h"
#include "nm_meta.h"
#include "sparsed/buffer.h"
#include "sparsed/half.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::format {
namespace {

std::vector<int64_t> Indices(const Tensor& t, std::string_view name) {
  return VisitIndexType(t.desc().index_dtype, [&](auto tag) {
    std::span<const decltype(tag)> s = t.data<decltype(tag)>(name);
    return std::vector<int64_t>(s.begin(), s.end());
  });
}

HostCsr Empty(const Tensor& t) {
  HostCsr a;
  a.rows = t.desc().rows();
  a.cols = t.desc().cols();
  a.dtype = t.desc().dtype;
  a.row_ptr.assign(a.rows + 1, 0);
  return a;
}

// Appends every stored value (no zero dropping) in stored order.
void CopyAllBits(const Tensor& t, HostCsr& a) {
  const int64_t es = SizeOf(t.desc().dtype);
  const void* v = t.component("values")->data();
  a.bits.resize(t.desc().nnz);
  for (int64_t e = 0; e < t.desc().nnz; ++e) a.bits[e] = LoadBits(v, es, e);
}

HostCsr ReadDense(const Tensor& t) {
  HostCsr a = Empty(t);
  const int64_t es = SizeOf(a.dtype);
  const void* v = t.component("values")->data();
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t c = 0; c < a.cols; ++c) {
      const uint32_t b = LoadBits(v, es, r * a.cols + c);
      if (IsZeroBits(es, b)) continue;
      a.col_idx.push_back(c);
      a.bits.push_back(b);
    }
    a.row_ptr[r + 1] = a.nnz();
  }
  return a;
}

HostCsr ReadCoo(const Tensor& t) {
  HostCsr a = Empty(t);
  for (int64_t r : Indices(t, "row_idx")) ++a.row_ptr[r + 1];
  for (int64_t r = 0; r < a.rows; ++r) a.row_ptr[r + 1] += a.row_ptr[r];
  a.col_idx = Indices(t, "col_idx");  // canonical COO is already row-major
  CopyAllBits(t, a);
  return a;
}

HostCsr ReadCsr(const Tensor& t) {
  HostCsr a = Empty(t);
  a.row_ptr = Indices(t, "row_ptr");
  a.col_idx = Indices(t, "col_idx");
  CopyAllBits(t, a);
  return a;
}

HostCsr ReadCsc(const Tensor& t) {
  // CSC of A holds the arrays of CSR of Aᵀ.
  HostCsr at;
  at.rows = t.desc().cols();
  at.cols = t.desc().rows();
  at.dtype = t.desc().dtype;
  at.row_ptr = Indices(t, "col_ptr");
  at.col_idx = Indices(t, "row_idx");
  CopyAllBits(t, at);
  return TransposeHostCsr(at);
}

HostCsr ReadBsr(const Tensor& t) {
  HostCsr a = Empty(t);
  const TensorDesc& d = t.desc();
  const int64_t es = SizeOf(d.dtype), R = d.block_rows, C = d.block_cols;
  const std::vector<int64_t> bp = Indices(t, "block_row_ptr");
  const std::vector<int64_t> bc = Indices(t, "block_col_idx");
  const void* v = t.component("values")->data();
  for (int64_t r = 0; r < a.rows; ++r) {
    const int64_t br = r / R, i = r % R;
    // Block columns increase within a block row, so columns come out sorted.
    for (int64_t blk = bp[br]; blk < bp[br + 1]; ++blk) {
      const int64_t c0 = bc[blk] * C, width = std::min(C, a.cols - c0);
      for (int64_t j = 0; j < width; ++j) {
        const uint32_t b = LoadBits(v, es, (blk * R + i) * C + j);
        if (IsZeroBits(es, b)) continue;
        a.col_idx.push_back(c0 + j);
        a.bits.push_back(b);
      }
    }
    a.row_ptr[r + 1] = a.nnz();
  }
  return a;
}

HostCsr ReadNm(const Tensor& t) {
  HostCsr a = Empty(t);
  const TensorDesc& d = t.desc();
  const int64_t es = SizeOf(d.dtype), groups = d.nm_groups(), n = d.nm_n, m = d.nm_m;
  const NmMeta meta(t);
  const void* v = t.component("values")->data();
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      // Positions increase within a group and groups along the row.
      for (int64_t s = 0; s < n; ++s) {
        const uint32_t b = LoadBits(v, es, (r * groups + g) * n + s);
        if (IsZeroBits(es, b)) continue;
        a.col_idx.push_back(g * m + meta.Position(r, g, s));
        a.bits.push_back(b);
      }
    }
    a.row_ptr[r + 1] = a.nnz();
  }
  return a;
}

}  // namespace

float BitsToFloat(DType dtype, uint32_t bits) {
  switch (dtype) {
    case DType::kF16:
      return HalfToFloat(static_cast<uint16_t>(bits));
    case DType::kBF16:
      return Bf16ToFloat(static_cast<uint16_t>(bits));
    default:
      return BitsFloat(bits);
  }
}

absl::Status CheckHostCsrFits(const TensorDesc& d, bool with_transpose) {
  const int64_t physical = HostMemoryBytes();
  if (physical == 0) return absl::OkStatus();
  // In units of 8 bytes; each term is checked first, so the sum cannot overflow.
  const int64_t budget = physical / 16;
  const int64_t rows = d.rows(), cols = with_transpose ? d.cols() : -1;
  if (rows > budget || cols > budget || rows + cols + 2 > budget) {
    return absl::ResourceExhaustedError(
        StrCat("a [", d.rows(), ", ", d.cols(), "] tensor needs ", rows + cols + 2, " row",
               with_transpose ? " and column" : "",
               " offsets (8 bytes each) to convert on the host, more than half of the machine's ",
               physical, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ScratchReservation> ReserveHostCsr(const TensorDesc& d, bool with_transpose) {
  RETURN_IF_ERROR(CheckHostCsrFits(d, with_transpose));
  const int64_t offsets = d.rows() + 1 + (with_transpose ? d.cols() + 1 : 0);
  const int64_t stored = d.format == Format::kDense ? d.numel() : d.stored_values();
  // Offsets twice (read, and the writer's), 8 + 4 bytes per entry twice.
  const double bytes = 16.0 * double(offsets) + 24.0 * double(stored);
  if (bytes > 9e18) return absl::ResourceExhaustedError("conversion scratch overflows");
  return ScratchReservation::Take(static_cast<int64_t>(bytes), Device::Cpu(),
                                  "host conversion working memory");
}

HostCsr ReadHostCsr(const Tensor& t) {
  switch (t.format()) {
    case Format::kDense:
      return ReadDense(t);
    case Format::kCoo:
      return ReadCoo(t);
    case Format::kCsr:
      return ReadCsr(t);
    case Format::kCsc:
      return ReadCsc(t);
    case Format::kBsr:
      return ReadBsr(t);
    case Format::kNm:
      return ReadNm(t);
  }
  return Empty(t);
}

HostCsr TransposeHostCsr(const HostCsr& a) {
  HostCsr t;
  t.rows = a.cols;
  t.cols = a.rows;
  t.dtype = a.dtype;
  t.row_ptr.assign(t.rows + 1, 0);
  for (int64_t c : a.col_idx) ++t.row_ptr[c + 1];
  for (int64_t r = 0; r < t.rows; ++r) t.row_ptr[r + 1] += t.row_ptr[r];
  std::vector<int64_t> next(t.row_ptr.begin(), t.row_ptr.end() - 1);
  t.col_idx.resize(a.col_idx.size());
  t.bits.resize(a.bits.size());
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t e = a.row_ptr[r]; e < a.row_ptr[r + 1]; ++e) {
      const int64_t pos = next[a.col_idx[e]]++;
      t.col_idx[pos] = r;
      t.bits[pos] = a.bits[e];
    }
  }
  return t;
}

}  // namespace sparsed::format
