// SPDX-License-Identifier: Apache-2.0
// berthd as a process: what it does to its own process at start (the open files limit), and
// `berthd fsck` refusing a data directory that a running berthd holds.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "support/harness.h"

namespace berth::test {
namespace {

// "Max open files  SOFT  HARD  files" of /proc/PID/limits, as {soft, hard} ("" when absent).
std::pair<std::string, std::string> open_files_limit(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream words(line.substr(14));
      std::string soft, hard;
      words >> soft >> hard;
      return {soft, hard};
    }
  }
  return {"", ""};
}

TEST(BerthdProcessTest, RaisesTheOpenFilesSoftLimitToTheHardLimit) {
  rlimit mine{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &mine), 0);
  if (mine.rlim_max <= 256) {
    GTEST_SKIP() << "the hard limit (" << mine.rlim_max << ") leaves nothing to raise";
  }
  // berthd inherits a low soft limit, as from a default shell.
  rlimit low = mine;
  low.rlim_cur = 256;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  TempDir data;
  BerthdProcess berthd(data.path());
  berthd.start();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &mine), 0);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  auto [soft, hard] = open_files_limit(berthd.pid());
  EXPECT_EQ(hard, std::to_string(mine.rlim_max));
  EXPECT_EQ(soft, hard) << "berthd kept the soft limit it was started with";
  // The log is flushed about once a second.
  const std::string line = "open files limit soft=" + hard + " hard=" + hard;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (read_file(berthd.log_path()).find(line) == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(read_file(berthd.log_path()).find(line), std::string::npos)
      << read_file(berthd.log_path());
  EXPECT_EQ(berthd.terminate(), 0);
}

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
