// SPDX-License-Identifier: Apache-2.0
// The registry on S3 blob storage (RGW), where it differs from fs: pulls redirected to
// presigned URLs, a chunked push of several parts that leaves nothing but its blob in the
// bucket, gc deleting from the bucket, and fsck reading it.
#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include "integration/registry_client.h"
#include "storage/s3.h"
#include "support/blob_backend.h"
#include "support/harness.h"
#include "support/rgw.h"

namespace berth::test {
namespace {

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('A' + (i * 13 + i / 777) % 50);
  }
  return s;
}

class RegistryS3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    s3_ = std::make_unique<storage::S3Client>(RgwServer::shared()->client_options(home_.bucket()));
  }

  BlobHome home_{BlobBackend::S3};
  std::unique_ptr<storage::S3Client> s3_;
};

TEST_F(RegistryS3Test, RedirectPullsAnswer307ToAPresignedUrl) {
  TestDaemon d([this](config::Config& c) { home_.apply(c, /*redirect_pulls=*/true); });
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string blob = "bytes clients fetch from S3 themselves";
  std::string dg = sha256_digest(blob);
  ASSERT_EQ(c.push_blob("web/app", blob).status, 201);
  auto g = c.get("/v2/web/app/blobs/" + dg);
  ASSERT_EQ(g.status, 307) << g.describe();
  EXPECT_EQ(g.header("Docker-Content-Digest"), dg);
  std::string loc = g.header("Location");
  EXPECT_EQ(loc.rfind(RgwServer::shared()->endpoint() + "/" + home_.bucket() + "/blobs/sha256/", 0),
            0u)
      << loc;
  EXPECT_NE(loc.find("X-Amz-Signature="), std::string::npos);
  auto fetched = run("curl -s '" + loc + "'");
  EXPECT_EQ(fetched.out, blob);
  auto ranged = run("curl -s -r 6-12 '" + loc + "'");
  EXPECT_EQ(ranged.out, "clients");
  // HEAD answers from the registry's own records; authorization still comes first.
  EXPECT_EQ(c.head("/v2/web/app/blobs/" + dg).status, 200);
  RegistryClient anonymous(d.port(), "");
  EXPECT_EQ(anonymous.get("/v2/web/app/blobs/" + dg).status, 401);
}

TEST_F(RegistryS3Test, ChunkedPushOfSeveralPartsLeavesOnlyItsBlob) {
  TestDaemon d([this](config::Config& c) { home_.apply(c); });
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string blob = pattern(23 * 1024 * 1024 + 5);
  std::string dg = sha256_digest(blob);
  auto post = c.request("POST", "/v2/web/app/blobs/uploads/");
  ASSERT_EQ(post.status, 202) << post.describe();
  std::string loc = post.header("Location");
  size_t half = blob.size() / 2;
  auto p1 = c.request("PATCH", loc, blob.substr(0, half),
                      {{"Content-Range", "0-" + std::to_string(half - 1)}});
  ASSERT_EQ(p1.status, 202) << p1.describe();
  auto p2 =
      c.request("PATCH", p1.header("Location"), blob.substr(half),
                {{"Content-Range", std::to_string(half) + "-" + std::to_string(blob.size() - 1)}});
  ASSERT_EQ(p2.status, 202) << p2.describe();
  auto put = c.request("PUT", with_digest(p2.header("Location"), dg));
  ASSERT_EQ(put.status, 201) << put.describe();
  auto g = c.get("/v2/web/app/blobs/" + dg, {{"Range", "bytes=12582910-12582919"}});
  ASSERT_EQ(g.status, 206) << g.describe();
  EXPECT_EQ(g.body, blob.substr(12582910, 10));
  EXPECT_TRUE(home_.read_blob(d.data_dir(), dg.substr(7)) == blob);
  EXPECT_TRUE(s3_->list_multipart_uploads("")->empty());
  auto objects = s3_->list_objects("");
  ASSERT_TRUE(objects);
  ASSERT_EQ(objects->size(), 1u);
  EXPECT_EQ((*objects)[0].key, storage::blob_key(dg.substr(7)));
  EXPECT_EQ(run("ls -A " + d.data_dir() + "/uploads").out, "");
}

TEST_F(RegistryS3Test, GcDeletesFromTheBucketAndFsckReadsIt) {
  TestDaemon d([this](config::Config& c) {
    home_.apply(c);
    c.registry.gc_grace = std::chrono::seconds(0);
  });
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  push_image(c, "web/app", "v1", image_config(), {"a referenced layer"});
  std::string loose = "nobody references this blob";
  ASSERT_EQ(c.push_blob("web/app", loose).status, 201);
  std::string loose_key = storage::blob_key(sha256_digest(loose).substr(7));
  ASSERT_TRUE(s3_->head_object(loose_key));
  for (std::time_t t = std::time(nullptr); std::time(nullptr) <= t;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto gc = d.cli("gc --json");
  ASSERT_EQ(gc.code, 0) << gc.all();
  EXPECT_EQ(jq(gc.out, ".blobs_deleted"), "1") << gc.out;
  auto gone = s3_->head_object(loose_key);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::NotFound);

  // fsck through the same configuration (a berthd is running: --force).
  auto* rgw = RgwServer::shared();
  TempDir conf;
  config::Config cfg;
  home_.apply(cfg);
  write_file(conf / "berthd.yaml",
             "version: 1\ndata: " + d.data_dir() + "\nstorage:\n  driver: s3\n  s3:\n" +
                 "    endpoint: " + rgw->endpoint() + "\n    bucket: " + home_.bucket() +
                 "\n    access_key_id_file: " + cfg.storage.s3.access_key_id_file +
                 "\n    secret_access_key_file: " + cfg.storage.s3.secret_access_key_file + "\n");
  auto fsck = run(bin("berthd") + " fsck --config " + (conf / "berthd.yaml") + " --force");
  EXPECT_EQ(fsck.code, 0) << fsck.all();
  EXPECT_NE(fsck.out.find("checked 2 blobs"), std::string::npos) << fsck.all();
  // A blob whose object changed behind berth's back is a problem fsck names.
  auto layer_key = storage::blob_key(sha256_digest("a referenced layer").substr(7));
  ASSERT_TRUE(s3_->put_object(layer_key, "tampered"));
  auto bad = run(bin("berthd") + " fsck --config " + (conf / "berthd.yaml") + " --force");
  EXPECT_EQ(bad.code, 1) << bad.all();
  EXPECT_NE(bad.out.find("content hashes to"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace berth::test
