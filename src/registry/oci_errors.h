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
  RangeInvalid,    // 416 with BLOB_UPLOAD_INVALID / RANGE code
  ManifestTooBig,  // 413
  Unknown,         // 500
};

struct OciFailure {
  Oci code;
  std::string message;
  std::string detail;  // JSON text or empty
};

/// The response for a failure: status from the table, body {"errors":[{code,message,detail}]}.
http::Response oci_error_response(const OciFailure& f);

/// A generic mapping for store/driver errors that reach the edge unclassified.
OciFailure from_error(const Error& e, Oci not_found = Oci::NameUnknown);

}  // namespace berth::registry
