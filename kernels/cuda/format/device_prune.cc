// Device pruning: magnitude (global or per row) by a stable radix sort of
// |w| keys, N:M by one thread per group, blocks by float64 norms and a sort.
// Ties keep the smaller row-major position (stable sorts over entries or
// blocks in row-major order).
#include <cmath>
#include <limits>

#include "cuda_check.h"
#include "format/device_format_ops.h"
#include "format/format_kernels.h"
#include "format/hub.h"
#include "sparsed/str_cat.h"
#include "src/prune/prune_internal.h"

namespace sparsed::cuda {
namespace {

ValueType ValueTypeOf(DType t) {
  return t == DType::kF16    ? ValueType::kF16
         : t == DType::kBF16 ? ValueType::kBF16
                             : ValueType::kF32;
}

// total - round(sparsity * total), as prune.h defines the kept count.
int64_t KeptOf(double sparsity, int64_t total) {
  return total - static_cast<int64_t>(std::llround(sparsity * static_cast<double>(total)));
}

// Dense row-major values of t on the device (t's own memory when dense).
absl::StatusOr<const void*> DenseValues(const Tensor& t, const ExecContext& ctx, Workspace& ws) {
  if (!IsSparse(t.format())) return t.component("values")->data();
  ASSIGN_OR_RETURN(HubCsr hub, ToHub(t, ctx, ws));
  return HubToDense(hub, ctx, ws);
}

absl::StatusOr<Tensor> PruneMagnitude(const Tensor& t, const PruneOptions& o,
                                      const ExecContext& ctx, Workspace& ws) {
  ASSIGN_OR_RETURN(HubCsr hub, ToHub(t, ctx, ws));
  // Zeros rank last and are never stored: drop them first (dense already did).
  if (IsSparse(t.format())) {
    ASSIGN_OR_RETURN(hub, CompactHub(hub, nullptr, ctx, ws));
  }
  const int64_t keep = KeptOf(o.sparsity, o.per_row ? hub.cols : hub.rows * hub.cols);
  HubCsr kept = hub;
  if (hub.nnz > 0 && (o.per_row || keep < hub.nnz)) {
    const int64_t nnz = hub.nnz;
    ASSIGN_OR_RETURN(uint64_t * keys, ws.AllocArray<uint64_t>(nnz));
    ASSIGN_OR_RETURN(uint64_t * sorted, ws.AllocArray<uint64_t>(nnz));
    ASSIGN_OR_RETURN(int64_t * order, ws.AllocArray<int64_t>(nnz));
    ASSIGN_OR_RETURN(int64_t * perm, ws.AllocArray<int64_t>(nnz));
    ASSIGN_OR_RETURN(uint8_t * flags, ws.AllocArray<uint8_t>(nnz));
    CUDA_RETURN_IF_ERROR(fmt::MagnitudeKeys(hub.row_ptr, hub.values, ValueTypeOf(hub.dtype),
                                            hub.rows, nnz, o.per_row, keys, ctx.stream),
                         "key launch");
    CUDA_RETURN_IF_ERROR(fmt::Iota(order, nnz, ctx.stream), "iota launch");
    const int end_bit =
        o.per_row ? 32 + BitsFor(static_cast<uint64_t>(std::max<int64_t>(hub.rows - 1, 0))) : 32;
    RETURN_IF_ERROR(SortPairs(keys, sorted, order, perm, nnz, end_bit, ctx, ws));
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(flags, 0, nnz, ctx.stream), "cudaMemsetAsync(flags)");
    CUDA_RETURN_IF_ERROR(
        fmt::MarkKept(perm, hub.row_ptr, hub.rows, nnz, o.per_row, keep, flags, ctx.stream),
        "mark launch");
    ASSIGN_OR_RETURN(kept, CompactHub(hub, flags, ctx, ws));
  } else if (keep <= 0) {
    ASSIGN_OR_RETURN(uint8_t * none, ws.AllocArray<uint8_t>(std::max<int64_t>(hub.nnz, 1)));
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(none, 0, std::max<int64_t>(hub.nnz, 1), ctx.stream),
                         "cudaMemsetAsync(flags)");
    ASSIGN_OR_RETURN(kept, CompactHub(hub, none, ctx, ws));
  }
  // Index dtype as on the host: a sparse input's (the result is no larger),
  // else the narrowest.
  ConvertOptions result_options;
  if (IsSparse(t.format())) result_options.index_dtype = t.desc().index_dtype;
  return FromHub(kept, Format::kCsr, result_options, ctx, ws);
}

absl::StatusOr<Tensor> PruneNm(const Tensor& t, const PruneOptions& o, const ExecContext& ctx,
                               Workspace& ws) {
  const TensorDesc& in = t.desc();
  ASSIGN_OR_RETURN(const void* dense, DenseValues(t, ctx, ws));
  TensorDesc d{Format::kNm, in.dtype, DType::kI32, {in.rows(), in.cols()}, 0};
  d.nm_n = o.nm_n;
  d.nm_m = o.nm_m;
  d.nnz = d.rows() * d.nm_groups() * d.nm_n;
  d.index_dtype = prune_internal::ResultIndexType(in, d);
  RETURN_IF_ERROR(ValidateDesc(d, "result"));
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(d, Device::Cuda(ctx.device)));
  Buffer* meta = out.component("meta");
  if (d.nm_packed_2_4() && meta->size() > 0) {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(meta->data(), 0, meta->size(), ctx.stream),
                         "cudaMemsetAsync(meta)");
  }
  CUDA_RETURN_IF_ERROR(fmt::NmPruneDense(dense, ValueTypeOf(d.dtype), d.rows(), d.cols(), d.nm_n,
                                         d.nm_m, d.nm_packed_2_4(), out.component("values")->data(),
                                         meta->as<int32_t>(), ctx.stream),
                       "n:m prune launch");
  return out;
}

absl::StatusOr<Tensor> PruneBlocks(const Tensor& t, const PruneOptions& o, const ExecContext& ctx,
                                   Workspace& ws) {
  const TensorDesc& in = t.desc();
  ASSIGN_OR_RETURN(const void* dense, DenseValues(t, ctx, ws));
  TensorDesc d{Format::kBsr, in.dtype, DType::kI32, {in.rows(), in.cols()}, 0};
  d.block_rows = o.block_rows;
  d.block_cols = o.block_cols;
  const int64_t nbr = d.block_row_count(), nbc = d.block_col_count(), total = nbr * nbc;
  const int64_t keep = KeptOf(o.sparsity, total);
  ASSIGN_OR_RETURN(uint8_t * flags, ws.AllocArray<uint8_t>(std::max<int64_t>(total, 1)));
  if (total > 0) {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(flags, 0, total, ctx.stream), "cudaMemsetAsync(flags)");
  }
  if (total > 0 && keep > 0) {
    ASSIGN_OR_RETURN(double* norms, ws.AllocArray<double>(total));
    ASSIGN_OR_RETURN(uint64_t * keys, ws.AllocArray<uint64_t>(total));
    ASSIGN_OR_RETURN(uint64_t * sorted, ws.AllocArray<uint64_t>(total));
    ASSIGN_OR_RETURN(int64_t * order, ws.AllocArray<int64_t>(total));
    ASSIGN_OR_RETURN(int64_t * perm, ws.AllocArray<int64_t>(total));
    CUDA_RETURN_IF_ERROR(
        fmt::BlockNorms(dense, ValueTypeOf(d.dtype), d.rows(), d.cols(), d.block_rows, d.block_cols,
                        nbr, nbc, norms, keys, ctx.stream),
        "block norm launch");
    CUDA_RETURN_IF_ERROR(fmt::Iota(order, total, ctx.stream), "iota launch");
    RETURN_IF_ERROR(SortPairs(keys, sorted, order, perm, total, 64, ctx, ws));
    CUDA_RETURN_IF_ERROR(fmt::MarkKeptBlocks(perm, norms, std::min(keep, total), flags, ctx.stream),
                         "mark launch");
  }
  ASSIGN_OR_RETURN(int64_t * counts, ws.AllocArray<int64_t>(total + 1));
  CUDA_RETURN_IF_ERROR(fmt::FlagsToCounts(flags, total, counts, ctx.stream), "count launch");
  ASSIGN_OR_RETURN(int64_t * scan, ExclusiveScan(counts, total + 1, ctx, ws));
  ASSIGN_OR_RETURN(d.nnz, ReadBack(scan + total, ctx));
  d.index_dtype = prune_internal::ResultIndexType(in, d);
  RETURN_IF_ERROR(ValidateDesc(d, "result"));
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(d, Device::Cuda(ctx.device)));
  ASSIGN_OR_RETURN(int64_t * brp, ws.AllocArray<int64_t>(nbr + 1));
  ASSIGN_OR_RETURN(int64_t * bci, ws.AllocArray<int64_t>(std::max<int64_t>(d.nnz, 1)));
  ASSIGN_OR_RETURN(int64_t * pos, ws.AllocArray<int64_t>(std::max<int64_t>(d.nnz, 1)));
  CUDA_RETURN_IF_ERROR(fmt::KeptBlockStructure(flags, scan, nbr, nbc, brp, bci, pos, ctx.stream),
                       "block structure launch");
  const bool i64 = d.index_dtype == DType::kI64;
  CUDA_RETURN_IF_ERROR(
      fmt::CopyIndices(brp, true, out.component("block_row_ptr")->data(), i64, nbr + 1, ctx.stream),
      "index copy");
  CUDA_RETURN_IF_ERROR(
      fmt::CopyIndices(bci, true, out.component("block_col_idx")->data(), i64, d.nnz, ctx.stream),
      "index copy");
  CUDA_RETURN_IF_ERROR(
      fmt::GatherBlocks(dense, static_cast<int>(SizeOf(d.dtype)), d.rows(), d.cols(), d.block_rows,
                        d.block_cols, nbc, pos, d.nnz, out.component("values")->data(), ctx.stream),
      "block gather launch");
  return out;
}

}  // namespace

// NaN has no magnitude to rank by: refused, as the host does (the message
// names the stored value's index rather than its row and column).
absl::Status RejectNan(const Tensor& t, const ExecContext& ctx, Workspace& ws) {
  const Buffer* values = t.component("values");
  const int64_t count = t.desc().stored_values();
  if (count == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(int64_t * first, ws.AllocArray<int64_t>(1));
  const int64_t none = std::numeric_limits<int64_t>::max();
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(first, &none, sizeof(none), cudaMemcpyHostToDevice, ctx.stream),
      "cudaMemcpyAsync(nan flag)");
  CUDA_RETURN_IF_ERROR(
      fmt::FirstNan(values->data(), ValueTypeOf(t.desc().dtype), count, first, ctx.stream),
      "nan scan launch");
  ASSIGN_OR_RETURN(const int64_t at, ReadBack(first, ctx));
  if (at == none) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat("tensor holds NaN at values[", at, "]; NaN cannot be ranked"));
}

absl::StatusOr<Tensor> DevicePrune(const Tensor& t, const PruneOptions& options,
                                   const ExecContext& ctx, Workspace& ws) {
  RETURN_IF_ERROR(CheckPrune(t.desc(), options));
  RETURN_IF_ERROR(RejectNan(t, ctx, ws));
  switch (options.mode) {
    case PruneMode::kMagnitude:
      return PruneMagnitude(t, options, ctx, ws);
    case PruneMode::kNm:
      return PruneNm(t, options, ctx, ws);
    case PruneMode::kBlock:
      return PruneBlocks(t, options, ctx, ws);
  }
  return absl::InvalidArgumentError("unknown prune mode");
}

}  // namespace sparsed::cuda
