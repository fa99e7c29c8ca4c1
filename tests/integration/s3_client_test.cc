// SPDX-License-Identifier: Apache-2.0
// storage::S3Client against a real S3 service: Ceph's RADOS Gateway, started by the harness
// (tests/support/rgw.h). Each test gets a fresh bucket.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "common/sha256.h"
#include "storage/s3.h"
#include "support/rgw.h"

namespace berth::test {
namespace {

using storage::S3Client;
using storage::S3Options;
using storage::S3Part;
using storage::S3Range;

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>(seed + static_cast<char>((i * 7 + i / 4096) % 61));
  }
  return s;
}

class S3ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_ = RgwServer::shared();
    if (rgw_ == nullptr) {
      GTEST_SKIP() << "RGW cannot run here: " << RgwServer::shared_error();
    }
    if (!rgw_->running()) {
      ASSERT_TRUE(rgw_->start()) << rgw_->error();
    }
    bucket_ = rgw_->create_bucket();
    ASSERT_FALSE(bucket_.empty());
    s3_ = std::make_unique<S3Client>(options());
  }

  S3Options options() const {
    S3Options o = rgw_->client_options(bucket_);
    o.connect_timeout = std::chrono::milliseconds(2000);
    return o;
  }

  Result<std::string> get(const std::string& key, std::optional<S3Range> range = std::nullopt) {
    std::string out;
    auto s = s3_->get_object(
        key,
        [&out](const char* d, size_t n) {
          out.append(d, n);
          return ok();
        },
        range);
    if (!s) {
      return s.error();
    }
    return out;
  }

  RgwServer* rgw_ = nullptr;
  std::string bucket_;
  std::unique_ptr<S3Client> s3_;
  TempDir tmp_;
};

TEST_F(S3ClientTest, PutHeadGetRangeDelete) {
  std::string body = pattern(100000, 'A');
  ASSERT_TRUE(s3_->put_object("blobs/sha256/ab/x", body));
  auto head = s3_->head_object("blobs/sha256/ab/x");
  ASSERT_TRUE(head) << head.error().message();
  EXPECT_EQ(head->size, 100000);
  EXPECT_FALSE(head->etag.empty());
  EXPECT_LE(std::abs(head->mtime - static_cast<int64_t>(std::time(nullptr))), 120);
  auto whole = get("blobs/sha256/ab/x");
  ASSERT_TRUE(whole) << whole.error().message();
  EXPECT_TRUE(*whole == body);
  auto part = get("blobs/sha256/ab/x", S3Range{99990, 10});
  ASSERT_TRUE(part) << part.error().message();
  EXPECT_EQ(*part, body.substr(99990));
  ASSERT_TRUE(s3_->delete_object("blobs/sha256/ab/x"));
  auto gone = s3_->head_object("blobs/sha256/ab/x");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::NotFound);
  auto missing = get("blobs/sha256/ab/x");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
  EXPECT_NE(missing.error().message().find("NoSuchKey"), std::string::npos)
      << missing.error().message();
  // Deleting what is not there is success, as in S3.
  EXPECT_TRUE(s3_->delete_object("blobs/sha256/ab/x"));
  // An empty object is an object.
  ASSERT_TRUE(s3_->put_object("empty", ""));
  EXPECT_EQ(s3_->head_object("empty")->size, 0);
}

TEST_F(S3ClientTest, PutFromFileRangeAndCopy) {
  std::string path = tmp_ / "f";
  std::string content = pattern(300000, 'a');
  write_file(path, content);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(s3_->put_object_file("uploads/tmp", fd, 1000, 200000));
  ::close(fd);
  ASSERT_TRUE(s3_->copy_object("uploads/tmp", "blobs/final"));
  auto got = get("blobs/final");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_TRUE(*got == content.substr(1000, 200000));
  auto missing = s3_->copy_object("uploads/none", "blobs/other");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound) << missing.error().message();
}

TEST_F(S3ClientTest, CopyAboveTheLimitIsAMultipartCopyAndAbortsOnFailure) {
  S3Options o = options();
  o.max_copy_size = 6 << 20;
  o.copy_part_size = 1;  // raised to S3's smallest part, 5 MiB
  S3Client small(o);
  std::string content = pattern((11 << 20) + 9, 'c');
  ASSERT_TRUE(small.put_object("uploads/big", content));
  ASSERT_TRUE(small.put_object("uploads/small", content.substr(0, 6 << 20)));
  // At the limit: one CopyObject. Above it: parts of 5, 5 and 1 MiB + 9 bytes.
  ASSERT_TRUE(small.copy("uploads/small", "blobs/small", 6 << 20));
  auto s = small.copy("uploads/big", "blobs/big", content.size());
  ASSERT_TRUE(s) << s.error().message();
  auto got = get("blobs/big");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->size(), content.size());
  EXPECT_EQ(Sha256::hex_of(*got), Sha256::hex_of(content));
  auto got_small = get("blobs/small");
  ASSERT_TRUE(got_small);
  EXPECT_TRUE(*got_small == content.substr(0, 6 << 20));
  auto big = small.head_object("blobs/big");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->etag.substr(big->etag.size() - 2), "-3") << big->etag;
  auto single = small.head_object("blobs/small");
  ASSERT_TRUE(single);
  EXPECT_EQ(single->etag.find('-'), std::string::npos) << single->etag;
  // A copy that fails half-way (the source is shorter than said) leaves no upload behind.
  auto bad = small.copy("uploads/small", "blobs/bad", content.size());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("multipart copy"), std::string::npos)
      << bad.error().message();
  auto uploads = s3_->list_multipart_uploads("");
  ASSERT_TRUE(uploads);
  EXPECT_TRUE(uploads->empty());
  EXPECT_EQ(s3_->head_object("blobs/bad").error().code(), Errc::NotFound);
}

TEST_F(S3ClientTest, MultipartUploadOfFivePlusMiBParts) {
  const std::string key = "uploads/mp";
  auto id = s3_->create_multipart_upload(key);
  ASSERT_TRUE(id) << id.error().message();
  std::string p1 = pattern(storage::kS3MinPartSize + 1, 'a');
  std::string p2 = pattern(storage::kS3MinPartSize + 3, 'K');
  std::string p3 = "the last part may be small";
  auto e1 = s3_->upload_part(key, *id, 1, p1);
  ASSERT_TRUE(e1) << e1.error().message();
  std::string path = tmp_ / "p2";
  write_file(path, "xx" + p2);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto e2 = s3_->upload_part_file(key, *id, 2, fd, 2, p2.size());
  ::close(fd);
  ASSERT_TRUE(e2) << e2.error().message();
  auto e3 = s3_->upload_part(key, *id, 3, p3);
  ASSERT_TRUE(e3) << e3.error().message();
  auto listed = s3_->list_multipart_uploads("uploads/");
  ASSERT_TRUE(listed) << listed.error().message();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, key);
  EXPECT_EQ((*listed)[0].upload_id, *id);
  EXPECT_GT((*listed)[0].initiated, 0);
  auto done =
      s3_->complete_multipart_upload(key, *id, std::vector<S3Part>{{1, *e1}, {2, *e2}, {3, *e3}});
  ASSERT_TRUE(done) << done.error().message();
  std::string all = p1 + p2 + p3;
  auto head = s3_->head_object(key);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->size, static_cast<int64_t>(all.size()));
  // A range across the parts' seam.
  auto seam = get(key, S3Range{p1.size() - 5, 10});
  ASSERT_TRUE(seam) << seam.error().message();
  EXPECT_EQ(*seam, all.substr(p1.size() - 5, 10));
  Sha256 h;
  auto s = s3_->get_object(key, [&h](const char* d, size_t n) {
    h.update(d, n);
    return ok();
  });
  ASSERT_TRUE(s);
  EXPECT_EQ(h.hex(), Sha256::hex_of(all));
  EXPECT_TRUE(s3_->list_multipart_uploads("uploads/")->empty());
}

TEST_F(S3ClientTest, SmallFirstPartAndAbort) {
  const std::string key = "uploads/small";
  auto id = s3_->create_multipart_upload(key);
  ASSERT_TRUE(id);
  auto e1 = s3_->upload_part(key, *id, 1, "tiny");
  auto e2 = s3_->upload_part(key, *id, 2, "tiny too");
  ASSERT_TRUE(e1 && e2);
  auto done = s3_->complete_multipart_upload(key, *id, std::vector<S3Part>{{1, *e1}, {2, *e2}});
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code(), Errc::InvalidArgument) << done.error().message();
  EXPECT_NE(done.error().message().find("EntityTooSmall"), std::string::npos)
      << done.error().message();
  ASSERT_TRUE(s3_->abort_multipart_upload(key, *id));
  EXPECT_TRUE(s3_->list_multipart_uploads("")->empty());
  auto again = s3_->abort_multipart_upload(key, *id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::NotFound) << again.error().message();
}

TEST_F(S3ClientTest, ListingsPage) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(s3_->put_object("blobs/" + std::to_string(i), std::string(i, 'x')));
  }
  ASSERT_TRUE(s3_->put_object("other/x", "x"));
  auto objects = s3_->list_objects("blobs/", 2);
  ASSERT_TRUE(objects) << objects.error().message();
  ASSERT_EQ(objects->size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ((*objects)[i].key, "blobs/" + std::to_string(i));
    EXPECT_EQ((*objects)[i].size, i);
    EXPECT_GT((*objects)[i].mtime, 0);
  }
  EXPECT_EQ(s3_->list_objects("")->size(), 6u);
  EXPECT_TRUE(s3_->list_objects("nothing/")->empty());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = s3_->create_multipart_upload("uploads/u" + std::to_string(i));
    ASSERT_TRUE(id);
    ids.push_back(*id);
  }
  // The parts of one, a page at a time: the latest part's time. None yet: 0.
  auto none = s3_->last_part_time("uploads/u0", ids[0], 1);
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(*none, 0);
  for (int part = 1; part <= 3; ++part) {
    ASSERT_TRUE(s3_->upload_part("uploads/u0", ids[0], part, "part " + std::to_string(part)));
  }
  auto last = s3_->last_part_time("uploads/u0", ids[0], 1);
  ASSERT_TRUE(last) << last.error().message();
  int64_t now = std::time(nullptr);
  EXPECT_GE(*last, now - 60);
  EXPECT_LE(*last, now + 60);
  auto unknown = s3_->last_part_time("uploads/u0", "no-such-upload");
  EXPECT_FALSE(unknown);
  auto uploads = s3_->list_multipart_uploads("uploads/", 2);
  ASSERT_TRUE(uploads) << uploads.error().message();
  ASSERT_EQ(uploads->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*uploads)[i].key, "uploads/u" + std::to_string(i));
    EXPECT_TRUE(s3_->abort_multipart_upload((*uploads)[i].key, (*uploads)[i].upload_id));
  }
}

TEST_F(S3ClientTest, PresignedUrlWorksWithCurlUntilItExpires) {
  ASSERT_TRUE(s3_->put_object("blobs/p", "presigned bytes"));
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::string url = s3_->presign_get("blobs/p", std::chrono::seconds(300), now);
  auto r = run("curl -s -w ' %{http_code}' '" + url + "'");
  EXPECT_EQ(r.out, "presigned bytes 200");
  // A Range on a presigned URL (docker resumes pulls so).
  r = run("curl -s -r 0-8 -w ' %{http_code}' '" + url + "'");
  EXPECT_EQ(r.out, "presigned 206");
  std::string tampered = url;
  tampered.replace(tampered.find("blobs/p"), 7, "blobs/q");
  r = run("curl -s -o /dev/null -w '%{http_code}' '" + tampered + "'");
  EXPECT_EQ(r.out, "403");
  std::string expired = s3_->presign_get("blobs/p", std::chrono::seconds(60), now - 3600);
  r = run("curl -s -o /dev/null -w '%{http_code}' '" + expired + "'");
  EXPECT_EQ(r.out, "403");
}

TEST_F(S3ClientTest, ErrorsSayWhatS3Said) {
  S3Options bad = options();
  bad.secret_access_key = "wrong";
  S3Client wrong(bad);
  auto denied = wrong.put_object("k", "v");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), Errc::PermissionDenied);
  EXPECT_NE(denied.error().message().find("SignatureDoesNotMatch"), std::string::npos)
      << denied.error().message();

  S3Options nobucket = options();
  // Unique: the cluster may be the one the whole run shares, where a fixed name made by an
  // earlier run of this test would exist.
  nobucket.bucket = "no-such-bucket-" + std::to_string(::getpid()) + "-" +
                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  S3Client none(nobucket);
  auto nb = none.list_objects("");
  ASSERT_FALSE(nb);
  EXPECT_EQ(nb.error().code(), Errc::NotFound);
  EXPECT_NE(nb.error().message().find("NoSuchBucket"), std::string::npos);
  // Creating it makes it; creating it again is fine.
  EXPECT_TRUE(none.create_bucket());
  EXPECT_TRUE(none.create_bucket());
  EXPECT_TRUE(none.list_objects("")->empty());

  S3Options closed = options();
  closed.endpoint = "http://127.0.0.1:" + std::to_string(free_port());
  S3Client away(closed);
  auto unreachable = away.put_object("k", "v");
  ASSERT_FALSE(unreachable);
  EXPECT_EQ(unreachable.error().code(), Errc::Unavailable) << unreachable.error().message();
}

TEST_F(S3ClientTest, SinkErrorStopsTheTransfer) {
  ASSERT_TRUE(s3_->put_object("big", pattern(4 << 20, 'b')));
  size_t seen = 0;
  auto s = s3_->get_object("big", [&seen](const char*, size_t n) -> Status {
    seen += n;
    return Error(Errc::NoSpace, "disk full");
  });
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Errc::NoSpace);
  EXPECT_LT(seen, size_t{4} << 20);
}

// Stops radosgw: on a cluster of its own, not the one the run shares.
class S3ClientOutageTest : private OwnRgw, public S3ClientTest {};

TEST_F(S3ClientOutageTest, UnavailableWhileRadosgwIsDownAndBackAfter) {
  ASSERT_TRUE(s3_->put_object("k", "before"));
  rgw_->stop();
  auto down = s3_->put_object("k", "during");
  ASSERT_TRUE(rgw_->start()) << rgw_->error();
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), Errc::Unavailable) << down.error().message();
  // The same client (its pooled connection died with radosgw) works again.
  ASSERT_TRUE(s3_->put_object("k", "after"));
  EXPECT_EQ(*get("k"), "after");
}

}  // namespace
}  // namespace berth::test
