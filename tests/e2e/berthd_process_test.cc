// SPDX-License-Identifier: Apache-2.0
// berthd as a process: `berthd fsck` refusing a data directory that a running berthd holds.
#include <gtest/gtest.h>

#include <string>

#include "support/harness.h"

namespace berth::test {
namespace {

TEST(BerthdProcessTest, FsckRefusesADataDirectoryInUseUnlessForced) {
  TempDir data;
  BerthdProcess berthd(data.path());
  ASSERT_NO_FATAL_FAILURE(berthd.start());
  const std::string fsck = bin("berthd") + " fsck --data " + data.path();

  auto refused = run(fsck);
  EXPECT_EQ(refused.code, 2) << refused.all();
  EXPECT_NE(refused.err.find(data.path() + " is in use by a running berthd"), std::string::npos)
      << refused.all();
  EXPECT_NE(refused.err.find("stop berthd first, or pass --force"), std::string::npos)
      << refused.all();
  EXPECT_EQ(refused.out.find("checked"), std::string::npos) << "fsck ran anyway: " << refused.out;

  auto forced = run(fsck + " --force");
  EXPECT_EQ(forced.code, 0) << forced.all();
  EXPECT_NE(forced.out.find("0 problem(s)"), std::string::npos) << forced.all();

  // The lock is berthd's, not the directory's: once berthd is gone fsck runs, and berthd
  // starts again afterwards (fsck let go of the lock).
  ASSERT_EQ(berthd.terminate(), 0);
  auto offline = run(fsck);
  EXPECT_EQ(offline.code, 0) << offline.all();
  EXPECT_NE(offline.out.find("0 problem(s)"), std::string::npos) << offline.all();
  ASSERT_NO_FATAL_FAILURE(berthd.start());
  EXPECT_EQ(berthd.terminate(), 0);
}

}  // namespace
}  // namespace berth::test
