// Sessions.Open on gRPC's callback API: a reactor per open session, holding
// no thread while the client is quiet. The session ends in OnDone (stream
// closed, client gone or killed) or when the sweeper finds its lease lapsed
// (it then cancels the stream).
#pragma once

#include <grpcpp/grpcpp.h>

#include "server/service_context.h"
#include "sparsed/v1/sessions.grpc.pb.h"

namespace sparsed::server {

class LifetimeSweeper;

class SessionsService final : public v1::Sessions::CallbackService {
 public:
  // `sweeper` (may be null) is woken when a session ends.
  SessionsService(ServiceContext& ctx, LifetimeSweeper* sweeper) : ctx_(ctx), sweeper_(sweeper) {}
  grpc::ServerBidiReactor<v1::SessionPing, v1::SessionState>* Open(
      grpc::CallbackServerContext* context) override;

 private:
  ServiceContext& ctx_;
  LifetimeSweeper* sweeper_;
};

}  // namespace sparsed::server
