#include "server/download_reactor.h"

#include <algorithm>
#include <memory>
#include <string>

#include "server/serve.h"
#include "server/tensor_access.h"
#include "sparsed/device_memory.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

class DownloadReactor final : public grpc::ServerWriteReactor<v1::DownloadResponse> {
 public:
  DownloadReactor(ServiceContext& ctx, grpc::CallbackServerContext* rpc,
                  const v1::DownloadRequest* request)
      : ctx_(ctx), rpc_(rpc) {
    if (absl::Status s = Begin(*request); !s.ok()) {
      End(s);
      return;
    }
    watch_ = ctx_.stall_watchdog->Start(rpc_);
    StartWrite(&msg_);  // the header
  }

  void OnWriteDone(bool ok) override {
    if (ended_) return;
    if (!ok) {
      End(watch_->cancelled()
              ? absl::DeadlineExceededError(
                    StrCat("download cancelled: the client took nothing for ",
                           ctx_.stall_watchdog->idle_seconds(), " s (upload_idle_timeout_seconds)"))
              : absl::CancelledError("client went away"));
      return;
    }
    watch_->Touch();
    absl::StatusOr<bool> more = NextChunk();
    if (!more.ok()) {
      End(more.status());
    } else if (!*more) {
      End(absl::OkStatus());
    } else {
      StartWrite(&msg_);
    }
  }

  void OnDone() override {
    // gRPC's callback API hands the reactor back here; StartDownload released it.
    std::unique_ptr<DownloadReactor> self(this);
  }

 private:
  // Authenticates, admits and resolves; the header goes into msg_.
  absl::Status Begin(const v1::DownloadRequest& req) {
    RETURN_IF_ERROR(AdmitCaller(ctx_, *rpc_, &caller_, &call_slot_));
    ASSIGN_OR_RETURN(tensor_, Resolve(ctx_.store, caller_, req.tensor(), "tensor"));
    if (req.chunk_bytes() < 0) {
      return absl::InvalidArgumentError(
          StrCat("chunk_bytes = ", req.chunk_bytes(), " is negative"));
    }
    const int64_t max_chunk = std::max<int64_t>(4096, ctx_.config.max_message_bytes - 4096);
    chunk_bytes_ = req.chunk_bytes() == 0 ? (1 << 20) : std::min(req.chunk_bytes(), max_chunk);
    *msg_.mutable_header() = DescribeTensor(*tensor_);
    return absl::OkStatus();
  }

  // The next chunk into msg_; false when every component has been sent.
  absl::StatusOr<bool> NextChunk() {
    const std::vector<ComponentSpec>& specs = tensor_->tensor.specs();
    while (component_ < specs.size() && offset_ >= specs[component_].bytes()) {
      ++component_;
      offset_ = 0;
    }
    if (component_ == specs.size()) return false;
    const ComponentSpec& spec = specs[component_];
    const Buffer* buf = tensor_->tensor.component(spec.name);
    const char* data = static_cast<const char*>(buf->data());
    const int64_t len = std::min(chunk_bytes_, spec.bytes() - offset_);
    msg_.Clear();
    v1::Chunk* c = msg_.mutable_chunk();
    c->set_component(spec.name);
    c->set_offset(offset_);
    if (buf->device().is_cpu()) {
      c->set_data(data + offset_, len);
    } else {
      // The message's own bytes are the host staging buffer: one chunk (at
      // most chunk_bytes) is on the host at a time, never the tensor.
      std::string* staged = c->mutable_data();
      staged->resize(static_cast<size_t>(len));
      RETURN_IF_ERROR(CopyBytes(staged->data(), Device::Cpu(), data + offset_, buf->device(), len));
    }
    offset_ += len;
    return true;
  }

  void End(const absl::Status& s) {
    ended_ = true;
    watch_.reset();
    call_slot_ = TenantQuotas::Slot();
    tensor_.reset();  // a tensor deleted meanwhile is freed now
    msg_.Clear();
    Finish(ToGrpc(s));
  }

  ServiceContext& ctx_;
  grpc::CallbackServerContext* rpc_;
  Caller caller_;
  TenantQuotas::Slot call_slot_;
  std::unique_ptr<StallWatchdog::Watch> watch_;
  TensorPtr tensor_;
  int64_t chunk_bytes_ = 0;
  size_t component_ = 0;  // the component being sent
  int64_t offset_ = 0;    // bytes of it sent
  v1::DownloadResponse msg_;
  bool ended_ = false;
};

}  // namespace

grpc::ServerWriteReactor<v1::DownloadResponse>* StartDownload(ServiceContext& ctx,
                                                              grpc::CallbackServerContext* rpc,
                                                              const v1::DownloadRequest* request) {
  // gRPC's API takes a raw pointer and gives it back in OnDone.
  return std::make_unique<DownloadReactor>(ctx, rpc, request).release();
}

}  // namespace sparsed::server
