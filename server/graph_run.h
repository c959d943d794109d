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
// changes no held tensor.
//
// TODO(issue 16): on the CUDA backend, run the steps on one stream without
// host synchronisation between them and replay a captured CUDA Graph for a
// plan of the same signature (docs/API.md, "Graphs").
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/graph_plan.h"
#include "sparsed/backend.h"
#include "sparsed/tensor.h"

namespace sparsed::server {

// A forward call a layer_forward step left kept in its layer (call_id set).
struct KeptLayerCall {
  LayerPtr layer;
  std::string call_id;
};

struct GraphRunResult {
  std::vector<Tensor> outputs;     // one per plan.outputs, in order
  std::vector<double> elapsed_ms;  // per step, in order
  double compute_ms = 0;           // sum of elapsed_ms
  // Forget these if the call fails after the run (ForgetLayerCalls).
  std::vector<KeptLayerCall> kept_calls;
};

// Drops kept forward calls again (a graph that failed keeps none).
void ForgetLayerCalls(const std::vector<KeptLayerCall>& calls);

// Errors keep the backend's code and name the step: "ops[2].convert ('h2'):
// ..." or "ops[0].repeat.body[0] (iteration 3).spmm ('y[3].out'): ...". On
// an error the forward calls its layer_forward steps kept are forgotten.
absl::StatusOr<GraphRunResult> ExecuteGraphPlan(const GraphPlan& plan, Backend& backend);

}  // namespace sparsed::server
