// sparsed.v1.Compute: SpMM, format conversion, transposition, pruning.
#pragma once

#include "server/service_context.h"
#include "sparsed/v1/compute.grpc.pb.h"

namespace sparsed::server {

class ComputeService final : public v1::Compute::Service {
 public:
  explicit ComputeService(ServiceContext& ctx) : ctx_(ctx) {}

  grpc::Status Spmm(grpc::ServerContext* context, const v1::SpmmRequest* request,
                    v1::OpResult* response) override;
  grpc::Status Convert(grpc::ServerContext* context, const v1::ConvertRequest* request,
                       v1::OpResult* response) override;
  grpc::Status Transpose(grpc::ServerContext* context, const v1::TransposeRequest* request,
                         v1::OpResult* response) override;
  grpc::Status Prune(grpc::ServerContext* context, const v1::PruneRequest* request,
                     v1::OpResult* response) override;

 private:
  ServiceContext& ctx_;
};

}  // namespace sparsed::server
