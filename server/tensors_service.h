// sparsed.v1.Tensors: upload, download, create, info, list, delete, inspect.
#pragma once

#include "server/service_context.h"
#include "sparsed/v1/tensors.grpc.pb.h"

namespace sparsed::server {

// Upload and Download run on gRPC's callback API (server/upload_reactor.h,
// download_reactor.h: a stalled stream holds no thread); the other methods
// are synchronous.
class TensorsService final : public v1::Tensors::WithCallbackMethod_Upload<
                                 v1::Tensors::WithCallbackMethod_Download<v1::Tensors::Service>> {
 public:
  explicit TensorsService(ServiceContext& ctx) : ctx_(ctx) {}

  grpc::ServerReadReactor<v1::UploadRequest>* Upload(grpc::CallbackServerContext* context,
                                                     v1::TensorInfo* response) override;
  grpc::ServerWriteReactor<v1::DownloadResponse>* Download(
      grpc::CallbackServerContext* context, const v1::DownloadRequest* request) override;
  grpc::Status Create(grpc::ServerContext* context, const v1::CreateRequest* request,
                      v1::TensorInfo* response) override;
  grpc::Status GetInfo(grpc::ServerContext* context, const v1::TensorRef* request,
                       v1::TensorInfo* response) override;
  grpc::Status List(grpc::ServerContext* context, const v1::ListRequest* request,
                    v1::ListResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context, const v1::TensorRef* request,
                      v1::DeleteResponse* response) override;
  grpc::Status Inspect(grpc::ServerContext* context, const v1::InspectRequest* request,
                       v1::InspectResponse* response) override;

 private:
  ServiceContext& ctx_;
};

}  // namespace sparsed::server
