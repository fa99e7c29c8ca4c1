// SPDX-License-Identifier: Apache-2.0
// The failed-authentication lockout over real HTTP from several loopback addresses (curl
// --interface 127.0.0.N): failures lock a key id out only from where they came from, one
// address is limited across key ids, and every 429 says when to come back (Retry-After).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/harness.h"

namespace berth::test {
namespace {

struct Answer {
  int status = 0;
  std::string headers;  // lower-cased header block
  // The Retry-After value in seconds; -1 when absent or not a number.
  int retry_after() const {
    auto at = headers.find("\nretry-after:");
    if (at == std::string::npos) {
      return -1;
    }
    std::string v = headers.substr(at + 13, headers.find('\n', at + 1) - at - 13);
    auto b = v.find_first_not_of(" \t");
    auto e = v.find_last_not_of(" \t\r");
    if (b == std::string::npos || v.find_first_not_of("0123456789", b) <= e) {
      return -1;
    }
    return std::atoi(v.c_str() + b);
  }
};

// One request from source address `from`; the status and the response headers.
Answer request(const std::string& from, const std::string& creds, const std::string& url) {
  auto r = run("curl -s -o /dev/null -D - --interface " + from + " -u '" + creds + "' '" + url +
               "' | tr A-Z a-z");
  Answer a;
  a.headers = "\n" + r.out;
  if (r.out.rfind("http/1.1 ", 0) == 0) {
    a.status = std::atoi(r.out.c_str() + 9);
  }
  return a;
}

class IamLockoutTest : public ::testing::Test {
 protected:
  std::string url(const std::string& path) const { return d_.url() + path; }
  std::string wrong() const { return d_.admin_key_id() + ":not-the-secret"; }
  // n failed attempts of the admin key from `from`, each answered 401.
  void fail_from(const std::string& from, int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(request(from, wrong(), url("/api/v1/repositories")).status, 401) << i;
    }
  }

  TestDaemon d_;
};

TEST_F(IamLockoutTest, AnAttackerElsewhereCannotLockTheOwnerOut) {
  fail_from("127.0.0.2", 10);
  // The attacker is locked out, right secret or not...
  Answer more = request("127.0.0.2", wrong(), url("/api/v1/repositories"));
  EXPECT_EQ(more.status, 429);
  EXPECT_GE(more.retry_after(), 1) << more.headers;
  EXPECT_LE(more.retry_after(), 60) << more.headers;
  EXPECT_EQ(request("127.0.0.2", d_.creds(), url("/api/v1/repositories")).status, 429);
  // ...while the owner, who knows the key id's secret, works from anywhere else.
  EXPECT_EQ(request("127.0.0.1", d_.creds(), url("/api/v1/repositories")).status, 200);
  EXPECT_EQ(request("127.0.0.4", d_.creds(), url("/v2/")).status, 200);
  auto ls = d_.cli("repo ls");
  EXPECT_EQ(ls.code, 0) << ls.all();
}

TEST_F(IamLockoutTest, OneAddressIsLimitedAcrossKeyIds) {
  // 100 guessed key ids from one address, one try each: no single key id is near its limit,
  // so only the per-address limit can stop this. One curl process, one transfer per key.
  std::string cmd = "curl";
  for (int i = 0; i < 100; ++i) {
    if (i > 0) {
      cmd += " --next";
    }
    cmd += fmt::format(
        " -s -o /dev/null -w '%{{http_code}}\\n' --interface 127.0.0.3 -u BKGUESS{}:x {}", 1000 + i,
        url("/api/v1/repositories"));
  }
  auto r = run(cmd);
  std::string want;
  for (int i = 0; i < 100; ++i) {
    want += "401\n";
  }
  EXPECT_EQ(r.out, want) << r.err;
  Answer next = request("127.0.0.3", "BKGUESS9999:x", url("/api/v1/repositories"));
  EXPECT_EQ(next.status, 429);
  EXPECT_GE(next.retry_after(), 1) << next.headers;
  // The address as a whole is refused, the admin's right secret included...
  EXPECT_EQ(request("127.0.0.3", d_.creds(), url("/api/v1/repositories")).status, 429);
  // ...and nobody else is.
  EXPECT_EQ(request("127.0.0.1", d_.creds(), url("/api/v1/repositories")).status, 200);
}

TEST_F(IamLockoutTest, Every429CarriesRetryAfter) {
  fail_from("127.0.0.5", 10);
  for (const std::string path :
       {"/v2/", "/v2/token?service=berth&scope=repository:web/app:pull", "/v2/web/app/tags/list",
        "/api/v1/repositories", "/api/v1/auth/token", "/api/v1/audit",
        "/git/site.git/info/refs?service=git-upload-pack", "/metrics"}) {
    Answer a = request("127.0.0.5", d_.creds(), url(path));
    EXPECT_EQ(a.status, 429) << path;
    EXPECT_GE(a.retry_after(), 1) << path << a.headers;
    EXPECT_LE(a.retry_after(), 60) << path << a.headers;
  }
}

}  // namespace
}  // namespace berth::test
