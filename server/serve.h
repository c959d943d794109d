// The edge of every RPC handler: authenticate the caller, run the handler's
// body with it, and turn the body's absl::Status into a grpc::Status once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string_view>

#include "server/auth.h"
#include "server/service_context.h"
#include "server/status_util.h"
#include "sparsed/cancel.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {

// The call's deadline on the steady clock (max() when it has none or one
// more than a day away) and a poll of whether its client went away.
inline CancelToken CancelTokenFor(const grpc::ServerContextBase* rpc) {
  const auto left = rpc->deadline() - std::chrono::system_clock::now();
  const auto deadline = left > std::chrono::hours(24)
                            ? CancelToken::Clock::time_point::max()
                            : CancelToken::Clock::now() +
                                  std::chrono::duration_cast<CancelToken::Clock::duration>(left);
  return CancelToken(deadline, [rpc] { return rpc->IsCancelled(); });
}

// body: absl::Status(const Caller&). UNAUTHENTICATED without valid credentials
// when authentication is on; RESOURCE_EXHAUSTED past the tenant's request
// rate or concurrent calls. The body runs with the call's CancelToken current (sparsed/cancel.h),
// so long loops stop at its deadline or when the client cancels.
// Who calls, and whether the tenant's request rate and open calls allow the
// call: UNAUTHENTICATED or RESOURCE_EXHAUSTED otherwise. `slot` holds the
// call's place among the tenant's open calls.
inline absl::Status AdmitCaller(const ServiceContext& ctx, const grpc::ServerContextBase& rpc,
                                Caller* caller, TenantQuotas::Slot* slot) {
  ASSIGN_OR_RETURN(*caller, ctx.auth->Authenticate(rpc));
  RETURN_IF_ERROR(ctx.quotas->AdmitRequest(caller->tenant));
  ASSIGN_OR_RETURN(caller->lifetime, LifetimeOfCall(rpc, *ctx.sessions, caller->tenant));
  return ctx.quotas->AdmitCall(caller->tenant, slot);
}

template <class Body>
grpc::Status Serve(const ServiceContext& ctx, const grpc::ServerContextBase* rpc, Body&& body) {
  Caller caller;
  TenantQuotas::Slot call_slot;
  if (absl::Status s = AdmitCaller(ctx, *rpc, &caller, &call_slot); !s.ok()) return ToGrpc(s);
  const CancelToken token = CancelTokenFor(rpc);
  ScopedCancelToken current(&token);
  return ToGrpc(body(caller));
}

// As Serve, for the APIs that act on the daemon as a whole (tune database,
// kernel cache): PERMISSION_DENIED naming `method` unless the caller is an admin.
template <class Body>
grpc::Status ServeAdmin(const ServiceContext& ctx, const grpc::ServerContextBase* rpc,
                        std::string_view method, Body&& body) {
  return Serve(ctx, rpc, [&](const Caller& caller) -> absl::Status {
    if (!caller.admin()) {
      return absl::PermissionDeniedError(
          StrCat(method, " needs the admin role; tenant '", caller.tenant, "' is a user"));
    }
    return body(caller);
  });
}

}  // namespace sparsed::server
