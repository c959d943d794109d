// Validation of a whole op graph (Graphs.Run) before anything runs: its
// structure (ops, unique names, repeats and their bindings, outputs), every
// reference (held tensors of the caller's tenant, inline data, earlier ops'
// outputs only: no forward reference, hence no cycle), every op's operands
// against the described results of the ops before it (shapes and dtypes
// propagated), the memory the results need at once against the device's
// MemoryAccount, and the cost against max_request_work.
//
// Errors name the op and field, the operand and the value, e.g.
//   ops[3].spmm.b: output 'h2' is 512x1024 but a (output 'h1') is 1200x1024; ...
//   ops[0].repeat.bindings has 5 entries but times = 6 (one per iteration)
// with codes INVALID_ARGUMENT (malformed graph), NOT_FOUND (unknown held
// tensor or layer, a forward call a layer does not keep), ALREADY_EXISTS (a
// held output's name is taken, a forward call id a layer keeps already) and
// RESOURCE_EXHAUSTED (memory, work, inline results too large, more kept
// forward calls than a layer's max_pending).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "server/auth.h"
#include "server/graph_plan.h"
#include "server/layer_store.h"
#include "server/tensor_store.h"
#include "sparsed/buffer.h"
#include "sparsed/device.h"
#include "sparsed/v1/graph.pb.h"

namespace sparsed::server {

// Most ops a graph may run, repeats expanded.
inline constexpr int kMaxGraphOps = 4096;

struct GraphLimits {
  int max_ops = kMaxGraphOps;
  double max_request_work = 0;  // 0: no limit
  // The device's account: its limit (0: none) against its bytes in use when
  // the estimate is checked (after the inline operands are on the device).
  // nullptr: memory is not checked.
  const MemoryAccount* memory = nullptr;
  int64_t max_inline_bytes = 0;  // what inline results may take in one response; 0: no limit
};

// The plan of `request` for `caller` on `device` (where held operands must be
// and inline ones are copied to). The plan points into `request`, which must
// outlive it, and holds the resolved tensors and layers. `layers`: the
// caller's training layers for layer_forward, layer_backward and layer_step
// ops (nullptr: such an op is FAILED_PRECONDITION). Validation changes no
// layer (it reads their kept calls under each layer's mutex).
absl::StatusOr<GraphPlan> ValidateGraph(const v1::RunRequest& request, const TensorStore& store,
                                        const LayerStore* layers, const Caller& caller,
                                        const Device& device, const GraphLimits& limits);

}  // namespace sparsed::server
