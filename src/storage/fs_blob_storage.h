// SPDX-License-Identifier: Apache-2.0
// Private to src/storage: the fs driver of BlobStorage (blob_storage.h), and the upload spool
// of the S3 driver. Content-addressed blob files and upload sessions on the local filesystem.
// The metadata store decides what is visible; this class only moves bytes crash-safely:
//
//   DATA/
//     blobs/sha256/<first two hex>/<64 hex>   complete blobs, immutable, written only by rename
//     uploads/<uuid>/data                     bytes received so far (append only)
//     uploads/<uuid>/repo                     the repository the session belongs to
//
// A blob appears under blobs/ only after its bytes were hashed, checked and fsynced; the
// rename is atomic, so a crash leaves either no file or the whole file. A file with no row in
// the metadata store is invisible to clients and removed by gc after the grace period.
//
// Blocking: call from the blocking pool (open/stat are quick enough for I/O threads).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "storage/blob_storage.h"

namespace berth::storage {

/// The SHA-256 hex of a file's bytes.
Result<std::string> hash_path(const std::string& path);

class FsBlobStorage : public BlobStorage {
 public:
  FsBlobStorage(std::string root, bool fsync) : root_(std::move(root)), fsync_(fsync) {}

  const char* driver() const override { return "fs"; }
  Status init() override;

  std::string blob_path(const std::string& hex) const;
  std::string upload_data_path(const std::string& id) const override;

  /// Creates uploads/<id>/ with its repo file; returns an append fd for the data. On failure
  /// nothing of the session is left (NoSpace when the disk is full).
  Result<int> create_upload(const std::string& id, const std::string& repo) override;
  /// Reopens an existing upload after a restart; NotFound when absent. Sets repo and size.
  Result<int> reopen_upload(const std::string& id, std::string& repo, uint64_t& size) override;
  /// fsyncs the data, renames it to its blob path and removes the session directory.
  Status commit_upload(const std::string& id, const std::string& hex) override;
  /// Removes the session directory (cancel, digest mismatch, expiry).
  void remove_upload(const std::string& id) override;
  /// Removes uploads/<id>/ when it has no data file (a start that failed or crashed half-way:
  /// nothing can resume it) and no create_upload()/stage_file() is building it right now.
  /// Returns true when removed.
  bool remove_upload_if_broken(const std::string& id) override;
  /// Hashes an upload's data file from the start (after a restart lost the running hash).
  Result<std::string> hash_upload(const std::string& id) override;

  /// Stages a local file as upload `id` (uploads/<id>/data): a hard link when it is on this
  /// filesystem, else a copy; the file itself is never moved or changed. Then checks that the
  /// staged bytes hash to `hex` and are `size` bytes long. commit_upload(id, hex) makes it a
  /// blob; remove_upload(id) drops it. A hard link shares the file's inode, so the caller must
  /// not rewrite the file in place afterwards (replacing it by rename is fine). Returns true
  /// when hard-linked. Errors: NotFound (no such file), InvalidArgument (digest or size
  /// mismatch; nothing is kept), NoSpace when the disk is full, Internal for other I/O
  /// failures.
  Result<bool> stage_file(const std::string& id, const std::string& path, const std::string& hex,
                          int64_t size) override;

  std::vector<BlobEntry> list_uploads() const override;
  /// Nothing: a crash leaves only upload directories, which upload expiry removes.
  Result<int64_t> expire_partial(std::chrono::seconds /*ttl*/) override { return int64_t{0}; }

  Result<int64_t> blob_size(const std::string& hex) override;
  /// The blob file itself.
  Result<std::string> local_file(const std::string& hex) override;
  /// Opens a blob read-only; NotFound when the file is missing.
  Result<int> open_blob(const std::string& hex) override;
  Status remove_blob(const std::string& hex) override;
  Result<std::vector<BlobEntry>> list_blobs() override;
  /// Hashes a blob file (fsck).
  Result<std::string> hash_blob(const std::string& hex) override;
  Result<std::string> presigned_url(const std::string& hex, std::chrono::seconds ttl) override;
  std::string describe() const override {
    return "driver=fs dir=" + root_ + "/blobs fsync=" + (fsync_ ? "true" : "false");
  }

 private:
  // Marks an upload directory as being built, so remove_upload_if_broken() leaves it alone.
  class Building;
  std::vector<BlobEntry> list_blob_files() const;

  std::string root_;
  bool fsync_;
  std::mutex building_mu_;
  std::unordered_set<std::string> building_;  // ids whose directory is being created
};

}  // namespace berth::storage
