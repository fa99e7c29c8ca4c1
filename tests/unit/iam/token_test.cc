// SPDX-License-Identifier: Apache-2.0
// ES256 tokens and the in-memory enforcing authorizer.
#include <gtest/gtest.h>

#include "common/url.h"
#include "iam/iam.h"
#include "support/harness.h"

namespace berth::iam {
namespace {

TEST(Base64Test, RoundTripsAndRejectsJunk) {
  const std::vector<std::string> inputs = {"",     "f",     "fo",     "foo",
                                           "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)};
  for (const auto& s : inputs) {
    EXPECT_EQ(*b64::decode(b64::encode(s)), s);
    EXPECT_EQ(*b64::url_decode(b64::url_encode(s)), s);
  }
  EXPECT_EQ(b64::encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(b64::encode("fo"), "Zm8=");
  EXPECT_FALSE(b64::decode("Zm9v!"));
  EXPECT_FALSE(b64::url_decode("a+b"));
}

TEST(TokenSignerTest, SignsVerifiesAndRejectsTamperingAndOtherKeys) {
  test::TempDir dir;
  auto signer = TokenSigner::load_or_create(dir / "token.key");
  ASSERT_TRUE(signer);
  std::string tok = (*signer)->sign(R"({"sub":"user/ci"})");
  auto payload = (*signer)->verify(tok);
  ASSERT_TRUE(payload);
  EXPECT_EQ(*payload, R"({"sub":"user/ci"})");
  // The same key is loaded back on restart.
  auto again = TokenSigner::load_or_create(dir / "token.key");
  ASSERT_TRUE(again);
  EXPECT_TRUE((*again)->verify(tok));
  // A changed payload, a changed signature and another key all fail.
  std::string forged = tok.substr(0, tok.find('.') + 1) +
                       b64::url_encode(R"({"sub":"user/admin"})") + tok.substr(tok.rfind('.'));
  EXPECT_FALSE((*signer)->verify(forged));
  std::string bad_sig = tok;
  // (Not the last character: its low bits are padding that decoding ignores.)
  char& c = bad_sig[bad_sig.size() - 10];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_FALSE((*signer)->verify(bad_sig));
  test::TempDir other_dir;
  auto other = TokenSigner::load_or_create(other_dir / "token.key");
  ASSERT_TRUE(other);
  EXPECT_FALSE((*other)->verify(tok));
  EXPECT_FALSE((*signer)->verify("not.a.token"));
}

TEST(PolicyAuthorizerTest, ReloadPicksUpKeysAndPolicies) {
  auto s = store::open_sqlite(":memory:");
  ASSERT_TRUE(s);
  auto& st = **s;
  PolicyAuthorizer authz(st);
  ASSERT_TRUE(authz.reload());
  Request push{"user/ci", "registry:Push", "repository/web/app"};
  EXPECT_FALSE(authz.authorize(push));
  ASSERT_TRUE(st.create_principal(store::Principal{"user", "ci", 1}));
  ASSERT_TRUE(st.create_key(store::AccessKey{"BK1", "ci", hash_secret("s3cret"), true, 1}));
  ASSERT_TRUE(st.put_policy(store::AttachedPolicy{
      "user", "ci", "p",
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"registry:*","Resource":"repository/web/*"}]})",
      1}));
  EXPECT_FALSE(authz.authenticate("BK1", "s3cret"));  // not reloaded yet
  ASSERT_TRUE(authz.reload());
  EXPECT_EQ(*authz.authenticate("BK1", "s3cret"), "user/ci");
  EXPECT_FALSE(authz.authenticate("BK1", "wrong"));
  EXPECT_FALSE(authz.authenticate("BK2", "s3cret"));
  EXPECT_TRUE(authz.authorize(push));
  auto denied = authz.authorize(Request{"user/ci", "registry:Push", "repository/api/app"});
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().message(),
            "AccessDenied: user/ci may not registry:Push on repository api/app");
}

}  // namespace
}  // namespace berth::iam
