// SPDX-License-Identifier: Apache-2.0
// What a new user's Dockerfile starts with: `FROM busybox:stable`, resolved through the
// default upstream (Debian's docker-registry standing in for Docker Hub) the way docker
// resolves it, built by berth and run; a service whose --image is on the upstream; and docker
// pulling through berth.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "e2e/e2e_util.h"
#include "support/distribution.h"
#include "support/harness.h"

namespace berth::test {
namespace {

TEST(PullThroughBuild, FromBusyboxStableBuildsThroughTheDefaultUpstream) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root (runc, overlayfs, namespaces)";
  }
  for (const char* t : {"runc", "git", "skopeo", "umoci", "jq"}) {
    if (!have(t)) {
      GTEST_SKIP() << t << " is not installed";
    }
  }
  if (!Distribution::available() || ::access("/bin/busybox", X_OK) != 0) {
    GTEST_SKIP() << "docker-registry or busybox-static is not installed";
  }
  TempDir work;
  std::string layout = work / "layout";
  ASSERT_EQ(make_busybox_layout(layout, "stable"), "");
  Distribution hub({});
  std::string why;
  ASSERT_TRUE(hub.start(&why)) << why;
  auto seed = run("skopeo copy -q --dest-tls-verify=false oci:" + layout + ":stable docker://" +
                  hub.host() + "/library/busybox:stable 2>&1");
  ASSERT_EQ(seed.code, 0) << seed.all();

  TestDaemon d([](config::Config& c) { c.build.allow_file_remotes = true; });
  auto up = d.cli("registry upstream create dockerhub --url " + hub.url() +
                  " --prefix docker.io --default");
  ASSERT_EQ(up.code, 0) << up.all();
  ASSERT_EQ(d.cli("repo create web/app").code, 0);

  std::string src = work / "src";
  auto git = [&](const std::string& args) {
    return run("git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main " + args +
               " 2>&1");
  };
  ASSERT_EQ(git("init -q -b main " + src).code, 0);
  write_file(src + "/Dockerfile",
             "FROM busybox:stable\n"
             "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built-on-busybox > /built.txt\"]\n"
             "CMD [\"/bin/busybox\", \"cat\", \"/built.txt\"]\n");
  ASSERT_EQ(git("-C " + src + " add -A").code, 0);
  ASSERT_EQ(git("-C " + src + " commit -q -m one").code, 0);
  auto project =
      d.cli("build project create web-build --git file://" + src + " --branch main --repo web/app");
  ASSERT_EQ(project.code, 0) << project.all();
  auto build = d.cli("build start web-build");
  ASSERT_EQ(build.code, 0) << build.all();
  EXPECT_NE(build.out.find("SUCCEEDED"), std::string::npos) << build.all();
  // The base came through the upstream once, and is in berth now.
  EXPECT_EQ(hub.count_requests("\"GET /v2/library/busybox/manifests/stable"), 1) << hub.log();
  auto images = d.cli("image ls docker.io/library/busybox");
  EXPECT_NE(images.out.find("stable"), std::string::npos) << images.all();
  auto tags = run("curl -s " + d.curl_auth() + d.url() + "/v2/web/app/tags/list");
  EXPECT_NE(tags.out.find("latest"), std::string::npos) << tags.out;

  // A service straight from the upstream's image: resolved (and made local) at create.
  auto svc = d.cli(
      "service create bb --image docker.io/library/busybox:stable --port 8080 "
      "--no-wait --json");
  ASSERT_EQ(svc.code, 0) << svc.all();
  // (busybox's own CMD exits at once, so the deployment fails; its digest is what counts.)
  auto show = d.cli("service deployments bb --json");
  std::string digest = "sha256:" + run("skopeo inspect --raw --tls-verify=false docker://" +
                                       hub.host() + "/library/busybox:stable | sha256sum")
                                       .out.substr(0, 64);
  EXPECT_NE(show.out.find(digest), std::string::npos) << show.out;
  // Read as docker reads them: docker.io/busybox is docker.io/library/busybox, berth's own
  // host means the local repository, and another registry's image is never taken from the
  // default upstream in its place.
  auto build_from = [&](const std::string& from) {
    write_file(src + "/Dockerfile", "FROM " + from + "\nCMD [\"/bin/busybox\", \"true\"]\n");
    EXPECT_EQ(git("-C " + src + " commit -q -am '" + from + "'").code, 0);
    return d.cli("build start web-build");
  };
  auto hub_form = build_from("docker.io/busybox:stable");
  EXPECT_EQ(hub_form.code, 0) << hub_form.all();
  auto own = build_from(d.host() + "/docker.io/library/busybox:stable");
  EXPECT_EQ(own.code, 0) << own.all();
  auto other = build_from("ghcr.io/org/app:1");
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.all().find("base image ghcr.io/org/app:1 is on ghcr.io, which berth does not "
                             "pull through: add it with `berth registry upstream create"),
            std::string::npos)
      << other.all();
  EXPECT_EQ(hub.count_requests("/v2/org/app"), 0) << "nothing asked of the default upstream";
  // Without a default upstream an unknown base image still says what to do.
  ASSERT_EQ(d.cli("registry upstream rm dockerhub").code, 0);
  write_file(src + "/Dockerfile", "FROM alpine:3.19\n");
  ASSERT_EQ(git("-C " + src + " commit -q -am two").code, 0);
  auto failed = d.cli("build start web-build");
  EXPECT_NE(failed.code, 0);
  EXPECT_NE(failed.all().find("base image alpine:3.19 is not in berth's registry"),
            std::string::npos)
      << failed.all();
}

// The issue's own command: docker pull HOST/docker.io/library/busybox:stable, fetched once.
TEST(PullThroughDocker, DockerPullsThroughBerthAndFetchesOnce) {
  if (::geteuid() != 0 || !have("dockerd") || !have("skopeo") || !have("umoci") ||
      !Distribution::available()) {
    GTEST_SKIP() << "needs root, dockerd, skopeo, umoci and docker-registry";
  }
  TempDir work;
  std::string layout = work / "layout";
  ASSERT_EQ(make_busybox_layout(layout, "stable"), "");
  Distribution hub({});
  std::string why;
  ASSERT_TRUE(hub.start(&why)) << why;
  auto seed = run("skopeo copy -q --dest-tls-verify=false oci:" + layout + ":stable docker://" +
                  hub.host() + "/library/busybox:stable 2>&1");
  ASSERT_EQ(seed.code, 0) << seed.all();
  TestDaemon d;
  ASSERT_EQ(
      d.cli("registry upstream create dockerhub --url " + hub.url() + " --prefix docker.io").code,
      0);
  Dockerd dockerd;
  ASSERT_TRUE(dockerd.start(&why)) << "cannot start dockerd: " << why;
  const std::string docker = dockerd.docker_cmd();
  auto login = run("printf '%s' '" + d.admin_secret() + "' | " + docker + " login -u " +
                   d.admin_key_id() + " --password-stdin " + d.host());
  ASSERT_EQ(login.code, 0) << login.all();
  std::string ref = d.host() + "/docker.io/library/busybox:stable";
  auto pull = run(docker + " pull " + ref + " 2>&1");
  ASSERT_EQ(pull.code, 0) << pull.all();
  auto pulled = run(docker + " image inspect --format '{{json .RootFS.Layers}}' " + ref);
  EXPECT_EQ(pulled.code, 0) << pulled.all();
  EXPECT_NE(pulled.out.find("sha256:"), std::string::npos) << pulled.out;
  // Once more after docker forgot it: served by berth, nothing fetched again.
  int blobs = hub.count_requests("\"GET /v2/library/busybox/blobs/");
  EXPECT_EQ(blobs, 2) << hub.log();
  ASSERT_EQ(run(docker + " rmi " + ref).code, 0);
  ASSERT_EQ(run(docker + " pull " + ref + " 2>&1").code, 0);
  EXPECT_EQ(hub.count_requests("\"GET /v2/library/busybox/blobs/"), blobs);
}

// A multi-platform index pulled through: kept whole, while a service takes only the host's
// platform (the other platform's manifest and blobs are never fetched); a client asking for
// every platform gets them all.
TEST(PullThroughIndex, ServicesTakeTheHostPlatformAndTheIndexIsKeptWhole) {
  if (::geteuid() != 0 || !have("runc") || !have("skopeo") || !have("umoci") || !have("jq") ||
      !Distribution::available()) {
    GTEST_SKIP() << "needs root, runc, skopeo, umoci, jq and docker-registry";
  }
  TempDir work;
  std::string layout = work / "layout";
  ASSERT_EQ(make_busybox_layout(layout, "amd"), "");
  ASSERT_EQ(make_busybox_layout(layout, "arm", {{"etc/arch", "arm64\n"}}), "");
  ASSERT_EQ(run("umoci config --image " + layout + ":arm --architecture arm64").code, 0);
  Distribution hub({});
  std::string why;
  ASSERT_TRUE(hub.start(&why)) << why;
  struct Child {
    std::string tag, arch, digest, size, layer;
  };
  Child kids[] = {{"arm", "arm64", "", "", ""}, {"amd", "amd64", "", "", ""}};
  for (auto& k : kids) {
    auto c = run("skopeo copy -q --dest-tls-verify=false oci:" + layout + ":" + k.tag +
                 " docker://" + hub.host() + "/library/multi:" + k.tag + " 2>&1");
    ASSERT_EQ(c.code, 0) << c.all();
    std::string raw = work / (k.tag + ".json");
    ASSERT_EQ(run("skopeo inspect --raw --tls-verify=false docker://" + hub.host() +
                  "/library/multi:" + k.tag + " > " + raw)
                  .code,
              0);
    k.digest = "sha256:" + run("sha256sum < " + raw).out.substr(0, 64);
    k.size = trim(run("wc -c < " + raw).out);
    k.layer = trim(run("jq -r '.layers[-1].digest' " + raw).out);
  }
  std::string index =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)";
  for (size_t i = 0; i < 2; ++i) {
    index += std::string(i ? "," : "") +
             R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
             kids[i].digest + R"(","size":)" + kids[i].size +
             R"(,"platform":{"os":"linux","architecture":")" + kids[i].arch + R"("}})";
  }
  index += "]}";
  write_file(work / "index.json", index);
  auto put =
      run("curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: "
          "application/vnd.oci.image.index.v1+json' --data-binary @" +
          (work / "index.json") + " " + hub.url() + "/v2/library/multi/manifests/1");
  ASSERT_EQ(put.out, "201") << put.all();
  std::string index_digest =
      "sha256:" + run("sha256sum < " + (work / "index.json")).out.substr(0, 64);

  TestDaemon d;
  ASSERT_EQ(d.cli("registry upstream create hub --url " + hub.url() + " --prefix docker.io").code,
            0);
  auto svc = d.cli("service create multi --image docker.io/library/multi:1 --port 8080 --no-wait");
  ASSERT_EQ(svc.code, 0) << svc.all();
  auto deps = d.cli("service deployments multi --json");
  EXPECT_NE(deps.out.find(index_digest), std::string::npos) << deps.out;
  // The host's child and its layer came through; the other platform's did not.
  EXPECT_EQ(hub.count_requests("\"GET /v2/library/multi/manifests/" + kids[1].digest), 1)
      << hub.log();
  EXPECT_EQ(hub.count_requests("\"GET /v2/library/multi/blobs/" + kids[1].layer), 1);
  EXPECT_EQ(hub.count_requests("\"GET /v2/library/multi/manifests/" + kids[0].digest), 0);
  EXPECT_EQ(hub.count_requests("\"GET /v2/library/multi/blobs/" + kids[0].layer), 0);
  // The whole index is there for a client that wants every platform.
  auto all =
      run("skopeo copy -q --all --src-tls-verify=false --src-creds '" + d.creds() + "' docker://" +
          d.host() + "/docker.io/library/multi:1 oci:" + (work / "out") + ":x 2>&1");
  ASSERT_EQ(all.code, 0) << all.all();
  auto got = run("jq -r '.manifests[0].digest' " + (work / "out") + "/index.json");
  EXPECT_EQ(trim(got.out), index_digest);
}

}  // namespace
}  // namespace berth::test
