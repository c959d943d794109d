// Device conversions through the hub CSR (hub.h), and transposes.
#include "cuda_check.h"
#include "format/device_format_ops.h"
#include "format/format_kernels.h"
#include "format/hub.h"
#include "sparsed/str_cat.h"

namespace sparsed::cuda {
namespace {

// A device copy of t on the stream (dense 1-D transpose, dense to dense).
absl::StatusOr<Tensor> CloneOn(const Tensor& t, const ExecContext& ctx) {
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(t.desc(), Device::Cuda(ctx.device)));
  for (const ComponentSpec& spec : t.specs()) {
    if (spec.bytes() == 0) continue;
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(out.component(spec.name)->data(), t.component(spec.name)->data(),
                        spec.bytes(), cudaMemcpyDeviceToDevice, ctx.stream),
        "cudaMemcpyAsync(clone)");
  }
  return out;
}

absl::Status CopyIndicesInto(const int64_t* src, Tensor& out, const char* component, int64_t count,
                             const ExecContext& ctx) {
  CUDA_RETURN_IF_ERROR(fmt::CopyIndices(src, true, out.component(component)->data(),
                                        out.desc().index_dtype == DType::kI64, count, ctx.stream),
                       "index copy");
  return absl::OkStatus();
}

// The CSC of Aᵀ holds the CSR arrays of A, which are the transpose of A's
// CSC arrays read as a CSR of Aᵀ: one transpose, no hub round trip.
absl::StatusOr<Tensor> TransposeCsc(const Tensor& t, const ExecContext& ctx, Workspace& ws) {
  const TensorDesc& d = t.desc();
  HubCsr v;  // CSR of Aᵀ: [cols, rows]
  v.rows = d.cols();
  v.cols = d.rows();
  v.nnz = d.nnz;
  v.dtype = d.dtype;
  ASSIGN_OR_RETURN(v.row_ptr, WideIndices(t, "col_ptr", ctx, ws));
  ASSIGN_OR_RETURN(v.col_idx, WideIndices(t, "row_idx", ctx, ws));
  v.values = t.component("values")->data();
  ASSIGN_OR_RETURN(HubCsr a, TransposeHub(v, ctx, ws));  // CSR of A: [rows, cols]
  TensorDesc od = d;
  od.shape = {d.cols(), d.rows()};
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(od, Device::Cuda(ctx.device)));
  RETURN_IF_ERROR(CopyIndicesInto(a.row_ptr, out, "col_ptr", a.rows + 1, ctx));
  RETURN_IF_ERROR(CopyIndicesInto(a.col_idx, out, "row_idx", a.nnz, ctx));
  if (a.nnz > 0) {
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(out.component("values")->data(), a.values, a.nnz * a.elem_bytes(),
                        cudaMemcpyDeviceToDevice, ctx.stream),
        "cudaMemcpyAsync(values)");
  }
  return out;
}

// BSR: the block pattern is transposed like a CSR and every block in place.
absl::StatusOr<Tensor> TransposeBsr(const Tensor& t, const ExecContext& ctx, Workspace& ws) {
  const TensorDesc& d = t.desc();
  const int64_t nbr = d.block_row_count(), nbc = d.block_col_count();
  ASSIGN_OR_RETURN(const int64_t* brp, WideIndices(t, "block_row_ptr", ctx, ws));
  ASSIGN_OR_RETURN(const int64_t* bci, WideIndices(t, "block_col_idx", ctx, ws));
  ASSIGN_OR_RETURN(TransposedPattern p, TransposePattern(nbr, nbc, d.nnz, brp, bci, ctx, ws));
  TensorDesc od = d;
  od.shape = {d.cols(), d.rows()};
  od.block_rows = d.block_cols;
  od.block_cols = d.block_rows;
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(od, Device::Cuda(ctx.device)));
  RETURN_IF_ERROR(CopyIndicesInto(p.row_ptr, out, "block_row_ptr", nbc + 1, ctx));
  RETURN_IF_ERROR(CopyIndicesInto(p.col_idx, out, "block_col_idx", d.nnz, ctx));
  CUDA_RETURN_IF_ERROR(
      fmt::BlockTransposeValues(t.component("values")->data(), static_cast<int>(SizeOf(d.dtype)),
                                p.perm, d.nnz, d.block_rows, d.block_cols,
                                out.component("values")->data(), ctx.stream),
      "block transpose launch");
  return out;
}

}  // namespace

absl::StatusOr<Tensor> DeviceConvert(const Tensor& t, Format to, const ConvertOptions& options,
                                     const ExecContext& ctx, Workspace& ws) {
  RETURN_IF_ERROR(CheckConvert(t.desc(), to, options));  // the host's rules and messages
  RETURN_IF_ERROR(CheckConvertTarget(t.desc(), to, options));
  if (!IsSparse(to) && !IsSparse(t.format())) return CloneOn(t, ctx);
  ASSIGN_OR_RETURN(HubCsr hub, ToHub(t, ctx, ws));
  return FromHub(hub, to, options, ctx, ws);
}

absl::StatusOr<Tensor> DeviceTranspose(const Tensor& t, const ExecContext& ctx, Workspace& ws) {
  const TensorDesc& d = t.desc();
  switch (d.format) {
    case Format::kDense: {
      if (d.shape.size() != 2) return CloneOn(t, ctx);  // a vector is its own transpose
      TensorDesc od = d;
      od.shape = {d.cols(), d.rows()};
      ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(od, Device::Cuda(ctx.device)));
      CUDA_RETURN_IF_ERROR(
          fmt::DenseTranspose(t.component("values")->data(), static_cast<int>(SizeOf(d.dtype)),
                              d.rows(), d.cols(), out.component("values")->data(), ctx.stream),
          "transpose launch");
      return out;
    }
    case Format::kCsc:
      return TransposeCsc(t, ctx, ws);
    case Format::kBsr:
      return TransposeBsr(t, ctx, ws);
    case Format::kCoo:
    case Format::kCsr: {
      ASSIGN_OR_RETURN(HubCsr hub, ToHub(t, ctx, ws));
      ASSIGN_OR_RETURN(HubCsr tr, TransposeHub(hub, ctx, ws));
      ConvertOptions o;
      o.index_dtype = d.index_dtype;
      return FromHub(tr, d.format, o, ctx, ws);
    }
    case Format::kNm: {
      // Through CSR: the transposed pattern must itself fit n:m.
      if (d.rows() % d.nm_m != 0) {
        return absl::InvalidArgumentError(
            StrCat("tensor.shape[0] = ", d.rows(), " is not a multiple of m = ", d.nm_m,
                   ", so the transpose cannot be ", d.nm_n, ":", d.nm_m));
      }
      ASSIGN_OR_RETURN(HubCsr hub, ToHub(t, ctx, ws));
      ASSIGN_OR_RETURN(HubCsr tr, TransposeHub(hub, ctx, ws));
      ConvertOptions o;
      o.index_dtype = d.index_dtype;  // as the host keeps it
      o.nm_n = d.nm_n;
      o.nm_m = d.nm_m;
      return FromHub(tr, Format::kNm, o, ctx, ws);
    }
  }
  return absl::InvalidArgumentError(
      StrCat("tensor.format = ", static_cast<int>(d.format), " cannot be transposed"));
}

}  // namespace sparsed::cuda
