// A validated op graph (Graphs.Run, docs/API.md "Graphs"): the request's ops
// with repeats expanded into one flat list of steps, every operand resolved
// to a tensor (held or inline) or to the step that produces it, each step's
// result described, and the last reader of every result known. Made by
// ValidateGraph (graph_validate.h), run by RunGraphPlan (graph_run.h).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/layer_store.h"
#include "server/tensor_store.h"
#include "sparsed/convert.h"
#include "sparsed/prune.h"
#include "sparsed/tensor.h"
#include "sparsed/train_ops.h"
#include "sparsed/v1/graph.pb.h"

namespace sparsed::server {

enum class GraphOpKind {
  kSpmm,
  kConvert,
  kTranspose,
  kPrune,
  kSddmm,
  kDenseMatmul,
  kAdd,
  kScale,
  kRelu,
  kClamp,
  kCast,
  kLayerForward,
  kLayerBackward,
  kLayerStep,
};

// Whether a kind has a result other ops and the outputs may read (a
// layer_step changes its layer and has none).
inline bool HasResult(GraphOpKind kind) { return kind != GraphOpKind::kLayerStep; }

// Whether a kind changes its layer in a way a failed graph does not undo
// (a backward's gradients, a step's update).
inline bool UpdatesLayer(GraphOpKind kind) {
  return kind == GraphOpKind::kLayerBackward || kind == GraphOpKind::kLayerStep;
}

// "spmm", "convert", ..., "dense_matmul": the op's field name in GraphOp.
std::string_view GraphOpKindName(GraphOpKind kind);

// The operand positions of each kind (PlanStep::in):
//   spmm         0 a, 1 b, 2 c, 3 bias
//   sddmm        0 a, 1 b, 2 pattern, 3 c
//   dense_matmul 0 a, 1 b
//   add          0 x, 1 y
//   others       0 source / x (layer_forward: x; layer_backward: grad_out;
//                layer_step: none)
inline constexpr int kMaxGraphOperands = 4;

// Where a step's operand comes from: a tensor resolved during validation (a
// held tensor of the caller, or inline data validated and on the device), or
// the result of an earlier step. Neither: the operand is absent (optional).
struct StepInput {
  TensorPtr tensor;
  int step = -1;
  bool present() const { return tensor != nullptr || step >= 0; }
};

struct PlanStep {
  const v1::GraphOp* op = nullptr;  // in the request, which outlives the plan
  GraphOpKind kind = GraphOpKind::kSpmm;
  std::string label;  // "h2"; in a repeat "y[3].out" (timings)
  std::string field;  // "ops[2]"; in a repeat "ops[0].repeat.body[1] (iteration 3)"
  std::array<StepInput, kMaxGraphOperands> in;
  // Options read from the op during validation.
  ConvertOptions convert;
  PruneOptions prune;
  // layer_forward, layer_backward, layer_step: the caller's layer, resolved
  // by validation.
  LayerPtr layer;
  // layer_step: the optimizer's new hyper-parameters (StepRequest.optimizer)
  // and grad_scale (0 already made 1).
  std::optional<OptimizerHyper> hyper;
  float grad_scale = 1.0f;
  DType dtype = DType::kF32;  // spmm: out_dtype; cast: the target; clamp: x's
  // The result as validation describes it. Its nnz is an upper bound where
  // only the data can tell (conversions from dense, pruning).
  TensorDesc out;         // layer_step: none (HasResult)
  bool exact_nnz = true;  // false: out.nnz is an upper bound
  int64_t out_bytes = 0;
  double work = 0;    // estimated scalar operations (server/request_cost.h)
  int last_use = -1;  // the last step reading the result; -1: none
  bool kept = false;  // an output of the graph (never freed by the run)
};

struct GraphPlan {
  std::vector<PlanStep> steps;
  // The step of each RunRequest.outputs entry, in order.
  std::vector<int> outputs;
  double work = 0;             // sum of the steps' work
  int64_t peak_bytes = 0;      // results alive at once, at most (estimate)
  int64_t identity_bytes = 0;  // identity matrices clamp and cast multiply by
};

}  // namespace sparsed::server
