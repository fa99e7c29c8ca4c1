// SPDX-License-Identifier: Apache-2.0
// The one table that maps registry failures to the OCI error body and HTTP status.
#pragma once

#include <string>

#include "common/result.h"
#include "http/http.h"

namespace berth::registry {

enum class Oci {
  BlobUnknown,
  BlobUploadInvalid,
  BlobUploadUnknown,
  DigestInvalid,
  ManifestBlobUnknown,
  ManifestInvalid,
  ManifestUnknown,
  NameInvalid,
  NameUnknown,
  SizeInvalid,
  TagInvalid,
  Unauthorized,
  Denied,
  Unsupported,
  TooManyRequests,
  RangeInvalid,         // 416 with BLOB_UPLOAD_INVALID / RANGE code
  ManifestTooBig,       // 413
  InsufficientStorage,  // 507: the disk is full (never a client's fault, never a rate limit)
  UpstreamFailed,       // 502: an upstream registry could not be reached or answered an error
  Unavailable,          // 503: a backend (the metadata store, S3) is away for now
  Unknown,              // 500
};

struct OciFailure {
  Oci code;
  std::string message;
  std::string detail;  // JSON text or empty
};

/// The response for a failure: status from the table, body {"errors":[{code,message,detail}]}.
http::Response oci_error_response(const OciFailure& f);

/// What a client is told when the disk is full: no server path, no errno text.
inline constexpr const char* kInsufficientStorageMessage =
    "insufficient storage: the registry cannot store more data until space is freed";

/// What a client is told when the metadata store or the blob storage is away (503): what is
/// away and what to do, without the host, port, bucket or key the error's own text names.
inline constexpr const char* kStoreUnavailableMessage =
    "the metadata store is unavailable, try again";
inline constexpr const char* kBlobStorageUnavailableMessage =
    "blob storage is unavailable, try again";

/// For an Unavailable error that began in the metadata store or the blob storage (its
/// ErrorOrigin): kStoreUnavailableMessage or kBlobStorageUnavailableMessage. nullptr for any
/// other error (a client may read its text). The edges (here and the REST API) send the client
/// this instead and log the error's own text.
const char* backend_unavailable_message(const Error& e);

/// A generic mapping for store/driver errors that reach the edge unclassified. NoSpace becomes
/// InsufficientStorage with kInsufficientStorageMessage (the error's own text names server
/// paths: it belongs in the log); an Unavailable metadata store or blob storage becomes
/// backend_unavailable_message()'s text (the error's own names hosts, ports, buckets, keys).
OciFailure from_error(const Error& e, Oci not_found = Oci::NameUnknown);

}  // namespace berth::registry
