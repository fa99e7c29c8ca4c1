// SPDX-License-Identifier: Apache-2.0
// storage::BlobStorage on both drivers (fs, and S3 on RGW): uploads committed as blobs (on S3,
// in multipart parts, through a temporary key), local copies for readers that need a file,
// listing, hashing, removal, presigned URLs, and the expiry of what a crashed commit left.
#include "storage/blob_storage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "storage/s3.h"
#include "support/blob_backend.h"
#include "support/rgw.h"

namespace berth::test {
namespace {

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 31 + i / 1000) % 26);
  }
  return s;
}

class BlobStorageTest : public ::testing::TestWithParam<BlobBackend> {
 protected:
  void SetUp() override {
    if (!home_.skip_reason().empty()) {
      GTEST_SKIP() << home_.skip_reason();
    }
    blobs_ = home_.open(data_.path());
    ASSERT_TRUE(blobs_);
    auto s = blobs_->init();
    ASSERT_TRUE(s) << s.error().message();
  }

  // An upload of `content`, committed; returns its hex.
  std::string commit(const std::string& content) {
    std::string id = "00000000-0000-0000-0000-" + std::to_string(100000000000 + ++uploads_);
    auto fd = blobs_->create_upload(id, "web/app");
    EXPECT_TRUE(fd) << fd.error().message();
    if (!fd) {
      return {};
    }
    EXPECT_EQ(::write(*fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(*fd);
    std::string hex = Sha256::hex_of(content);
    auto s = blobs_->commit_upload(id, hex);
    EXPECT_TRUE(s) << s.error().message();
    // The session is gone once committed.
    std::string repo;
    uint64_t size = 0;
    EXPECT_FALSE(blobs_->reopen_upload(id, repo, size));
    return hex;
  }

  BlobHome home_{GetParam()};
  TempDir data_;
  storage::BlobStoragePtr blobs_;
  int uploads_ = 0;
};

TEST_P(BlobStorageTest, CommittedUploadsAreBlobsAndReadBack) {
  EXPECT_EQ(
      blobs_->describe().rfind(home_.backend() == BlobBackend::S3 ? "driver=s3 " : "driver=fs ", 0),
      0u)
      << blobs_->describe();
  std::string small = "a small blob\n";
  // Over two parts' worth, with a small last part, for S3's multipart path.
  std::string large = pattern(23 * 1024 * 1024 + 17);
  std::string hs = commit(small), hl = commit(large);
  ASSERT_FALSE(hs.empty());
  ASSERT_FALSE(hl.empty());
  EXPECT_EQ(*blobs_->blob_size(hs), static_cast<int64_t>(small.size()));
  EXPECT_EQ(*blobs_->blob_size(hl), static_cast<int64_t>(large.size()));
  EXPECT_EQ(*blobs_->hash_blob(hl), hl);
  EXPECT_TRUE(home_.read_blob(data_.path(), hl) == large);
  auto path = blobs_->local_file(hl);
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_TRUE(read_file(*path) == large);
  auto fd = blobs_->open_blob(hs);
  ASSERT_TRUE(fd);
  char buf[64] = {0};
  EXPECT_EQ(::read(*fd, buf, sizeof buf), static_cast<ssize_t>(small.size()));
  ::close(*fd);
  auto listed = blobs_->list_blobs();
  ASSERT_TRUE(listed) << listed.error().message();
  ASSERT_EQ(listed->size(), 2u);
  for (const auto& e : *listed) {
    EXPECT_TRUE(e.name == hs || e.name == hl) << e.name;
    EXPECT_EQ(e.size, static_cast<int64_t>(e.name == hs ? small.size() : large.size()));
  }
  // Removal takes the blob and any local copy; removing again is fine.
  ASSERT_TRUE(blobs_->remove_blob(hl));
  EXPECT_TRUE(blobs_->remove_blob(hl));
  auto gone = blobs_->blob_size(hl);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::NotFound);
  auto no_file = blobs_->local_file(hl);
  ASSERT_FALSE(no_file);
  EXPECT_EQ(no_file.error().code(), Errc::NotFound);
  if (home_.backend() == BlobBackend::S3) {
    // Nothing of the commits is left in the bucket but the blobs.
    storage::S3Client s3(RgwServer::shared()->client_options(home_.bucket()));
    EXPECT_TRUE(s3.list_multipart_uploads("")->empty());
    auto all = s3.list_objects("");
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 1u);
    EXPECT_EQ((*all)[0].key, storage::blob_key(hs));
  }
}

// A transient upload (pull-through's) is one file among the uploads, listed with its data,
// committed like any other, and removed without a trace.
TEST_P(BlobStorageTest, TransientUploadsAreOneFileAndCommitLikeSessions) {
  std::string content = pattern(300 * 1024);
  std::string hex = Sha256::hex_of(content);
  std::string id = "fetch-1" + std::string(storage::kTransientUpload);
  auto fd = blobs_->create_upload(id, "");
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_EQ(blobs_->upload_data_path(id), data_.path() + "/uploads/" + id);
  EXPECT_EQ(::write(*fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(*fd);
  EXPECT_EQ(run("ls -A " + data_.path() + "/uploads").out, id + "\n");  // a file, no directory
  auto listed = blobs_->list_uploads();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name, id);
  EXPECT_TRUE(listed[0].has_data);  // so expiry judges it by age, not as a broken session
  EXPECT_EQ(listed[0].size, static_cast<int64_t>(content.size()));
  EXPECT_FALSE(blobs_->create_upload(id, ""));  // never two writers on one file
  auto s = blobs_->commit_upload(id, hex);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_TRUE(home_.read_blob(data_.path(), hex) == content);
  EXPECT_EQ(run("ls -A " + data_.path() + "/uploads").out, "");
  // One that fails is removed alike.
  std::string other = "fetch-2" + std::string(storage::kTransientUpload);
  fd = blobs_->create_upload(other, "");
  ASSERT_TRUE(fd);
  ::close(*fd);
  blobs_->remove_upload(other);
  EXPECT_EQ(run("ls -A " + data_.path() + "/uploads").out, "");
}

// The fs driver's own layout.
class FsBlobStorageTest : public BlobStorageTest {};

// init() makes all 256 prefix directories, so a commit makes none; one removed behind berthd's
// back is made again by the next commit into it.
TEST_P(FsBlobStorageTest, PrefixDirectoriesAreMadeAtInitAndAgainWhenRemoved) {
  EXPECT_EQ(run("find " + data_.path() + "/blobs/sha256 -mindepth 1 -type d | wc -l").out, "256\n");
  std::string content = "into a removed prefix directory\n";
  std::string hex = Sha256::hex_of(content);
  ASSERT_EQ(::rmdir((data_.path() + "/blobs/sha256/" + hex.substr(0, 2)).c_str()), 0);
  EXPECT_EQ(commit(content), hex);
  EXPECT_TRUE(home_.read_blob(data_.path(), hex) == content);
  ASSERT_TRUE(blobs_->init());  // again, as at every start: nothing to make, nothing lost
  EXPECT_TRUE(home_.read_blob(data_.path(), hex) == content);
}

TEST_P(BlobStorageTest, StagedFilesCommitAndMismatchesAreRefused) {
  std::string content = pattern(100000);
  std::string path = data_ / "layer.tar";
  write_file(path, content);
  std::string hex = Sha256::hex_of(content);
  auto bad = blobs_->stage_file("11111111-1111-1111-1111-111111111111", path, hex,
                                static_cast<int64_t>(content.size() + 1));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::InvalidArgument);
  auto staged = blobs_->stage_file("22222222-2222-2222-2222-222222222222", path, hex,
                                   static_cast<int64_t>(content.size()));
  ASSERT_TRUE(staged) << staged.error().message();
  ASSERT_TRUE(blobs_->commit_upload("22222222-2222-2222-2222-222222222222", hex));
  EXPECT_EQ(*blobs_->hash_blob(hex), hex);
  EXPECT_TRUE(blobs_->list_uploads().empty());
}

TEST_P(BlobStorageTest, PresignedUrlsOnS3Only) {
  std::string hex = commit("fetch me");
  auto url = blobs_->presigned_url(hex, std::chrono::seconds(60));
  if (home_.backend() == BlobBackend::Fs) {
    ASSERT_FALSE(url);
    EXPECT_EQ(url.error().code(), Errc::Unsupported);
    return;
  }
  ASSERT_TRUE(url) << url.error().message();
  auto r = run("curl -s '" + *url + "'");
  EXPECT_EQ(r.out, "fetch me");
}

TEST_P(BlobStorageTest, ExpiresWhatCrashedCommitsLeft) {
  if (home_.backend() == BlobBackend::Fs) {
    EXPECT_EQ(*blobs_->expire_partial(std::chrono::seconds(0)), 0);
    return;
  }
  // A commit that died after starting its multipart upload, and one that died after the
  // complete but before deleting its temporary object.
  storage::S3Client s3(RgwServer::shared()->client_options(home_.bucket()));
  auto id = s3.create_multipart_upload("uploads/crashed-1");
  ASSERT_TRUE(id);
  ASSERT_TRUE(s3.upload_part("uploads/crashed-1", *id, 1, pattern(1000)));
  ASSERT_TRUE(s3.put_object("uploads/crashed-2", "left over"));
  std::string kept = commit("a real blob");
  // Younger than the TTL: kept.
  EXPECT_EQ(*blobs_->expire_partial(std::chrono::seconds(3600)), 0);
  EXPECT_EQ(s3.list_multipart_uploads("")->size(), 1u);
  // S3 times are whole seconds.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto n = blobs_->expire_partial(std::chrono::seconds(0));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 2);
  EXPECT_TRUE(s3.list_multipart_uploads("")->empty());
  EXPECT_TRUE(s3.list_objects("uploads/")->empty());
  EXPECT_TRUE(blobs_->blob_size(kept));
}

// On S3, whole parts of an upload go out while it grows (upload_grew), and the commit sends
// only the rest; a session removed midway leaves no multipart upload behind. On fs the calls
// change nothing.
TEST_P(BlobStorageTest, PartsGoOutWhileAnUploadGrows) {
  const bool on_s3 = home_.backend() == BlobBackend::S3;
  std::string content = pattern(25 * 1024 * 1024 + 5);
  std::string id = "44444444-4444-4444-4444-444444444444";
  auto fd = blobs_->create_upload(id, "web/app");
  ASSERT_TRUE(fd) << fd.error().message();
  constexpr size_t kPiece = 1 << 20;
  for (size_t off = 0; off < content.size(); off += kPiece) {
    size_t n = std::min(kPiece, content.size() - off);
    ASSERT_EQ(::write(*fd, content.data() + off, n), static_cast<ssize_t>(n));
    blobs_->upload_grew(id, off + n);
  }
  std::unique_ptr<storage::S3Client> s3;
  if (on_s3) {
    s3 = std::make_unique<storage::S3Client>(RgwServer::shared()->client_options(home_.bucket()));
    auto ups = s3->list_multipart_uploads("uploads/");
    ASSERT_TRUE(ups) << ups.error().message();
    ASSERT_EQ(ups->size(), 1u) << "no parts went out before the commit";
    EXPECT_EQ((*ups)[0].key, "uploads/" + id);
    // Spoil the spool's first byte, already sent: a commit that used the streamed parts still
    // makes the right blob, one that sent the whole spool again would not.
    // (Through a descriptor of its own: the upload's is O_APPEND.)
    int w = ::open(blobs_->upload_data_path(id).c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(w, 0);
    ASSERT_EQ(::pwrite(w, "Z", 1, 0), 1);
    ::close(w);
  }
  ::close(*fd);
  std::string hex = Sha256::hex_of(content);
  auto c = blobs_->commit_upload(id, hex);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(*blobs_->blob_size(hex), static_cast<int64_t>(content.size()));
  if (on_s3) {
    EXPECT_EQ(*blobs_->hash_blob(hex), hex) << "the commit sent the spool again";
    EXPECT_TRUE(s3->list_multipart_uploads("")->empty());
    EXPECT_TRUE(s3->list_objects("uploads/")->empty());
  }

  // Dropped midway (cancelled, expired): its multipart upload goes too.
  std::string id2 = "55555555-5555-5555-5555-555555555555";
  auto fd2 = blobs_->create_upload(id2, "web/app");
  ASSERT_TRUE(fd2);
  std::string part = pattern(12 * 1024 * 1024);
  ASSERT_EQ(::write(*fd2, part.data(), part.size()), static_cast<ssize_t>(part.size()));
  ::close(*fd2);
  blobs_->upload_grew(id2, part.size());
  if (on_s3) {
    EXPECT_EQ(s3->list_multipart_uploads("uploads/")->size(), 1u);
  }
  blobs_->remove_upload(id2);
  if (on_s3) {
    EXPECT_TRUE(s3->list_multipart_uploads("")->empty());
  }
  std::string repo;
  uint64_t size = 0;
  EXPECT_FALSE(blobs_->reopen_upload(id2, repo, size));
}

// A fault of S3 only: instantiated for S3 alone.
// Stops radosgw: on a cluster of its own, not the one the run shares. OwnRgw comes first, so
// the fixture's members (the bucket among them) are made on that cluster.
class BlobStorageFaultTest : private OwnRgw, public BlobStorageTest {};

TEST_P(BlobStorageFaultTest, S3AwayIsUnavailableAndRecovers) {
  std::string hex = commit("before the outage");
  auto* rgw = RgwServer::shared();
  rgw->stop();
  auto size = blobs_->blob_size(hex);
  std::string id = "33333333-3333-3333-3333-333333333333";
  auto fd = blobs_->create_upload(id, "web/app");
  ASSERT_TRUE(fd);
  ASSERT_EQ(::write(*fd, "during", 6), 6);
  ::close(*fd);
  auto commit_during = blobs_->commit_upload(id, Sha256::hex_of("during"));
  ASSERT_TRUE(rgw->start()) << rgw->error();
  ASSERT_FALSE(size);
  EXPECT_EQ(size.error().code(), Errc::Unavailable) << size.error().message();
  ASSERT_FALSE(commit_during);
  EXPECT_EQ(commit_during.error().code(), Errc::Unavailable);
  // The session is still there to retry (or to be dropped by the caller).
  ASSERT_TRUE(blobs_->commit_upload(id, Sha256::hex_of("during")));
  EXPECT_EQ(*blobs_->hash_blob(Sha256::hex_of("during")), Sha256::hex_of("during"));
}

// The S3 driver's local copies (DATA/cache/blobs): a pushed blob's spool becomes its copy,
// and the copies stay under their size limit, least recently used out first.
class S3LocalCacheTest : public BlobStorageTest {
 protected:
  // (The disk's own free space plays no part unless a test asks: min_free_percent 0.)
  storage::BlobStoragePtr open_with(storage::LocalCacheOptions cache, unsigned min_free = 0,
                                    const std::string& dir = "") {
    cache.min_free_percent = min_free;
    auto blobs = storage::make_s3_blob_storage(
        std::make_shared<storage::S3Client>(RgwServer::shared()->client_options(home_.bucket())),
        dir.empty() ? data_.path() : dir, cache);
    auto s = blobs->init();
    EXPECT_TRUE(s) << s.error().message();
    return blobs;
  }
  // The copies on disk, sorted, one per line.
  std::string copies() { return run("ls -A " + data_.path() + "/cache/blobs").out; }
  bool has_copy(const std::string& hex) { return copies().find(hex) != std::string::npos; }
};

TEST_P(S3LocalCacheTest, PushedBlobsAreKeptAndTheLeastRecentlyUsedGoPastTheLimit) {
  constexpr uint64_t kMiB = 1 << 20;
  storage::LocalCacheOptions cache;
  cache.max_bytes = 5 * kMiB / 2;
  cache.min_age = std::chrono::seconds(0);
  blobs_ = open_with(cache);
  std::string a = pattern(kMiB), b = pattern(kMiB) + "b", c = pattern(kMiB) + "c";
  std::string ha = commit(a), hb = commit(b);
  ASSERT_TRUE(has_copy(ha) && has_copy(hb)) << copies();
  EXPECT_TRUE(read_file(data_.path() + "/cache/blobs/" + ha) == a);
  // A reads it, so B is now the least recently used; C takes the copies past 2.5 MiB.
  auto fd = blobs_->open_local(ha);
  ASSERT_TRUE(fd);
  ::close(*fd);
  std::string hc = commit(c);
  EXPECT_TRUE(has_copy(ha)) << copies();
  EXPECT_FALSE(has_copy(hb)) << copies();
  EXPECT_TRUE(has_copy(hc)) << copies();
  // B is fetched again when asked for, which makes A the one to go.
  auto path = blobs_->local_file(hb);
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_TRUE(read_file(*path) == b);
  EXPECT_FALSE(has_copy(ha)) << copies();
  EXPECT_TRUE(has_copy(hb) && has_copy(hc)) << copies();
  // A blob bigger than the whole cache is never kept, and nothing is pruned for it.
  std::string big = pattern(3 * kMiB);
  std::string hbig = commit(big);
  EXPECT_EQ(*blobs_->blob_size(hbig), static_cast<int64_t>(big.size()));
  EXPECT_FALSE(has_copy(hbig));
  EXPECT_TRUE(has_copy(hb) && has_copy(hc)) << copies();
  std::string m = blobs_->metrics_text();
  EXPECT_NE(m.find("\nberth_blob_cache_pruned_total 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nberth_blob_cache_copies 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nberth_blob_cache_limit_bytes 2621440\n"), std::string::npos) << m;
  // What berthd logs at start.
  std::string d = blobs_->describe();
  EXPECT_NE(d.find("driver=s3 "), std::string::npos) << d;
  EXPECT_NE(d.find(" bucket=" + home_.bucket() + " "), std::string::npos) << d;
  EXPECT_NE(d.find(" local_copies=2 "), std::string::npos) << d;
  EXPECT_NE(d.find(" cache_size=2621440 "), std::string::npos) << d;

  // At start, with a smaller limit: pruned to it.
  cache.max_bytes = 3 * kMiB / 2;
  blobs_ = open_with(cache);
  std::string left = copies();
  ASSERT_EQ(std::count(left.begin(), left.end(), '\n'), 1) << left;
  // Removing a blob takes its copy.
  std::string kept = has_copy(hb) ? hb : hc;
  ASSERT_TRUE(blobs_->remove_blob(kept));
  EXPECT_EQ(copies(), "");
}

// Copies are not fsynced: one found at start is hashed before it is used, and one that a crash
// of the machine tore is dropped and fetched again.
TEST_P(S3LocalCacheTest, CopiesFromBeforeARestartAreCheckedBeforeUse) {
  std::string good = pattern(8 << 20), torn = pattern(200 * 1024);
  std::string hg = commit(good), ht = commit(torn);
  ASSERT_TRUE(has_copy(hg) && has_copy(ht)) << copies();
  std::string torn_path = data_.path() + "/cache/blobs/" + ht;
  write_file(torn_path, std::string(torn.size(), '\0'));  // what a lost writeback leaves
  // This process made the copies, so it trusts them; after a restart it checks them, once
  // however many readers ask at the same time.
  blobs_ = open_with({});
  std::vector<std::thread> readers;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      if (auto r = blobs_->open_local(hg)) {
        ::close(*r);
        ++opened;
      }
    });
  }
  for (auto& t : readers) {
    t.join();
  }
  EXPECT_EQ(opened.load(), 4);
  EXPECT_NE(blobs_->metrics_text().find("\nberth_blob_cache_hashed_total 1\n"), std::string::npos)
      << blobs_->metrics_text();
  auto fd = blobs_->open_local(hg);
  ASSERT_TRUE(fd) << fd.error().message();
  ::close(*fd);
  auto gone = blobs_->open_local(ht);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::NotFound);
  EXPECT_FALSE(has_copy(ht)) << copies();
  std::string m = blobs_->metrics_text();
  EXPECT_NE(m.find("\nberth_blob_cache_torn_total 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nberth_blob_cache_hashed_total 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nberth_blob_cache_hits_total 5\n"), std::string::npos) << m;
  auto path = blobs_->local_file(ht);
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_TRUE(read_file(*path) == torn);
  // Copies deleted behind berthd's back (to free the disk) are fetched again.
  ASSERT_EQ(run("rm -f " + data_.path() + "/cache/blobs/*").code, 0);
  fd = blobs_->open_local(hg);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().code(), Errc::NotFound);
  path = blobs_->local_file(ht);
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_TRUE(read_file(*path) == torn);
}

// With no limit of their own, the copies still leave a tenth of the disk free: 24 MiB of pushes
// through a 16 MiB disk all commit, and the newest copies stay.
TEST_P(S3LocalCacheTest, CopiesLeaveATenthOfTheDiskFree) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "mounting a tmpfs needs root";
  }
  std::string dir = data_.path() + "/small-disk";
  auto m =
      run("mkdir -p '" + dir + "' && mount -t tmpfs -o size=16m berth-cache-disk '" + dir + "'");
  ASSERT_EQ(m.code, 0) << m.all();
  struct Unmount {
    std::string dir;
    ~Unmount() { run("umount '" + dir + "' || umount -l '" + dir + "'"); }
  } unmount{dir};
  storage::LocalCacheOptions cache;
  cache.max_bytes = 0;
  cache.min_age = std::chrono::seconds(0);
  blobs_ = open_with(cache, 10, dir);
  std::vector<std::string> hexes;
  for (int i = 0; i < 24; ++i) {
    hexes.push_back(commit(pattern(1 << 20) + std::to_string(i)));
    ASSERT_FALSE(hexes.back().empty()) << "push " << i;
  }
  auto avail = run("df --output=avail -B1 '" + dir + "' | tail -1");
  EXPECT_GE(std::stoll(avail.out), 16ll * 1024 * 1024 / 10) << avail.all();
  std::string left = run("ls -A '" + dir + "/cache/blobs'").out;
  auto kept = std::count(left.begin(), left.end(), '\n');
  EXPECT_GT(kept, 5) << left;
  EXPECT_LT(kept, 24) << left;
  EXPECT_NE(left.find(hexes.back()), std::string::npos) << left;
  EXPECT_EQ(left.find(hexes.front()), std::string::npos) << left;
}

TEST_P(S3LocalCacheTest, RecentlyUsedCopiesStayAndPushesCanKeepNone) {
  constexpr uint64_t kMiB = 1 << 20;
  storage::LocalCacheOptions cache;
  cache.max_bytes = kMiB;
  blobs_ = open_with(cache);  // min_age at its default: nothing here is old enough to go
  std::string ha = commit(pattern(kMiB / 2 + 1)), hb = commit(pattern(kMiB / 2 + 2));
  EXPECT_TRUE(has_copy(ha) && has_copy(hb)) << copies();

  cache.keep_pushed = false;
  blobs_ = open_with(cache);
  std::string hc = commit("no copy of this one");
  EXPECT_FALSE(has_copy(hc)) << copies();
  EXPECT_TRUE(has_copy(ha) && has_copy(hb)) << copies();
}

INSTANTIATE_TEST_SUITE_P(Backends, BlobStorageTest, all_blob_backends(), BlobBackendName());
INSTANTIATE_TEST_SUITE_P(Backends, S3LocalCacheTest, ::testing::Values(BlobBackend::S3),
                         BlobBackendName());
INSTANTIATE_TEST_SUITE_P(Backends, FsBlobStorageTest, ::testing::Values(BlobBackend::Fs),
                         BlobBackendName());
INSTANTIATE_TEST_SUITE_P(Backends, BlobStorageFaultTest, ::testing::Values(BlobBackend::S3),
                         BlobBackendName());

}  // namespace
}  // namespace berth::test
