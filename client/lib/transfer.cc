// Streaming Upload and Download.
#include <grpcpp/client_context.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "sparsed/client/client.h"
#include "sparsed/client/grpc_status.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client {
namespace {

constexpr int64_t kMinChunk = 4096;

// Returns a malformed-stream error after cancelling the call and draining it.
absl::Status AbortDownload(grpc::ClientContext& ctx,
                           grpc::ClientReader<v1::DownloadResponse>& reader, std::string message) {
  ctx.TryCancel();
  (void)reader.Finish();
  return absl::InternalError(StrCat("download: ", message));
}

}  // namespace

absl::StatusOr<v1::TensorInfo> Client::Upload(const Tensor& tensor, const UploadOptions& options) {
  if (!tensor.device().is_cpu()) {
    return absl::FailedPreconditionError(
        StrCat("upload needs a host tensor, not one on ", tensor.device().ToString()));
  }
  const int64_t chunk = std::clamp(options.chunk_bytes, kMinChunk, kMiB);
  const int64_t total = tensor.bytes();

  grpc::ClientContext ctx;
  Prepare(ctx);
  v1::TensorInfo info;
  std::unique_ptr<grpc::ClientWriter<v1::UploadRequest>> writer = tensors_->Upload(&ctx, &info);

  v1::UploadRequest req;
  v1::UploadHeader* header = req.mutable_header();
  *header->mutable_desc() = ToProto(tensor.desc());
  header->set_name(options.name);
  header->mutable_labels()->insert(options.labels.begin(), options.labels.end());
  header->set_sort_and_sum_duplicates(options.sort_and_sum_duplicates);

  // A failed Write means the server has ended the call; Finish says why.
  bool open = writer->Write(req);
  int64_t done = 0;
  if (options.progress) options.progress(0, total);
  // One request reused for every chunk so its data buffer is allocated once.
  req.Clear();
  v1::Chunk* c = req.mutable_chunk();
  for (const ComponentSpec& spec : tensor.specs()) {
    if (!open) break;
    const char* base = static_cast<const char*>(tensor.component(spec.name)->data());
    c->set_component(spec.name);
    for (int64_t off = 0; open && off < spec.bytes(); off += chunk) {
      const int64_t n = std::min(chunk, spec.bytes() - off);
      c->set_offset(off);
      c->mutable_data()->assign(base + off, n);
      open = writer->Write(req);
      done += n;
      if (open && options.progress) options.progress(done, total);
    }
  }
  if (open) writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) return FromGrpcStatus(s);
  return info;
}

absl::StatusOr<std::pair<v1::TensorInfo, Tensor>> Client::Download(const v1::TensorRef& ref,
                                                                   const ProgressFn& progress,
                                                                   int64_t chunk_bytes) {
  grpc::ClientContext ctx;
  Prepare(ctx);
  v1::DownloadRequest req;
  *req.mutable_tensor() = ref;
  req.set_chunk_bytes(std::max<int64_t>(chunk_bytes, 0));
  std::unique_ptr<grpc::ClientReader<v1::DownloadResponse>> reader = tensors_->Download(&ctx, req);

  v1::DownloadResponse msg;
  if (!reader->Read(&msg)) {
    grpc::Status s = reader->Finish();
    if (!s.ok()) return FromGrpcStatus(s);
    return absl::InternalError("download: the server sent no header");
  }
  if (!msg.has_header()) return AbortDownload(ctx, *reader, "the first message is not a header");
  v1::TensorInfo info = std::move(*msg.mutable_header());
  // Allocate validates the desc (ComponentsOf).
  absl::StatusOr<Tensor> allocated = Tensor::Allocate(api::FromProto(info.desc()));
  if (!allocated.ok()) {
    // Too large for this host, or a bad desc: stop the stream either way.
    ctx.TryCancel();
    (void)reader->Finish();
    return allocated.status();
  }
  Tensor tensor = *std::move(allocated);

  // Chunks arrive component by component in canonical order, contiguously.
  const std::vector<ComponentSpec>& specs = tensor.specs();
  const int64_t total = tensor.bytes();
  size_t k = 0;          // current component
  int64_t received = 0;  // bytes of specs[k] received
  int64_t done = 0;
  if (progress) progress(0, total);
  while (reader->Read(&msg)) {
    if (!msg.has_chunk()) return AbortDownload(ctx, *reader, "a second header");
    const v1::Chunk& c = msg.chunk();
    // Move on past complete components to the one this chunk names.
    while (k < specs.size() && specs[k].name != c.component() && received == specs[k].bytes()) {
      ++k;
      received = 0;
    }
    if (k == specs.size() || specs[k].name != c.component()) {
      return AbortDownload(
          ctx, *reader,
          StrCat("unexpected chunk of component '", c.component(), "' at offset ", c.offset()));
    }
    const int64_t n = static_cast<int64_t>(c.data().size());
    if (c.offset() != received || n > specs[k].bytes() - received) {
      return AbortDownload(
          ctx, *reader,
          StrCat("chunk of '", c.component(), "' at offset ", c.offset(), " with ", n,
                 " bytes does not continue at ", received, " of ", specs[k].bytes()));
    }
    if (n > 0) {
      std::memcpy(static_cast<char*>(tensor.component(specs[k].name)->data()) + received,
                  c.data().data(), n);
    }
    received += n;
    done += n;
    if (progress) progress(done, total);
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return FromGrpcStatus(s);
  if (done != total) {
    return absl::InternalError(
        StrCat("download: the stream ended after ", done, " of ", total, " bytes"));
  }
  return std::make_pair(std::move(info), std::move(tensor));
}

}  // namespace sparsed::client
