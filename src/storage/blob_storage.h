// SPDX-License-Identifier: Apache-2.0
// Where the registry's blob content lives: one interface, two drivers (docs/storage.md).
//
//   fs (default)  DATA/blobs/sha256/<2 hex>/<64 hex>, written by rename (fs_blob_storage.h)
//   s3            the bucket's blobs/sha256/<2 hex>/<64 hex> keys (s3_blob_storage.cc)
//
// Upload sessions are a spool file under DATA/uploads/<id>/ on both drivers: the registry
// appends a client's chunks to it and hashes them on the way, and commit_upload() makes the
// checked bytes a blob. On S3 the commit uploads the spool as multipart parts (5 MiB and more)
// to a temporary key, completes it, copies it to the content-addressed key, and deletes the
// temporary one, so a blob key only ever holds verified bytes. The metadata store decides what
// is visible; this interface only moves bytes.
//
// Readers that need a local file (the runtime unpacking layers, the builder reading its base
// image) call local_file(): the blob file itself on fs, a verified copy in DATA/cache/blobs
// on S3 (kept under a size limit, least recently used first out: LocalCacheOptions; a pushed
// blob's checked spool becomes its copy at the commit). open_blob() and local_file() make a missing
// copy themselves and return once it is complete; a reader that wants the bytes while they arrive
// (the registry's blob GET, which sends them on as they land) makes the copy itself: open_local(),
// and when that is NotFound, start_local_copy(), read_stored() into its part file while hashing,
// end_local_copy().
//
// Thread-safe. Every method may block (disk, or the network on S3): call from the blocking
// pool. Errors: NotFound (no such blob or upload), NoSpace (the local disk is full),
// Unavailable (S3 cannot be reached), InvalidArgument (staged bytes that do not match),
// Internal.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace berth::storage {

struct BlobEntry {
  std::string name;      // blob hex or upload id
  int64_t mtime = 0;     // unix seconds: last activity
  int64_t size = 0;      // bytes
  bool has_data = true;  // uploads: false when uploads/<id>/data is missing
};

/// Receives a blob's bytes in order, piece by piece; an error stops the transfer.
using ByteSink = std::function<Status(const char* data, size_t len)>;

/// A local copy of a remote blob while it is written (start_local_copy()).
struct LocalCopy {
  std::string part;  // the file being written; end_local_copy() renames or removes it
  int fd = -1;       // write-only; end_local_copy() closes it
};

/// The id suffix of a transient upload (create_upload()). Client upload ids are UUIDs, so a
/// client can never name one.
inline constexpr std::string_view kTransientUpload = ".part";

class BlobStorage {
 public:
  virtual ~BlobStorage() = default;

  /// "fs" or "s3".
  virtual const char* driver() const = 0;
  /// Creates what the driver needs (directories; the bucket when it is missing).
  virtual Status init() = 0;

  // ---- upload sessions (a local spool on every driver) -----------------------------------

  virtual std::string upload_data_path(const std::string& id) const = 0;
  /// Creates uploads/<id>/ with its repo file; returns an append fd for the data. On failure
  /// nothing of the session is left. An id that ends in kTransientUpload is one file instead,
  /// uploads/<id>, with no directory and no repo file (repo is ignored): bytes berthd writes
  /// itself and never resumes (pull-through). Commit, remove, list and expiry treat it alike.
  virtual Result<int> create_upload(const std::string& id, const std::string& repo) = 0;
  /// Reopens an existing upload after a restart; NotFound when absent. Sets repo and size.
  virtual Result<int> reopen_upload(const std::string& id, std::string& repo, uint64_t& size) = 0;
  /// Makes the upload's bytes (already checked to hash to hex) the blob `hex` and removes the
  /// session. On failure the session stays (the caller drops it) and no blob appears.
  virtual Status commit_upload(const std::string& id, const std::string& hex) = 0;
  /// Removes the session (cancel, digest mismatch, expiry).
  virtual void remove_upload(const std::string& id) = 0;
  /// The upload's file has grown to `size` bytes, all of them to stay (called after each
  /// append, one call at a time per upload, on the appending thread, which it may hold). A
  /// driver may start sending them on (S3: multipart parts while the push streams). Never
  /// fails the append: what could not be sent now is sent by commit_upload.
  virtual void upload_grew(const std::string& id, uint64_t size) {
    (void)id;
    (void)size;
  }
  /// Removes uploads/<id>/ when it has no data file and nothing is building it right now.
  virtual bool remove_upload_if_broken(const std::string& id) = 0;
  /// Hashes an upload's data from the start (after a restart lost the running hash).
  virtual Result<std::string> hash_upload(const std::string& id) = 0;
  /// Stages a local file as upload `id` (a hard link when it can, else a copy) and checks it
  /// hashes to hex and is `size` bytes (InvalidArgument otherwise; nothing kept). Returns true
  /// when hard-linked: the caller must not rewrite the file in place afterwards.
  virtual Result<bool> stage_file(const std::string& id, const std::string& path,
                                  const std::string& hex, int64_t size) = 0;
  virtual std::vector<BlobEntry> list_uploads() const = 0;
  /// Removes what crashed commits left in the backing store and nothing will finish (S3:
  /// multipart uploads and temporary objects older than ttl). Returns how many.
  virtual Result<int64_t> expire_partial(std::chrono::seconds ttl) = 0;

  // ---- blobs -------------------------------------------------------------------------------

  /// The stored blob's size; NotFound when absent.
  virtual Result<int64_t> blob_size(const std::string& hex) = 0;
  /// A local file with the blob's bytes (see above); NotFound when absent.
  virtual Result<std::string> local_file(const std::string& hex) = 0;
  /// A read-only fd of local_file(); the caller closes it.
  virtual Result<int> open_blob(const std::string& hex) = 0;

  // ---- local copies of remote blobs (S3; the defaults suit a driver whose blobs are local) --

  /// A read-only fd of the blob when reading it needs no transfer (fs: the blob file; S3: its
  /// local copy, NotFound when there is none yet). The caller closes it.
  virtual Result<int> open_local(const std::string& hex) { return open_blob(hex); }
  /// A new part file for the blob's local copy, for the caller to fill with read_stored()'s
  /// bytes; nullopt when there is nothing to copy (a local driver, or a copy that is complete
  /// now: open_local() it). Several copies of one blob may be under way; the renames are
  /// atomic and the contents equal.
  virtual Result<std::optional<LocalCopy>> start_local_copy(const std::string& /*hex*/) {
    return std::optional<LocalCopy>();
  }
  /// Streams the stored bytes to sink (S3: one GET); Unsupported on a local driver.
  virtual Status read_stored(const std::string& /*hex*/, const ByteSink& /*sink*/) {
    return Error(Errc::Unsupported, "this blob storage keeps no remote copy");
  }
  /// Streams bytes [offset, offset + length) of the stored blob to sink (S3: one ranged GET):
  /// a range of a blob with no local copy, without fetching all of it. Unsupported on a local
  /// driver.
  virtual Status read_stored_range(const std::string& /*hex*/, uint64_t /*offset*/,
                                   uint64_t /*length*/, const ByteSink& /*sink*/) {
    return Error(Errc::Unsupported, "this blob storage keeps no remote copy");
  }
  /// Closes copy.fd; keep (the caller checked every byte hashes to hex): renames the part into
  /// place, so open_local() finds it (not fsynced: S3's copies from before a restart are
  /// hashed before use); otherwise, or when that fails, removes it.
  virtual Status end_local_copy(const std::string& /*hex*/, const LocalCopy& /*copy*/,
                                bool /*keep*/) {
    return Error(Errc::Unsupported, "this blob storage keeps no local copies");
  }

  /// Removes the blob (and any local copy); an absent blob is success.
  virtual Status remove_blob(const std::string& hex) = 0;
  /// Every stored blob (gc, fsck).
  virtual Result<std::vector<BlobEntry>> list_blobs() = 0;
  /// Hashes the stored bytes (fsck).
  virtual Result<std::string> hash_blob(const std::string& hex) = 0;
  /// A URL a client can GET the blob from directly until now + ttl (S3: presigned);
  /// Unsupported on fs.
  virtual Result<std::string> presigned_url(const std::string& hex, std::chrono::seconds ttl) = 0;
  /// The driver's own metrics in Prometheus text (S3: its local copies); "" when none.
  virtual std::string metrics_text() const { return {}; }
  /// What berthd logs at start: the driver, where the blobs are, and its local state as
  /// key=value pairs.
  virtual std::string describe() const = 0;
};

using BlobStoragePtr = std::shared_ptr<BlobStorage>;

/// blobs/sha256/<first two hex>/<hex>: the relative path (fs) and the key (S3) of a blob.
std::string blob_key(const std::string& hex);

/// Blobs and uploads under root (DATA). fsync: blobs are fsynced before they become visible.
BlobStoragePtr make_fs_blob_storage(std::string root, bool fsync);

/// The S3 driver's local copies of blobs (DATA/cache/blobs; docs/storage.md).
struct LocalCacheOptions {
  uint64_t max_bytes = uint64_t{10} << 30;  // least recently used go past it; 0 = no limit
  bool keep_pushed = true;                  // a committed upload's spool becomes its copy
  std::chrono::seconds min_age{600};        // a copy used this recently is never pruned
  unsigned min_free_percent = 10;           // copies are pruned to leave this much of the disk free
};

class S3Client;
/// Blobs in the S3 client's bucket; upload spools and the local copies of local_file() under
/// data_dir. Nothing local is fsynced: a blob is durable once S3 has it.
BlobStoragePtr make_s3_blob_storage(std::shared_ptr<S3Client> s3, std::string data_dir,
                                    LocalCacheOptions cache = {});

}  // namespace berth::storage
