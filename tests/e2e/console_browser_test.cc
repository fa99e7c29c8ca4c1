// SPDX-License-Identifier: Apache-2.0
// The web console in a real browser: Debian's headless Chromium, driven through
// chromium-driver by python3-selenium (tests/browser/console_test.py), against a berthd
// started as `make run` starts it. This side prepares what a user would have (images pushed
// with skopeo, a read-only user), runs the suite, and checks afterwards that what the browser
// did happened in berthd.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/json.h"
#include "e2e/e2e_util.h"
#include "support/harness.h"

namespace berth::test {
namespace {

bool browser_can_run(std::string* why) {
  if (!can_run_services(why)) {
    return false;
  }
  for (const char* t : {"/usr/bin/chromium", "/usr/bin/chromedriver"}) {
    if (::access(t, X_OK) != 0) {
      *why = std::string(t) + " is not installed (scripts/setup --test)";
      return false;
    }
  }
  if (run("/usr/bin/python3 -c 'import selenium'").code != 0) {
    *why = "python3-selenium is not installed (scripts/setup --test)";
    return false;
  }
  return true;
}

// Says hello at start and every second (so a followed log shows lines arriving), serves /www.
const char* kApp =
    "echo console-test-hello started; (while true; do echo console-test-hello tick; "
    "/bin/busybox sleep 1; done) & exec /bin/busybox httpd -f -p $PORT -h /www";

TEST(ConsoleBrowser, AUserDeploysWatchesAndRollsBackInChromium) {
  std::string why;
  if (!browser_can_run(&why)) {
    GTEST_SKIP() << why;
  }
  TempDir work;
  const std::string w = work.path();
  ASSERT_EQ(run("mkdir -p " + w + "/build && ln -s " + BERTH_BIN_DIR + " " + w + "/build/bin").code,
            0);
  auto ports = free_ports(4);
  MakeRunBerthd berthd(w, ports[0], ports[1], ports[2], ports[3]);
  ASSERT_EQ(berthd.start(), "");
  AdminCredentials admin = AdminCredentials::read(w + "/var");
  ASSERT_FALSE(admin.key_id.empty());
  const std::string host = "127.0.0.1:" + std::to_string(ports[0]);
  auto berth = [&](const std::string& args) {
    return run("BERTH_SERVER=" + berthd.url() + " " + admin.env() + bin("berth") + " " + args);
  };
  ASSERT_EQ(berth("repo create web/app").code, 0);

  // Two images, as a user pushes them: the app (v1) and one built for another platform.
  for (const auto& [tag, arch] : {std::pair<std::string, std::string>{"v1", "amd64"},
                                  std::pair<std::string, std::string>{"arm64", "arm64"}}) {
    std::string layout = w + "/layout-" + tag;
    ASSERT_EQ(make_busybox_layout(layout, tag, {{"www/index.html", "hello " + tag + "\n"}}), "");
    auto r = run("umoci config --image " + layout + ":" + tag + " --architecture " + arch +
                 " --clear=config.cmd --config.cmd /bin/busybox --config.cmd sh --config.cmd -c "
                 "--config.cmd '" +
                 std::string(kApp) + "'");
    ASSERT_EQ(r.code, 0) << r.all();
    r = run("skopeo copy -q --dest-tls-verify=false --dest-creds '" + admin.creds() +
            "' oci:" + layout + ":" + tag + " docker://" + host + "/web/app:" + tag);
    ASSERT_EQ(r.code, 0) << r.all();
  }

  // A read-only user: lists, reads and logs, nothing else.
  ASSERT_EQ(berth("iam user create viewer").code, 0);
  auto key = berth("iam key create viewer --json");
  ASSERT_EQ(key.code, 0) << key.all();
  Json viewer = Json::parse(key.out, nullptr, false);
  write_file(w + "/read-only.json",
             R"({"Version":"2012-10-17","Statement":[{"Sid":"ReadOnly","Effect":"Allow",)"
             R"("Action":["*:List*","*:Get*","*:Describe*"],"Resource":"*"}]})");
  ASSERT_EQ(berth("iam policy put --user viewer read-only --file " + w + "/read-only.json").code,
            0);

  const char* keep = std::getenv("BERTH_CONSOLE_SCREENSHOTS");  // docs/console/, to refresh them
  std::string shots = keep != nullptr && *keep != '\0' ? std::string(keep) : w + "/screenshots";
  std::filesystem::create_directories(shots);
  std::string env = "BERTH_URL=" + berthd.url() +
                    " BERTH_ROUTER_URL=http://127.0.0.1:" + std::to_string(ports[1]) +
                    " BERTH_ADMIN_KEY_ID=" + admin.key_id + " BERTH_ADMIN_SECRET=" + admin.secret +
                    " BERTH_VIEWER_KEY_ID=" + viewer.value("access_key_id", "") +
                    " BERTH_VIEWER_SECRET=" + viewer.value("secret_access_key", "") +
                    " BERTH_APP_IMAGE=web/app:v1 BERTH_ARM_IMAGE=web/app:arm64"
                    " BERTH_SCREENSHOT_DIR=" +
                    shots + " HOME=" + w;
  auto suite = run(env + " timeout 900 /usr/bin/python3 -B " + std::string(BERTH_SOURCE_DIR) +
                   "/tests/browser/console_test.py 2>&1");
  EXPECT_EQ(suite.code, 0) << suite.all() << "\nberthd's log:\n" << berthd.log();
  std::cout << suite.out;

  // What the browser did, as berthd sees it.
  auto svc = berth("service show web --json");
  ASSERT_EQ(svc.code, 0) << svc.all();
  Json s = Json::parse(svc.out, nullptr, false);
  EXPECT_EQ(s.value("status", ""), "running") << svc.out;
  auto deps = berth("service deployments web --json");
  EXPECT_NE(deps.out.find("linux/arm64"), std::string::npos) << deps.out;
  auto page = run(
      "curl -s -m 5 -H 'Host: web.localhost' http://127.0.0.1:" + std::to_string(ports[1]) + "/");
  EXPECT_EQ(page.out, "hello v1\n");
  auto keys = berth("iam key ls ops --json");
  EXPECT_NE(keys.out.find("access_key_id"), std::string::npos) << keys.all();
  for (const char* png :
       {"login.png", "overview.png", "service.png", "logs.png", "images.png", "iam.png"}) {
    EXPECT_TRUE(std::filesystem::exists(shots + "/" + png)) << png;
  }
}

}  // namespace
}  // namespace berth::test
