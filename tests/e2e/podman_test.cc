// SPDX-License-Identifier: Apache-2.0
// podman pushes to berth and pulls back: the third real client the registry must serve.
#include <gtest/gtest.h>
#include <unistd.h>

#include "e2e/e2e_util.h"
#include "support/blob_backend.h"
#include "support/harness.h"

namespace berth::test {
namespace {

// On the local files; on S3 with redirect_pulls (podman follows the 307s to RGW); on PostgreSQL
// + S3 with blobs streamed through berthd (the default).
class PodmanTest : public ::testing::TestWithParam<BlobBackend> {};

TEST_P(PodmanTest, PushPullRoundTrip) {
  ASSERT_TRUE(have("podman")) << "podman is missing: scripts/setup --test installs it";
  BlobHome home(GetParam());
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  const bool redirect = GetParam() == BlobBackend::S3;
  TestDaemon d([&](config::Config& c) { home.apply(c, redirect); });
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  TempDir work;
  std::string layout = work / "layout";
  ASSERT_EQ(make_busybox_layout(layout, "v1"), "");
  // A private store, so the machine's own podman state is never touched.
  std::string podman = "podman --root " + work / "root" + " --runroot " + work / "run" +
                       " --storage-driver vfs --cgroup-manager cgroupfs --events-backend none";

  // podman names an oci: image after its path, which must be lowercase; TempDir's is not.
  std::string link = "/tmp/berth-podman-" + std::to_string(::getpid()) + "-layout";
  ASSERT_EQ(run("ln -sfn " + layout + " " + link).code, 0);
  auto load = run(podman + " pull -q oci:" + link + ":v1");
  run("rm -f " + link);
  ASSERT_EQ(load.code, 0) << load.all();
  std::string image_id = trim(load.out);
  ASSERT_EQ(image_id.size(), 64u) << load.all();

  std::string ref = d.host() + "/web/app:v1";
  auto push = run(podman + " push --tls-verify=false --creds " + d.creds() + " " + image_id +
                  " docker://" + ref);
  ASSERT_EQ(push.code, 0) << push.all();

  if (home.on_s3()) {
    auto config =
        run("curl -s" + d.curl_auth() + d.url() + "/v2/web/app/manifests/v1 -H 'Accept: " +
            "application/vnd.oci.image.manifest.v1+json' | jq -r .config.digest");
    auto code = run("curl -s -o /dev/null -w '%{http_code}'" + d.curl_auth() + d.url() +
                    "/v2/web/app/blobs/" + trim(config.out));
    EXPECT_EQ(code.out, redirect ? "307" : "200")
        << (redirect ? "blob GETs are redirected to S3" : "blob GETs stream through berthd");
  }
  auto rmi = run(podman + " rmi -a -f");
  ASSERT_EQ(rmi.code, 0) << rmi.all();
  auto pull = run(podman + " pull -q --tls-verify=false --creds " + d.creds() + " " + ref);
  ASSERT_EQ(pull.code, 0) << pull.all();
  // The image ID is the config digest: the same config came back.
  EXPECT_EQ(trim(pull.out), image_id);

  // The digest podman recorded is the one the registry serves for the tag.
  auto digest = run(podman + " images --digests --format '{{.Digest}}' " + ref);
  ASSERT_EQ(digest.code, 0) << digest.all();
  auto head = run("curl -sI" + d.curl_auth() + d.url() + "/v2/web/app/manifests/v1");
  EXPECT_EQ(trim(digest.out), header_value(head.out, "Docker-Content-Digest")) << head.out;
}

INSTANTIATE_TEST_SUITE_P(Backends, PodmanTest, all_registry_backends(), BlobBackendName());

}  // namespace
}  // namespace berth::test
