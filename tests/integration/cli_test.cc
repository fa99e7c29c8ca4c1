// SPDX-License-Identifier: Apache-2.0
// The berth CLI's own contract (docs/cli.md): argument errors, --json on every command and the
// one JSON shape shared with the API, and the help and list texts a new user reads first.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "integration/registry_client.h"
#include "support/harness.h"

namespace berth::test {
namespace {

// The berth CLI with no server behind it: argument errors come before any request.
CmdResult offline(const std::string& args) {
  return berth_as("http://127.0.0.1:1", AdminCredentials{}, args);
}

// The subcommands listed by `berth PATH --help` (empty for a leaf command).
std::vector<std::string> subcommands(const std::string& help) {
  std::vector<std::string> out;
  auto at = help.find("\nSubcommands:\n");
  if (at == std::string::npos) {
    return out;
  }
  size_t pos = at + 14;
  while (pos < help.size() && help[pos] == ' ') {
    auto eol = help.find('\n', pos);
    std::string line = help.substr(pos, eol - pos);
    auto b = line.find_first_not_of(' ');
    out.push_back(line.substr(b, line.find(' ', b) - b));
    if (eol == std::string::npos) {
      break;
    }
    pos = eol + 1;
  }
  return out;
}

// ---- argument errors (issue 16) ----------------------------------------------------------

TEST(CliContractTest, ArgumentErrorsExit2WithTheBerthPrefix) {
  struct Case {
    std::string args;
    std::string err;  // the whole of stderr
  };
  const std::vector<Case> cases = {
      {"service update web --bogus-flag",
       "berth: unknown option '--bogus-flag' for berth service update (see berth service update "
       "--help)\n"},
      {"repo create",
       "berth: berth repo create: NAME is required (see berth repo create --help)\n"},
      {"nosuchcmd", "berth: unknown command 'nosuchcmd' (see berth --help)\n"},
      {"repos ls", "berth: unknown command 'repos'; did you mean 'repo'? (see berth --help)\n"},
      {"service updte web",
       "berth: unknown command 'service updte'; did you mean 'service update'? (see berth "
       "service --help)\n"},
      {"service update web --port abc",
       "berth: --port expects a whole number, got 'abc' (see berth service update --help)\n"},
      {"service update web --port",
       "berth: --port needs a value (see berth service update --help)\n"},
      {"repo",
       "berth: berth repo needs a command: create, ls, rm, policy, lifecycle (see berth repo "
       "--help)\n"},
      {"", "berth: a command is required (see berth --help)\n"},
      {"--server", "berth: --server needs a value (see berth --help)\n"},
      {"iam policy put --user a --role b p --file f",
       "berth: --user cannot be given with --role (see berth iam policy put --help)\n"},
  };
  for (const auto& c : cases) {
    auto r = offline(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.all();
    EXPECT_EQ(r.err, c.err) << c.args;
    EXPECT_EQ(r.out, "") << c.args;
  }
}

TEST(CliContractTest, HelpStillExitsZero) {
  for (const char* args : {"--help", "service --help", "service update --help", "-h"}) {
    auto r = offline(args);
    EXPECT_EQ(r.code, 0) << args << "\n" << r.all();
    EXPECT_TRUE(has(r.out, "Usage:")) << args << "\n" << r.all();
  }
}

// Every command takes --json: walks the whole command tree through --help.
TEST(CliContractTest, EveryCommandTakesJson) {
  std::vector<std::string> todo = {""};
  int leaves = 0;
  while (!todo.empty()) {
    std::string path = todo.back();
    todo.pop_back();
    auto r = offline(path + " --help");
    ASSERT_EQ(r.code, 0) << path << "\n" << r.all();
    auto subs = subcommands(r.out);
    if (subs.empty()) {
      ++leaves;
      EXPECT_TRUE(has(r.out, "--json")) << "berth " << path << " takes no --json\n" << r.out;
    }
    for (const auto& s : subs) {
      todo.push_back(path.empty() ? s : path + " " + s);
    }
  }
  EXPECT_GT(leaves, 40);
}

TEST(CliContractTest, PauseAndResumeTakeJson) {
  TestDaemon d;
  ASSERT_EQ(d.cli("service create web --image web/app:v1 --auto-deploy").code, 0);
  auto p = d.cli("service pause web --json");
  ASSERT_EQ(p.code, 0) << p.all();
  EXPECT_EQ(jq(p.out, "."), R"({"paused":true,"service":"web"})");
  auto r = d.cli("service resume web --json");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(jq(r.out, "."), R"({"paused":false,"service":"web"})");
  auto rm = d.cli("service rm web --json");
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_EQ(jq(rm.out, ".deleted"), "\"web\"");
}

// ---- one JSON shape for the CLI and the API ----------------------------------------------

TEST(CliContractTest, ListJsonIsTheApisObject) {
  TestDaemon d;
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  push_image(c, "web/app", "v1", image_config(), {"layer"});
  ASSERT_EQ(d.cli("iam user create ci").code, 0);
  ASSERT_EQ(d.cli("iam key create ci").code, 0);
  ASSERT_EQ(d.cli("iam role create deployer").code, 0);
  ASSERT_EQ(d.cli("service create web --image web/app:v9 --auto-deploy").code, 0);
  ASSERT_EQ(d.cli("build project create web --repo web/app").code, 0);
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"repo ls", "/api/v1/repositories"},
      {"image ls web/app", "/api/v1/repositories/web%2Fapp/images"},
      {"iam user ls", "/api/v1/iam/users"},
      {"iam role ls", "/api/v1/iam/roles"},
      {"iam key ls ci", "/api/v1/iam/users/ci/keys"},
      {"iam policy ls", "/api/v1/iam/policies"},
      {"audit ls --limit 1000", "/api/v1/audit?limit=1000"},
      {"service ls", "/api/v1/services"},
      {"service deployments web", "/api/v1/services/web/deployments"},
      {"build project ls", "/api/v1/build/projects"},
      {"build ls", "/api/v1/builds"},
  };
  for (const auto& [cmd, path] : pairs) {
    auto cli = d.cli(cmd + " --json");
    ASSERT_EQ(cli.code, 0) << cmd << "\n" << cli.all();
    auto api = run("curl -sf" + d.curl_auth() + "'" + d.url() + path + "'");
    ASSERT_EQ(api.code, 0) << path << "\n" << api.all();
    EXPECT_EQ(jq(cli.out, "type"), "\"object\"") << cmd;
    EXPECT_EQ(jq(cli.out, "."), jq(api.out, ".")) << cmd << " vs GET " << path;
  }
  // A filtered list keeps the shape.
  auto mine = d.cli("iam policy ls --user admin --json");
  EXPECT_EQ(jq(mine.out, "[.policies[].name]"), R"(["admin"])");
}

// ---- texts a new user reads --------------------------------------------------------------

TEST(CliContractTest, GcHelpNamesTheGracePeriodSetting) {
  auto r = offline("gc --help");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "older than the grace period (registry.gc_grace)")) << r.out;
  EXPECT_FALSE(has(r.out, "1h")) << r.out;
}

TEST(CliContractTest, RepoListsShowTagMutabilityAndItsExceptions) {
  TestDaemon d;
  auto cr =
      d.cli("repo create web/app --immutable-tags --mutable-tags latest --mutable-tags 'dev-*'");
  ASSERT_EQ(cr.code, 0) << cr.all();
  EXPECT_EQ(cr.out, "created repository web/app (immutable tags except latest, dev-*)\n");
  ASSERT_EQ(d.cli("repo create web/frozen --immutable-tags").code, 0);
  ASSERT_EQ(d.cli("repo create web/free").code, 0);
  auto ls = d.cli("repo ls");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(ls.out.rfind("NAME        TAG MUTABILITY", 0), 0u) << ls.out;
  EXPECT_FALSE(has(ls.out, " TAGS ")) << ls.out;
  EXPECT_TRUE(has(ls.out, "\nweb/app     immutable except latest, dev-*  ")) << ls.out;
  EXPECT_TRUE(has(ls.out, "\nweb/free    mutable  ")) << ls.out;
  EXPECT_TRUE(has(ls.out, "\nweb/frozen  immutable  ")) << ls.out;
}

TEST(CliContractTest, AuditLsSaysWhenMoreEventsExist) {
  TestDaemon d;
  for (const char* u : {"a", "b", "c"}) {
    ASSERT_EQ(d.cli(std::string("iam user create ") + u).code, 0);
  }
  auto two = d.cli("audit ls --limit 2");
  ASSERT_EQ(two.code, 0) << two.all();
  EXPECT_EQ(two.err,
            "showing the newest 2 events; more exist: raise --limit (up to 100000) or narrow "
            "with --since or --principal\n");
  EXPECT_EQ(std::count(two.out.begin(), two.out.end(), '\n'), 3) << two.out;  // header + 2
  auto twoj = d.cli("audit ls --limit 2 --json");
  ASSERT_EQ(twoj.code, 0) << twoj.all();
  EXPECT_EQ(jq(twoj.out, ".events | length"), "2");
  EXPECT_TRUE(has(twoj.err, "more exist")) << twoj.all();
  auto all = d.cli("audit ls");
  ASSERT_EQ(all.code, 0) << all.all();
  EXPECT_EQ(all.err, "");
  auto help = offline("audit ls --help");
  EXPECT_TRUE(has(help.out, "=100")) << help.out;
}

}  // namespace
}  // namespace berth::test
