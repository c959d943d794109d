// Transport security and call credentials of the C++ client (ConnectOptions).
#pragma once

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/client/client.h"

namespace sparsed::client::internal {

// Whether `options` ask for a TLS channel.
bool WantsTls(const ConnectOptions& options);

// TLS credentials from the PEM files `options` name, or insecure ones.
// INVALID_ARGUMENT naming the option and path for a file that cannot be read
// or is empty; naming both options when a client certificate comes without
// its key (or the other way round); tls_server_name without TLS.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ConnectOptions& options);

// OK for an empty token or one that can travel as an HTTP/2 header value
// (visible ASCII, no spaces). The error never contains the token.
absl::Status CheckToken(const std::string& token);

}  // namespace sparsed::client::internal
