#include "spmm/spmm_dispatch.h"

#include <cuda_runtime.h>
#include <cusparse.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "cuda_check.h"
#include "format/device_format_ops.h"
#include "sparsed/str_cat.h"
#include "spmm/blocked_spmm_kernels.h"
#include "spmm/csr_spmm.h"
#include "spmm/csr_spmm_kernels.h"
#include "spmm/dense_csr_gather.h"
#include "spmm/nm_repack.h"
#include "spmm/nm_repack_cache.h"
#include "util_kernels.h"

namespace sparsed::cuda {
namespace {

absl::StatusOr<ValueType> ValueTypeOf(DType t) {
  switch (t) {
    case DType::kF32:
      return ValueType::kF32;
    case DType::kF16:
      return ValueType::kF16;
    case DType::kBF16:
      return ValueType::kBF16;
    default:
      return absl::InvalidArgumentError(
          StrCat("values of dtype ", DTypeName(t), " cannot be multiplied"));
  }
}

// A CSR matrix on the device with int32 indices (views; memory owned by a
// tensor or the workspace).
struct DeviceCsr {
  int64_t rows = 0, cols = 0, nnz = 0;
  const int32_t* row_ptr = nullptr;
  const int32_t* col_idx = nullptr;
  const void* values = nullptr;
  ValueType type = ValueType::kF32;
};

// int32 view of an index component, narrowing int64 on the device.
absl::StatusOr<const int32_t*> Int32Indices(const Tensor& t, std::string_view component,
                                            const ExecContext& ctx, Workspace& ws) {
  const Buffer* b = t.component(component);
  if (t.desc().index_dtype == DType::kI32) return b->as<int32_t>();
  const int64_t count = b->size() / 8;
  ASSIGN_OR_RETURN(int32_t * out, ws.AllocArray<int32_t>(count));
  CUDA_RETURN_IF_ERROR(kernels::LaunchNarrowIndices(b->as<int64_t>(), out, count, ctx.stream),
                       "index narrowing launch");
  return out;
}

// A sparse tensor (COO or CSR) as int32 CSR.
absl::StatusOr<DeviceCsr> ToDeviceCsr(const Tensor& t, std::string_view field,
                                      const ExecContext& ctx, Workspace& ws) {
  DeviceCsr csr;
  csr.rows = t.desc().rows();
  csr.cols = t.desc().cols();
  csr.nnz = t.desc().nnz;
  constexpr int64_t kMax32 = std::numeric_limits<int32_t>::max();
  if (csr.rows > kMax32 || csr.cols > kMax32 || csr.nnz > kMax32) {
    return absl::UnimplementedError(
        StrCat(field, " has shape [", csr.rows, ", ", csr.cols, "] and nnz ", csr.nnz,
               "; the CUDA backend needs every dimension and nnz below 2^31"));
  }
  ASSIGN_OR_RETURN(csr.type, ValueTypeOf(t.desc().dtype));
  csr.values = t.component("values")->data();
  ASSIGN_OR_RETURN(csr.col_idx, Int32Indices(t, "col_idx", ctx, ws));
  if (t.format() == Format::kCsr) {
    ASSIGN_OR_RETURN(csr.row_ptr, Int32Indices(t, "row_ptr", ctx, ws));
    return csr;
  }
  // COO (canonical: sorted row-major) → CSR row pointers.
  ASSIGN_OR_RETURN(const int32_t* row_idx, Int32Indices(t, "row_idx", ctx, ws));
  ASSIGN_OR_RETURN(int32_t * row_ptr, ws.AllocArray<int32_t>(csr.rows + 1));
  if (csr.nnz == 0) {
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(row_ptr, 0, (csr.rows + 1) * 4, ctx.stream), "cudaMemset");
  } else {
    CUSPARSE_RETURN_IF_ERROR(
        cusparseXcoo2csr(ctx.cusparse, row_idx, static_cast<int>(csr.nnz),
                         static_cast<int>(csr.rows), row_ptr, CUSPARSE_INDEX_BASE_ZERO),
        "cusparseXcoo2csr");
  }
  csr.row_ptr = row_ptr;
  return csr;
}

// f32 copy of 16-bit values.
absl::StatusOr<const void*> ToF32(const void* values, ValueType type, int64_t count,
                                  const ExecContext& ctx, Workspace& ws) {
  if (type == ValueType::kF32) return values;
  ASSIGN_OR_RETURN(float* out, ws.AllocArray<float>(std::max<int64_t>(count, 1)));
  CUDA_RETURN_IF_ERROR(kernels::LaunchToF32(values, type, out, count, ctx.stream),
                       "f32 conversion launch");
  return static_cast<const void*>(out);
}

// The row-major transpose of a dense [rows, cols] matrix.
absl::StatusOr<const void*> TransposeDense(const void* in, int64_t rows, int64_t cols,
                                           ValueType type, const ExecContext& ctx, Workspace& ws) {
  ASSIGN_OR_RETURN(void* out, ws.Alloc(std::max<int64_t>(rows * cols, 1) * SizeOf(type)));
  CUDA_RETURN_IF_ERROR(kernels::LaunchTranspose(in, out, rows, cols, SizeOf(type), ctx.stream),
                       "transpose launch");
  return static_cast<const void*>(out);
}

// Keeps a tensor (a converted operand) alive as long as the workspace, which
// outlives the work queued on it.
struct KeptTensor final : Plan {
  explicit KeptTensor(Tensor t) : tensor(std::move(t)) {}
  Tensor tensor;
};

const float* F32Values(const Tensor* t) {
  return t != nullptr ? t->data<float>("values").data() : nullptr;
}

// The epilogue of args as the kernels take it.
Epilogue EpilogueOf(const SpmmArgs& args) {
  Epilogue e;
  e.alpha = args.alpha;
  e.beta = args.beta;
  if (args.beta != 0.0f) e.c_in = F32Values(args.c);
  e.bias = F32Values(args.epilogue.bias);
  e.relu = args.epilogue.relu;
  e.has_clamp = args.epilogue.clamp_max.has_value();
  e.clamp_max = args.epilogue.clamp_max.value_or(0.0f);
  return e;
}

// The transposed block index of a BSR tensor (for each block column, its
// blocks in block-row order and their block rows), built on the host from
// the index arrays, int32, in the workspace.
absl::Status TransposedBlockIndex(const Tensor& a, BsrSpmmProblem& p, const ExecContext& ctx,
                                  Workspace& ws) {
  if (p.nnzb >= std::numeric_limits<int32_t>::max() ||
      p.block_cols >= std::numeric_limits<int32_t>::max()) {
    return absl::UnimplementedError("transposed BSR index needs fewer than 2^31 blocks");
  }
  const int64_t width = p.idx64 ? 8 : 4;
  std::vector<unsigned char> brp_raw((p.block_rows + 1) * width), bci_raw(p.nnzb * width);
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(brp_raw.data(), a.component("block_row_ptr")->data(),
                                       brp_raw.size(), cudaMemcpyDeviceToHost, ctx.stream),
                       "cudaMemcpyAsync(block_row_ptr)");
  if (p.nnzb > 0) {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(bci_raw.data(), a.component("block_col_idx")->data(),
                                         bci_raw.size(), cudaMemcpyDeviceToHost, ctx.stream),
                         "cudaMemcpyAsync(block_col_idx)");
  }
  RETURN_IF_ERROR(ws.Sync());
  auto at = [&](const std::vector<unsigned char>& raw, int64_t i) -> int64_t {
    if (p.idx64) return reinterpret_cast<const int64_t*>(raw.data())[i];
    return reinterpret_cast<const int32_t*>(raw.data())[i];
  };
  std::vector<int32_t> ptr(p.block_cols + 1, 0), blk(p.nnzb), kblk(p.nnzb);
  for (int64_t e = 0; e < p.nnzb; ++e) ++ptr[at(bci_raw, e) + 1];
  for (int64_t j = 0; j < p.block_cols; ++j) ptr[j + 1] += ptr[j];
  std::vector<int32_t> fill(ptr.begin(), ptr.end() - 1);
  for (int64_t br = 0; br < p.block_rows; ++br) {
    for (int64_t e = at(brp_raw, br); e < at(brp_raw, br + 1); ++e) {
      const int32_t slot = fill[at(bci_raw, e)]++;
      blk[slot] = static_cast<int32_t>(e);
      kblk[slot] = static_cast<int32_t>(br);
    }
  }
  auto upload = [&](const std::vector<int32_t>& v) -> absl::StatusOr<const int32_t*> {
    ASSIGN_OR_RETURN(int32_t * d, ws.AllocArray<int32_t>(std::max<size_t>(v.size(), 1)));
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(d, v.data(), v.size() * 4, cudaMemcpyHostToDevice, ctx.stream),
        "cudaMemcpyAsync(transposed block index)");
    return d;
  };
  ASSIGN_OR_RETURN(p.t_ptr, upload(ptr));
  ASSIGN_OR_RETURN(p.t_blk, upload(blk));
  ASSIGN_OR_RETURN(p.t_kblk, upload(kblk));
  return ws.Sync();  // the host vectors die here
}

// The BSR list the tuner may choose from: the tensor-core variants only when
// enabled, or the one forced by name.
std::vector<const BsrSpmmVariant*> BsrSpmmVariantsFor(const SpmmTuners& tuners) {
  std::vector<const BsrSpmmVariant*> out;
  for (const BsrSpmmVariant* v : BsrSpmmVariants()) {
    if (tuners.tensor_cores || !IsBsrTensorCoreVariant(*v) || v->name() == tuners.forced) {
      out.push_back(v);
    }
  }
  return out;
}

// BSR (either side) as a BsrSpmmProblem, when some BSR variant takes it.
// Returns false (nothing queued) when none does.
absl::StatusOr<bool> BsrSpmm(const SpmmArgs& args, Tensor& out, const SpmmTuners& tuners,
                             const ExecContext& ctx, Workspace& ws) {
  const bool a_sparse = IsSparse(args.a->format());
  const Tensor& s = a_sparse ? *args.a : *args.b;
  const Tensor& d = a_sparse ? *args.b : *args.a;
  const TensorDesc& sd = s.desc();
  const int64_t m = out.desc().shape[0], n = out.desc().shape[1];
  BsrSpmmProblem p;
  p.r = sd.block_rows;
  p.c = sd.block_cols;
  p.block_rows = (sd.rows() + p.r - 1) / p.r;
  p.block_cols = (sd.cols() + p.c - 1) / p.c;
  p.nnzb = sd.nnz;
  p.idx64 = sd.index_dtype == DType::kI64;
  p.block_row_ptr = s.component("block_row_ptr")->data();
  p.block_col_idx = s.component("block_col_idx")->data();
  p.a_values = s.component("values")->data();
  p.b = d.component("values")->data();
  ASSIGN_OR_RETURN(ValueType s_type, ValueTypeOf(sd.dtype));
  ASSIGN_OR_RETURN(ValueType d_type, ValueTypeOf(d.desc().dtype));
  p.type = s_type;
  const int64_t d_rows = d.desc().shape[0], d_cols = d.desc().shape[1];
  if (a_sparse) {
    // P = op(A) · op(B) = C.
    p.m = m;
    p.n = n;
    p.k = args.transpose_a ? sd.rows() : sd.cols();
    p.a_trans = args.transpose_a;
    p.b_nmajor = args.transpose_b;  // B stored [n, k]
    p.ldb = d_cols;
    p.c_trans = false;
  } else {
    // C = op(D) · op(S) is computed as P = Cᵀ = op(S)ᵀ · op(D)ᵀ.
    p.m = n;
    p.n = m;
    p.k = args.transpose_b ? sd.cols() : sd.rows();
    p.a_trans = !args.transpose_b;
    p.b_nmajor = !args.transpose_a;  // D stored [m, k] is op(D)ᵀ stored n-major
    p.ldb = d_cols;
    p.c_trans = true;
  }
  p.ldc = n;
  if (s_type != d_type) {
    // Mixed value types compute in f32.
    ASSIGN_OR_RETURN(p.a_values, ToF32(p.a_values, s_type, sd.stored_values(), ctx, ws));
    ASSIGN_OR_RETURN(p.b, ToF32(p.b, d_type, d.desc().numel(), ctx, ws));
    p.type = ValueType::kF32;
  }
  if (p.type == ValueType::kF32 && a_sparse && !p.a_trans && p.b_nmajor) {
    // The CUDA-core and library kernels read B row-major.
    ASSIGN_OR_RETURN(p.b, TransposeDense(p.b, d_rows, d_cols, p.type, ctx, ws));
    p.b_nmajor = false;
    p.ldb = n;
  }
  p.out = out.component("values")->data();
  p.out_type = args.out_dtype == DType::kF16    ? OutType::kF16
               : args.out_dtype == DType::kBF16 ? OutType::kBF16
                                                : OutType::kF32;
  p.epilogue = EpilogueOf(args);
  const int64_t out_block_rows = p.a_trans ? p.block_cols : p.block_rows;
  p.mean_blocks_per_row =
      out_block_rows > 0 ? static_cast<double>(p.nnzb) / static_cast<double>(out_block_rows) : 0;

  // The transposed block index is built only if some variant would use it.
  const std::vector<const BsrSpmmVariant*> variants = BsrSpmmVariantsFor(tuners);
  auto any_supports = [&] {
    return std::any_of(variants.begin(), variants.end(),
                       [&](const BsrSpmmVariant* v) { return v->Supports(p); });
  };
  if (p.a_trans) {
    BsrSpmmProblem probe = p;
    static const int32_t kDummy = 0;
    probe.t_ptr = &kDummy;  // Supports only checks that the index exists
    const bool usable = std::any_of(variants.begin(), variants.end(), [&](const auto* v) {
      return v->min_arch() <= ctx.arch && v->Supports(probe);
    });
    if (!usable) return false;
    RETURN_IF_ERROR(TransposedBlockIndex(s, p, ctx, ws));
  }
  if (!any_supports()) return false;
  ASSIGN_OR_RETURN(TuneOutcome outcome,
                   tuners.bsr->Run(p, BsrSpmmTuneKey(tuners.device_desc, p), variants, ctx, ws));
  spdlog::debug("spmm bsr {}x{}x{} blocks {} ran {}", p.m, p.k, p.n, p.nnzb, outcome.variant);
  return true;
}

struct KeptRepack : Plan {
  explicit KeptRepack(NmRepackCache::Ptr p) : packed(std::move(p)) {}
  NmRepackCache::Ptr packed;
};

// The N:M weight `w` (n ≤ 2, m % 4 == 0) as packed 2:4: from `cache` when it
// holds it (the stream made to wait for its copies), else repacked now into
// new buffers and kept there (or, when the device has no room for them
// outside the request, into the workspace, not kept). The result stays
// alive with `ws`.
absl::StatusOr<NmRepackCache::Ptr> RepackedTo24(const Tensor& w, NmRepackCache* cache,
                                                const ExecContext& ctx, Workspace& ws) {
  const TensorDesc& wd = w.desc();
  const int64_t rows = wd.shape[0], k = wd.cols();
  const NmRepackCache::Key key{w.component("values")->id(), w.component("meta")->id(), rows, k,
                               static_cast<int>(wd.nm_n),   static_cast<int>(wd.nm_m)};
  NmRepackCache::Ptr packed = cache != nullptr ? cache->Find(key) : nullptr;
  if (packed != nullptr) {
    RETURN_IF_ERROR(packed->UseOn(ctx.stream));
  } else {
    auto fresh = std::make_shared<NmRepackCache::Packed>();
    const int64_t values_bytes = rows * (k / 2) * 2, meta_bytes = rows * ((k / 4 + 7) / 8) * 4;
    absl::StatusOr<Buffer> values24 = Buffer::Allocate(values_bytes, Device::Cuda(ctx.device));
    absl::StatusOr<Buffer> meta24 = Buffer::Allocate(meta_bytes, Device::Cuda(ctx.device));
    const bool keep = cache != nullptr && values24.ok() && meta24.ok();
    if (keep) {
      fresh->values24 = *std::move(values24);
      fresh->meta24 = *std::move(meta24);
    } else {  // not kept: a request temporary like any other
      ASSIGN_OR_RETURN(fresh->values24, Buffer::Allocate(values_bytes, Device::Cuda(ctx.device)));
      ASSIGN_OR_RETURN(fresh->meta24, Buffer::Allocate(meta_bytes, Device::Cuda(ctx.device)));
    }
    CUDA_RETURN_IF_ERROR(
        kernels::LaunchNmRepackTo24(static_cast<const uint16_t*>(w.component("values")->data()),
                                    w.component("meta")->as<int32_t>(), wd.nm_n, wd.nm_m, rows, k,
                                    fresh->values24.as<uint16_t>(), fresh->meta24.as<int32_t>(),
                                    ctx.stream),
        "n:m → 2:4 repack launch");
    if (keep) {
      CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&fresh->ready, cudaEventDisableTiming),
                           "cudaEventCreate(repack)");
      CUDA_RETURN_IF_ERROR(cudaEventRecord(fresh->ready, ctx.stream), "cudaEventRecord(repack)");
      cache->Put(key, fresh);
    }
    packed = std::move(fresh);
  }
  ws.Keep(std::make_unique<KeptRepack>(packed));
  return packed;
}

// 2:4 on sparse tensor cores: W = A not transposed (P = W·op(B)), or W = B
// transposed (C = op(D)·Wᵀ, computed as Cᵀ = W·op(D)ᵀ: the F.linear shape),
// 16-bit values of one type on both sides. N:M with n ≤ 2 and m a multiple
// of 4 (1:4, 2:8, 2:16, …) is repacked as 2:4 first, once per held weight
// (RepackedTo24).
// Returns false (nothing queued) for any other form, which the general paths
// take.
absl::StatusOr<bool> NmTensorCoreSpmm(const SpmmArgs& args, Tensor& out, const SpmmTuners& tuners,
                                      const ExecContext& ctx, Workspace& ws) {
  if (tuners.nm == nullptr) return false;
  const bool a_sparse = IsSparse(args.a->format());
  const Tensor& w = a_sparse ? *args.a : *args.b;
  const Tensor& d = a_sparse ? *args.b : *args.a;
  const TensorDesc& wd = w.desc();
  if (w.format() != Format::kNm || wd.nm_n > 2 || wd.nm_m % 4 != 0) return false;
  if (a_sparse ? args.transpose_a : !args.transpose_b) return false;
  const DType wt = wd.dtype;
  if ((wt != DType::kBF16 && wt != DType::kF16) || d.desc().dtype != wt) return false;
  const int64_t m = out.desc().shape[0], n = out.desc().shape[1];
  NmTcProblem p;
  p.type = wt == DType::kBF16 ? ValueType::kBF16 : ValueType::kF16;
  p.a_values = w.component("values")->data();
  p.meta = w.component("meta")->as<int32_t>();
  p.k = wd.cols();
  p.b = d.component("values")->data();
  p.ldb = d.desc().shape[1];
  if (a_sparse) {
    p.m = m;
    p.n = n;
    p.b_nmajor = args.transpose_b;  // B stored [n, k]
  } else {
    p.m = n;
    p.n = m;
    p.b_nmajor = !args.transpose_a;  // D stored [m, k] is op(D)ᵀ stored n-major
    p.c_trans = true;
  }
  p.out = out.component("values")->data();
  p.ldc = n;
  p.out_type = args.out_dtype == DType::kF16    ? OutType::kF16
               : args.out_dtype == DType::kBF16 ? OutType::kBF16
                                                : OutType::kF32;
  p.epilogue = EpilogueOf(args);
  // Experimental (unverified) tiles only when asked for, or forced by name.
  std::vector<const NmTcVariant*> variants;
  for (const NmTcVariant* v : NmTcVariants()) {
    if (tuners.nm_wgmma || !v->experimental() || v->name() == tuners.forced) {
      variants.push_back(v);
    }
  }
  const bool usable = std::any_of(variants.begin(), variants.end(), [&](const NmTcVariant* v) {
    return v->min_arch() <= ctx.arch && v->Supports(p);
  });
  if (!usable) return false;
  if (!wd.nm_packed_2_4()) {
    ASSIGN_OR_RETURN(NmRepackCache::Ptr packed, RepackedTo24(w, tuners.nm_repack, ctx, ws));
    p.a_values = packed->values24.data();
    p.meta = packed->meta24.as<int32_t>();
  }
  ASSIGN_OR_RETURN(TuneOutcome outcome,
                   tuners.nm->Run(p, NmTcTuneKey(tuners.device_desc, p), variants, ctx, ws));
  spdlog::debug("spmm nm{}:{} {}x{}x{} ran {}", wd.nm_n, wd.nm_m, p.m, p.k, p.n, outcome.variant);
  return true;
}

// C = alpha · Sᵀ·op(B) + beta · C (A = S sparse, transposed), or
// C = alpha · op(D)·S + beta · C (B = S sparse, not transposed) as
// Cᵀ = Sᵀ·op(D)ᵀ, with the epilogue; d is the dense operand's values.
absl::Status ScatterSpmm(const SpmmArgs& args, DeviceCsr s, const void* d, ValueType dense_type,
                         bool a_sparse, float* c, int64_t m, int64_t n, const ExecContext& ctx,
                         Workspace& ws) {
  const Tensor& dense = a_sparse ? *args.b : *args.a;
  const int64_t d_rows = dense.desc().shape[0], d_cols = dense.desc().shape[1];
  if (s.type != ValueType::kF32) {
    ASSIGN_OR_RETURN(s.values, ToF32(s.values, s.type, s.nnz, ctx, ws));
    s.type = ValueType::kF32;
  }
  if (dense_type != ValueType::kF32) {
    ASSIGN_OR_RETURN(d, ToF32(d, dense_type, dense.desc().numel(), ctx, ws));
  }
  // The scatter reads rows of the dense operand: op(B) [k, n] for A = S,
  // op(D)ᵀ [k, m] for B = S.
  const bool transpose_dense = a_sparse ? args.transpose_b : !args.transpose_a;
  if (transpose_dense) {
    ASSIGN_OR_RETURN(d, TransposeDense(d, d_rows, d_cols, ValueType::kF32, ctx, ws));
  }
  const float* c_in = args.beta != 0.0f ? F32Values(args.c) : nullptr;
  const float* bias = F32Values(args.epilogue.bias);
  const bool has_clamp = args.epilogue.clamp_max.has_value();
  const float clamp_max = args.epilogue.clamp_max.value_or(0.0f);
  const float* in = static_cast<const float*>(d);
  const auto* values = static_cast<const float*>(s.values);
  if (a_sparse) {
    // Accumulate into C itself, starting from beta · C_in.
    if (c_in != nullptr) {
      CUDA_RETURN_IF_ERROR(kernels::LaunchScaledCopy(c_in, args.beta, c, m * n, ctx.stream),
                           "scaled copy launch");
    } else {
      CUDA_RETURN_IF_ERROR(cudaMemsetAsync(c, 0, m * n * 4, ctx.stream), "cudaMemsetAsync");
    }
    CUDA_RETURN_IF_ERROR(kernels::LaunchCsrScatterSpmm(s.row_ptr, s.col_idx, values, s.rows, s.nnz,
                                                       in, n, args.alpha, c, ctx.stream),
                         "scatter spmm launch");
    CUDA_RETURN_IF_ERROR(kernels::LaunchBiasReluClamp(c, m, n, bias, args.epilogue.relu, has_clamp,
                                                      clamp_max, ctx.stream),
                         "epilogue launch");
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(float* t, ws.AllocArray<float>(m * n));  // Cᵀ [n, m]
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(t, 0, m * n * 4, ctx.stream), "cudaMemsetAsync");
  CUDA_RETURN_IF_ERROR(kernels::LaunchCsrScatterSpmm(s.row_ptr, s.col_idx, values, s.rows, s.nnz,
                                                     in, m, 1.0f, t, ctx.stream),
                       "scatter spmm launch");
  CUDA_RETURN_IF_ERROR(
      kernels::LaunchTransposeFinish(t, c, m, n, args.alpha, args.beta, c_in, bias,
                                     args.epilogue.relu, has_clamp, clamp_max, ctx.stream),
      "transpose epilogue launch");
  return absl::OkStatus();
}

// N:M A, not transposed, times dense B: the direct kernel.
absl::Status NmSpmm(const SpmmArgs& args, float* c, int64_t m, int64_t n, const ExecContext& ctx,
                    Workspace& ws) {
  const Tensor& a = *args.a;
  const Tensor& b = *args.b;
  const TensorDesc& ad = a.desc();
  const int64_t k = ad.cols();
  ASSIGN_OR_RETURN(ValueType type, ValueTypeOf(ad.dtype));
  ASSIGN_OR_RETURN(ValueType b_type, ValueTypeOf(b.desc().dtype));
  const void* av = a.component("values")->data();
  const void* bv = b.component("values")->data();
  if (type != b_type) {
    // Mixed value types compute in f32.
    ASSIGN_OR_RETURN(av, ToF32(av, type, ad.stored_values(), ctx, ws));
    ASSIGN_OR_RETURN(bv, ToF32(bv, b_type, b.desc().numel(), ctx, ws));
    type = ValueType::kF32;
  }
  if (args.transpose_b) {
    ASSIGN_OR_RETURN(bv, TransposeDense(bv, b.desc().shape[0], b.desc().shape[1], type, ctx, ws));
  }
  const Epilogue e = EpilogueOf(args);
  CUDA_RETURN_IF_ERROR(
      kernels::LaunchNmSpmm(type, av, a.component("meta")->as<int32_t>(), ad.nm_n, ad.nm_m,
                            ad.nm_packed_2_4(), m, k, bv, n, c, e, ctx.stream),
      "n:m spmm launch");
  return absl::OkStatus();
}

// Every form but the BSR problems, into f32 c [m, n].
absl::Status SpmmF32(const SpmmArgs& args, float* c, int64_t m, int64_t n, const SpmmTuners& tuners,
                     const ExecContext& ctx, Workspace& ws) {
  const bool a_sparse = IsSparse(args.a->format());
  const Format sparse_format = (a_sparse ? args.a : args.b)->format();
  if (sparse_format == Format::kNm && a_sparse && !args.transpose_a) {
    return NmSpmm(args, c, m, n, ctx, ws);
  }
  const Tensor* sparse_ptr = a_sparse ? args.a : args.b;
  // The row statistics of a held CSR are remembered by its row-pointer
  // buffer; a converted temporary's are not worth keeping (id 0).
  uint64_t row_ptr_id = 0;
  if (const Buffer* rp = sparse_ptr->component("row_ptr"); rp != nullptr) row_ptr_id = rp->id();
  if (sparse_format == Format::kBsr || sparse_format == Format::kNm) {
    row_ptr_id = 0;
    // Other operand forms: the CSR machinery on a device CSR copy (the
    // zero fill dropped), kept alive until the workspace is synchronised.
    ASSIGN_OR_RETURN(Tensor csr, DeviceConvert(*sparse_ptr, Format::kCsr, {}, ctx, ws));
    Plan* kept = ws.Keep(std::make_unique<KeptTensor>(std::move(csr)));
    sparse_ptr = &static_cast<KeptTensor*>(kept)->tensor;
  }
  const Tensor& sparse = *sparse_ptr;
  const Tensor& dense = a_sparse ? *args.b : *args.a;
  ASSIGN_OR_RETURN(DeviceCsr s, ToDeviceCsr(sparse, a_sparse ? "a" : "b", ctx, ws));
  ASSIGN_OR_RETURN(ValueType dense_type, ValueTypeOf(dense.desc().dtype));
  const void* d = dense.component("values")->data();
  if (s.type != dense_type) {
    // Mixed value types compute in f32.
    ASSIGN_OR_RETURN(s.values, ToF32(s.values, s.type, s.nnz, ctx, ws));
    ASSIGN_OR_RETURN(d, ToF32(d, dense_type, dense.desc().numel(), ctx, ws));
    s.type = dense_type = ValueType::kF32;
  }
  const int64_t d_rows = dense.desc().shape[0], d_cols = dense.desc().shape[1];

  // D·Sᵀ (the F.linear form) in f32, gathered row by row (dense_csr_gather.h)
  // when enabled: no transposes of D or C. DenseCsrGatherRows is the
  // launcher's own test of (k, config); other shapes take the CSR variants.
  if (tuners.dense_gather && !a_sparse && args.transpose_b && !args.transpose_a &&
      s.type == ValueType::kF32 &&
      kernels::DenseCsrGatherRows(d_cols, tuners.dense_gather_config) > 0) {
    CUDA_RETURN_IF_ERROR(kernels::LaunchDenseCsrGather(
                             tuners.dense_gather_config, static_cast<const float*>(d), d_rows,
                             d_cols, s.row_ptr, s.col_idx, static_cast<const float*>(s.values),
                             s.rows, EpilogueOf(args), c, ctx.stream),
                         "dense-csr gather launch");
    return absl::OkStatus();
  }

  // A transposed sparse operand (Sᵀ·op(B), or op(D)·S computed as
  // Sᵀ·op(D)ᵀ) is read as stored by the scatter kernel: no transpose of S.
  const bool scatter = a_sparse ? args.transpose_a : !args.transpose_b;
  if (scatter) return ScatterSpmm(args, s, d, dense_type, a_sparse, c, m, n, ctx, ws);

  CsrSpmmProblem p;
  p.type = s.type;
  float* transposed_out = nullptr;
  if (a_sparse) {
    // C = A op(B).
    if (args.transpose_b) {
      ASSIGN_OR_RETURN(d, TransposeDense(d, d_rows, d_cols, p.type, ctx, ws));
    }
    p.m = m;
    p.n = n;
    p.c = c;
    p.alpha = args.alpha;
    p.beta = args.beta;
    if (args.beta != 0.0f) p.c_in = F32Values(args.c);
    p.bias = F32Values(args.epilogue.bias);
    p.relu = args.epilogue.relu;
    p.has_clamp = args.epilogue.clamp_max.has_value();
    p.clamp_max = args.epilogue.clamp_max.value_or(0.0f);
  } else {
    // C = op(D) Sᵀ is computed as Cᵀ = S op(D)ᵀ, then transposed back with
    // the epilogue applied.
    if (!args.transpose_a) {
      ASSIGN_OR_RETURN(d, TransposeDense(d, d_rows, d_cols, p.type, ctx, ws));
    }
    p.m = n;
    p.n = m;
    ASSIGN_OR_RETURN(transposed_out, ws.AllocArray<float>(m * n));
    if (tuners.poison) {
      CUDA_RETURN_IF_ERROR(cudaMemsetAsync(transposed_out, 0xff, m * n * 4, ctx.stream),
                           "cudaMemsetAsync(poison)");
    }
    p.c = transposed_out;
  }
  p.k = s.cols;
  p.nnz = s.nnz;
  p.row_ptr = s.row_ptr;
  p.col_idx = s.col_idx;
  p.a_values = s.values;
  p.b = d;
  std::optional<RowStats> stats;
  if (tuners.row_stats != nullptr) stats = tuners.row_stats->Find(row_ptr_id, p.m, p.nnz);
  if (!stats) {
    ASSIGN_OR_RETURN(stats, RowStatsOf(p.row_ptr, p.m, p.nnz, ctx, ws));
    if (tuners.row_stats != nullptr) tuners.row_stats->Put(row_ptr_id, p.m, p.nnz, *stats);
  }
  p.stats = *stats;
  ASSIGN_OR_RETURN(TuneOutcome outcome, tuners.csr->Run(p, ctx, ws));
  spdlog::debug("spmm {}x{}x{} nnz {} ran {}", p.m, p.k, p.n, p.nnz, outcome.variant);
  if (transposed_out != nullptr) {
    CUDA_RETURN_IF_ERROR(
        kernels::LaunchTransposeFinish(transposed_out, c, m, n, args.alpha, args.beta,
                                       args.beta != 0.0f ? F32Values(args.c) : nullptr,
                                       F32Values(args.epilogue.bias), args.epilogue.relu,
                                       args.epilogue.clamp_max.has_value(),
                                       args.epilogue.clamp_max.value_or(0.0f), ctx.stream),
        "transpose epilogue launch");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SpmmOnDevice(const SpmmArgs& args, Tensor& out, const SpmmTuners& tuners,
                          const ExecContext& ctx, Workspace& ws) {
  const int64_t m = out.desc().shape[0], n = out.desc().shape[1];
  if (m == 0 || n == 0) return absl::OkStatus();
  const bool a_sparse = IsSparse(args.a->format());
  const Format sparse_format = (a_sparse ? args.a : args.b)->format();
  if (sparse_format == Format::kBsr) {
    ASSIGN_OR_RETURN(bool done, BsrSpmm(args, out, tuners, ctx, ws));
    if (done) return absl::OkStatus();
  }
  if (sparse_format == Format::kNm) {
    ASSIGN_OR_RETURN(bool done, NmTensorCoreSpmm(args, out, tuners, ctx, ws));
    if (done) return absl::OkStatus();
  }
  void* values = out.component("values")->data();
  if (args.out_dtype == DType::kF32) {
    return SpmmF32(args, static_cast<float*>(values), m, n, tuners, ctx, ws);
  }
  ASSIGN_OR_RETURN(float* c, ws.AllocArray<float>(m * n));
  RETURN_IF_ERROR(SpmmF32(args, c, m, n, tuners, ctx, ws));
  return CudaStatus(
      kernels::LaunchFromF32(c, args.out_dtype == DType::kF16 ? ValueType::kF16 : ValueType::kBF16,
                             values, m * n, ctx.stream),
      "cast launch");
}

}  // namespace sparsed::cuda
