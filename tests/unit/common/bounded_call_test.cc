// SPDX-License-Identifier: Apache-2.0
// bounded_call(): the caller waits for a blocking call at most until its deadline, and what
// the call returns late is handed to `discard`, not lost.
#include "common/bounded_call.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace berth {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

TEST(BoundedCall, AQuickCallGivesItsResult) {
  auto discarded = std::make_shared<std::atomic<int>>(0);
  auto r = bounded_call<std::string>([] { return std::string("connected"); },
                                     [discarded](std::string) { ++*discarded; },
                                     steady_clock::now() + std::chrono::seconds(5));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "connected");
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(discarded->load(), 0);
}

TEST(BoundedCall, ASlowCallIsLetGoAtTheDeadlineAndItsResultDiscardedLater) {
  auto discarded = std::make_shared<std::atomic<int>>(0);
  auto t0 = steady_clock::now();
  auto r = bounded_call<int>(
      [] {
        std::this_thread::sleep_for(milliseconds(2000));  // a resolver that takes its time
        return 42;
      },
      [discarded](int v) { *discarded = v; }, t0 + milliseconds(50));
  auto waited = steady_clock::now() - t0;
  EXPECT_FALSE(r.has_value());
  EXPECT_GE(waited, milliseconds(50));
  EXPECT_LT(waited, milliseconds(1500)) << "the caller waited for the call, not the deadline";
  // The late result reaches discard once the call returns.
  auto until = steady_clock::now() + std::chrono::seconds(5);
  while (discarded->load() == 0 && steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(discarded->load(), 42);
}

}  // namespace
}  // namespace berth
