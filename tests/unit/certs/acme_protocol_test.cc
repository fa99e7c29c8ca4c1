// SPDX-License-Identifier: Apache-2.0
// The pure half of the ACME client: JWK thumbprints (RFC 7638's own example), JWS signing and
// its ES256 r||s form, key authorizations, problem documents, orders, authorizations,
// Retry-After and URLs.
#include "certs/acme_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "certs/certs.h"
#include "certs/jws.h"
#include "certs/ossl.h"
#include "common/url.h"
#include "support/harness.h"

namespace berth::certs {
namespace {

TEST(CertsJwsTest, ThumbprintMatchesRfc7638Example) {
  // RFC 7638 section 3.1: the RSA key and its published thumbprint. The extra members (alg,
  // kid) must not count.
  auto jwk = parse_json(R"({
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29"
  })");
  ASSERT_TRUE(jwk);
  auto t = jws::thumbprint(*jwk);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(*t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_FALSE(jws::thumbprint(*parse_json(R"({"kty":"oct","k":"abc"})")));
  EXPECT_FALSE(jws::thumbprint(*parse_json(R"({"kty":"EC","crv":"P-256","x":"a"})")));
}

TEST(CertsJwsTest, EcThumbprintUsesTheRequiredMembersInOrder) {
  auto key = detail::new_p256_key();
  ASSERT_TRUE(key);
  auto jwk = jws::public_jwk(key->get());
  ASSERT_TRUE(jwk);
  EXPECT_EQ((*jwk)["kty"], "EC");
  EXPECT_EQ((*jwk)["crv"], "P-256");
  EXPECT_EQ((*jwk)["x"].get<std::string>().size(), 43u);  // 32 bytes, base64url
  std::string canonical = R"({"crv":"P-256","kty":"EC","x":")" + (*jwk)["x"].get<std::string>() +
                          R"(","y":")" + (*jwk)["y"].get<std::string>() + "\"}";
  auto t = jws::thumbprint(*jwk);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, b64::url_encode(detail::sha256_raw(canonical)));
}

TEST(CertsJwsTest, SignsFlattenedJwsWithRawEs256) {
  auto key = detail::new_p256_key();
  ASSERT_TRUE(key);
  auto body = jws::sign(key->get(), "", "nonce-1", "https://ca/new-acct", R"({"a":1})");
  ASSERT_TRUE(body) << body.error().message();
  auto j = parse_json(*body);
  ASSERT_TRUE(j);
  auto header = parse_json(*b64::url_decode((*j)["protected"].get<std::string>()));
  ASSERT_TRUE(header);
  EXPECT_EQ((*header)["alg"], "ES256");
  EXPECT_EQ((*header)["nonce"], "nonce-1");
  EXPECT_EQ((*header)["url"], "https://ca/new-acct");
  EXPECT_TRUE(header->contains("jwk"));
  EXPECT_FALSE(header->contains("kid"));
  EXPECT_EQ(*b64::url_decode((*j)["payload"].get<std::string>()), R"({"a":1})");
  auto sig = b64::url_decode((*j)["signature"].get<std::string>());
  ASSERT_TRUE(sig);
  ASSERT_EQ(sig->size(), 64u);  // r||s, not DER
  std::string input =
      (*j)["protected"].get<std::string>() + "." + (*j)["payload"].get<std::string>();
  EXPECT_TRUE(jws::es256_verify(key->get(), input, *sig));
  EXPECT_FALSE(jws::es256_verify(key->get(), input + "x", *sig));

  // With a kid and an empty payload (POST-as-GET).
  auto get = jws::sign(key->get(), "https://ca/acct/1", "n2", "https://ca/order/1", "");
  ASSERT_TRUE(get);
  auto g = parse_json(*get);
  auto gh = parse_json(*b64::url_decode((*g)["protected"].get<std::string>()));
  EXPECT_EQ((*gh)["kid"], "https://ca/acct/1");
  EXPECT_FALSE(gh->contains("jwk"));
  EXPECT_EQ((*g)["payload"], "");
}

TEST(CertsJwsTest, KeyAuthorizationAndDnsValue) {
  Challenge c;
  c.type = Challenge::Type::dns01;
  c.domain = "preview.example.com";
  c.token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
  // RFC 8555 8.1: token "." thumbprint.
  c.key_authorization =
      jws::key_authorization(c.token, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_EQ(
      c.key_authorization,
      "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_EQ(c.dns_name(), "_acme-challenge.preview.example.com");
  EXPECT_EQ(c.dns_value(), b64::url_encode(detail::sha256_raw(c.key_authorization)));
  EXPECT_EQ(c.dns_value().size(), 43u);
  EXPECT_EQ(c.http_path(), "/.well-known/acme-challenge/" + c.token);
  EXPECT_STREQ(challenge_type_name(Challenge::Type::http01), "http-01");
}

TEST(CertsAcmeProtocolTest, ProblemDocuments) {
  auto p = acme::parse_problem(R"({
    "type": "urn:ietf:params:acme:error:rejectedIdentifier",
    "detail": "Order included an identifier for which issuance is forbidden by policy: \"x.test\"",
    "status": 400,
    "subproblems": [{"type": "urn:ietf:params:acme:error:caa", "detail": "CAA forbids",
                     "identifier": {"type": "dns", "value": "x.test"}}, 7]
  })");
  ASSERT_TRUE(p);
  EXPECT_TRUE(acme::is_problem(*p, "rejectedIdentifier"));
  EXPECT_FALSE(acme::is_problem(*p, "rejected"));
  EXPECT_EQ(p->status, 400);
  ASSERT_EQ(p->subproblems.size(), 1u);
  auto e = acme::problem_error(*p, 400);
  EXPECT_EQ(e.code(), Errc::FailedPrecondition);
  EXPECT_EQ(e.message(),
            "acme: urn:ietf:params:acme:error:rejectedIdentifier: Order included an identifier "
            "for which issuance is forbidden by policy: \"x.test\"; x.test: "
            "urn:ietf:params:acme:error:caa: CAA forbids");

  auto rate = acme::parse_problem(R"({"type":"urn:ietf:params:acme:error:rateLimited"})");
  ASSERT_TRUE(rate);
  EXPECT_EQ(acme::problem_error(*rate, 429).code(), Errc::ResourceExhausted);
  EXPECT_EQ(acme::problem_error(*rate, 429).message(),
            "acme: urn:ietf:params:acme:error:rateLimited");
  auto internal = acme::parse_problem(R"({"type":"urn:ietf:params:acme:error:serverInternal"})");
  EXPECT_EQ(acme::problem_error(*internal, 500).code(), Errc::Unavailable);
  auto other = acme::parse_problem(R"({"type":"about:blank","detail":"x"})");
  EXPECT_EQ(acme::problem_error(*other, 503).code(), Errc::Unavailable);

  EXPECT_FALSE(acme::parse_problem("not json"));
  EXPECT_FALSE(acme::parse_problem("[]"));
  EXPECT_FALSE(acme::parse_problem(R"({"type": 5})"));
}

TEST(CertsAcmeProtocolTest, DirectoryOrderAuthorization) {
  auto d = acme::parse_directory(R"({"newNonce":"https://ca/nonce","newAccount":"https://ca/acct",
    "newOrder":"https://ca/order","meta":{"termsOfService":"https://ca/tos"}})");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->new_order, "https://ca/order");
  EXPECT_EQ(d->terms_of_service, "https://ca/tos");
  auto no_order = acme::parse_directory(R"({"newNonce":"a","newAccount":"b"})");
  ASSERT_FALSE(no_order);
  EXPECT_EQ(no_order.error().code(), Errc::Unavailable);

  auto o = acme::parse_order(R"({"status":"invalid",
    "identifiers":[{"type":"dns","value":"example.com"}],
    "authorizations":["https://ca/authz/1"], "finalize":"https://ca/fin/1",
    "error":{"type":"urn:ietf:params:acme:error:unauthorized","detail":"nope"}})");
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->status, "invalid");
  ASSERT_EQ(o->identifiers.size(), 1u);
  EXPECT_EQ(o->identifiers[0].value, "example.com");
  EXPECT_EQ(o->authorizations, std::vector<std::string>{"https://ca/authz/1"});
  ASSERT_TRUE(o->error);
  EXPECT_EQ(o->error->detail, "nope");
  EXPECT_FALSE(acme::parse_order(R"({"identifiers":[]})"));
  EXPECT_FALSE(acme::parse_order(R"({"status":"pending","authorizations":[1]})"));

  auto a = acme::parse_authorization(R"({"status":"invalid",
    "identifier":{"type":"dns","value":"preview.example.com"}, "wildcard": true,
    "challenges":[{"type":"dns-01","url":"https://ca/chal/1","token":"tok","status":"invalid",
                   "error":{"type":"urn:ietf:params:acme:error:unauthorized",
                            "detail":"Correct value not found for DNS challenge"}}, "junk"]})");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_TRUE(a->wildcard);
  EXPECT_EQ(a->identifier.value, "preview.example.com");
  ASSERT_NE(a->find("dns-01"), nullptr);
  EXPECT_EQ(a->find("http-01"), nullptr);
  ASSERT_NE(a->failed(), nullptr);
  EXPECT_EQ(a->failed()->error->detail, "Correct value not found for DNS challenge");
  // An older server's "*." in the identifier means a wildcard too.
  auto old = acme::parse_authorization(
      R"({"status":"pending","identifier":{"type":"dns","value":"*.example.com"}})");
  ASSERT_TRUE(old);
  EXPECT_TRUE(old->wildcard);
  EXPECT_EQ(old->identifier.value, "example.com");
}

TEST(CertsAcmeProtocolTest, RetryAfter) {
  int64_t now = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(acme::parse_retry_after("120", now), std::chrono::seconds(120));
  EXPECT_EQ(acme::parse_retry_after(" 3 ", now), std::chrono::seconds(3));
  EXPECT_EQ(acme::parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            std::chrono::seconds(30));
  EXPECT_EQ(acme::parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), std::chrono::seconds(0));
  EXPECT_FALSE(acme::parse_retry_after("", now));
  EXPECT_FALSE(acme::parse_retry_after("soon", now));
  EXPECT_FALSE(acme::parse_retry_after("-5", now));
  EXPECT_EQ(acme::parse_retry_after("99999999999999999999", now), std::chrono::seconds(999999999));
}

TEST(CertsAcmeProtocolTest, HttpsUrls) {
  auto u = acme::parse_https_url("https://127.0.0.1:14000/dir");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "14000");
  EXPECT_EQ(u->target, "/dir");
  auto v6 = acme::parse_https_url("https://[::1]/a?b=c#frag");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "443");
  EXPECT_EQ(v6->target, "/a?b=c");
  auto bare = acme::parse_https_url("https://acme.example");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->target, "/");
  for (const char* bad : {"http://a/dir", "https://", "https://:443/", "https://a:0/",
                          "https://a:99999/", "https://u@a/", "https://a/b c", "https://[::1"}) {
    EXPECT_FALSE(acme::parse_https_url(bad)) << bad;
  }
}

TEST(CertsAcmeClientTest, CreateChecksItsInput) {
  AcmeOptions o;
  o.directory_url = "http://127.0.0.1:1/dir";
  EXPECT_FALSE(AcmeClient::create(o, ""));
  o.directory_url = "https://127.0.0.1:1/dir";
  auto c = AcmeClient::create(o, "");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->account_key_pem().rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  // The same key comes back.
  auto again = AcmeClient::create(o, c->account_key_pem());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->account_key_pem(), c->account_key_pem());
  auto junk = AcmeClient::create(o, "junk");
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().code(), Errc::InvalidArgument);
  o.ca_bundle = "/nonexistent/ca.pem";
  auto bundle = AcmeClient::create(o, "");
  ASSERT_FALSE(bundle);
  EXPECT_NE(bundle.error().message().find("/nonexistent/ca.pem"), std::string::npos);
  o.ca_bundle.clear();
  o.email = "not an address";
  EXPECT_FALSE(AcmeClient::create(o, ""));
}

TEST(CertsAcmeClientTest, UnreachableServerIsUnavailable) {
  AcmeOptions o;
  o.directory_url = "https://127.0.0.1:1/dir";  // nothing listens on port 1
  o.timeout = std::chrono::seconds(5);
  auto c = AcmeClient::create(o, "");
  ASSERT_TRUE(c);
  struct Never : ChallengeResponder {
    std::optional<Challenge::Type> choose(std::string_view, bool) override { return {}; }
    Status present(const Challenge&) override { return ok(); }
    void cleanup(const Challenge&) override {}
  } never;
  auto r = c->obtain({"example.com"}, never, nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Unavailable);
  EXPECT_NE(r.error().message().find("127.0.0.1:1"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("connect"), std::string::npos) << r.error().message();
  auto bad_names = c->obtain({"bad name"}, never, nullptr);
  ASSERT_FALSE(bad_names);
  EXPECT_EQ(bad_names.error().code(), Errc::InvalidArgument);
}

TEST(CertsAcmeClientTest, SilentServerTimesOut) {
  // A listener that never accepts: the TCP connect succeeds (the backlog), the TLS handshake
  // never gets an answer, and the request's timeout ends it.
  uint16_t port = 0;
  int fd = test::listen_loopback(port, 4);
  ASSERT_GE(fd, 0);
  AcmeOptions o;
  o.directory_url = "https://127.0.0.1:" + std::to_string(port) + "/dir";
  o.timeout = std::chrono::seconds(1);
  auto c = AcmeClient::create(o, "");
  ASSERT_TRUE(c);
  auto r = c->register_account();
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::Unavailable);
  EXPECT_NE(r.error().message().find("no response within 1s"), std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace berth::certs
