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

TEST(RouterUnitTest, ConnectionNamesFields) {
  EXPECT_FALSE(connection_names_fields(""));
  EXPECT_FALSE(connection_names_fields("keep-alive"));
  EXPECT_FALSE(connection_names_fields("Keep-Alive, Upgrade"));
  EXPECT_FALSE(connection_names_fields(" close "));
  EXPECT_TRUE(connection_names_fields("keep-alive, X-Secret"));
  EXPECT_TRUE(connection_names_fields("x-secret"));
}

size_t head_end(std::string_view s, bool& bare, size_t from = 0) {
  bare = false;
  return find_head_end(s.data(), s.size(), from, bare);
}

TEST(RouterUnitTest, FindsTheEndOfAHead) {
  bool bare = false;
  std::string crlf = "HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
  EXPECT_EQ(head_end(crlf, bare), crlf.size() - 4);
  EXPECT_FALSE(bare);
  std::string lf = "HTTP/1.1 200 OK\nA: b\n\nbody\r\n\r\n";
  EXPECT_EQ(head_end(lf, bare), lf.find("body"));
  EXPECT_TRUE(bare);
  std::string mixed = "HTTP/1.1 200 OK\r\nA: b\n\r\nbody";
  EXPECT_EQ(head_end(mixed, bare), mixed.find("body"));
  EXPECT_TRUE(bare);
  // Incomplete, at every split point; resuming from n - 2 finds the same end.
  for (size_t cut = 0; cut < crlf.size() - 4; ++cut) {
    EXPECT_EQ(head_end(crlf.substr(0, cut), bare), 0u) << cut;
    size_t from = cut > 2 ? cut - 2 : 0;
    EXPECT_EQ(head_end(crlf, bare, from), crlf.size() - 4) << cut;
  }
}

TEST(RouterUnitTest, BareLineFeedsBecomeCrlf) {
  std::string out;
  std::string in = "HTTP/1.1 200 OK\nContent-Type: text/plain\r\nX: y\n\n";
  crlf_line_ends(in.data(), in.size(), out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX: y\r\n\r\n");
}

}  // namespace
}  // namespace berth::router::detail
