// SPDX-License-Identifier: Apache-2.0
// `berth service create/update` against an in-process berthd, checked through the stored spec
// (`service show --json`). The image is never pushed and the service follows its tag
// (--auto-deploy), so no deployment starts and no runc instance is needed: only what the CLI
// sends is under test.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/harness.h"

namespace berth::test {
namespace {

// Creates service pt with every option away from its default.
void create_pt(const TestDaemon& d) {
  auto cr = d.cli(
      "service create pt --image web/app:v2 --auto-deploy --port 9090 --env A=0 --env B=0 "
      "--secret-env S=s --secret-env T=t --cpu 0.5 --memory 256M --min-instances 2 "
      "--max-instances 5 --concurrency 7 --scale-in-cooldown 90s --health-check http:/up "
      "--health-interval 3s --health-timeout 1s --healthy-threshold 2 --unhealthy-threshold 3 "
      "--deploy-timeout 70s --drain-timeout 20s --protocol h2c");
  ASSERT_EQ(cr.code, 0) << cr.all();
  ASSERT_TRUE(has(cr.out, "created pt; it deploys when web/app:v2 is pushed")) << cr.all();
}

std::string spec(const TestDaemon& d) {
  auto r = d.cli("service show pt --json");
  EXPECT_EQ(r.code, 0) << r.all();
  return jq(r.out, ".spec");
}

TEST(ServiceCliTest, CreateSendsWhatWasGiven) {
  TestDaemon d;
  create_pt(d);
  EXPECT_EQ(spec(d),
            R"({"auto_deploy":true,"auto_deploy_tags":"","concurrency":7,"cpus":0.5,)"
            R"("deploy_timeout":"70000ms","drain_timeout":"20000ms","env":{"A":"0","B":"0"},)"
            R"("health_check":{"healthy_threshold":2,"interval":"3000ms","path":"/up",)"
            R"("timeout":"1000ms","type":"http","unhealthy_threshold":3},)"
            R"("image":"web/app:v2","max_instances":5,"memory":268435456,"min_instances":2,)"
            R"("pids_limit":1024,"port":9090,"protocol":"h2c","read_only":false,"role":"",)"
            R"("scale_in_cooldown":"90000ms","seccomp":"default","secret_env":["S","T"]})");
}

TEST(ServiceCliTest, CreateWithoutPortTakesTheApiDefault) {
  TestDaemon d;
  auto cr = d.cli("service create dflt --image web/app:v1 --auto-deploy");
  ASSERT_EQ(cr.code, 0) << cr.all();
  EXPECT_EQ(jq(d.cli("service show dflt --json").out, ".spec.port"), "8080");
}

// Each update flag changes its own fields and nothing else (issue 16: any update without
// --port used to send port 8080).
TEST(ServiceCliTest, UpdateChangesOnlyTheGivenFields) {
  TestDaemon d;
  ASSERT_EQ(d.cli("iam role create puller").code, 0);
  create_pt(d);
  struct Case {
    std::string flags;
    std::vector<std::string> fields;  // the spec fields it may change
    std::string check;                // jq on the new spec, must print "true"
  };
  const std::vector<Case> cases = {
      {"--env A=1", {"env"}, R"(.env == {"A":"1","B":"0"})"},
      {"--unset-env B", {"env"}, R"(.env == {"A":"1"})"},
      {"--secret-env U=u", {"secret_env"}, R"(.secret_env == ["S","T","U"])"},
      {"--concurrency 9", {"concurrency"}, ".concurrency == 9"},
      {"--max-instances 6", {"max_instances"}, ".max_instances == 6"},
      {"--min-instances 3", {"min_instances"}, ".min_instances == 3"},
      {"--drain-timeout 25s", {"drain_timeout"}, R"(.drain_timeout == "25000ms")"},
      {"--deploy-timeout 80s", {"deploy_timeout"}, R"(.deploy_timeout == "80000ms")"},
      {"--scale-in-cooldown 2m", {"scale_in_cooldown"}, R"(.scale_in_cooldown == "120000ms")"},
      {"--cpu 1.5", {"cpus"}, ".cpus == 1.5"},
      {"--memory 128M", {"memory"}, ".memory == 134217728"},
      {"--health-check tcp", {"health_check"}, R"(.health_check.type == "tcp")"},
      {"--health-interval 4s", {"health_check"}, R"(.health_check.interval == "4000ms")"},
      {"--health-timeout 2s", {"health_check"}, R"(.health_check.timeout == "2000ms")"},
      {"--healthy-threshold 4", {"health_check"}, ".health_check.healthy_threshold == 4"},
      {"--unhealthy-threshold 6", {"health_check"}, ".health_check.unhealthy_threshold == 6"},
      {"--role puller", {"role"}, R"(.role == "puller")"},
      {"--image web/app:v3", {"image"}, R"(.image == "web/app:v3")"},
      {"--port 9091", {"port"}, ".port == 9091"},
      {"--auto-deploy-tags 'v*'", {"auto_deploy_tags"}, R"(.auto_deploy_tags == "v*")"},
      {"--no-auto-deploy",
       {"auto_deploy", "auto_deploy_tags"},
       R"(.auto_deploy == false and .auto_deploy_tags == "")"},
      {"--auto-deploy", {"auto_deploy"}, ".auto_deploy == true"},
      {"--protocol http1", {"protocol"}, R"(.protocol == "http1")"},
      {"--protocol h2c", {"protocol"}, R"(.protocol == "h2c")"},
  };
  for (const auto& c : cases) {
    std::string before = spec(d);
    auto up = d.cli("service update pt " + c.flags);
    ASSERT_EQ(up.code, 0) << c.flags << "\n" << up.all();
    std::string after = spec(d);
    EXPECT_EQ(jq(after, c.check), "true") << c.flags << "\n" << after;
    std::string drop = "del(";
    for (size_t i = 0; i < c.fields.size(); ++i) {
      drop += (i ? ", ." : ".") + c.fields[i];
    }
    drop += ")";
    EXPECT_EQ(jq(after, drop), jq(before, drop)) << c.flags << " changed other fields";
  }
}

TEST(ServiceCliTest, PortZeroIsTheApisError) {
  TestDaemon d;
  create_pt(d);
  auto up = d.cli("service update pt --port 0");
  EXPECT_EQ(up.code, 2) << up.all();
  EXPECT_EQ(up.err, "berth: port: expected a whole number from 1 to 65535\n") << up.all();
  EXPECT_EQ(jq(d.cli("service show pt --json").out, ".spec.port"), "9090");
  auto cr = d.cli("service create zero --image web/app:v1 --auto-deploy --port 0");
  EXPECT_EQ(cr.code, 2) << cr.all();
  EXPECT_EQ(cr.err, "berth: port: expected a whole number from 1 to 65535\n") << cr.all();
}

TEST(ServiceCliTest, UnsetEnvRemovesSecretVariablesToo) {
  TestDaemon d;
  create_pt(d);
  auto up = d.cli("service update pt --unset-env S --unset-env A");
  ASSERT_EQ(up.code, 0) << up.all();
  std::string s = spec(d);
  EXPECT_EQ(jq(s, ".secret_env"), R"(["T"])");
  EXPECT_EQ(jq(s, ".env"), R"({"B":"0"})");
  // A name that is neither is not an error (as for --unset-build-arg).
  EXPECT_EQ(d.cli("service update pt --unset-env NOPE").code, 0);
}

TEST(ServiceCliTest, EnvTakesOneKeyValuePerFlag) {
  TestDaemon d;
  auto help = d.cli("service update --help");
  ASSERT_EQ(help.code, 0) << help.all();
  for (const char* opt : {"--env KEY=VALUE ", "--secret-env KEY=VALUE ", "--unset-env NAME "}) {
    EXPECT_TRUE(has(help.out, opt)) << opt << "\n" << help.out;
  }
  EXPECT_FALSE(has(help.out, "TEXT ...")) << help.out;
  create_pt(d);
  auto two = d.cli("service update pt --env A=1 B=2");
  EXPECT_EQ(two.code, 2) << two.all();
  EXPECT_TRUE(has(two.err, "berth: unexpected argument 'B=2'")) << two.all();
  EXPECT_EQ(jq(spec(d), ".env"), R"({"A":"0","B":"0"})");
}

}  // namespace
}  // namespace berth::test
