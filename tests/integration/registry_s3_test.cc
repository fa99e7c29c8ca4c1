// SPDX-License-Identifier: Apache-2.0
// The registry on S3 blob storage (RGW), where it differs from fs: pulls redirected to
// presigned URLs, a chunked push of several parts that leaves nothing but its blob in the
// bucket, gc deleting from the bucket, and fsck reading it; cold GETs streamed while the local
// copy is made (one S3 GET however many clients ask, never a complete wrong body); commits
// whose copy to the blob key is a multipart copy.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
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

// How many GETs of `key` RGW's access log shows (radosgw's beast frontend logs every request
// at debug_rgw 1, its default). The log is written asynchronously: a marker request goes
// after the ones counted, and the log is read once the marker is in it.
int rgw_gets_of(const std::string& bucket, const std::string& key) {
  static std::atomic<int> markers{0};
  auto* rgw = RgwServer::shared();
  std::string marker =
      std::string("count-marker-") + std::to_string(::getpid()) + "-" + std::to_string(++markers);
  run(rgw->curl_s3() + "-o /dev/null " + rgw->endpoint() + "/" + bucket + "/" + marker);
  std::string log;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((log = rgw->log()).find(marker) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "RGW's log never showed " << marker << "; its tail:\n"
                    << log.substr(log.size() > 3000 ? log.size() - 3000 : 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string needle = "\"GET /" + bucket + "/" + key + " ";
  int n = 0;
  for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// The files in DATA/cache/blobs ("" when none).
std::string cache_files(const std::string& data_dir) {
  return run("ls -A " + data_dir + "/cache/blobs").out;
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
  // Whole parts went to S3 while the chunks came, before the final PUT.
  auto ups = s3_->list_multipart_uploads("uploads/");
  ASSERT_TRUE(ups) << ups.error().message();
  EXPECT_EQ(ups->size(), 1u) << "no multipart upload before the PUT";
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

// registry.upload_ttl expires uploads left idle that long, not busy ones that started longer
// ago: a push that keeps sending past the TTL keeps the multipart upload its first parts went
// to, and the commit uses them.
TEST_F(RegistryS3Test, AnUploadStillSendingPastTheTtlKeepsItsParts) {
  TestDaemon d([this](config::Config& c) {
    home_.apply(c);
    c.registry.upload_ttl = std::chrono::seconds(3);
  });
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string blob = pattern(19 * 1024 * 1024 + 3);
  std::string dg = sha256_digest(blob);
  auto post = c.request("POST", "/v2/web/app/blobs/uploads/");
  ASSERT_EQ(post.status, 202) << post.describe();
  std::string loc = post.header("Location");
  // 10 MiB (one part goes out), then 1 MiB a second for 9 s: never idle for the TTL (3 s), but
  // the multipart upload is three TTLs old by the PUT.
  size_t at = 0;
  auto send = [&](size_t n) {
    auto r = c.request("PATCH", loc, blob.substr(at, n),
                       {{"Content-Range", std::to_string(at) + "-" + std::to_string(at + n - 1)}});
    ASSERT_EQ(r.status, 202) << r.describe();
    loc = r.header("Location");
    at += n;
  };
  ASSERT_NO_FATAL_FAILURE(send(10 * 1024 * 1024 + 1));
  ASSERT_EQ(wait_for_multipart_uploads(*s3_, "uploads/"), 1u) << "no part went out";
  std::string first_id = (*s3_->list_multipart_uploads("uploads/"))[0].upload_id;
  while (at + 1024 * 1024 < blob.size()) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ASSERT_NO_FATAL_FAILURE(send(1024 * 1024));
  }
  auto ups = s3_->list_multipart_uploads("uploads/");
  ASSERT_TRUE(ups) << ups.error().message();
  ASSERT_EQ(ups->size(), 1u) << "the busy upload's parts were aborted";
  EXPECT_EQ((*ups)[0].upload_id, first_id);
  ASSERT_NO_FATAL_FAILURE(send(blob.size() - at));
  auto put = c.request("PUT", with_digest(loc, dg));
  ASSERT_EQ(put.status, 201) << put.describe();
  EXPECT_TRUE(home_.read_blob(d.data_dir(), dg.substr(7)) == blob);
  EXPECT_TRUE(s3_->list_multipart_uploads("")->empty());
}

// Another node's push on the same bucket: its spool is not on this node, but its multipart
// upload keeps getting parts. Older than the TTL by its start, it stays while parts arrive,
// and is aborted once they stop for the TTL.
TEST_F(RegistryS3Test, TheSweepKeepsAnotherNodesUploadWhileItsPartsArrive) {
  TempDir data;
  auto blobs = home_.open(data.path());
  ASSERT_TRUE(blobs);
  const std::string key = "uploads/on-another-node";
  auto id = s3_->create_multipart_upload(key);
  ASSERT_TRUE(id) << id.error().message();
  // A TTL of 4 s: the calls between the part and the sweep may take a second or two on a
  // loaded runner. Times are in whole seconds, and an age must exceed the TTL, so "older
  // than the TTL" takes TTL + 1 s and a margin.
  constexpr auto kTtl = std::chrono::seconds(4);
  constexpr auto kPast = std::chrono::milliseconds(6000);
  ASSERT_TRUE(s3_->upload_part(key, *id, 1, "the first part"));
  std::this_thread::sleep_for(kPast);
  ASSERT_TRUE(s3_->upload_part(key, *id, 2, "a part that just came"));
  auto last = s3_->last_part_time(key, *id);
  ASSERT_TRUE(last) << last.error().message();
  EXPECT_GE(*last, static_cast<int64_t>(std::time(nullptr)) - 5);

  auto kept = blobs->expire_partial(kTtl);
  ASSERT_TRUE(kept) << kept.error().message();
  EXPECT_EQ(*kept, 0);
  auto ups = s3_->list_multipart_uploads("uploads/");
  ASSERT_TRUE(ups) << ups.error().message();
  ASSERT_EQ(ups->size(), 1u) << "a sending upload was aborted";

  std::this_thread::sleep_for(kPast);
  auto gone = blobs->expire_partial(kTtl);
  ASSERT_TRUE(gone) << gone.error().message();
  EXPECT_EQ(*gone, 1);
  EXPECT_TRUE(s3_->list_multipart_uploads("uploads/")->empty());
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

// A node that takes a push keeps the checked spool as the blob's local copy: its pulls need no
// S3 GET.
TEST_F(RegistryS3Test, PushedBlobsArePulledFromTheLocalCopy) {
  TestDaemon d([this](config::Config& c) {
    home_.apply(c);
    c.storage.s3.cache_min_free_percent = 0;  // however full this machine's disk is
  });
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string blob = pattern(7 * 1024 * 1024 + 1);
  std::string dg = sha256_digest(blob);
  std::string hex = dg.substr(7);
  ASSERT_EQ(c.push_blob("web/app", blob).status, 201);
  EXPECT_EQ(cache_files(d.data_dir()), hex + "\n");
  auto g = c.get("/v2/web/app/blobs/" + dg);
  ASSERT_EQ(g.status, 200) << g.describe().substr(0, 500);
  EXPECT_TRUE(g.body == blob);
  EXPECT_EQ(rgw_gets_of(home_.bucket(), storage::blob_key(hex)), 0);
  EXPECT_EQ(run("ls -A " + d.data_dir() + "/uploads").out, "");
  // The copies show in berthd's metrics.
  auto m = c.get("/metrics");
  ASSERT_EQ(m.status, 200) << m.describe().substr(0, 300);
  EXPECT_NE(m.body.find("\nberth_blob_cache_bytes " + std::to_string(blob.size()) + "\n"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("\nberth_blob_cache_hits_total 1\n"), std::string::npos) << m.body;
}

TEST_F(RegistryS3Test, ColdGetsStreamFromOneS3GetAndLeaveAVerifiedLocalCopy) {
  // As on a node that did not take the push: no local copy, so the GETs are cold.
  TestDaemon d([this](config::Config& c) {
    home_.apply(c);
    c.storage.s3.cache_pushed = false;
  });
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string blob = pattern(24 * 1024 * 1024 + 7);
  std::string dg = sha256_digest(blob);
  std::string hex = dg.substr(7);
  ASSERT_EQ(c.push_blob("web/app", blob).status, 201);
  ASSERT_EQ(cache_files(d.data_dir()), "");
  ASSERT_EQ(rgw_gets_of(home_.bucket(), storage::blob_key(hex)), 0);

  // Two clients at once: one S3 GET feeds both, and each gets exactly the blob.
  HttpResponse first, second;
  std::thread other([&] {
    RegistryClient c2(d.port(), d.admin().basic_header());
    second = c2.get("/v2/web/app/blobs/" + dg);
  });
  first = c.get("/v2/web/app/blobs/" + dg);
  other.join();
  for (const auto* g : {&first, &second}) {
    ASSERT_EQ(g->status, 200) << g->describe().substr(0, 500);
    EXPECT_EQ(g->header("Content-Length"), std::to_string(blob.size()));
    EXPECT_EQ(g->header("Docker-Content-Digest"), dg);
    EXPECT_EQ(g->body.size(), blob.size());
    EXPECT_TRUE(g->body == blob);
  }
  EXPECT_EQ(rgw_gets_of(home_.bucket(), storage::blob_key(hex)), 1);

  // The verified copy is in place (and nothing half-written is left); later GETs, ranged or
  // not, are answered from it without asking S3 again.
  EXPECT_EQ(cache_files(d.data_dir()), hex + "\n");
  EXPECT_TRUE(read_file(d.data_dir() + "/cache/blobs/" + hex) == blob);
  auto again = c.get("/v2/web/app/blobs/" + dg);
  ASSERT_EQ(again.status, 200);
  EXPECT_TRUE(again.body == blob);
  auto ranged = c.get("/v2/web/app/blobs/" + dg, {{"Range", "bytes=1000-1999"}});
  ASSERT_EQ(ranged.status, 206) << ranged.describe().substr(0, 500);
  EXPECT_TRUE(ranged.body == blob.substr(1000, 1000));
  EXPECT_EQ(rgw_gets_of(home_.bucket(), storage::blob_key(hex)), 1);
}

// A client resuming a pull near the end of a blob with no local copy: the range comes from one
// ranged S3 GET, not after the whole blob was fetched; no local copy is made of a part.
TEST_F(RegistryS3Test, AColdRangeIsFetchedAloneFromS3) {
  TestDaemon d([this](config::Config& c) {
    home_.apply(c);
    c.storage.s3.cache_pushed = false;
  });
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string blob = pattern(12 * 1024 * 1024 + 3);
  std::string dg = sha256_digest(blob);
  std::string hex = dg.substr(7);
  ASSERT_EQ(c.push_blob("web/app", blob).status, 201);
  for (const char* range : {"bytes=12000000-", "bytes=-100", "bytes=5-5"}) {
    auto r = c.get("/v2/web/app/blobs/" + dg, {{"Range", range}});
    ASSERT_EQ(r.status, 206) << range << ": " << r.describe().substr(0, 500);
    std::string spec = std::string(range).substr(6);
    size_t from = spec[0] == '-' ? blob.size() - std::stoul(spec.substr(1)) : std::stoul(spec);
    size_t to = spec.back() == '-' || spec[0] == '-' ? blob.size() - 1
                                                     : std::stoul(spec.substr(spec.find('-') + 1));
    EXPECT_EQ(r.header("Content-Range"), "bytes " + std::to_string(from) + "-" +
                                             std::to_string(to) + "/" +
                                             std::to_string(blob.size()));
    EXPECT_EQ(r.header("Content-Length"), std::to_string(to - from + 1)) << range;
    EXPECT_TRUE(r.body == blob.substr(from, to - from + 1)) << range;
  }
  EXPECT_EQ(rgw_gets_of(home_.bucket(), storage::blob_key(hex)), 3);
  EXPECT_EQ(cache_files(d.data_dir()), "") << "a range is not a local copy";
  EXPECT_EQ(run("find " + d.data_dir() + "/uploads -type f").out, "") << "nothing left behind";
  // The whole blob still makes (and is then served from) its verified local copy.
  auto whole = c.get("/v2/web/app/blobs/" + dg);
  ASSERT_EQ(whole.status, 200);
  EXPECT_TRUE(whole.body == blob);
  EXPECT_EQ(cache_files(d.data_dir()), hex + "\n");
}

TEST_F(RegistryS3Test, ColdGetOfBytesThatDoNotHashRightIsCutShortAndNotKept) {
  TestDaemon d([this](config::Config& c) {
    home_.apply(c);
    c.storage.s3.cache_pushed = false;  // the GETs must go to S3
  });
  RegistryClient c(d.port(), d.admin().basic_header());
  ASSERT_EQ(d.cli("repo create web/app").code, 0);
  std::string blob = pattern(6 * 1024 * 1024 + 3);
  std::string dg = sha256_digest(blob);
  std::string key = storage::blob_key(dg.substr(7));
  ASSERT_EQ(c.push_blob("web/app", blob).status, 201);
  // The object changes behind berth's back: same length, one byte different near the end.
  std::string tampered = blob;
  tampered[tampered.size() - 10] ^= 1;
  ASSERT_TRUE(s3_->put_object(key, tampered));
  for (int i = 0; i < 2; ++i) {
    auto g = c.get("/v2/web/app/blobs/" + dg);
    // The head went out before the bytes were all in: the client sees a body cut short, never
    // a complete one.
    EXPECT_EQ(g.status, 200);
    EXPECT_EQ(g.header("Content-Length"), std::to_string(blob.size()));
    EXPECT_LT(g.body.size(), blob.size());
    EXPECT_EQ(cache_files(d.data_dir()), "");
  }
  // A range alone cannot be hashed: it is sent as S3 has it (here, bytes before the change),
  // and the client checks the blob it puts together.
  auto ranged = c.get("/v2/web/app/blobs/" + dg, {{"Range", "bytes=0-99"}});
  EXPECT_EQ(ranged.status, 206) << ranged.describe().substr(0, 500);
  EXPECT_TRUE(ranged.body == blob.substr(0, 100));
  EXPECT_EQ(cache_files(d.data_dir()), "");
  // Gone from S3: the failure comes before any byte, as an OCI error.
  ASSERT_TRUE(s3_->delete_object(key));
  auto gone = c.get("/v2/web/app/blobs/" + dg);
  EXPECT_EQ(gone.status, 404) << gone.describe().substr(0, 500);
  EXPECT_EQ(gone.oci_code(), "BLOB_UNKNOWN");
  EXPECT_EQ(cache_files(d.data_dir()), "");
}

TEST_F(RegistryS3Test, CommitAboveTheSingleCopyLimitCopiesInParts) {
  // A blob storage as berthd opens it, with the limits made small: a 12 MiB blob is copied to
  // its key in three UploadPartCopy parts (5, 5 and 2 MiB).
  auto opts = RgwServer::shared()->client_options(home_.bucket());
  opts.max_copy_size = 1 << 20;
  opts.copy_part_size = 5 << 20;
  TempDir data;
  auto blobs =
      storage::make_s3_blob_storage(std::make_shared<storage::S3Client>(opts), data.path());
  ASSERT_TRUE(blobs->init());
  std::string blob = pattern(12 * 1024 * 1024 + 5);
  std::string hex = sha256_digest(blob).substr(7);
  std::string id = "00000000-0000-0000-0000-000000000017";
  auto fd = blobs->create_upload(id, "web/app");
  ASSERT_TRUE(fd) << fd.error().message();
  ASSERT_EQ(::write(*fd, blob.data(), blob.size()), static_cast<ssize_t>(blob.size()));
  ::close(*fd);
  auto s = blobs->commit_upload(id, hex);
  ASSERT_TRUE(s) << s.error().message();
  std::string got;
  ASSERT_TRUE(s3_->get_object(storage::blob_key(hex), [&got](const char* p, size_t n) {
    got.append(p, n);
    return ok();
  }));
  EXPECT_EQ(got.size(), blob.size());
  EXPECT_EQ(sha256_digest(got), sha256_digest(blob));
  auto head = s3_->head_object(storage::blob_key(hex));
  ASSERT_TRUE(head);
  // A multipart object's ETag ends in its number of parts.
  EXPECT_TRUE(head->etag.size() > 2 && head->etag.compare(head->etag.size() - 2, 2, "-3") == 0)
      << head->etag;
  // Nothing else is left: no temporary object, no multipart upload.
  EXPECT_TRUE(s3_->list_multipart_uploads("")->empty());
  auto objects = s3_->list_objects("");
  ASSERT_TRUE(objects);
  ASSERT_EQ(objects->size(), 1u);
  EXPECT_EQ((*objects)[0].key, storage::blob_key(hex));
}

}  // namespace
}  // namespace berth::test
