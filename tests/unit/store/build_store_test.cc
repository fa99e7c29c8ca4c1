// SPDX-License-Identifier: Apache-2.0
// The metadata store's build tables (every engine): projects (create, get, list, update, delete
// with their builds) and builds (add, update, get, newest-first lists, the queue by status).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/store.h"
#include "support/harness.h"
#include "support/postgres.h"

namespace berth::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class BuildStoreTest : public ::testing::TestWithParam<test::StoreEngine> {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    auto s = home_.open();
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
  }

  void add_project(const std::string& name) {
    BuildProjectRecord p{name, R"({"repository":"web/app"})", "v1:sealed", 100, 100};
    auto r = store_->create_build_project(p);
    ASSERT_TRUE(r) << r.error().message();
  }

  int64_t add(const std::string& project, const std::string& status,
              const std::string& branch = "main") {
    BuildRecord b;
    b.project = project;
    b.status = status;
    b.branch = branch;
    b.trigger = "manual";
    b.created_at = 200;
    auto id = store_->add_build(b);
    EXPECT_TRUE(id) << id.error().message();
    return id ? *id : 0;
  }

  static std::vector<int64_t> ids(const std::vector<BuildRecord>& v) {
    std::vector<int64_t> out;
    for (const auto& b : v) {
      out.push_back(b.id);
    }
    return out;
  }

  test::StoreHome home_{GetParam()};
  MetadataStorePtr store_;
};

TEST_P(BuildStoreTest, ProjectsCreateGetListUpdate) {
  add_project("web");
  add_project("api");
  auto dup = store_->create_build_project(BuildProjectRecord{"web", "{}", "", 1, 1});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::AlreadyExists);
  EXPECT_EQ(dup.error().message(), "build project web already exists");

  auto got = store_->get_build_project("web");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->spec, R"({"repository":"web/app"})");
  EXPECT_EQ(got->webhook_secret, "v1:sealed");
  EXPECT_EQ(got->created_at, 100);

  auto list = store_->list_build_projects();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "api");
  EXPECT_EQ((*list)[1].name, "web");

  BuildProjectRecord upd = *got;
  upd.spec = "{}";
  upd.webhook_secret = "v1:other";
  upd.updated_at = 300;
  upd.created_at = 999;  // ignored
  ASSERT_TRUE(store_->update_build_project(upd));
  got = store_->get_build_project("web");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->spec, "{}");
  EXPECT_EQ(got->webhook_secret, "v1:other");
  EXPECT_EQ(got->created_at, 100);
  EXPECT_EQ(got->updated_at, 300);

  upd.name = "nope";
  auto missing = store_->update_build_project(upd);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
  EXPECT_EQ(store_->get_build_project("nope").error().code(), Errc::NotFound);
}

TEST_P(BuildStoreTest, BuildsRoundTripEveryField) {
  add_project("web");
  BuildRecord b;
  b.project = "web";
  b.status = "QUEUED";
  b.branch = "main";
  b.trigger = "webhook push to main";
  b.created_at = 10;
  auto id = store_->add_build(b);
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_GT(*id, 0);

  b.id = *id;
  b.status = "SUCCEEDED";
  b.phase = "PUSH";
  b.reason = "";
  b.commit_id = std::string(40, 'a');
  b.source = "file:///src";
  b.image = "web/app:latest";
  b.tags = {"latest", "aaaaaaa"};
  b.digest = "sha256:" + std::string(64, 'b');
  b.phase_ms = R"({"BUILD":20,"PUSH":3,"SOURCE":10})";
  b.steps = R"([{"line":1,"text":"FROM scratch"}])";
  b.started_at = 11;
  b.finished_at = 12;
  b.trigger = "ignored";  // trigger is fixed at creation
  ASSERT_TRUE(store_->update_build(b));

  auto got = store_->get_build(*id);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->project, "web");
  EXPECT_EQ(got->status, "SUCCEEDED");
  EXPECT_EQ(got->phase, "PUSH");
  EXPECT_EQ(got->commit_id, std::string(40, 'a'));
  EXPECT_EQ(got->branch, "main");
  EXPECT_EQ(got->trigger, "webhook push to main");
  EXPECT_EQ(got->source, "file:///src");
  EXPECT_EQ(got->image, "web/app:latest");
  EXPECT_THAT(got->tags, ElementsAre("latest", "aaaaaaa"));
  EXPECT_EQ(got->digest, b.digest);
  EXPECT_EQ(got->phase_ms, b.phase_ms);
  EXPECT_EQ(got->steps, b.steps);
  EXPECT_EQ(got->created_at, 10);
  EXPECT_EQ(got->started_at, 11);
  EXPECT_EQ(got->finished_at, 12);
}

TEST_P(BuildStoreTest, BuildsNeedAProject) {
  BuildRecord b;
  b.project = "ghost";
  b.status = "QUEUED";
  auto id = store_->add_build(b);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code(), Errc::NotFound);
  EXPECT_EQ(id.error().message(), "build project ghost does not exist");
  b.id = 42;
  EXPECT_EQ(store_->update_build(b).error().code(), Errc::NotFound);
  EXPECT_EQ(store_->get_build(42).error().code(), Errc::NotFound);
}

TEST_P(BuildStoreTest, ListsNewestFirstAndTheQueueOldestFirst) {
  add_project("web");
  add_project("api");
  int64_t a = add("web", "QUEUED");
  int64_t b = add("api", "QUEUED");
  int64_t c = add("web", "IN_PROGRESS");
  int64_t d = add("web", "QUEUED", "dev");

  auto web = store_->list_builds("web", 10);
  ASSERT_TRUE(web);
  EXPECT_THAT(ids(*web), ElementsAre(d, c, a));
  auto limited = store_->list_builds("web", 2);
  ASSERT_TRUE(limited);
  EXPECT_THAT(ids(*limited), ElementsAre(d, c));
  auto all = store_->list_builds("", -1);
  ASSERT_TRUE(all);
  EXPECT_THAT(ids(*all), ElementsAre(d, c, b, a));

  auto queued = store_->list_builds_by_status("QUEUED");
  ASSERT_TRUE(queued);
  EXPECT_THAT(ids(*queued), ElementsAre(a, b, d));
  auto running = store_->list_builds_by_status("IN_PROGRESS");
  ASSERT_TRUE(running);
  EXPECT_THAT(ids(*running), ElementsAre(c));
  auto none = store_->list_builds_by_status("FAILED");
  ASSERT_TRUE(none);
  EXPECT_THAT(*none, IsEmpty());
}

TEST_P(BuildStoreTest, DeletingAProjectRemovesItsBuildsOnly) {
  add_project("web");
  add_project("api");
  add("web", "QUEUED");
  add("web", "SUCCEEDED");
  int64_t keep = add("api", "QUEUED");
  ASSERT_TRUE(store_->delete_build_project("web"));
  EXPECT_EQ(store_->get_build_project("web").error().code(), Errc::NotFound);
  auto all = store_->list_builds("", 100);
  ASSERT_TRUE(all);
  EXPECT_THAT(ids(*all), ElementsAre(keep));
  auto again = store_->delete_build_project("web");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::NotFound);
  // A failed delete rolls back: nothing else went.
  all = store_->list_builds("", 100);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 1u);
}

TEST_P(BuildStoreTest, PersistsAcrossReopen) {
  test::StoreHome home(GetParam(), /*persistent=*/true);
  int64_t id = 0;
  {
    auto s = home.open();
    ASSERT_TRUE(s) << s.error().message();
    ASSERT_TRUE((*s)->create_build_project(BuildProjectRecord{"web", "{}", "x", 1, 1}));
    BuildRecord b;
    b.project = "web";
    b.status = "QUEUED";
    b.created_at = 5;
    auto r = (*s)->add_build(b);
    ASSERT_TRUE(r);
    id = *r;
  }
  auto s = home.open();
  ASSERT_TRUE(s) << s.error().message();
  auto q = (*s)->list_builds_by_status("QUEUED");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 1u);
  EXPECT_EQ((*q)[0].id, id);
}

INSTANTIATE_TEST_SUITE_P(Engines, BuildStoreTest,
                         ::testing::Values(test::StoreEngine::Sqlite, test::StoreEngine::Postgres),
                         test::StoreEngineName());

}  // namespace
}  // namespace berth::store
