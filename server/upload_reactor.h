// Tensors.Upload on gRPC's callback API. A reactor per call takes each
// message as it arrives and holds no thread while its client is silent, so
// thousands of stalled uploads cost memory for their reactors, not threads
// (issue 17: 5,000 stalled streams held 5,020 threads). The contract of the
// upload is that of docs/API.md: a header, then chunks straight into the
// allocated tensor, validation, then the tensor is held.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/statusor.h"
#include "server/service_context.h"
#include "server/tensor_store.h"
#include "sparsed/v1/tensors.grpc.pb.h"

namespace sparsed::server {

// Starts the reactor of one Upload call (gRPC owns it until OnDone).
grpc::ServerReadReactor<v1::UploadRequest>* StartUpload(ServiceContext& ctx,
                                                        grpc::CallbackServerContext* rpc,
                                                        v1::TensorInfo* response);

// Validates and optionally canonicalises (on the host) a freshly received
// tensor `t`, moves it to the backend's device and stores it as `caller`'s
// (shared by Upload and Create).
absl::StatusOr<TensorPtr> AdmitReceived(
    ServiceContext& ctx, const Caller& caller, Tensor t, bool sort_and_sum, const std::string& name,
    const google::protobuf::Map<std::string, std::string>& labels, std::string_view field);

}  // namespace sparsed::server
