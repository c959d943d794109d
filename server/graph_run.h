// Running a validated op graph (graph_plan.h) on a backend.
//
// Each step goes through the same Backend call the Compute and TrainingOps
// services make (Spmm, Convert, Transpose, Prune, Sddmm, DenseMatmul), so
// every backend runs graphs; the elementwise ops are built from Backend
// calls too: add and scale from Axpby (on a fresh result, never in place),
// relu from ReluBackward(x, x), clamp and cast as x · I (an identity CSR)
// with the SpMM epilogue (relu, clamp_max) and out_dtype, which is exact.
// Steps run in order; a result is freed as soon as its last reader has run
// (unless it is an output). Between steps the thread's CancelToken is
// checked, so a deadline or a cancelled call stops the graph with
// DEADLINE_EXCEEDED or CANCELLED.
//
// Nothing here touches the tensor store: operands are read, never written,
// and on any error every result made so far is freed, so a failed graph
// changes no held tensor. Training layers are not tensors: layer_forward
// calls kept are forgotten again on an error, but what a layer_backward
// (gradients accumulated, its call consumed) or a layer_step (the update)
// did stays, and the error names those ops.
//
// The steps run in one OpBatch (sparsed/op_batch.h): on the CUDA backend all
// of them are queued on one stream with stream-ordered temporaries and no
// host synchronisation between them, and the run waits once at the end; a
// layer op waits for its own work before it lets its layer's lock go.
// elapsed_ms is each step's time on the batch's queue (the device's time on
// CUDA, CUDA events between steps). An error the device reports only when
// the run waits names no step.
//
// TODO(issue 16): replay a captured CUDA Graph for a plan of the same
// signature (docs/API.md, "Graphs").
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/graph_plan.h"
#include "sparsed/backend.h"
#include "sparsed/tensor.h"
#include "sparsed/training.h"

namespace sparsed::server {

// A forward call a layer_forward step left kept in its layer (call_id set).
struct KeptLayerCall {
  LayerPtr layer;
  std::string call_id;
};

// What a layer_step step did.
struct LayerStepRun {
  int step = 0;  // in the plan
  std::string layer_id;
  train::StepReport report;
};

struct GraphRunResult {
  std::vector<Tensor> outputs;     // one per plan.outputs, in order
  std::vector<double> elapsed_ms;  // per step, in order
  double compute_ms = 0;           // sum of elapsed_ms
  // Forget these if the call fails after the run (ForgetLayerCalls): the
  // calls kept by layer_forward steps and not consumed by a layer_backward.
  std::vector<KeptLayerCall> kept_calls;
  // The layer_backward and layer_step steps run ("ops[3].layer_step ('s')"):
  // a failure after the run does not undo them (WithLayerUpdates).
  std::vector<std::string> layer_updates;
  std::vector<LayerStepRun> layer_steps;  // in order
};

// Drops kept forward calls again (a graph that failed keeps none).
void ForgetLayerCalls(const std::vector<KeptLayerCall>& calls);

// `status` (an error) with the layer updates that ran before it listed, so
// that the caller knows what a retry would apply twice.
absl::Status WithLayerUpdates(const absl::Status& status, const std::vector<std::string>& updates);

// Errors keep the backend's code and name the step: "ops[2].convert ('h2'):
// ..." or "ops[0].repeat.body[0] (iteration 3).spmm ('y[3].out'): ...". On
// an error the forward calls its layer_forward steps kept are forgotten, and
// the message ends with the layer updates already applied (WithLayerUpdates).
absl::StatusOr<GraphRunResult> ExecuteGraphPlan(const GraphPlan& plan, Backend& backend);

}  // namespace sparsed::server
