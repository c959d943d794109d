// The op dispatch interface, implemented once per backend (CPU and CUDA).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/convert.h"
#include "sparsed/device.h"
#include "sparsed/prune.h"
#include "sparsed/spmm.h"
#include "sparsed/tensor.h"
#include "sparsed/train_ops.h"
#include "sparsed/tune_db.h"

namespace sparsed {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;  // "cpu", "cuda"
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
};

// Options of the CUDA backend.
struct CudaBackendOptions {
  int device = 0;               // CUDA ordinal
  TuneDb* tune_db = nullptr;    // not owned; nullptr tunes without remembering
  int streams = 4;              // requests computing at once on the device
  int max_queued = 64;          // requests waiting for a stream; more get RESOURCE_EXHAUSTED
  std::string force_variant;    // use this SpMM variant where it applies ("" = tune)
  bool poison_outputs = false;  // fill outputs with NaN before computing (tests)
};

// Names of the CUDA SpMM variants (empty without CUDA compiled in).
std::vector<std::string> CudaSpmmVariantNames();

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
