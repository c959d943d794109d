#include "server/compute_service.h"

#include <chrono>
#include <cmath>
#include <utility>

#include "server/compute_slot.h"
#include "server/op_requests.h"
#include "server/op_result.h"
#include "server/request_cost.h"
#include "server/serve.h"
#include "server/status_util.h"
#include "server/tensor_access.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

absl::Status DoSpmm(ServiceContext& ctx, const Caller& caller, const v1::SpmmRequest& req,
                    v1::OpResult* response) {
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  if (!req.output().inline_()) {
    RETURN_IF_ERROR(ctx.store.CheckNameFree(caller.tenant, req.output().name()));
  }
  const Device device = ctx.backend->device();
  ASSIGN_OR_RETURN(TensorPtr a, ResolveOperand(ctx.store, caller, req.a(), "a", device));
  ASSIGN_OR_RETURN(TensorPtr b, ResolveOperand(ctx.store, caller, req.b(), "b", device));
  TensorPtr c, bias;
  if (req.has_c()) {
    ASSIGN_OR_RETURN(c, ResolveOperand(ctx.store, caller, req.c(), "c", device));
  }
  if (req.epilogue().has_bias()) {
    ASSIGN_OR_RETURN(
        bias, ResolveOperand(ctx.store, caller, req.epilogue().bias(), "epilogue.bias", device));
  }
  SpmmArgs args;
  args.a = &a->tensor;
  args.b = &b->tensor;
  args.transpose_a = req.transpose_a();
  args.transpose_b = req.transpose_b();
  args.alpha = req.has_alpha() ? req.alpha() : 1.0f;
  args.beta = req.beta();
  args.c = c ? &c->tensor : nullptr;
  args.epilogue.bias = bias ? &bias->tensor : nullptr;
  args.epilogue.relu = req.epilogue().relu();
  if (req.epilogue().has_clamp_max()) args.epilogue.clamp_max = req.epilogue().clamp_max();
  ASSIGN_OR_RETURN(args.out_dtype,
                   SpmmOutDType(req, a->tensor.desc().dtype, b->tensor.desc().dtype));
  RETURN_IF_ERROR(CheckSpmm(args).status());
  RETURN_IF_ERROR(CheckWork(SpmmWork(args), ctx.max_request_work, "Spmm"));

  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Tensor result, ctx.backend->Spmm(args));
  response->set_elapsed_ms(MillisecondsSince(start));
  return DeliverResult(ctx, caller, std::move(result), req.output(), response);
}

// The common shape of the one-source ops (Convert, Transpose, Prune): admit,
// check the output name, resolve the source on the backend's device, compute
// `op(source)` into a new tensor and deliver it. The source stays as it is.
// result_entries(desc) bounds the entries of the result (the cost estimate).
template <class Entries, class Op>
absl::Status RunUnaryOp(ServiceContext& ctx, const Caller& caller, std::string_view what,
                        const v1::Operand& source, const v1::Output& output, v1::OpResult* response,
                        Entries&& result_entries, Op&& op) {
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  if (!output.inline_()) {
    RETURN_IF_ERROR(CheckNameAndLabels(output.name(), output.labels(), "output"));
    RETURN_IF_ERROR(ctx.store.CheckNameFree(caller.tenant, output.name()));
  }
  ASSIGN_OR_RETURN(TensorPtr src,
                   ResolveOperand(ctx.store, caller, source, "source", ctx.backend->device()));
  const TensorDesc& d = src->tensor.desc();
  RETURN_IF_ERROR(CheckWork(UnaryWork(d, result_entries(d)), ctx.max_request_work, what));
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Tensor result, op(src->tensor));
  response->set_elapsed_ms(MillisecondsSince(start));
  return DeliverResult(ctx, caller, std::move(result), output, response);
}

}  // namespace

grpc::Status ComputeService::Convert(grpc::ServerContext* rpc, const v1::ConvertRequest* request,
                                     v1::OpResult* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) {
    return RunUnaryOp(
        ctx_, caller, "Convert", request->source(), request->output(), response,
        [&](const TensorDesc& d) {
          const auto& block = request->block();
          return ConvertedEntries(d, static_cast<Format>(request->to()),
                                  block.empty() ? 1 : block[0], block.size() > 1 ? block[1] : 0);
        },
        [&](const Tensor& src) -> absl::StatusOr<Tensor> {
          ASSIGN_OR_RETURN(const ConvertOptions options, ConvertOptionsFrom(*request, src.desc()));
          return ctx_.backend->Convert(src, static_cast<Format>(request->to()), options);
        });
  });
}

grpc::Status ComputeService::Transpose(grpc::ServerContext* rpc,
                                       const v1::TransposeRequest* request,
                                       v1::OpResult* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) {
    return RunUnaryOp(ctx_, caller, "Transpose", request->source(), request->output(), response,
                      StoredWork, [&](const Tensor& src) { return ctx_.backend->Transpose(src); });
  });
}

grpc::Status ComputeService::Prune(grpc::ServerContext* rpc, const v1::PruneRequest* request,
                                   v1::OpResult* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) {
    return RunUnaryOp(ctx_, caller, "Prune", request->source(), request->output(), response,
                      StoredWork,  // a pruned result keeps at most what there is
                      [&](const Tensor& src) -> absl::StatusOr<Tensor> {
                        ASSIGN_OR_RETURN(const PruneOptions options,
                                         PruneOptionsFrom(*request, src.desc()));
                        return ctx_.backend->Prune(src, options);
                      });
  });
}

grpc::Status ComputeService::Spmm(grpc::ServerContext* rpc, const v1::SpmmRequest* request,
                                  v1::OpResult* response) {
  return Serve(ctx_, rpc,
               [&](const Caller& caller) { return DoSpmm(ctx_, caller, *request, response); });
}

}  // namespace sparsed::server
