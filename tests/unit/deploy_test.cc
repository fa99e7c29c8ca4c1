// SPDX-License-Identifier: Apache-2.0
// Service specs (parsing, validation, the stored form), sealed secrets, semantic versions, and
// the store's services, revisions and deployments.
#include "deploy/deploy.h"

#include <gtest/gtest.h>

#include "store/store.h"
#include "support/harness.h"

namespace berth::deploy {
namespace {

Result<ServiceSpec> parse(const std::string& json, ServiceSpec base = {}) {
  return spec_from_request(Json::parse(json), std::move(base));
}

TEST(ServiceSpec, DefaultsAndFields) {
  auto s = parse(R"({"image":"web/app","port":9090,"env":{"A":"1"},"cpus":0.5,
                     "memory":"256M","min_instances":2,"max_instances":3,"concurrency":10,
                     "health_check":"http:/healthz","role":"r","auto_deploy":true})");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->image, "web/app:latest");
  EXPECT_EQ(s->repository(), "web/app");
  EXPECT_EQ(s->tag(), "latest");
  EXPECT_EQ(s->port, 9090);
  EXPECT_EQ(s->env.at("A"), "1");
  EXPECT_EQ(s->memory_bytes, 256 * 1024 * 1024);
  EXPECT_EQ(s->health.type, "http");
  EXPECT_EQ(s->health.path, "/healthz");
  EXPECT_EQ(s->health.interval.count(), 5000);
  EXPECT_EQ(s->health.timeout.count(), 2000);
  EXPECT_EQ(s->health.healthy_threshold, 1);
  EXPECT_EQ(s->health.unhealthy_threshold, 5);
  EXPECT_EQ(s->min_instances, 2);
  EXPECT_TRUE(s->auto_deploy);

  auto pinned = parse(R"({"image":"web/app@sha256:)" + std::string(64, 'a') + R"("})");
  ASSERT_TRUE(pinned) << pinned.error().message();
  EXPECT_EQ(pinned->tag(), "");
  EXPECT_EQ(pinned->repository(), "web/app");
  auto port = parse(R"({"image":"127.0.0.1:5000/web/app"})");
  EXPECT_FALSE(port);  // a registry host is not part of a berth repository name
}

TEST(ServiceSpec, ErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* field;
  } cases[] = {
      {R"({})", "image"},
      {R"({"image":"Web/App"})", "image"},
      {R"({"image":"web/app","port":0})", "port"},
      {R"({"image":"web/app","port":"80"})", "port"},
      {R"({"image":"web/app","env":{"1X":"a"}})", "env"},
      {R"({"image":"web/app","env":{"PORT":"1"}})", "env"},
      {R"({"image":"web/app","env":{"A":1}})", "env.A"},
      {R"({"image":"web/app","memory":"12Q"})", "memory"},
      {R"({"image":"web/app","memory":"1K"})", "memory"},
      {R"({"image":"web/app","min_instances":3,"max_instances":2})", "min_instances"},
      {R"({"image":"web/app","health_check":"udp"})", "health_check"},
      {R"({"image":"web/app","health_check":{"interval":"5x"}})", "health_check.interval"},
      {R"({"image":"web/app","deploy_timeout":"10ms"})", "deploy_timeout"},
      {R"({"image":"web/app","colour":"blue"})", "colour"},
      {R"({"image":"web/app","env":{"K":"a"},"secret_env":{"K":"b"}})", "secret_env"},
  };
  for (const auto& c : cases) {
    auto s = parse(c.json);
    ASSERT_FALSE(s) << c.json;
    EXPECT_EQ(s.error().code(), Errc::InvalidArgument) << c.json;
    EXPECT_EQ(s.error().message().rfind(std::string(c.field) + ":", 0), 0u)
        << c.json << " -> " << s.error().message();
  }
}

TEST(ServiceSpec, UpdatesApplyOverTheBase) {
  auto base = parse(R"({"image":"web/app:v1","env":{"A":"1","B":"2"}})");
  ASSERT_TRUE(base);
  auto s = parse(R"({"env":{"A":null,"C":"3"},"port":81})", *base);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->image, "web/app:v1");
  EXPECT_EQ(s->env.count("A"), 0u);
  EXPECT_EQ(s->env.at("B"), "2");
  EXPECT_EQ(s->env.at("C"), "3");
  EXPECT_EQ(s->port, 81);
}

TEST(ServiceSpec, NamesAreDnsLabels) {
  EXPECT_TRUE(validate_service_name("web"));
  EXPECT_TRUE(validate_service_name("a-1"));
  for (const char* bad :
       {"", "Web", "-a", "a-", "a_b", "a.b", "a234567890123456789012345678901234567890x"}) {
    EXPECT_FALSE(validate_service_name(bad)) << bad;
  }
}

TEST(ServiceSpec, StoredFormSealsSecretsAndViewHidesThem) {
  test::TempDir dir;
  auto box = SecretBox::load_or_create(dir / "secrets.key");
  ASSERT_TRUE(box);
  auto spec = parse(R"({"image":"web/app","secret_env":{"TOKEN":"hunter2"},"env":{"A":"b"}})");
  ASSERT_TRUE(spec);
  std::string stored = spec_to_store(*spec, **box);
  EXPECT_EQ(stored.find("hunter2"), std::string::npos);
  auto back = spec_from_store(stored, **box);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->secret_env.at("TOKEN"), "hunter2");
  EXPECT_EQ(back->env.at("A"), "b");
  EXPECT_EQ(spec_to_view(*back).dump().find("hunter2"), std::string::npos);
  EXPECT_EQ(spec_to_view(*back)["secret_env"][0], "TOKEN");
  // The key persists; another key cannot open the value; tampering is detected.
  auto again = SecretBox::load_or_create(dir / "secrets.key");
  ASSERT_TRUE(again);
  EXPECT_EQ(*(*again)->open((*box)->seal("x")), "x");
  auto other = SecretBox::load_or_create(dir / "other.key");
  ASSERT_TRUE(other);
  EXPECT_FALSE((*other)->open((*box)->seal("x")));
  std::string sealed = (*box)->seal("abc");
  sealed[10] = sealed[10] == 'A' ? 'B' : 'A';  // inside the nonce: every bit counts
  EXPECT_FALSE((*box)->open(sealed));
  EXPECT_EQ(test::run("stat -c %a " + (dir / "secrets.key")).out, "600\n");
}

TEST(Semver, OrdersVersionsAndRejectsOthers) {
  auto v = [](const char* s) { return *parse_semver(s); };
  EXPECT_LT(v("v1.2.3"), v("v1.10.0"));
  EXPECT_LT(v("1.9"), v("1.10"));
  EXPECT_LT(v("v2.0.0-rc1"), v("v2.0.0"));
  EXPECT_EQ(v("v2"), v("2.0.0"));
  EXPECT_FALSE(parse_semver("latest"));
  EXPECT_FALSE(parse_semver("v1.x"));
  EXPECT_FALSE(parse_semver(""));
}

TEST(ServiceStore, RevisionsAndDeployments) {
  auto st = store::open_sqlite(":memory:");
  ASSERT_TRUE(st);
  auto& s = **st;
  EXPECT_EQ(s.add_revision({"web", 0, "sha256:x", "{}", 1}).error().code(), Errc::NotFound);
  ASSERT_TRUE(s.create_service({"web", "{}", false, 0, 1, 1}));
  EXPECT_EQ(s.create_service({"web", "{}", false, 0, 1, 1}).error().code(), Errc::AlreadyExists);
  EXPECT_EQ(*s.add_revision({"web", 0, "sha256:a", "{}", 1}), 1);
  EXPECT_EQ(*s.add_revision({"web", 0, "sha256:b", "{}", 2}), 2);
  store::DeploymentRecord d;
  d.service = "web";
  d.revision = 2;
  d.status = "QUEUED";
  auto id = s.add_deployment(d);
  ASSERT_TRUE(id);
  auto got = s.get_deployment(*id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->digest, "sha256:b");
  got->status = "SUCCEEDED";
  ASSERT_TRUE(s.update_deployment(*got));
  EXPECT_EQ(s.list_deployments("web", 10)->at(0).status, "SUCCEEDED");
  ASSERT_TRUE(s.delete_service("web"));
  EXPECT_TRUE(s.list_deployments("", 10)->empty());
  EXPECT_EQ(s.get_revision("web", 1).error().code(), Errc::NotFound);
}

}  // namespace
}  // namespace berth::deploy
