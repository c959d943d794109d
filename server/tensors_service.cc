#include "server/tensors_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <vector>

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
namespace {

// Streams the header, then each component in chunks of at most chunk_bytes.
absl::Status DoDownload(ServiceContext& ctx, const Caller& caller, grpc::ServerContext* call,
                        const v1::DownloadRequest& req,
                        grpc::ServerWriter<v1::DownloadResponse>* writer) {
  ASSIGN_OR_RETURN(const TensorPtr t, Resolve(ctx.store, caller, req.tensor(), "tensor"));
  if (req.chunk_bytes() < 0) {
    return absl::InvalidArgumentError(StrCat("chunk_bytes = ", req.chunk_bytes(), " is negative"));
  }
  const int64_t max_chunk = std::max<int64_t>(4096, ctx.config.max_message_bytes - 4096);
  const int64_t chunk_bytes =
      req.chunk_bytes() == 0 ? (1 << 20) : std::min(req.chunk_bytes(), max_chunk);
  const absl::Status gone = absl::CancelledError("client went away");
  v1::DownloadResponse msg;
  *msg.mutable_header() = DescribeTensor(*t);
  if (!writer->Write(msg)) return gone;
  for (const ComponentSpec& spec : t->tensor.specs()) {
    const Buffer* buf = t->tensor.component(spec.name);
    const char* data = static_cast<const char*>(buf->data());
    for (int64_t off = 0; off < spec.bytes(); off += chunk_bytes) {
      if (call->IsCancelled()) return absl::CancelledError("cancelled");
      v1::DownloadResponse part;
      v1::Chunk* c = part.mutable_chunk();
      c->set_component(spec.name);
      c->set_offset(off);
      const int64_t len = std::min(chunk_bytes, spec.bytes() - off);
      if (buf->device().is_cpu()) {
        c->set_data(data + off, len);
      } else {
        // The message's own bytes are the host staging buffer: one chunk
        // (at most chunk_bytes) is on the host at a time, never the tensor.
        std::string* staged = c->mutable_data();
        staged->resize(static_cast<size_t>(len));
        RETURN_IF_ERROR(CopyBytes(staged->data(), Device::Cpu(), data + off, buf->device(), len));
      }
      if (!writer->Write(part)) return gone;
    }
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerReadReactor<v1::UploadRequest>* TensorsService::Upload(
    grpc::CallbackServerContext* context, v1::TensorInfo* response) {
  return StartUpload(ctx_, context, response);
}

grpc::Status TensorsService::Download(grpc::ServerContext* context,
                                      const v1::DownloadRequest* request,
                                      grpc::ServerWriter<v1::DownloadResponse>* writer) {
  return Serve(ctx_, context, [&](const Caller& caller) {
    return DoDownload(ctx_, caller, context, *request, writer);
  });
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
