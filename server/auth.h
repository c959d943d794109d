// Who is calling (issue 17): bearer tokens mapped to tenants and roles, and
// client certificates under mutual TLS.
//
// The token file (`auth_tokens`) holds one line per token:
//   SHA256-OF-TOKEN-IN-HEX  TENANT  ROLE        # comment
// where ROLE is `user` or `admin`; blank lines and `#` comments are ignored.
// Only digests are stored, so the file does not reveal the tokens. Clients
// send `authorization: Bearer TOKEN`. The file is reread on SIGHUP; a file
// that does not parse keeps the tokens in force before it.
//
// Without a token file and without client certificates authentication is
// off: every caller is an admin of tenant "" (one shared namespace, as the
// daemon always was), and protected mode keeps the listener on loopback.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/lifetime.h"

namespace grpc {
class ServerContextBase;
}

namespace sparsed::server {

enum class Role { kUser, kAdmin };

struct Caller {
  std::string tenant;        // "" when authentication is off
  Role role = Role::kAdmin;  // admin: tune database, kernel cache, every tenant's status
  CallLifetime lifetime;     // of the tensors the call creates (server/lifetime.h)
  bool admin() const { return role == Role::kAdmin; }
};

// INVALID_ARGUMENT (naming `field`) unless `tenant` is 1-64 characters of
// [A-Za-z0-9._-], not beginning with '.' (tenants name folders).
absl::Status CheckTenantName(std::string_view tenant, std::string_view field);

// Lower-case hex SHA-256 of `token`: what the token file holds
// (`printf %s TOKEN | sha256sum`).
std::string TokenDigestHex(std::string_view token);

class TokenTable {
 public:
  // INVALID_ARGUMENT naming `source` and the line for a malformed line, an
  // unknown role, a bad tenant name or a digest listed twice.
  static absl::StatusOr<TokenTable> Parse(std::string_view text, std::string_view source);
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The caller that `token` stands for, if any. Compares digests in constant
  // time, against every entry.
  std::optional<Caller> Find(std::string_view token) const;
  size_t size() const { return entries_.size(); }
  // The distinct tenants, sorted.
  std::vector<std::string> Tenants() const;

 private:
  struct Entry {
    std::array<uint8_t, 32> digest;
    Caller caller;
  };
  std::vector<Entry> entries_;
};

// What a request carries that identifies its caller.
struct Credentials {
  std::vector<std::string_view> authorization;  // values of `authorization` metadata
  std::string certificate_name;  // common name of a verified client certificate, or ""
};

class Authenticator {
 public:
  // `tokens_path` "" and !client_certificates: authentication off. With a
  // path the file is loaded now (its error is returned).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(std::string tokens_path,
                                                               bool client_certificates);

  bool enabled() const { return !tokens_path_.empty() || client_certificates_; }

  // The caller, or UNAUTHENTICATED saying what was missing or wrong (never
  // echoing a token). A known bearer token wins; without one, a verified
  // client certificate's common name is a tenant with role user.
  absl::StatusOr<Caller> Authenticate(const Credentials& credentials) const;
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& rpc) const;

  // Rereads the token file (SIGHUP). On error the tokens before stay in force.
  absl::Status Reload();
  size_t tokens() const;
  // Tenants named in the token file, sorted.
  std::vector<std::string> Tenants() const;

  // Use Create (which also loads the file); this one starts with no tokens.
  Authenticator(std::string tokens_path, bool client_certificates)
      : tokens_path_(std::move(tokens_path)), client_certificates_(client_certificates) {}

 private:
  std::shared_ptr<const TokenTable> table() const;

  const std::string tokens_path_;
  const bool client_certificates_;
  mutable std::mutex mu_;
  std::shared_ptr<const TokenTable> table_ =
      std::make_shared<const TokenTable>();  // guarded by mu_; replaced whole on reload
};

}  // namespace sparsed::server
