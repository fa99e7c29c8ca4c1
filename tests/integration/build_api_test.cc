// SPDX-License-Identifier: Apache-2.0
// The build API against an in-process berthd with real clients: the `berth build` CLI, curl
// for the REST and webhook edges, and the git CLI for berth's own remote (/git/NAME.git).
// Builds themselves (Dockerfile to served page) are covered by tests/e2e/build_test.cc; here
// they only need to be queued, listed, followed and stopped.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/json.h"
#include "support/harness.h"

namespace berth::test {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

// "text" -> text (jq -c prints strings quoted).
// The status code of `curl -i` output (the last status line, after any 100 Continue).
int status_of(const std::string& out) {
  int code = 0;
  size_t pos = 0;
  while ((pos = out.find("HTTP/1.1 ", pos)) != std::string::npos) {
    code = std::atoi(out.c_str() + pos + 9);
    pos += 9;
  }
  return code;
}

// The body of `curl -i` output.
std::string body_of(const std::string& out) {
  auto at = out.rfind("\r\n\r\n");
  return at == std::string::npos ? out : out.substr(at + 4);
}

// Percent-encodes everything but unreserved characters (for credentials in a URL).
std::string pct(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

const char* kGitPullOnly = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["build:GitPull","build:GetProject","build:ListBuilds"],
   "Resource":"project/*"}]})";

class BuildApi : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* t : {"curl", "git", "jq", "openssl"}) {
      if (!have(t)) {
        GTEST_SKIP() << t << " is not installed";
      }
    }
    // No runtime: the API, triggers and queue are under test, not the builder (builds that
    // get to run fail at once, saying builds are off).
    d_ = std::make_unique<TestDaemon>([](config::Config& c) { c.runtime.enabled = false; });
  }

  CmdResult cli(const std::string& args) { return d_->cli(args); }
  CmdResult curl(const std::string& args) {
    return run("curl -s -i -m 10 " + d_->curl_auth() + args);
  }

  std::string builds(const std::string& filter, const std::string& project = "web") {
    auto r = cli("build ls --project " + project + " --json");
    EXPECT_EQ(r.code, 0) << r.all();
    return jq(r.out, ".builds | " + filter);
  }

  // Creates project NAME (branch main, repository web/app); returns its webhook secret.
  std::string create_project(const std::string& name, const std::string& extra = "") {
    auto r = cli("build project create " + name + " --branch main --repo web/app --json " + extra);
    EXPECT_EQ(r.code, 0) << r.all();
    return unquote(jq(r.out, ".webhook_secret"));
  }

  // POSTs a GitHub event for commit on ref, signed with secret; returns curl -i's output.
  CmdResult webhook(const std::string& project, const std::string& secret, const std::string& ref,
                    const std::string& commit, const std::string& event = "push") {
    std::string payload =
        "{\"ref\":\"" + ref + "\",\"before\":\"" + std::string(40, '0') + "\",\"after\":\"" +
        commit +
        "\",\"repository\":{\"full_name\":\"me/app\",\"clone_url\":"
        "\"https://example.com/me/app.git\"},\"head_commit\":{\"message\":\"x\"}}";
    if (event == "ping") {
      payload = R"({"zen":"Keep it logically awesome.","hook_id":1})";
    }
    write_file(work_ / "payload.json", payload);
    auto sig = run("openssl dgst -sha256 -hmac '" + secret + "' -r " + (work_ / "payload.json") +
                   " | cut -d' ' -f1");
    EXPECT_EQ(sig.code, 0) << sig.all();
    return run("curl -s -i -m 5 -X POST -H 'Content-Type: application/json' -H 'X-GitHub-Event: " +
               event + "' -H 'X-Hub-Signature-256: sha256=" + trim(sig.out) + "' --data-binary @" +
               (work_ / "payload.json") + " " + d_->url() + "/hooks/github/" + project);
  }

  // A git command with prompts off and no user or system config.
  CmdResult git(const std::string& args) {
    return run("GIT_TERMINAL_PROMPT=0 GIT_CONFIG_NOSYSTEM=1 HOME=" + work_.path() +
               " git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main " +
               args + " 2>&1");
  }
  std::string remote(const AdminCredentials& who, const std::string& project) {
    std::string u = "http://";
    if (!who.key_id.empty()) {
      u += who.key_id + ":" + pct(who.secret) + "@";
    }
    return u + d_->host() + "/git/" + project + ".git";
  }

  // A user with a key and the given policy document.
  AdminCredentials make_user(const std::string& name, const std::string& policy) {
    EXPECT_EQ(cli("iam user create " + name).code, 0);
    write_file(work_ / (name + ".json"), policy);
    auto p = cli("iam policy put --user " + name + " p --file " + (work_ / (name + ".json")));
    EXPECT_EQ(p.code, 0) << p.all();
    auto k = cli("iam key create " + name + " --json");
    EXPECT_EQ(k.code, 0) << k.all();
    AdminCredentials c;
    c.key_id = unquote(jq(k.out, ".access_key_id"));
    c.secret = unquote(jq(k.out, ".secret_access_key"));
    return c;
  }

  TempDir work_;
  std::unique_ptr<TestDaemon> d_;
};

// ---- projects --------------------------------------------------------------------------------

TEST_F(BuildApi, ProjectCreatePrintsWebhookAndGitRemote) {
  auto r =
      cli("build project create web --branch main --repo web/app --build-arg A=1 "
          "--secret-build-arg TOKEN=s3cr3t-value");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "created build project web\n")) << r.out;
  EXPECT_TRUE(has(r.out, "webhook URL:    " + d_->url() + "/hooks/github/web\n")) << r.out;
  EXPECT_TRUE(has(r.out, "git remote:     " + d_->url() + "/git/web.git\n")) << r.out;
  auto at = r.out.find("webhook secret: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::string secret = r.out.substr(at + 16, r.out.find('\n', at) - at - 16);
  EXPECT_GE(secret.size(), 20u) << r.out;

  // The secret and the secret build arg never show again.
  auto show = cli("build project show web --json");
  ASSERT_EQ(show.code, 0) << show.all();
  EXPECT_FALSE(has(show.out, secret)) << show.out;
  EXPECT_FALSE(has(show.out, "s3cr3t-value")) << show.out;
  EXPECT_EQ(jq(show.out, ".secret_build_args"), "[\"TOKEN\"]");
  EXPECT_EQ(jq(show.out, ".build_args"), "{\"A\":\"1\"}");
  EXPECT_EQ(jq(show.out, ".webhook_url"), "\"" + d_->url() + "/hooks/github/web\"");
  EXPECT_EQ(jq(show.out, ".git_remote"), "\"" + d_->url() + "/git/web.git\"");
  EXPECT_EQ(jq(show.out, "has(\"webhook_secret\")"), "false");
  auto text = cli("build project show web");
  ASSERT_EQ(text.code, 0) << text.all();
  EXPECT_TRUE(has(text.out, "web/app:latest")) << text.out;
  EXPECT_FALSE(has(text.out, "s3cr3t-value")) << text.out;
}

TEST_F(BuildApi, BadFieldsAreRefusedNamingTheFieldAndNothingIsStored) {
  struct Case {
    std::string body, field;
  };
  for (const Case& c : {
           Case{R"({"name":"web","repository":"Web App"})", "repository"},
           Case{R"({"name":"Bad_Name","repository":"web/app"})", "name"},
           Case{R"({"name":"web"})", "repository"},
           Case{R"({"name":"web","repository":"web/app","git":"file:///tmp/x"})", "git"},
           Case{R"({"name":"web","repository":"web/app","colour":"red"})", "colour"},
           Case{R"({"name":"web","repository":"web/app","build_args":{"A":1}})", "build_args"},
       }) {
    auto r = curl("-X POST -H 'Content-Type: application/json' --data '" + c.body + "' " +
                  d_->url() + "/api/v1/build/projects");
    EXPECT_EQ(status_of(r.out), 400) << c.body << "\n" << r.out;
    std::string msg = jq(body_of(r.out), ".error.message");
    EXPECT_EQ(msg.rfind("\"" + c.field, 0), 0u) << c.body << "\n" << r.out;
  }
  auto cl = cli("build project create web --repo web/app --build-arg NOEQUALS");
  EXPECT_EQ(cl.code, 2) << cl.all();
  auto ls = cli("build project ls --json");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(jq(ls.out, ".projects | length"), "0") << ls.out;
  EXPECT_EQ(cli("build project show web").code, 3);
}

TEST_F(BuildApi, ListShowUpdateAndRemove) {
  create_project("web");
  create_project("api",
                 "--tag edge --git https://example.com/me/api.git --git-username bot "
                 "--git-password tok3n-value");
  auto ls = cli("build project ls --json");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(jq(ls.out, "[.projects[].name] | sort"), "[\"api\",\"web\"]");
  EXPECT_FALSE(has(ls.out, "tok3n-value")) << ls.out;
  EXPECT_EQ(jq(ls.out, ".projects[] | select(.name == \"api\") | .git_password"), "\"****\"");
  auto table = cli("build project ls");
  ASSERT_EQ(table.code, 0) << table.all();
  EXPECT_EQ(table.out.rfind("NAME", 0), 0u) << table.out;
  EXPECT_TRUE(has(table.out, "web/app:edge")) << table.out;

  auto up = cli("build project update web --branch 'release/*' --tag stable");
  ASSERT_EQ(up.code, 0) << up.all();
  auto show = cli("build project show web --json");
  EXPECT_EQ(jq(show.out, "[.branch, .tag, .repository]"), "[\"release/*\",\"stable\",\"web/app\"]");
  ASSERT_EQ(cli("build project update web --build-arg A=1 --build-arg B=2").code, 0);
  ASSERT_EQ(cli("build project update web --unset-build-arg A").code, 0);
  EXPECT_EQ(jq(cli("build project show web --json").out, ".build_args"), "{\"B\":\"2\"}");
  EXPECT_EQ(cli("build project update web --repo 'Not Valid'").code, 2);
  EXPECT_EQ(jq(cli("build project show web --json").out, ".repository"), "\"web/app\"");

  auto rm = cli("build project rm api");
  ASSERT_EQ(rm.code, 0) << rm.all();
  EXPECT_EQ(rm.out, "deleted build project api\n");
  EXPECT_EQ(jq(cli("build project ls --json").out, "[.projects[].name]"), "[\"web\"]");
  EXPECT_EQ(cli("build project rm api").code, 3);
}

// ---- builds ----------------------------------------------------------------------------------

TEST_F(BuildApi, StartFollowsTheLogAndFailsWithTheReason) {
  create_project("web");
  // Nothing was pushed to berth's remote, and builds cannot run here: either way it fails.
  auto r = cli("build start web --commit main");
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_TRUE(has(r.err, "build 1 queued for web (manual by user/admin)")) << r.err;
  EXPECT_TRUE(has(r.err, "build 1 FAILED")) << r.err;
  EXPECT_EQ(builds(".[0].status"), "\"FAILED\"");
  std::string reason = jq(builds(".[0]"), ".reason");
  EXPECT_GT(reason.size(), 2u);

  auto show = cli("build show 1 --json");
  ASSERT_EQ(show.code, 0) << show.all();
  EXPECT_EQ(jq(show.out, "[.id, .project, .status, .trigger]"),
            "[1,\"web\",\"FAILED\",\"manual by user/admin\"]");
  auto text = cli("build show 1");
  ASSERT_EQ(text.code, 0) << text.all();
  EXPECT_TRUE(has(text.out, "status:     FAILED\n")) << text.out;
  auto table = cli("build ls");
  ASSERT_EQ(table.code, 0) << table.all();
  EXPECT_EQ(table.out.rfind("ID", 0), 0u) << table.out;
  EXPECT_TRUE(has(table.out, "FAILED")) << table.out;

  // The log, whole and followed (the build has ended, so following ends too).
  auto logs = cli("build logs 1");
  ASSERT_EQ(logs.code, 0) << logs.all();
  EXPECT_FALSE(logs.out.empty());
  auto follow = cli("build logs 1 -f");
  ASSERT_EQ(follow.code, 0) << follow.all();
  EXPECT_EQ(follow.out, logs.out);
  auto chunked =
      run("curl -s -i -m 10 " + d_->curl_auth() + d_->url() + "/api/v1/builds/1/logs?follow=1");
  EXPECT_TRUE(has(chunked.out, "Transfer-Encoding: chunked")) << chunked.out;
  EXPECT_EQ(body_of(chunked.out), logs.out);
  // The console's form of it: Server-Sent Events, the text in `log` events, then `end` with
  // the status, and the stream closes by itself.
  auto sse = run("curl -s -i -m 10 -H 'Accept: text/event-stream' " + d_->curl_auth() + d_->url() +
                 "/api/v1/builds/1/logs?follow=1");
  EXPECT_EQ(sse.code, 0) << "the stream did not end: " << sse.out;
  EXPECT_TRUE(has(sse.out, "Content-Type: text/event-stream")) << sse.out;
  EXPECT_TRUE(has(sse.out, "event: end\ndata: {\"status\":\"FAILED\"}\n\n")) << sse.out;
  std::string streamed;
  std::string body = body_of(sse.out);
  for (size_t at = body.find("event: log\ndata: "); at != std::string::npos;
       at = body.find("event: log\ndata: ", at + 1)) {
    size_t start = at + 17;
    streamed +=
        Json::parse(body.substr(start, body.find('\n', start) - start))["text"].get<std::string>();
  }
  EXPECT_EQ(streamed, logs.out);

  // Stopping a finished build is refused; unknown builds are 404.
  EXPECT_EQ(cli("build stop 1").code, 1);
  EXPECT_EQ(cli("build show 99").code, 3);
  EXPECT_EQ(cli("build logs 99").code, 3);
  EXPECT_EQ(cli("build start nope").code, 3);
}

TEST_F(BuildApi, NoWaitQueuesAndStopStops) {
  create_project("web");
  auto r = cli("build start web --commit main --no-wait --json");
  ASSERT_EQ(r.code, 0) << r.all();
  std::string id = jq(r.out, ".id");
  EXPECT_EQ(jq(r.out, ".project"), "\"web\"");
  auto stop = cli("build stop " + id + " --json");
  // It may already have failed (no runtime here): stopped, or refused as finished.
  if (stop.code == 0) {
    EXPECT_EQ(jq(stop.out, ".status"), "\"STOPPED\"") << stop.out;
  } else {
    EXPECT_EQ(stop.code, 1) << stop.all();
  }
  auto one = cli("build ls --project web --limit 1 --json");
  EXPECT_EQ(jq(one.out, ".builds | length"), "1");
}

// ---- webhooks --------------------------------------------------------------------------------

TEST_F(BuildApi, WebhookChecksTheSignatureAndQueuesMatchingPushes) {
  std::string secret = create_project("web");
  ASSERT_FALSE(secret.empty());
  std::string commit(40, 'a');

  auto bad = webhook("web", "not-the-secret", "refs/heads/main", commit);
  EXPECT_EQ(status_of(bad.out), 401) << bad.out;
  EXPECT_EQ(builds("length"), "0");
  auto unsigned_ = run("curl -s -i -m 5 -X POST -H 'X-GitHub-Event: push' --data '{}' " +
                       d_->url() + "/hooks/github/web");
  EXPECT_EQ(status_of(unsigned_.out), 401) << unsigned_.out;

  auto ping = webhook("web", secret, "", "", "ping");
  EXPECT_EQ(status_of(ping.out), 200) << ping.out;
  EXPECT_EQ(jq(body_of(ping.out), ".build"), "null") << ping.out;

  auto other = webhook("web", secret, "refs/heads/dev", commit);
  EXPECT_EQ(status_of(other.out), 202) << other.out;
  EXPECT_TRUE(has(jq(body_of(other.out), ".message"), "dev")) << other.out;
  EXPECT_EQ(builds("length"), "0");

  auto ok = webhook("web", secret, "refs/heads/main", commit);
  ASSERT_EQ(status_of(ok.out), 202) << ok.out;
  std::string id = jq(body_of(ok.out), ".build");
  ASSERT_NE(id, "null") << ok.out;
  EXPECT_EQ(builds(".[0].id"), id);
  EXPECT_EQ(builds(".[0].commit"), "\"" + commit + "\"");
  EXPECT_TRUE(has(builds(".[0].trigger"), "main")) << builds(".[0]");

  auto unknown = webhook("nope", secret, "refs/heads/main", commit);
  EXPECT_EQ(status_of(unknown.out), 404) << unknown.out;
  auto get = run("curl -s -i -m 5 " + d_->url() + "/hooks/github/web");
  EXPECT_EQ(status_of(get.out), 405) << get.out;
}

// ---- berth's git remote ----------------------------------------------------------------------

TEST_F(BuildApi, GitRemoteNeedsAKeyAndAPushQueuesABuild) {
  create_project("web");
  std::string anon_url = d_->url() + "/git/web.git";
  auto anon = run("curl -s -i -m 5 '" + anon_url + "/info/refs?service=git-upload-pack'");
  EXPECT_EQ(status_of(anon.out), 401) << anon.out;
  EXPECT_TRUE(has(anon.out, "WWW-Authenticate: Basic realm=\"berth\"")) << anon.out;
  auto anon_clone = git("clone " + anon_url + " " + (work_ / "anon"));
  EXPECT_NE(anon_clone.code, 0) << anon_clone.all();
  auto wrong = AdminCredentials{d_->admin_key_id(), "wrong-secret"};
  EXPECT_NE(git("clone " + remote(wrong, "web") + " " + (work_ / "wrong")).code, 0);
  auto missing = git("clone " + remote(d_->admin(), "nope") + " " + (work_ / "missing"));
  EXPECT_NE(missing.code, 0) << missing.all();
  EXPECT_TRUE(has(missing.out, "404") || has(missing.out, "not found")) << missing.out;

  // Clone (empty), commit, push: a build of main is queued.
  std::string src = work_ / "src";
  auto clone = git("clone " + remote(d_->admin(), "web") + " " + src);
  ASSERT_EQ(clone.code, 0) << clone.all();
  write_file(src + "/Dockerfile", "FROM scratch\nCOPY big.bin /big.bin\n");
  // Incompressible and over git's 1 MiB post buffer: the push body is chunked.
  ASSERT_EQ(run("head -c 6000000 /dev/urandom > " + src + "/big.bin").code, 0);
  ASSERT_EQ(git("-C " + src + " add -A").code, 0);
  ASSERT_EQ(git("-C " + src + " commit -q -m one").code, 0);
  std::string head = trim(git("-C " + src + " rev-parse HEAD").out);
  auto push = git("-C " + src + " push origin main");
  ASSERT_EQ(push.code, 0) << push.all();
  ASSERT_EQ(builds("length"), "1");
  EXPECT_EQ(builds(".[0].commit"), "\"" + head + "\"");
  EXPECT_TRUE(has(builds(".[0].trigger"), "main")) << builds(".[0]");
  EXPECT_TRUE(has(builds(".[0].trigger"), "user/admin")) << builds(".[0]");

  // What was pushed clones back byte for byte.
  std::string back = work_ / "back";
  auto clone2 = git("clone " + remote(d_->admin(), "web") + " " + back);
  ASSERT_EQ(clone2.code, 0) << clone2.all();
  EXPECT_EQ(run("cmp " + src + "/big.bin " + back + "/big.bin").code, 0);
  EXPECT_EQ(trim(git("-C " + back + " rev-parse HEAD").out), head);

  // A push to another branch moves that ref and queues nothing.
  ASSERT_EQ(git("-C " + src + " push origin main:dev").code, 0);
  EXPECT_EQ(builds("length"), "1");
}

TEST_F(BuildApi, GitPushNeedsGitPush) {
  create_project("web");
  std::string src = work_ / "src";
  ASSERT_EQ(git("clone " + remote(d_->admin(), "web") + " " + src).code, 0);
  write_file(src + "/Dockerfile", "FROM scratch\n");
  ASSERT_EQ(git("-C " + src + " add -A").code, 0);
  ASSERT_EQ(git("-C " + src + " commit -q -m one").code, 0);
  ASSERT_EQ(git("-C " + src + " push origin main").code, 0);
  std::string first = trim(git("-C " + src + " rev-parse HEAD").out);
  ASSERT_EQ(builds("length"), "1");

  auto reader = make_user("reader", kGitPullOnly);
  // Pull works.
  std::string copy = work_ / "copy";
  auto clone = git("clone " + remote(reader, "web") + " " + copy);
  ASSERT_EQ(clone.code, 0) << clone.all();
  EXPECT_EQ(trim(git("-C " + copy + " rev-parse HEAD").out), first);
  // Push is refused with 403, and nothing moves.
  write_file(copy + "/Dockerfile", "FROM scratch\nLABEL x=y\n");
  ASSERT_EQ(git("-C " + copy + " commit -q -am two").code, 0);
  auto push = git("-C " + copy + " push origin main");
  EXPECT_NE(push.code, 0) << push.all();
  EXPECT_TRUE(has(push.out, "403")) << push.out;
  auto refs = curl("-H 'Git-Protocol: version=1' '" + d_->url() +
                   "/git/web.git/info/refs?service=git-upload-pack'");
  EXPECT_EQ(status_of(refs.out), 200) << refs.out;
  EXPECT_TRUE(has(refs.out, first + " refs/heads/main")) << refs.out;
  EXPECT_EQ(builds("length"), "1");
  auto info = run("curl -s -i -m 5 -u '" + reader.creds() + "' '" + d_->url() +
                  "/git/web.git/info/refs?service=git-receive-pack'");
  EXPECT_EQ(status_of(info.out), 403) << info.out;
}

// ---- IAM --------------------------------------------------------------------------------------

TEST_F(BuildApi, CreateProjectNeedsTheActionAndTheImageRights) {
  // May create projects, but not push to web/app: refused for the image rights.
  auto dev = make_user("dev", R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["build:*"],"Resource":"project/*"}]})");
  auto r = berth_as(d_->url(), dev, "build project create web --branch main --repo web/app");
  EXPECT_EQ(r.code, 5) << r.all();
  EXPECT_TRUE(has(r.err, "registry:Push")) << r.err;
  // Without build:CreateProject at all.
  auto viewer = make_user("viewer", R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["build:ListProjects","registry:Push"],"Resource":"*"}]})");
  r = berth_as(d_->url(), viewer, "build project create web --branch main --repo web/app");
  EXPECT_EQ(r.code, 5) << r.all();
  EXPECT_TRUE(has(r.err, "build:CreateProject")) << r.err;
  auto ls = berth_as(d_->url(), viewer, "build project ls --json");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(jq(ls.out, ".projects | length"), "0");
  // A role instead needs iam:PassRole on it.
  ASSERT_EQ(cli("iam role create builder").code, 0);
  r = berth_as(d_->url(), dev, "build project create web --repo web/app --role builder");
  EXPECT_EQ(r.code, 5) << r.all();
  EXPECT_TRUE(has(r.err, "iam:PassRole")) << r.err;
  // With both, the project is created; anonymous requests are refused.
  auto full = make_user("full", R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Action":["build:*","registry:Push"],"Resource":"*"}]})");
  r = berth_as(d_->url(), full, "build project create web --repo web/app");
  EXPECT_EQ(r.code, 0) << r.all();
  auto anon = run("curl -s -i -m 5 " + d_->url() + "/api/v1/build/projects");
  EXPECT_EQ(status_of(anon.out), 401) << anon.out;
}

}  // namespace
}  // namespace berth::test
