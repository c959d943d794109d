// The CUDA backend: SpMM on one device. Operands are reduced to the canonical
// problem of csr_spmm_problem.h (int32 CSR times row-major dense, one value
// type), then the autotuner picks and runs a variant.
#include <cuda_runtime.h>
#include <cusparse.h>
#include <spdlog/spdlog.h>

#include <initializer_list>
#include <limits>
#include <utility>

#include "cuda_check.h"
#include "exec_context.h"
#include "format/device_format_ops.h"
#include "format/hub.h"
#include "sparsed/backend.h"
#include "sparsed/str_cat.h"
#include "spmm/blocked_spmm_kernels.h"
#include "spmm/csr_spmm.h"
#include "spmm/csr_spmm_kernels.h"
#include "spmm/csr_spmm_tuner.h"
#include "stream_pool.h"
#include "train/device_train_ops.h"
#include "util_kernels.h"

namespace sparsed {
namespace cuda {
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

std::string DeviceDescription(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) return StrCat("cuda:", device);
  return StrCat(prop.name, " sm_", prop.major, prop.minor);
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaBackendOptions& o, std::unique_ptr<StreamPool> pool,
              std::unique_ptr<TuneDb> own_db)
      : device_(o.device),
        poison_(o.poison_outputs),
        pool_(std::move(pool)),
        own_db_(std::move(own_db)),
        tuner_(o.tune_db != nullptr ? o.tune_db : own_db_.get(), DeviceDescription(o.device),
               o.force_variant) {}

  std::string_view name() const override { return "cuda"; }
  Device device() const override { return Device::Cuda(device_); }

  absl::StatusOr<Tensor> Spmm(const SpmmArgs& args) override {
    ASSIGN_OR_RETURN(std::vector<int64_t> shape, CheckSpmm(args));
    const std::pair<const Tensor*, const char*> operands[] = {
        {args.a, "a"},
        {args.b, "b"},
        {args.beta != 0.0f ? args.c : nullptr, "c"},
        {args.epilogue.bias, "epilogue.bias"}};
    for (const auto& [t, field] : operands) {
      if (t != nullptr && !(t->device() == device())) {
        return absl::InvalidArgumentError(StrCat(field, " is on ", t->device().ToString(),
                                                 " but the backend computes on ",
                                                 device().ToString()));
      }
    }
    // CSC A [m, k] holds the CSR arrays of Aᵀ: op(A) is the opposite op of
    // that zero-copy CSR view (likewise for B).
    SpmmArgs csr_args = args;
    Tensor view;
    for (auto [operand, transpose] : {std::pair{&csr_args.a, &csr_args.transpose_a},
                                      std::pair{&csr_args.b, &csr_args.transpose_b}}) {
      if ((*operand)->format() != Format::kCsc) continue;
      ASSIGN_OR_RETURN(view, TransposeView(**operand));
      *operand = &view;
      *transpose = !*transpose;
    }
    CUDA_RETURN_IF_ERROR(cudaSetDevice(device_), "cudaSetDevice");
    ASSIGN_OR_RETURN(
        Tensor out,
        Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, shape, 0}, device()));
    ASSIGN_OR_RETURN(StreamPool::Lease lease, pool_->Acquire());
    const ExecContext& ctx = lease.context();
    absl::Status status;
    {
      Workspace ws(ctx);
      if (poison_ && out.bytes() > 0) {
        CUDA_RETURN_IF_ERROR(
            cudaMemsetAsync(out.component("values")->data(), 0xff, out.bytes(), ctx.stream),
            "cudaMemsetAsync(poison)");
      }
      status = SpmmOnDevice(csr_args, out, ctx, ws);
      // Temporaries die with ws: the stream must be idle first, whatever happened.
      const absl::Status synced = ws.Sync();
      if (status.ok()) status = synced;
    }
    RETURN_IF_ERROR(status);
    return out;
  }

  absl::StatusOr<Tensor> Convert(const Tensor& t, Format to,
                                 const ConvertOptions& options) override {
    return OnStream(t, [&](const Tensor& src, const ExecContext& ctx, Workspace& ws) {
      return DeviceConvert(src, to, options, ctx, ws);
    });
  }
  absl::StatusOr<Tensor> Transpose(const Tensor& t) override {
    return OnStream(t, [&](const Tensor& src, const ExecContext& ctx, Workspace& ws) {
      return DeviceTranspose(src, ctx, ws);
    });
  }
  absl::StatusOr<Tensor> Prune(const Tensor& t, const PruneOptions& options) override {
    return OnStream(t, [&](const Tensor& src, const ExecContext& ctx, Workspace& ws) {
      return DevicePrune(src, options, ctx, ws);
    });
  }

  // Training primitives (train_ops.h): checked, every operand required on
  // this device (no implicit host copies: they are weights and gradients that
  // live here), then run on a leased stream (train/device_train_ops.h).
  absl::StatusOr<Tensor> Sddmm(const SddmmArgs& args) override {
    RETURN_IF_ERROR(CheckSddmm(args).status());
    RETURN_IF_ERROR(Here({{args.a, "a"},
                          {args.b, "b"},
                          {args.pattern, "pattern"},
                          {args.beta != 0.0f ? args.c : nullptr, "c"}}));
    return OnDevice(
        [&](const ExecContext& ctx, Workspace& ws) { return DeviceSddmm(args, poison_, ctx, ws); });
  }
  absl::StatusOr<Tensor> DenseMatmul(const DenseMatmulArgs& args) override {
    RETURN_IF_ERROR(CheckDenseMatmul(args).status());
    RETURN_IF_ERROR(Here({{args.a, "a"}, {args.b, "b"}}));
    return OnDevice(
        [&](const ExecContext& ctx, Workspace&) { return DeviceDenseMatmul(args, poison_, ctx); });
  }
  absl::Status OptimizerUpdate(const OptimizerUpdateArgs& args) override {
    RETURN_IF_ERROR(CheckOptimizerUpdate(args));
    const bool adam = args.hyper.kind != OptimizerKind::kSgd;
    RETURN_IF_ERROR(Here({{args.param, "param"},
                          {args.grad, "grad"},
                          {adam || args.hyper.momentum > 0.0f ? args.state1 : nullptr, "state1"},
                          {adam ? args.state2 : nullptr, "state2"}}));
    return OnDevice(
        [&](const ExecContext& ctx, Workspace&) { return DeviceOptimizerUpdate(args, ctx); });
  }
  absl::StatusOr<TopKResult> TopK(const Tensor& scores, int64_t k, TopKOrder order) override {
    RETURN_IF_ERROR(CheckTopK(scores, k));
    if (order != TopKOrder::kLargest && order != TopKOrder::kLargestMagnitude &&
        order != TopKOrder::kSmallestMagnitude) {
      return absl::InvalidArgumentError(
          StrCat("order = ", static_cast<int>(order), " is not a TopKOrder"));
    }
    RETURN_IF_ERROR(Here({{&scores, "scores"}}));
    return OnDevice([&](const ExecContext& ctx, Workspace& ws) {
      return DeviceTopK(scores, k, order, ctx, ws);
    });
  }
  absl::Status Axpby(float a, const Tensor& x, float b, Tensor& y) override {
    RETURN_IF_ERROR(CheckAxpby(x, y));
    RETURN_IF_ERROR(Here({{&x, "x"}, {&y, "y"}}));
    return OnDevice(
        [&](const ExecContext& ctx, Workspace&) { return DeviceAxpby(a, x, b, y, ctx); });
  }
  absl::StatusOr<Tensor> ReluBackward(const Tensor& dy, const Tensor& y) override {
    RETURN_IF_ERROR(CheckReluBackward(dy, y));
    RETURN_IF_ERROR(Here({{&dy, "dy"}, {&y, "y"}}));
    return OnDevice([&](const ExecContext& ctx, Workspace&) {
      return DeviceReluBackward(dy, y, poison_, ctx);
    });
  }
  absl::StatusOr<Tensor> ColumnSums(const Tensor& x) override {
    RETURN_IF_ERROR(CheckColumnSums(x));
    RETURN_IF_ERROR(Here({{&x, "x"}}));
    return OnDevice([&](const ExecContext& ctx, Workspace& ws) {
      return DeviceColumnSums(x, poison_, ctx, ws);
    });
  }
  absl::Status GrowthScores(Tensor& tile, const Tensor& pattern, int64_t row_begin) override {
    RETURN_IF_ERROR(CheckGrowthScores(tile, pattern, row_begin));
    RETURN_IF_ERROR(Here({{&tile, "tile"}, {&pattern, "pattern"}}));
    return OnDevice([&](const ExecContext& ctx, Workspace& ws) {
      return DeviceGrowthScores(tile, pattern, row_begin, ctx, ws);
    });
  }
  absl::StatusOr<Tensor> GatherOrZero(const Tensor& src,
                                      const std::vector<int64_t>& index) override {
    RETURN_IF_ERROR(CheckGatherOrZero(src, index));
    RETURN_IF_ERROR(Here({{&src, "src"}}));
    return OnDevice([&](const ExecContext& ctx, Workspace& ws) {
      return DeviceGatherOrZero(src, index, poison_, ctx, ws);
    });
  }

 private:
  // INVALID_ARGUMENT naming the first operand (null ones skipped) that is not
  // on this backend's device.
  absl::Status Here(std::initializer_list<std::pair<const Tensor*, const char*>> operands) const {
    for (const auto& [t, field] : operands) {
      if (t != nullptr && !(t->device() == device())) {
        return absl::InvalidArgumentError(StrCat(field, " is on ", t->device().ToString(),
                                                 " but the backend computes on ",
                                                 device().ToString()));
      }
    }
    return absl::OkStatus();
  }

  // Runs f(ctx, ws) on a leased stream of this device and synchronises; f
  // returns absl::Status or absl::StatusOr<T>.
  template <class F>
  auto OnDevice(F&& f)
      -> decltype(f(std::declval<const ExecContext&>(), std::declval<Workspace&>())) {
    CUDA_RETURN_IF_ERROR(cudaSetDevice(device_), "cudaSetDevice");
    ASSIGN_OR_RETURN(StreamPool::Lease lease, pool_->Acquire());
    const ExecContext& ctx = lease.context();
    Workspace ws(ctx);
    auto result = f(ctx, ws);
    // Temporaries die with ws: the stream must be idle first, whatever happened.
    const absl::Status synced = ws.Sync();
    if (StatusOf(result).ok() && !synced.ok()) return synced;
    return result;
  }
  static const absl::Status& StatusOf(const absl::Status& s) { return s; }
  template <class T>
  static const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
    return s.status();
  }

  // Runs f(t on this device, ctx, ws) on a leased stream and synchronises; a
  // host tensor is copied to the device first.
  template <class F>
  absl::StatusOr<Tensor> OnStream(const Tensor& t, F&& f) {
    if (!t.device().is_cpu() && !(t.device() == device())) {
      return absl::InvalidArgumentError(StrCat("tensor is on ", t.device().ToString(),
                                               " but the backend computes on ",
                                               device().ToString()));
    }
    CUDA_RETURN_IF_ERROR(cudaSetDevice(device_), "cudaSetDevice");
    Tensor copy;
    if (t.device().is_cpu()) {
      ASSIGN_OR_RETURN(copy, t.CopyTo(device()));
    }
    const Tensor& src = t.device().is_cpu() ? copy : t;
    ASSIGN_OR_RETURN(StreamPool::Lease lease, pool_->Acquire());
    const ExecContext& ctx = lease.context();
    absl::StatusOr<Tensor> result;
    {
      Workspace ws(ctx);
      result = f(src, ctx, ws);
      // Temporaries die with ws: the stream must be idle first, whatever happened.
      const absl::Status synced = ws.Sync();
      if (result.ok() && !synced.ok()) result = synced;
    }
    return result;
  }

  // BSR or N:M A, not transposed, times dense B: the direct kernels.
  absl::Status DirectSpmm(const SpmmArgs& args, Tensor& out, const ExecContext& ctx,
                          Workspace& ws) {
    const Tensor& a = *args.a;
    const Tensor& b = *args.b;
    const TensorDesc& ad = a.desc();
    const int64_t m = out.desc().shape[0], n = out.desc().shape[1], k = ad.cols();
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
    kernels::DirectEpilogue e;
    e.alpha = args.alpha;
    e.beta = args.beta;
    if (args.beta != 0.0f) e.c_in = args.c->data<float>("values").data();
    if (args.epilogue.bias != nullptr) e.bias = args.epilogue.bias->data<float>("values").data();
    e.relu = args.epilogue.relu;
    e.has_clamp = args.epilogue.clamp_max.has_value();
    e.clamp_max = args.epilogue.clamp_max.value_or(0.0f);
    float* c = out.data<float>("values").data();
    if (ad.format == Format::kBsr) {
      ASSIGN_OR_RETURN(const int64_t* brp, WideIndices(a, "block_row_ptr", ctx, ws));
      ASSIGN_OR_RETURN(const int64_t* bci, WideIndices(a, "block_col_idx", ctx, ws));
      CUDA_RETURN_IF_ERROR(kernels::LaunchBsrSpmm(type, brp, bci, av, ad.block_rows, ad.block_cols,
                                                  m, k, bv, n, c, e, ctx.stream),
                           "bsr spmm launch");
    } else {
      CUDA_RETURN_IF_ERROR(
          kernels::LaunchNmSpmm(type, av, a.component("meta")->as<int32_t>(), ad.nm_n, ad.nm_m,
                                ad.nm_packed_2_4(), m, k, bv, n, c, e, ctx.stream),
          "n:m spmm launch");
    }
    return absl::OkStatus();
  }

  // C = alpha · Sᵀ·op(B) + beta · C (A = S sparse, transposed), or
  // C = alpha · op(D)·S + beta · C (B = S sparse, not transposed) as
  // Cᵀ = Sᵀ·op(D)ᵀ, with the epilogue; d is the dense operand's values.
  absl::Status ScatterSpmm(const SpmmArgs& args, DeviceCsr s, const void* d, ValueType dense_type,
                           bool a_sparse, Tensor& out, const ExecContext& ctx, Workspace& ws) {
    const int64_t m = out.desc().shape[0], n = out.desc().shape[1];
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
    float* c = out.data<float>("values").data();
    const float* c_in = args.beta != 0.0f ? args.c->data<float>("values").data() : nullptr;
    const float* bias =
        args.epilogue.bias != nullptr ? args.epilogue.bias->data<float>("values").data() : nullptr;
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
      CUDA_RETURN_IF_ERROR(kernels::LaunchCsrScatterSpmm(s.row_ptr, s.col_idx, values, s.rows,
                                                         s.nnz, in, n, args.alpha, c, ctx.stream),
                           "scatter spmm launch");
      CUDA_RETURN_IF_ERROR(kernels::LaunchBiasReluClamp(c, m, n, bias, args.epilogue.relu,
                                                        has_clamp, clamp_max, ctx.stream),
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

  absl::Status SpmmOnDevice(const SpmmArgs& args, Tensor& out, const ExecContext& ctx,
                            Workspace& ws) {
    const int64_t m = out.desc().shape[0], n = out.desc().shape[1];
    if (m == 0 || n == 0) return absl::OkStatus();
    const bool a_sparse = IsSparse(args.a->format());
    const Format sparse_format = (a_sparse ? args.a : args.b)->format();
    const bool blocked = sparse_format == Format::kBsr || sparse_format == Format::kNm;
    if (blocked && a_sparse && !args.transpose_a) return DirectSpmm(args, out, ctx, ws);
    const Tensor* sparse_ptr = a_sparse ? args.a : args.b;
    if (blocked) {
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

    // A transposed sparse operand (Sᵀ·op(B), or op(D)·S computed as
    // Sᵀ·op(D)ᵀ) is read as stored by the scatter kernel: no transpose of S.
    const bool scatter = a_sparse ? args.transpose_a : !args.transpose_b;
    if (scatter) return ScatterSpmm(args, s, d, dense_type, a_sparse, out, ctx, ws);

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
      p.c = out.data<float>("values").data();
      p.alpha = args.alpha;
      p.beta = args.beta;
      if (args.beta != 0.0f) p.c_in = args.c->data<float>("values").data();
      if (args.epilogue.bias != nullptr) p.bias = args.epilogue.bias->data<float>("values").data();
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
      if (poison_) {
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
    ASSIGN_OR_RETURN(p.stats, RowStatsOf(p.row_ptr, p.m, p.nnz, ctx, ws));
    ASSIGN_OR_RETURN(TuneOutcome outcome, tuner_.Run(p, ctx, ws));
    spdlog::debug("spmm {}x{}x{} nnz {} ran {}", p.m, p.k, p.n, p.nnz, outcome.variant);
    if (transposed_out != nullptr) {
      CUDA_RETURN_IF_ERROR(
          kernels::LaunchTransposeFinish(
              transposed_out, out.data<float>("values").data(), m, n, args.alpha, args.beta,
              args.beta != 0.0f ? args.c->data<float>("values").data() : nullptr,
              args.epilogue.bias != nullptr ? args.epilogue.bias->data<float>("values").data()
                                            : nullptr,
              args.epilogue.relu, args.epilogue.clamp_max.has_value(),
              args.epilogue.clamp_max.value_or(0.0f), ctx.stream),
          "transpose epilogue launch");
    }
    return absl::OkStatus();
  }

  int device_;
  bool poison_;
  std::unique_ptr<StreamPool> pool_;
  std::unique_ptr<TuneDb> own_db_;
  CsrSpmmTuner tuner_;
};

}  // namespace
}  // namespace cuda

std::vector<std::string> CudaSpmmVariantNames() {
  std::vector<std::string> names;
  for (const cuda::CsrSpmmVariant* v : cuda::CsrSpmmVariants()) names.emplace_back(v->name());
  return names;
}

absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(const CudaBackendOptions& options) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    count = 0;
  }
  if (options.device < 0 || options.device >= count) {
    return absl::FailedPreconditionError(
        StrCat("cuda:", options.device, " does not exist (", count, " CUDA device(s) visible)"));
  }
  if (!options.force_variant.empty() &&
      cuda::FindCsrSpmmVariant(options.force_variant) == nullptr) {
    return absl::InvalidArgumentError(
        StrCat("spmm variant '", options.force_variant, "' does not exist"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<cuda::StreamPool> pool,
                   cuda::StreamPool::Create(options.device, options.streams, options.max_queued));
  std::unique_ptr<TuneDb> own_db;
  if (options.tune_db == nullptr) {
    ASSIGN_OR_RETURN(own_db, TuneDb::Open(""));
  }
  return std::make_unique<cuda::CudaBackend>(options, std::move(pool), std::move(own_db));
}

}  // namespace sparsed
