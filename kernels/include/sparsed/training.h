// Sparse training: a sparse linear layer whose weights, gradients and
// optimizer state stay on the backend's device, with gradual magnitude
// pruning (Zhu & Gupta 2017) and RigL (Evci et al. 2020). Built only from the
// Backend's ops (Spmm and the primitives of train_ops.h), so it runs the same
// on every backend. Pattern changes (pruning, RigL) move index structure
// through the host; weight values never leave the device.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/backend.h"
#include "sparsed/tensor.h"
#include "sparsed/train_ops.h"

namespace sparsed::train {

enum class InitKind : int {
  kDensePrune = 1,     // dense U(-1/sqrt(in), 1/sqrt(in)), then magnitude pruning
  kRandomPattern = 2,  // a uniformly random pattern, U(-b, b) with b = 1/sqrt(in·(1-s))
};

// Gradual magnitude pruning: at steps t = t0, t0+Δt, ..., t0+nΔt the layer is
// magnitude-pruned to s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³.
struct GradualPruning {
  bool enabled = false;
  double initial_sparsity = 0.0;  // s_i
  double final_sparsity = 0.9;    // s_f
  int64_t start_step = 0;         // t0
  int64_t interval = 100;         // Δt
  int64_t count = 10;             // n
};
// s_t at step t (s_i before t0, s_f after t0 + nΔt).
double GradualSparsity(const GradualPruning& p, int64_t t);

// RigL: every `interval` steps (ΔT) while t < end_step (T_end), drop the
// fraction f(t) = (α/2)(1 + cos(πt/T_end)) of active weights with the
// smallest |w| and grow as many inactive positions with the largest |dense
// gradient| (of the last backward batch), at zero, optimizer state reset.
struct RiglConfig {
  bool enabled = false;
  double alpha = 0.3;
  int64_t interval = 100;
  int64_t end_step = 1000;
  int64_t tile_rows = 0;  // rows of the dense gradient held at once (0: a bounded default)
};
// f(t); 0 at or after end_step.
double RiglDropFraction(const RiglConfig& r, int64_t t);

struct LayerConfig {
  int64_t in_features = 0;
  int64_t out_features = 0;
  // kCsr: any pattern. kNm: n of every m consecutive weights along a row
  // kept (nm_n, nm_m; sparsity 1 - n/m), the pattern fixed for the layer's
  // life (no pruning, no RigL); held as CSR with exactly n entries per group.
  Format format = Format::kCsr;
  int nm_n = 0;
  int nm_m = 0;
  double sparsity = 0.9;         // initial fraction of zero weights, in [0, 1)
  InitKind init = InitKind::kDensePrune;
  bool bias = true;
  bool relu = false;
  uint64_t seed = 0;
  OptimizerHyper optimizer;
  GradualPruning pruning;
  RiglConfig rigl;
  int64_t max_pending = 64;  // forward calls kept for backward at once
};
// INVALID_ARGUMENT naming the field ("in_features", "rigl.alpha", ...).
absl::Status CheckLayerConfig(const LayerConfig& config);
// The config as a JSON object string and back (checkpoints).
std::string LayerConfigToJson(const LayerConfig& config);
absl::StatusOr<LayerConfig> LayerConfigFromJson(std::string_view json);

// What one Step did.
struct StepReport {
  int64_t step = 0;  // updates applied so far (this one included)
  int64_t nnz = 0;   // stored weights after the step
  double sparsity = 0.0;
  bool pruned = false;  // gradual pruning ran
  int64_t dropped = 0;  // RigL
  int64_t grown = 0;
};

// Everything a layer needs to come back after a restart (checkpoints).
// Tensors are on any device; optimizer state arrays are named
// "weight.state1", "weight.state2", "bias.state1", "bias.state2" where the
// optimizer has them.
struct LayerState {
  LayerConfig config;
  int64_t step = 0;
  Tensor weight;               // CSR [out, in], f32
  std::optional<Tensor> bias;  // dense f32 [out]
  std::map<std::string, Tensor> optimizer_state;
};

// One sparse linear layer Y = X · Wᵀ + b (then ReLU when configured), W CSR
// [out_features, in_features]. Not thread-safe: callers serialise.
class SparseLinear {
 public:
  static absl::StatusOr<SparseLinear> Create(Backend& backend, const LayerConfig& config);
  // Checks the state (shapes, dtypes, config) and moves it to the device.
  static absl::StatusOr<SparseLinear> FromState(Backend& backend, LayerState state);

  SparseLinear(SparseLinear&&) noexcept;
  SparseLinear& operator=(SparseLinear&&) noexcept;
  ~SparseLinear();

  // X: dense f32 [batch, in_features] on the device. With a non-empty
  // call_id the inputs backward needs are kept until Backward(call_id);
  // RESOURCE_EXHAUSTED when max_pending calls are already kept, and
  // ALREADY_EXISTS for a call_id that is kept.
  absl::StatusOr<Tensor> Forward(Backend& backend, const Tensor& x, const std::string& call_id);
  // dY: dense f32 [batch, out_features] for forward call `call_id` (which it
  // consumes; NOT_FOUND when unknown). Adds the weight gradient (at the
  // pattern) and the bias gradient to the accumulators; returns dX [batch,
  // in_features] when want_dx.
  absl::StatusOr<std::optional<Tensor>> Backward(Backend& backend, const Tensor& dy,
                                                 const std::string& call_id, bool want_dx);
  // Drops a kept forward call; NOT_FOUND when unknown.
  absl::Status Forget(const std::string& call_id);
  // The batch (rows of X) of kept forward call `call_id`: Backward(call_id)
  // then takes a dY of exactly [batch, out_features] (dense f32 on the
  // layer's device). nullopt when the layer keeps no such call: never kept
  // (an empty call_id included), consumed by Backward or dropped by Forget.
  // A batch of 0 is a kept call. Reads only, allocates nothing, runs nothing
  // on a backend. Not thread-safe, like every method here: the caller
  // serialises it with the layer's other calls (the daemon holds the
  // layer's StoredLayer::mu), and the answer holds only until the next
  // Forward, Backward or Forget on this layer.
  std::optional<int64_t> KeptCallBatch(const std::string& call_id) const;
  // Applies the optimizer to the accumulated gradients times grad_scale,
  // zeroes them, then runs gradual pruning and RigL where due at the new step.
  absl::StatusOr<StepReport> Step(Backend& backend, float grad_scale = 1.0f);
  // The dense gradient dYᵀ·X of the last backward batch, rows [row_begin,
  // row_end) (-1: all): FAILED_PRECONDITION before any backward.
  absl::StatusOr<Tensor> DenseGradient(Backend& backend, int64_t row_begin, int64_t row_end);
  // Replaces the optimizer's hyper-parameters (state kept).
  absl::Status SetOptimizer(const OptimizerHyper& hyper);

  const LayerConfig& config() const;
  int64_t step() const;
  int64_t pending() const;  // forward calls kept
  const Tensor& weight() const;
  const Tensor* bias() const;
  const Tensor& weight_grad() const;  // dense f32 [nnz], the accumulator
  const Tensor* bias_grad() const;
  // A copy of the state on `device` (for a checkpoint).
  absl::StatusOr<LayerState> ExportState(const Device& device) const;

 private:
  struct Impl;
  explicit SparseLinear(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparsed::train
