// SPDX-License-Identifier: Apache-2.0
// The harness's own promises, on which every server fixture's failure message rests.
#include "support/harness.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>

namespace berth::test {
namespace {

using std::chrono::milliseconds;

TEST(HarnessTest, WaitStartedSaysHowAServersStartEnded) {
  pid_t pid = spawn_server({"sleep", "30"}, "/dev/null");
  ASSERT_GT(pid, 0);
  int polls = 0;
  EXPECT_EQ(
      wait_started(
          pid, "sleep", [&] { return ++polls == 3; }, std::chrono::seconds(10), milliseconds(1)),
      "");
  EXPECT_EQ(polls, 3);
  EXPECT_GT(pid, 0) << "a server that is ready keeps its pid";

  EXPECT_EQ(wait_started(
                pid, "sleep", [] { return false; }, milliseconds(100), milliseconds(10)),
            "sleep was not ready within 100 ms");
  EXPECT_GT(pid, 0) << "one that is late still runs: its owner decides";
  EXPECT_TRUE(stop_child(pid, std::chrono::seconds(5)));

  pid_t gone = spawn_server({"false"}, "/dev/null");
  EXPECT_EQ(wait_started(
                gone, "false", [] { return false; }, std::chrono::seconds(10), milliseconds(10)),
            "false exited");
  EXPECT_EQ(gone, -1) << "an exited server is reaped";

  pid_t never = -1;
  EXPECT_EQ(wait_started(
                never, "x", [] { return true; }, std::chrono::seconds(1)),
            "x could not be spawned");
}

// What the harness sets in a server's environment wins over this process's, whichever end of
// the environment the server's program reads.
TEST(HarnessTest, SpawnServerEnvironmentOverridesTheTests) {
  TempDir t;
  ::setenv("BERTH_HARNESS_PROBE", "outer", 1);
  SpawnOptions opts;
  opts.env = {"BERTH_HARNESS_PROBE=inner"};
  pid_t pid = spawn_server({"/bin/bash", "-c", "echo \"$BERTH_HARNESS_PROBE\""}, t / "out", opts);
  ASSERT_GT(pid, 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::unsetenv("BERTH_HARNESS_PROBE");
  EXPECT_EQ(read_file(t / "out"), "inner\n");
}

}  // namespace
}  // namespace berth::test
