// SPDX-License-Identifier: Apache-2.0
// docker pushes to and pulls from a berthd whose blobs are in S3 (the harness's RGW): with
// redirect_pulls on, docker follows the 307s to presigned RGW URLs for the layers; on
// PostgreSQL + S3 with the default settings, berthd streams them. The pulled image is the one
// pushed.
#include <gtest/gtest.h>

#include "e2e/e2e_util.h"
#include "storage/s3.h"
#include "support/berthd_home.h"
#include "support/blob_backend.h"
#include "support/harness.h"
#include "support/rgw.h"

namespace berth::test {
namespace {

// docker pushes web/app:v1 (busybox) to berthd and pulls it back after removing it; the layers
// are in bucket and not under data. redirect: berthd answered the layer GETs with 307s to
// presigned URLs; otherwise it streamed them itself (200s).
void docker_round_trip(const std::string& data, const std::vector<std::string>& args,
                       const std::string& bucket, bool redirect) {
  TempDir work;
  std::string layout = work / "src";
  ASSERT_EQ(make_busybox_layout(layout, "v1", {{"srv/index.html", "hello from S3\n"}}), "");
  Dockerd dockerd;
  std::string why;
  ASSERT_TRUE(dockerd.start(&why)) << "cannot start dockerd: " << why;
  const std::string docker = dockerd.docker_cmd();
  std::string archive = work / "app.tar";
  auto conv = run("skopeo copy oci:" + layout + ":v1 docker-archive:" + archive + ":web/app:v1");
  ASSERT_EQ(conv.code, 0) << conv.all();
  ASSERT_EQ(run(docker + " load -i " + archive).code, 0);
  auto before_id = run(docker + " image inspect --format '{{.Id}}' web/app:v1");
  ASSERT_EQ(before_id.code, 0) << before_id.all();

  BerthdProcess berthd(data, args);
  ASSERT_NO_FATAL_FAILURE(berthd.start());
  ASSERT_EQ(berth_cli(berthd, "repo create web/app").code, 0);
  auto login = run("printf '%s' '" + berthd.admin_secret() + "' | " + docker + " login -u " +
                   berthd.admin_key_id() + " --password-stdin " + berthd.host());
  ASSERT_EQ(login.code, 0) << login.all();
  const std::string remote = berthd.host() + "/web/app:v1";
  ASSERT_EQ(run(docker + " tag web/app:v1 " + remote).code, 0);
  auto push = run("timeout 120 " + docker + " push " + remote);
  ASSERT_EQ(push.code, 0) << push.all() << "\nberthd log:\n" << read_file(berthd.log_path());

  // The layers are in the bucket, not in the data directory.
  auto* rgw = RgwServer::shared();
  auto listed = run(rgw->curl_s3() + "'" + rgw->endpoint() + "/" + bucket +
                    "?list-type=2&prefix=blobs%2Fsha256%2F'");
  EXPECT_NE(listed.out.find("<Key>blobs/sha256/"), std::string::npos) << listed.out;
  auto files = run("find " + data + "/blobs -type f 2>/dev/null");
  EXPECT_EQ(files.out, "") << files.out;

  ASSERT_EQ(run(docker + " rmi " + remote + " web/app:v1").code, 0);
  auto pull = run("timeout 120 " + docker + " pull " + remote);
  ASSERT_EQ(pull.code, 0) << pull.all() << "\nberthd log:\n" << read_file(berthd.log_path());
  auto after_id = run(docker + " image inspect --format '{{.Id}}' " + remote);
  EXPECT_EQ(after_id.out, before_id.out);
  // (after berthd exits: its log is buffered until then)
  EXPECT_EQ(berthd.terminate(), 0);
  auto answered = [&](const char* code) {
    return run("grep -c 'GET /v2/web/app/blobs/sha256:[0-9a-f]* " + std::string(code) + " ' " +
               berthd.log_path())
        .out;
  };
  EXPECT_NE(answered(redirect ? "307" : "200"), "0\n") << read_file(berthd.log_path());
  EXPECT_EQ(answered(redirect ? "200" : "307"), "0\n") << read_file(berthd.log_path());
}

TEST(DockerS3Test, PushAndRedirectedPullRoundTrip) {
  BlobHome home(BlobBackend::S3);
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  config::Config c;
  home.apply(c, /*redirect_pulls=*/true);
  TempDir work;
  std::string conf = work / "berthd.yaml";
  write_file(conf, "version: 1\nstorage:\n  driver: s3\n  s3:\n    endpoint: " +
                       c.storage.s3.endpoint + "\n    bucket: " + c.storage.s3.bucket +
                       "\n    access_key_id_file: " + c.storage.s3.access_key_id_file +
                       "\n    secret_access_key_file: " + c.storage.s3.secret_access_key_file +
                       "\n    redirect_pulls: true\n");
  TempDir data;
  docker_round_trip(data.path(), {"--config", conf}, home.bucket(), true);
}

// The scale-out deployment as docs/scale-out.md sets it up: metadata in PostgreSQL, blobs in S3
// streamed through berthd (redirect_pulls off, the default).
TEST(DockerS3Test, PushAndStreamedPullOnPostgresAndS3) {
  BerthdHome home(StateBackend::PostgresS3);
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  // As on a node that did not take the push: no local copies kept, the pull reads the bucket.
  std::string yaml = read_file(home.config_path());
  auto at = yaml.find("    path_style: true\n");
  ASSERT_NE(at, std::string::npos) << yaml;
  yaml.insert(at, "    cache_pushed: false\n");
  write_file(home.config_path(), yaml);
  docker_round_trip(home.data_dir(), home.berthd_args(), home.blobs().bucket(), false);
}

}  // namespace
}  // namespace berth::test
