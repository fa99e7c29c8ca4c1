// SPDX-License-Identifier: Apache-2.0
#include "registry/oci_errors.h"

#include "common/json.h"

namespace berth::registry {

namespace {
constexpr int kStorageRetryAfterSeconds = 60;

struct Row {
  const char* code;
  unsigned status;
};

Row row(Oci c) {
  switch (c) {
    case Oci::BlobUnknown:
      return {"BLOB_UNKNOWN", 404};
    case Oci::BlobUploadInvalid:
      return {"BLOB_UPLOAD_INVALID", 400};
    case Oci::BlobUploadUnknown:
      return {"BLOB_UPLOAD_UNKNOWN", 404};
    case Oci::DigestInvalid:
      return {"DIGEST_INVALID", 400};
    case Oci::ManifestBlobUnknown:
      return {"MANIFEST_BLOB_UNKNOWN", 400};
    case Oci::ManifestInvalid:
      return {"MANIFEST_INVALID", 400};
    case Oci::ManifestUnknown:
      return {"MANIFEST_UNKNOWN", 404};
    case Oci::NameInvalid:
      return {"NAME_INVALID", 400};
    case Oci::NameUnknown:
      return {"NAME_UNKNOWN", 404};
    case Oci::SizeInvalid:
      return {"SIZE_INVALID", 400};
    case Oci::TagInvalid:
      return {"TAG_INVALID", 400};
    case Oci::Unauthorized:
      return {"UNAUTHORIZED", 401};
    case Oci::Denied:
      return {"DENIED", 403};
    case Oci::Unsupported:
      return {"UNSUPPORTED", 415};
    case Oci::TooManyRequests:
      return {"TOOMANYREQUESTS", 429};
    case Oci::RangeInvalid:
      return {"BLOB_UPLOAD_INVALID", 416};
    case Oci::ManifestTooBig:
      return {"SIZE_INVALID", 413};
    case Oci::InsufficientStorage:
      return {"UNKNOWN", 507};
    case Oci::UpstreamFailed:
      return {"UNKNOWN", 502};
    case Oci::Unavailable:
      return {"UNAVAILABLE", 503};
    case Oci::Unknown:
      return {"UNKNOWN", 500};
  }
  return {"UNKNOWN", 500};
}
}  // namespace

http::Response oci_error_response(const OciFailure& f) {
  Row r = row(f.code);
  Json err = {{"code", r.code}, {"message", f.message}};
  if (!f.detail.empty()) {
    Json d = Json::parse(f.detail, nullptr, false);
    err["detail"] = d.is_discarded() ? Json(f.detail) : d;
  }
  http::Response res;
  res.status = r.status;
  res.header("Content-Type", "application/json");
  res.header("Docker-Distribution-API-Version", "registry/2.0");
  if (res.status == 429) {
    // Every 429 berth sends says when to come back. The registry's own 429s come from
    // exhausted storage (ResourceExhausted), which a minute may or may not cure.
    res.header("Retry-After", std::to_string(kStorageRetryAfterSeconds));
  }
  res.body = Json{{"errors", Json::array({err})}}.dump();
  return res;
}

const char* backend_unavailable_message(const Error& e) {
  if (e.code() != Errc::Unavailable) {
    return nullptr;
  }
  switch (e.origin()) {
    case ErrorOrigin::MetadataStore:
      return kStoreUnavailableMessage;
    case ErrorOrigin::BlobStorage:
      return kBlobStorageUnavailableMessage;
    case ErrorOrigin::None:
      break;
  }
  return nullptr;
}

OciFailure from_error(const Error& e, Oci not_found) {
  switch (e.code()) {
    case Errc::NotFound:
      return {not_found, e.message(), {}};
    case Errc::PermissionDenied:
      return {Oci::Denied, e.message(), {}};
    case Errc::Unauthenticated:
      return {Oci::Unauthorized, e.message(), {}};
    case Errc::InvalidArgument:
      return {Oci::ManifestInvalid, e.message(), {}};
    case Errc::Unsupported:
      return {Oci::Unsupported, e.message(), {}};
    case Errc::ResourceExhausted:
      return {Oci::TooManyRequests, e.message(), {}};
    case Errc::NoSpace:
      return {Oci::InsufficientStorage, kInsufficientStorageMessage, {}};
    case Errc::Unavailable: {
      const char* safe = backend_unavailable_message(e);
      return {Oci::Unavailable, safe != nullptr ? safe : e.message(), {}};
    }
    default:
      return {Oci::Unknown, e.message(), {}};
  }
}

}  // namespace berth::registry
