// Transport security of the gRPC listener: plaintext, TLS, or mutual TLS,
// from the tls_cert / tls_key / tls_client_ca keys of the configuration.
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace sparsed::server {

// Insecure credentials when neither tls_cert nor tls_key is set; TLS with that
// certificate chain and key when both are; with tls_client_ca as well, mutual
// TLS: every client must present a certificate signed by one of those CAs.
// INVALID_ARGUMENT naming the key (and the path) when only one of cert/key is
// set, tls_client_ca is set without them, or a file cannot be read or holds
// no PEM block of the expected kind. Logs which mode is on.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const Config& config);

}  // namespace sparsed::server
