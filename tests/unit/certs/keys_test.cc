// SPDX-License-Identifier: Apache-2.0
// Keys and certificates: generate_key, inspect, key_matches, normalize_names, and berth's own
// CA (create, load, issue), with OpenSSL's verifier (X509_verify_cert) and `openssl verify`
// as the oracles.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "certs/certs.h"
#include "certs/ossl.h"
#include "support/harness.h"

namespace berth::certs {
namespace {

using test::run;
using test::TempDir;
using test::write_file;

// Verifies leaf_pem against root_pem for serverAuth at `when` (0: now), with OpenSSL's
// verifier. Returns "" or the verifier's error.
std::string verify_chain(const std::string& leaf_pem, const std::string& root_pem,
                         const std::string& host = "", time_t when = 0) {
  auto leaf = detail::read_certificates(leaf_pem);
  auto root = detail::read_certificates(root_pem);
  if (!leaf || !root) {
    return "unreadable";
  }
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root->front().get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf->front().get(), nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
  if (!host.empty()) {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  if (when != 0) {
    X509_VERIFY_PARAM_set_time(param, when);
  }
  int rc = X509_verify_cert(ctx);
  std::string out = rc == 1 ? "" : X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return out;
}

TEST(CertsKeysTest, GeneratesP256Pkcs8Keys) {
  auto a = generate_key();
  auto b = generate_key();
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(b);
  EXPECT_EQ(a->rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u) << *a;
  EXPECT_NE(*a, *b);
  auto key = detail::read_private_key(*a);
  ASSERT_TRUE(key);
  EXPECT_TRUE(detail::is_p256(key->get()));
  TempDir t;
  write_file(t / "k.pem", *a);
  auto text = run("openssl pkey -in " + (t / "k.pem") + " -noout -text");
  ASSERT_EQ(text.code, 0) << text.all();
  EXPECT_NE(text.out.find("prime256v1"), std::string::npos) << text.out;
}

TEST(CertsKeysTest, InspectReadsWhatOpensslWrote) {
  TempDir t;
  auto gen = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                 (t / "key.pem") + " -out " + (t / "cert.pem") +
                 " -days 2 -set_serial 0x0a1b2c -subj /O=Acme/CN=Test\\ Issuer "
                 "-addext subjectAltName=DNS:Example.COM,DNS:*.example.com,IP:127.0.0.1");
  ASSERT_EQ(gen.code, 0) << gen.all();
  std::string cert = test::read_file(t / "cert.pem");
  auto info = inspect(cert + cert);  // the first of a chain
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->names, (std::vector<std::string>{"example.com", "*.example.com"}));
  EXPECT_EQ(info->issuer, "Test Issuer");
  EXPECT_EQ(info->serial, "a1b2c");
  int64_t now = std::time(nullptr);
  EXPECT_LE(info->not_before, now);
  EXPECT_GE(info->not_before, now - 600);
  EXPECT_EQ(info->not_after - info->not_before, 2 * 24 * 3600);

  auto match = key_matches(cert, test::read_file(t / "key.pem"));
  ASSERT_TRUE(match);
  EXPECT_TRUE(*match);
  auto other = generate_key();
  ASSERT_TRUE(other);
  auto mismatch = key_matches(cert, *other);
  ASSERT_TRUE(mismatch);
  EXPECT_FALSE(*mismatch);
}

TEST(CertsKeysTest, InspectSaysWhatIsWrong) {
  auto empty = inspect("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Errc::InvalidArgument);
  EXPECT_NE(empty.error().message().find("no PEM certificate"), std::string::npos)
      << empty.error().message();
  auto garbage =
      inspect("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code(), Errc::InvalidArgument);
  EXPECT_NE(garbage.error().message().find("certificate 1"), std::string::npos);
  auto bad_key = key_matches("", "not a key");
  ASSERT_FALSE(bad_key);
  EXPECT_EQ(bad_key.error().code(), Errc::InvalidArgument);
}

TEST(CertsKeysTest, NormalizesNames) {
  auto ok = normalize_names({"Example.COM", "*.Preview.example.com", "a-b.c1"});
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(*ok, (std::vector<std::string>{"example.com", "*.preview.example.com", "a-b.c1"}));
  const char* bad[] = {"",        "*.",           "a..b",         "example.com.",
                       "-a.com",  "a-.com",       "a.*.com",      "*a.com",
                       "a b.com", "exa_mple.com", "ex/ample.com", "**.example.com"};
  for (const char* n : bad) {
    auto r = normalize_names({n});
    EXPECT_FALSE(r) << n;
    if (!r) {
      EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
      EXPECT_NE(r.error().message().find(std::string("'") + n + "'"), std::string::npos)
          << r.error().message();
    }
  }
  EXPECT_FALSE(normalize_names({}));
  EXPECT_FALSE(normalize_names({"a.com", "A.com"}));  // twice
  EXPECT_FALSE(normalize_names({std::string(64, 'a') + ".com"}));
  EXPECT_TRUE(normalize_names({std::string(63, 'a') + ".com"}));
}

TEST(CertsAuthorityTest, CreatesARootThatSignsVerifiableLeaves) {
  auto ca = Authority::create();
  ASSERT_TRUE(ca) << ca.error().message();
  auto root = inspect(ca->root_pem());
  ASSERT_TRUE(root);
  EXPECT_EQ(root->issuer.rfind("berth root CA ", 0), 0u) << root->issuer;
  EXPECT_EQ(root->issuer.size(), std::string("berth root CA ").size() + 8);
  EXPECT_GE(root->not_after - root->not_before, int64_t{10} * 365 * 24 * 3600);
  auto roots = detail::read_certificates(ca->root_pem());
  ASSERT_TRUE(roots);
  EXPECT_EQ(X509_check_ca(roots->front().get()), 1);

  auto leaf = ca->issue({"Web.Example.com", "*.preview.example.com"}, std::chrono::hours(24));
  ASSERT_TRUE(leaf) << leaf.error().message();
  EXPECT_EQ(leaf->info.names,
            (std::vector<std::string>{"web.example.com", "*.preview.example.com"}));
  EXPECT_EQ(leaf->info.issuer, root->issuer);
  EXPECT_EQ(leaf->info.not_after - leaf->info.not_before, 24 * 3600 + 3600);
  int64_t now = std::time(nullptr);
  EXPECT_LE(leaf->info.not_before, now - 3500);
  auto matches = key_matches(leaf->chain_pem, leaf->key_pem);
  ASSERT_TRUE(matches);
  EXPECT_TRUE(*matches);
  // Leaf only: the root is distributed separately.
  auto chain = detail::read_certificates(leaf->chain_pem);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->size(), 1u);

  EXPECT_EQ(verify_chain(leaf->chain_pem, ca->root_pem(), "web.example.com"), "");
  EXPECT_EQ(verify_chain(leaf->chain_pem, ca->root_pem(), "pr-12.preview.example.com"), "");
  EXPECT_NE(verify_chain(leaf->chain_pem, ca->root_pem(), "a.b.preview.example.com"), "");
  EXPECT_NE(verify_chain(leaf->chain_pem, ca->root_pem(), "other.example.com"), "");
  EXPECT_NE(verify_chain(leaf->chain_pem, ca->root_pem(), "", now + 2 * 24 * 3600), "");
  // Another CA's root does not verify it.
  auto other = Authority::create();
  ASSERT_TRUE(other);
  EXPECT_NE(verify_chain(leaf->chain_pem, other->root_pem()), "");

  // And the openssl CLI agrees.
  TempDir t;
  write_file(t / "root.pem", ca->root_pem());
  write_file(t / "leaf.pem", leaf->chain_pem);
  auto v =
      run("openssl verify -purpose sslserver -CAfile " + (t / "root.pem") + " " + (t / "leaf.pem"));
  EXPECT_EQ(v.code, 0) << v.all();
  auto text = run("openssl x509 -in " + (t / "leaf.pem") + " -noout -ext extendedKeyUsage");
  EXPECT_NE(text.out.find("TLS Web Server Authentication"), std::string::npos) << text.all();
}

TEST(CertsAuthorityTest, LoadChecksTheKeyAndTheCaFlag) {
  auto ca = Authority::create();
  ASSERT_TRUE(ca);
  auto again = Authority::load(ca->root_pem(), ca->key_pem());
  ASSERT_TRUE(again) << again.error().message();
  auto leaf = again->issue({"x.example"}, std::chrono::hours(1));
  ASSERT_TRUE(leaf);
  EXPECT_EQ(verify_chain(leaf->chain_pem, ca->root_pem()), "");

  auto other_key = generate_key();
  ASSERT_TRUE(other_key);
  auto wrong = Authority::load(ca->root_pem(), *other_key);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Errc::InvalidArgument);
  EXPECT_NE(wrong.error().message().find("not the private key"), std::string::npos);

  // A leaf is not a CA.
  auto not_ca = Authority::load(leaf->chain_pem, leaf->key_pem);
  ASSERT_FALSE(not_ca);
  EXPECT_NE(not_ca.error().message().find("not a CA"), std::string::npos);
  EXPECT_FALSE(Authority::load("junk", ca->key_pem()));
}

TEST(CertsAuthorityTest, IssueRefusesBadInput) {
  auto ca = Authority::create();
  ASSERT_TRUE(ca);
  auto bad_name = ca->issue({"bad name"}, std::chrono::hours(1));
  ASSERT_FALSE(bad_name);
  EXPECT_EQ(bad_name.error().code(), Errc::InvalidArgument);
  EXPECT_FALSE(ca->issue({}, std::chrono::hours(1)));
  EXPECT_FALSE(ca->issue({"a.example"}, std::chrono::seconds(0)));
  // A long first name has no CN; the SAN carries it.
  std::string long_name = std::string(60, 'a') + "." + std::string(60, 'b') + ".example";
  auto leaf = ca->issue({long_name}, std::chrono::hours(1));
  ASSERT_TRUE(leaf) << leaf.error().message();
  EXPECT_EQ(leaf->info.names, (std::vector<std::string>{long_name}));
  EXPECT_EQ(verify_chain(leaf->chain_pem, ca->root_pem(), long_name), "");
}

}  // namespace
}  // namespace berth::certs
