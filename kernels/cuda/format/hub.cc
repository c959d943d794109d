#include "format/hub.h"

#include <algorithm>
#include <bit>
#include <limits>

#include "cuda_check.h"
#include "format/format_kernels.h"
#include "sparsed/str_cat.h"

namespace sparsed::cuda {
namespace {

constexpr unsigned long long kNoBadGroup = std::numeric_limits<unsigned long long>::max();

// Workspace array of max(count, 1) elements, so that no pointer is null.
template <class T>
absl::StatusOr<T*> Temp(Workspace& ws, int64_t count) {
  return ws.AllocArray<T>(std::max<int64_t>(count, 1));
}

const void* ValuesOf(const Tensor& t) { return t.component("values")->data(); }
void* ValuesOf(Tensor& t) { return t.component("values")->data(); }

bool Is64(const Tensor& t) { return t.desc().index_dtype == DType::kI64; }

// Copies int64 device indices into an index component of `out`.
absl::Status WriteIndices(const int64_t* src, Tensor& out, std::string_view component,
                          int64_t count, const ExecContext& ctx) {
  CUDA_RETURN_IF_ERROR(
      fmt::CopyIndices(src, true, out.component(component)->data(), Is64(out), count, ctx.stream),
      "index copy");
  return absl::OkStatus();
}

absl::Status CopyValues(const void* src, Tensor& out, int64_t bytes, const ExecContext& ctx) {
  if (bytes == 0) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(ValuesOf(out), src, bytes, cudaMemcpyDeviceToDevice, ctx.stream),
      "cudaMemcpyAsync(values)");
  return absl::OkStatus();
}

// Row pointers from per-row counts (rows + 1 of them, the last 0) and the nnz.
absl::StatusOr<std::pair<int64_t*, int64_t>> RowPtrFromCounts(const int64_t* counts, int64_t rows,
                                                              const ExecContext& ctx,
                                                              Workspace& ws) {
  ASSIGN_OR_RETURN(int64_t * row_ptr, ExclusiveScan(counts, rows + 1, ctx, ws));
  ASSIGN_OR_RETURN(int64_t nnz, ReadBack(row_ptr + rows, ctx));
  return std::make_pair(row_ptr, nnz);
}

// The result description with its index dtype settled, checked.
absl::StatusOr<TensorDesc> ResultDesc(TensorDesc d, const ConvertOptions& options) {
  if (IsSparse(d.format)) {
    d.index_dtype = options.index_dtype.value_or(NarrowestIndexType(d));
  }
  RETURN_IF_ERROR(ValidateDesc(d, "result"));
  return d;
}

absl::StatusOr<Tensor> AllocateOn(const TensorDesc& d, const ExecContext& ctx) {
  return Tensor::Allocate(d, Device::Cuda(ctx.device));
}

absl::StatusOr<Tensor> HubToBsr(const HubCsr& h, const ConvertOptions& o, const ExecContext& ctx,
                                Workspace& ws) {
  const int64_t R = o.block_rows, C = o.block_cols;
  TensorDesc d{Format::kBsr, h.dtype, DType::kI32, {h.rows, h.cols}, 0};
  d.block_rows = R;
  d.block_cols = C;
  const int64_t nbr = d.block_row_count(), nbc = d.block_col_count();
  // Distinct block keys (block row-major) of the entries: sort, then unique.
  ASSIGN_OR_RETURN(uint64_t * keys, Temp<uint64_t>(ws, h.nnz));
  ASSIGN_OR_RETURN(uint64_t * sorted, Temp<uint64_t>(ws, h.nnz));
  ASSIGN_OR_RETURN(uint64_t * unique, Temp<uint64_t>(ws, h.nnz));
  ASSIGN_OR_RETURN(int64_t * num_unique, Temp<int64_t>(ws, 1));
  int64_t nblocks = 0;
  if (h.nnz > 0) {
    CUDA_RETURN_IF_ERROR(
        fmt::BlockKeys(h.row_ptr, h.col_idx, h.rows, h.nnz, R, C, nbc, keys, ctx.stream),
        "block keys launch");
    const int end_bit = BitsFor(static_cast<uint64_t>(nbr * nbc - 1));
    size_t bytes = 0;
    CUDA_RETURN_IF_ERROR(fmt::SortKeysU64(nullptr, bytes, keys, sorted, h.nnz, end_bit, ctx.stream),
                         "cub SortKeys size");
    ASSIGN_OR_RETURN(void* temp, ws.Alloc(std::max<int64_t>(bytes, 1)));
    CUDA_RETURN_IF_ERROR(fmt::SortKeysU64(temp, bytes, keys, sorted, h.nnz, end_bit, ctx.stream),
                         "cub SortKeys");
    bytes = 0;
    CUDA_RETURN_IF_ERROR(
        fmt::UniqueU64(nullptr, bytes, sorted, unique, num_unique, h.nnz, ctx.stream),
        "cub Unique size");
    ASSIGN_OR_RETURN(void* temp2, ws.Alloc(std::max<int64_t>(bytes, 1)));
    CUDA_RETURN_IF_ERROR(
        fmt::UniqueU64(temp2, bytes, sorted, unique, num_unique, h.nnz, ctx.stream), "cub Unique");
    ASSIGN_OR_RETURN(nblocks, ReadBack(num_unique, ctx));
  }
  d.nnz = nblocks;
  ASSIGN_OR_RETURN(d, ResultDesc(d, o));
  ASSIGN_OR_RETURN(Tensor out, AllocateOn(d, ctx));
  ASSIGN_OR_RETURN(int64_t * brp, Temp<int64_t>(ws, nbr + 1));
  ASSIGN_OR_RETURN(int64_t * bci, Temp<int64_t>(ws, nblocks));
  CUDA_RETURN_IF_ERROR(fmt::BlockStructure(unique, nblocks, nbr, nbc, brp, bci, ctx.stream),
                       "block structure launch");
  RETURN_IF_ERROR(WriteIndices(brp, out, "block_row_ptr", nbr + 1, ctx));
  RETURN_IF_ERROR(WriteIndices(bci, out, "block_col_idx", nblocks, ctx));
  const int64_t value_bytes = out.component("values")->size();
  if (value_bytes > 0) {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(ValuesOf(out), 0, value_bytes, ctx.stream),
                         "cudaMemsetAsync(blocks)");
  }
  CUDA_RETURN_IF_ERROR(
      fmt::BsrScatter(h.row_ptr, h.col_idx, h.values, h.elem_bytes(), h.rows, h.nnz, R, C, nbc,
                      unique, nblocks, ValuesOf(out), ctx.stream),
      "bsr scatter launch");
  return out;
}

absl::StatusOr<Tensor> HubToNm(const HubCsr& h, const ConvertOptions& o, const ExecContext& ctx,
                               Workspace& ws) {
  TensorDesc d{Format::kNm, h.dtype, DType::kI32, {h.rows, h.cols}, 0};
  d.nm_n = o.nm_n;
  d.nm_m = o.nm_m;
  const int64_t groups = d.nm_groups();
  d.nnz = h.rows * groups * d.nm_n;
  ASSIGN_OR_RETURN(d, ResultDesc(d, o));
  ASSIGN_OR_RETURN(Tensor out, AllocateOn(d, ctx));
  Buffer* meta = out.component("meta");
  if (d.nm_packed_2_4() && meta->size() > 0) {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(meta->data(), 0, meta->size(), ctx.stream),
                         "cudaMemsetAsync(meta)");
  }
  ASSIGN_OR_RETURN(unsigned long long* bad, Temp<unsigned long long>(ws, 1));
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(bad, 0xff, sizeof(*bad), ctx.stream), "cudaMemsetAsync");
  CUDA_RETURN_IF_ERROR(
      fmt::NmFromCsr(h.row_ptr, h.col_idx, h.values, h.elem_bytes(), h.rows, groups, d.nm_n, d.nm_m,
                     d.nm_packed_2_4(), ValuesOf(out), meta->as<int32_t>(), bad, ctx.stream),
      "n:m fill launch");
  ASSIGN_OR_RETURN(int64_t bad_group, ReadBack(reinterpret_cast<const int64_t*>(bad), ctx));
  if (static_cast<unsigned long long>(bad_group) != kNoBadGroup) {
    const int64_t row = bad_group / groups, group = bad_group % groups;
    return absl::InvalidArgumentError(StrCat(
        "row ", row, ", group ", group, " (columns ", group * d.nm_m, "..",
        group * d.nm_m + d.nm_m - 1, ") has more than n = ", d.nm_n,
        " entries, so the tensor does not fit ", d.nm_n, ":", d.nm_m, " (prune to N:M instead)"));
  }
  return out;
}

}  // namespace

int BitsFor(uint64_t max_value) { return std::max(1, static_cast<int>(std::bit_width(max_value))); }

absl::StatusOr<int64_t> ReadBack(const int64_t* p, const ExecContext& ctx) {
  int64_t v = 0;
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(&v, p, sizeof(v), cudaMemcpyDeviceToHost, ctx.stream),
                       "cudaMemcpyAsync(read back)");
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(ctx.stream), "cudaStreamSynchronize");
  return v;
}

absl::StatusOr<int64_t*> ExclusiveScan(const int64_t* in, int64_t count, const ExecContext& ctx,
                                       Workspace& ws) {
  ASSIGN_OR_RETURN(int64_t * out, Temp<int64_t>(ws, count));
  if (count == 0) return out;
  size_t bytes = 0;
  CUDA_RETURN_IF_ERROR(fmt::ExclusiveSumI64(nullptr, bytes, in, out, count, ctx.stream),
                       "cub ExclusiveSum size");
  ASSIGN_OR_RETURN(void* temp, ws.Alloc(std::max<int64_t>(bytes, 1)));
  CUDA_RETURN_IF_ERROR(fmt::ExclusiveSumI64(temp, bytes, in, out, count, ctx.stream),
                       "cub ExclusiveSum");
  return out;
}

absl::Status SortPairs(const uint64_t* keys_in, uint64_t* keys_out, const int64_t* values_in,
                       int64_t* values_out, int64_t count, int end_bit, const ExecContext& ctx,
                       Workspace& ws) {
  if (count == 0) return absl::OkStatus();
  size_t bytes = 0;
  CUDA_RETURN_IF_ERROR(fmt::SortPairsU64(nullptr, bytes, keys_in, keys_out, values_in, values_out,
                                         count, end_bit, ctx.stream),
                       "cub SortPairs size");
  ASSIGN_OR_RETURN(void* temp, ws.Alloc(std::max<int64_t>(bytes, 1)));
  CUDA_RETURN_IF_ERROR(fmt::SortPairsU64(temp, bytes, keys_in, keys_out, values_in, values_out,
                                         count, end_bit, ctx.stream),
                       "cub SortPairs");
  return absl::OkStatus();
}

absl::StatusOr<const int64_t*> WideIndices(const Tensor& t, std::string_view component,
                                           const ExecContext& ctx, Workspace& ws) {
  const Buffer* b = t.component(component);
  if (Is64(t)) return b->as<int64_t>();
  const int64_t count = b->size() / 4;
  ASSIGN_OR_RETURN(int64_t * out, Temp<int64_t>(ws, count));
  CUDA_RETURN_IF_ERROR(fmt::CopyIndices(b->data(), false, out, true, count, ctx.stream),
                       "index widening launch");
  return out;
}

absl::StatusOr<TransposedPattern> TransposePattern(int64_t rows, int64_t cols, int64_t nnz,
                                                   const int64_t* row_ptr, const int64_t* col_idx,
                                                   const ExecContext& ctx, Workspace& ws) {
  TransposedPattern t;
  ASSIGN_OR_RETURN(t.row_ptr, Temp<int64_t>(ws, cols + 1));
  ASSIGN_OR_RETURN(t.col_idx, Temp<int64_t>(ws, nnz));
  if (nnz == 0) {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(t.row_ptr, 0, (cols + 1) * sizeof(int64_t), ctx.stream),
                         "cudaMemsetAsync(row_ptr)");
    return t;
  }
  // A stable sort of the entries by column keeps rows increasing within
  // every column: exactly the transpose's order.
  ASSIGN_OR_RETURN(uint64_t * sorted_cols, Temp<uint64_t>(ws, nnz));
  ASSIGN_OR_RETURN(int64_t * order, Temp<int64_t>(ws, nnz));
  ASSIGN_OR_RETURN(t.perm, Temp<int64_t>(ws, nnz));
  CUDA_RETURN_IF_ERROR(fmt::Iota(order, nnz, ctx.stream), "iota launch");
  RETURN_IF_ERROR(SortPairs(reinterpret_cast<const uint64_t*>(col_idx), sorted_cols, order, t.perm,
                            nnz, BitsFor(static_cast<uint64_t>(std::max<int64_t>(cols - 1, 0))),
                            ctx, ws));
  CUDA_RETURN_IF_ERROR(fmt::RowPtrFromSorted(reinterpret_cast<const int64_t*>(sorted_cols), nnz,
                                             cols, t.row_ptr, ctx.stream),
                       "row pointer launch");
  ASSIGN_OR_RETURN(int64_t * entry_rows, Temp<int64_t>(ws, nnz));
  CUDA_RETURN_IF_ERROR(fmt::ExpandRows(row_ptr, rows, nnz, entry_rows, ctx.stream),
                       "row expansion launch");
  CUDA_RETURN_IF_ERROR(fmt::GatherIndices(entry_rows, t.perm, t.col_idx, nnz, ctx.stream),
                       "gather launch");
  return t;
}

absl::StatusOr<HubCsr> TransposeHub(const HubCsr& h, const ExecContext& ctx, Workspace& ws) {
  ASSIGN_OR_RETURN(TransposedPattern p,
                   TransposePattern(h.rows, h.cols, h.nnz, h.row_ptr, h.col_idx, ctx, ws));
  HubCsr t = h;
  t.rows = h.cols;
  t.cols = h.rows;
  t.row_ptr = p.row_ptr;
  t.col_idx = p.col_idx;
  ASSIGN_OR_RETURN(void* values, ws.Alloc(std::max<int64_t>(h.nnz, 1) * h.elem_bytes()));
  CUDA_RETURN_IF_ERROR(
      fmt::GatherValues(h.values, h.elem_bytes(), p.perm, values, h.nnz, ctx.stream),
      "gather launch");
  t.values = values;
  return t;
}

absl::StatusOr<HubCsr> CompactHub(const HubCsr& h, const uint8_t* flags, const ExecContext& ctx,
                                  Workspace& ws) {
  ASSIGN_OR_RETURN(int64_t * counts, Temp<int64_t>(ws, h.rows + 1));
  CUDA_RETURN_IF_ERROR(fmt::CsrKeepCount(h.row_ptr, h.col_idx, h.values, h.elem_bytes(), flags,
                                         h.rows, counts, ctx.stream),
                       "count launch");
  HubCsr out = h;
  ASSIGN_OR_RETURN(auto rp, RowPtrFromCounts(counts, h.rows, ctx, ws));
  out.row_ptr = rp.first;
  out.nnz = rp.second;
  ASSIGN_OR_RETURN(int64_t * col_idx, Temp<int64_t>(ws, out.nnz));
  ASSIGN_OR_RETURN(void* values, ws.Alloc(std::max<int64_t>(out.nnz, 1) * h.elem_bytes()));
  CUDA_RETURN_IF_ERROR(fmt::CsrKeepFill(h.row_ptr, h.col_idx, h.values, h.elem_bytes(), flags,
                                        h.rows, rp.first, col_idx, values, ctx.stream),
                       "fill launch");
  out.col_idx = col_idx;
  out.values = values;
  return out;
}

absl::StatusOr<HubCsr> ToHub(const Tensor& t, const ExecContext& ctx, Workspace& ws) {
  const TensorDesc& d = t.desc();
  if (d.shape.size() != 2) {
    return absl::InvalidArgumentError(
        StrCat("tensor.shape has ", d.shape.size(), " dimension(s); a 2-D matrix is needed"));
  }
  HubCsr h;
  h.rows = d.rows();
  h.cols = d.cols();
  h.dtype = d.dtype;
  const int es = h.elem_bytes();
  // Formats whose entries are counted per row, then filled.
  int64_t* counts = nullptr;
  if (d.format == Format::kDense || d.format == Format::kBsr || d.format == Format::kNm) {
    ASSIGN_OR_RETURN(counts, Temp<int64_t>(ws, h.rows + 1));
  }
  switch (d.format) {
    case Format::kCsr: {
      h.nnz = d.nnz;
      ASSIGN_OR_RETURN(h.row_ptr, WideIndices(t, "row_ptr", ctx, ws));
      ASSIGN_OR_RETURN(h.col_idx, WideIndices(t, "col_idx", ctx, ws));
      h.values = ValuesOf(t);
      return h;
    }
    case Format::kCoo: {
      h.nnz = d.nnz;
      ASSIGN_OR_RETURN(const int64_t* rows, WideIndices(t, "row_idx", ctx, ws));
      ASSIGN_OR_RETURN(int64_t * row_ptr, Temp<int64_t>(ws, h.rows + 1));
      CUDA_RETURN_IF_ERROR(fmt::RowPtrFromSorted(rows, h.nnz, h.rows, row_ptr, ctx.stream),
                           "row pointer launch");
      h.row_ptr = row_ptr;
      ASSIGN_OR_RETURN(h.col_idx, WideIndices(t, "col_idx", ctx, ws));
      h.values = ValuesOf(t);
      return h;
    }
    case Format::kCsc: {
      HubCsr v = h;  // the CSC arrays are the CSR of the transpose
      v.rows = h.cols;
      v.cols = h.rows;
      v.nnz = d.nnz;
      ASSIGN_OR_RETURN(v.row_ptr, WideIndices(t, "col_ptr", ctx, ws));
      ASSIGN_OR_RETURN(v.col_idx, WideIndices(t, "row_idx", ctx, ws));
      v.values = ValuesOf(t);
      return TransposeHub(v, ctx, ws);
    }
    case Format::kDense: {
      CUDA_RETURN_IF_ERROR(
          fmt::DenseNonzeroCount(ValuesOf(t), es, h.rows, h.cols, counts, ctx.stream),
          "count launch");
      break;
    }
    case Format::kBsr:
    case Format::kNm:
      break;
  }
  fmt::BsrArrays bsr{};
  fmt::NmArrays nm{};
  if (d.format == Format::kBsr) {
    ASSIGN_OR_RETURN(bsr.block_row_ptr, WideIndices(t, "block_row_ptr", ctx, ws));
    ASSIGN_OR_RETURN(bsr.block_col_idx, WideIndices(t, "block_col_idx", ctx, ws));
    bsr.values = ValuesOf(t);
    bsr.block_rows = d.block_rows;
    bsr.block_cols = d.block_cols;
    bsr.cols = h.cols;
    CUDA_RETURN_IF_ERROR(fmt::BsrNonzeroCount(bsr, es, h.rows, counts, ctx.stream), "count launch");
  } else if (d.format == Format::kNm) {
    nm.values = ValuesOf(t);
    nm.meta = t.component("meta")->as<int32_t>();
    nm.n = d.nm_n;
    nm.m = d.nm_m;
    nm.groups = d.nm_groups();
    nm.packed = d.nm_packed_2_4();
    CUDA_RETURN_IF_ERROR(fmt::NmNonzeroCount(nm, es, h.rows, counts, ctx.stream), "count launch");
  }
  ASSIGN_OR_RETURN(auto rp, RowPtrFromCounts(counts, h.rows, ctx, ws));
  h.row_ptr = rp.first;
  h.nnz = rp.second;
  ASSIGN_OR_RETURN(int64_t * col_idx, Temp<int64_t>(ws, h.nnz));
  ASSIGN_OR_RETURN(void* values, ws.Alloc(std::max<int64_t>(h.nnz, 1) * es));
  cudaError_t err = cudaSuccess;
  if (d.format == Format::kDense) {
    err = fmt::DenseNonzeroFill(ValuesOf(t), es, h.rows, h.cols, rp.first, col_idx, values,
                                ctx.stream);
  } else if (d.format == Format::kBsr) {
    err = fmt::BsrNonzeroFill(bsr, es, h.rows, rp.first, col_idx, values, ctx.stream);
  } else {
    err = fmt::NmNonzeroFill(nm, es, h.rows, rp.first, col_idx, values, ctx.stream);
  }
  CUDA_RETURN_IF_ERROR(err, "fill launch");
  h.col_idx = col_idx;
  h.values = values;
  return h;
}

absl::StatusOr<const void*> HubToDense(const HubCsr& h, const ExecContext& ctx, Workspace& ws) {
  const int64_t bytes = h.rows * h.cols * h.elem_bytes();
  ASSIGN_OR_RETURN(void* dense, ws.Alloc(std::max<int64_t>(bytes, 1)));
  if (bytes > 0) {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(dense, 0, bytes, ctx.stream), "cudaMemsetAsync(dense)");
  }
  CUDA_RETURN_IF_ERROR(fmt::CsrScatterDense(h.row_ptr, h.col_idx, h.values, h.elem_bytes(), h.rows,
                                            h.cols, h.nnz, dense, ctx.stream),
                       "scatter launch");
  return static_cast<const void*>(dense);
}

absl::StatusOr<Tensor> FromHub(const HubCsr& h, Format to, const ConvertOptions& options,
                               const ExecContext& ctx, Workspace& ws) {
  const int es = h.elem_bytes();
  switch (to) {
    case Format::kDense: {
      ASSIGN_OR_RETURN(
          TensorDesc d,
          ResultDesc({Format::kDense, h.dtype, DType::kI32, {h.rows, h.cols}, 0}, options));
      ASSIGN_OR_RETURN(Tensor out, AllocateOn(d, ctx));
      const int64_t bytes = out.component("values")->size();
      if (bytes > 0) {
        CUDA_RETURN_IF_ERROR(cudaMemsetAsync(ValuesOf(out), 0, bytes, ctx.stream),
                             "cudaMemsetAsync(dense)");
      }
      CUDA_RETURN_IF_ERROR(fmt::CsrScatterDense(h.row_ptr, h.col_idx, h.values, es, h.rows, h.cols,
                                                h.nnz, ValuesOf(out), ctx.stream),
                           "scatter launch");
      return out;
    }
    case Format::kCsr:
    case Format::kCoo:
    case Format::kCsc: {
      HubCsr s = h;
      if (to == Format::kCsc) {
        ASSIGN_OR_RETURN(s, TransposeHub(h, ctx, ws));
      }
      ASSIGN_OR_RETURN(TensorDesc d,
                       ResultDesc({to, h.dtype, DType::kI32, {h.rows, h.cols}, h.nnz}, options));
      ASSIGN_OR_RETURN(Tensor out, AllocateOn(d, ctx));
      if (to == Format::kCoo) {
        ASSIGN_OR_RETURN(int64_t * rows, Temp<int64_t>(ws, h.nnz));
        CUDA_RETURN_IF_ERROR(fmt::ExpandRows(h.row_ptr, h.rows, h.nnz, rows, ctx.stream),
                             "row expansion launch");
        RETURN_IF_ERROR(WriteIndices(rows, out, "row_idx", h.nnz, ctx));
        RETURN_IF_ERROR(WriteIndices(h.col_idx, out, "col_idx", h.nnz, ctx));
      } else {
        const bool csc = to == Format::kCsc;
        RETURN_IF_ERROR(WriteIndices(s.row_ptr, out, csc ? "col_ptr" : "row_ptr", s.rows + 1, ctx));
        RETURN_IF_ERROR(WriteIndices(s.col_idx, out, csc ? "row_idx" : "col_idx", s.nnz, ctx));
      }
      RETURN_IF_ERROR(CopyValues(s.values, out, s.nnz * es, ctx));
      return out;
    }
    case Format::kBsr:
      return HubToBsr(h, options, ctx, ws);
    case Format::kNm:
      return HubToNm(h, options, ctx, ws);
  }
  return absl::InvalidArgumentError(StrCat("target format = ", static_cast<int>(to),
                                           " is not one of DENSE, COO, CSR, CSC, BSR, NM"));
}

absl::Status CheckConvertTarget(const TensorDesc& desc, Format to, const ConvertOptions& options) {
  const int to_int = static_cast<int>(to);
  if (to_int < static_cast<int>(Format::kDense) || to_int > static_cast<int>(Format::kNm)) {
    return absl::InvalidArgumentError(
        StrCat("target format = ", to_int, " is not one of DENSE, COO, CSR, CSC, BSR, NM"));
  }
  if (options.index_dtype.has_value() && !IsIndexType(*options.index_dtype)) {
    return absl::InvalidArgumentError(StrCat(
        "index_dtype = ", static_cast<int>(*options.index_dtype), " is not one of I32, I64"));
  }
  if (IsSparse(to) && desc.shape.size() != 2) {
    return absl::InvalidArgumentError(StrCat("tensor.shape has ", desc.shape.size(),
                                             " dimension(s); only 2-D tensors convert to ",
                                             FormatName(to)));
  }
  if (to == Format::kBsr) {
    for (auto [name, v] : {std::pair{"options.block_rows", options.block_rows},
                           std::pair{"options.block_cols", options.block_cols}}) {
      if (v < 1 || v > 1024) {
        return absl::InvalidArgumentError(
            StrCat(name, " = ", v, " must be in [1, 1024] for a BSR target"));
      }
    }
  }
  if (to == Format::kNm) {
    const int n = options.nm_n, m = options.nm_m;
    if (m < 2 || m > 32 || n < 1 || n >= m) {
      return absl::InvalidArgumentError(StrCat("options.nm_n:nm_m = ", n, ":", m,
                                               " must satisfy 1 <= n < m <= 32 for an N:M target"));
    }
    if (desc.cols() % m != 0) {
      return absl::InvalidArgumentError(
          StrCat("tensor.shape[1] = ", desc.cols(), " is not a multiple of m = ", m));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsed::cuda
