// SPDX-License-Identifier: Apache-2.0
// The failed-authentication lockout, with time passed in: per (key id, address), per address,
// the sliding window and the Retry-After it reports.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "iam/iam.h"

namespace berth::iam {
namespace {

using std::chrono::seconds;
using Clock = AuthThrottle::Clock;

TEST(PeerAddressTest, StripsThePortAndMindsIpv6) {
  EXPECT_EQ(peer_address("127.0.0.1:5000"), "127.0.0.1");
  EXPECT_EQ(peer_address("::1:40000"), "::1");  // Asio's to_string() + ":" + port
  EXPECT_EQ(peer_address("[::1]:40000"), "::1");
  EXPECT_EQ(peer_address("fe80::1:2:3:443"), "fe80::1:2:3");
  EXPECT_EQ(peer_address("::ffff:10.1.2.3:8080"), "10.1.2.3");
  EXPECT_EQ(peer_address("[::ffff:10.1.2.3]:8080"), "10.1.2.3");
  EXPECT_EQ(peer_address("?"), "?");
}

TEST(AuthThrottleTest, FailuresFromOneAddressDoNotLockTheKeyElsewhere) {
  AuthThrottle t;
  auto now = Clock::now();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(t.retry_after("BKOWNER", "10.0.0.66", now), seconds(0)) << i;
    t.record_failure("BKOWNER", "10.0.0.66", now);
  }
  EXPECT_GT(t.retry_after("BKOWNER", "10.0.0.66", now), seconds(0));
  EXPECT_EQ(t.retry_after("BKOWNER", "10.0.0.7", now), seconds(0));
  EXPECT_EQ(t.retry_after("BKOTHER", "10.0.0.66", now), seconds(0));
}

TEST(AuthThrottleTest, RetryAfterCountsDownToTheOldestFailureLeavingTheWindow) {
  AuthThrottle t;
  auto start = Clock::now();
  for (int i = 0; i < 10; ++i) {
    t.record_failure("BK1", "10.0.0.66", start + seconds(i));
  }
  auto last = start + seconds(9);
  EXPECT_EQ(t.retry_after("BK1", "10.0.0.66", last), seconds(51));
  EXPECT_EQ(t.retry_after("BK1", "10.0.0.66", start + seconds(59)), seconds(1));
  EXPECT_EQ(t.retry_after("BK1", "10.0.0.66", start + std::chrono::milliseconds(59500)),
            seconds(1));
  EXPECT_EQ(t.retry_after("BK1", "10.0.0.66", start + seconds(60)), seconds(0));
  // One failure later, locked again until the next oldest leaves.
  t.record_failure("BK1", "10.0.0.66", start + seconds(60));
  EXPECT_EQ(t.retry_after("BK1", "10.0.0.66", start + seconds(60)), seconds(1));
}

TEST(AuthThrottleTest, OneAddressIsLimitedAcrossKeyIds) {
  AuthThrottle t;  // 100 a minute per address by default
  auto now = Clock::now();
  for (int i = 0; i < 100; ++i) {
    std::string id = fmt::format("BK{}", i);
    ASSERT_EQ(t.retry_after(id, "10.0.0.66", now), seconds(0)) << i;
    t.record_failure(id, "10.0.0.66", now);
  }
  EXPECT_EQ(t.retry_after("BKFRESH", "10.0.0.66", now), seconds(60));
  EXPECT_EQ(t.retry_after("BKFRESH", "10.0.0.7", now), seconds(0));
}

TEST(AuthThrottleTest, LimitsAreSettable) {
  LockoutLimits l;
  l.per_key_and_address = 2;
  l.per_address = 3;
  l.window = seconds(10);
  AuthThrottle t(l);
  auto now = Clock::now();
  t.record_failure("A", "h", now);
  t.record_failure("A", "h", now);
  EXPECT_EQ(t.retry_after("A", "h", now), seconds(10));
  EXPECT_EQ(t.retry_after("B", "h", now), seconds(0));
  t.record_failure("B", "h", now);
  EXPECT_EQ(t.retry_after("C", "h", now), seconds(10));
}

TEST(AuthThrottleTest, MemoryStaysBoundedUnderAFloodOfKeyIds) {
  LockoutLimits l;
  l.max_tracked = 50;
  l.per_address = 1000000;
  AuthThrottle t(l);
  auto now = Clock::now();
  for (int i = 0; i < 500; ++i) {
    t.record_failure(fmt::format("BK{}", i), "10.0.0.66", now);
  }
  // Still answers, and the address's own count survived the pair map being forgotten.
  for (int i = 0; i < 10; ++i) {
    t.record_failure("BKX", "10.0.0.66", now);
  }
  EXPECT_GT(t.retry_after("BKX", "10.0.0.66", now), seconds(0));
}

}  // namespace
}  // namespace berth::iam
