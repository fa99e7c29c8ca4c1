// SPDX-License-Identifier: Apache-2.0
// The audit log through a really full disk: berthd's data dir on a small tmpfs, filled until
// SQLite fails with "database or disk is full"; state changes and denials made meanwhile must
// all be in the audit log once space is freed. Needs root (mount); skipped otherwise.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/json.h"
#include "support/harness.h"

namespace berth::test {
namespace {

// Polls the file until it contains needle (true) or the timeout passes (false).
bool wait_for_line(const std::string& path, const std::string& needle, std::chrono::seconds max) {
  auto deadline = std::chrono::steady_clock::now() + max;
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_file(path).find(needle) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

class AuditDiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "mounting a tmpfs needs root";
    }
    data_ = tmp_ / "data";
    ASSERT_EQ(run("mkdir -p " + data_).code, 0);
    auto m = run("mount -t tmpfs -o size=8m berth-audit-test " + data_);
    ASSERT_EQ(m.code, 0) << m.all();
    mounted_ = true;
    berthd_ = std::make_unique<BerthdProcess>(data_);
    berthd_->start();
  }
  void TearDown() override {
    berthd_.reset();  // SIGKILL if still running: the tmpfs must be free to unmount
    if (mounted_) {
      run("umount " + data_ + " || umount -l " + data_);
    }
  }
  int64_t free_bytes() {
    auto r = run("echo $(( $(stat -f -c %a " + data_ + ") * $(stat -f -c %S " + data_ + ") ))");
    return std::atoll(r.out.c_str());
  }
  AdminCredentials make_user(const std::string& name) {
    auto u = berthd_->cli("iam user create " + name);
    EXPECT_EQ(u.code, 0) << u.all();
    auto k = berthd_->cli("iam key create " + name + " --json");
    EXPECT_EQ(k.code, 0) << k.all();
    Json j = Json::parse(k.out, nullptr, false);
    return AdminCredentials{j.value("access_key_id", ""), j.value("secret_access_key", "")};
  }

  TempDir tmp_;
  std::string data_;
  bool mounted_ = false;
  std::unique_ptr<BerthdProcess> berthd_;
};

TEST_F(AuditDiskFullTest, StateChangesDuringADiskFullAreRecordedOnceSpaceIsFreed) {
  auto first = berthd_->cli("repo create before/one");
  ASSERT_EQ(first.code, 0) << first.all();
  AdminCredentials viewer = make_user("viewer");  // no policy: every change it tries is denied

  // Fill the disk until the filesystem refuses more (dd stops at ENOSPC).
  run("dd if=/dev/zero of=" + data_ + "/filler bs=64k 2>/dev/null");
  ASSERT_LT(free_bytes(), 64 * 1024) << run("df " + data_).out;

  // State changes and a denial while the disk is full. Whether the changes themselves get
  // through does not matter here: each attempt is an audit record, and none may be lost.
  for (int i = 0; i < 5; ++i) {
    berthd_->cli(fmt::format("repo create full/r{}", i));
  }
  auto denied = berth_as(berthd_->url(), viewer, "repo create full/denied");
  EXPECT_NE(denied.code, 0) << denied.all();
  // The registry answers a push into a full disk with 429 TOOMANYREQUESTS: it says when to
  // come back, as every 429 does.
  auto push =
      run("head -c 200000 /dev/urandom > " + tmp_ / "blob" + " && curl -s -D - -o " +
          tmp_ / "body" + berthd_->curl_auth() + "-X POST --data-binary @" + tmp_ / "blob" + " '" +
          berthd_->url() + "/v2/before/one/blobs/uploads/?digest=sha256:$(sha256sum " +
          tmp_ / "blob" + " | cut -d' ' -f1)' | tr A-Z a-z");
  if (push.out.find(" 429") != std::string::npos) {
    EXPECT_NE(push.out.find("\nretry-after: "), std::string::npos) << push.out;
  }

  // A write of the audit queue has really failed on the full disk.
  ASSERT_TRUE(wait_for_line(berthd_->log_path(), "audit flush failed", std::chrono::seconds(15)))
      << read_file(berthd_->log_path());
  EXPECT_NE(read_file(berthd_->log_path()).find("database or disk is full"), std::string::npos)
      << read_file(berthd_->log_path());
  // Still full for a while: several retries fail (back-off 1 s, 2 s, ...).
  std::this_thread::sleep_for(std::chrono::seconds(4));

  ASSERT_EQ(run("rm " + data_ + "/filler").code, 0);
  // The background retry writes the kept records on its own, without a reader forcing it.
  EXPECT_TRUE(wait_for_line(berthd_->log_path(), "audit write recovered", std::chrono::seconds(40)))
      << read_file(berthd_->log_path());

  auto after = berthd_->cli("repo create after/one");
  EXPECT_EQ(after.code, 0) << after.all();
  auto ls = berthd_->cli("audit ls --json --limit 1000");
  ASSERT_EQ(ls.code, 0) << ls.all();
  Json events = Json::parse(ls.out, nullptr, false).value("events", Json());
  ASSERT_TRUE(events.is_array()) << ls.out;
  auto count = [&](const std::string& principal, const std::string& action,
                   const std::string& resource, const std::string& decision) {
    int n = 0;
    for (const auto& e : events) {
      if (e.value("principal", "") == principal && e.value("action", "") == action &&
          e.value("resource", "") == resource && e.value("decision", "") == decision) {
        ++n;
      }
    }
    return n;
  };
  const std::string create = "registry:CreateRepository";
  EXPECT_EQ(count("user/admin", create, "repository/before/one", "Allow"), 1) << ls.out;
  for (int i = 0; i < 5; ++i) {
    std::string repo = fmt::format("repository/full/r{}", i);
    EXPECT_EQ(count("user/admin", create, repo, "Allow"), 1) << repo << "\n" << ls.out;
  }
  EXPECT_EQ(count("user/viewer", create, "repository/full/denied", "Deny"), 1) << ls.out;
  EXPECT_EQ(count("user/admin", create, "repository/after/one", "Allow"), 1) << ls.out;
  EXPECT_EQ(read_file(berthd_->log_path()).find("audit records dropped"), std::string::npos);
}

}  // namespace
}  // namespace berth::test
