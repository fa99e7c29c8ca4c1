// SPDX-License-Identifier: Apache-2.0
// The README's quickstarts, run as written: every ```sh block after a `<!-- quickstart -->`
// line, in order, in one bash session, against a berthd started the way `make run` starts it
// (`build/bin/berthd --data ./var --listen ADDR` in the checkout, so with a relative data dir).
// The only changes to the blocks are the ports (127.0.0.1:5000, :5000, :8080 and :8443 become
// free ones, and Docker Hub's URL becomes a local distribution's). A private dockerd with a locally
// made busybox:stable / busybox:latest stands in for Docker Hub (and the same image, copied to
// a local docker-registry, for Docker Hub as berth's upstream), an OCI layout made from
// busybox-static for ./my-layout, and a GIT_ASKPASS script for the user typing the access key
// when git asks. So the README cannot drift from what works.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/e2e_util.h"
#include "support/distribution.h"
#include "support/harness.h"

namespace berth::test {
namespace {

const char* kMarker = "<!-- quickstart -->";

// The ```sh blocks that follow a quickstart marker line, in order.
std::vector<std::string> quickstart_blocks(const std::string& markdown) {
  std::vector<std::string> blocks;
  std::istringstream in(markdown);
  std::string line;
  bool marked = false, inside = false;
  std::string block;
  while (std::getline(in, line)) {
    if (inside) {
      if (line.rfind("```", 0) == 0) {
        blocks.push_back(block);
        block.clear();
        inside = false;
      } else {
        block += line + "\n";
      }
    } else if (line == kMarker) {
      marked = true;
    } else if (marked && line == "```sh") {
      inside = true;
      marked = false;
    } else if (!line.empty()) {
      marked = false;  // a marker belongs to the block right below it
    }
  }
  return blocks;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// What block i printed: between the driver's markers.
std::string block_output(const std::string& out, size_t i) {
  std::string begin = "##### quickstart block " + std::to_string(i) + " begin\n";
  auto b = out.find(begin);
  if (b == std::string::npos) {
    return "";
  }
  b += begin.size();
  auto e = out.find("##### quickstart block " + std::to_string(i) + " ok", b);
  return out.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

bool readme_can_run(std::string* why) {
  if (::geteuid() != 0) {
    *why = "needs root (berthd runs services with runc)";
    return false;
  }
  for (const char* t : {"docker", "dockerd", "runc", "skopeo", "umoci", "git", "curl", "dig"}) {
    if (!have(t)) {
      *why = std::string(t) + " is not installed";
      return false;
    }
  }
  if (::access("/bin/busybox", X_OK) != 0) {
    *why = "busybox-static is not installed";
    return false;
  }
  if (!Distribution::available()) {
    *why = "docker-registry is not installed";
    return false;
  }
  return true;
}

TEST(ReadmeTest, QuickstartsWorkAsWrittenUnderMakeRun) {
  std::string why;
  if (!readme_can_run(&why)) {
    GTEST_SKIP() << why;
  }
  // The berthd command line below is the Makefile's: keep them together.
  std::string makefile = read_file(std::string(BERTH_SOURCE_DIR) + "/Makefile");
  ASSERT_NE(makefile.find("DATA ?= ./var"), std::string::npos) << "make run's data dir moved";
  ASSERT_NE(makefile.find("$(BUILD_DIR)/bin/berthd --data $(DATA) --listen $(LISTEN)\n"),
            std::string::npos)
      << "make run starts berthd differently now: update this test";

  auto blocks = quickstart_blocks(read_file(std::string(BERTH_SOURCE_DIR) + "/README.md"));
  ASSERT_GE(blocks.size(), 6u) << "the README lost its " << kMarker << " markers";
  size_t serve_block = blocks.size(), git_block = blocks.size(), dns_block = blocks.size(),
         domain_block = blocks.size(), console_block = blocks.size();
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].find("berth console") != std::string::npos) {
      console_block = i;
    }
    if (blocks[i].find("berth service create web") != std::string::npos) {
      serve_block = i;
    }
    if (blocks[i].find("git push berth main") != std::string::npos) {
      git_block = i;
    }
    if (blocks[i].find("berth dns zone create") != std::string::npos) {
      dns_block = i;
    }
    if (blocks[i].find("berth domain link web") != std::string::npos) {
      domain_block = i;
    }
  }
  ASSERT_LT(serve_block, blocks.size()) << "no quickstart creates the service";
  ASSERT_LT(git_block, blocks.size()) << "no quickstart pushes with git";
  ASSERT_LT(dns_block, blocks.size()) << "no quickstart creates a DNS zone";
  ASSERT_LT(domain_block, blocks.size()) << "no quickstart links a domain";

  // The checkout, as the README's reader has it: build/bin holds the binaries.
  TempDir work;
  const std::string w = work.path();
  ASSERT_EQ(run("mkdir -p " + w + "/build " + w + "/home && ln -s " + BERTH_BIN_DIR + " " + w +
                "/build/bin")
                .code,
            0);
  write_file(w + "/home/.gitconfig", "[user]\n\tname = Reader\n\temail = reader@example.com\n");
  // git asks for the access key; the reader types what admin.credentials holds.
  write_file(w + "/askpass",
             "#!/bin/sh\ncase \"$1\" in Username*) echo \"$BERTH_ACCESS_KEY_ID\";; "
             "*) echo \"$BERTH_SECRET_ACCESS_KEY\";; esac\n");
  ASSERT_EQ(::chmod((w + "/askpass").c_str(), 0755), 0);
  // skopeo's source in the first quickstart.
  ASSERT_EQ(make_busybox_layout(w + "/my-layout", "v1"), "");

  // Docker Hub's busybox, made here: busybox-static with its applets, PATH set.
  Dockerd dockerd;
  ASSERT_TRUE(dockerd.start(&why)) << "cannot start dockerd: " << why;
  std::istringstream words(dockerd.docker_cmd());  // "docker -H unix://SOCK --config DIR"
  std::string docker_bin, dash_h, docker_host, dash_config, docker_config;
  words >> docker_bin >> dash_h >> docker_host >> dash_config >> docker_config;
  ASSERT_EQ(docker_host.rfind("unix://", 0), 0u) << dockerd.docker_cmd();
  const std::string docker = dockerd.docker_cmd();
  auto bb = run("set -e; r=" + w + "/busybox-rootfs; mkdir -p $r/bin; cp /bin/busybox $r/bin/; " +
                "for a in $($r/bin/busybox --list); do [ -e $r/bin/$a ] || ln -s busybox " +
                "$r/bin/$a; done; tar -C $r -c . | " + docker +
                " import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                "/sbin:/bin' --change 'CMD [\"sh\"]' - busybox:stable; " +
                docker + " tag busybox:stable busybox:latest");
  ASSERT_EQ(bb.code, 0) << bb.all();
  // Docker Hub as berth's upstream: the same busybox in a local distribution.
  Distribution hub({});
  ASSERT_TRUE(hub.start(&why)) << why;
  auto seed = run("skopeo copy -q --src-daemon-host " + docker_host +
                  " --dest-tls-verify=false docker-daemon:busybox:stable docker://" + hub.host() +
                  "/library/busybox:stable 2>&1");
  ASSERT_EQ(seed.code, 0) << seed.all();

  uint16_t port = free_port(), router_port = free_port(), dns_port = free_port(),
           tls_port = free_port();
  while (router_port == port) {
    router_port = free_port();
  }
  while (dns_port == port || dns_port == router_port) {
    dns_port = free_port();
  }
  while (tls_port == port || tls_port == router_port || tls_port == dns_port) {
    tls_port = free_port();
  }
  const std::string host = "127.0.0.1:" + std::to_string(port);
  const std::string router_host = "127.0.0.1:" + std::to_string(router_port);
  MakeRunBerthd berthd(w, port, router_port, tls_port, dns_port);
  std::string err = berthd.start();
  ASSERT_EQ(err, "");

  // One bash session: the blocks in order, each between markers, stopping at the first
  // command that fails.
  std::string driver = "exec 2>&1\nset -euo pipefail\ncd '" + w +
                       "'\n"
                       "unset BERTH_ACCESS_KEY_ID BERTH_SECRET_ACCESS_KEY\n"
                       "export HOME='" +
                       w + "/home' BERTH_SERVER='http://" + host + "' DOCKER_HOST='" + docker_host +
                       "' DOCKER_CONFIG='" + docker_config + "' GIT_ASKPASS='" + w + "/askpass'\n";
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::string block = replace_all(blocks[i], "127.0.0.1:5000", host);
    block = replace_all(block, ":5000", ":" + std::to_string(port));
    block = replace_all(block, "127.0.0.1:8080", router_host);
    block = replace_all(block, ":8080", ":" + std::to_string(router_port));
    block = replace_all(block, ":8443", ":" + std::to_string(tls_port));
    block = replace_all(block, "-p 5353", "-p " + std::to_string(dns_port));
    block = replace_all(block, "https://registry-1.docker.io", hub.url());
    std::string file = w + "/quickstart-" + std::to_string(i) + ".sh";
    write_file(file, block);
    driver += "echo '##### quickstart block " + std::to_string(i) + " begin'\nsource '" + file +
              "'\necho '##### quickstart block " + std::to_string(i) + " ok'\n";
  }
  write_file(w + "/driver.sh", driver);
  auto r = run("timeout 480 bash " + w + "/driver.sh");
  std::string failed;
  for (size_t i = 0; i < blocks.size() && failed.empty(); ++i) {
    if (r.out.find("##### quickstart block " + std::to_string(i) + " ok") == std::string::npos) {
      failed = "quickstart block " + std::to_string(i) + " failed:\n" + blocks[i] +
               "\nits output:\n" + block_output(r.out, i);
    }
  }
  if (!failed.empty()) {
    ADD_FAILURE() << failed << "\nberthd log (tail):\n"
                  << run("tail -n 60 " + w + "/berthd.log").out;
  }
  EXPECT_EQ(r.code, 0) << (failed.empty() ? r.out : "");
  if (failed.empty()) {
    // `berth console` printed a one-time link to this berthd's console, and it signs in.
    std::string console_out = block_output(r.out, console_block);
    auto link_at = console_out.find("http://" + host + "/console/login?code=");
    ASSERT_NE(link_at, std::string::npos) << console_out;
    std::string code = console_out.substr(console_out.find("code=", link_at) + 5, 64);
    auto session = run("curl -s -X POST http://" + host +
                       "/api/v1/console/session -H 'Content-Type: application/json' -d "
                       "'{\"code\":\"" +
                       code + "\"}'");
    EXPECT_NE(session.out.find("\"principal\":\"user/admin\""), std::string::npos) << session.out;
    EXPECT_NE(block_output(r.out, serve_block).find("hello from berth\n"), std::string::npos)
        << "the pushed image's page was not served:\n"
        << block_output(r.out, serve_block);
    EXPECT_NE(block_output(r.out, git_block).find("hello from berth, built by berth\n"),
              std::string::npos)
        << "the page built from git was not served:\n"
        << block_output(r.out, git_block);
    // The apex and www (a delegated sub-zone) both answer with the router's address, and the
    // page is served under the zone's own name.
    std::string dns_out = block_output(r.out, dns_block);
    EXPECT_NE(dns_out.find("api: 127.0.0.2\n"), std::string::npos) << dns_out;
    // The linked apex and www (a delegated sub-zone) answer with the router's address, and
    // the page is served over HTTPS on both names with a certificate curl verified against
    // berth's root; plain HTTP redirects.
    std::string dom = block_output(r.out, domain_block);
    EXPECT_NE(dom.find("example.com: ACTIVE\n"), std::string::npos) << dom;
    EXPECT_NE(dom.find("www.example.com: ACTIVE\n"), std::string::npos) << dom;
    EXPECT_NE(dom.find("apex: 127.0.0.1\n"), std::string::npos) << dom;
    EXPECT_NE(dom.find("www: 127.0.0.1\n"), std::string::npos) << dom;
    // Both names serve the page (by then the one built from git).
    size_t pages = 0;
    for (size_t at = dom.find("\nhello from berth"); at != std::string::npos;
         at = dom.find("\nhello from berth", at + 1)) {
      ++pages;
    }
    EXPECT_EQ(pages, 2u) << dom;
    EXPECT_NE(dom.find("plain HTTP: 308 https://example.com:" + std::to_string(tls_port) + "/"),
              std::string::npos)
        << dom;
    // The registry's own name: ACTIVE, and its listener answers over verified TLS (401: the
    // registry wants a login, as it does over plain HTTP).
    EXPECT_NE(dom.find("registry.example.com: ACTIVE\n"), std::string::npos) << dom;
    EXPECT_NE(dom.find("registry over TLS: 401\n"), std::string::npos) << dom;
  }
  berthd.stop();
}

}  // namespace
}  // namespace berth::test
