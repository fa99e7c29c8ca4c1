// SPDX-License-Identifier: Apache-2.0
// IAM records in the metadata store (every engine): principals, access keys, attached and resource
// policies.
#include <gtest/gtest.h>

#include "store/store.h"
#include "support/postgres.h"

namespace berth::store {
namespace {

class IamStoreTest : public ::testing::TestWithParam<test::StoreEngine> {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    auto s = home_.open();
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->create_principal(Principal{"user", "ci", 10}));
  }
  test::StoreHome home_{GetParam()};
  MetadataStorePtr store_;
};

TEST_P(IamStoreTest, PrincipalsAreUniquePerKind) {
  auto dup = store_->create_principal(Principal{"user", "ci", 11});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::AlreadyExists);
  EXPECT_TRUE(store_->create_principal(Principal{"role", "ci", 11}));  // a role may share it
  auto users = store_->list_principals("user");
  ASSERT_TRUE(users);
  ASSERT_EQ(users->size(), 1u);
  EXPECT_EQ((*users)[0].name, "ci");
}

TEST_P(IamStoreTest, KeysBelongToExistingUsersAndCanBeDeactivated) {
  auto orphan = store_->create_key(AccessKey{"BKX", "nobody", "h", true, 1});
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().code(), Errc::NotFound);
  ASSERT_TRUE(store_->create_key(AccessKey{"BK1", "ci", "hash1", true, 1}));
  ASSERT_TRUE(store_->set_key_active("BK1", false));
  auto k = store_->get_key("BK1");
  ASSERT_TRUE(k);
  EXPECT_FALSE(k->active);
  EXPECT_EQ(k->secret_hash, "hash1");
  EXPECT_EQ(store_->set_key_active("BK2", false).error().code(), Errc::NotFound);
  ASSERT_TRUE(store_->delete_key("BK1"));
  EXPECT_EQ(store_->get_key("BK1").error().code(), Errc::NotFound);
}

TEST_P(IamStoreTest, DeletingAUserRemovesItsKeysAndPolicies) {
  ASSERT_TRUE(store_->create_key(AccessKey{"BK1", "ci", "h", true, 1}));
  ASSERT_TRUE(store_->put_policy(AttachedPolicy{"user", "ci", "p", "{}", 1}));
  ASSERT_TRUE(store_->delete_principal("user", "ci"));
  EXPECT_EQ(store_->get_key("BK1").error().code(), Errc::NotFound);
  auto pols = store_->list_policies("", "");
  ASSERT_TRUE(pols);
  EXPECT_TRUE(pols->empty());
  EXPECT_EQ(store_->delete_principal("user", "ci").error().code(), Errc::NotFound);
}

TEST_P(IamStoreTest, PoliciesReplaceByNameAndNeedAPrincipal) {
  ASSERT_TRUE(store_->put_policy(AttachedPolicy{"user", "ci", "p", "v1", 1}));
  ASSERT_TRUE(store_->put_policy(AttachedPolicy{"user", "ci", "p", "v2", 2}));
  auto pols = store_->list_policies("user", "ci");
  ASSERT_TRUE(pols);
  ASSERT_EQ(pols->size(), 1u);
  EXPECT_EQ((*pols)[0].document, "v2");
  EXPECT_EQ(store_->put_policy(AttachedPolicy{"role", "ghost", "p", "v", 1}).error().code(),
            Errc::NotFound);
  ASSERT_TRUE(store_->delete_policy("user", "ci", "p"));
  EXPECT_EQ(store_->delete_policy("user", "ci", "p").error().code(), Errc::NotFound);
}

TEST_P(IamStoreTest, RepositoryPoliciesFollowTheirRepository) {
  EXPECT_EQ(store_->set_repository_policy("web/app", "{}").error().code(), Errc::NotFound);
  ASSERT_TRUE(store_->create_repository(Repository{0, "web/app", false, {}, 1}));
  auto none = store_->get_repository_policy("web/app");
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, "");
  ASSERT_TRUE(store_->set_repository_policy("web/app", "doc"));
  EXPECT_EQ(*store_->get_repository_policy("web/app"), "doc");
  ASSERT_TRUE(store_->set_repository_policy("web/app", ""));
  EXPECT_EQ(*store_->get_repository_policy("web/app"), "");
  ASSERT_TRUE(store_->set_repository_policy("web/app", "doc2"));
  ASSERT_TRUE(store_->delete_repository("web/app"));
  ASSERT_TRUE(store_->create_repository(Repository{0, "web/app", false, {}, 2}));
  EXPECT_EQ(*store_->get_repository_policy("web/app"), "");  // not inherited by a new repo
}

INSTANTIATE_TEST_SUITE_P(Engines, IamStoreTest,
                         ::testing::Values(test::StoreEngine::Sqlite, test::StoreEngine::Postgres),
                         test::StoreEngineName());

}  // namespace
}  // namespace berth::store
