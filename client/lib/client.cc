#include "sparsed/client/client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <chrono>

#include "credentials.h"
#include "sparsed/client/grpc_status.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client {
namespace {

std::chrono::system_clock::time_point DeadlineIn(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             std::chrono::duration<double>(seconds));
}

// Waits until the channel is READY; a refused connection (TRANSIENT_FAILURE)
// fails at once rather than retrying until the deadline.
absl::Status WaitForReady(grpc::Channel& channel, const std::string& address, double seconds) {
  const auto deadline = DeadlineIn(seconds);
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return absl::UnavailableError(StrCat("cannot connect to sparsed at ", address));
    }
    if (!channel.WaitForStateChange(state, deadline)) {
      return absl::UnavailableError(
          StrCat("cannot connect to sparsed at ", address, " within ", seconds, " s"));
    }
    state = channel.GetState(/*try_to_connect=*/true);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& address,
                                                        ConnectOptions options) {
  if (address.empty()) return absl::InvalidArgumentError("empty server address");
  RETURN_IF_ERROR(internal::CheckToken(options.token));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   internal::MakeChannelCredentials(options));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  // A private subchannel pool: this client's own connection, not one shared
  // with other clients of the process to the same address.
  if (options.own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(address, credentials, args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(StrCat("cannot create a channel to '", address, "'"));
  }
  if (options.connect_timeout_seconds > 0) {
    absl::Status s = WaitForReady(*channel, address, options.connect_timeout_seconds);
    if (!s.ok()) return s;
  }
  return std::make_unique<Client>(std::move(channel), options);
}

Client::Client(std::shared_ptr<grpc::Channel> channel, ConnectOptions options)
    : channel_(std::move(channel)),
      options_(options),
      tensors_(v1::Tensors::NewStub(channel_)),
      compute_(v1::Compute::NewStub(channel_)),
      admin_(v1::Admin::NewStub(channel_)),
      checkpoints_(v1::Checkpoints::NewStub(channel_)),
      training_(v1::Training::NewStub(channel_)),
      training_ops_(v1::TrainingOps::NewStub(channel_)),
      graphs_(v1::Graphs::NewStub(channel_)) {}

void Client::Prepare(grpc::ClientContext& ctx) const {
  if (options_.rpc_timeout_seconds > 0) ctx.set_deadline(DeadlineIn(options_.rpc_timeout_seconds));
  if (!options_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.token);
  if (options_.ttl_seconds > 0) {
    ctx.AddMetadata("sparsed-ttl-seconds", std::to_string(options_.ttl_seconds));
  }
}

// Runs one unary call of STUB with this client's deadline and converts its status.
template <class Stub, class Req, class Resp>
absl::StatusOr<Resp> Client::Unary(Stub& stub,
                                   grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&,
                                                                Resp*),
                                   const Req& request) const {
  grpc::ClientContext ctx;
  Prepare(ctx);
  Resp resp;
  grpc::Status s = (stub.*method)(&ctx, request, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp;
}

absl::StatusOr<v1::TensorInfo> Client::Create(const v1::CreateRequest& request) {
  return Unary(*tensors_, &v1::Tensors::Stub::Create, request);
}

absl::StatusOr<v1::TensorInfo> Client::GetInfo(const v1::TensorRef& ref) {
  return Unary(*tensors_, &v1::Tensors::Stub::GetInfo, ref);
}

absl::StatusOr<v1::ListResponse> Client::List(const std::string& name_prefix) {
  v1::ListRequest req;
  req.set_name_prefix(name_prefix);
  return Unary(*tensors_, &v1::Tensors::Stub::List, req);
}

absl::StatusOr<v1::DeleteResponse> Client::Delete(const v1::TensorRef& ref) {
  return Unary(*tensors_, &v1::Tensors::Stub::Delete, ref);
}

absl::StatusOr<v1::OpResult> Client::Spmm(const v1::SpmmRequest& request) {
  return Unary(*compute_, &v1::Compute::Stub::Spmm, request);
}

absl::StatusOr<v1::OpResult> Client::Convert(const v1::ConvertRequest& request) {
  return Unary(*compute_, &v1::Compute::Stub::Convert, request);
}

absl::StatusOr<v1::OpResult> Client::Transpose(const v1::TransposeRequest& request) {
  return Unary(*compute_, &v1::Compute::Stub::Transpose, request);
}

absl::StatusOr<v1::OpResult> Client::Prune(const v1::PruneRequest& request) {
  return Unary(*compute_, &v1::Compute::Stub::Prune, request);
}

absl::StatusOr<v1::InspectResponse> Client::Inspect(const v1::InspectRequest& request) {
  return Unary(*tensors_, &v1::Tensors::Stub::Inspect, request);
}

absl::StatusOr<v1::StatusResponse> Client::GetStatus() {
  return Unary(*admin_, &v1::Admin::Stub::GetStatus, v1::StatusRequest());
}

absl::StatusOr<v1::ListTuneResponse> Client::ListTune() {
  return Unary(*admin_, &v1::Admin::Stub::ListTune, v1::ListTuneRequest());
}

absl::StatusOr<std::string> Client::ExportTune() {
  absl::StatusOr<v1::ExportTuneResponse> r =
      Unary(*admin_, &v1::Admin::Stub::ExportTune, v1::ExportTuneRequest());
  if (!r.ok()) return r.status();
  return std::move(*r->mutable_json());
}

absl::StatusOr<v1::ImportTuneResponse> Client::ImportTune(const std::string& json) {
  v1::ImportTuneRequest req;
  req.set_json(json);
  return Unary(*admin_, &v1::Admin::Stub::ImportTune, req);
}

absl::StatusOr<int64_t> Client::ClearTune() {
  absl::StatusOr<v1::ClearTuneResponse> r =
      Unary(*admin_, &v1::Admin::Stub::ClearTune, v1::ClearTuneRequest());
  if (!r.ok()) return r.status();
  return r->removed();
}

absl::StatusOr<v1::ListKernelsResponse> Client::ListKernels() {
  return Unary(*admin_, &v1::Admin::Stub::ListKernels, v1::ListKernelsRequest());
}

absl::StatusOr<int64_t> Client::ClearKernels() {
  absl::StatusOr<v1::ClearKernelsResponse> r =
      Unary(*admin_, &v1::Admin::Stub::ClearKernels, v1::ClearKernelsRequest());
  if (!r.ok()) return r.status();
  return r->removed();
}

absl::StatusOr<v1::WarmKernelsResponse> Client::WarmKernels(const std::string& json) {
  v1::WarmKernelsRequest req;
  req.set_json(json);
  return Unary(*admin_, &v1::Admin::Stub::WarmKernels, req);
}

absl::StatusOr<v1::SaveCheckpointResponse> Client::SaveCheckpoint(
    const std::string& name, const std::vector<v1::TensorRef>& tensors) {
  v1::SaveCheckpointRequest req;
  req.set_name(name);
  for (const v1::TensorRef& t : tensors) *req.add_tensors() = t;
  return Unary(*checkpoints_, &v1::Checkpoints::Stub::SaveCheckpoint, req);
}

absl::StatusOr<v1::RestoreCheckpointResponse> Client::RestoreCheckpoint(const std::string& name) {
  v1::RestoreCheckpointRequest req;
  req.set_name(name);
  return Unary(*checkpoints_, &v1::Checkpoints::Stub::RestoreCheckpoint, req);
}

absl::StatusOr<v1::ListCheckpointsResponse> Client::ListCheckpoints() {
  return Unary(*checkpoints_, &v1::Checkpoints::Stub::ListCheckpoints,
               v1::ListCheckpointsRequest());
}

absl::Status Client::DeleteCheckpoint(const std::string& name) {
  v1::DeleteCheckpointRequest req;
  req.set_name(name);
  return Unary(*checkpoints_, &v1::Checkpoints::Stub::DeleteCheckpoint, req).status();
}

absl::StatusOr<v1::LayerInfo> Client::CreateLayer(const v1::CreateLayerRequest& request) {
  return Unary(*training_, &v1::Training::Stub::CreateLayer, request);
}

absl::StatusOr<v1::LayerInfo> Client::GetLayer(const v1::LayerRef& layer) {
  return Unary(*training_, &v1::Training::Stub::GetLayer, layer);
}

absl::StatusOr<v1::ListLayersResponse> Client::ListLayers() {
  return Unary(*training_, &v1::Training::Stub::ListLayers, v1::ListLayersRequest());
}

absl::Status Client::DeleteLayer(const v1::LayerRef& layer) {
  return Unary(*training_, &v1::Training::Stub::DeleteLayer, layer).status();
}

absl::StatusOr<v1::ForwardResponse> Client::Forward(const v1::ForwardRequest& request) {
  return Unary(*training_, &v1::Training::Stub::Forward, request);
}

absl::StatusOr<v1::BackwardResponse> Client::Backward(const v1::BackwardRequest& request) {
  return Unary(*training_, &v1::Training::Stub::Backward, request);
}

absl::Status Client::ForgetCall(const v1::LayerRef& layer, const std::string& call_id) {
  v1::ForgetCallRequest req;
  *req.mutable_layer() = layer;
  req.set_call_id(call_id);
  return Unary(*training_, &v1::Training::Stub::ForgetCall, req).status();
}

absl::StatusOr<v1::StepResponse> Client::Step(const v1::StepRequest& request) {
  return Unary(*training_, &v1::Training::Stub::Step, request);
}

absl::StatusOr<v1::OpResult> Client::DenseGradient(const v1::DenseGradientRequest& request) {
  return Unary(*training_, &v1::Training::Stub::DenseGradient, request);
}

absl::StatusOr<Tensor> Client::GetParameter(const v1::LayerRef& layer,
                                            const std::string& parameter) {
  v1::GetParameterRequest req;
  *req.mutable_layer() = layer;
  req.set_parameter(parameter);
  absl::StatusOr<v1::OpResult> r = Unary(*training_, &v1::Training::Stub::GetParameter, req);
  if (!r.ok()) return r.status();
  if (!r->has_inline_()) return absl::InternalError("GetParameter answered without a tensor");
  return FromInline(r->inline_(), parameter);
}

absl::StatusOr<v1::OpResult> Client::Sddmm(const v1::SddmmRequest& request) {
  return Unary(*training_ops_, &v1::TrainingOps::Stub::Sddmm, request);
}

absl::StatusOr<v1::OpResult> Client::DenseMatmul(const v1::DenseMatmulRequest& request) {
  return Unary(*training_ops_, &v1::TrainingOps::Stub::DenseMatmul, request);
}

absl::StatusOr<v1::RunResponse> Client::Run(const v1::RunRequest& request) {
  return Unary(*graphs_, &v1::Graphs::Stub::Run, request);
}

}  // namespace sparsed::client
