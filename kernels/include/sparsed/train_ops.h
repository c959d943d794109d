// The primitive ops sparse training is built from (see training.h), one
// implementation per backend. Every tensor named here lives on the backend's
// device; "dense f32 1-D [n]" means a dense f32 tensor of shape {n}. Each
// backend validates with the Check* function before allocating or launching;
// errors are INVALID_ARGUMENT naming the field ("a", "pattern", "k", ...)
// and the offending value.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed {

// Sampled dense-dense matrix multiply over a CSR pattern:
//   out[p] = alpha * (op(A) · op(B))[i, j] + beta * c[p]
// for every stored position p = (i, j) of `pattern` (CSR [m, n], any index
// dtype; its values are not read). op(A) is [m, k], op(B) is [k, n]; A and B
// are dense 2-D f32. With A = dYᵀ (transpose_a) and B = X this is the weight
// gradient of Y = X · Wᵀ at W's stored positions.
struct SddmmArgs {
  const Tensor* a = nullptr;
  const Tensor* b = nullptr;
  bool transpose_a = false;
  bool transpose_b = false;
  const Tensor* pattern = nullptr;
  float alpha = 1.0f;
  float beta = 0.0f;
  const Tensor* c = nullptr;  // dense f32 1-D [pattern nnz]; required when beta != 0
};
// Returns the result's length (the pattern's nnz).
absl::StatusOr<int64_t> CheckSddmm(const SddmmArgs& args);

// Rows [row_begin, row_end) of op(A) · op(B) for dense 2-D f32 A and B: the
// tile of a dense product, so a caller can walk a large product (such as a
// layer's dense gradient dYᵀ · X) holding one tile at a time. row_end = -1
// means all rows. The result is dense f32 [row_end - row_begin, n].
struct DenseMatmulArgs {
  const Tensor* a = nullptr;
  const Tensor* b = nullptr;
  bool transpose_a = false;
  bool transpose_b = false;
  int64_t row_begin = 0;
  int64_t row_end = -1;
};
// Returns {rows of the tile, n} with row_end resolved.
absl::StatusOr<std::vector<int64_t>> CheckDenseMatmul(const DenseMatmulArgs& args);

enum class OptimizerKind : int { kSgd = 1, kAdam = 2, kAdamW = 3 };

// Hyper-parameters, with PyTorch's meaning:
//   SGD:   g = grad + weight_decay·p; buf = momentum·buf + g (when momentum > 0,
//          buf starts at 0); p -= lr·(nesterov ? g + momentum·buf : buf)
//          (p -= lr·g without momentum).
//   Adam:  g = grad + weight_decay·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
//          p -= lr·(m / (1−β1^step)) / (sqrt(v / (1−β2^step)) + eps)
//   AdamW: p -= lr·weight_decay·p first, then Adam with g = grad.
struct OptimizerHyper {
  OptimizerKind kind = OptimizerKind::kSgd;
  float lr = 0.01f;
  float momentum = 0.0f;
  bool nesterov = false;
  float weight_decay = 0.0f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
};
// Checks ranges: lr >= 0 and finite, momentum/beta in [0, 1), eps > 0, ...
absl::Status CheckOptimizerHyper(const OptimizerHyper& hyper, std::string_view field = "optimizer");

// One optimizer update in place on a parameter array. param, grad, state1 and
// state2 are dense f32 1-D of one length. state1 is SGD's momentum buffer or
// Adam's m (unused, may be null, for SGD without momentum); state2 is Adam's v
// (null for SGD). grad is multiplied by grad_scale first (e.g. 1/batch).
// step is the 1-based count of updates, for Adam's bias correction.
struct OptimizerUpdateArgs {
  OptimizerHyper hyper;
  int64_t step = 1;
  float grad_scale = 1.0f;
  Tensor* param = nullptr;
  const Tensor* grad = nullptr;
  Tensor* state1 = nullptr;
  Tensor* state2 = nullptr;
};
absl::Status CheckOptimizerUpdate(const OptimizerUpdateArgs& args);

// Which entries TopK selects.
enum class TopKOrder : int {
  kLargest = 1,            // largest values
  kLargestMagnitude = 2,   // largest |values|
  kSmallestMagnitude = 3,  // smallest |values|
};

// The k selected entries of a dense f32 1-D array, best first; among equal
// keys the smaller index comes first, so the choice is deterministic and the
// same on every backend. NaN anywhere is INVALID_ARGUMENT. Indices and values
// come back on the host (they are structure, not weights).
struct TopKResult {
  std::vector<int64_t> indices;
  std::vector<float> values;  // the selected entries as stored (not |.|)
};
absl::Status CheckTopK(const Tensor& scores, int64_t k);

// Backend-independent element-wise ops and reductions on dense f32 tensors.
// y = a·x + b·y in place (same numel).
absl::Status CheckAxpby(const Tensor& x, const Tensor& y);
// dX = dY where Y > 0, else 0 (the backward of a ReLU output Y; same shape).
absl::Status CheckReluBackward(const Tensor& dy, const Tensor& y);
// Column sums of a dense 2-D [r, c] -> dense f32 1-D [c] (the bias gradient).
absl::Status CheckColumnSums(const Tensor& x);
// In place on a dense 2-D f32 tile holding rows [row_begin, row_begin + r) of
// an [m, n] product: every entry becomes |entry|, except the positions stored
// in `pattern` (CSR [m, n]) which become -1. TopK(kLargest) of the result
// picks RigL's growth candidates among the inactive positions.
absl::Status CheckGrowthScores(const Tensor& tile, const Tensor& pattern, int64_t row_begin);
// out[i] = index[i] >= 0 ? src[index[i]] : 0, dense f32 1-D (index on the
// host, each -1 or in [0, src length)). Rebuilds values and optimizer state
// after the pattern changes (grown entries start at zero).
absl::Status CheckGatherOrZero(const Tensor& src, const std::vector<int64_t>& index);

}  // namespace sparsed
