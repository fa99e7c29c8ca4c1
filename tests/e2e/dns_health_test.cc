// SPDX-License-Identifier: Apache-2.0
// A health check on a real berth service: busybox httpd run by runc behind berth's router,
// probed through the router with Host: web.localhost. Pausing the service (the router answers
// 503) fails the check over to the secondary record; resuming brings the primary back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include "support/harness.h"

namespace berth::test {
namespace {

bool dns_health_can_run(std::string* why) {
  if (::geteuid() != 0) {
    *why = "needs root (runc, overlayfs, namespaces)";
    return false;
  }
  for (const char* t : {"runc", "skopeo", "umoci", "dig"}) {
    if (!have(t)) {
      *why = std::string(t) + " is not installed";
      return false;
    }
  }
  return true;
}

TEST(DnsHealthE2e, PausingTheServiceFailsOver) {
  std::string why;
  if (!dns_health_can_run(&why)) {
    GTEST_SKIP() << why;
  }
  TestDaemon d;
  TempDir work;
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string layout = work / "layout";
  ASSERT_EQ(make_busybox_layout(layout, "latest", {{"www/index.html", "v1\n"}}), "");
  auto r = run("umoci config --image " + layout +
               ":latest --clear=config.cmd --config.cmd /bin/busybox --config.cmd sh "
               "--config.cmd -c --config.cmd 'exec /bin/busybox httpd -f -p $PORT -h /www'");
  ASSERT_EQ(r.code, 0) << r.all();
  r = run("skopeo copy -q --dest-tls-verify=false --dest-creds '" + d.creds() + "' oci:" + layout +
          ":latest docker://" + d.host() + "/web/app:latest");
  ASSERT_EQ(r.code, 0) << r.all();
  r = d.cli("service create web --image web/app:latest --port 8080");
  ASSERT_EQ(r.code, 0) << r.all();

  ASSERT_EQ(d.cli("dns zone create example.com").code, 0);
  r = d.cli("dns healthcheck create web --type HTTP --target 127.0.0.1:" +
            std::to_string(d.router_port()) +
            " --host web.localhost --interval 1s --timeout 1s --failure-threshold 2");
  ASSERT_EQ(r.code, 0) << r.all();
  auto state = [&] { return jq(d.cli("dns healthcheck show web --json").out, ".Status.State"); };
  ASSERT_TRUE(eventually([&] { return state() == "\"HEALTHY\""; }, std::chrono::seconds(30)))
      << d.cli("dns healthcheck show web").all();
  for (const char* args :
       {"--value 127.0.0.10 --set-id primary --failover PRIMARY --health-check web",
        "--value 127.0.0.20 --set-id secondary --failover SECONDARY"}) {
    r = d.cli(std::string("dns record upsert example.com --name www --type A --ttl 1 ") + args);
    ASSERT_EQ(r.code, 0) << r.all();
  }
  auto dig = [&] {
    return run("dig @127.0.0.1 -p " + std::to_string(d.dns_port()) + " +short www.example.com A")
        .out;
  };
  EXPECT_EQ(dig(), "127.0.0.10\n");

  ASSERT_EQ(d.cli("service pause web").code, 0);
  EXPECT_TRUE(eventually([&] { return dig() == "127.0.0.20\n"; }, std::chrono::seconds(30)))
      << dig();
  auto show = d.cli("dns healthcheck show web --json");
  EXPECT_EQ(jq(show.out, ".Status.LastError"), "\"HTTP 503\"") << show.out;

  ASSERT_EQ(d.cli("service resume web").code, 0);
  EXPECT_TRUE(eventually([&] { return dig() == "127.0.0.10\n"; }, std::chrono::seconds(60)))
      << dig();
}

}  // namespace
}  // namespace berth::test
