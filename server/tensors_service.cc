#include "server/tensors_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <vector>

#include "server/download_reactor.h"
#include "server/serve.h"
#include "server/status_util.h"
#include "server/tensor_access.h"
#include "server/upload_reactor.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/device_memory.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/tensor_assembler.h"
#include "sparsed/validate.h"

namespace sparsed::server {
grpc::ServerReadReactor<v1::UploadRequest>* TensorsService::Upload(
    grpc::CallbackServerContext* context, v1::TensorInfo* response) {
  return StartUpload(ctx_, context, response);
}

grpc::ServerWriteReactor<v1::DownloadResponse>* TensorsService::Download(
    grpc::CallbackServerContext* context, const v1::DownloadRequest* request) {
  return StartDownload(ctx_, context, request);
}

grpc::Status TensorsService::Create(grpc::ServerContext* rpc, const v1::CreateRequest* request,
                                    v1::TensorInfo* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    RETURN_IF_ERROR(CheckNameAndLabels(request->name(), request->labels(), "request"));
    RETURN_IF_ERROR(ctx_.store.CheckNameFree(caller.tenant, request->name()));
    ASSIGN_OR_RETURN(Tensor t, api::FromInline(request->tensor(), "tensor"));
    ASSIGN_OR_RETURN(const TensorPtr stored,
                     AdmitReceived(ctx_, caller, std::move(t), request->sort_and_sum_duplicates(),
                                   request->name(), request->labels(), "tensor"));
    *response = DescribeTensor(*stored);
    return absl::OkStatus();
  });
}

grpc::Status TensorsService::GetInfo(grpc::ServerContext* rpc, const v1::TensorRef* request,
                                     v1::TensorInfo* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    ASSIGN_OR_RETURN(const TensorPtr t, Resolve(ctx_.store, caller, *request, "ref"));
    *response = DescribeTensor(*t);
    return absl::OkStatus();
  });
}

grpc::Status TensorsService::List(grpc::ServerContext* rpc, const v1::ListRequest* request,
                                  v1::ListResponse* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) {
    for (const TensorPtr& t : ctx_.store.List(caller.tenant, request->name_prefix())) {
      *response->add_tensors() = DescribeTensor(*t);
    }
    return absl::OkStatus();
  });
}

grpc::Status TensorsService::Delete(grpc::ServerContext* rpc, const v1::TensorRef* request,
                                    v1::DeleteResponse* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    ASSIGN_OR_RETURN(const TensorPtr t, Resolve(ctx_.store, caller, *request, "ref"));
    ASSIGN_OR_RETURN(const TensorPtr erased, ctx_.store.EraseById(caller.tenant, t->id));
    response->set_id(erased->id);
    response->set_bytes_freed(erased->tensor.bytes());
    return absl::OkStatus();
  });
}

}  // namespace sparsed::server
