// SPDX-License-Identifier: Apache-2.0
// The metadata store's service tables and its object table (every engine): services (create,
// get, list, update, delete with their revisions and deployments), revisions numbered per
// service, deployments newest first, and the JSON objects custom domains, certificates, TSIG
// keys and health checks live in.
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

class ServiceStoreTest : public ::testing::TestWithParam<test::StoreEngine> {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    auto s = home_.open();
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
  }

  int64_t deploy(const std::string& service, int64_t revision, int64_t at) {
    DeploymentRecord d;
    d.service = service;
    d.revision = revision;
    d.status = "QUEUED";
    d.trigger = "push web/app:v" + std::to_string(revision);
    d.created_at = at;
    auto id = store_->add_deployment(d);
    EXPECT_TRUE(id) << id.error().message();
    return id ? *id : 0;
  }

  static std::vector<std::string> names(const std::vector<ServiceRecord>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) {
      out.push_back(s.name);
    }
    return out;
  }
  static std::vector<int64_t> ids(const std::vector<DeploymentRecord>& v) {
    std::vector<int64_t> out;
    for (const auto& d : v) {
      out.push_back(d.id);
    }
    return out;
  }

  test::StoreHome home_{GetParam()};
  MetadataStorePtr store_;
};

TEST_P(ServiceStoreTest, ServicesAreCreatedOnceReadAndReplaced) {
  ASSERT_TRUE(store_->create_service(ServiceRecord{"web", R"({"port":8080})", false, 0, 10, 10}));
  ASSERT_TRUE(store_->create_service(ServiceRecord{"api", "{}", false, 0, 11, 11}));
  auto dup = store_->create_service(ServiceRecord{"web", "{}", false, 0, 12, 12});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::AlreadyExists);

  auto web = store_->get_service("web");
  ASSERT_TRUE(web) << web.error().message();
  EXPECT_EQ(web->spec, R"({"port":8080})");
  EXPECT_FALSE(web->paused);
  EXPECT_EQ(web->revision, 0);
  EXPECT_EQ(web->created_at, 10);
  auto all = store_->list_services();
  ASSERT_TRUE(all);
  EXPECT_THAT(names(*all), ElementsAre("api", "web"));

  // update_service replaces spec, paused, revision and updated_at, and keeps created_at.
  ASSERT_TRUE(store_->update_service(ServiceRecord{"web", R"({"port":9090})", true, 3, 99, 20}));
  web = store_->get_service("web");
  ASSERT_TRUE(web);
  EXPECT_EQ(web->spec, R"({"port":9090})");
  EXPECT_TRUE(web->paused);
  EXPECT_EQ(web->revision, 3);
  EXPECT_EQ(web->created_at, 10);
  EXPECT_EQ(web->updated_at, 20);

  for (const auto& missing : {store_->update_service(ServiceRecord{"nope", "{}", false, 0, 1, 1}),
                              store_->delete_service("nope")}) {
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), Errc::NotFound);
  }
  auto none = store_->get_service("nope");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::NotFound);
}

TEST_P(ServiceStoreTest, RevisionsAndDeploymentsBelongToTheirService) {
  ASSERT_TRUE(store_->create_service(ServiceRecord{"web", "{}", false, 0, 1, 1}));
  ASSERT_TRUE(store_->create_service(ServiceRecord{"api", "{}", false, 0, 1, 1}));
  // Revisions are numbered per service, from 1.
  for (int64_t want : {1, 2}) {
    auto n = store_->add_revision(
        RevisionRecord{"web", 0, "sha256:" + std::string(64, char('0' + want)), "{}", 5});
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, want);
  }
  auto first_api = store_->add_revision(RevisionRecord{"api", 0, "sha256:a", "{}", 5});
  ASSERT_TRUE(first_api);
  EXPECT_EQ(*first_api, 1);
  auto rev = store_->get_revision("web", 2);
  ASSERT_TRUE(rev) << rev.error().message();
  EXPECT_EQ(rev->digest, "sha256:" + std::string(64, '2'));
  auto gone = store_->get_revision("web", 3);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::NotFound);
  auto orphan = store_->add_revision(RevisionRecord{"nope", 0, "sha256:x", "{}", 5});
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().code(), Errc::NotFound);

  int64_t d1 = deploy("web", 1, 100);
  int64_t d2 = deploy("web", 2, 200);
  int64_t d3 = deploy("api", 1, 150);
  EXPECT_NE(d1, d2);
  // update_deployment replaces status, reason and the times; reads fill in the digest.
  auto d = store_->get_deployment(d2);
  ASSERT_TRUE(d) << d.error().message();
  d->status = "FAILED";
  d->reason = "instance exited with code 1";
  d->started_at = 201;
  d->finished_at = 205;
  ASSERT_TRUE(store_->update_deployment(*d));
  auto back = store_->get_deployment(d2);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, "FAILED");
  EXPECT_EQ(back->reason, "instance exited with code 1");
  EXPECT_EQ(back->finished_at, 205);
  EXPECT_EQ(back->trigger, "push web/app:v2");
  EXPECT_EQ(back->digest, "sha256:" + std::string(64, '2'));

  auto web = store_->list_deployments("web", 10);
  ASSERT_TRUE(web);
  EXPECT_THAT(ids(*web), ElementsAre(d2, d1));
  // Newest is the last added (ids grow), whatever the clock said.
  auto every = store_->list_deployments("", 10);
  ASSERT_TRUE(every);
  EXPECT_THAT(ids(*every), ElementsAre(d3, d2, d1));
  auto one = store_->list_deployments("", 1);
  ASSERT_TRUE(one);
  EXPECT_THAT(ids(*one), ElementsAre(d3));

  // Deleting a service takes its revisions and deployments with it, and nothing else.
  ASSERT_TRUE(store_->delete_service("web"));
  auto after = store_->list_deployments("", 10);
  ASSERT_TRUE(after);
  EXPECT_THAT(ids(*after), ElementsAre(d3));
  EXPECT_FALSE(store_->get_revision("web", 1));
  EXPECT_FALSE(store_->get_deployment(d1));
  EXPECT_TRUE(store_->get_revision("api", 1));
  // A service made again under the same name starts its numbering again.
  ASSERT_TRUE(store_->create_service(ServiceRecord{"web", "{}", false, 0, 300, 300}));
  auto again = store_->add_revision(RevisionRecord{"web", 0, "sha256:b", "{}", 300});
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 1);
}

TEST_P(ServiceStoreTest, ObjectsAreKeyedByKindAndName) {
  ASSERT_TRUE(store_->put_object(ObjectRow{"domain", "example.com", R"({"a":1})", 10, 10}, true));
  ASSERT_TRUE(store_->put_object(ObjectRow{"domain", "api.example.com", "{}", 11, 11}, true));
  // The same name under another kind is another object.
  ASSERT_TRUE(store_->put_object(ObjectRow{"certificate", "example.com", "{}", 12, 12}, true));
  auto dup = store_->put_object(ObjectRow{"domain", "example.com", "{}", 13, 13}, true);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::AlreadyExists);
  auto kept = store_->get_object("domain", "example.com");
  ASSERT_TRUE(kept) << kept.error().message();
  EXPECT_EQ(kept->document, R"({"a":1})") << "a refused create changes nothing";

  // Replacing keeps created_at from the first write.
  ASSERT_TRUE(store_->put_object(ObjectRow{"domain", "example.com", R"({"a":2})", 50, 50}, false));
  auto o = store_->get_object("domain", "example.com");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->document, R"({"a":2})");
  EXPECT_EQ(o->created_at, 10);
  EXPECT_EQ(o->updated_at, 50);
  // create=false also inserts.
  ASSERT_TRUE(store_->put_object(ObjectRow{"tsig", "ci", "{}", 60, 60}, false));
  EXPECT_TRUE(store_->get_object("tsig", "ci"));

  auto domains = store_->list_objects("domain");
  ASSERT_TRUE(domains);
  std::vector<std::string> listed;
  for (const auto& d : *domains) {
    listed.push_back(d.name);
  }
  EXPECT_THAT(listed, ElementsAre("api.example.com", "example.com"));
  auto nothing = store_->list_objects("healthcheck");
  ASSERT_TRUE(nothing);
  EXPECT_THAT(*nothing, IsEmpty());

  ASSERT_TRUE(store_->delete_object("domain", "example.com"));
  auto gone = store_->get_object("domain", "example.com");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::NotFound);
  EXPECT_TRUE(store_->get_object("certificate", "example.com"));
  auto again = store_->delete_object("domain", "example.com");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::NotFound);
}

INSTANTIATE_TEST_SUITE_P(Engines, ServiceStoreTest,
                         ::testing::Values(test::StoreEngine::Sqlite, test::StoreEngine::Postgres),
                         test::StoreEngineName());

}  // namespace
}  // namespace berth::store
