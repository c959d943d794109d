#include "server/tls.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

// The text of a PEM file given as config key `key`. `marker` is what a block
// of the expected kind contains ("CERTIFICATE-----", "PRIVATE KEY-----"), so
// that a swapped cert and key are reported here rather than as an opaque
// handshake failure on the first connection.
absl::StatusOr<std::string> ReadPem(const std::string& key, const std::string& path,
                                    const std::string& marker) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::InvalidArgumentError(
        StrCat(key, " = '", path, "' cannot be read (not a regular file)"));
  }
  std::ifstream in(path, std::ios::binary);
  std::string pem(std::istreambuf_iterator<char>(in), {});
  if (!in.is_open() || in.bad()) {
    return absl::InvalidArgumentError(StrCat(key, " = '", path, "' cannot be read"));
  }
  const size_t begin = pem.find("-----BEGIN");
  if (begin == std::string::npos || pem.find(marker, begin) == std::string::npos) {
    return absl::InvalidArgumentError(StrCat(key, " = '", path, "' is not a PEM file with a '",
                                             marker.substr(0, marker.find('-')), "' block"));
  }
  return pem;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const Config& config) {
  const bool has_cert = !config.tls_cert.empty(), has_key = !config.tls_key.empty();
  if (!has_cert && !has_key) {
    if (!config.tls_client_ca.empty()) {
      return absl::InvalidArgumentError(
          StrCat("tls_client_ca = '", config.tls_client_ca,
                 "' needs tls_cert and tls_key: mutual TLS is TLS with client certificates"));
    }
    spdlog::info("TLS off: gRPC on {} is plaintext (set tls_cert and tls_key to encrypt it)",
                 config.listen);
    return grpc::InsecureServerCredentials();
  }
  if (!has_cert || !has_key) {
    const char* set = has_cert ? "tls_cert" : "tls_key";
    const char* missing = has_cert ? "tls_key" : "tls_cert";
    return absl::InvalidArgumentError(
        StrCat(set, " = '", has_cert ? config.tls_cert : config.tls_key, "' is set but ", missing,
               " is not: TLS needs both the certificate chain and its private key"));
  }
  grpc::SslServerCredentialsOptions options;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem("tls_cert", config.tls_cert, "CERTIFICATE-----"));
  ASSIGN_OR_RETURN(pair.private_key, ReadPem("tls_key", config.tls_key, "PRIVATE KEY-----"));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!config.tls_client_ca.empty()) {
    ASSIGN_OR_RETURN(options.pem_root_certs,
                     ReadPem("tls_client_ca", config.tls_client_ca, "CERTIFICATE-----"));
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(options);
  if (credentials == nullptr) {
    return absl::InvalidArgumentError(StrCat("tls_cert = '", config.tls_cert, "', tls_key = '",
                                             config.tls_key, "': gRPC refused them"));
  }
  if (config.tls_client_ca.empty()) {
    spdlog::info("TLS on: certificate {}; clients are not asked for certificates", config.tls_cert);
  } else {
    spdlog::info("mutual TLS on: certificate {}; clients must present a certificate signed by {}",
                 config.tls_cert, config.tls_client_ca);
  }
  return credentials;
}

}  // namespace sparsed::server
