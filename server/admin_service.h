// sparsed.v1.Admin: daemon status, the tune database and the JIT kernel cache.
#pragma once

#include "server/service_context.h"
#include "sparsed/v1/admin.grpc.pb.h"

namespace sparsed::server {

class AdminService final : public v1::Admin::Service {
 public:
  explicit AdminService(ServiceContext& ctx) : ctx_(ctx) {}

  grpc::Status GetStatus(grpc::ServerContext* context, const v1::StatusRequest* request,
                         v1::StatusResponse* response) override;

  // The tune database; FAILED_PRECONDITION when the daemon has none.
  grpc::Status ListTune(grpc::ServerContext* context, const v1::ListTuneRequest* request,
                        v1::ListTuneResponse* response) override;
  grpc::Status ExportTune(grpc::ServerContext* context, const v1::ExportTuneRequest* request,
                          v1::ExportTuneResponse* response) override;
  grpc::Status ImportTune(grpc::ServerContext* context, const v1::ImportTuneRequest* request,
                          v1::ImportTuneResponse* response) override;
  grpc::Status ClearTune(grpc::ServerContext* context, const v1::ClearTuneRequest* request,
                         v1::ClearTuneResponse* response) override;

  // The backend's JIT kernel cache (admin_kernels.cc).
  grpc::Status ListKernels(grpc::ServerContext* context, const v1::ListKernelsRequest* request,
                           v1::ListKernelsResponse* response) override;
  grpc::Status ClearKernels(grpc::ServerContext* context, const v1::ClearKernelsRequest* request,
                            v1::ClearKernelsResponse* response) override;
  grpc::Status WarmKernels(grpc::ServerContext* context, const v1::WarmKernelsRequest* request,
                           v1::WarmKernelsResponse* response) override;

 private:
  void FillStatus(const Caller& caller, v1::StatusResponse* response) const;

  ServiceContext& ctx_;
};

}  // namespace sparsed::server
