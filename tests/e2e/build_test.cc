// SPDX-License-Identifier: Apache-2.0
// Builds end to end with real parts: a git repository made with the git CLI, pushed to berth's
// own git remote (or announced through a signed GitHub-style webhook), built by berth without
// any Docker daemon, pushed to its registry, deployed by a service with auto-deploy, and read
// back through the router with curl.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "e2e/e2e_util.h"
#include "support/harness.h"

namespace berth::test {
namespace {

bool can_build(std::string* why) {
  if (::geteuid() != 0) {
    *why = "needs root (runc, overlayfs, namespaces)";
    return false;
  }
  for (const char* t : {"runc", "git", "curl", "openssl", "jq"}) {
    if (!have(t)) {
      *why = std::string(t) + " is not installed";
      return false;
    }
  }
  if (::access("/bin/busybox", X_OK) != 0) {
    *why = "busybox-static is not installed";
    return false;
  }
  return true;
}

// The Dockerfile of the issue: FROM scratch, COPY busybox, RUN busybox --install, CMD httpd.
const char* kDockerfile =
    "FROM scratch\n"
    "COPY busybox /bin/busybox\n"
    "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
    "COPY www /www\n"
    "CMD /bin/busybox httpd -f -p $PORT -h /www\n";

class Builds : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!can_build(&why)) {
      GTEST_SKIP() << why;
    }
    d_ = std::make_unique<TestDaemon>([](config::Config& c) { c.build.allow_file_remotes = true; });
    auto r = d_->cli("repo create web/app");
    ASSERT_EQ(r.code, 0) << r.all();
    src_ = work_ / "src";
    git("init -q -b main " + src_);
    write_file(src_ + "/Dockerfile", kDockerfile);
    ASSERT_EQ(run("cp /bin/busybox " + src_ + "/busybox").code, 0);
    commit("v1");
  }

  CmdResult git(const std::string& args) {
    auto r =
        run("git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main " + args);
    EXPECT_EQ(r.code, 0) << "git " << args << ": " << r.all();
    return r;
  }
  // Writes www/index.html = version and commits everything; returns the commit id.
  std::string commit(const std::string& version) {
    write_file(src_ + "/www/index.html", version + "\n");
    git("-C " + src_ + " add -A");
    git("-C " + src_ + " commit -q -m " + version);
    return trim(git("-C " + src_ + " rev-parse HEAD").out);
  }
  // git push to berth's remote for the project, authenticated with the admin key.
  CmdResult push_to_berth(const std::string& project, const std::string& branch = "main") {
    return run("git -C " + src_ +
               " -c http.extraHeader='Authorization: " + d_->admin().basic_header() + "' push -q " +
               d_->url() + "/git/" + project + ".git " + branch + " 2>&1");
  }

  std::string builds(const std::string& filter, const std::string& project = "web-build") {
    auto r = d_->cli("build ls --project " + project + " --json");
    EXPECT_EQ(r.code, 0) << r.all();
    return jq(r.out, ".builds | " + filter);
  }
  // Waits for the newest build of the project to finish; returns its status.
  std::string wait_build(const std::string& project = "web-build",
                         std::chrono::seconds timeout = std::chrono::seconds(120)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string status;
    while (std::chrono::steady_clock::now() < deadline) {
      status = builds("[.[0].status // \"NONE\"] | .[0]", project);
      if (status == "\"SUCCEEDED\"" || status == "\"FAILED\"" || status == "\"STOPPED\"") {
        return status.substr(1, status.size() - 2);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "TIMEOUT(" + status + ")";
  }

  std::string body(const std::string& host = "web.localhost") {
    auto r =
        run("curl -s -m 5 -H 'Host: " + host + "' -w '\\n%{http_code}' " + d_->router_url() + "/");
    auto nl = r.out.rfind('\n');
    if (r.code != 0 || nl == std::string::npos || r.out.substr(nl + 1) != "200") {
      return "";
    }
    return r.out.substr(0, nl);
  }
  bool wait_for_body(const std::string& want, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (body() == want) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string tags() {
    auto r = run("curl -s " + d_->curl_auth() + d_->url() + "/v2/web/app/tags/list");
    return jq(r.out, ".tags | sort | join(\",\")");
  }
  // POSTs a GitHub push event for `commit` on `ref`, signed with `secret`; returns curl -i's
  // output.
  CmdResult webhook(const std::string& project, const std::string& secret, const std::string& ref,
                    const std::string& commit, const std::string& event = "push") {
    std::string payload = "{\"ref\":\"" + ref + "\",\"before\":\"" + std::string(40, '0') +
                          "\",\"after\":\"" + commit +
                          "\",\"repository\":{\"full_name\":\"me/app\",\"clone_url\":\"file://" +
                          src_ + "\"},\"head_commit\":{\"message\":\"x\"}}";
    write_file(work_ / "payload.json", payload);
    auto sig = run("openssl dgst -sha256 -hmac '" + secret + "' -r " + (work_ / "payload.json") +
                   " | cut -d' ' -f1");
    EXPECT_EQ(sig.code, 0) << sig.all();
    return run("curl -s -i -m 5 -X POST -H 'Content-Type: application/json' -H 'X-GitHub-Event: " +
               event + "' -H 'X-Hub-Signature-256: sha256=" + trim(sig.out) + "' --data-binary @" +
               (work_ / "payload.json") + " " + d_->url() + "/hooks/github/" + project);
  }

  TempDir work_;
  std::unique_ptr<TestDaemon> d_;
  std::string src_;
};

TEST_F(Builds, GitPushBuildsPushesBothTagsAndTheServiceServesIt) {
  auto r = d_->cli("build project create web-build --branch main --repo web/app");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("/hooks/github/web-build"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/git/web-build.git"), std::string::npos) << r.out;
  r = d_->cli("service create web --image web/app:latest --port 8080 --auto-deploy --no-wait");
  ASSERT_EQ(r.code, 0) << r.all();

  std::string c1 = trim(git("-C " + src_ + " rev-parse HEAD").out);
  r = push_to_berth("web-build");
  ASSERT_EQ(r.code, 0) << r.all();
  ASSERT_EQ(wait_build(), "SUCCEEDED") << d_->cli("build ls --json").out;
  EXPECT_EQ(builds(".[0].commit"), "\"" + c1 + "\"");
  EXPECT_EQ(tags(), "\"" + c1.substr(0, 7) + ",latest\"");
  std::string id = builds(".[0].id");
  auto logs = d_->cli("build logs " + id);
  EXPECT_EQ(logs.code, 0) << logs.all();
  EXPECT_NE(logs.out.find("COPY busybox /bin/busybox"), std::string::npos) << logs.out;
  auto show = d_->cli("build show " + id + " --json");
  EXPECT_EQ(jq(show.out, ".image_digest | startswith(\"sha256:\")"), "true") << show.out;
  // The image carries the commit as a label, its Cmd, and one diff_id per layer.
  auto manifest = run("curl -s " + d_->curl_auth() +
                      "-H 'Accept: application/vnd.oci.image.manifest.v1+json' " + d_->url() +
                      "/v2/web/app/manifests/latest");
  std::string config_digest = jq(manifest.out, ".config.digest");
  ASSERT_GT(config_digest.size(), 10u) << manifest.out;
  auto config = run("curl -s " + d_->curl_auth() + d_->url() + "/v2/web/app/blobs/" +
                    config_digest.substr(1, config_digest.size() - 2));
  EXPECT_EQ(jq(config.out, ".config.Labels[\"org.opencontainers.image.revision\"]"),
            "\"" + c1 + "\"")
      << config.out;
  EXPECT_EQ(jq(config.out, ".rootfs.diff_ids | length"), jq(manifest.out, ".layers | length"));
  EXPECT_EQ(jq(config.out, ".config.Cmd | join(\" \")"),
            "\"/bin/sh -c /bin/busybox httpd -f -p $PORT -h /www\"")
      << config.out;
  ASSERT_TRUE(wait_for_body("v1\n", std::chrono::seconds(60))) << d_->cli("service show web").all();

  // The next commit deploys itself through the same path.
  std::string c2 = commit("v2");
  ASSERT_EQ(push_to_berth("web-build").code, 0);
  ASSERT_EQ(wait_build(), "SUCCEEDED");
  EXPECT_EQ(builds(".[0].commit"), "\"" + c2 + "\"");
  EXPECT_TRUE(wait_for_body("v2\n", std::chrono::seconds(60))) << d_->cli("service show web").all();
  // The rebuild reused the unchanged layers (busybox and the install step).
  auto show2 = d_->cli("build show " + builds(".[0].id") + " --json");
  EXPECT_EQ(jq(show2.out, "[.steps[] | select(.cached)] | length >= 2"), "true") << show2.out;
}

TEST_F(Builds, SignedWebhookBuildsAndABadSignatureStartsNothing) {
  auto r = d_->cli("build project create web-build --git file://" + src_ +
                   " --branch main --repo web/app --json");
  ASSERT_EQ(r.code, 0) << r.all();
  std::string secret = jq(r.out, ".webhook_secret");
  ASSERT_GT(secret.size(), 20u) << r.out;
  secret = secret.substr(1, secret.size() - 2);
  std::string c1 = trim(git("-C " + src_ + " rev-parse HEAD").out);

  // A wrong signature is refused and queues nothing.
  auto bad = webhook("web-build", "not-the-secret", "refs/heads/main", c1);
  EXPECT_EQ(status_code(bad.out), 401) << bad.out;
  EXPECT_EQ(builds("length"), "0");
  // A push to another branch is acknowledged and ignored, saying why.
  auto other = webhook("web-build", secret, "refs/heads/dev", c1);
  EXPECT_EQ(status_code(other.out), 202) << other.out;
  EXPECT_NE(other.out.find("dev"), std::string::npos) << other.out;
  EXPECT_EQ(builds("length"), "0");
  // An unknown project is a 404 that names it.
  auto nope = webhook("nope", secret, "refs/heads/main", c1);
  EXPECT_EQ(status_code(nope.out), 404) << nope.out;
  EXPECT_NE(nope.out.find("build project nope does not exist"), std::string::npos) << nope.out;
  // A ping is answered.
  auto ping = webhook("web-build", secret, "refs/heads/main", c1, "ping");
  EXPECT_EQ(status_code(ping.out), 200) << ping.out;

  auto ok = webhook("web-build", secret, "refs/heads/main", c1);
  EXPECT_EQ(status_code(ok.out), 202) << ok.out;
  ASSERT_EQ(wait_build(), "SUCCEEDED") << d_->cli("build ls --json").out;
  EXPECT_EQ(builds(".[0].commit"), "\"" + c1 + "\"");
  EXPECT_EQ(tags(), "\"" + c1.substr(0, 7) + ",latest\"");
  // The webhook secret never shows again.
  auto show = d_->cli("build project show web-build --json");
  EXPECT_EQ(show.out.find(secret), std::string::npos) << show.out;
}

TEST_F(Builds, FailingRunShowsItsExitCodeAndLine) {
  write_file(src_ + "/Dockerfile",
             "FROM scratch\nCOPY busybox /bin/busybox\n"
             "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo about-to-fail; exit 3\"]\n");
  commit("v1-broken");
  ASSERT_EQ(d_->cli("build project create web-build --git file://" + src_ +
                    " --branch main --repo web/app")
                .code,
            0);
  auto r = d_->cli("build start web-build");
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.all().find("exited with code 3"), std::string::npos) << r.all();
  EXPECT_NE(r.all().find("Dockerfile:3"), std::string::npos) << r.all();
  EXPECT_EQ(builds(".[0].status"), "\"FAILED\"");
  auto logs = d_->cli("build logs " + builds(".[0].id"));
  EXPECT_NE(logs.out.find("about-to-fail"), std::string::npos) << logs.out;
  EXPECT_EQ(tags(), "\"\"");  // nothing was pushed
}

// A base image a running build uses is pinned: lifecycle rules keep it (and say why) until the
// build ends.
TEST_F(Builds, LifecycleKeepsTheBaseImageOfARunningBuild) {
  ASSERT_EQ(d_->cli("repo create web/base").code, 0);
  std::string layout = work_ / "base";
  for (const char* tag : {"v1", "v2"}) {
    // Push times have a resolution of a second: v2 must be the newer one.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    ASSERT_EQ(make_busybox_layout(layout, tag, {{"etc/version", std::string(tag) + "\n"}}), "");
    auto r = run("skopeo copy -q --dest-tls-verify=false --dest-creds '" + d_->creds() +
                 "' oci:" + layout + ":" + tag + " docker://" + d_->host() + "/web/base:" + tag);
    ASSERT_EQ(r.code, 0) << r.all();
  }
  auto inspect = run("skopeo inspect --raw --tls-verify=false --creds '" + d_->creds() +
                     "' docker://" + d_->host() + "/web/base:v1 | sha256sum");
  std::string v1 = "sha256:" + inspect.out.substr(0, 64);
  write_file(src_ + "/Dockerfile", "FROM web/base:v1\nRUN [\"/bin/busybox\", \"sleep\", \"8\"]\n");
  commit("slow");
  ASSERT_EQ(d_->cli("build project create web-build --git file://" + src_ +
                    " --branch main --repo web/app")
                .code,
            0);
  std::string rules = work_ / "rules.json";
  write_file(rules, R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",
    "countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]})");
  ASSERT_EQ(d_->cli("repo lifecycle put web/base --file " + rules).code, 0);
  auto reason = [&] {
    auto p = d_->cli("repo lifecycle preview web/base --json");
    return jq(p.out, ".images[] | select(.digest == \"" + v1 + "\") | .action + \" \" + .reason");
  };
  EXPECT_TRUE(has(reason(), "expire")) << reason();  // v2 is newer: v1 goes, unless pinned

  ASSERT_EQ(d_->cli("build start web-build --no-wait").code, 0);
  std::string seen;
  eventually(
      [&] {
        seen = reason();
        return has(seen, "running build");
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100));
  EXPECT_TRUE(has(seen, "keep")) << seen;
  EXPECT_TRUE(has(seen, "pinned by a service revision or a running build")) << seen;
  EXPECT_EQ(wait_build(), "SUCCEEDED");
  EXPECT_TRUE(has(reason(), "expire")) << reason();  // the build is over
}

TEST_F(Builds, RoleWithoutPushRightsFailsAtThePushStep) {
  ASSERT_EQ(d_->cli("iam role create builder-web").code, 0);
  ASSERT_EQ(d_->cli("build project create web-build --git file://" + src_ +
                    " --branch main --repo web/app --role builder-web")
                .code,
            0);
  auto r = d_->cli("build start web-build");
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.all().find("AccessDenied: role builder-web may not registry:Push on repository "
                         "web/app"),
            std::string::npos)
      << r.all();
  EXPECT_EQ(builds(".[0].phase"), "\"PUSH\"");
  auto logs = d_->cli("build logs " + builds(".[0].id"));
  EXPECT_NE(logs.out.find("AccessDenied: role builder-web may not registry:Push on repository "
                          "web/app"),
            std::string::npos)
      << logs.out;

  // Granted the right, the same role pushes.
  write_file(work_ / "push.json", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",)"
                                  R"("Action":["registry:Push","registry:Pull"],)"
                                  R"("Resource":"repository/web/*"}]})");
  ASSERT_EQ(d_->cli("iam policy put --role builder-web push --file " + (work_ / "push.json")).code,
            0);
  r = d_->cli("build start web-build");
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(builds(".[0].status"), "\"SUCCEEDED\"");
}

// A project without a role builds with its author's rights: a user who may push web/app but
// not read secret/base cannot read it through a build (FROM secret/base) and publish it.
TEST_F(Builds, ProjectWithoutARoleBuildsWithItsAuthorsRights) {
  if (!have("skopeo") || !have("umoci")) {
    GTEST_SKIP() << "skopeo and umoci are needed to push the base image";
  }
  ASSERT_EQ(d_->cli("repo create secret/base").code, 0);
  std::string layout = work_ / "base";
  ASSERT_EQ(make_busybox_layout(layout, "1"), "");
  auto r = run("skopeo copy -q --dest-tls-verify=false --dest-creds '" + d_->creds() +
               "' oci:" + layout + ":1 docker://" + d_->host() + "/secret/base:1");
  ASSERT_EQ(r.code, 0) << r.all();
  write_file(src_ + "/Dockerfile", "FROM secret/base:1\nCOPY www /www\n");
  commit("from-secret");

  ASSERT_EQ(d_->cli("iam user create dev").code, 0);
  write_file(work_ / "dev.json", R"({"Version":"2012-10-17","Statement":[)"
                                 R"({"Effect":"Allow","Action":"build:*","Resource":"project/*"},)"
                                 R"({"Effect":"Allow","Action":["registry:Push","registry:Pull"],)"
                                 R"("Resource":"repository/web/*"}]})");
  ASSERT_EQ(d_->cli("iam policy put --user dev p --file " + (work_ / "dev.json")).code, 0);
  auto key = d_->cli("iam key create dev --json");
  ASSERT_EQ(key.code, 0) << key.all();
  AdminCredentials dev;
  dev.key_id = trim(jq(key.out, ".access_key_id"));
  dev.secret = trim(jq(key.out, ".secret_access_key"));
  dev.key_id = dev.key_id.substr(1, dev.key_id.size() - 2);
  dev.secret = dev.secret.substr(1, dev.secret.size() - 2);

  r = d_->cli_as(
      dev, "build project create leak --git file://" + src_ + " --branch main --repo web/app");
  ASSERT_EQ(r.code, 0) << r.all();
  r = d_->cli_as(dev, "build start leak");
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.all().find("AccessDenied: user dev may not registry:Pull on repository secret/base"),
            std::string::npos)
      << r.all();
  EXPECT_EQ(tags(), "\"\"");

  // Once someone who may read it takes the project over, it builds with their rights.
  r = d_->cli("build project update leak --tag latest");
  ASSERT_EQ(r.code, 0) << r.all();
  r = d_->cli("build start leak");
  EXPECT_EQ(r.code, 0) << r.all();
}

}  // namespace
}  // namespace berth::test
