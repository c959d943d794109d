#include "server/upload_reactor.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <vector>

#include "server/serve.h"
#include "server/tensor_access.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/tensor_assembler.h"
#include "sparsed/validate.h"

namespace sparsed::server {

absl::StatusOr<TensorPtr> AdmitReceived(
    ServiceContext& ctx, const Caller& caller, Tensor t, bool sort_and_sum, const std::string& name,
    const google::protobuf::Map<std::string, std::string>& labels, std::string_view field) {
  ValidateOptions opts;
  opts.allow_unsorted = sort_and_sum;
  RETURN_IF_ERROR(ValidateTensor(t, opts, field));
  if (sort_and_sum) {
    ASSIGN_OR_RETURN(t, SortAndSumDuplicates(t));
  }
  ASSIGN_OR_RETURN(t, MoveToDevice(std::move(t), ctx.backend->device()));
  return ctx.store.Insert(caller.tenant, std::move(t), name, ToStdMap(labels),
                          ResolveLifetime(caller.lifetime, name));
}

namespace {

class UploadReactor final : public grpc::ServerReadReactor<v1::UploadRequest> {
 public:
  UploadReactor(ServiceContext& ctx, grpc::CallbackServerContext* rpc, v1::TensorInfo* response)
      : ctx_(ctx), rpc_(rpc), response_(response) {
    if (absl::Status s = AdmitCaller(ctx_, *rpc_, &caller_, &call_slot_); !s.ok()) {
      End(s);
      return;
    }
    watch_ = ctx_.stall_watchdog->Start(rpc_);
    StartRead(&msg_);
  }

  void OnReadDone(bool ok) override {
    if (ended_) return;
    if (!ok) {
      End(Complete());
      return;
    }
    watch_->Touch();
    ++index_;
    if (absl::Status s = index_ == 1 ? OnHeader() : OnChunk(); !s.ok()) {
      End(s);
      return;
    }
    StartRead(&msg_);
  }

  void OnDone() override {
    // gRPC's callback API hands the reactor back here; it was released to
    // gRPC by StartUpload.
    std::unique_ptr<UploadReactor> self(this);
  }

 private:
  absl::Status OnHeader() {
    if (!msg_.has_header()) {
      return absl::InvalidArgumentError("the first upload message must be a header");
    }
    header_ = msg_.header();
    RETURN_IF_ERROR(CheckNameAndLabels(header_.name(), header_.labels(), "header"));
    RETURN_IF_ERROR(ctx_.store.CheckNameFree(caller_.tenant, header_.name()));
    RETURN_IF_ERROR(api::CheckDescProto(header_.desc(), "header.desc"));
    const TensorDesc desc = api::FromProto(header_.desc());
    RETURN_IF_ERROR(ValidateDesc(desc, "header.desc"));
    // The tenant's quota before any memory is reserved (Insert checks again).
    ASSIGN_OR_RETURN(const std::vector<ComponentSpec> specs, ComponentsOf(desc));
    int64_t bytes = 0;
    for (const ComponentSpec& c : specs) bytes += c.bytes();
    RETURN_IF_ERROR(ctx_.store.CheckRoom(caller_.tenant, bytes));
    // Sizes are known sane now; reserve the memory once and fill it in place:
    // on the backend's device, or on the host when it is to be canonicalised
    // there first (AdmitReceived then copies the result to the device).
    const Device device =
        header_.sort_and_sum_duplicates() ? Device::Cpu() : ctx_.backend->device();
    ASSIGN_OR_RETURN(tensor_, Tensor::Allocate(desc, device));
    assembler_.emplace(tensor_);
    return absl::OkStatus();
  }

  absl::Status OnChunk() {
    if (!msg_.has_chunk()) {
      return absl::InvalidArgumentError(
          StrCat("message ", index_, " of the upload is a second header (only chunks may follow)"));
    }
    const v1::Chunk& chunk = msg_.chunk();
    return assembler_->AddChunk(chunk.component(), chunk.offset(), chunk.data());
  }

  // The stream ended (the client closed it, or the call was cancelled).
  absl::Status Complete() {
    if (watch_ != nullptr && watch_->cancelled()) {
      return absl::DeadlineExceededError(StrCat(
          "upload cancelled: the client sent nothing for ", ctx_.stall_watchdog->idle_seconds(),
          " s after message ", index_, " (upload_idle_timeout_seconds)"));
    }
    if (rpc_->IsCancelled()) return absl::CancelledError("upload cancelled by the client");
    if (index_ == 0) {
      return absl::InvalidArgumentError("upload stream is empty (expected a header first)");
    }
    RETURN_IF_ERROR(assembler_->Finish());
    assembler_.reset();
    ASSIGN_OR_RETURN(const TensorPtr t, AdmitReceived(ctx_, caller_, std::move(tensor_),
                                                      header_.sort_and_sum_duplicates(),
                                                      header_.name(), header_.labels(), "upload"));
    *response_ = DescribeTensor(*t);
    spdlog::debug("uploaded {} ({} bytes)", t->id, t->tensor.bytes());
    return absl::OkStatus();
  }

  // Finishes the call once; the tensor's memory goes with the reactor's
  // members right away, not when gRPC gets round to OnDone.
  void End(const absl::Status& s) {
    ended_ = true;
    assembler_.reset();
    tensor_ = Tensor();
    watch_.reset();
    call_slot_ = TenantQuotas::Slot();
    Finish(ToGrpc(s));
  }

  ServiceContext& ctx_;
  grpc::CallbackServerContext* rpc_;
  v1::TensorInfo* response_;
  Caller caller_;
  TenantQuotas::Slot call_slot_;
  std::unique_ptr<StallWatchdog::Watch> watch_;
  v1::UploadRequest msg_;
  v1::UploadHeader header_;
  int64_t index_ = 0;  // messages received
  Tensor tensor_;
  std::optional<TensorAssembler> assembler_;  // fills tensor_
  bool ended_ = false;
};

}  // namespace

grpc::ServerReadReactor<v1::UploadRequest>* StartUpload(ServiceContext& ctx,
                                                        grpc::CallbackServerContext* rpc,
                                                        v1::TensorInfo* response) {
  // gRPC's API takes a raw pointer and gives it back in OnDone.
  return std::make_unique<UploadReactor>(ctx, rpc, response).release();
}

}  // namespace sparsed::server
