// SPDX-License-Identifier: Apache-2.0
// copy_rows() and non_empty_tables() (store/copy.h), from a SQLite file into every engine:
// every table's rows, binary manifest bytes unchanged, ids kept and their sequences moved on,
// a table SQLite re-created after its dependents still copied first, and a failure that leaves
// the target empty.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "oci/oci.h"
#include "store/copy.h"
#include "store/store.h"
#include "support/harness.h"
#include "support/postgres.h"

namespace berth::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class CopyStoreTest : public ::testing::TestWithParam<test::StoreEngine> {
 protected:
  void SetUp() override {
    if (!target_home_.skip_reason().empty()) {
      GTEST_SKIP() << target_home_.skip_reason();
    }
    auto s = open_sqlite(source_path_);
    ASSERT_TRUE(s) << s.error().message();
    source_ = std::move(*s);
    auto t = target_home_.open();
    ASSERT_TRUE(t) << t.error().message();
    target_ = std::move(*t);
  }

  // A little of everything, with ids that do not start at 1.
  void fill() {
    for (const char* name : {"web/gone", "web/app"}) {
      Repository r;
      r.name = name;
      r.mutable_tag_globs = {"dev-*"};
      r.created_at = 1000;
      auto created = source_->create_repository(r);
      ASSERT_TRUE(created) << created.error().message();
      repo_ = *created;
    }
    ASSERT_TRUE(source_->delete_repository("web/gone"));
    ASSERT_TRUE(source_->link_blob(repo_.id, "sha256:" + std::string(64, 'a'), 42, 100));
    ManifestRecord m;
    m.digest = "sha256:" + std::string(64, 'm');
    m.media_type = oci::kOciManifest;
    m.content = std::string("binary\0\xff\xfe bytes", 16);
    m.size = static_cast<int64_t>(m.content.size());
    m.blob_refs = {"sha256:" + std::string(64, 'a')};
    m.pushed_at = 200;
    auto put = source_->put_manifest(repo_, m, "v1", false);
    ASSERT_TRUE(put) << put.error().message();
    ASSERT_TRUE(source_->create_principal(Principal{"user", "alice", 5}));
    ASSERT_TRUE(source_->create_key(AccessKey{"BKALICE", "alice", "hash", true, 6}));
    ASSERT_TRUE(source_->append_audit(
        {AuditEvent{7, "user/alice", "registry:Push", "repository/web/app", true, "127.0.0.1"}}));
  }

  std::unique_ptr<test::TempDir> dir_ = std::make_unique<test::TempDir>();
  std::string source_path_ = *dir_ / "berth.db";
  test::StoreHome target_home_{GetParam()};
  MetadataStorePtr source_;
  MetadataStorePtr target_;
  Repository repo_;
};

TEST_P(CopyStoreTest, CopiesEveryRowAndKeepsIds) {
  fill();
  auto before = non_empty_tables(*target_);
  ASSERT_TRUE(before) << before.error().message();
  EXPECT_THAT(*before, IsEmpty());

  auto counts = copy_rows(*source_, *target_, {});
  ASSERT_TRUE(counts) << counts.error().message();
  for (const auto& c : *counts) {
    EXPECT_EQ(c.source, c.target) << c.table;
  }
  auto used = non_empty_tables(*target_);
  ASSERT_TRUE(used);
  EXPECT_THAT(*used, ::testing::Contains("repositories (1 row)"));

  auto repo = target_->get_repository("web/app");
  ASSERT_TRUE(repo) << repo.error().message();
  EXPECT_EQ(repo->id, repo_.id);
  EXPECT_THAT(repo->mutable_tag_globs, ElementsAre("dev-*"));
  auto m = target_->get_manifest(repo->id, "v1");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->content, std::string("binary\0\xff\xfe bytes", 16));
  auto key = target_->get_key("BKALICE");
  ASSERT_TRUE(key);
  EXPECT_EQ(key->user, "alice");
  auto audit = target_->list_audit(0, "", 10);
  ASSERT_TRUE(audit);
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].action, "registry:Push");

  // New rows get new ids, past the copied ones.
  Repository next;
  next.name = "web/next";
  next.created_at = 2000;
  auto created = target_->create_repository(next);
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_GT(created->id, repo_.id);
}

// SQLite changes a table by re-creating it: then it comes after the tables that reference it.
TEST_P(CopyStoreTest, ReferencedTableRecreatedLastIsCopiedFirst) {
  fill();
  source_.reset();
  auto ddl = test::run("sqlite3 " + source_path_ +
                       " \"SELECT sql FROM sqlite_master WHERE name = 'repositories'\"");
  ASSERT_EQ(ddl.code, 0) << ddl.all();
  auto rebuilt = test::run(
      "sqlite3 " + source_path_ + " \"PRAGMA foreign_keys=OFF; BEGIN; " +
      "CREATE TABLE repo_copy AS SELECT * FROM repositories; DROP TABLE repositories; " + ddl.out +
      "; INSERT INTO repositories SELECT * FROM repo_copy; " + "DROP TABLE repo_copy; COMMIT;\"");
  ASSERT_EQ(rebuilt.code, 0) << rebuilt.all();
  auto last = test::run("sqlite3 " + source_path_ +
                        " \"SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid "
                        "DESC LIMIT 1\"");
  ASSERT_EQ(last.out, "repositories\n");
  auto s = open_sqlite(source_path_);
  ASSERT_TRUE(s) << s.error().message();
  source_ = std::move(*s);

  auto counts = copy_rows(*source_, *target_, {});
  ASSERT_TRUE(counts) << counts.error().message();
  auto m = target_->get_manifest(repo_.id, "v1");
  EXPECT_TRUE(m) << m.error().message();
}

TEST_P(CopyStoreTest, AFailedCopyLeavesTheTargetEmpty) {
  fill();
  // A row the target refuses, in a table copied after others: a duplicate key.
  Principal dup{"user", "alice", 1};
  ASSERT_TRUE(target_->create_principal(dup));
  auto counts = copy_rows(*source_, *target_, {});
  ASSERT_FALSE(counts);
  EXPECT_EQ(counts.error().code(), Errc::Conflict) << counts.error().message();
  EXPECT_THAT(counts.error().message(), HasSubstr("copy table principals"));
  auto used = non_empty_tables(*target_);
  ASSERT_TRUE(used);
  EXPECT_THAT(*used, ElementsAre("principals (1 row)"));
}

INSTANTIATE_TEST_SUITE_P(Engines, CopyStoreTest,
                         ::testing::Values(test::StoreEngine::Sqlite, test::StoreEngine::Postgres),
                         test::StoreEngineName());

}  // namespace
}  // namespace berth::store
