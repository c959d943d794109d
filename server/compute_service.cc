#include "server/compute_service.h"

#include <chrono>
#include <cmath>

#include "server/status_util.h"
#include "server/tensor_access.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

// Admission control: at most max_inflight_compute calls compute at once;
// the rest are told to come back rather than queued without bound.
class ComputeSlot {
 public:
  explicit ComputeSlot(ServiceContext& ctx) : ctx_(ctx) {
    admitted_ = ctx_.inflight_compute.fetch_add(1) < ctx_.config.max_inflight_compute;
  }
  ~ComputeSlot() { ctx_.inflight_compute.fetch_sub(1); }
  absl::Status status() const {
    if (admitted_) return absl::OkStatus();
    return absl::ResourceExhaustedError(
        StrCat("server busy: ", ctx_.config.max_inflight_compute,
               " compute calls are already running (max_inflight_compute); retry later"));
  }

 private:
  ServiceContext& ctx_;
  bool admitted_;
};

// Hands a result to the client the way it asked: held (new handle) or inline.
absl::Status DeliverResult(ServiceContext& ctx, Tensor result, const v1::Output& output,
                           v1::OpResult* response) {
  if (output.inline_()) {
    // Leave room for the envelope of the message.
    const int64_t limit = ctx.config.max_message_bytes - 4096;
    if (result.bytes() > limit) {
      return absl::ResourceExhaustedError(StrCat(
          "the result is ", result.bytes(), " bytes, more than an inline response may carry (",
          limit, "); ask for a held result (output.inline = false) and download it"));
    }
    // Inline results travel from host memory; held ones stay on the device.
    ASSIGN_OR_RETURN(const Tensor host, MoveToDevice(std::move(result), Device::Cpu()));
    ASSIGN_OR_RETURN(*response->mutable_inline_(), api::ToInline(host));
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(CheckNameAndLabels(output.name(), output.labels(), "output"));
  ASSIGN_OR_RETURN(TensorPtr stored,
                   ctx.store.Insert(std::move(result), output.name(), ToStdMap(output.labels())));
  *response->mutable_tensor() = DescribeTensor(*stored);
  return absl::OkStatus();
}

absl::Status DoSpmm(ServiceContext& ctx, const v1::SpmmRequest& req, v1::OpResult* response) {
  ComputeSlot slot(ctx);
  RETURN_IF_ERROR(slot.status());
  if (!req.output().inline_()) {
    RETURN_IF_ERROR(ctx.store.CheckNameFree(req.output().name()));
  }
  const Device device = ctx.backend->device();
  ASSIGN_OR_RETURN(TensorPtr a, ResolveOperand(ctx.store, req.a(), "a", device));
  ASSIGN_OR_RETURN(TensorPtr b, ResolveOperand(ctx.store, req.b(), "b", device));
  TensorPtr c, bias;
  if (req.has_c()) {
    ASSIGN_OR_RETURN(c, ResolveOperand(ctx.store, req.c(), "c", device));
  }
  if (req.epilogue().has_bias()) {
    ASSIGN_OR_RETURN(bias,
                     ResolveOperand(ctx.store, req.epilogue().bias(), "epilogue.bias", device));
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

  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Tensor result, ctx.backend->Spmm(args));
  response->set_elapsed_ms(
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  return DeliverResult(ctx, std::move(result), req.output(), response);
}

}  // namespace

grpc::Status ComputeService::Spmm(grpc::ServerContext*, const v1::SpmmRequest* request,
                                  v1::OpResult* response) {
  return ToGrpc(DoSpmm(ctx_, *request, response));
}

}  // namespace sparsed::server
