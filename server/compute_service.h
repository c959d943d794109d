// sparsed.v1.Compute: SpMM (more ops to come).
#pragma once

#include "server/service_context.h"
#include "sparsed/v1/compute.grpc.pb.h"

namespace sparsed::server {

class ComputeService final : public v1::Compute::Service {
 public:
  explicit ComputeService(ServiceContext& ctx) : ctx_(ctx) {}

  grpc::Status Spmm(grpc::ServerContext* context, const v1::SpmmRequest* request,
                    v1::OpResult* response) override;

 private:
  ServiceContext& ctx_;
};

}  // namespace sparsed::server
