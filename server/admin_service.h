// sparsed.v1.Admin: daemon status.
#pragma once

#include "server/service_context.h"
#include "sparsed/v1/admin.grpc.pb.h"

namespace sparsed::server {

class AdminService final : public v1::Admin::Service {
 public:
  explicit AdminService(ServiceContext& ctx) : ctx_(ctx) {}

  grpc::Status GetStatus(grpc::ServerContext* context, const v1::StatusRequest* request,
                         v1::StatusResponse* response) override;

 private:
  ServiceContext& ctx_;
};

}  // namespace sparsed::server
