// SPDX-License-Identifier: Apache-2.0
// Pure OCI values and parsers: digests, repository names and tags, descriptors, image
// manifests and indexes (OCI and Docker v2 schema 2), image config platforms. No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace berth::oci {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kOciEmptyJson = "application/vnd.oci.empty.v1+json";
inline constexpr size_t kMaxManifestBytes = 4 * 1024 * 1024;

/// "sha256:<64 lowercase hex>". Only sha256 is stored; other well-formed algorithms parse
/// with Errc::Unsupported so callers can say so.
struct Digest {
  std::string algorithm;
  std::string hex;

  std::string str() const { return algorithm + ":" + hex; }
  bool operator==(const Digest&) const = default;

  /// InvalidArgument for malformed text, Unsupported for an algorithm other than sha256.
  static Result<Digest> parse(std::string_view text);
  static Digest sha256_of(std::string_view bytes);
};

/// Repository name per the distribution spec grammar (lowercase path components separated by
/// '/', each [a-z0-9]+ joined by '.', '_', '__' or '-+'), at most 255 characters.
Status validate_repository_name(std::string_view name);

/// Tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
Status validate_tag(std::string_view tag);

/// True when text looks like a digest reference ("algo:...") rather than a tag.
bool is_digest_reference(std::string_view ref);

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;

  /// "linux/amd64" or "linux/arm64/v8"; empty when unknown.
  std::string str() const;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::string artifact_type;
  std::optional<Platform> platform;
  std::string annotations_json;  // "{}"-style JSON object text, empty when absent
};

enum class ManifestKind { Image, Index };

/// A parsed manifest: what it references and what it says about itself.
struct Manifest {
  ManifestKind kind = ManifestKind::Image;
  std::string media_type;     // effective media type
  std::string artifact_type;  // artifactType, else (for images) config media type if not an image
  std::optional<Descriptor> config;
  std::vector<Descriptor> layers;     // images (including blobs of artifacts)
  std::vector<Descriptor> manifests;  // indexes
  std::optional<Descriptor> subject;
  std::string annotations_json;

  bool is_index() const { return kind == ManifestKind::Index; }
};

/// A media type as descriptors must carry it: RFC 6838 section 4.2 `type/subtype`, each a
/// restricted name of 1 to 127 characters ([A-Za-z0-9] then [A-Za-z0-9!#$&^_.+-]), no
/// parameters; the image spec's schema uses the same pattern. InvalidArgument naming `field`
/// ("layers[0].mediaType: invalid media type '../../etc/passwd'") otherwise.
Status validate_media_type(std::string_view media_type, std::string_view field);

/// True for the manifest media types berth stores.
bool is_manifest_media_type(std::string_view media_type);

/// Parses manifest bytes. content_type is the request's Content-Type (may be empty). Errors
/// are InvalidArgument naming the problem ("layers[2].digest: invalid digest") or Unsupported
/// for schema 1 / unknown media types.
Result<Manifest> parse_manifest(std::string_view bytes, std::string_view content_type);

/// Reads os/architecture/variant from an image config blob; nullopt when absent/invalid.
std::optional<Platform> parse_config_platform(std::string_view config_bytes);

/// True when a shell-style glob ('*' and '?') matches text.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace berth::oci
