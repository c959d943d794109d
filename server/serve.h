// The edge of every RPC handler: authenticate the caller, run the handler's
// body with it, and turn the body's absl::Status into a grpc::Status once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string_view>

#include "server/auth.h"
#include "server/service_context.h"
#include "server/status_util.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {

// body: absl::Status(const Caller&). UNAUTHENTICATED without valid credentials
// when authentication is on; RESOURCE_EXHAUSTED past the tenant's request rate.
template <class Body>
grpc::Status Serve(const ServiceContext& ctx, const grpc::ServerContext* rpc, Body&& body) {
  absl::StatusOr<Caller> caller = ctx.auth->Authenticate(*rpc);
  if (!caller.ok()) return ToGrpc(caller.status());
  if (absl::Status s = ctx.quotas->AdmitRequest(caller->tenant); !s.ok()) return ToGrpc(s);
  return ToGrpc(body(*caller));
}

// As Serve, for the APIs that act on the daemon as a whole (tune database,
// kernel cache): PERMISSION_DENIED naming `method` unless the caller is an admin.
template <class Body>
grpc::Status ServeAdmin(const ServiceContext& ctx, const grpc::ServerContext* rpc,
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
