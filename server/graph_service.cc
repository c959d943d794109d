#include "server/graph_service.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "server/compute_slot.h"
#include "server/graph_op_checks.h"
#include "server/graph_run.h"
#include "server/graph_validate.h"
#include "server/op_result.h"
#include "server/serve.h"
#include "server/tensor_access.h"
#include "sparsed/buffer.h"
#include "sparsed/cancel.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

// Room a response leaves for inline results (as DeliverResult reckons).
int64_t InlineLimit(const ServiceContext& ctx) { return ctx.config.max_message_bytes - 4096; }

// Fills response->results from the run's outputs. Inline results first, so
// that nothing is held when one does not fit; then the held ones, removing
// those already inserted when one fails (a taken name, a quota).
absl::Status DeliverOutputs(ServiceContext& ctx, const Caller& caller,
                            const v1::RunRequest& request, std::vector<Tensor> outputs,
                            v1::RunResponse* response) {
  int64_t inline_bytes = 0;
  for (int k = 0; k < request.outputs_size(); ++k) {
    response->add_results()->set_output(request.outputs(k).output());
    if (request.outputs(k).inline_()) inline_bytes += outputs[k].bytes();
  }
  if (inline_bytes > InlineLimit(ctx)) {
    return absl::ResourceExhaustedError(
        StrCat("outputs: the inline results take ", inline_bytes,
               " bytes, more than one response may carry (", InlineLimit(ctx),
               "); hold some of them (inline = false) and download them"));
  }
  for (int k = 0; k < request.outputs_size(); ++k) {
    if (!request.outputs(k).inline_()) continue;
    v1::Output output;
    output.set_inline_(true);
    v1::OpResult delivered;
    if (absl::Status s = DeliverResult(ctx, caller, std::move(outputs[k]), output, &delivered);
        !s.ok()) {
      return WithField(StrCat("outputs[", k, "]"), s);
    }
    response->mutable_results(k)->mutable_inline_()->Swap(delivered.mutable_inline_());
  }
  // A call whose client has gone or whose deadline has passed holds nothing.
  RETURN_IF_ERROR(CancelStatus());
  // Held outputs go into the store together or not at all (one lock, so no
  // other call sees some of them).
  std::vector<TensorStore::NewTensor> held;
  std::vector<int> held_index;
  for (int k = 0; k < request.outputs_size(); ++k) {
    const v1::GraphOutput& o = request.outputs(k);
    if (o.inline_()) continue;
    const std::string field = StrCat("outputs[", k, "]");
    RETURN_IF_ERROR(CheckNameAndLabels(o.name(), o.labels(), field));
    if (absl::Status free = ctx.store.CheckNameFree(caller.tenant, o.name()); !free.ok()) {
      return WithField(field, free);  // InsertAll checks again, under its lock
    }
    ASSIGN_OR_RETURN(Tensor t, MoveToDevice(std::move(outputs[k]), ctx.backend->device()));
    held.push_back({std::move(t), o.name(), ToStdMap(o.labels()), caller.tenant,
                    ResolveLifetime(caller.lifetime, o.name())});
    held_index.push_back(k);
  }
  if (!held.empty()) {
    absl::StatusOr<std::vector<TensorPtr>> stored = ctx.store.InsertAll(std::move(held));
    if (!stored.ok()) return WithField("outputs", stored.status());
    for (size_t i = 0; i < stored->size(); ++i) {
      *response->mutable_results(held_index[i])->mutable_tensor() = DescribeTensor(*(*stored)[i]);
    }
  }
  return absl::OkStatus();
}

absl::Status DoRun(ServiceContext& ctx, const Caller& caller, const v1::RunRequest& request,
                   v1::RunResponse* response) {
  const auto start = std::chrono::steady_clock::now();
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  const Device device = ctx.backend->device();
  GraphLimits limits;
  limits.max_request_work = ctx.max_request_work;
  limits.memory = &MemoryAccount::For(device);
  limits.max_inline_bytes = InlineLimit(ctx);
  ASSIGN_OR_RETURN(const GraphPlan plan,
                   ValidateGraph(request, ctx.store, &ctx.layers, caller, device, limits));
  ASSIGN_OR_RETURN(GraphRunResult run, ExecuteGraphPlan(plan, *ctx.backend));
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    v1::OpTiming* timing = response->add_ops();
    timing->set_op(plan.steps[s].label);
    timing->set_kind(std::string(GraphOpKindName(plan.steps[s].kind)));
    timing->set_elapsed_ms(run.elapsed_ms[s]);
  }
  response->set_compute_ms(run.compute_ms);
  for (const LayerStepRun& s : run.layer_steps) {
    v1::GraphLayerStepResult* r = response->add_layer_steps();
    r->set_op(plan.steps[s.step].label);
    r->set_layer(s.layer_id);
    v1::StepResponse* step = r->mutable_step();
    step->set_step(s.report.step);
    step->set_nnz(s.report.nnz);
    step->set_sparsity(s.report.sparsity);
    step->set_pruned(s.report.pruned);
    step->set_dropped(s.report.dropped);
    step->set_grown(s.report.grown);
  }
  if (absl::Status delivered =
          DeliverOutputs(ctx, caller, request, std::move(run.outputs), response);
      !delivered.ok()) {
    ForgetLayerCalls(run.kept_calls);  // the client never saw this call
    return WithLayerUpdates(delivered, run.layer_updates);
  }
  response->set_elapsed_ms(MillisecondsSince(start));
  return absl::OkStatus();
}

}  // namespace

grpc::Status GraphService::Run(grpc::ServerContext* rpc, const v1::RunRequest* request,
                               v1::RunResponse* response) {
  return Serve(ctx_, rpc,
               [&](const Caller& caller) { return DoRun(ctx_, caller, *request, response); });
}

}  // namespace sparsed::server
