// SPDX-License-Identifier: Apache-2.0
// The router's pure parts: host normalization, the least-outstanding pick, hop-by-hop rules,
// X-Forwarded-For.
#include <gtest/gtest.h>

#include "router/proxy_util.h"

namespace berth::router::detail {
namespace {

std::string norm(std::string_view in) {
  char buf[64];
  return std::string(normalize_host(in, buf, sizeof buf));
}

TEST(RouterUnitTest, NormalizeHostLowersAndStripsPort) {
  EXPECT_EQ(norm("Example.COM"), "example.com");
  EXPECT_EQ(norm("example.com:8080"), "example.com");
  EXPECT_EQ(norm(" WWW.Example.com.:80 "), "www.example.com");
  EXPECT_EQ(norm("[::1]:8080"), "[::1]");
  EXPECT_EQ(norm("127.0.0.1:5000"), "127.0.0.1");
  EXPECT_EQ(norm(""), "");
  EXPECT_EQ(norm("bad host"), "");
  EXPECT_EQ(norm("[::1"), "");
  EXPECT_EQ(norm(std::string(100, 'a')), "");  // longer than the buffer
}

std::vector<std::shared_ptr<Upstream>> ups(std::initializer_list<int64_t> loads) {
  std::vector<std::shared_ptr<Upstream>> out;
  for (auto l : loads) {
    auto u = std::make_shared<Upstream>();
    u->in_flight = l;
    out.push_back(u);
  }
  return out;
}

TEST(RouterUnitTest, PicksLeastOutstanding) {
  auto u = ups({3, 1, 2});
  for (size_t start = 0; start < 6; ++start) {
    EXPECT_EQ(pick_least_outstanding(u, start), 1u);
  }
  EXPECT_EQ(pick_least_outstanding(ups({5}), 7), 0u);
}

TEST(RouterUnitTest, TiesAreBrokenRoundRobin) {
  auto u = ups({0, 0, 0});
  EXPECT_EQ(pick_least_outstanding(u, 0), 0u);
  EXPECT_EQ(pick_least_outstanding(u, 1), 1u);
  EXPECT_EQ(pick_least_outstanding(u, 2), 2u);
  EXPECT_EQ(pick_least_outstanding(u, 3), 0u);
  auto v = ups({2, 1, 1});
  EXPECT_EQ(pick_least_outstanding(v, 0), 1u);
  EXPECT_EQ(pick_least_outstanding(v, 2), 2u);
}

TEST(RouterUnitTest, HopByHopHeaders) {
  for (auto h : {"Connection", "keep-alive", "Proxy-Authorization", "proxy-connection", "TE",
                 "Trailer", "Transfer-Encoding", "Upgrade"}) {
    EXPECT_TRUE(is_hop_by_hop(h)) << h;
  }
  for (auto h :
       {"Host", "Content-Type", "Authorization", "X-Forwarded-For", "Trailers-X", "Proxy"}) {
    EXPECT_FALSE(is_hop_by_hop(h)) << h;
  }
}

TEST(RouterUnitTest, ConnectionTokens) {
  EXPECT_TRUE(token_list_contains("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(token_list_contains("close,X-Secret", "x-secret"));
  EXPECT_FALSE(token_list_contains("keep-alive", "alive"));
  EXPECT_FALSE(token_list_contains("", "upgrade"));
}

std::string xff(std::string_view existing, std::string_view peer) {
  std::string out;
  append_forwarded_for(out, existing, peer);
  return out;
}

TEST(RouterUnitTest, ForwardedForAppends) {
  EXPECT_EQ(xff("", "10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(xff("1.2.3.4", "10.0.0.1"), "1.2.3.4, 10.0.0.1");
  EXPECT_EQ(xff(" 1.2.3.4, 5.6.7.8 ", "::1"), "1.2.3.4, 5.6.7.8, ::1");
}

TEST(RouterUnitTest, StatusClassesAndIdempotence) {
  EXPECT_STREQ(status_class(101), "1xx");
  EXPECT_STREQ(status_class(204), "2xx");
  EXPECT_STREQ(status_class(304), "3xx");
  EXPECT_STREQ(status_class(404), "4xx");
  EXPECT_STREQ(status_class(504), "5xx");
  EXPECT_STREQ(status_class(999), "5xx");
  EXPECT_TRUE(idempotent_method("GET"));
  EXPECT_TRUE(idempotent_method("PUT"));
  EXPECT_FALSE(idempotent_method("POST"));
  EXPECT_FALSE(idempotent_method("PATCH"));
}

}  // namespace
}  // namespace berth::router::detail
