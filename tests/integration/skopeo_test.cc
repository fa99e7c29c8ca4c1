// SPDX-License-Identifier: Apache-2.0
// skopeo pushes an OCI layout built from busybox-static and pulls it back byte-identical, on
// both blob storages (fs, and S3 with pulls streamed by berthd or redirected to S3), and with
// the metadata on PostgreSQL.
#include <gtest/gtest.h>

#include "support/blob_backend.h"
#include "support/harness.h"

namespace berth::test {
namespace {

struct SkopeoCase {
  BlobBackend backend;
  bool redirect_pulls;
};

class SkopeoTest : public ::testing::TestWithParam<SkopeoCase> {};

TEST_P(SkopeoTest, PushPullRoundTripIsByteIdentical) {
  BlobHome home(GetParam().backend);
  if (!home.skip_reason().empty()) {
    GTEST_SKIP() << home.skip_reason();
  }
  bool redirect = GetParam().redirect_pulls;
  TestDaemon d([&home, redirect](config::Config& c) { home.apply(c, redirect); });
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  TempDir work;
  std::string layout = work / "src";
  ASSERT_EQ(make_busybox_layout(layout, "v1"), "");

  auto push = run("skopeo copy --dest-tls-verify=false --dest-creds " + d.creds() +
                  " oci:" + layout + ":v1 docker://" + d.host() + "/web/app:v1");
  ASSERT_EQ(push.code, 0) << push.all();

  std::string back = work / "back";
  auto pull = run("skopeo copy --src-tls-verify=false --src-creds " + d.creds() + " docker://" +
                  d.host() + "/web/app:v1 oci:" + back + ":v1");
  ASSERT_EQ(pull.code, 0) << pull.all();

  // Same manifest digest in both layouts, and every blob present byte for byte.
  auto src_index = run("jq -r '.manifests[0].digest' " + layout + "/index.json");
  auto dst_index = run("jq -r '.manifests[0].digest' " + back + "/index.json");
  ASSERT_EQ(src_index.code, 0) << src_index.all();
  EXPECT_EQ(src_index.out, dst_index.out);
  // (umoci leaves superseded blobs in the source layout, so compare what came back.)
  auto cmp = run("set -e; n=0; for f in " + back + "/blobs/sha256/*; do cmp \"$f\" " + layout +
                 "/blobs/sha256/$(basename \"$f\"); n=$((n+1)); done; echo $n");
  EXPECT_EQ(cmp.code, 0) << cmp.all();
  EXPECT_EQ(cmp.out, "3\n");  // manifest, config, one layer

  if (home.on_s3()) {
    // The config blob's GET: a 307 to a presigned URL, or the bytes from berthd.
    auto config =
        run("jq -r .config.digest " + back + "/blobs/sha256/" + trimmed(dst_index.out).substr(7));
    auto code = run("curl -s -o /dev/null -w '%{http_code}'" + d.curl_auth() + d.url() +
                    "/v2/web/app/blobs/" + trimmed(config.out));
    EXPECT_EQ(code.out, redirect ? "307" : "200") << config.all();
  }

  auto ls = d.cli("image ls web/app");
  EXPECT_EQ(ls.code, 0);
  EXPECT_NE(ls.out.find("v1"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("linux/amd64"), std::string::npos) << ls.out;
}

INSTANTIATE_TEST_SUITE_P(Backends, SkopeoTest,
                         ::testing::Values(SkopeoCase{BlobBackend::Fs, false},
                                           SkopeoCase{BlobBackend::S3, false},
                                           SkopeoCase{BlobBackend::S3, true},
                                           SkopeoCase{BlobBackend::PostgresS3, false}),
                         [](const ::testing::TestParamInfo<SkopeoCase>& p) {
                           return blob_backend_name(p.param.backend) +
                                  (p.param.redirect_pulls ? "RedirectPulls" : "");
                         });

}  // namespace
}  // namespace berth::test
