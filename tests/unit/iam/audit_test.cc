// SPDX-License-Identifier: Apache-2.0
// The audit queue over a real SQLite store: a failed write keeps its batch for the retry, the
// periodic flush backs off, and the in-memory bound drops (and counts) only past its limit.
// tests/integration/audit_disk_full_test.cc does the same through a really full disk.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "iam/iam.h"
#include "support/harness.h"

namespace berth::iam {
namespace {

// A repository creation by admin, of repository/rN.
Request create(int n) {
  std::string resource = "repository/r";
  resource += std::to_string(n);  // appended, not "r" + ...: GCC 12 -Wrestrict false positive
  return Request{"user/admin", "registry:CreateRepository", resource};
}

// A second connection to the same database, as another process would have.
class SideConnection {
 public:
  explicit SideConnection(const std::string& path) { sqlite3_open(path.c_str(), &db_); }
  ~SideConnection() { sqlite3_close(db_); }
  SideConnection(const SideConnection&) = delete;
  SideConnection& operator=(const SideConnection&) = delete;
  void exec(const std::string& sql) {
    char* msg = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
    ASSERT_EQ(rc, SQLITE_OK) << sql << ": " << (msg ? msg : "");
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST(AuditLogTest, AFailedWriteKeepsItsBatchForTheRetry) {
  test::TempDir dir;
  std::string path = dir / "meta.db";
  auto s = store::open_sqlite(path);
  ASSERT_TRUE(s) << s.error().message();
  AuditLog audit(**s);
  audit.record(create(1), true, "127.0.0.1:40000");
  // The table goes away under the store: its write fails, as on a full disk.
  SideConnection side(path);
  side.exec("ALTER TABLE audit RENAME TO audit_away");
  Status f = audit.flush();
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find("audit: 1 records queued for retry in 1s"), std::string::npos)
      << f.error().message();
  EXPECT_EQ(audit.pending(), 1u);
  audit.record(create(2), true, "127.0.0.1:40000");
  // Within the back-off the periodic flush does not try; nothing is lost either.
  EXPECT_TRUE(audit.flush_if_due());
  EXPECT_EQ(audit.pending(), 2u);
  side.exec("ALTER TABLE audit_away RENAME TO audit");
  ASSERT_TRUE(audit.flush());
  EXPECT_EQ(audit.pending(), 0u);
  EXPECT_EQ(audit.dropped(), 0u);
  auto events = (*s)->list_audit(0, "", 10);  // newest first
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].resource, "repository/r2");
  EXPECT_EQ((*events)[1].resource, "repository/r1");
  EXPECT_EQ((*events)[1].source, "127.0.0.1:40000");
}

TEST(AuditLogTest, BackOffDoublesWhileWritesKeepFailing) {
  test::TempDir dir;
  std::string path = dir / "meta.db";
  auto s = store::open_sqlite(path);
  ASSERT_TRUE(s) << s.error().message();
  AuditLog audit(**s);
  audit.record(create(1), true, "127.0.0.1:1");
  SideConnection side(path);
  side.exec("ALTER TABLE audit RENAME TO audit_away");
  std::vector<std::string> delays;
  for (int i = 0; i < 7; ++i) {
    Status f = audit.flush();  // forced: ignores the back-off, but extends it
    ASSERT_FALSE(f);
    const std::string& m = f.error().message();
    auto at = m.find("retry in ");
    delays.push_back(m.substr(at + 9, m.find(':', at) - at - 9));
  }
  EXPECT_EQ(delays, (std::vector<std::string>{"1s", "2s", "4s", "8s", "16s", "30s", "30s"}));
  EXPECT_EQ(audit.pending(), 1u);
}

TEST(AuditLogTest, TheQueueIsBoundedAndCountsWhatItDrops) {
  test::TempDir dir;
  std::string path = dir / "meta.db";
  auto s = store::open_sqlite(path);
  ASSERT_TRUE(s) << s.error().message();
  AuditLog audit(**s, 3);
  SideConnection side(path);
  side.exec("ALTER TABLE audit RENAME TO audit_away");
  for (int i = 0; i < 2; ++i) {
    audit.record(create(i), true, "127.0.0.1:1");
  }
  ASSERT_FALSE(audit.flush());
  for (int i = 2; i < 5; ++i) {
    audit.record(create(i), true, "127.0.0.1:1");
  }
  EXPECT_EQ(audit.pending(), 3u);
  EXPECT_EQ(audit.dropped(), 2u);
  side.exec("ALTER TABLE audit_away RENAME TO audit");
  ASSERT_TRUE(audit.flush());
  auto events = (*s)->list_audit(0, "", 10);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 3u);  // the oldest kept, the newest dropped
  EXPECT_EQ((*events)[2].resource, "repository/r0");
  EXPECT_EQ((*events)[0].resource, "repository/r2");
}

TEST(AuditLogTest, AllowedReadsAreNotRecorded) {
  auto s = store::open_sqlite(":memory:");
  ASSERT_TRUE(s);
  AuditLog audit(**s);
  audit.record(Request{"user/a", "registry:Pull", "repository/x"}, true, "h:1");
  audit.record(Request{"user/a", "registry:Pull", "repository/x"}, false, "h:1");
  EXPECT_EQ(audit.pending(), 1u);
}

}  // namespace
}  // namespace berth::iam
