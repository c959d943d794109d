#include "credentials.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client::internal {
namespace {

absl::StatusOr<std::string> ReadPemOption(const char* option, const std::string& path) {
  std::error_code ec;
  std::ifstream in(path, std::ios::binary);
  std::string text(std::istreambuf_iterator<char>(in), {});
  if (!std::filesystem::is_regular_file(path, ec) || !in.is_open() || in.bad()) {
    return absl::InvalidArgumentError(StrCat(option, " '", path, "' cannot be read"));
  }
  // gRPC takes an empty string as "not given" (default roots, no certificate).
  if (text.empty()) return absl::InvalidArgumentError(StrCat(option, " '", path, "' is empty"));
  return text;
}

}  // namespace

bool WantsTls(const ConnectOptions& o) {
  return o.tls || !o.tls_ca_file.empty() || !o.tls_cert_file.empty() || !o.tls_key_file.empty();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ConnectOptions& o) {
  if (!WantsTls(o)) {
    if (!o.tls_server_name.empty()) {
      return absl::InvalidArgumentError(StrCat("tls_server_name '", o.tls_server_name,
                                               "' is set but the channel does not use TLS"));
    }
    return grpc::InsecureChannelCredentials();
  }
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file and tls_key_file go together: a client certificate needs its private key");
  }
  grpc::SslCredentialsOptions ssl;
  if (!o.tls_ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemOption("tls_ca_file", o.tls_ca_file));
  }
  if (!o.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPemOption("tls_cert_file", o.tls_cert_file));
    ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemOption("tls_key_file", o.tls_key_file));
  }
  return grpc::SslCredentials(ssl);
}

absl::Status CheckToken(const std::string& token) {
  for (char c : token) {
    // RFC 6750 tokens are visible ASCII; gRPC would fail every call otherwise.
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          "token contains a space or a character that cannot be sent in a header");
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsed::client::internal
