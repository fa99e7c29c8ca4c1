// SPDX-License-Identifier: Apache-2.0
// Services end to end with real parts: images built from Debian's busybox-static with umoci,
// pushed with skopeo, run by runc behind berth's router, reached with curl.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>

#include "e2e/e2e_util.h"
#include "support/blob_backend.h"
#include "support/harness.h"

namespace berth::test {
namespace {

// The app: writes its environment where it serves it, says hello on stdout, serves /www.
const char* kApp =
    "/bin/busybox env > /www/env.txt; echo hello-from-app version=$(/bin/busybox cat "
    "/www/index.html); exec /bin/busybox httpd -f -p $PORT -h /www";

class Services : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!can_run_services(&why)) {
      GTEST_SKIP() << why;
    }
    d_ = make_daemon();
    auto r = d_->cli("repo create web/app");
    ASSERT_EQ(r.code, 0) << r.all();
  }

  virtual std::unique_ptr<TestDaemon> make_daemon() { return std::make_unique<TestDaemon>(); }

  // Builds an image whose index.html is `version` and whose command is `script` (run by
  // busybox sh), and pushes it as web/app:TAG.
  void push(const std::string& tag, const std::string& version, const std::string& script = kApp,
            const std::string& arch = "amd64",
            std::vector<std::pair<std::string, std::string>> files = {}) {
    std::string layout = work_ / ("layout-" + std::to_string(++images_));
    files.emplace_back("www/index.html", version + "\n");
    std::string err = make_busybox_layout(layout, tag, files);
    ASSERT_EQ(err, "");
    auto r = run("umoci config --image " + layout + ":" + tag + " --architecture " + arch +
                 " --clear=config.cmd --config.cmd /bin/busybox --config.cmd sh --config.cmd -c "
                 "--config.cmd '" +
                 script + "'");
    ASSERT_EQ(r.code, 0) << r.all();
    r = run("skopeo copy -q --dest-tls-verify=false --dest-creds '" + d_->creds() +
            "' oci:" + layout + ":" + tag + " docker://" + d_->host() + "/web/app:" + tag);
    ASSERT_EQ(r.code, 0) << r.all();
  }

  CmdResult get(const std::string& path = "/", const std::string& host = "web.localhost") {
    // -m: a request still unanswered after 10 s counts as dropped (a loaded runner may take
    // a few seconds for one that is merely slow; a hang is longer).
    return run("curl -s -m 10 -H 'Host: " + host + "' -w '\\n%{http_code}' " + d_->router_url() +
               path);
  }
  // Body of GET path through the router ("" unless 200).
  std::string body(const std::string& path = "/") {
    auto r = get(path);
    auto nl = r.out.rfind('\n');
    if (r.code != 0 || nl == std::string::npos || r.out.substr(nl + 1) != "200") {
      return "";
    }
    return r.out.substr(0, nl);
  }
  // Waits until GET / answers want (up to timeout).
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
  std::string show(const std::string& filter) {
    auto r = d_->cli("service show web --json");
    EXPECT_EQ(r.code, 0) << r.all();
    return jq(r.out, filter);
  }
  // Waits until no deployment is queued or in progress (old instances drained and stopped).
  void settle() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (deployments("[.[] | select(.status == \"QUEUED\" or .status == \"IN_PROGRESS\")] "
                       "| length") != "0" &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::string deployments(const std::string& filter) {
    auto r = d_->cli("service deployments web --json");
    EXPECT_EQ(r.code, 0) << r.all();
    return jq(r.out, ".deployments | " + filter);
  }

  TempDir work_;
  std::unique_ptr<TestDaemon> d_;
  int images_ = 0;
};

TEST_F(Services, PushDeploysWithoutDroppingARequest) {
  push("latest", "v1");
  auto r = d_->cli("service create web --image web/app:latest --port 8080 --auto-deploy");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.all().find("SUCCEEDED"), std::string::npos) << r.all();
  EXPECT_EQ(body(), "v1\n");
  // Unknown hosts get a 404 that names them.
  auto unknown = get("/", "nope.localhost");
  EXPECT_NE(unknown.out.find("nope.localhost"), std::string::npos) << unknown.out;
  EXPECT_NE(unknown.out.find("404"), std::string::npos) << unknown.out;

  // Constant load while v2 and v3 are pushed: every answer must be a 200.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, bad{0};
  std::string bad_sample;
  std::thread load([&] {
    while (!stop) {
      auto g = get();
      auto nl = g.out.rfind('\n');
      if (g.code == 0 && nl != std::string::npos && g.out.substr(nl + 1) == "200") {
        ++ok;
      } else {
        ++bad;
        bad_sample = g.all();
      }
    }
  });
  push("latest", "v2");
  EXPECT_TRUE(wait_for_body("v2\n", std::chrono::seconds(30)));
  push("latest", "v3");
  EXPECT_TRUE(wait_for_body("v3\n", std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  load.join();
  EXPECT_EQ(bad.load(), 0) << bad_sample;
  EXPECT_GT(ok.load(), 10);

  settle();
  EXPECT_EQ(deployments("[.[] | .status] | unique"), "[\"SUCCEEDED\"]");
  EXPECT_EQ(deployments(".[0].trigger"), "\"push web/app:latest\"");
  EXPECT_EQ(deployments("length"), "3");
  // Old instances are gone: one instance, of the newest revision.
  EXPECT_EQ(show(".instances | length"), "1");
  EXPECT_EQ(show(".revision"), "3");

  // Rollback restores revision 2 (image and configuration) without a push.
  r = d_->cli("service rollback web");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(body(), "v2\n");
  EXPECT_EQ(show(".revision"), "2");
}

TEST_F(Services, EnvPortAndSecretsReachTheAppButNoOutput) {
  push("latest", "v1");
  auto r = d_->cli(
      "service create web --image web/app:latest --port 9090 --env GREETING=hi "
      "--secret-env API_TOKEN=s3cr3t-value");
  ASSERT_EQ(r.code, 0) << r.all();
  std::string env = body("/env.txt");
  EXPECT_NE(env.find("PORT=9090"), std::string::npos) << env;
  EXPECT_NE(env.find("GREETING=hi"), std::string::npos) << env;
  EXPECT_NE(env.find("API_TOKEN=s3cr3t-value"), std::string::npos) << env;
  // Never shown by the API or CLI, never stored in the clear.
  auto shown = d_->cli("service show web --json");
  EXPECT_EQ(shown.all().find("s3cr3t"), std::string::npos);
  EXPECT_NE(shown.out.find("API_TOKEN"), std::string::npos);
  auto grep = run("grep -rc s3cr3t-value " + d_->data_dir() + "/berth.db " + d_->data_dir() +
                  "/berth.db-wal 2>/dev/null | grep -v ':0$'");
  EXPECT_EQ(grep.out, "");
  // The app's output is in the logs, labelled with the instance.
  r = d_->cli("logs web");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("hello-from-app version=v1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("web-1-"), std::string::npos) << r.out;
}

// A service's confinement reaches its instances through the deploy controller: the app probes
// its own root file system, seccomp mode and whether it may create a user namespace.
TEST_F(Services, ConfinementReachesTheInstances) {
  const std::string probe =
      "/bin/busybox mkdir -p /tmp/www; /bin/busybox cp /www/index.html /tmp/www/; "
      "if /bin/busybox touch /probe 2>/dev/null; then echo root=rw; else echo root=ro; fi "
      "> /tmp/www/probe.txt; /bin/busybox grep Seccomp: /proc/self/status >> /tmp/www/probe.txt; "
      "if /bin/busybox unshare -Ur true 2>/dev/null; then echo userns=yes; else echo userns=no; "
      "fi >> /tmp/www/probe.txt; exec /bin/busybox httpd -f -p $PORT -h /tmp/www";
  push("latest", "v1", probe);
  auto r = d_->cli("service create web --image web/app:latest --read-only");
  ASSERT_EQ(r.code, 0) << r.all();
  std::string seen = body("/probe.txt");
  EXPECT_NE(seen.find("root=ro"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Seccomp:\t2"), std::string::npos) << seen;
  EXPECT_NE(seen.find("userns=no"), std::string::npos) << seen;
  r = d_->cli("service update web --no-read-only");
  ASSERT_EQ(r.code, 0) << r.all();
  seen = body("/probe.txt");
  EXPECT_NE(seen.find("root=rw"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Seccomp:\t2"), std::string::npos) << seen;
}

// runtime.userns through the whole daemon, as a user turns it on: every instance of a deployed
// service runs as host uid 100000 (docs/security.md, "User namespaces"); the data dir must be
// searchable by others, as that section says.
class ServicesUserns : public Services {
 protected:
  std::unique_ptr<TestDaemon> make_daemon() override {
    return std::make_unique<TestDaemon>([](config::Config& c) {
      c.runtime.userns = true;
      ::chmod(c.data_dir.c_str(), 0711);
    });
  }
};

// Blobs in S3 (the harness's RGW) with no local copy left by the push, as on a node that did
// not take it: the runtime's and the builder's reads fetch the layers from S3.
class ServicesOnS3 : public Services {
 protected:
  std::unique_ptr<TestDaemon> make_daemon() override {
    s3_ = std::make_unique<BlobHome>(BlobBackend::S3);
    return std::make_unique<TestDaemon>([this](config::Config& c) {
      s3_->apply(c);
      c.storage.s3.cache_pushed = false;
      c.build.allow_file_remotes = true;
    });
  }
  std::unique_ptr<BlobHome> s3_;
};

TEST_F(ServicesOnS3, DeploysAndBuildsReadTheirLayersFromS3) {
  if (!s3_->skip_reason().empty()) {
    GTEST_SKIP() << s3_->skip_reason();
  }
  push("v1", "v1");
  // (The manifest's PUT read the config blob; whatever was copied, nothing is local now. The
  // directory goes too, as a user freeing disk might remove it: it is made again.)
  const std::string copies = d_->data_dir() + "/cache/blobs";
  ASSERT_EQ(run("rm -rf " + copies).code, 0);
  auto r = d_->cli("service create web --image web/app:v1 --port 8080");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(body(), "v1\n");
  EXPECT_NE(run("find " + copies + " -type f").out, "") << "the runtime read nothing from S3";
  EXPECT_EQ(run("find " + d_->data_dir() + "/blobs -type f 2>/dev/null").out, "");

  // A build from the image: the builder reads its layers through the same storage.
  ASSERT_EQ(run("rm -rf " + copies).code, 0);
  std::string src = work_ / "src";
  auto git = [&](const std::string& args) {
    return run("git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main " + args +
               " 2>&1");
  };
  ASSERT_EQ(git("init -q -b main " + src).code, 0);
  write_file(src + "/Dockerfile",
             "FROM web/app:v1\n"
             "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built-on-s3 > /www/index.html\"]\n");
  ASSERT_EQ(git("-C " + src + " add -A").code, 0);
  ASSERT_EQ(git("-C " + src + " commit -q -m one").code, 0);
  ASSERT_EQ(d_->cli("repo create web/built").code, 0);
  auto project =
      d_->cli("build project create built --git file://" + src + " --branch main --repo web/built");
  ASSERT_EQ(project.code, 0) << project.all();
  auto build = d_->cli("build start built");
  ASSERT_EQ(build.code, 0) << build.all();
  EXPECT_NE(build.out.find("SUCCEEDED"), std::string::npos) << build.all();
  auto svc = d_->cli("service create built --image web/built:latest --port 8080");
  ASSERT_EQ(svc.code, 0) << svc.all();
  auto page = get("/", "built.localhost");
  EXPECT_EQ(page.out, "built-on-s3\n\n200") << page.all();
}

// The seed's flow on a router that listens on IPv4 and IPv6: the apex and www (its own
// sub-zone) get A and AAAA, and the page is served over HTTPS on both names and both families,
// verified against berth's root.
class ServicesDualStack : public Services {
 protected:
  std::unique_ptr<TestDaemon> make_daemon() override {
    ipv6_ = can_bind("::1");
    http6_ = free_port();
    tls6_ = free_port();
    return std::make_unique<TestDaemon>([this](config::Config& c) {
      if (ipv6_) {
        c.router_listen.push_back("[::1]:" + std::to_string(http6_));
        c.router_tls_listen.push_back("[::1]:" + std::to_string(tls6_));
      }
    });
  }
  bool ipv6_ = false;
  uint16_t http6_ = 0, tls6_ = 0;
};

TEST_F(ServicesDualStack, TheSeedsDomainIsServedOverIpv4AndIpv6) {
  if (!ipv6_ || !have("dig")) {
    GTEST_SKIP() << "needs ::1 and dig";
  }
  push("latest", "v1");
  auto svc = d_->cli("service create web --image web/app:latest --port 8080");
  ASSERT_EQ(svc.code, 0) << svc.all();
  ASSERT_EQ(d_->cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_->cli("dns zone create www.example.com").code, 0);
  auto link = d_->cli("domain link web example.com --www");
  ASSERT_EQ(link.code, 0) << link.all();
  EXPECT_TRUE(has(link.out, "www.example.com: ACTIVE")) << link.out;
  auto dig = [&](const std::string& q) {
    return run("dig @127.0.0.1 -p " + std::to_string(d_->dns_port()) + " +norec +short " + q).out;
  };
  for (const char* name : {"example.com", "www.example.com"}) {
    EXPECT_EQ(dig(std::string(name) + " A"), "127.0.0.1\n") << name;
    EXPECT_EQ(dig(std::string(name) + " AAAA"), "::1\n") << name;
  }
  std::string root = work_ / "root.pem";
  write_file(root, d_->cli("ca export").out);
  auto page = [&](const std::string& name, const std::string& addr, uint16_t port) {
    std::string p = std::to_string(port);
    return run("curl -sS -m 10 --cacert " + root + " --resolve " + name + ":" + p + ":" + addr +
               " https://" + name + ":" + p + "/ 2>&1")
        .out;
  };
  for (const char* name : {"example.com", "www.example.com"}) {
    EXPECT_EQ(page(name, "127.0.0.1", d_->router_tls_port()), "v1\n") << name << " over IPv4";
    EXPECT_EQ(page(name, "[::1]", tls6_), "v1\n") << name << " over IPv6";
  }
  // Plain HTTP over IPv6 redirects to HTTPS, as over IPv4.
  auto plain =
      run("curl -s -o /dev/null -w '%{http_code}' --resolve example.com:" + std::to_string(http6_) +
          ":[::1] http://example.com:" + std::to_string(http6_) + "/");
  EXPECT_EQ(plain.out, "308") << plain.all();
}

// router.redirect_http: false serves a linked name over plain HTTP too; router.hsts adds
// Strict-Transport-Security to the service's answers over HTTPS, and only there.
class ServicesHsts : public Services {
 protected:
  std::unique_ptr<TestDaemon> make_daemon() override {
    return std::make_unique<TestDaemon>([](config::Config& c) {
      c.router.redirect_http = false;
      c.router.hsts = true;
    });
  }
};

TEST_F(ServicesHsts, PlainHttpIsServedAndHttpsCarriesHsts) {
  push("latest", "v1");
  ASSERT_EQ(d_->cli("service create web --image web/app:latest --port 8080").code, 0);
  ASSERT_EQ(d_->cli("dns zone create example.com").code, 0);
  ASSERT_EQ(d_->cli("domain link web example.com").code, 0);
  std::string root = work_ / "root.pem";
  write_file(root, d_->cli("ca export").out);
  std::string http = std::to_string(d_->router_port());
  auto plain = run("curl -s -i -m 10 --resolve example.com:" + http +
                   ":127.0.0.1 http://example.com:" + http + "/");
  EXPECT_EQ(status_code(plain.out), 200) << plain.out << " (no redirect to HTTPS)";
  EXPECT_EQ(header_value(plain.out, "Strict-Transport-Security"), "") << plain.out;
  std::string tls = std::to_string(d_->router_tls_port());
  for (const char* version : {"--http1.1", "--http2"}) {
    auto secure =
        run("curl -s -i -m 10 " + std::string(version) + " --cacert " + root +
            " --resolve example.com:" + tls + ":127.0.0.1 https://example.com:" + tls + "/");
    EXPECT_EQ(status_code(secure.out), 200) << version << ": " << secure.all();
    EXPECT_TRUE(header_value(secure.out, "Strict-Transport-Security").starts_with("max-age="))
        << version << ": " << secure.out;
  }
}

TEST_F(ServicesUserns, InstancesRunAsTheMappedRoot) {
  const std::string probe =
      "/bin/busybox mkdir -p /tmp/www; /bin/busybox cp /www/index.html /tmp/www/; "
      "{ /bin/busybox cat /proc/self/uid_map; echo uid=$(/bin/busybox id -u); } "
      "> /tmp/www/probe.txt; exec /bin/busybox httpd -f -p $PORT -h /tmp/www";
  push("latest", "v1", probe);
  // --read-only: /tmp is then a tmpfs the mapped root owns (the image's own files are not
  // writable by it).
  auto r = d_->cli("service create web --image web/app:latest --read-only");
  ASSERT_EQ(r.code, 0) << r.all();
  std::string seen = body("/probe.txt");
  // "0 100000 65536" with the kernel's column padding; the initial namespace shows
  // "0 0 4294967295".
  std::istringstream in(seen);
  std::string inside, outside, count;
  in >> inside >> outside >> count;
  EXPECT_EQ(inside + " " + outside + " " + count, "0 100000 65536") << seen;
  EXPECT_NE(seen.find("uid=0"), std::string::npos) << seen;
  // The process the router reaches is not root on the host.
  auto ps = run("ps -eo uid=,args= | grep -F 'httpd -f -p' | grep -v grep");
  EXPECT_NE(ps.out.find("100000"), std::string::npos) << ps.all();
}

TEST_F(Services, FailingDeploysRollBackWithTheirReason) {
  push("latest", "v1");
  ASSERT_EQ(d_->cli("service create web --image web/app:latest --auto-deploy "
                    "--deploy-timeout 3s")
                .code,
            0);
  ASSERT_EQ(body(), "v1\n");

  // Exits at once: FAILED with its exit code and last output; v1 keeps serving.
  push("latest", "crash", "echo boom-before-exit; exit 3");
  settle();
  EXPECT_EQ(deployments(".[0].status"), "\"FAILED\"");
  std::string reason = deployments(".[0].reason");
  EXPECT_NE(reason.find("exited with code 3"), std::string::npos) << reason;
  EXPECT_NE(reason.find("boom-before-exit"), std::string::npos) << reason;
  EXPECT_EQ(body(), "v1\n");

  // Never listens: FAILED at the deploy timeout, naming the health check.
  push("silent", "x", "exec /bin/busybox sleep 1000");
  auto r = d_->cli("service deploy web --image web/app:silent");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.all().find("did not pass its health check"), std::string::npos) << r.all();
  EXPECT_EQ(body(), "v1\n");
}

TEST_F(Services, ForeignPlatformIsRefusedBeforeStarting) {
  push("latest", "v1", kApp, "arm64");
  auto r = d_->cli("service create web --image web/app:latest");
  EXPECT_NE(r.code, 0);
  std::string reason = deployments(".[0].reason");
  EXPECT_NE(reason.find("is linux/arm64; this host runs linux/amd64: rebuild it for "
                        "linux/amd64"),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find("image web/app@sha256:"), std::string::npos) << reason;
}

TEST_F(Services, RoleWithoutPullRightsFailsTheDeploy) {
  push("latest", "v1");
  ASSERT_EQ(d_->cli("iam role create nopull").code, 0);
  auto r = d_->cli("service create web --image web/app:latest --role nopull");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.all().find("AccessDenied: role nopull may not registry:Pull on repository web/app"),
            std::string::npos)
      << r.all();
  // With the right, the same role deploys.
  write_file(work_ / "pull.json", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",)"
                                  R"("Action":"registry:Pull","Resource":"repository/web/*"}]})");
  ASSERT_EQ(d_->cli("iam policy put --role nopull pull --file " + (work_ / "pull.json")).code, 0);
  r = d_->cli("service deploy web");
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(body(), "v1\n");
}

TEST_F(Services, CrashedInstanceIsRestarted) {
  push("latest", "v1");
  ASSERT_EQ(d_->cli("service create web --image web/app:latest").code, 0);
  std::string id = show(".instances[0].id");
  id = id.substr(1, id.size() - 2);
  auto r = run("runc --root " + d_->data_dir() + "/runtime/runc kill " + id + " KILL");
  ASSERT_EQ(r.code, 0) << r.all();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (show(".restarts") == "0" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(show(".restarts"), "1");
  EXPECT_TRUE(wait_for_body("v1\n", std::chrono::seconds(20)));
  EXPECT_NE(show(".instances[0].id"), "\"" + id + "\"");
}

TEST_F(Services, PauseAndResume) {
  push("latest", "v1");
  ASSERT_EQ(d_->cli("service create web --image web/app:latest").code, 0);
  ASSERT_EQ(d_->cli("service pause web").code, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  CmdResult g;
  while (std::chrono::steady_clock::now() < deadline) {
    g = get();
    if (g.out.find("503") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(g.out.find("paused"), std::string::npos) << g.out;
  EXPECT_NE(g.out.find("503"), std::string::npos) << g.out;
  // A deploy while paused pins the revision without starting anything.
  push("v2", "v2");
  auto r = d_->cli("service deploy web --image web/app:v2");
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(run("runc --root " + d_->data_dir() + "/runtime/runc list -q").out, "");
  EXPECT_NE(get().out.find("503"), std::string::npos);
  ASSERT_EQ(d_->cli("service resume web").code, 0);
  EXPECT_TRUE(wait_for_body("v2\n", std::chrono::seconds(20)));
  EXPECT_EQ(show(".instances | length"), "1");
  ASSERT_EQ(d_->cli("service rm web").code, 0);
  EXPECT_NE(get().out.find("404"), std::string::npos);
  EXPECT_EQ(run("runc --root " + d_->data_dir() + "/runtime/runc list -q").out, "");
}

TEST_F(Services, FollowsTheHighestVersionMatchingAPattern) {
  push("v1.2.0", "v1.2.0");
  auto r = d_->cli("service create web --image web/app:v1.2.0 --auto-deploy-tags 'v1.*'");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(body(), "v1.2.0\n");
  push("v1.10.0", "v1.10.0");
  EXPECT_TRUE(wait_for_body("v1.10.0\n", std::chrono::seconds(30)));
  settle();
  // Lower versions and non-matching tags are not deployed.
  push("v1.9.0", "v1.9.0");
  push("v2.0.0", "v2.0.0");
  push("latest", "latest");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  settle();
  EXPECT_EQ(body(), "v1.10.0\n");
  EXPECT_EQ(deployments("length"), "2");
}

TEST_F(Services, NewerPushSupersedesAQueuedOne) {
  push("latest", "v1");
  ASSERT_EQ(d_->cli("service create web --image web/app:latest --auto-deploy").code, 0);
  // v2 takes two seconds to listen; v3 and v4 arrive meanwhile: v3 is superseded by v4.
  push("latest", "v2", std::string("/bin/busybox sleep 2; ") + kApp);
  push("latest", "v3");
  push("latest", "v4");
  EXPECT_TRUE(wait_for_body("v4\n", std::chrono::seconds(30)));
  settle();
  EXPECT_EQ(deployments("[.[] | .status]"),
            "[\"SUCCEEDED\",\"SUPERSEDED\",\"SUCCEEDED\",\"SUCCEEDED\"]");
  EXPECT_EQ(deployments(".[1].trigger"), "\"push web/app:latest\"");
}

TEST_F(Services, MetricsCountRequestsAndInstances) {
  push("latest", "v1");
  ASSERT_EQ(d_->cli("service create web --image web/app:latest").code, 0);
  ASSERT_EQ(body(), "v1\n");
  auto m = run("curl -s " + d_->curl_auth() + d_->url() + "/metrics");
  EXPECT_NE(m.out.find("berth_router_requests_total{service=\"web\""), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("berth_router_upstreams{service=\"web\"} 1"), std::string::npos) << m.out;
  auto anon = run("curl -s -o /dev/null -w '%{http_code}' " + d_->url() + "/metrics");
  EXPECT_EQ(anon.out, "401");
  // berth logs -f keeps printing: the app's line arrives, then it is still running.
  auto f = run("timeout 5 env HOME=/nonexistent " + d_->admin().env() + bin("berth") +
               " --server " + d_->url() + " logs web -f");
  EXPECT_EQ(f.code, 124) << f.all();
  EXPECT_NE(f.out.find("hello-from-app"), std::string::npos) << f.out;
}

TEST_F(Services, ScalesOutUnderLoadAndBackIn) {
  // A CGI that takes a second, so requests pile up in flight.
  push("latest", "v1",
       "/bin/busybox chmod 755 /www/cgi-bin/slow; exec /bin/busybox httpd -f -p $PORT -h /www",
       "amd64",
       {{"www/cgi-bin/slow",
         "#!/bin/busybox sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
         "/bin/busybox sleep 1\necho slow\n"}});
  auto r = d_->cli(
      "service create web --image web/app:latest --concurrency 1 --max-instances 3 "
      "--scale-in-cooldown 2s");
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(body("/cgi-bin/slow"), "slow\n") << get("/cgi-bin/slow").all();
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  for (int i = 0; i < 6; ++i) {
    load.emplace_back([&] {
      while (!stop) {
        get("/cgi-bin/slow");
      }
    });
  }
  int most = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (most < 2 && std::chrono::steady_clock::now() < deadline) {
    most =
        std::max(most, std::stoi(show("[.instances[] | select(.state == \"healthy\")] | length")));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  stop = true;
  for (auto& t : load) {
    t.join();
  }
  EXPECT_GE(most, 2);
  EXPECT_LE(most, 3);
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (show(".instances | length") != "1" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(show(".instances | length"), "1");
}

TEST_F(Services, BadRequestsChangeNothing) {
  push("latest", "v1");
  auto r = d_->cli("service create Web_1 --image web/app:latest");
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.all().find("invalid service name"), std::string::npos) << r.all();
  r = d_->cli("service create web --image web/app:nope");
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_NE(r.all().find("web/app:nope does not exist"), std::string::npos) << r.all();
  r = d_->cli("service create web --image web/app:latest --env 'NOEQUALS'");
  EXPECT_EQ(r.code, 2) << r.all();
  r = d_->cli("service create web --image web/app:latest --min-instances 5 --max-instances 2");
  EXPECT_EQ(r.code, 2) << r.all();
  r = d_->cli("service create web --image web/app:latest --health-check udp");
  EXPECT_EQ(r.code, 2) << r.all();
  r = d_->cli("service ls --json");
  EXPECT_EQ(jq(r.out, "."), R"({"services":[]})");
  // Unauthenticated calls are refused.
  auto anon = run("curl -s -o /dev/null -w '%{http_code}' " + d_->url() + "/api/v1/services");
  EXPECT_EQ(anon.out, "401");
}

TEST(ServicesRestart, BerthdRestartBringsServicesBack) {
  std::string why;
  if (!can_run_services(&why)) {
    GTEST_SKIP() << why;
  }
  TempDir data, work;
  BerthdProcess p(data.path());
  p.start();
  ASSERT_EQ(p.cli("repo create web/app").code, 0);
  std::string layout = work / "layout";
  ASSERT_EQ(make_busybox_layout(layout, "latest", {{"www/index.html", "v1\n"}}), "");
  ASSERT_EQ(run("umoci config --image " + layout +
                ":latest --clear=config.cmd --config.cmd /bin/busybox --config.cmd sh "
                "--config.cmd -c --config.cmd '" +
                std::string(kApp) + "'")
                .code,
            0);
  auto r = run("skopeo copy -q --dest-tls-verify=false --dest-creds '" + p.creds() +
               "' oci:" + layout + ":latest docker://" + p.host() + "/web/app:latest");
  ASSERT_EQ(r.code, 0) << r.all();
  r = p.cli("service create web --image web/app:latest");
  ASSERT_EQ(r.code, 0) << r.all();
  auto fetch = [&] {
    return run("curl -s -m 5 -H 'Host: web.localhost' " + p.router_url() + "/").out;
  };
  EXPECT_EQ(fetch(), "v1\n");
  for (bool hard : {false, true}) {
    if (hard) {
      p.kill9();
    } else {
      EXPECT_EQ(p.terminate(), 0);
    }
    p.start();
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((got = fetch()) != "v1\n" && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(got, "v1\n") << (hard ? "after SIGKILL" : "after SIGTERM");
    // Exactly one instance: the previous run's were replaced, not leaked.
    auto list = run("runc --root " + data.path() + "/runtime/runc list -q");
    EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 1) << list.out;
  }
  EXPECT_EQ(p.terminate(), 0);
  EXPECT_EQ(run("runc --root " + data.path() + "/runtime/runc list -q").out, "");
}

}  // namespace
}  // namespace berth::test
