// SPDX-License-Identifier: Apache-2.0
// OCI/Docker manifests and indexes as a registry receives them (PUT /v2/<name>/manifests/<ref>),
// plus the small parsers of names, tags and digests every registry path goes through.
// Input: the first byte picks the Content-Type, the rest is the body.
#include <string>

#include "fuzz.h"
#include "oci/oci.h"

namespace {

constexpr std::string_view kContentTypes[] = {
    "",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
    "text/plain",
};

void check_descriptor(const berth::oci::Descriptor& d) {
  // Whatever the parser accepted must be what the rest of berth relies on: a valid digest
  // (it becomes a blob path) and a valid media type (it is echoed in headers).
  auto again = berth::oci::Digest::parse(d.digest.str());
  BERTH_FUZZ_CHECK(again && *again == d.digest);
  BERTH_FUZZ_CHECK(d.size >= 0);
  BERTH_FUZZ_CHECK(d.media_type.empty() || berth::oci::validate_media_type(d.media_type, "x"));
}

}  // namespace

BERTH_FUZZ_TARGET(oci_manifest) {
  using namespace berth;
  fuzz::quiet_logs();
  if (size == 0) {
    return 0;
  }
  std::string_view ct = kContentTypes[data[0] % std::size(kContentTypes)];
  std::string_view body = fuzz::as_view(data + 1, size - 1);

  if (auto m = oci::parse_manifest(body, ct)) {
    if (m->config) {
      check_descriptor(*m->config);
    }
    for (const auto& d : m->layers) {
      check_descriptor(d);
    }
    for (const auto& d : m->manifests) {
      check_descriptor(d);
    }
    if (m->subject) {
      check_descriptor(*m->subject);
    }
  }

  // The same bytes as a name, a tag, a digest and a reference.
  if (auto d = oci::Digest::parse(body)) {
    BERTH_FUZZ_CHECK(d->str() == body);
  }
  if (oci::validate_repository_name(body)) {
    BERTH_FUZZ_CHECK(body.size() <= 255 && body.find("..") == std::string_view::npos);
  }
  if (oci::validate_tag(body)) {
    BERTH_FUZZ_CHECK(body.size() <= 128 && body.find('/') == std::string_view::npos);
  }
  (void)oci::is_digest_reference(body);
  (void)oci::is_manifest_media_type(body);
  (void)oci::validate_media_type(body, "mediaType");
  std::string_view rest;
  std::string_view pattern = fuzz::first_line(body, rest);
  (void)oci::glob_match(pattern, rest);
  return 0;
}
