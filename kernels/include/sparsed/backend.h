// The op dispatch interface, implemented once per backend (CPU and CUDA).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/convert.h"
#include "sparsed/device.h"
#include "sparsed/kernel_cache.h"
#include "sparsed/op_batch.h"
#include "sparsed/prune.h"
#include "sparsed/spmm.h"
#include "sparsed/str_cat.h"
#include "sparsed/tensor.h"
#include "sparsed/train_ops.h"
#include "sparsed/tune_db.h"

namespace sparsed {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;  // "cpu", "cuda"
  // OK while the backend can compute; once its device has faulted (CUDA:
  // an illegal address, an uncorrectable ECC error, …) UNAVAILABLE naming the
  // device and the fault, which every later op on it also returns at once:
  // the tensors held there are unavailable until the daemon restarts.
  virtual absl::Status Health() const { return absl::OkStatus(); }
  virtual Device device() const = 0;

  // See spmm.h. Validates with CheckSpmm before allocating the result.
  virtual absl::StatusOr<Tensor> Spmm(const SpmmArgs& args) = 0;

  // See convert.h; the result is a new tensor on this backend's device.
  virtual absl::StatusOr<Tensor> Convert(const Tensor& t, Format to,
                                         const ConvertOptions& options) = 0;
  // The transpose as a new tensor of the same format, on this device.
  virtual absl::StatusOr<Tensor> Transpose(const Tensor& t) = 0;
  // See prune.h; the result is a new tensor on this backend's device.
  virtual absl::StatusOr<Tensor> Prune(const Tensor& t, const PruneOptions& options) = 0;

  // Training primitives (see train_ops.h); operands on this backend's device.
  // SDDMM: a new dense f32 1-D [pattern nnz] in the pattern's order.
  virtual absl::StatusOr<Tensor> Sddmm(const SddmmArgs& args) = 0;
  virtual absl::StatusOr<Tensor> DenseMatmul(const DenseMatmulArgs& args) = 0;
  virtual absl::Status OptimizerUpdate(const OptimizerUpdateArgs& args) = 0;
  virtual absl::StatusOr<TopKResult> TopK(const Tensor& scores, int64_t k, TopKOrder order) = 0;
  virtual absl::Status Axpby(float a, const Tensor& x, float b, Tensor& y) = 0;
  virtual absl::StatusOr<Tensor> ReluBackward(const Tensor& dy, const Tensor& y) = 0;
  virtual absl::StatusOr<Tensor> ColumnSums(const Tensor& x) = 0;
  virtual absl::Status GrowthScores(Tensor& tile, const Tensor& pattern, int64_t row_begin) = 0;
  virtual absl::StatusOr<Tensor> GatherOrZero(const Tensor& src,
                                              const std::vector<int64_t>& index) = 0;

  // The JIT kernel cache (kernel_cache.h). A backend without one (the CPU
  // backend) lists nothing, clears nothing and refuses to warm.
  virtual std::vector<KernelCacheEntry> ListKernels() { return {}; }
  // Removes every compiled kernel (memory and disk); returns how many.
  virtual absl::StatusOr<int> ClearKernels() { return 0; }
  // Compiles (or finds) every spec ahead of time; returns how many were
  // compiled now. INVALID_ARGUMENT naming a spec no generator knows,
  // INTERNAL with the compiler's log for one that fails to compile.
  virtual absl::StatusOr<int> WarmKernels(const std::vector<KernelSpec>& specs) {
    (void)specs;
    return absl::FailedPreconditionError(
        StrCat("the ", name(), " backend compiles no kernels at run time"));
  }
  virtual KernelCacheStats KernelCacheStatistics() { return {}; }

  // Starts a batch (op_batch.h): the ops this thread calls until the batch
  // is finished are queued without host synchronisation between them where
  // the backend can (CUDA). A batch begun while this thread already has one
  // on this backend is a plain host batch and the outer one governs.
  // RESOURCE_EXHAUSTED when no stream frees up (as for an op).
  virtual absl::StatusOr<std::unique_ptr<OpBatch>> BeginBatch() { return MakeHostOpBatch(); }
};

// Options of the CUDA backend.
struct CudaBackendOptions {
  int device = 0;               // CUDA ordinal
  TuneDb* tune_db = nullptr;    // not owned; nullptr tunes without remembering
  int streams = 4;              // requests computing at once on the device
  int max_queued = 64;          // requests waiting for a stream; more get RESOURCE_EXHAUSTED
  std::string force_variant;    // use this SpMM variant where it applies ("" = tune)
  bool poison_outputs = false;  // fill outputs with NaN before computing (tests)
  // JIT kernels: compiled cubins are kept in this directory (normally
  // <data_dir>/kernels; "" keeps them in memory only), at most
  // kernel_cache_bytes on disk (least recently used evicted; 0: no cap).
  std::string kernel_cache_dir;
  // Whether the tuner chooses among the tensor-core BSR kernels (JIT). Off
  // by default until verified on the device; force_variant runs one anyway.
  bool bsr_tensor_cores = false;
  // Whether the tuner also chooses among the wgmma.sp 2:4 tiles (nm_wg_*,
  // compute capability 9.0) not yet verified on a device; the verified ones
  // are always candidates there. force_variant runs any one anyway.
  bool nm_wgmma = false;
  // Whether D·Sᵀ with f32 values (the F.linear form with a CSR weight) takes
  // the row-gather kernel (no transposes) instead of the CSR variants. Off
  // until verified on the device.
  bool csr_dense_gather = false;
  // Which compiled configuration of that kernel (an index into
  // CudaDenseGatherConfigNames()); -1: the environment variable
  // SPARSED_DENSE_GATHER_CONFIG when it names one, else 0.
  int csr_dense_gather_config = -1;
  // Whether BeginBatch queues a batch's ops on one stream without host waits
  // between them (false: each op waits for itself, as outside a batch).
  bool stream_batches = true;
  int64_t kernel_cache_bytes = int64_t{1} << 30;
  // Called after every successful compilation with its wall time (metrics).
  std::function<void(double seconds)> on_kernel_compile;
};

// Names of the CUDA SpMM variants of a sparse format's list (CSR, which
// also serves COO, CSC and forms BSR/N:M fall back to; BSR; or N:M, the 2:4
// tensor-core tiles); empty without CUDA compiled in.
std::vector<std::string> CudaSpmmVariantNames(Format format = Format::kCsr);

// Names of the row-gather kernel's configurations
// (CudaBackendOptions::csr_dense_gather_config indexes them); empty without
// CUDA compiled in.
std::vector<std::string> CudaDenseGatherConfigNames();

// The CUDA backend: operands in that device's memory, SpMM variants chosen by
// the autotuner. It trusts operands to be valid (ValidateTensor): the daemon
// validates every tensor when it is admitted, and device kernels index with
// the stored indices. FAILED_PRECONDITION when CUDA is not compiled in or the
// device does not exist.
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(const CudaBackendOptions& options);

// The CPU backend: every core (threads = 0 means hardware concurrency),
// float64 accumulation; the reference every other backend is tested against.
std::unique_ptr<Backend> MakeCpuBackend(int threads = 0);

}  // namespace sparsed
