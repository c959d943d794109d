// The CUDA backend: every op on one device, each on a leased stream. SpMM is
// dispatched by spmm/spmm_dispatch.h; JIT kernels come from the device's
// kernel cache (jit/jit_cache.h).
#include <cuda_runtime.h>
#include <cusparse.h>
#include <spdlog/spdlog.h>

#include <initializer_list>
#include <limits>
#include <utility>

#include "cuda_check.h"
#include "cuda_op_batch.h"
#include "device_fault_latch.h"
#include "exec_context.h"
#include "format/device_format_ops.h"
#include "format/hub.h"
#include "jit/jit_cache.h"
#include "sparsed/backend.h"
#include "sparsed/str_cat.h"
#include "spmm/bsr_spmm.h"
#include "spmm/bsr_tc_generator.h"
#include "spmm/csr_spmm.h"
#include "spmm/csr_spmm_tuner.h"
#include "spmm/dense_csr_gather.h"
#include "spmm/nm_tc_spmm.h"
#include "spmm/spmm_dispatch.h"
#include "stream_pool.h"
#include "train/device_train_ops.h"
#include "util_kernels.h"

namespace sparsed {
namespace cuda {
namespace {

std::string DeviceDescription(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) return StrCat("cuda:", device);
  return StrCat(prop.name, " sm_", prop.major, prop.minor);
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaBackendOptions& o, std::unique_ptr<StreamPool> pool,
              std::unique_ptr<TuneDb> own_db, std::unique_ptr<JitCache> jit, int arch)
      : device_(o.device),
        fault_(StrCat("cuda:", o.device)),
        poison_(o.poison_outputs),
        stream_batches_(o.stream_batches),
        pool_(std::move(pool)),
        own_db_(std::move(own_db)),
        jit_(std::move(jit)),
        csr_tuner_(o.tune_db != nullptr ? o.tune_db : own_db_.get(), DeviceDescription(o.device),
                   o.force_variant, arch),
        bsr_tuner_(o.tune_db != nullptr ? o.tune_db : own_db_.get(), o.force_variant, arch),
        nm_tuner_(o.tune_db != nullptr ? o.tune_db : own_db_.get(), o.force_variant, arch) {
    tuners_.csr = &csr_tuner_;
    tuners_.bsr = &bsr_tuner_;
    tuners_.nm = &nm_tuner_;
    tuners_.device_desc = DeviceDescription(o.device);
    tuners_.poison = poison_;
    tuners_.tensor_cores = o.bsr_tensor_cores;
    tuners_.forced = o.force_variant;
    tuners_.nm_wgmma = o.nm_wgmma;
    tuners_.row_stats = &row_stats_;
    tuners_.nm_repack = &nm_repack_;
    tuners_.dense_gather = o.csr_dense_gather;
    tuners_.dense_gather_config = kernels::ResolveDenseGatherConfig(o.csr_dense_gather_config);
  }

  std::string_view name() const override { return "cuda"; }
  absl::Status Health() const override { return fault_.Check(); }
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
        Tensor::Allocate({Format::kDense, args.out_dtype, DType::kI32, shape, 0}, device()));
    RETURN_IF_ERROR(OnDevice([&](const ExecContext& ctx, Workspace& ws) -> absl::Status {
      if (poison_ && out.bytes() > 0) {
        CUDA_RETURN_IF_ERROR(
            cudaMemsetAsync(out.component("values")->data(), 0xff, out.bytes(), ctx.stream),
            "cudaMemsetAsync(poison)");
      }
      return SpmmOnDevice(csr_args, out, tuners_, ctx, ws);
    }));
    return out;
  }

  absl::StatusOr<std::unique_ptr<OpBatch>> BeginBatch() override {
    // The outer batch governs a nested one; without stream batches every op
    // waits for itself.
    if (!stream_batches_ || CudaOpBatch::Active(this) != nullptr) return MakeHostOpBatch();
    RETURN_IF_ERROR(fault_.Check());
    CUDA_RETURN_IF_ERROR(cudaSetDevice(device_), "cudaSetDevice");
    ASSIGN_OR_RETURN(StreamPool::Lease lease, pool_->Acquire());
    return std::make_unique<CudaOpBatch>(this, std::move(lease), jit_.get());
  }

  std::vector<KernelCacheEntry> ListKernels() override { return jit_->List(); }
  absl::StatusOr<int> ClearKernels() override { return jit_->Clear(); }
  absl::StatusOr<int> WarmKernels(const std::vector<KernelSpec>& specs) override {
    int compiled = 0;
    for (const KernelSpec& spec : specs) {
      ASSIGN_OR_RETURN(bool now, jit_->Compile(spec));
      compiled += now ? 1 : 0;
    }
    return compiled;
  }
  KernelCacheStats KernelCacheStatistics() override { return jit_->Stats(); }

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
    // Answers on the host: waits for its result even inside a batch.
    return OnDevice([&](const ExecContext& ctx,
                        Workspace& ws) { return DeviceTopK(scores, k, order, ctx, ws); },
                    /*host_result=*/true);
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
  ExecContext WithJit(ExecContext ctx) const {
    ctx.jit = jit_.get();
    return ctx;
  }

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

  // Runs f(ctx, ws) on this device and returns what f returns (absl::Status
  // or absl::StatusOr<T>). Inside this thread's batch on this backend
  // (BeginBatch) it is queued on the batch's stream without waiting, unless
  // `host_result` (f leaves its answer in host memory); otherwise on a leased
  // stream, synchronised.
  template <class F>
  auto OnDevice(F&& f, bool host_result = false)
      -> decltype(f(std::declval<const ExecContext&>(), std::declval<Workspace&>())) {
    RETURN_IF_ERROR(fault_.Check());  // a faulted device computes nothing more
    CUDA_RETURN_IF_ERROR(cudaSetDevice(device_), "cudaSetDevice");
    if (CudaOpBatch* batch = CudaOpBatch::Active(this); batch != nullptr) {
      auto ws = std::make_unique<Workspace>(batch->context());
      auto result = f(batch->context(), *ws);
      absl::Status synced = absl::OkStatus();
      if (host_result) synced = ws->Sync();
      batch->Keep(std::move(ws));
      fault_.Note(StatusOf(result));
      fault_.Note(synced);
      if (StatusOf(result).ok() && !synced.ok()) return synced;
      return result;
    }
    ASSIGN_OR_RETURN(StreamPool::Lease lease, pool_->Acquire());
    const ExecContext ctx = WithJit(lease.context());
    Workspace ws(ctx);
    auto result = f(ctx, ws);
    // Temporaries die with ws: the stream must be idle first, whatever happened.
    const absl::Status synced = ws.Sync();
    fault_.Note(StatusOf(result));
    fault_.Note(synced);
    if (StatusOf(result).ok() && !synced.ok()) return synced;
    return result;
  }
  static const absl::Status& StatusOf(const absl::Status& s) { return s; }
  template <class T>
  static const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
    return s.status();
  }

  // OnDevice with f(t on this device, ctx, ws); a host tensor is copied to
  // the device first.
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
    return OnDevice([&](const ExecContext& ctx, Workspace& ws) -> absl::StatusOr<Tensor> {
      return f(src, ctx, ws);
    });
  }

  int device_;
  DeviceFaultLatch fault_;  // the first device fault an op met
  bool poison_;
  bool stream_batches_;
  std::unique_ptr<StreamPool> pool_;
  std::unique_ptr<TuneDb> own_db_;
  std::unique_ptr<JitCache> jit_;
  CsrSpmmTuner csr_tuner_;
  Tuner<BsrSpmmProblem> bsr_tuner_;
  Tuner<NmTcProblem> nm_tuner_;
  RowStatsCache row_stats_;  // per held CSR: no statistics pass on its later calls
  NmRepackCache nm_repack_;  // per held 1:4, 2:8, …: repacked to 2:4 once
  SpmmTuners tuners_;
};

}  // namespace
}  // namespace cuda

std::vector<std::string> CudaSpmmVariantNames(Format format) {
  std::vector<std::string> names;
  if (format == Format::kBsr) {
    for (const cuda::BsrSpmmVariant* v : cuda::BsrSpmmVariants()) names.emplace_back(v->name());
  } else if (format == Format::kNm) {
    for (const cuda::NmTcVariant* v : cuda::NmTcVariants()) names.emplace_back(v->name());
  } else {
    for (const cuda::CsrSpmmVariant* v : cuda::CsrSpmmVariants()) names.emplace_back(v->name());
  }
  return names;
}

std::vector<std::string> CudaDenseGatherConfigNames() {
  std::vector<std::string> names;
  for (int i = 0; i < cuda::kernels::kDenseGatherConfigs; ++i) {
    names.emplace_back(cuda::kernels::DenseGatherConfigName(i));
  }
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
      cuda::FindCsrSpmmVariant(options.force_variant) == nullptr &&
      cuda::FindVariant(cuda::BsrSpmmVariants(), options.force_variant) == nullptr &&
      cuda::FindVariant(cuda::NmTcVariants(), options.force_variant) == nullptr) {
    return absl::InvalidArgumentError(
        StrCat("spmm variant '", options.force_variant, "' does not exist"));
  }
  if (options.csr_dense_gather_config < -1 ||
      options.csr_dense_gather_config >= cuda::kernels::kDenseGatherConfigs) {
    return absl::InvalidArgumentError(StrCat("csr_dense_gather_config ",
                                             options.csr_dense_gather_config, " is not in [-1, ",
                                             cuda::kernels::kDenseGatherConfigs, ")"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<cuda::StreamPool> pool,
                   cuda::StreamPool::Create(options.device, options.streams, options.max_queued));
  std::unique_ptr<TuneDb> own_db;
  if (options.tune_db == nullptr) {
    ASSIGN_OR_RETURN(own_db, TuneDb::Open(""));
  }
  int major = 0, minor = 0;
  CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, options.device),
      "cudaDeviceGetAttribute");
  CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, options.device),
      "cudaDeviceGetAttribute");
  cuda::JitCacheOptions jit_options;
  jit_options.dir = options.kernel_cache_dir;
  jit_options.max_bytes = options.kernel_cache_bytes;
  jit_options.device = options.device;
  jit_options.generator = cuda::GenerateKernel;
  jit_options.on_compile = options.on_kernel_compile;
  ASSIGN_OR_RETURN(std::unique_ptr<cuda::JitCache> jit, cuda::JitCache::Open(jit_options));
  return std::make_unique<cuda::CudaBackend>(options, std::move(pool), std::move(own_db),
                                             std::move(jit), major * 10 + minor);
}

}  // namespace sparsed
