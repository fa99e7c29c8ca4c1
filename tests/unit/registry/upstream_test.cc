// SPDX-License-Identifier: Apache-2.0
// Reading upstream registries' WWW-Authenticate challenges, and URLs for outbound requests.
#include "registry/upstream.h"

#include <gtest/gtest.h>

#include "http/client.h"

namespace berth::registry {
namespace {

TEST(UpstreamChallenge, DockerHubBearerWithQuotedScopeHoldingCommas) {
  auto c = parse_challenge(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(c->params["service"], "registry.docker.io");
  EXPECT_EQ(c->params["scope"], "repository:library/busybox:pull,push");
}

TEST(UpstreamChallenge, BasicUnquotedSpacesAndEscapes) {
  auto b = parse_challenge(R"(Basic realm="test-realm")");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->scheme, "basic");
  EXPECT_EQ(b->params["realm"], "test-realm");
  auto u = parse_challenge(R"(BEARER Realm=http://x/token, service=berth ,scope="a\"b")");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "bearer");
  EXPECT_EQ(u->params["realm"], "http://x/token");
  EXPECT_EQ(u->params["service"], "berth ");
  EXPECT_EQ(u->params["scope"], "a\"b");
  EXPECT_TRUE(parse_challenge("Negotiate"));
  EXPECT_FALSE(parse_challenge(""));
  EXPECT_FALSE(parse_challenge(R"(Bearer realm="unclosed)"));
}

TEST(UpstreamChallenge, RemoteRepositoryDropsThePrefix) {
  UpstreamSpec s;
  s.prefix = "docker.io";
  EXPECT_EQ(remote_repository(s, "docker.io/library/nginx"), "library/nginx");
  s.prefix = "mirror.example/team";
  EXPECT_EQ(remote_repository(s, "mirror.example/team/app"), "app");
}

TEST(ClientUrl, SchemesPortsAndIpv6) {
  auto a = http::parse_client_url("https://registry-1.docker.io");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port, "443");
  EXPECT_EQ(a->target, "/");
  EXPECT_EQ(a->origin(), "https://registry-1.docker.io");
  auto b = http::parse_client_url("http://[::1]:5000/v2/?n=1#x");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->target, "/v2/?n=1");
  EXPECT_EQ(b->origin(), "http://[::1]:5000");
  auto c = http::parse_client_url("http://h:80/");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->origin(), "http://h");
  for (const char* bad : {"ftp://h", "http://", "http://u@h/", "http://h:0", "http://h:99999",
                          "http://h/a b", "h:80"}) {
    EXPECT_FALSE(http::parse_client_url(bad)) << bad;
  }
}

}  // namespace
}  // namespace berth::registry
