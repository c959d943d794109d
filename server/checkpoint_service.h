// sparsed.v1.Checkpoints: save, restore, list and delete checkpoints.
#pragma once

#include "server/service_context.h"
#include "sparsed/v1/checkpoint.grpc.pb.h"

namespace sparsed::server {

class CheckpointService final : public v1::Checkpoints::Service {
 public:
  explicit CheckpointService(ServiceContext& ctx) : ctx_(ctx) {}

  grpc::Status SaveCheckpoint(grpc::ServerContext* context,
                              const v1::SaveCheckpointRequest* request,
                              v1::SaveCheckpointResponse* response) override;
  grpc::Status RestoreCheckpoint(grpc::ServerContext* context,
                                 const v1::RestoreCheckpointRequest* request,
                                 v1::RestoreCheckpointResponse* response) override;
  grpc::Status ListCheckpoints(grpc::ServerContext* context,
                               const v1::ListCheckpointsRequest* request,
                               v1::ListCheckpointsResponse* response) override;
  grpc::Status DeleteCheckpoint(grpc::ServerContext* context,
                                const v1::DeleteCheckpointRequest* request,
                                v1::DeleteCheckpointResponse* response) override;

 private:
  ServiceContext& ctx_;
};

}  // namespace sparsed::server
