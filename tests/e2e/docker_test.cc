// SPDX-License-Identifier: Apache-2.0
// A real docker engine (private dockerd) pushes to and pulls from berthd: the digest docker
// reports is the one the registry serves, the pulled image has the same layers, and a push to a
// repository that does not exist says how to create it. berthd runs as a child process so a
// crash shows up as a test failure instead of taking the test binary down.
#include <gtest/gtest.h>

#include <regex>

#include "e2e/e2e_util.h"
#include "support/harness.h"

namespace berth::test {
namespace {

constexpr const char* kDockerV2 = "application/vnd.docker.distribution.manifest.v2+json";
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";

std::string pushed_digest(const std::string& push_output) {
  std::smatch m;
  static const std::regex re("digest: (sha256:[0-9a-f]{64})");
  return std::regex_search(push_output, m, re) ? m[1].str() : "";
}

TEST(DockerTest, PushPullRoundTripAndMissingRepository) {
  TempDir work;
  std::string layout = work / "src";
  ASSERT_EQ(make_busybox_layout(layout, "v1", {{"srv/index.html", "hello from berth\n"}}), "");

  Dockerd dockerd;
  std::string why;
  ASSERT_TRUE(dockerd.start(&why)) << "cannot start dockerd: " << why;
  const std::string docker = dockerd.docker_cmd();

  // Into docker without any network: OCI layout -> docker-archive -> docker load.
  std::string archive = work / "app.tar";
  auto conv = run("skopeo copy oci:" + layout + ":v1 docker-archive:" + archive + ":web/app:v1");
  ASSERT_EQ(conv.code, 0) << conv.all();
  auto load = run(docker + " load -i " + archive);
  ASSERT_EQ(load.code, 0) << load.all();
  auto before = run(docker + " image inspect --format '{{json .RootFS.Layers}}' web/app:v1");
  ASSERT_EQ(before.code, 0) << before.all();
  auto before_id = run(docker + " image inspect --format '{{.Id}}' web/app:v1");
  ASSERT_EQ(before_id.code, 0) << before_id.all();

  TempDir data;
  BerthdProcess berthd(data.path());
  ASSERT_NO_FATAL_FAILURE(berthd.start());
  auto created = berth_cli(berthd, "repo create web/app");
  ASSERT_EQ(created.code, 0) << created.all();

  // A wrong secret fails docker login (and stores nothing in docker's config).
  auto wrong = run("printf 'not-the-secret' | " + docker + " login -u " + berthd.admin_key_id() +
                   " --password-stdin " + berthd.host());
  EXPECT_NE(wrong.code, 0) << wrong.all();
  EXPECT_NE(wrong.all().find("unauthorized"), std::string::npos) << wrong.all();

  // docker login as admin: docker keeps the key in its private --config dir.
  auto login = run("printf '%s' '" + berthd.admin_secret() + "' | " + docker + " login -u " +
                   berthd.admin_key_id() + " --password-stdin " + berthd.host());
  ASSERT_EQ(login.code, 0) << login.all() << "\nberthd log:\n" << read_file(berthd.log_path());

  // docker push to 127.0.0.1:PORT/web/app:v1 (loopback registries are insecure-allowed).
  const std::string remote = berthd.host() + "/web/app:v1";
  ASSERT_EQ(run(docker + " tag web/app:v1 " + remote).code, 0);
  auto push = run("timeout 120 " + docker + " push " + remote);
  ASSERT_EQ(push.code, 0) << push.all() << "\nberthd log:\n" << read_file(berthd.log_path());
  std::string digest = pushed_digest(push.all());
  ASSERT_FALSE(digest.empty()) << push.all();

  // The registry serves that manifest under that digest.
  auto head =
      run("curl -sfI" + berthd.curl_auth() + "-H 'Accept: " + std::string(kDockerV2) +
          "' -H 'Accept: " + kOciManifest + "' " + berthd.url() + "/v2/web/app/manifests/v1");
  ASSERT_EQ(head.code, 0) << head.all();
  EXPECT_EQ(header_value(head.out, "Docker-Content-Digest"), digest) << head.out;
  auto by_digest = run("curl -sf" + berthd.curl_auth() + "-H 'Accept: " + std::string(kDockerV2) +
                       "' " + berthd.url() + "/v2/web/app/manifests/" + digest + " | sha256sum");
  ASSERT_EQ(by_digest.code, 0) << by_digest.all();
  EXPECT_EQ("sha256:" + by_digest.out.substr(0, 64), digest);

  // Forget the image locally, pull it back, and compare.
  auto rmi = run(docker + " rmi " + remote + " web/app:v1");
  ASSERT_EQ(rmi.code, 0) << rmi.all();
  ASSERT_NE(run(docker + " image inspect " + before_id.out).code, 0) << "image still present";
  auto pull = run("timeout 120 " + docker + " pull " + remote);
  ASSERT_EQ(pull.code, 0) << pull.all() << "\nberthd log:\n" << read_file(berthd.log_path());
  EXPECT_NE(pull.out.find("Digest: " + digest), std::string::npos) << pull.out;
  auto repo_digest = run(docker + " image inspect --format '{{index .RepoDigests 0}}' " + remote);
  ASSERT_EQ(repo_digest.code, 0) << repo_digest.all();
  EXPECT_EQ(trim(repo_digest.out), berthd.host() + "/web/app@" + digest);
  auto after = run(docker + " image inspect --format '{{json .RootFS.Layers}}' " + remote);
  ASSERT_EQ(after.code, 0) << after.all();
  EXPECT_EQ(after.out, before.out);
  auto after_id = run(docker + " image inspect --format '{{.Id}}' " + remote);
  EXPECT_EQ(after_id.out, before_id.out);
  // docker save of the pulled image lists the same layer diff IDs in its config.
  std::string saved = work / "saved.tar";
  auto save = run(docker + " save -o " + saved + " " + remote);
  ASSERT_EQ(save.code, 0) << save.all();
  auto saved_layers =
      run("set -o pipefail; cfg=$(tar -xOf " + saved + " manifest.json | jq -r '.[0].Config'); " +
          "tar -xOf " + saved + " \"$cfg\" | jq -c .rootfs.diff_ids");
  ASSERT_EQ(saved_layers.code, 0) << saved_layers.all();
  EXPECT_EQ(trim(saved_layers.out), trim(before.out));

  // A push to a repository that does not exist fails with the sentence that fixes it.
  const std::string nope = berthd.host() + "/web/nope:v1";
  ASSERT_EQ(run(docker + " tag " + remote + " " + nope).code, 0);
  // (docker retries a dead registry for over a minute; the timeout keeps a crash visible.)
  auto denied = run("timeout 25 " + docker + " push " + nope);
  EXPECT_NE(denied.code, 0) << denied.all();
  EXPECT_NE(denied.all().find(
                "repository web/nope does not exist; create it with: berth repo create web/nope"),
            std::string::npos)
      << denied.all();
  EXPECT_TRUE(berthd.alive()) << "berthd died during the push to web/nope; its log:\n"
                              << read_file(berthd.log_path());
  if (berthd.alive()) {
    EXPECT_EQ(berthd.terminate(), 0);
  }
}

// `berth domain link --registry`: docker logs in and pushes to berthd under a DNS name, over TLS
// it verifies against berth's own CA, with no insecure-registries entry. berthd listens on ::1:
// docker counts 127.0.0.0/8 as insecure (it would skip verification there) but not ::1, so the
// login below fails until docker is given the CA, which shows that TLS was verified.
TEST(DockerTest, LoginAndPushOverTlsToALinkedRegistryName) {
  TempDir work;
  std::string layout = work / "src";
  ASSERT_EQ(make_busybox_layout(layout, "v1", {{"srv/index.html", "over tls\n"}}), "");
  TempDir data;
  BerthdProcess berthd(data.path());
  berthd.listen_address("[::1]");
  ASSERT_NO_FATAL_FAILURE(berthd.start());
  ASSERT_EQ(berthd.cli("repo create web/app").code, 0);
  ASSERT_EQ(berthd.cli("dns zone create example.com").code, 0);
  auto link = berthd.cli("domain link --registry registry.example.com");
  ASSERT_EQ(link.code, 0) << link.all() << read_file(berthd.log_path());
  ASSERT_TRUE(link.out.find("registry.example.com: ACTIVE") != std::string::npos) << link.out;
  // berth's DNS points the name at the listener's address.
  auto aaaa = run("dig @127.0.0.1 -p " + std::to_string(berthd.dns_port()) +
                  " +short registry.example.com AAAA");
  EXPECT_EQ(trim(aaaa.out), "::1");

  const std::string name = "registry.example.com:" + std::to_string(berthd.port());
  std::string etc = work / "etc-docker";
  std::string certs = etc + "/certs.d/" + name;
  ASSERT_EQ(run("mkdir -p " + certs).code, 0);
  write_file(work / "hosts", "127.0.0.1 localhost\n::1 registry.example.com\n");
  Dockerd dockerd;
  dockerd.private_etc(etc, work / "hosts");
  std::string why;
  ASSERT_TRUE(dockerd.start(&why)) << "cannot start dockerd: " << why;
  const std::string docker = dockerd.docker_cmd();
  std::string login = "printf '%s' '" + berthd.admin_secret() + "' | " + docker + " login -u " +
                      berthd.admin_key_id() + " --password-stdin " + name;

  // Without berth's root, docker refuses the certificate.
  auto untrusted = run("timeout 60 " + login);
  EXPECT_NE(untrusted.code, 0) << untrusted.all();
  EXPECT_NE(untrusted.all().find("certificate signed by unknown authority"), std::string::npos)
      << untrusted.all();

  auto ca = berthd.cli("ca export");
  ASSERT_EQ(ca.code, 0) << ca.all();
  write_file(certs + "/ca.crt", ca.out);
  auto trusted = run("timeout 60 " + login);
  ASSERT_EQ(trusted.code, 0) << trusted.all() << "\nberthd log:\n" << read_file(berthd.log_path());

  std::string archive = work / "app.tar";
  auto conv = run("skopeo copy oci:" + layout + ":v1 docker-archive:" + archive + ":web/app:v1");
  ASSERT_EQ(conv.code, 0) << conv.all();
  ASSERT_EQ(run(docker + " load -i " + archive).code, 0);
  const std::string remote = name + "/web/app:v1";
  ASSERT_EQ(run(docker + " tag web/app:v1 " + remote).code, 0);
  auto push = run("timeout 120 " + docker + " push " + remote);
  ASSERT_EQ(push.code, 0) << push.all() << "\nberthd log:\n" << read_file(berthd.log_path());
  std::string digest = pushed_digest(push.all());
  ASSERT_FALSE(digest.empty()) << push.all();
  // What docker pushed over TLS is what the registry serves over plain HTTP on the same port.
  auto head = run("curl -sfI" + berthd.curl_auth() + "-H 'Accept: " + std::string(kDockerV2) +
                  "' " + berthd.url() + "/v2/web/app/manifests/v1");
  ASSERT_EQ(head.code, 0) << head.all();
  EXPECT_EQ(header_value(head.out, "Docker-Content-Digest"), digest) << head.out;
  EXPECT_EQ(berthd.terminate(), 0);
}

}  // namespace
}  // namespace berth::test
