// C++ client of the sparsed daemon: a thin, typed wrapper over the gRPC stubs
// that streams tensors in and out without extra full copies.
#pragma once

#include <grpcpp/channel.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/tensor.h"
#include "sparsed/v1/admin.grpc.pb.h"
#include "sparsed/v1/checkpoint.grpc.pb.h"
#include "sparsed/v1/compute.grpc.pb.h"
#include "sparsed/v1/graph.grpc.pb.h"
#include "sparsed/v1/tensors.grpc.pb.h"
#include "sparsed/v1/training.grpc.pb.h"

namespace sparsed::client {

// Conversions between kernel types and protos live in sparsed::api
// (sparsed/api/proto_convert.h); re-exported here for convenience.
using api::FromInline;
using api::FromProto;
using api::ToInline;
using api::ToProto;

inline constexpr int64_t kMiB = int64_t{1} << 20;

struct ConnectOptions {
  // > 0: Connect waits up to this long for the channel to become ready and
  // fails with UNAVAILABLE otherwise (at once if the connection is refused).
  // 0: connect lazily on the first call.
  double connect_timeout_seconds = 0;
  // > 0: deadline of every call (for Upload/Download: of the whole stream).
  double rpc_timeout_seconds = 0;
  // Largest message received or sent (the server's default limit is 64 MiB;
  // leave headroom for the envelope around inline data).
  int max_message_bytes = static_cast<int>(65 * kMiB);

  // Sent on every call as metadata "authorization: Bearer TOKEN" (empty: none).
  // Over a plaintext channel anyone on the path can read it: use TLS off loopback.
  std::string token;
  // TLS. The channel is encrypted when `tls` is true or any tls_*_file is set.
  // tls_ca_file: PEM CA bundle that the server's certificate must chain to
  // (empty: gRPC's default roots). tls_cert_file + tls_key_file: a PEM client
  // certificate and its key, for servers that require mutual TLS.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Checks the server's certificate against this name instead of the host of
  // the address (e.g. connecting to an IP with a certificate for a DNS name).
  std::string tls_server_name;

  // Lifetime of the tensors the client's calls create (docs/API.md,
  // "Lifetimes"): > 0 sends metadata "sparsed-ttl-seconds", so the daemon
  // releases each that many seconds after creating it.
  int64_t ttl_seconds = 0;

  // true: a connection of its own even when the process has other clients
  // of the same address (by default gRPC shares one): load tests.
  bool own_connection = false;
};

// Called after each chunk with bytes transferred so far and the total.
using ProgressFn = std::function<void(int64_t done, int64_t total)>;

struct UploadOptions {
  std::string name;  // optional; unique among held tensors
  std::map<std::string, std::string> labels;
  bool sort_and_sum_duplicates = false;
  int64_t chunk_bytes = kMiB;  // clamped to [4 KiB, 1 MiB]
  ProgressFn progress;
};

// "t-" + 16 lower-case hex digits is an id; anything else is a name.
bool LooksLikeId(const std::string& arg);
v1::TensorRef RefFromArg(const std::string& arg);
// "l-" + 16 lower-case hex digits is a layer id; anything else is a name.
bool LooksLikeLayerId(const std::string& arg);
v1::LayerRef LayerRefFromArg(const std::string& arg);
// The id or name a ref holds, for messages.
std::string RefToString(const v1::TensorRef& ref);

class Client {
 public:
  // Creates a channel to `address` ("host:port", "unix:/path"): TLS as
  // `options` say, else plaintext. INVALID_ARGUMENT naming the option (and
  // path) for an unreadable TLS file, a certificate without its key, or a
  // token that cannot be sent as a header value.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& address,
                                                         ConnectOptions options = {});
  // Wraps an existing channel (e.g. an in-process one in tests).
  Client(std::shared_ptr<grpc::Channel> channel, ConnectOptions options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // Streams a host tensor's components straight from its buffers.
  absl::StatusOr<v1::TensorInfo> Upload(const Tensor& tensor, const UploadOptions& options = {});

  // Allocates a host tensor from the header's desc and copies each chunk into
  // place, checking that chunks arrive contiguously and within bounds.
  // chunk_bytes 0: the server's default.
  absl::StatusOr<std::pair<v1::TensorInfo, Tensor>> Download(const v1::TensorRef& ref,
                                                             const ProgressFn& progress = {},
                                                             int64_t chunk_bytes = 0);

  absl::StatusOr<v1::TensorInfo> Create(const v1::CreateRequest& request);
  absl::StatusOr<v1::TensorInfo> GetInfo(const v1::TensorRef& ref);
  absl::StatusOr<v1::ListResponse> List(const std::string& name_prefix = "");
  absl::StatusOr<v1::DeleteResponse> Delete(const v1::TensorRef& ref);
  absl::StatusOr<v1::OpResult> Spmm(const v1::SpmmRequest& request);
  // A new tensor from a source: in another format, transposed, or pruned.
  absl::StatusOr<v1::OpResult> Convert(const v1::ConvertRequest& request);
  absl::StatusOr<v1::OpResult> Transpose(const v1::TransposeRequest& request);
  absl::StatusOr<v1::OpResult> Prune(const v1::PruneRequest& request);
  // Statistics of a held tensor and, when asked for, its spy grid.
  absl::StatusOr<v1::InspectResponse> Inspect(const v1::InspectRequest& request);
  absl::StatusOr<v1::StatusResponse> GetStatus();

  // The daemon's tune database.
  absl::StatusOr<v1::ListTuneResponse> ListTune();
  // The database as JSON text ({"version": 1, "entries": [...]}).
  absl::StatusOr<std::string> ExportTune();
  // Merges JSON text in the ExportTune format; INVALID_ARGUMENT naming the
  // bad entry and field, nothing imported, when malformed.
  absl::StatusOr<v1::ImportTuneResponse> ImportTune(const std::string& json);
  // Removes every entry; returns how many were removed.
  absl::StatusOr<int64_t> ClearTune();

  // The backend's JIT kernel cache (<data_dir>/kernels on the daemon).
  absl::StatusOr<v1::ListKernelsResponse> ListKernels();
  // Removes every compiled kernel; returns how many were removed.
  absl::StatusOr<int64_t> ClearKernels();
  // Compiles the kernels of a spec list ({"kernels": [{"kernel": NAME,
  // "params": {...}}]}) ahead of time. INVALID_ARGUMENT naming the entry and
  // field when malformed; FAILED_PRECONDITION on a backend without JIT (cpu).
  absl::StatusOr<v1::WarmKernelsResponse> WarmKernels(const std::string& json);

  // Checkpoints (<data_dir>/checkpoints/NAME.safetensors on the daemon).
  // Saves the given tensors, or every held tensor when `tensors` is empty.
  absl::StatusOr<v1::SaveCheckpointResponse> SaveCheckpoint(
      const std::string& name, const std::vector<v1::TensorRef>& tensors = {});
  // Adds the checkpoint's tensors under new ids, all or none (ALREADY_EXISTS
  // when a name is held already).
  absl::StatusOr<v1::RestoreCheckpointResponse> RestoreCheckpoint(const std::string& name);
  absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints();
  absl::Status DeleteCheckpoint(const std::string& name);

  // Training: sparse layers held in the daemon (sparsed/v1/training.proto).
  absl::StatusOr<v1::LayerInfo> CreateLayer(const v1::CreateLayerRequest& request);
  absl::StatusOr<v1::LayerInfo> GetLayer(const v1::LayerRef& layer);
  absl::StatusOr<v1::ListLayersResponse> ListLayers();
  absl::Status DeleteLayer(const v1::LayerRef& layer);
  absl::StatusOr<v1::ForwardResponse> Forward(const v1::ForwardRequest& request);
  absl::StatusOr<v1::BackwardResponse> Backward(const v1::BackwardRequest& request);
  absl::Status ForgetCall(const v1::LayerRef& layer, const std::string& call_id);
  absl::StatusOr<v1::StepResponse> Step(const v1::StepRequest& request);
  absl::StatusOr<v1::OpResult> DenseGradient(const v1::DenseGradientRequest& request);
  // "weight" (CSR), "bias", "weight_grad" or "bias_grad" as a host tensor.
  absl::StatusOr<Tensor> GetParameter(const v1::LayerRef& layer, const std::string& parameter);
  // Stateless training ops on tensors.
  absl::StatusOr<v1::OpResult> Sddmm(const v1::SddmmRequest& request);
  absl::StatusOr<v1::OpResult> DenseMatmul(const v1::DenseMatmulRequest& request);

  // Graphs.Run: a whole op graph in one call (docs/API.md, "Graphs"); the
  // results in the order of request.outputs, per-op and total times.
  absl::StatusOr<v1::RunResponse> Run(const v1::RunRequest& request);

 private:
  // Applies the per-call deadline and the bearer token, if any.
  void Prepare(grpc::ClientContext& ctx) const;
  template <class Stub, class Req, class Resp>
  absl::StatusOr<Resp> Unary(Stub& stub,
                             grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                             const Req& request) const;

  std::shared_ptr<grpc::Channel> channel_;
  ConnectOptions options_;
  std::unique_ptr<v1::Tensors::Stub> tensors_;
  std::unique_ptr<v1::Compute::Stub> compute_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<v1::Checkpoints::Stub> checkpoints_;
  std::unique_ptr<v1::Training::Stub> training_;
  std::unique_ptr<v1::TrainingOps::Stub> training_ops_;
  std::unique_ptr<v1::Graphs::Stub> graphs_;
};

}  // namespace sparsed::client
