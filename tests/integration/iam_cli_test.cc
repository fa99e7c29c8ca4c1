// SPDX-License-Identifier: Apache-2.0
// The `berth iam` and `berth repo policy` commands against an in-process berthd: users, access
// keys, roles, identity and repository policies, the simulator, and the admin bootstrap.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "integration/registry_client.h"
#include "support/harness.h"

namespace berth::test {
namespace {

// The line of text holding `what` ("" when none).
std::string line_with(const std::string& text, const std::string& what) {
  auto at = text.find(what);
  if (at == std::string::npos) {
    return "";
  }
  auto begin = text.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  auto end = text.find('\n', at);
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

const char* kPushWeb = R"({"Version":"2012-10-17","Statement":[
  {"Sid":"PushWeb","Effect":"Allow","Action":["registry:Pull","registry:Push"],
   "Resource":["repository/web/*"]}]})";

// ---- bootstrap ---------------------------------------------------------------------------

TEST(IamCliTest, BootstrapWritesAdminCredentials) {
  TestDaemon d;
  std::string path = d.data_dir() + "/admin.credentials";
  auto mode = run("stat -c %a " + path);
  ASSERT_EQ(mode.code, 0) << mode.all();
  EXPECT_EQ(mode.out, "600\n");
  std::string creds = read_file(path);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(creds, m,
                               std::regex("BERTH_ACCESS_KEY_ID=(BK[A-Za-z0-9]{18})\n"
                                          "BERTH_SECRET_ACCESS_KEY=([^\n]{40})\n?")))
      << creds;
  std::string key_id = m[1];

  auto ls = d.cli("iam user ls");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(ls.out.rfind("NAME", 0), 0u) << ls.out;
  EXPECT_TRUE(has(ls.out, "\nadmin ")) << ls.out;
  auto lsj = d.cli("iam user ls --json");
  ASSERT_EQ(lsj.code, 0) << lsj.all();
  EXPECT_EQ(jq(lsj.out, "[.users[].name]"), "[\"admin\"]");

  // The file's key is admin's one active key; admin holds the `admin` policy.
  auto keys = d.cli("iam key ls admin --json");
  ASSERT_EQ(keys.code, 0) << keys.all();
  EXPECT_EQ(jq(keys.out, "[.keys[] | {access_key_id, active}]"),
            "[{\"access_key_id\":\"" + key_id + "\",\"active\":true}]");
  auto pol = d.cli("iam policy ls --user admin --json");
  ASSERT_EQ(pol.code, 0) << pol.all();
  EXPECT_EQ(jq(pol.out, "[.policies[].name]"), "[\"admin\"]");
  auto sim = d.cli("iam simulate --principal user/admin --action iam:CreateUser --resource user/x");
  ASSERT_EQ(sim.code, 0) << sim.all();
  EXPECT_EQ(sim.out.rfind("Allow\n", 0), 0u) << sim.out;
}

TEST(IamCliTest, BootstrapHappensOnceAcrossRestarts) {
  TempDir t;
  std::string data = t / "data";
  BerthdProcess p(data);
  p.start();
  std::string creds = read_file(data + "/admin.credentials");
  auto berth = [&](const std::string& args) { return p.cli(args); };
  auto keys = berth("iam key ls admin --json");
  ASSERT_EQ(keys.code, 0) << keys.all();
  EXPECT_EQ(jq(keys.out, ".keys | length"), "1");
  EXPECT_EQ(p.terminate(), 0);
  p.start();
  EXPECT_EQ(read_file(data + "/admin.credentials"), creds);
  EXPECT_EQ(berth("iam key ls admin --json").out, keys.out);
  EXPECT_EQ(jq(berth("iam user ls --json").out, "[.users[].name]"), "[\"admin\"]");
  // The log names the key id and the file, never the secret.
  std::string secret = creds.substr(creds.find("BERTH_SECRET_ACCESS_KEY=") + 24, 40);
  EXPECT_EQ(p.terminate(), 0);
  std::string log = read_file(p.log_path());
  EXPECT_TRUE(has(log, data + "/admin.credentials")) << log;
  EXPECT_FALSE(has(log, secret)) << log;
}

// ---- users -------------------------------------------------------------------------------

TEST(IamCliTest, UserCreateLsRm) {
  TestDaemon d;
  auto cr = d.cli("iam user create ci");
  ASSERT_EQ(cr.code, 0) << cr.all();
  EXPECT_EQ(cr.out, "created user ci\n");
  auto dup = d.cli("iam user create ci");
  EXPECT_EQ(dup.code, 4) << dup.all();
  EXPECT_TRUE(has(dup.err, "user ci already exists")) << dup.all();
  EXPECT_EQ(dup.out, "");
  auto bad = d.cli("iam user create 'Not Valid'");
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_TRUE(has(bad.err, "berth: ")) << bad.all();

  auto js = d.cli("iam user create deploy-bot --json");
  ASSERT_EQ(js.code, 0) << js.all();
  EXPECT_EQ(jq(js.out, ".name"), "\"deploy-bot\"");
  EXPECT_EQ(jq(js.out, ".created_at | type"), "\"number\"");

  auto ls = d.cli("iam user ls");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(ls.out.rfind("NAME", 0), 0u) << ls.out;
  EXPECT_TRUE(has(ls.out, "CREATED")) << ls.out;
  for (const char* u : {"\nadmin ", "\nci ", "\ndeploy-bot "}) {
    EXPECT_TRUE(has(ls.out, u)) << u << "\n" << ls.out;
  }
  auto lsj = d.cli("iam user ls --json");
  ASSERT_EQ(lsj.code, 0) << lsj.all();
  EXPECT_EQ(jq(lsj.out, "[.users[].name] | sort"), "[\"admin\",\"ci\",\"deploy-bot\"]");

  auto rm = d.cli("iam user rm ci");
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_EQ(rm.out, "deleted user ci\n");
  EXPECT_EQ(jq(d.cli("iam user ls --json").out, "[.users[].name] | sort"),
            "[\"admin\",\"deploy-bot\"]");
  auto again = d.cli("iam user rm ci");
  EXPECT_EQ(again.code, 3) << again.all();
  EXPECT_TRUE(has(again.err, "user ci does not exist")) << again.all();
  // A re-created user starts without keys.
  ASSERT_EQ(d.cli("iam user create ci").code, 0);
  EXPECT_EQ(jq(d.cli("iam key ls ci --json").out, ".keys | length"), "0");
}

// ---- access keys -------------------------------------------------------------------------

TEST(IamCliTest, KeyCreateLsDeactivateRm) {
  TestDaemon d;
  ASSERT_EQ(d.cli("iam user create ci").code, 0);
  auto cr = d.cli("iam key create ci --json");
  ASSERT_EQ(cr.code, 0) << cr.all();
  std::string id = jq(cr.out, ".access_key_id");
  ASSERT_GE(id.size(), 4u) << cr.out;
  id = id.substr(1, id.size() - 2);  // unquote
  EXPECT_EQ(id.rfind("BK", 0), 0u) << id;
  EXPECT_EQ(id.size(), 20u) << id;
  EXPECT_EQ(jq(cr.out, ".secret_access_key | length"), "40") << cr.out;
  EXPECT_EQ(jq(cr.out, ".user"), "\"ci\"");
  EXPECT_EQ(jq(cr.out, ".active"), "true");

  // Human form: the id, the secret and the warning.
  auto human = d.cli("iam key create ci");
  ASSERT_EQ(human.code, 0) << human.all();
  EXPECT_TRUE(has(human.out, "BK")) << human.out;
  EXPECT_TRUE(has(human.out, "will not be shown again")) << human.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(human.out, m, std::regex("Secret access key:\\s+(\\S{40})\n")))
      << human.out;

  auto ls = d.cli("iam key ls ci");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(ls.out.rfind("ACCESS KEY ID", 0), 0u) << ls.out;
  EXPECT_TRUE(has(line_with(ls.out, id), " active ")) << ls.out;
  EXPECT_FALSE(has(ls.out, m[1].str())) << "secrets are never listed\n" << ls.out;
  auto lsj = d.cli("iam key ls ci --json");
  ASSERT_EQ(lsj.code, 0) << lsj.all();
  EXPECT_EQ(jq(lsj.out, ".keys | length"), "2");
  EXPECT_EQ(jq(lsj.out, "[.keys[] | has(\"secret_access_key\")] | any"), "false") << lsj.out;

  auto de = d.cli("iam key deactivate " + id);
  ASSERT_EQ(de.code, 0) << de.all();
  EXPECT_TRUE(has(de.out, id)) << de.out;
  auto ls2 = d.cli("iam key ls ci");
  EXPECT_TRUE(has(line_with(ls2.out, id), " inactive ")) << ls2.out;
  EXPECT_EQ(jq(d.cli("iam key ls ci --json").out,
               ".keys[] | select(.access_key_id == \"" + id + "\") | .active"),
            "false");
  auto dej = d.cli("iam key deactivate " + id + " --json");
  ASSERT_EQ(dej.code, 0) << dej.all();
  EXPECT_EQ(jq(dej.out, ".active"), "false");

  auto rm = d.cli("iam key rm " + id);
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_TRUE(has(rm.out, id)) << rm.out;
  auto ls3 = d.cli("iam key ls ci --json");
  EXPECT_EQ(jq(ls3.out, ".keys | length"), "1");
  EXPECT_EQ(jq(ls3.out, "[.keys[].access_key_id] | index(\"" + id + "\")"), "null");
  auto again = d.cli("iam key rm " + id);
  EXPECT_EQ(again.code, 3) << again.all();
  EXPECT_TRUE(has(again.err, id)) << again.all();

  auto nobody = d.cli("iam key create ghost");
  EXPECT_EQ(nobody.code, 3) << nobody.all();
  EXPECT_TRUE(has(nobody.err, "user ghost does not exist")) << nobody.all();
  EXPECT_EQ(d.cli("iam key ls ghost").code, 3);
}

// ---- roles -------------------------------------------------------------------------------

TEST(IamCliTest, RoleCreateLsRm) {
  TestDaemon d;
  auto cr = d.cli("iam role create builder");
  ASSERT_EQ(cr.code, 0) << cr.all();
  EXPECT_EQ(cr.out, "created role builder\n");
  EXPECT_EQ(d.cli("iam role create builder").code, 4);
  ASSERT_EQ(d.cli("iam role create deployer --json").code, 0);
  auto ls = d.cli("iam role ls");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(ls.out.rfind("NAME", 0), 0u) << ls.out;
  EXPECT_TRUE(has(ls.out, "\nbuilder ")) << ls.out;
  EXPECT_TRUE(has(ls.out, "\ndeployer ")) << ls.out;
  auto lsj = d.cli("iam role ls --json");
  EXPECT_EQ(jq(lsj.out, "[.roles[].name] | sort"), "[\"builder\",\"deployer\"]");
  // Users and roles are separate namespaces.
  EXPECT_FALSE(has(d.cli("iam user ls").out, "builder"));
  auto rm = d.cli("iam role rm builder");
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_EQ(rm.out, "deleted role builder\n");
  EXPECT_EQ(jq(d.cli("iam role ls --json").out, "[.roles[].name]"), "[\"deployer\"]");
  EXPECT_EQ(d.cli("iam role rm builder").code, 3);
}

// ---- identity policies -------------------------------------------------------------------

TEST(IamCliTest, PolicyPutLs) {
  TestDaemon d;
  TempDir t;
  ASSERT_EQ(d.cli("iam user create ci").code, 0);
  ASSERT_EQ(d.cli("iam role create builder").code, 0);
  write_file(t / "push.json", kPushWeb);

  auto put = d.cli("iam policy put --user ci push-web --file " + (t / "push.json"));
  ASSERT_EQ(put.code, 0) << put.all();
  EXPECT_TRUE(has(put.out, "push-web")) << put.out;
  auto putj =
      d.cli("iam policy put --role builder pull-web --file " + (t / "push.json") + " --json");
  ASSERT_EQ(putj.code, 0) << putj.all();
  EXPECT_EQ(jq(putj.out, "[.kind, .principal, .name]"), "[\"role\",\"builder\",\"pull-web\"]");
  EXPECT_EQ(jq(putj.out, ".updated_at | type"), "\"number\"");

  auto ls = d.cli("iam policy ls --user ci");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(ls.out.rfind("PRINCIPAL", 0), 0u) << ls.out;
  EXPECT_TRUE(has(line_with(ls.out, "push-web"), "user/ci")) << ls.out;
  EXPECT_FALSE(has(ls.out, "pull-web")) << ls.out;
  EXPECT_FALSE(has(ls.out, "admin")) << ls.out;
  auto lsj = d.cli("iam policy ls --user ci --json");
  ASSERT_EQ(lsj.code, 0) << lsj.all();
  EXPECT_EQ(jq(lsj.out, "[.policies[] | [.kind, .principal, .name]]"),
            "[[\"user\",\"ci\",\"push-web\"]]");
  EXPECT_EQ(jq(lsj.out, ".policies[0].document.Statement[0].Sid"), "\"PushWeb\"");
  EXPECT_EQ(jq(d.cli("iam policy ls --role builder --json").out, "[.policies[].name]"),
            "[\"pull-web\"]");
  auto all = d.cli("iam policy ls --json");
  EXPECT_EQ(jq(all.out, "[.policies[].name] | sort"), "[\"admin\",\"pull-web\",\"push-web\"]");

  // An invalid document is refused, names the field, and changes nothing.
  write_file(t / "bad.json", R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Maybe","Action":"registry:Pull","Resource":"repository/*"}]})");
  auto bad = d.cli("iam policy put --user ci push-web --file " + (t / "bad.json"));
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_TRUE(has(bad.err, "Statement[0].Effect")) << bad.all();
  EXPECT_EQ(bad.out, "");
  auto bad2 = d.cli("iam policy put --user ci other --file " + (t / "bad.json"));
  EXPECT_EQ(bad2.code, 2) << bad2.all();
  EXPECT_EQ(d.cli("iam policy ls --user ci --json").out, lsj.out);

  // Client-side errors: exit 2 with a clear message, nothing sent.
  auto missing = d.cli("iam policy put --user ci p --file " + (t / "nope.json"));
  EXPECT_EQ(missing.code, 2) << missing.all();
  EXPECT_TRUE(has(missing.err, "nope.json")) << missing.all();
  write_file(t / "notjson.json", "{not json");
  auto notjson = d.cli("iam policy put --user ci p --file " + (t / "notjson.json"));
  EXPECT_EQ(notjson.code, 2) << notjson.all();
  EXPECT_TRUE(has(notjson.err, "not valid JSON")) << notjson.all();
  auto neither = d.cli("iam policy put p --file " + (t / "push.json"));
  EXPECT_EQ(neither.code, 2) << neither.all();
  EXPECT_TRUE(has(neither.err, "--user or --role")) << neither.all();
  auto both = d.cli("iam policy put --user ci --role builder p --file " + (t / "push.json"));
  EXPECT_NE(both.code, 0) << both.all();
  EXPECT_FALSE(both.all().empty());
  EXPECT_EQ(d.cli("iam policy ls --user ci --json").out, lsj.out);

  // A policy for a principal that does not exist.
  auto ghost = d.cli("iam policy put --user ghost p --file " + (t / "push.json"));
  EXPECT_EQ(ghost.code, 3) << ghost.all();

  // Deleting the user deletes its policies.
  ASSERT_EQ(d.cli("iam user rm ci").code, 0);
  EXPECT_EQ(jq(d.cli("iam policy ls --json").out, "[.policies[].name] | sort"),
            "[\"admin\",\"pull-web\"]");
}

// ---- repository policies -----------------------------------------------------------------

TEST(IamCliTest, RepoPolicyPut) {
  TestDaemon d;
  TempDir t;
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  write_file(t / "public.json", R"({"Version":"2012-10-17","Statement":[
    {"Sid":"Public","Effect":"Allow","Principal":"*","Action":"registry:Pull",
     "Resource":"repository/web/app"}]})");
  auto put = d.cli("repo policy put web/app --file " + (t / "public.json"));
  ASSERT_EQ(put.code, 0) << put.all();
  EXPECT_TRUE(has(put.out, "web/app")) << put.out;
  auto putj = d.cli("repo policy put web/app --file " + (t / "public.json") + " --json");
  ASSERT_EQ(putj.code, 0) << putj.all();
  EXPECT_EQ(jq(putj.out, ".repository"), "\"web/app\"");
  EXPECT_EQ(jq(putj.out, ".document.Statement[0].Sid"), "\"Public\"");
  auto got = c.get("/api/v1/repositories/web/app/policy");
  EXPECT_EQ(got.status, 200) << got.describe();
  EXPECT_EQ(jq(got.body, ".document.Statement[0].Principal"), "\"*\"");

  // The resource policy now decides for anyone.
  auto sim = d.cli(
      "iam simulate --principal anonymous --action registry:Pull --resource repository/web/app");
  ASSERT_EQ(sim.code, 0) << sim.all();
  EXPECT_EQ(sim.out.rfind("Allow\n", 0), 0u) << sim.out;
  EXPECT_TRUE(has(sim.out, "Public")) << sim.out;

  auto missing = d.cli("repo policy put web/missing --file " + (t / "public.json"));
  EXPECT_EQ(missing.code, 3) << missing.all();
  EXPECT_TRUE(has(missing.err, "web/missing")) << missing.all();

  // A resource policy needs Principal in every statement.
  write_file(t / "noprincipal.json", kPushWeb);
  auto bad = d.cli("repo policy put web/app --file " + (t / "noprincipal.json"));
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_TRUE(has(bad.err, "Statement[0].Principal")) << bad.all();
  EXPECT_EQ(jq(c.get("/api/v1/repositories/web/app/policy").body, ".document.Statement[0].Sid"),
            "\"Public\"");
  auto nofile = d.cli("repo policy put web/app --file " + (t / "nope.json"));
  EXPECT_EQ(nofile.code, 2) << nofile.all();
}

// ---- simulate ----------------------------------------------------------------------------

TEST(IamCliTest, SimulateAllowDenyDefault) {
  TestDaemon d;
  TempDir t;
  ASSERT_EQ(d.cli("iam user create ci").code, 0);
  const std::string push = "iam simulate --principal user/ci --action registry:Push --resource ";

  // No policy: default deny, exit 0.
  auto none = d.cli(push + "repository/web/app");
  ASSERT_EQ(none.code, 0) << none.all();
  EXPECT_EQ(none.out.rfind("Deny\n", 0), 0u) << none.out;
  EXPECT_TRUE(has(none.out, "no statement allows it")) << none.out;
  auto nonej = d.cli(push + "repository/web/app --json");
  ASSERT_EQ(nonej.code, 0) << nonej.all();
  EXPECT_EQ(jq(nonej.out, ".decision"), "\"Deny\"");
  EXPECT_EQ(jq(nonej.out, ".reason"), "\"no statement allows it\"");

  write_file(t / "push.json", kPushWeb);
  ASSERT_EQ(d.cli("iam policy put --user ci push-web --file " + (t / "push.json")).code, 0);
  auto allow = d.cli(push + "repository/web/app");
  ASSERT_EQ(allow.code, 0) << allow.all();
  EXPECT_EQ(allow.out.rfind("Allow\n", 0), 0u) << allow.out;
  EXPECT_TRUE(has(allow.out, "PushWeb")) << allow.out;
  EXPECT_TRUE(has(allow.out, "push-web")) << allow.out;
  auto allowj = d.cli(push + "repository/web/app --json");
  ASSERT_EQ(allowj.code, 0) << allowj.all();
  EXPECT_EQ(jq(allowj.out, "[.decision, .policy, .sid]"), "[\"Allow\",\"push-web\",\"PushWeb\"]");
  // Actions ignore case; resources do not; other repositories stay denied.
  EXPECT_EQ(
      d.cli("iam simulate --principal user/ci --action REGISTRY:pull --resource repository/web/x")
          .out.rfind("Allow\n", 0),
      0u);
  EXPECT_EQ(d.cli(push + "repository/WEB/app").out.rfind("Deny\n", 0), 0u);
  EXPECT_EQ(d.cli(push + "repository/api/app").out.rfind("Deny\n", 0), 0u);
  EXPECT_EQ(d.cli("iam simulate --principal user/ci --action registry:Delete --resource "
                  "repository/web/app")
                .out.rfind("Deny\n", 0),
            0u);
  // The policy belongs to ci only.
  ASSERT_EQ(d.cli("iam user create other").code, 0);
  EXPECT_EQ(d.cli("iam simulate --principal user/other --action registry:Push --resource "
                  "repository/web/app")
                .out.rfind("Deny\n", 0),
            0u);

  // An explicit Deny wins over the Allow.
  write_file(t / "deny.json", R"({"Version":"2012-10-17","Statement":[
    {"Sid":"NoProd","Effect":"Deny","Action":"registry:*","Resource":"repository/web/prod"}]})");
  ASSERT_EQ(d.cli("iam policy put --user ci no-prod --file " + (t / "deny.json")).code, 0);
  auto deny = d.cli(push + "repository/web/prod");
  ASSERT_EQ(deny.code, 0) << deny.all();
  EXPECT_EQ(deny.out.rfind("Deny\n", 0), 0u) << deny.out;
  EXPECT_TRUE(has(deny.out, "NoProd")) << deny.out;
  auto denyj = d.cli(push + "repository/web/prod --json");
  EXPECT_EQ(jq(denyj.out, "[.decision, .policy, .sid]"), "[\"Deny\",\"no-prod\",\"NoProd\"]");
  EXPECT_EQ(d.cli(push + "repository/web/app").out.rfind("Allow\n", 0), 0u);

  // Missing flags are a usage error, not a decision.
  auto usage = d.cli("iam simulate --principal user/ci --action registry:Push");
  EXPECT_NE(usage.code, 0);
  EXPECT_EQ(usage.out.find("Allow"), std::string::npos);
}

}  // namespace
}  // namespace berth::test
