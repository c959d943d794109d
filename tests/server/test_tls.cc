// MakeServerCredentials: which settings give plaintext, TLS or mutual TLS, and
// that every bad setting is refused naming the key and the path. (Handshakes
// with real certificates are tested end to end in tests/integration/test_tls.py.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "server/config.h"
#include "server/tls.h"

namespace sparsed::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// gRPC parses PEM only at the first handshake, so placeholder blocks are
// enough to get credentials back.
constexpr const char* kCertPem =
    "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
constexpr const char* kKeyPem =
    "-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----\n";

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(testing::TempDir()) / ("tls_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    cert_ = Write("cert.pem", kCertPem);
    key_ = Write("key.pem", kKeyPem);
    ca_ = Write("ca.pem", kCertPem);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  absl::Status Make(const std::string& cert, const std::string& key, const std::string& ca = "") {
    Config c;
    c.tls_cert = cert;
    c.tls_key = key;
    c.tls_client_ca = ca;
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> made = MakeServerCredentials(c);
    if (made.ok() && *made == nullptr) return absl::InternalError("null credentials");
    return made.status();
  }

  std::filesystem::path dir_;
  std::string cert_, key_, ca_;
};

#define EXPECT_INVALID(expr, ...)                                   \
  do {                                                              \
    const absl::Status _s = (expr);                                 \
    EXPECT_EQ(_s.code(), absl::StatusCode::kInvalidArgument) << _s; \
    EXPECT_THAT(std::string(_s.message()), AllOf(__VA_ARGS__));     \
  } while (0)

TEST_F(TlsTest, PlaintextTlsAndMutualTls) {
  EXPECT_TRUE(Make("", "").ok());
  EXPECT_TRUE(Make(cert_, key_).ok()) << Make(cert_, key_);
  EXPECT_TRUE(Make(cert_, key_, ca_).ok()) << Make(cert_, key_, ca_);
}

TEST_F(TlsTest, CertAndKeyComeTogether) {
  EXPECT_INVALID(Make(cert_, ""), HasSubstr("tls_cert = '" + cert_ + "'"), HasSubstr("tls_key"));
  EXPECT_INVALID(Make("", key_), HasSubstr("tls_key = '" + key_ + "'"), HasSubstr("tls_cert"));
  EXPECT_INVALID(Make("", "", ca_), HasSubstr("tls_client_ca = '" + ca_ + "'"),
                 HasSubstr("tls_cert"));
}

TEST_F(TlsTest, UnreadableFilesAreNamed) {
  const std::string missing = (dir_ / "missing.pem").string();
  EXPECT_INVALID(Make(missing, key_), HasSubstr("tls_cert = '" + missing + "'"),
                 HasSubstr("cannot be read"));
  EXPECT_INVALID(Make(cert_, missing), HasSubstr("tls_key = '" + missing + "'"));
  EXPECT_INVALID(Make(cert_, key_, missing), HasSubstr("tls_client_ca = '" + missing + "'"));
  EXPECT_INVALID(Make(dir_.string(), key_), HasSubstr("tls_cert = '" + dir_.string() + "'"));
}

TEST_F(TlsTest, FilesMustHoldThePemBlockTheyAreFor) {
  const std::string text = Write("notes.txt", "not a certificate\n");
  EXPECT_INVALID(Make(text, key_), HasSubstr("tls_cert = '" + text + "'"), HasSubstr("PEM"));
  EXPECT_INVALID(Make(cert_, text), HasSubstr("tls_key = '" + text + "'"), HasSubstr("PEM"));
  EXPECT_INVALID(Make(cert_, key_, text), HasSubstr("tls_client_ca = '" + text + "'"));
  const std::string empty = Write("empty.pem", "");
  EXPECT_INVALID(Make(empty, key_), HasSubstr("tls_cert"), HasSubstr("PEM"));
  // Swapped certificate and key are caught here, not at the first handshake.
  EXPECT_INVALID(Make(key_, cert_), HasSubstr("tls_cert = '" + key_ + "'"),
                 HasSubstr("CERTIFICATE"));
}

TEST(TlsConfigTest, KeysComeFromEnvAndFlags) {
  Config c;
  const absl::Status env = ApplyConfigEnv(c, [](const char* name) -> const char* {
    if (std::string(name) == "SPARSED_TLS_CERT") return "/etc/sparsed/cert.pem";
    if (std::string(name) == "SPARSED_TLS_KEY") return "/etc/sparsed/key.pem";
    return nullptr;
  });
  ASSERT_TRUE(env.ok()) << env;
  ASSERT_TRUE(ApplyConfigFlags(c, {{"tls_client_ca", "/etc/sparsed/ca.pem"}}).ok());
  EXPECT_EQ(c.tls_cert, "/etc/sparsed/cert.pem");
  EXPECT_EQ(c.tls_key, "/etc/sparsed/key.pem");
  EXPECT_EQ(c.tls_client_ca, "/etc/sparsed/ca.pem");
}

}  // namespace
}  // namespace sparsed::server
