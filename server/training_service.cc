#include "server/training_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <utility>

#include "server/compute_slot.h"
#include "server/op_result.h"
#include "server/request_cost.h"
#include "server/serve.h"
#include "server/status_util.h"
#include "server/tensor_access.h"
#include "server/training_requests.h"
#include "sparsed/convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

// What the ops check before computing: a held output's name and labels are
// valid and the name is free (an inline output needs neither).
absl::Status CheckOutput(ServiceContext& ctx, const Caller& caller, const v1::Output& output) {
  if (output.inline_()) return absl::OkStatus();
  RETURN_IF_ERROR(CheckNameAndLabels(output.name(), output.labels(), "output"));
  return ctx.store.CheckNameFree(caller.tenant, output.name());
}

// A forward (or a third of a backward) of `layer` on the rows of `activation`;
// layer->mu held.
double LayerWork(const StoredLayer& layer, const TensorDesc& activation) {
  const train::LayerConfig& c = layer.layer.config();
  return LayerCallWork(activation.rows(), c.in_features, c.out_features,
                       layer.layer.weight().desc().nnz);
}

std::string DeviceName(ServiceContext& ctx) { return ctx.backend->device().ToString(); }

absl::Status DoCreateLayer(ServiceContext& ctx, const Caller& caller,
                           const v1::CreateLayerRequest& req, v1::LayerInfo* response) {
  RETURN_IF_ERROR(CheckLayerName(req.name()));
  ASSIGN_OR_RETURN(const train::LayerConfig config, LayerConfigFrom(req));
  RETURN_IF_ERROR(CheckWork(CreateLayerWork(config), ctx.max_request_work, "CreateLayer"));
  RETURN_IF_ERROR(ctx.layers.CheckNameFree(caller.tenant, req.name()));
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  ASSIGN_OR_RETURN(train::SparseLinear layer, train::SparseLinear::Create(*ctx.backend, config));
  ASSIGN_OR_RETURN(LayerPtr stored, ctx.layers.Insert(caller.tenant, std::move(layer), req.name()));
  std::lock_guard lock(stored->mu);
  *response = DescribeLayer(*stored, DeviceName(ctx));
  spdlog::info("layer {}{} created: {} -> {}, nnz {}", stored->id,
               stored->name.empty() ? "" : StrCat(" '", stored->name, "'"), config.in_features,
               config.out_features, response->nnz());
  return absl::OkStatus();
}

absl::Status DoForward(ServiceContext& ctx, const Caller& caller, const v1::ForwardRequest& req,
                       v1::ForwardResponse* response) {
  RETURN_IF_ERROR(CheckCallId(req.call_id(), /*may_be_empty=*/true));
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  RETURN_IF_ERROR(CheckOutput(ctx, caller, req.output()));
  ASSIGN_OR_RETURN(LayerPtr layer, ResolveLayer(ctx.layers, caller, req.layer()));
  ASSIGN_OR_RETURN(TensorPtr x,
                   ResolveOperand(ctx.store, caller, req.x(), "x", ctx.backend->device()));
  std::optional<Tensor> y;
  const auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(layer->mu);
    RETURN_IF_ERROR(
        CheckActivation(x->tensor.desc(), "x", layer->layer.config().in_features, "in_features"));
    RETURN_IF_ERROR(
        CheckWork(LayerWork(*layer, x->tensor.desc()), ctx.max_request_work, "Forward"));
    ASSIGN_OR_RETURN(y, layer->layer.Forward(*ctx.backend, x->tensor, req.call_id()));
  }
  response->mutable_y()->set_elapsed_ms(MillisecondsSince(start));
  absl::Status delivered =
      DeliverResult(ctx, caller, *std::move(y), req.output(), response->mutable_y());
  if (!delivered.ok() && !req.call_id().empty()) {
    // The client never saw this call: keep nothing for it.
    std::lock_guard lock(layer->mu);
    (void)layer->layer.Forget(req.call_id());
  }
  return delivered;
}

absl::Status DoBackward(ServiceContext& ctx, const Caller& caller, const v1::BackwardRequest& req,
                        v1::BackwardResponse* response) {
  RETURN_IF_ERROR(CheckCallId(req.call_id(), /*may_be_empty=*/false));
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  if (req.want_dx()) RETURN_IF_ERROR(CheckOutput(ctx, caller, req.output()));
  ASSIGN_OR_RETURN(LayerPtr layer, ResolveLayer(ctx.layers, caller, req.layer()));
  ASSIGN_OR_RETURN(TensorPtr dy,
                   ResolveOperand(ctx.store, caller, req.dy(), "dy", ctx.backend->device()));
  std::optional<Tensor> dx;
  const auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(layer->mu);
    RETURN_IF_ERROR(CheckActivation(dy->tensor.desc(), "dy", layer->layer.config().out_features,
                                    "out_features"));
    RETURN_IF_ERROR(
        CheckWork(3 * LayerWork(*layer, dy->tensor.desc()), ctx.max_request_work, "Backward"));
    ASSIGN_OR_RETURN(dx,
                     layer->layer.Backward(*ctx.backend, dy->tensor, req.call_id(), req.want_dx()));
  }
  if (!req.want_dx()) return absl::OkStatus();
  if (!dx.has_value()) return absl::InternalError("the layer returned no dX although asked to");
  response->mutable_dx()->set_elapsed_ms(MillisecondsSince(start));
  return DeliverResult(ctx, caller, *std::move(dx), req.output(), response->mutable_dx());
}

absl::Status DoForgetCall(ServiceContext& ctx, const Caller& caller,
                          const v1::ForgetCallRequest& req) {
  RETURN_IF_ERROR(CheckCallId(req.call_id(), /*may_be_empty=*/false));
  ASSIGN_OR_RETURN(LayerPtr layer, ResolveLayer(ctx.layers, caller, req.layer()));
  std::lock_guard lock(layer->mu);
  return layer->layer.Forget(req.call_id());
}

absl::Status DoStep(ServiceContext& ctx, const Caller& caller, const v1::StepRequest& req,
                    v1::StepResponse* response) {
  ASSIGN_OR_RETURN(const float grad_scale, GradScaleFrom(req.grad_scale()));
  std::optional<OptimizerHyper> hyper;
  if (req.has_optimizer()) {
    ASSIGN_OR_RETURN(hyper, OptimizerFrom(req.optimizer(), "optimizer"));
  }
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  ASSIGN_OR_RETURN(LayerPtr layer, ResolveLayer(ctx.layers, caller, req.layer()));
  std::lock_guard lock(layer->mu);
  if (hyper.has_value()) RETURN_IF_ERROR(layer->layer.SetOptimizer(*hyper));
  ASSIGN_OR_RETURN(const train::StepReport report, layer->layer.Step(*ctx.backend, grad_scale));
  response->set_step(report.step);
  response->set_nnz(report.nnz);
  response->set_sparsity(report.sparsity);
  response->set_pruned(report.pruned);
  response->set_dropped(report.dropped);
  response->set_grown(report.grown);
  return absl::OkStatus();
}

absl::Status DoDenseGradient(ServiceContext& ctx, const Caller& caller,
                             const v1::DenseGradientRequest& req, v1::OpResult* response) {
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  RETURN_IF_ERROR(CheckOutput(ctx, caller, req.output()));
  ASSIGN_OR_RETURN(LayerPtr layer, ResolveLayer(ctx.layers, caller, req.layer()));
  std::optional<Tensor> tile;
  const auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(layer->mu);
    ASSIGN_OR_RETURN(
        tile, layer->layer.DenseGradient(*ctx.backend, req.row_begin(), RowEndFrom(req.row_end())));
  }
  response->set_elapsed_ms(MillisecondsSince(start));
  return DeliverResult(ctx, caller, *std::move(tile), req.output(), response);
}

absl::Status DoGetParameter(ServiceContext& ctx, const Caller& caller,
                            const v1::GetParameterRequest& req, v1::OpResult* response) {
  ASSIGN_OR_RETURN(const LayerParameter which, LayerParameterFrom(req.parameter()));
  ASSIGN_OR_RETURN(LayerPtr layer, ResolveLayer(ctx.layers, caller, req.layer()));
  std::optional<Tensor> copy;
  {
    std::lock_guard lock(layer->mu);
    const train::SparseLinear& l = layer->layer;
    const Tensor* t = nullptr;
    switch (which) {
      case LayerParameter::kWeight:
        t = &l.weight();
        break;
      case LayerParameter::kBias:
        t = l.bias();
        break;
      case LayerParameter::kWeightGrad:
        t = &l.weight_grad();
        break;
      case LayerParameter::kBiasGrad:
        t = l.bias_grad();
        break;
    }
    if (t == nullptr) {
      return absl::InvalidArgumentError(StrCat("parameter = '", req.parameter(), "': layer ",
                                               layer->id,
                                               " has no bias (created with bias = "
                                               "false)"));
    }
    // A copy taken under the lock: the next Step changes the layer's arrays
    // in place.
    if (t->device().is_cpu()) {
      ASSIGN_OR_RETURN(copy, t->Clone());
    } else {
      ASSIGN_OR_RETURN(copy, t->CopyTo(Device::Cpu()));
    }
    // An N:M layer's weight (held as CSR with n entries in every group of m)
    // goes out as the NM tensor it is.
    const train::LayerConfig& config = l.config();
    if (which == LayerParameter::kWeight && config.format == Format::kNm) {
      ConvertOptions nm;
      nm.nm_n = config.nm_n;
      nm.nm_m = config.nm_m;
      ASSIGN_OR_RETURN(copy, Convert(*copy, Format::kNm, nm));
    }
  }
  v1::Output inline_output;
  inline_output.set_inline_(true);
  return DeliverResult(ctx, caller, *std::move(copy), inline_output, response);
}

absl::Status DoSddmm(ServiceContext& ctx, const Caller& caller, const v1::SddmmRequest& req,
                     v1::OpResult* response) {
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  RETURN_IF_ERROR(CheckOutput(ctx, caller, req.output()));
  const Device device = ctx.backend->device();
  ASSIGN_OR_RETURN(TensorPtr a, ResolveOperand(ctx.store, caller, req.a(), "a", device));
  ASSIGN_OR_RETURN(TensorPtr b, ResolveOperand(ctx.store, caller, req.b(), "b", device));
  ASSIGN_OR_RETURN(TensorPtr pattern,
                   ResolveOperand(ctx.store, caller, req.pattern(), "pattern", device));
  TensorPtr c;
  if (req.has_c()) {
    ASSIGN_OR_RETURN(c, ResolveOperand(ctx.store, caller, req.c(), "c", device));
  }
  SddmmArgs args;
  args.a = &a->tensor;
  args.b = &b->tensor;
  args.transpose_a = req.transpose_a();
  args.transpose_b = req.transpose_b();
  args.pattern = &pattern->tensor;
  args.alpha = req.has_alpha() ? req.alpha() : 1.0f;
  args.beta = req.beta();
  args.c = c ? &c->tensor : nullptr;
  RETURN_IF_ERROR(CheckSddmm(args).status());
  RETURN_IF_ERROR(CheckWork(SddmmWork(args), ctx.max_request_work, "Sddmm"));
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(const Tensor values, ctx.backend->Sddmm(args));
  response->set_elapsed_ms(MillisecondsSince(start));
  // The backend returns the values in the pattern's order; the client gets a
  // CSR tensor with the pattern's structure (index arrays shared: held
  // tensors are immutable).
  ASSIGN_OR_RETURN(Tensor result, pattern->tensor.WithValues(values));
  return DeliverResult(ctx, caller, std::move(result), req.output(), response);
}

absl::Status DoDenseMatmul(ServiceContext& ctx, const Caller& caller,
                           const v1::DenseMatmulRequest& req, v1::OpResult* response) {
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  RETURN_IF_ERROR(CheckOutput(ctx, caller, req.output()));
  const Device device = ctx.backend->device();
  ASSIGN_OR_RETURN(TensorPtr a, ResolveOperand(ctx.store, caller, req.a(), "a", device));
  ASSIGN_OR_RETURN(TensorPtr b, ResolveOperand(ctx.store, caller, req.b(), "b", device));
  DenseMatmulArgs args;
  args.a = &a->tensor;
  args.b = &b->tensor;
  args.transpose_a = req.transpose_a();
  args.transpose_b = req.transpose_b();
  args.row_begin = req.row_begin();
  args.row_end = RowEndFrom(req.row_end());
  RETURN_IF_ERROR(CheckDenseMatmul(args).status());
  RETURN_IF_ERROR(CheckWork(DenseMatmulWork(args), ctx.max_request_work, "DenseMatmul"));
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Tensor result, ctx.backend->DenseMatmul(args));
  response->set_elapsed_ms(MillisecondsSince(start));
  return DeliverResult(ctx, caller, std::move(result), req.output(), response);
}

}  // namespace

grpc::Status TrainingService::CreateLayer(grpc::ServerContext* rpc,
                                          const v1::CreateLayerRequest* request,
                                          v1::LayerInfo* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) {
    return DoCreateLayer(ctx_, caller, *request, response);
  });
}

grpc::Status TrainingService::GetLayer(grpc::ServerContext* rpc, const v1::LayerRef* request,
                                       v1::LayerInfo* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    ASSIGN_OR_RETURN(const LayerPtr layer, ResolveLayer(ctx_.layers, caller, *request));
    std::lock_guard lock(layer->mu);
    *response = DescribeLayer(*layer, DeviceName(ctx_));
    return absl::OkStatus();
  });
}

grpc::Status TrainingService::ListLayers(grpc::ServerContext* rpc, const v1::ListLayersRequest*,
                                         v1::ListLayersResponse* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) {
    const std::string device = DeviceName(ctx_);
    for (const LayerPtr& layer : ctx_.layers.List(caller.tenant)) {
      std::lock_guard lock(layer->mu);
      *response->add_layers() = DescribeLayer(*layer, device);
    }
    return absl::OkStatus();
  });
}

grpc::Status TrainingService::DeleteLayer(grpc::ServerContext* rpc, const v1::LayerRef* request,
                                          v1::DeleteLayerResponse*) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    ASSIGN_OR_RETURN(const LayerPtr layer, ResolveLayer(ctx_.layers, caller, *request));
    ASSIGN_OR_RETURN(const LayerPtr erased, ctx_.layers.EraseById(caller.tenant, layer->id));
    spdlog::info("layer {} deleted", erased->id);
    return absl::OkStatus();
  });
}

grpc::Status TrainingService::Forward(grpc::ServerContext* rpc, const v1::ForwardRequest* request,
                                      v1::ForwardResponse* response) {
  return Serve(ctx_, rpc,
               [&](const Caller& caller) { return DoForward(ctx_, caller, *request, response); });
}

grpc::Status TrainingService::Backward(grpc::ServerContext* rpc, const v1::BackwardRequest* request,
                                       v1::BackwardResponse* response) {
  return Serve(ctx_, rpc,
               [&](const Caller& caller) { return DoBackward(ctx_, caller, *request, response); });
}

grpc::Status TrainingService::ForgetCall(grpc::ServerContext* rpc,
                                         const v1::ForgetCallRequest* request,
                                         v1::ForgetCallResponse*) {
  return Serve(ctx_, rpc,
               [&](const Caller& caller) { return DoForgetCall(ctx_, caller, *request); });
}

grpc::Status TrainingService::Step(grpc::ServerContext* rpc, const v1::StepRequest* request,
                                   v1::StepResponse* response) {
  return Serve(ctx_, rpc,
               [&](const Caller& caller) { return DoStep(ctx_, caller, *request, response); });
}

grpc::Status TrainingService::DenseGradient(grpc::ServerContext* rpc,
                                            const v1::DenseGradientRequest* request,
                                            v1::OpResult* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) {
    return DoDenseGradient(ctx_, caller, *request, response);
  });
}

grpc::Status TrainingService::GetParameter(grpc::ServerContext* rpc,
                                           const v1::GetParameterRequest* request,
                                           v1::OpResult* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) {
    return DoGetParameter(ctx_, caller, *request, response);
  });
}

grpc::Status TrainingOpsService::Sddmm(grpc::ServerContext* rpc, const v1::SddmmRequest* request,
                                       v1::OpResult* response) {
  return Serve(ctx_, rpc,
               [&](const Caller& caller) { return DoSddmm(ctx_, caller, *request, response); });
}

grpc::Status TrainingOpsService::DenseMatmul(grpc::ServerContext* rpc,
                                             const v1::DenseMatmulRequest* request,
                                             v1::OpResult* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) {
    return DoDenseMatmul(ctx_, caller, *request, response);
  });
}

}  // namespace sparsed::server
