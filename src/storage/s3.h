// SPDX-License-Identifier: Apache-2.0
// An S3 client for one bucket: the handful of operations blob storage needs, through libcurl.
// Requests are signed by libcurl's AWS SigV4 (CURLOPT_AWS_SIGV4) and carry the
// x-amz-content-sha256 header that libcurl 7.88 does not add and RGW requires (the payload's
// SHA-256 for bodies in memory, UNSIGNED-PAYLOAD for bodies streamed from a file); presigned
// URLs are signed here (s3_presign.cc). Bodies stream both ways: nothing holds a whole object
// in memory. The few XML answers are parsed with expat (s3_xml.h).
//
// Errors: S3's own Code and Message in the text ("s3 GET berth/blobs/..: 404 NoSuchKey: ..."),
// the code mapped to Errc: NotFound (NoSuchKey, NoSuchBucket, NoSuchUpload), PermissionDenied
// (AccessDenied, signature or key refused), AlreadyExists (a bucket someone else owns),
// InvalidArgument (a malformed request, too small a part, a bad range), FailedPrecondition,
// Unavailable (the service cannot be reached, timed out, or answered 5xx/SlowDown),
// Internal otherwise. A sink's own error stops a GET and is returned as is.
//
// Thread-safe; every operation blocks (call from the blocking pool, never an I/O thread).
// Connections are kept in a small pool of libcurl handles and reused.
//
// Server-side copies: S3 copies at most 5 GiB with one CopyObject; copy() uses a multipart
// upload of UploadPartCopy parts above S3Options::max_copy_size.
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

namespace detail {
class S3Connections;  // idle libcurl handles (s3_client.cc)
}  // namespace detail

struct S3Options {
  /// "http://127.0.0.1:7480" or "https://s3.eu-west-1.amazonaws.com"; no path.
  std::string endpoint;
  std::string region = "us-east-1";
  std::string bucket;
  std::string access_key_id;
  std::string secret_access_key;
  /// true: http://host/bucket/key (RGW, MinIO); false: http://bucket.host/key (AWS).
  bool path_style = true;
  std::chrono::milliseconds connect_timeout{10'000};
  /// A transfer making no progress for this long fails (Unavailable).
  std::chrono::seconds stall_timeout{60};
  /// copy() of an object larger than this is a multipart upload of UploadPartCopy parts; at or
  /// below it, one CopyObject (which S3 limits to 5 GiB).
  uint64_t max_copy_size = 5ull << 30;
  /// The parts of such a copy; at least kS3MinPartSize, and raised so that no copy needs more
  /// than S3's 10000 parts.
  uint64_t copy_part_size = 512ull << 20;
};

struct S3Object {
  std::string key;
  int64_t size = 0;
  std::string etag;   // without quotes
  int64_t mtime = 0;  // unix seconds
};

struct S3MultipartUpload {
  std::string key;
  std::string upload_id;
  int64_t initiated = 0;  // unix seconds
};

struct S3Part {
  int number = 0;  // 1..10000
  std::string etag;
};

/// Bytes [offset, offset + length) of an object; length > 0.
struct S3Range {
  uint64_t offset = 0;
  uint64_t length = 0;
};

/// Receives a GET's body in order, piece by piece. An error stops the transfer.
using S3Sink = std::function<Status(const char* data, size_t len)>;

/// S3's smallest part but the last of a multipart upload.
inline constexpr uint64_t kS3MinPartSize = 5ull << 20;

class S3Client {
 public:
  explicit S3Client(S3Options opts);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Options& options() const { return opts_; }

  /// Creates the bucket; one this user owns already is success.
  Status create_bucket();

  Status put_object(const std::string& key, std::string_view body);
  /// Uploads bytes [offset, offset + length) of a file (read with pread; fd is not moved).
  Status put_object_file(const std::string& key, int fd, uint64_t offset, uint64_t length);

  /// Size, ETag and mtime; NotFound when absent.
  Result<S3Object> head_object(const std::string& key);
  /// Streams the object (or a range of it) to sink.
  Status get_object(const std::string& key, const S3Sink& sink,
                    std::optional<S3Range> range = std::nullopt);
  /// Deletes; an absent key is success (S3's own semantics).
  Status delete_object(const std::string& key);
  /// Server-side copy within the bucket with one CopyObject (S3 allows up to 5 GiB).
  Status copy_object(const std::string& from, const std::string& to);
  /// Server-side copy of an object of `size` bytes: copy_object() up to
  /// options().max_copy_size; above it a multipart upload to `to` whose parts are copied from
  /// ranges of `from` (UploadPartCopy) and then completed, or aborted when a step fails. `to`
  /// shows no object until the copy is complete.
  Status copy(const std::string& from, const std::string& to, uint64_t size);

  /// Starts a multipart upload; returns its UploadId.
  Result<std::string> create_multipart_upload(const std::string& key);
  /// Uploads one part (number 1..10000); returns its ETag for complete_multipart_upload().
  Result<std::string> upload_part(const std::string& key, const std::string& upload_id, int number,
                                  std::string_view body);
  Result<std::string> upload_part_file(const std::string& key, const std::string& upload_id,
                                       int number, int fd, uint64_t offset, uint64_t length);
  /// Uploads one part (number 1..10000) copied server-side from bytes `range` of the object
  /// `from`; returns its ETag.
  Result<std::string> upload_part_copy(const std::string& key, const std::string& upload_id,
                                       int number, const std::string& from, S3Range range);
  /// Makes the object of the parts (in ascending number order).
  Status complete_multipart_upload(const std::string& key, const std::string& upload_id,
                                   const std::vector<S3Part>& parts);
  /// Drops an upload and its parts; NotFound when S3 knows no such upload.
  Status abort_multipart_upload(const std::string& key, const std::string& upload_id);

  /// Every object whose key starts with prefix, in key order (all pages; page_size is S3's
  /// max-keys, for tests of the paging).
  Result<std::vector<S3Object>> list_objects(const std::string& prefix, int page_size = 1000);
  /// Every multipart upload in progress under prefix (all pages).
  Result<std::vector<S3MultipartUpload>> list_multipart_uploads(const std::string& prefix,
                                                                int page_size = 1000);
  /// When the upload's latest part arrived (unix seconds; 0 for none yet), from ListParts (all
  /// pages): how a sweep tells an upload still sending, on any node, from an abandoned one.
  Result<int64_t> last_part_time(const std::string& key, const std::string& upload_id,
                                 int page_size = 1000);

  /// A URL anyone can GET the object with until now + expires (SigV4 query signing; at most
  /// 7 days). Pure: no request is made.
  std::string presign_get(const std::string& key, std::chrono::seconds expires,
                          int64_t now_unix) const;

 private:
  std::string url_for(const std::string& key) const;  // encoded, without a query
  std::string host() const;                           // as the Host header carries it

  S3Options opts_;
  std::unique_ptr<detail::S3Connections> conns_;
};

using S3ClientPtr = std::shared_ptr<S3Client>;

/// S3's URI encoding (SigV4): everything but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex),
/// and '/' kept when keep_slash.
std::string s3_uri_encode(std::string_view in, bool keep_slash);

}  // namespace berth::storage
