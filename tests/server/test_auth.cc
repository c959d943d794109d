// Token file parsing and caller identification (server/auth.h). Digests are
// checked against sha256sum's known answers, not against our own function.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "server/auth.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// printf %s abc | sha256sum ; printf %s s3cret | sha256sum
constexpr char kAbc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kS3cret[] = "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0";

TEST(TokenTableTest, DigestIsSha256OfTheToken) {
  EXPECT_EQ(TokenDigestHex("abc"), kAbc);
  EXPECT_EQ(TokenDigestHex("s3cret"), kS3cret);
}

TEST(TokenTableTest, ParsesLinesCommentsAndRoles) {
  const std::string text = std::string("# tokens\n\n") + kAbc + "  alice user   # laptop\n" +
                           kS3cret + "\tops-team admin\n";
  auto table = TokenTable::Parse(text, "tokens.txt");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2u);
  auto alice = table->Find("abc");
  ASSERT_TRUE(alice.has_value());
  EXPECT_EQ(alice->tenant, "alice");
  EXPECT_FALSE(alice->admin());
  auto ops = table->Find("s3cret");
  ASSERT_TRUE(ops.has_value());
  EXPECT_EQ(ops->tenant, "ops-team");
  EXPECT_TRUE(ops->admin());
  EXPECT_FALSE(table->Find("abd").has_value());
  EXPECT_FALSE(table->Find("").has_value());
  EXPECT_FALSE(table->Find(kAbc).has_value());  // the digest is not the token
  EXPECT_EQ(table->Tenants(), (std::vector<std::string>{"alice", "ops-team"}));
}

TEST(TokenTableTest, BadLinesNameTheFileAndLine) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::string ok = std::string(kAbc) + " alice user\n";
  const Case cases[] = {
      {ok + "abc alice user\n", "tokens:2: the first field must be the 64 hex digits"},
      {ok + std::string(kS3cret) + " bob\n", "tokens:2: expected 'SHA256-OF-TOKEN TENANT ROLE'"},
      {ok + std::string(kS3cret) + " bob root\n", "tokens:2: role 'root'"},
      {ok + std::string(kS3cret) + " b/ob user\n", "tenant 'b/ob'"},
      {ok + std::string(kAbc) + " bob user\n", "tokens:2: this token digest is listed twice"},
      {std::string(63, 'a') + "g alice user\n", "tokens:1: the first field"},
  };
  for (const Case& c : cases) {
    auto table = TokenTable::Parse(c.text, "tokens");
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(table.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(TenantNameTest, OnlySafeCharacters) {
  EXPECT_TRUE(CheckTenantName("team-a.prod_1", "t").ok());
  EXPECT_FALSE(CheckTenantName("", "t").ok());
  // Tenants name folders (checkpoints/tenants/TENANT): nothing that walks out.
  EXPECT_FALSE(CheckTenantName("..", "t").ok());
  EXPECT_FALSE(CheckTenantName(".", "t").ok());
  EXPECT_FALSE(CheckTenantName(".hidden", "t").ok());
  EXPECT_FALSE(CheckTenantName("a/b", "t").ok());
  EXPECT_FALSE(CheckTenantName(std::string("a\0b", 3), "t").ok());
  EXPECT_FALSE(CheckTenantName(std::string(65, 'a'), "t").ok());
}

TEST(AuthenticatorTest, OffMeansEveryoneIsTheSharedAdmin) {
  auto auth = Authenticator::Create("", false);
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE((*auth)->enabled());
  auto caller = (*auth)->Authenticate(Credentials{});
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->tenant, "");
  EXPECT_TRUE(caller->admin());
}

class AuthenticatorFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("sparsed_tokens_" + std::to_string(::getpid()) + ".txt"))
                .string();
    Write(std::string(kAbc) + " alice user\n");
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  std::string path_;
};

TEST_F(AuthenticatorFileTest, BearerTokensAreCheckedAndNeverEchoed) {
  auto created = Authenticator::Create(path_, false);
  ASSERT_TRUE(created.ok()) << created.status();
  const Authenticator& auth = **created;
  EXPECT_TRUE(auth.enabled());

  auto alice = auth.Authenticate(Credentials{{"Bearer abc"}, ""});
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->tenant, "alice");
  EXPECT_FALSE(alice->admin());
  EXPECT_TRUE(auth.Authenticate(Credentials{{"bearer abc"}, ""}).ok());

  const struct {
    Credentials credentials;
    std::string message;
  } refused[] = {
      {{{}, ""}, "no credentials"},
      {{{"Bearer wrong-token-xyz"}, ""}, "not known"},
      {{{"Basic abc"}, ""}, "must be 'Bearer TOKEN'"},
      {{{"Bearer "}, ""}, "must be 'Bearer TOKEN'"},
      {{{"Bearer abc", "Bearer abc"}, ""}, "more than one"},
      // A certificate name counts only when client certificates are on.
      {{{}, "alice"}, "no credentials"},
  };
  for (const auto& r : refused) {
    auto caller = auth.Authenticate(r.credentials);
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << r.message;
    EXPECT_THAT(caller.status().message(), HasSubstr(r.message));
    EXPECT_THAT(caller.status().message(), Not(HasSubstr("wrong-token-xyz")));
  }
}

TEST_F(AuthenticatorFileTest, ReloadReplacesTokensAndKeepsThemOnError) {
  auto created = Authenticator::Create(path_, false);
  ASSERT_TRUE(created.ok());
  Authenticator& auth = **created;
  Write(std::string(kS3cret) + " bob admin\n");
  ASSERT_TRUE(auth.Reload().ok());
  EXPECT_EQ(auth.Authenticate(Credentials{{"Bearer abc"}, ""}).status().code(),
            absl::StatusCode::kUnauthenticated);
  auto bob = auth.Authenticate(Credentials{{"Bearer s3cret"}, ""});
  ASSERT_TRUE(bob.ok());
  EXPECT_TRUE(bob->admin());

  Write("not a token file\n");
  EXPECT_EQ(auth.Reload().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(auth.Authenticate(Credentials{{"Bearer s3cret"}, ""}).ok());  // still in force
  std::filesystem::remove(path_);
  EXPECT_FALSE(auth.Reload().ok());
  EXPECT_TRUE(auth.Authenticate(Credentials{{"Bearer s3cret"}, ""}).ok());
}

TEST(AuthenticatorTest, MissingTokenFileFailsAtCreation) {
  auto auth = Authenticator::Create("/nonexistent/sparsed/tokens", false);
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(auth.status().message(), HasSubstr("/nonexistent/sparsed/tokens"));
}

TEST(AuthenticatorTest, ClientCertificateNamesTheTenantAsAUser) {
  auto created = Authenticator::Create("", true);
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE((*created)->enabled());
  auto caller = (*created)->Authenticate(Credentials{{}, "lab-3"});
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->tenant, "lab-3");
  EXPECT_FALSE(caller->admin());
  EXPECT_EQ((*created)->Authenticate(Credentials{{}, "CN with spaces"}).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ((*created)->Authenticate(Credentials{}).status().code(),
            absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace sparsed::server
