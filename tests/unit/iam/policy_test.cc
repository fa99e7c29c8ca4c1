// SPDX-License-Identifier: Apache-2.0
// Policy parsing and evaluation: table tests for wildcards, Deny precedence, resource
// policies, public (anonymous) access and the default deny.
#include <gtest/gtest.h>

#include "iam/iam.h"

namespace berth::iam {
namespace {

Policy must_parse(const std::string& json, const std::string& name, bool resource = false) {
  auto p = parse_policy(json, name, resource);
  EXPECT_TRUE(p) << (p ? "" : p.error().message());
  return p ? *p : Policy{};
}

const char* kWebPush = R"({"Version":"2012-10-17","Statement":[
  {"Sid":"PushWeb","Effect":"Allow","Action":["registry:Pull","registry:Push"],
   "Resource":["repository/web/*"]}]})";
const char* kDenyProd = R"({"Version":"2012-10-17","Statement":[
  {"Sid":"NoProd","Effect":"Deny","Action":"registry:Push","Resource":"repository/web/prod-?"}]})";
const char* kAdmin = R"({"Version":"2012-10-17","Statement":
  {"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}})";

struct Case {
  const char* principal;
  const char* action;
  const char* resource;
  bool allowed;
  const char* sid;
};

TEST(PolicyTest, IdentityPoliciesTable) {
  std::vector<Policy> ps = {must_parse(kWebPush, "web-push"), must_parse(kDenyProd, "no-prod")};
  const Case cases[] = {
      {"user/ci", "registry:Push", "repository/web/app", true, "PushWeb"},
      {"user/ci", "registry:pull", "repository/web/app", true, "PushWeb"},  // actions ignore case
      {"user/ci", "registry:Push", "repository/web/prod-1", false, "NoProd"},  // Deny wins
      {"user/ci", "registry:Pull", "repository/web/prod-1", true, "PushWeb"},
      {"user/ci", "registry:Push", "repository/web/prod-12", true, "PushWeb"},  // ? is one char
      {"user/ci", "registry:Delete", "repository/web/app", false, ""},          // no statement
      {"user/ci", "registry:Push", "repository/api/app", false, ""},
      {"user/ci", "registry:Push", "repository/WEB/app", false, ""},  // resources keep case
  };
  for (const auto& c : cases) {
    auto d = evaluate(ps, nullptr, Request{c.principal, c.action, c.resource});
    EXPECT_EQ(d.allowed, c.allowed) << c.action << " " << c.resource;
    EXPECT_EQ(d.sid, c.sid) << c.action << " " << c.resource;
  }
}

TEST(PolicyTest, NothingAttachedIsDenied) {
  auto d = evaluate({}, nullptr, Request{"user/x", "registry:Pull", "repository/a"});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "no statement allows it");
}

TEST(PolicyTest, AdminAllowsEverythingButAnExplicitDeny) {
  std::vector<Policy> ps = {must_parse(kAdmin, "admin"), must_parse(kDenyProd, "no-prod")};
  EXPECT_TRUE(evaluate(ps, nullptr, {"user/admin", "iam:CreateUser", "user/bob"}).allowed);
  auto d = evaluate(ps, nullptr, {"user/admin", "registry:Push", "repository/web/prod-1"});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.policy, "no-prod");
  EXPECT_EQ(d.reason, "explicit deny");
}

TEST(PolicyTest, ResourcePolicyGrantsNamedPrincipalsAndPublicPull) {
  auto repo = must_parse(R"({"Version":"2012-10-17","Statement":[
    {"Sid":"Public","Effect":"Allow","Principal":"*","Action":"registry:Pull",
     "Resource":"repository/web/site"},
    {"Sid":"Builder","Effect":"Allow","Principal":["role/builder"],"Action":"registry:Push",
     "Resource":"repository/web/site"},
    {"Sid":"NoBob","Effect":"Deny","Principal":"user/bob","Action":"*",
     "Resource":"repository/web/site"}]})",
                         "repo:web/site", true);
  EXPECT_TRUE(evaluate({}, &repo, {"anonymous", "registry:Pull", "repository/web/site"}).allowed);
  EXPECT_FALSE(evaluate({}, &repo, {"anonymous", "registry:Push", "repository/web/site"}).allowed);
  EXPECT_TRUE(
      evaluate({}, &repo, {"role/builder", "registry:Push", "repository/web/site"}).allowed);
  // A resource-policy Deny beats an identity Allow.
  std::vector<Policy> bob = {must_parse(kWebPush, "web-push")};
  auto d = evaluate(bob, &repo, {"user/bob", "registry:Pull", "repository/web/site"});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.sid, "NoBob");
}

TEST(PolicyTest, ParseErrorsNameTheField) {
  struct Bad {
    const char* json;
    bool resource;
    const char* needle;
  };
  const Bad bad[] = {
      {"not json", false, "not valid JSON"},
      {R"({"Statement":[]})", false, "Version"},
      {R"({"Version":"2012-10-17","Statement":[]})", false, "non-empty"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"a:b","Resource":"*"}]})",
       false, "Statement[0].Effect"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]})", false,
       "Statement[0].Action"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"Pull","Resource":"*"}]})",
       false, "namespace:Name"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b"}]})", false,
       "Statement[0].Resource"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"}]})",
       true, "Principal"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"a:b","Resource":"*"}]})",
       false, "only resource policies"},
      {R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]})",
       false, "non-empty list"},
  };
  for (const auto& b : bad) {
    auto p = parse_policy(b.json, "p", b.resource);
    ASSERT_FALSE(p) << b.json;
    EXPECT_EQ(p.error().code(), Errc::InvalidArgument);
    EXPECT_NE(p.error().message().find(b.needle), std::string::npos)
        << b.json << " -> " << p.error().message();
  }
}

}  // namespace
}  // namespace berth::iam
