// SPDX-License-Identifier: Apache-2.0
// Lifecycle rules against an in-process berthd: what the preview says is what applying
// deletes, a digest a service's revision pins survives its rule, an index keeps its child,
// bad rules are refused naming the field and change nothing, and the maintenance tick
// applies the rules by itself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "common/asio.h"
#include "integration/registry_client.h"
#include "registry/registry.h"
#include "support/blob_backend.h"
#include "support/harness.h"

namespace berth::test {
namespace {

using ::testing::HasSubstr;

// pushed_at is in whole seconds; the rules order images by it.
void next_second() {
  std::time_t t = std::time(nullptr);
  while (std::time(nullptr) <= t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Runs the registry's lifecycle pass now, as the maintenance tick would.
int64_t apply_now(TestDaemon& d) {
  asio::io_context ioc;
  std::optional<int64_t> out;
  auto done = [&](std::exception_ptr e, int64_t n) {
    if (e) {
      std::rethrow_exception(e);
    }
    out = n;
  };
  asio::co_spawn(ioc, d.daemon().registry().apply_lifecycle(), done);
  ioc.run();
  return out.value_or(-1);
}

std::string push_tagged(const RegistryClient& c, const std::string& tag) {
  return sha256_digest(push_image(c, "web/app", tag, image_config("amd64", tag), {"layer " + tag}));
}

// An image stored by digest only: untagged.
std::string push_untagged(const RegistryClient& c, const std::string& salt) {
  std::string config = image_config("amd64", salt);
  std::string layer = "layer " + salt;
  EXPECT_EQ(c.push_blob("web/app", config).status, 201);
  EXPECT_EQ(c.push_blob("web/app", layer).status, 201);
  std::string m = image_manifest(config, {layer});
  std::string digest = sha256_digest(m);
  auto r = c.put_manifest("web/app", digest, m, kOciManifestType);
  EXPECT_EQ(r.status, 201) << r.describe();
  return digest;
}

std::set<std::string> digests_in(const TestDaemon& d) {
  auto ls = d.cli("image ls web/app --json");
  EXPECT_EQ(ls.code, 0) << ls.all();
  std::set<std::string> out;
  Json list = Json::parse(ls.out);  // named: a range-for over a temporary's member dangles
  for (const auto& img : list["images"]) {
    out.insert(img["digest"].get<std::string>());
  }
  return out;
}

const std::string kRules = R"({"rules":[
  {"rulePriority":1,"description":"two releases","selection":{"tagStatus":"tagged",
   "tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":2},
   "action":{"type":"expire"}},
  {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan",
   "countNumber":1},"action":{"type":"expire"}}]})";

// On every deployment: the selection reads tags, push times and references from the store,
// which is PostgreSQL on the scale-out one.
class LifecycleOnEveryBackend : public ::testing::TestWithParam<BlobBackend> {};

TEST_P(LifecycleOnEveryBackend, PreviewIsWhatApplyExpiresAndPinsSurvive) {
  BlobHome home(GetParam());
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  TestDaemon d([&](config::Config& c) { home.apply(c); });
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  RegistryClient c(d.port(), d.admin().basic_header());
  std::string v1 = push_tagged(c, "v1");
  next_second();
  std::string v2 = push_tagged(c, "v2");
  next_second();
  std::string u1 = push_untagged(c, "u1");
  // A multi-platform index: its child is untagged, yet protected while the index stays.
  std::string child = push_untagged(c, "child");
  Json child_desc =
      descriptor(kOciManifestType, image_manifest(image_config("amd64", "child"), {"layer child"}));
  child_desc["platform"] = Json{{"architecture", "amd64"}, {"os", "linux"}};
  Json index{
      {"schemaVersion", 2}, {"mediaType", kOciIndexType}, {"manifests", Json::array({child_desc})}};
  ASSERT_EQ(c.put_manifest("web/app", "multi", index.dump(), kOciIndexType).status, 201);
  std::string idx = sha256_digest(index.dump());
  next_second();
  std::string v3 = push_tagged(c, "v3");
  std::string u2 = push_untagged(c, "u2");
  next_second();
  std::string v4 = push_tagged(c, "v4");
  // A service pins v1 through its revision (its deployment may fail: no matter here).
  auto svc = d.cli("service create keeper --image web/app:v1 --no-wait");
  ASSERT_EQ(svc.code, 0) << svc.all();

  std::string rules_file = d.data_dir() + "/rules.json";
  write_file(rules_file, kRules);
  auto put = d.cli("repo lifecycle put web/app --file " + rules_file);
  ASSERT_EQ(put.code, 0) << put.all();
  EXPECT_THAT(put.out, HasSubstr("set 2 lifecycle rule(s) on repository web/app"));
  auto got = d.cli("repo lifecycle get web/app --json");
  ASSERT_EQ(got.code, 0) << got.all();
  EXPECT_EQ(Json::parse(got.out), Json::parse(kRules));

  auto before = digests_in(d);
  ASSERT_EQ(before, (std::set<std::string>{v1, v2, v3, v4, u1, u2, child, idx}));
  auto pv = d.cli("repo lifecycle preview web/app --json");
  ASSERT_EQ(pv.code, 0) << pv.all();
  Json preview = Json::parse(pv.out);
  EXPECT_EQ(preview["repository"], "web/app");
  std::set<std::string> expire;
  std::map<std::string, Json> by_digest;
  for (const auto& img : preview["images"]) {
    by_digest[img["digest"].get<std::string>()] = img;
    if (img["action"] == "expire") {
      expire.insert(img["digest"].get<std::string>());
    }
  }
  EXPECT_EQ(expire, (std::set<std::string>{v2, u1})) << preview.dump(2);
  EXPECT_EQ(by_digest[v1]["action"], "keep");
  EXPECT_EQ(by_digest[v1]["rulePriority"], 1);
  EXPECT_THAT(by_digest[v1]["reason"].get<std::string>(),
              HasSubstr("protected: pinned by a service revision"));
  EXPECT_THAT(by_digest[child]["reason"].get<std::string>(), HasSubstr("referenced by kept index"));
  EXPECT_EQ(by_digest[v2]["tags"], Json::array({"v2"}));
  EXPECT_THAT(by_digest[v2]["reason"].get<std::string>(),
              HasSubstr("rule 1 keeps only the newest 2"));
  EXPECT_EQ(by_digest[u1]["rulePriority"], 2);
  // The table says the same.
  auto table = d.cli("repo lifecycle preview web/app");
  ASSERT_EQ(table.code, 0) << table.all();
  EXPECT_THAT(table.out, HasSubstr("DIGEST"));
  EXPECT_THAT(table.out, HasSubstr("REASON"));
  EXPECT_THAT(table.out, HasSubstr(v2));
  // Previewing changed nothing.
  EXPECT_EQ(digests_in(d), before);

  EXPECT_EQ(apply_now(d), 2);
  std::set<std::string> left;
  for (const auto& dg : before) {
    if (!expire.count(dg)) {
      left.insert(dg);
    }
  }
  EXPECT_EQ(digests_in(d), left);
  EXPECT_EQ(c.get("/v2/web/app/manifests/v2").status, 404);
  EXPECT_EQ(c.get("/v2/web/app/manifests/v1").status, 200);
  // Nothing more to do: a second pass expires nothing.
  EXPECT_EQ(apply_now(d), 0);
  // Each expiry is audited (written in batches: wait for the flush).
  std::string audit;
  for (int i = 0; i < 50 && audit.find("repository/web/app@" + v2) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    audit = d.cli("audit ls --principal system:lifecycle --json").all();
  }
  EXPECT_THAT(audit, HasSubstr("repository/web/app@" + v2));
  EXPECT_THAT(audit, HasSubstr("repository/web/app@" + u1));
}

INSTANTIATE_TEST_SUITE_P(Backends, LifecycleOnEveryBackend, all_registry_backends(),
                         BlobBackendName());

TEST(LifecycleIntegrationTest, BadRulesAreRefusedAndChangeNothing) {
  TestDaemon d;
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  auto none = d.cli("repo lifecycle get web/app");
  EXPECT_EQ(none.code, 3);  // NotFound
  EXPECT_THAT(none.err, HasSubstr("repository web/app has no lifecycle rules"));
  std::string file = d.data_dir() + "/rules.json";
  write_file(file, kRules);
  ASSERT_EQ(d.cli("repo lifecycle put web/app --file " + file).code, 0);

  write_file(file, R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged",
    "countType":"imageCountMoreThen","countNumber":1},"action":{"type":"expire"}}]})");
  auto bad = d.cli("repo lifecycle put web/app --file " + file);
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("rules[0].selection.countType: must be imageCountMoreThan or "
                                 "sinceImagePushed"));
  write_file(file, R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",
    "countType":"imageCountMoreThan","countNumber":1,"olderThan":3},"action":{"type":"expire"}}]})");
  bad = d.cli("repo lifecycle put web/app --file " + file);
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("rules[0].selection.olderThan: unknown field"));
  write_file(file, "{\"rules\": [");
  bad = d.cli("repo lifecycle put web/app --file " + file);
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("rules file " + file));
  // Malformed JSON straight to the API: 400, named.
  auto raw = run("curl -s -X PUT " + d.curl_auth() + " --data-binary '{\"rules\": [' " + d.url() +
                 "/api/v1/repositories/web/app/lifecycle -w '\\n%{http_code}'");
  EXPECT_THAT(raw.out, HasSubstr("lifecycle policy"));
  EXPECT_THAT(raw.out, HasSubstr("\n400"));

  auto got = d.cli("repo lifecycle get web/app --json");
  ASSERT_EQ(got.code, 0) << got.all();
  EXPECT_EQ(Json::parse(got.out), Json::parse(kRules));

  // Unknown repositories are named; rm removes; deleting the repository takes its rules along.
  auto ghost = d.cli("repo lifecycle preview web/ghost");
  EXPECT_NE(ghost.code, 0);
  EXPECT_THAT(ghost.err, HasSubstr("web/ghost"));
  auto rm = d.cli("repo lifecycle rm web/app");
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_NE(d.cli("repo lifecycle get web/app").code, 0);
  auto missing = d.cli("repo lifecycle put web/app --file " + d.data_dir() + "/none.json");
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("cannot read rules file"));
  write_file(file, kRules);
  ASSERT_EQ(d.cli("repo lifecycle put web/app --file " + file).code, 0);
  ASSERT_EQ(d.cli("repo rm web/app").code, 0);
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  EXPECT_THAT(d.cli("repo lifecycle get web/app").err, HasSubstr("has no lifecycle rules"));
}

TEST(LifecycleIntegrationTest, EachOperationHasItsOwnAction) {
  TestDaemon d;
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string file = d.data_dir() + "/rules.json";
  write_file(file, kRules);
  ASSERT_EQ(d.cli("repo lifecycle put web/app --file " + file).code, 0);
  ASSERT_EQ(d.cli("iam user create auditor").code, 0);
  write_file(d.data_dir() + "/p.json", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["registry:GetLifecyclePolicy","registry:PreviewLifecyclePolicy"],
    "Resource":"repository/web/*"}]})");
  ASSERT_EQ(d.cli("iam policy put look --user auditor --file " + d.data_dir() + "/p.json").code, 0);
  auto key = d.cli("iam key create auditor --json");
  ASSERT_EQ(key.code, 0) << key.all();
  auto unquote = [](std::string v) { return v.size() >= 2 ? v.substr(1, v.size() - 2) : v; };
  AdminCredentials auditor{};
  auditor.key_id = unquote(jq(key.out, ".access_key_id"));
  auditor.secret = unquote(jq(key.out, ".secret_access_key"));
  EXPECT_EQ(d.cli_as(auditor, "repo lifecycle get web/app").code, 0);
  auto pv = d.cli_as(auditor, "repo lifecycle preview web/app");
  EXPECT_EQ(pv.code, 0) << pv.all();
  auto put = d.cli_as(auditor, "repo lifecycle put web/app --file " + file);
  EXPECT_EQ(put.code, 5) << put.all();
  EXPECT_THAT(put.err, HasSubstr("may not registry:PutLifecyclePolicy on repository web/app"));
  auto rm = d.cli_as(auditor, "repo lifecycle rm web/app");
  EXPECT_EQ(rm.code, 5) << rm.all();
  EXPECT_THAT(rm.err, HasSubstr("registry:DeleteLifecyclePolicy"));
}

TEST(LifecycleIntegrationTest, MaintenanceTickAppliesTheRules) {
  TestDaemon d(
      [](config::Config& cfg) { cfg.registry.lifecycle_interval = std::chrono::seconds(1); });
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  RegistryClient c(d.port(), d.admin().basic_header());
  std::string v1 = push_tagged(c, "v1");
  next_second();
  std::string v2 = push_tagged(c, "v2");
  std::string file = d.data_dir() + "/rules.json";
  write_file(file, R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",
    "countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]})");
  ASSERT_EQ(d.cli("repo lifecycle put web/app --file " + file).code, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (digests_in(d).size() > 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(digests_in(d), std::set<std::string>{v2});
}

}  // namespace
}  // namespace berth::test
