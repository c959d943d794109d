#include "server/auth.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

std::array<uint8_t, 32> Digest(std::string_view bytes) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  // EVP_Digest cannot fail for SHA-256 on in-memory input short of memory
  // exhaustion; a zero digest then matches no entry (digests of tokens are
  // never all zero in practice), so failing closed.
  if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
    out.fill(0);
  }
  return out;
}

std::string Hex(const std::array<uint8_t, 32>& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(64);
  for (uint8_t b : d) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::array<uint8_t, 32>> ParseDigest(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::array<uint8_t, 32> d{};
  for (size_t i = 0; i < 32; ++i) {
    const int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return d;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

absl::Status CheckTenantName(std::string_view tenant, std::string_view field) {
  // Tenants name folders (checkpoints/tenants/TENANT), so no leading dot
  // ("." and ".." would walk out of it).
  const bool ok =
      !tenant.empty() && tenant.size() <= 64 && tenant.front() != '.' &&
      std::all_of(tenant.begin(), tenant.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat(field, ": tenant '", tenant.substr(0, 80),
             "' must be 1-64 characters of A-Z a-z 0-9 . _ -, not beginning with '.'"));
}

std::string TokenDigestHex(std::string_view token) { return Hex(Digest(token)); }

absl::StatusOr<TokenTable> TokenTable::Parse(std::string_view text, std::string_view source) {
  TokenTable table;
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string word; words >> word;) w.push_back(word);
    if (w.empty()) continue;
    const std::string where = StrCat(source, ":", number);
    if (w.size() != 3) {
      return absl::InvalidArgumentError(
          StrCat(where, ": expected 'SHA256-OF-TOKEN TENANT ROLE', found ", w.size(), " fields"));
    }
    const std::optional<std::array<uint8_t, 32>> digest = ParseDigest(w[0]);
    if (!digest) {
      return absl::InvalidArgumentError(
          StrCat(where,
                 ": the first field must be the 64 hex digits of the token's SHA-256 (not the "
                 "token itself: printf %s TOKEN | sha256sum)"));
    }
    RETURN_IF_ERROR(CheckTenantName(w[1], where));
    Entry e{*digest, Caller{w[1], Role::kUser}};
    if (w[2] == "admin") {
      e.caller.role = Role::kAdmin;
    } else if (w[2] != "user") {
      return absl::InvalidArgumentError(
          StrCat(where, ": role '", w[2].substr(0, 40), "' is neither 'user' nor 'admin'"));
    }
    for (const Entry& other : table.entries_) {
      if (other.digest == e.digest) {
        return absl::InvalidArgumentError(StrCat(where, ": this token digest is listed twice"));
      }
    }
    table.entries_.push_back(std::move(e));
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::InvalidArgumentError(StrCat("auth_tokens: cannot read '", path, "'"));
  std::ostringstream text;
  text << f.rdbuf();
  constexpr size_t kMaxBytes = 16 << 20;
  if (text.str().size() > kMaxBytes) {
    return absl::InvalidArgumentError(
        StrCat("auth_tokens: '", path, "' is larger than ", kMaxBytes, " bytes"));
  }
  return Parse(text.str(), path);
}

std::optional<Caller> TokenTable::Find(std::string_view token) const {
  const std::array<uint8_t, 32> d = Digest(token);
  std::optional<Caller> found;
  // Every entry is compared, in constant time, so that the time taken does
  // not tell how much of a digest matched or where in the table it is.
  for (const Entry& e : entries_) {
    if (CRYPTO_memcmp(e.digest.data(), d.data(), d.size()) == 0) found = e.caller;
  }
  return found;
}

std::vector<std::string> TokenTable::Tenants() const {
  std::set<std::string> tenants;
  for (const Entry& e : entries_) tenants.insert(e.caller.tenant);
  return {tenants.begin(), tenants.end()};
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(std::string tokens_path,
                                                                     bool client_certificates) {
  auto auth = std::make_unique<Authenticator>(std::move(tokens_path), client_certificates);
  if (!auth->tokens_path_.empty()) RETURN_IF_ERROR(auth->Reload());
  return auth;
}

std::shared_ptr<const TokenTable> Authenticator::table() const {
  std::lock_guard lock(mu_);
  return table_;
}

absl::Status Authenticator::Reload() {
  if (tokens_path_.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(TokenTable loaded, TokenTable::Load(tokens_path_));
  auto fresh = std::make_shared<const TokenTable>(std::move(loaded));
  std::lock_guard lock(mu_);
  table_ = std::move(fresh);
  return absl::OkStatus();
}

size_t Authenticator::tokens() const { return table()->size(); }

std::vector<std::string> Authenticator::Tenants() const { return table()->Tenants(); }

absl::StatusOr<Caller> Authenticator::Authenticate(const Credentials& credentials) const {
  if (!enabled()) return Caller{};
  if (credentials.authorization.size() > 1) {
    return absl::UnauthenticatedError("more than one 'authorization' metadata entry");
  }
  if (credentials.authorization.size() == 1) {
    std::string_view value = credentials.authorization[0];
    constexpr std::string_view kBearer = "bearer ";
    if (value.size() <= kBearer.size() || !EqualsIgnoringCase(value.substr(0, 7), kBearer)) {
      return absl::UnauthenticatedError("the 'authorization' metadata must be 'Bearer TOKEN'");
    }
    value.remove_prefix(kBearer.size());
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (std::optional<Caller> caller = table()->Find(value)) return *caller;
    return absl::UnauthenticatedError("the bearer token is not known to this daemon");
  }
  if (client_certificates_ && !credentials.certificate_name.empty()) {
    if (absl::Status s = CheckTenantName(credentials.certificate_name, "client certificate");
        !s.ok()) {
      return absl::UnauthenticatedError(s.message());
    }
    return Caller{credentials.certificate_name, Role::kUser};
  }
  return absl::UnauthenticatedError(
      client_certificates_
          ? "no credentials: present a client certificate or send 'authorization: Bearer TOKEN'"
          : "no credentials: send the metadata 'authorization: Bearer TOKEN'");
}

absl::StatusOr<Caller> Authenticator::Authenticate(const grpc::ServerContextBase& rpc) const {
  if (!enabled()) return Caller{};
  Credentials credentials;
  const auto range = rpc.client_metadata().equal_range("authorization");
  for (auto it = range.first; it != range.second; ++it) {
    credentials.authorization.emplace_back(it->second.data(), it->second.size());
  }
  if (client_certificates_) {
    const std::shared_ptr<const grpc::AuthContext> peer = rpc.auth_context();
    if (peer != nullptr && peer->IsPeerAuthenticated()) {
      const std::vector<grpc::string_ref> names = peer->FindPropertyValues("x509_common_name");
      if (!names.empty()) credentials.certificate_name.assign(names[0].data(), names[0].size());
    }
  }
  return Authenticate(credentials);
}

}  // namespace sparsed::server
