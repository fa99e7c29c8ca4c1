// SPDX-License-Identifier: Apache-2.0
// The IAM service over a real (in-memory) store: bootstrap, keys, policies, the simulator.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "iam/iam.h"
#include "support/harness.h"

namespace berth::iam {
namespace {

template <class T>
T run_sync(asio::io_context& ioc, awaitable<T> a) {
  std::optional<T> out;
  asio::co_spawn(ioc, std::move(a), [&](std::exception_ptr e, T v) {
    if (e) {
      std::rethrow_exception(e);
    }
    out = std::move(v);
  });
  ioc.restart();
  ioc.run();
  return std::move(*out);
}

class IamServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::open_sqlite(":memory:");
    ASSERT_TRUE(s);
    store_ = std::move(*s);
    svc_ = std::make_unique<Service>(*store_, pool_, allow_all());
  }
  void TearDown() override { pool_.join(); }

  asio::io_context ioc_;
  BlockingPool pool_{2};
  store::MetadataStorePtr store_;
  std::unique_ptr<Service> svc_;
  http::RequestContext ctx_;
};

TEST_F(IamServiceTest, BootstrapCreatesAdminOnceWithAPrivateCredentialsFile) {
  test::TempDir dir;
  auto id = svc_->bootstrap(dir.path());
  ASSERT_TRUE(id);
  ASSERT_EQ(id->size(), 20u);
  EXPECT_EQ(id->substr(0, 2), "BK");
  std::string creds = test::read_file(dir / "admin.credentials");
  EXPECT_EQ(creds.find("BERTH_ACCESS_KEY_ID=" + *id + "\n"), 0u) << creds;
  auto pos = creds.find("BERTH_SECRET_ACCESS_KEY=");
  ASSERT_NE(pos, std::string::npos);
  std::string secret = creds.substr(pos + 24, 40);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "admin.credentials").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto who = svc_->authenticate_key(*id, secret);
  ASSERT_TRUE(who);
  EXPECT_EQ(*who, "user/admin");
  EXPECT_FALSE(svc_->authenticate_key(*id, secret + "x"));
  // The admin may do anything.
  auto d = run_sync(ioc_, svc_->simulate(ctx_, Request{"user/admin", "iam:CreateUser", "user/x"}));
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->allowed);
  // A second start with users present changes nothing.
  auto again = svc_->bootstrap(dir.path());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, "");
}

TEST_F(IamServiceTest, KeysAuthenticateUntilDeactivated) {
  ASSERT_TRUE(run_sync(ioc_, svc_->create_principal(ctx_, "user", "ci")));
  auto k = run_sync(ioc_, svc_->create_key(ctx_, "ci"));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->secret.size(), 40u);
  EXPECT_NE(k->key.secret_hash, k->secret);  // only the hash is kept
  EXPECT_EQ(*svc_->authenticate_key(k->key.id, k->secret), "user/ci");
  ASSERT_TRUE(run_sync(ioc_, svc_->deactivate_key(ctx_, k->key.id)));
  auto after = svc_->authenticate_key(k->key.id, k->secret);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code(), Errc::Unauthenticated);
}

TEST_F(IamServiceTest, InvalidNamesAndPoliciesChangeNothing) {
  auto bad = run_sync(ioc_, svc_->create_principal(ctx_, "user", "Bad Name"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::InvalidArgument);
  ASSERT_TRUE(run_sync(ioc_, svc_->create_principal(ctx_, "role", "builder")));
  auto p = run_sync(ioc_, svc_->put_policy(ctx_, "role", "builder", "p",
                                           R"({"Version":"2012-10-17","Statement":[]})"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), Errc::InvalidArgument);
  auto list = run_sync(ioc_, svc_->list_policies(ctx_, "", ""));
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
}

TEST_F(IamServiceTest, SimulateCombinesIdentityAndRepositoryPolicies) {
  ASSERT_TRUE(run_sync(ioc_, svc_->create_principal(ctx_, "role", "builder")));
  ASSERT_TRUE(store_->create_repository(store::Repository{0, "web/site", false, {}, 1}));
  ASSERT_TRUE(run_sync(
      ioc_, svc_->put_policy(ctx_, "role", "builder", "pull",
                             R"({"Version":"2012-10-17","Statement":[{"Sid":"Pull","Effect":"Allow",
                                "Action":"registry:Pull","Resource":"repository/*"}]})")));
  ASSERT_TRUE(run_sync(
      ioc_, svc_->set_repository_policy(
                ctx_, "web/site",
                R"({"Version":"2012-10-17","Statement":[{"Sid":"BuilderPush","Effect":"Allow",
                   "Principal":"role/builder","Action":"registry:Push","Resource":"repository/web/site"},
                  {"Sid":"Public","Effect":"Allow","Principal":"*","Action":"registry:Pull",
                   "Resource":"repository/web/site"}]})")));
  auto push = run_sync(
      ioc_, svc_->simulate(ctx_, Request{"role/builder", "registry:Push", "repository/web/site"}));
  ASSERT_TRUE(push);
  EXPECT_TRUE(push->allowed);
  EXPECT_EQ(push->sid, "BuilderPush");
  auto elsewhere = run_sync(
      ioc_, svc_->simulate(ctx_, Request{"role/builder", "registry:Push", "repository/web/api"}));
  ASSERT_TRUE(elsewhere);
  EXPECT_FALSE(elsewhere->allowed);
  auto anon = run_sync(
      ioc_, svc_->simulate(ctx_, Request{"anonymous", "registry:Pull", "repository/web/site"}));
  ASSERT_TRUE(anon);
  EXPECT_TRUE(anon->allowed);
  EXPECT_EQ(anon->sid, "Public");
}

TEST_F(IamServiceTest, TheLastUserCannotBeDeleted) {
  ASSERT_TRUE(run_sync(ioc_, svc_->create_principal(ctx_, "user", "admin")));
  auto s = run_sync(ioc_, svc_->delete_principal(ctx_, "user", "admin"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::FailedPrecondition);
  ASSERT_TRUE(run_sync(ioc_, svc_->create_principal(ctx_, "user", "ops")));
  EXPECT_TRUE(run_sync(ioc_, svc_->delete_principal(ctx_, "user", "admin")));
}

TEST_F(IamServiceTest, SimulateRefusesAMalformedPrincipal) {
  auto d = run_sync(ioc_, svc_->simulate(ctx_, Request{"bogus", "registry:Pull", "repository/a"}));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), Errc::InvalidArgument);
}

}  // namespace
}  // namespace berth::iam
