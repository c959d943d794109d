#include "server/session_service.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <string>

#include "server/lifetime_sweeper.h"
#include "server/status_util.h"
#include "sparsed/status.h"

namespace sparsed::server {
namespace {

class SessionReactor final : public grpc::ServerBidiReactor<v1::SessionPing, v1::SessionState> {
 public:
  SessionReactor(ServiceContext& ctx, LifetimeSweeper* sweeper, grpc::CallbackServerContext* rpc)
      : ctx_(ctx), sweeper_(sweeper), rpc_(rpc) {
    // A session holds no call slot (tenant_max_concurrent_calls): it is a
    // reactor without a thread; SessionTable bounds how many a tenant opens.
    absl::StatusOr<Caller> caller = ctx_.auth->Authenticate(*rpc_);
    absl::Status s = caller.status();
    if (s.ok()) s = ctx_.quotas->AdmitRequest(caller->tenant);
    if (s.ok()) {
      absl::StatusOr<std::string> id = ctx_.sessions->Open(caller->tenant, [rpc] {
        rpc->TryCancel();  // the lease lapsed: end the stream
      });
      s = id.status();
      if (s.ok()) id_ = *id;
    }
    if (!s.ok()) {
      Finish(ToGrpc(s));
      return;
    }
    spdlog::debug("session {} opened by tenant '{}'", id_, caller->tenant);
    state_.set_session_id(id_);
    state_.set_lease_ms(ctx_.sessions->lease().count());
    std::lock_guard lock(mu_);
    writing_ = true;
    StartWrite(&state_);
    StartRead(&ping_);
  }

  void OnReadDone(bool ok) override {
    std::lock_guard lock(mu_);
    if (!ok) {  // the client closed its side, went away, or the stream was cancelled
      EndLocked(grpc::Status::OK);
      return;
    }
    if (!ctx_.sessions->Touch(id_)) {
      EndLocked(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                             "session " + id_ + " ended: no ping within its lease"));
      return;
    }
    if (!writing_) {  // answer the ping; one write at a time
      writing_ = true;
      StartWrite(&state_);
    }
    StartRead(&ping_);
  }

  void OnWriteDone(bool /*ok*/) override {
    std::lock_guard lock(mu_);
    writing_ = false;
  }

  void OnDone() override {
    std::unique_ptr<SessionReactor> self(this);  // StartSession released it to gRPC
    if (!id_.empty()) {
      ctx_.sessions->Close(id_);
      spdlog::debug("session {} ended", id_);
      if (sweeper_ != nullptr) sweeper_->Wake();
    }
  }

 private:
  void EndLocked(const grpc::Status& s) {
    if (finished_) return;
    finished_ = true;
    Finish(s);
  }

  ServiceContext& ctx_;
  LifetimeSweeper* sweeper_;
  grpc::CallbackServerContext* rpc_;
  std::string id_;
  v1::SessionPing ping_;
  v1::SessionState state_;
  std::mutex mu_;
  bool writing_ = false;   // guarded by mu_
  bool finished_ = false;  // guarded by mu_
};

}  // namespace

grpc::ServerBidiReactor<v1::SessionPing, v1::SessionState>* SessionsService::Open(
    grpc::CallbackServerContext* context) {
  // gRPC's API takes a raw pointer and gives it back in OnDone.
  return std::make_unique<SessionReactor>(ctx_, sweeper_, context).release();
}

}  // namespace sparsed::server
