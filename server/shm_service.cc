#include "server/shm_service.h"

#include "server/serve.h"
#include "server/shm_transfer.h"

namespace sparsed::server {
namespace {

v1::RegionInfo Describe(const SharedRegion& r) {
  v1::RegionInfo info;
  info.set_name(r.name());
  info.set_key(r.key());
  info.set_offset(r.offset());
  info.set_byte_size(r.byte_size());
  info.set_session_id(r.session_id());
  return info;
}

// FAILED_PRECONDITION when the daemon runs with shared memory off.
absl::Status CheckEnabled(const ServiceContext& ctx) {
  if (ctx.regions != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      StrCat("shared-memory transfers are off (shared_memory = '", ctx.config.shared_memory,
             "'; auto turns them off when authentication is on); use Tensors.Upload/Download"));
}

}  // namespace

grpc::Status SharedMemoryService::Register(grpc::ServerContext* context,
                                           const v1::RegisterRegionRequest* request,
                                           v1::RegionInfo* response) {
  return Serve(ctx_, context, [&](const Caller& caller) -> absl::Status {
    RETURN_IF_ERROR(CheckEnabled(ctx_));
    ASSIGN_OR_RETURN(
        const RegionPtr r,
        ctx_.regions->Register(caller.tenant, caller.lifetime.session_id, request->name(),
                               request->key(), request->offset(), request->byte_size()));
    *response = Describe(*r);
    return absl::OkStatus();
  });
}

grpc::Status SharedMemoryService::Unregister(grpc::ServerContext* context,
                                             const v1::RegionRef* request,
                                             v1::UnregisterRegionResponse* response) {
  return Serve(ctx_, context, [&](const Caller& caller) -> absl::Status {
    RETURN_IF_ERROR(CheckEnabled(ctx_));
    ASSIGN_OR_RETURN(
        const RegionPtr r,
        ctx_.regions->Unregister(caller.tenant, caller.lifetime.session_id, request->name()));
    response->set_name(r->name());
    return absl::OkStatus();
  });
}

grpc::Status SharedMemoryService::List(grpc::ServerContext* context,
                                       const v1::ListRegionsRequest* /*request*/,
                                       v1::ListRegionsResponse* response) {
  return Serve(ctx_, context, [&](const Caller& caller) -> absl::Status {
    RETURN_IF_ERROR(CheckEnabled(ctx_));
    for (const RegionPtr& r : ctx_.regions->List(caller.tenant, caller.lifetime.session_id)) {
      *response->add_regions() = Describe(*r);
    }
    return absl::OkStatus();
  });
}

grpc::Status SharedMemoryService::Upload(grpc::ServerContext* context,
                                         const v1::SharedUploadRequest* request,
                                         v1::TensorInfo* response) {
  return Serve(ctx_, context, [&](const Caller& caller) -> absl::Status {
    RETURN_IF_ERROR(CheckEnabled(ctx_));
    ASSIGN_OR_RETURN(*response, UploadFromRegions(ctx_, caller, *request));
    return absl::OkStatus();
  });
}

grpc::Status SharedMemoryService::Download(grpc::ServerContext* context,
                                           const v1::SharedDownloadRequest* request,
                                           v1::SharedDownloadResponse* response) {
  return Serve(ctx_, context, [&](const Caller& caller) -> absl::Status {
    RETURN_IF_ERROR(CheckEnabled(ctx_));
    ASSIGN_OR_RETURN(*response, DownloadIntoRegion(ctx_, caller, *request));
    return absl::OkStatus();
  });
}

}  // namespace sparsed::server
