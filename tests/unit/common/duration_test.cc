// SPDX-License-Identifier: Apache-2.0
#include "common/duration.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, UnitsAndPlainSeconds) {
  EXPECT_EQ(*parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(*parse_duration("90"), milliseconds(90000));
  EXPECT_EQ(*parse_duration("90s"), milliseconds(90000));
  EXPECT_EQ(*parse_duration("15m"), milliseconds(900000));
  EXPECT_EQ(*parse_duration("1h"), milliseconds(3600000));
  EXPECT_EQ(*parse_duration("2d"), milliseconds(2LL * 86400000));
}

TEST(DurationTest, ErrorsNameTheText) {
  for (const char* bad : {"", "s", "5x", "-5s", "1.5s", "5 s"}) {
    auto d = parse_duration(bad);
    ASSERT_FALSE(d) << bad;
    EXPECT_EQ(d.error().message(),
              std::string("invalid duration '") + bad + "' (try 90s, 15m, 1h, 2d)");
  }
  auto long_one = parse_duration("4000d");
  ASSERT_FALSE(long_one);
  EXPECT_EQ(long_one.error().message(), "duration '4000d' is longer than ten years");
}

}  // namespace
}  // namespace berth
