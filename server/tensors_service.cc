#include "server/tensors_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <vector>

#include "server/serve.h"
#include "server/status_util.h"
#include "server/tensor_access.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/device_memory.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/tensor_assembler.h"
#include "sparsed/validate.h"

namespace sparsed::server {
namespace {

// Validates and optionally canonicalises (on the host) a freshly received
// tensor, moves it to the backend's device and stores it.
absl::StatusOr<TensorPtr> Admit(ServiceContext& ctx, const Caller& caller, Tensor t,
                                bool sort_and_sum, const std::string& name,
                                const google::protobuf::Map<std::string, std::string>& labels,
                                std::string_view field) {
  ValidateOptions opts;
  opts.allow_unsorted = sort_and_sum;
  RETURN_IF_ERROR(ValidateTensor(t, opts, field));
  if (sort_and_sum) {
    ASSIGN_OR_RETURN(t, SortAndSumDuplicates(t));
  }
  ASSIGN_OR_RETURN(t, MoveToDevice(std::move(t), ctx.backend->device()));
  return ctx.store.Insert(caller.tenant, std::move(t), name, ToStdMap(labels));
}

// Receives the chunks of an upload straight into the tensor's buffers, which
// may be in host or device memory (each chunk is checked, then copied to its
// offset).
absl::Status ReceiveChunks(grpc::ServerReader<v1::UploadRequest>* reader, Tensor& t,
                           StallWatchdog::Watch& watch, double idle_seconds) {
  TensorAssembler assembler(t);
  v1::UploadRequest msg;
  int64_t index = 0;
  while (reader->Read(&msg)) {
    watch.Touch();
    ++index;
    if (!msg.has_chunk()) {
      return absl::InvalidArgumentError(
          StrCat("message ", index, " of the upload is a second header (only chunks may follow)"));
    }
    const v1::Chunk& chunk = msg.chunk();
    RETURN_IF_ERROR(assembler.AddChunk(chunk.component(), chunk.offset(), chunk.data()));
  }
  if (watch.cancelled()) {
    return absl::DeadlineExceededError(StrCat("upload cancelled: the client sent nothing for ",
                                              idle_seconds, " s after message ", index,
                                              " (upload_idle_timeout_seconds)"));
  }
  return assembler.Finish();
}

absl::StatusOr<TensorPtr> DoUpload(ServiceContext& ctx, const Caller& caller,
                                   grpc::ServerContext* call,
                                   grpc::ServerReader<v1::UploadRequest>* reader) {
  const std::unique_ptr<StallWatchdog::Watch> watch = ctx.stall_watchdog->Start(call);
  v1::UploadRequest first;
  if (!reader->Read(&first)) {
    return absl::InvalidArgumentError("upload stream is empty (expected a header first)");
  }
  if (!first.has_header()) {
    return absl::InvalidArgumentError("the first upload message must be a header");
  }
  const v1::UploadHeader& header = first.header();
  RETURN_IF_ERROR(CheckNameAndLabels(header.name(), header.labels(), "header"));
  RETURN_IF_ERROR(ctx.store.CheckNameFree(caller.tenant, header.name()));
  RETURN_IF_ERROR(api::CheckDescProto(header.desc(), "header.desc"));
  const TensorDesc desc = api::FromProto(header.desc());
  RETURN_IF_ERROR(ValidateDesc(desc, "header.desc"));
  {
    // The tenant's quota before any memory is reserved (Insert checks again).
    ASSIGN_OR_RETURN(const std::vector<ComponentSpec> specs, ComponentsOf(desc));
    int64_t bytes = 0;
    for (const ComponentSpec& c : specs) bytes += c.bytes();
    RETURN_IF_ERROR(ctx.store.CheckRoom(caller.tenant, bytes));
  }
  // Sizes are known sane now; reserve the memory once and fill it in place:
  // on the backend's device, or on the host when it is to be canonicalised
  // there first (Admit then copies the result to the device).
  const Device device = header.sort_and_sum_duplicates() ? Device::Cpu() : ctx.backend->device();
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(desc, device));
  RETURN_IF_ERROR(ReceiveChunks(reader, t, *watch, ctx.stall_watchdog->idle_seconds()));
  return Admit(ctx, caller, std::move(t), header.sort_and_sum_duplicates(), header.name(),
               header.labels(), "upload");
}

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

grpc::Status TensorsService::Upload(grpc::ServerContext* context,
                                    grpc::ServerReader<v1::UploadRequest>* reader,
                                    v1::TensorInfo* response) {
  return Serve(ctx_, context, [&](const Caller& caller) -> absl::Status {
    ASSIGN_OR_RETURN(const TensorPtr t, DoUpload(ctx_, caller, context, reader));
    *response = DescribeTensor(*t);
    spdlog::debug("uploaded {} ({} bytes)", t->id, t->tensor.bytes());
    return absl::OkStatus();
  });
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
                     Admit(ctx_, caller, std::move(t), request->sort_and_sum_duplicates(),
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
