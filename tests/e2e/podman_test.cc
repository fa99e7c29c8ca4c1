// SPDX-License-Identifier: Apache-2.0
// podman pushes to berth and pulls back: the third real client the registry must serve.
#include <gtest/gtest.h>
#include <unistd.h>

#include "e2e/e2e_util.h"
#include "support/harness.h"

namespace berth::test {
namespace {

TEST(PodmanTest, PushPullRoundTrip) {
  ASSERT_TRUE(have("podman")) << "podman is missing: scripts/setup --test installs it";
  TestDaemon d;
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

}  // namespace
}  // namespace berth::test
