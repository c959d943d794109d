// absl::Status -> grpc::Status at the API edge (codes are numerically equal).
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace sparsed::server {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace sparsed::server
