// SPDX-License-Identifier: Apache-2.0
// The s3 driver of BlobStorage. Bucket layout:
//
//   blobs/sha256/<2 hex>/<64 hex>   complete blobs: only ever written by a server-side copy of
//                                   bytes whose digest was checked
//   uploads/<upload id>             an upload in progress: the multipart upload of a spool,
//                                   whose whole 10 MiB parts go out while the client's chunks
//                                   arrive (upload_grew) and the rest at the commit (or, under
//                                   5 MiB, one PUT at the commit), copied to its blob key
//                                   once complete and then deleted (a copy above
//                                   S3Options::max_copy_size, 5 GiB by default, is itself a
//                                   multipart upload to the blob key, of UploadPartCopy parts)
//
// Locally (DATA): uploads/<id>/ is the same spool as on fs (fs_blob_storage.h), and
// cache/blobs/<64 hex> holds the copies local_file() and open_local() hand out, each hashed
// while it was downloaded (here, or by the registry's blob GET, which sends the bytes on as
// they land: start_local_copy()) and renamed into place only when it matched, or the spool of
// a pushed blob, renamed there at its commit. local_cache.h keeps them under their size limit.
//
// A crash mid-push or mid-commit leaves a multipart upload or an uploads/ object that nothing
// will finish (the streamed parts' state is in memory only: after a restart, a commit sends
// the whole spool); expire_partial() aborts or deletes those once they are older than the upload
// TTL and no part came within it, so no parts are orphaned for good. A crash after the copy leaves
// a blob with no row, which gc removes after its grace period, as on fs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "common/fs.h"
#include "common/sha256.h"
#include "storage/blob_storage.h"
#include "storage/fs_blob_storage.h"
#include "storage/local_cache.h"
#include "storage/s3.h"

namespace berth::storage {

namespace {

constexpr const char* kUploadsPrefix = "uploads/";
constexpr const char* kBlobsPrefix = "blobs/sha256/";

Status write_all(int fd, const char* data, size_t len, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fs::errno_error("write", path);
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return ok();
}

class S3BlobStorage : public BlobStorage {
 public:
  S3BlobStorage(S3ClientPtr s3, std::string data_dir, LocalCacheOptions cache)
      : s3_(std::move(s3)),
        spool_(data_dir, /*fsync=*/false),
        cache_(data_dir + "/cache/blobs", cache) {}

  const char* driver() const override { return "s3"; }

  Status init() override {
    BERTH_TRY(spool_.init());
    BERTH_TRY(cache_.init());
    if (auto s = s3_->create_bucket(); !s) {
      return std::move(s).error().with_context("S3 bucket " + s3_->options().bucket + " at " +
                                               s3_->options().endpoint);
    }
    return ok();
  }

  // ---- uploads: the local spool, committed to S3 ------------------------------------------

  std::string upload_data_path(const std::string& id) const override {
    return spool_.upload_data_path(id);
  }
  Result<int> create_upload(const std::string& id, const std::string& repo) override {
    return spool_.create_upload(id, repo);
  }
  Result<int> reopen_upload(const std::string& id, std::string& repo, uint64_t& size) override {
    return spool_.reopen_upload(id, repo, size);
  }
  void remove_upload(const std::string& id) override {
    if (auto st = take_stream(id); st && !st->upload_id.empty()) {
      // Best effort: one that cannot be aborted now is expire_partial()'s.
      (void)s3_->abort_multipart_upload(kUploadsPrefix + id, st->upload_id);
    }
    spool_.remove_upload(id);
  }

  // Whole parts of the spool go to the upload's multipart upload as they fill, so that the
  // commit sends only the tail. A part that fails ends the streaming for this upload (the
  // commit then sends the whole spool, as without it); the append never fails for it.
  void upload_grew(const std::string& id, uint64_t size) override {
    if (size < stream_part_size()) {
      return;
    }
    std::shared_ptr<Stream> st;
    {
      std::lock_guard lock(streams_mu_);
      auto& slot = streams_[id];
      if (!slot) {
        slot = std::make_shared<Stream>();
      }
      st = slot;
    }
    std::lock_guard lock(st->mu);
    if (st->failed || size - st->sent < stream_part_size()) {
      return;
    }
    std::string key = kUploadsPrefix + id;
    std::string path = spool_.upload_data_path(id);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      st->failed = true;
      return;
    }
    while (size - st->sent >= stream_part_size() && st->parts.size() + 1 < kMaxParts) {
      if (st->upload_id.empty()) {
        auto uid = s3_->create_multipart_upload(key);
        if (!uid) {
          st->failed = true;
          break;
        }
        st->upload_id = *uid;
      }
      int n = static_cast<int>(st->parts.size() + 1);
      auto etag = s3_->upload_part_file(key, st->upload_id, n, fd, st->sent, stream_part_size());
      if (!etag) {
        st->failed = true;
        break;
      }
      st->parts.push_back({n, *etag});
      st->sent += stream_part_size();
    }
    ::close(fd);
  }
  bool remove_upload_if_broken(const std::string& id) override {
    return spool_.remove_upload_if_broken(id);
  }
  Result<std::string> hash_upload(const std::string& id) override { return spool_.hash_upload(id); }
  Result<bool> stage_file(const std::string& id, const std::string& path, const std::string& hex,
                          int64_t size) override {
    return spool_.stage_file(id, path, hex, size);
  }
  std::vector<BlobEntry> list_uploads() const override { return spool_.list_uploads(); }

  Status commit_upload(const std::string& id, const std::string& hex) override {
    std::string data = spool_.upload_data_path(id);
    int fd = ::open(data.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return fs::errno_error("open", data);
    }
    struct stat st {};
    ::fstat(fd, &st);
    auto size = static_cast<uint64_t>(st.st_size);
    std::string temp = kUploadsPrefix + id;
    Status s = finish_stream(temp, take_stream(id), fd, size);
    if (!s && s.error().code() != Errc::Unavailable) {
      s = upload_spool(temp, fd, size);  // the streamed parts are of no use: all of it again
    }
    ::close(fd);
    BERTH_TRY(s);
    // The temporary object holds exactly the checked bytes: only now do they get the key
    // that says so.
    s = s3_->copy(temp, blob_key(hex), size);
    // Best effort either way: once the copy is in place the blob is committed, and a leftover
    // temporary object is expire_partial()'s.
    (void)s3_->delete_object(temp);
    BERTH_TRY(s);
    if (cache_.options().keep_pushed && cache_.fits(size)) {
      keep_spool(data, hex, size);
    }
    spool_.remove_upload(id);
    return ok();
  }

  Result<int64_t> expire_partial(std::chrono::seconds ttl) override {
    cache_.prune();  // (on the same maintenance tick)
    int64_t cutoff = static_cast<int64_t>(std::time(nullptr)) - ttl.count();
    int64_t removed = 0;
    // An upload whose spool is still here is alive on this node (the registry removes idle
    // ones first): its multipart upload may be older than the TTL when the client has been
    // sending for longer, and its temporary object may be mid-copy. Both stay. So does a
    // multipart upload that got a part within the TTL: another node's push, still sending.
    std::unordered_set<std::string> live;
    for (const auto& e : spool_.list_uploads()) {
      live.insert(kUploadsPrefix + e.name);
    }
    // Multipart uploads under blobs/ are copies of big blobs to their key (S3Client::copy).
    for (const char* prefix : {kUploadsPrefix, kBlobsPrefix}) {
      BERTH_ASSIGN_OR_RETURN(auto uploads, s3_->list_multipart_uploads(prefix));
      for (const auto& u : uploads) {
        if (u.initiated >= cutoff || live.contains(u.key)) {
          continue;
        }
        // Not knowing when its last part came (it may have completed meanwhile) is no reason
        // to abort it: the next sweep asks again.
        auto last = s3_->last_part_time(u.key, u.upload_id);
        if (last && *last < cutoff && s3_->abort_multipart_upload(u.key, u.upload_id)) {
          ++removed;
        }
      }
    }
    BERTH_ASSIGN_OR_RETURN(auto temps, s3_->list_objects(kUploadsPrefix));
    for (const auto& o : temps) {
      if (o.mtime < cutoff && !live.contains(o.key) && s3_->delete_object(o.key)) {
        ++removed;
      }
    }
    return removed;
  }

  // ---- blobs ------------------------------------------------------------------------------

  Result<int64_t> blob_size(const std::string& hex) override {
    BERTH_ASSIGN_OR_RETURN(auto o, s3_->head_object(blob_key(hex)));
    return o.size;
  }

  Result<std::string> local_file(const std::string& hex) override {
    if (cache_.usable(hex)) {
      return cache_.path(hex);
    }
    BERTH_ASSIGN_OR_RETURN(auto copy, start_local_copy(hex));
    if (!copy) {
      return cache_.path(hex);  // made meanwhile
    }
    Sha256 h;
    const LocalCopy& c = *copy;
    Status s = read_stored(hex, [&h, &c](const char* d, size_t n) {
      h.update(d, n);
      return write_all(c.fd, d, n, c.part);
    });
    if (s && h.hex() != hex) {
      s = Error(Errc::DataLoss, "S3 object " + blob_key(hex) + " hashes to sha256:" + h.hex());
    }
    Status end = end_local_copy(hex, c, s.has_value());
    BERTH_TRY(s);
    BERTH_TRY(end);
    return cache_.path(hex);
  }

  Result<int> open_blob(const std::string& hex) override {
    BERTH_ASSIGN_OR_RETURN(std::string path, local_file(hex));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return fs::errno_error("open", path);
    }
    return fd;
  }

  // ---- local copies ------------------------------------------------------------------------

  Result<int> open_local(const std::string& hex) override {
    std::string path = cache_.path(hex);
    if (!cache_.usable(hex)) {
      return Error(Errc::NotFound, "no local copy of blob sha256:" + hex);
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {  // deleted since usable(): fetched again
      cache_.remove(hex);
      return Error(Errc::NotFound, "no local copy of blob sha256:" + hex);
    }
    if (fd < 0) {
      return fs::errno_error("open", path);
    }
    return fd;
  }

  Result<std::optional<LocalCopy>> start_local_copy(const std::string& hex) override {
    if (cache_.usable(hex, /*count=*/false)) {  // (open_local counted the miss)
      return std::optional<LocalCopy>();
    }
    std::string path = cache_.path(hex);
    static std::atomic<uint64_t> seq{0};
    LocalCopy c;
    c.part = path + ".part" + std::to_string(::getpid()) + "-" + std::to_string(++seq);
    c.fd = ::open(c.part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (c.fd < 0 && errno == ENOENT) {
      // The directory was removed by hand (to free disk, say): made again.
      BERTH_TRY(fs::make_dirs(path.substr(0, path.rfind('/'))));
      c.fd = ::open(c.part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (c.fd < 0) {
      return fs::errno_error("create", c.part);
    }
    return std::optional<LocalCopy>(std::move(c));
  }

  Status read_stored(const std::string& hex, const ByteSink& sink) override {
    return s3_->get_object(blob_key(hex), sink);
  }

  Status read_stored_range(const std::string& hex, uint64_t offset, uint64_t length,
                           const ByteSink& sink) override {
    return s3_->get_object(blob_key(hex), sink, S3Range{offset, length});
  }

  // Not fsynced: local_cache.h checks copies from before a restart instead.
  Status end_local_copy(const std::string& hex, const LocalCopy& copy, bool keep) override {
    Status s = ok();
    struct stat st {};
    if (keep && ::fstat(copy.fd, &st) != 0) {
      s = fs::errno_error("stat", copy.part);
    }
    if (::close(copy.fd) != 0 && s && keep) {
      s = fs::errno_error("close", copy.part);
    }
    if (keep && s && ::rename(copy.part.c_str(), cache_.path(hex).c_str()) != 0) {
      s = fs::errno_error("rename", copy.part);
    }
    if (!keep || !s) {
      ::unlink(copy.part.c_str());
      return s;
    }
    cache_.added(hex, static_cast<uint64_t>(st.st_size));
    return s;
  }

  Status remove_blob(const std::string& hex) override {
    cache_.remove(hex);
    return s3_->delete_object(blob_key(hex));
  }

  Result<std::vector<BlobEntry>> list_blobs() override {
    BERTH_ASSIGN_OR_RETURN(auto objects, s3_->list_objects(kBlobsPrefix));
    std::vector<BlobEntry> out;
    out.reserve(objects.size());
    for (const auto& o : objects) {
      auto slash = o.key.rfind('/');
      out.push_back({o.key.substr(slash + 1), o.mtime, o.size, true});
    }
    return out;
  }

  Result<std::string> hash_blob(const std::string& hex) override {
    Sha256 h;
    BERTH_TRY(read_stored(hex, [&h](const char* d, size_t n) {
      h.update(d, n);
      return ok();
    }));
    return h.hex();
  }

  Result<std::string> presigned_url(const std::string& hex, std::chrono::seconds ttl) override {
    return s3_->presign_get(blob_key(hex), ttl, static_cast<int64_t>(std::time(nullptr)));
  }

  std::string metrics_text() const override { return cache_.metrics_text(); }
  std::string describe() const override {
    return "driver=s3 endpoint=" + s3_->options().endpoint + " bucket=" + s3_->options().bucket +
           " " + cache_.describe();
  }

 private:
  // Parts of an upload sent while its chunks arrived (upload_grew).
  struct Stream {
    std::mutex mu;
    std::string upload_id;  // the multipart upload at uploads/<id>; empty: none yet
    std::vector<S3Part> parts;
    uint64_t sent = 0;  // the spool's first `sent` bytes are in parts
    bool failed = false;
  };
  static constexpr size_t kMaxParts = 10000;  // S3's limit
  uint64_t stream_part_size() const { return kS3MinPartSize * 2; }

  std::shared_ptr<Stream> take_stream(const std::string& id) {
    std::lock_guard lock(streams_mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) {
      return nullptr;
    }
    auto st = std::move(it->second);
    streams_.erase(it);
    return st;
  }

  // Completes an upload whose first parts were streamed: its tail as the last parts, then the
  // multipart upload. NotFound (nothing streamed) or another error with the upload aborted:
  // the caller sends the whole spool instead. Unavailable: S3 is away, and so would a retry be.
  Status finish_stream(const std::string& key, const std::shared_ptr<Stream>& st, int fd,
                       uint64_t size) {
    if (!st) {
      return Error(Errc::NotFound, "nothing streamed");
    }
    std::lock_guard lock(st->mu);
    if (st->upload_id.empty()) {
      return Error(Errc::NotFound, "nothing streamed");
    }
    if (st->failed || st->sent > size) {
      (void)s3_->abort_multipart_upload(key, st->upload_id);
      return Error(Errc::FailedPrecondition, "streamed parts incomplete");
    }
    return send_and_complete(key, st->upload_id, fd, st->sent, size, stream_part_size(), st->parts);
  }

  // The spool's bytes to `key`: one PUT under S3's smallest part, else a multipart upload of
  // parts of at least 5 MiB (S3 allows 10000 parts, so a big spool gets bigger parts).
  Status upload_spool(const std::string& key, int fd, uint64_t size) {
    if (size < kS3MinPartSize) {
      return s3_->put_object_file(key, fd, 0, size);
    }
    uint64_t part_size = std::max<uint64_t>(kS3MinPartSize * 2, (size + 9999) / 10000);
    BERTH_ASSIGN_OR_RETURN(std::string upload_id, s3_->create_multipart_upload(key));
    std::vector<S3Part> parts;
    return send_and_complete(key, upload_id, fd, 0, size, part_size, parts);
  }

  // Sends the spool's bytes from `from` to `size` as the parts after `parts`, `part_size` each
  // (a last part under 5 MiB joins the one before it), then completes the multipart upload. One
  // that fails is aborted; one that cannot be is expire_partial()'s.
  Status send_and_complete(const std::string& key, const std::string& upload_id, int fd,
                           uint64_t from, uint64_t size, uint64_t part_size,
                           std::vector<S3Part>& parts) {
    Status s;
    for (uint64_t off = from; off < size; off += part_size) {
      uint64_t len = std::min(part_size, size - off);
      if (size - off - len > 0 && size - off - len < kS3MinPartSize) {
        len = size - off;
      }
      int n = static_cast<int>(parts.size() + 1);
      auto etag = s3_->upload_part_file(key, upload_id, n, fd, off, len);
      if (!etag) {
        s = etag.error();
        break;
      }
      parts.push_back({n, *etag});
      if (len == size - off) {
        break;
      }
    }
    if (s) {
      s = s3_->complete_multipart_upload(key, upload_id, parts);
    }
    if (!s) {
      (void)s3_->abort_multipart_upload(key, upload_id);
    }
    return s;
  }

  // A committed upload's spool, whose bytes hash to hex, becomes the blob's local copy, so
  // pulls and deploys on this node need no S3 GET. Best effort: the commit is done whatever
  // happens here.
  void keep_spool(const std::string& data, const std::string& hex, uint64_t size) {
    if (::rename(data.c_str(), cache_.path(hex).c_str()) == 0) {
      cache_.added(hex, size);
    }
  }

  S3ClientPtr s3_;
  FsBlobStorage spool_;
  std::mutex streams_mu_;
  std::map<std::string, std::shared_ptr<Stream>> streams_;  // by upload id
  LocalCache cache_;
};

}  // namespace

BlobStoragePtr make_s3_blob_storage(std::shared_ptr<S3Client> s3, std::string data_dir,
                                    LocalCacheOptions cache) {
  return std::make_shared<S3BlobStorage>(std::move(s3), std::move(data_dir), cache);
}

}  // namespace berth::storage
