// The SharedMemory service (proto/sparsed/v1/shared_memory.proto): register
// regions of clients' POSIX shared memory and move tensors through them.
#pragma once

#include <grpcpp/grpcpp.h>

#include "server/service_context.h"
#include "sparsed/v1/shared_memory.grpc.pb.h"

namespace sparsed::server {

class SharedMemoryService final : public v1::SharedMemory::Service {
 public:
  explicit SharedMemoryService(ServiceContext& ctx) : ctx_(ctx) {}

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRegionRequest* request,
                        v1::RegionInfo* response) override;
  grpc::Status Unregister(grpc::ServerContext* context, const v1::RegionRef* request,
                          v1::UnregisterRegionResponse* response) override;
  grpc::Status List(grpc::ServerContext* context, const v1::ListRegionsRequest* request,
                    v1::ListRegionsResponse* response) override;
  grpc::Status Upload(grpc::ServerContext* context, const v1::SharedUploadRequest* request,
                      v1::TensorInfo* response) override;
  grpc::Status Download(grpc::ServerContext* context, const v1::SharedDownloadRequest* request,
                        v1::SharedDownloadResponse* response) override;

 private:
  ServiceContext& ctx_;
};

}  // namespace sparsed::server
