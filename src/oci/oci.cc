// SPDX-License-Identifier: Apache-2.0
#include "oci/oci.h"

#include <algorithm>
#include <cctype>

#include "common/json.h"
#include "common/sha256.h"

namespace berth::oci {

namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_hex(char c) { return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) {
    return false;
  }
  size_t i = 0;
  while (i < c.size()) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    // A separator run: '.', '_', '__', or one or more '-'.
    size_t j = i;
    while (j < c.size() && !is_lower_alnum(c[j])) {
      ++j;
    }
    std::string_view sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) {
      return false;
    }
    i = j;
  }
  return true;
}

}  // namespace

Result<Digest> Digest::parse(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Error(Errc::InvalidArgument, "invalid digest '" + std::string(text) + "'");
  }
  std::string_view algo = text.substr(0, colon);
  std::string_view enc = text.substr(colon + 1);
  for (char c : algo) {
    if (!(is_lower_alnum(c) || c == '+' || c == '.' || c == '_' || c == '-')) {
      return Error(Errc::InvalidArgument, "invalid digest algorithm '" + std::string(algo) + "'");
    }
  }
  for (char c : enc) {
    bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '=' || c == '_' || c == '-';
    if (!okc) {
      return Error(Errc::InvalidArgument, "invalid digest '" + std::string(text) + "'");
    }
  }
  if (algo != "sha256") {
    if (algo == "sha512" && enc.size() == 128) {
      return Error(Errc::Unsupported, "digest algorithm sha512 is not supported; use sha256");
    }
    if (algo == "sha512") {
      return Error(Errc::InvalidArgument, "invalid sha512 digest '" + std::string(text) + "'");
    }
    return Error(Errc::Unsupported,
                 "digest algorithm '" + std::string(algo) + "' is not supported");
  }
  if (enc.size() != 64) {
    return Error(Errc::InvalidArgument,
                 "invalid sha256 digest '" + std::string(text) + "': need 64 hex characters");
  }
  for (char c : enc) {
    if (!is_hex(c)) {
      return Error(Errc::InvalidArgument,
                   "invalid sha256 digest '" + std::string(text) + "': need lowercase hex");
    }
  }
  return Digest{std::string(algo), std::string(enc)};
}

Digest Digest::sha256_of(std::string_view bytes) { return Digest{"sha256", Sha256::hex_of(bytes)}; }

Status validate_repository_name(std::string_view name) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::InvalidArgument,
                 "invalid repository name '" + std::string(name) + "': " + why);
  };
  if (name.empty()) {
    return bad("empty");
  }
  if (name.size() > 255) {
    return bad("longer than 255 characters");
  }
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string_view comp = name.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!valid_component(comp)) {
      return bad(
          "each path component must be lowercase letters and digits, separated by '.', '_', "
          "'__' or '-'");
    }
    if (slash == std::string_view::npos) {
      break;
    }
    start = slash + 1;
  }
  return ok();
}

Status validate_tag(std::string_view tag) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::InvalidArgument, "invalid tag '" + std::string(tag) + "': " + why);
  };
  if (tag.empty() || tag.size() > 128) {
    return bad("must be 1 to 128 characters");
  }
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(tag[0])) {
    return bad("must start with a letter, digit or '_'");
  }
  for (char c : tag) {
    if (!(word(c) || c == '.' || c == '-')) {
      return bad("only letters, digits, '_', '.' and '-' are allowed");
    }
  }
  return ok();
}

bool is_digest_reference(std::string_view ref) { return ref.find(':') != std::string_view::npos; }

std::string Platform::str() const {
  if (os.empty() && architecture.empty()) {
    return "";
  }
  std::string s = os + "/" + architecture;
  if (!variant.empty()) {
    s += "/" + variant;
  }
  return s;
}

Status validate_media_type(std::string_view media_type, std::string_view field) {
  // restricted-name = restricted-name-first *126restricted-name-chars (RFC 6838 4.2)
  auto restricted_name = [](std::string_view n) {
    auto first = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (n.empty() || n.size() > 127 || !first(n[0])) {
      return false;
    }
    return std::all_of(n.begin(), n.end(), [&](char c) {
      return first(c) || std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
    });
  };
  auto slash = media_type.find('/');
  if (slash != std::string_view::npos && restricted_name(media_type.substr(0, slash)) &&
      restricted_name(media_type.substr(slash + 1))) {
    return ok();
  }
  return Error(Errc::InvalidArgument, std::string(field) + ": invalid media type '" +
                                          std::string(media_type) +
                                          "': must be type/subtype (RFC 6838), such as "
                                          "application/vnd.oci.image.layer.v1.tar+gzip");
}

bool is_manifest_media_type(std::string_view mt) {
  return mt == kOciManifest || mt == kOciIndex || mt == kDockerManifest ||
         mt == kDockerManifestList;
}

namespace {

Result<Descriptor> parse_descriptor(const Json& j, const std::string& where) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::InvalidArgument, where + ": " + why);
  };
  if (!j.is_object()) {
    return bad("descriptor must be an object");
  }
  Descriptor d;
  auto mt = j.find("mediaType");
  if (mt == j.end() || !mt->is_string() || mt->get<std::string>().empty()) {
    return bad("mediaType is required");
  }
  d.media_type = mt->get<std::string>();
  BERTH_TRY(validate_media_type(d.media_type, where + ".mediaType"));
  auto dg = j.find("digest");
  if (dg == j.end() || !dg->is_string()) {
    return bad("digest is required");
  }
  auto digest = Digest::parse(dg->get<std::string>());
  if (!digest) {
    return bad(digest.error().message());
  }
  d.digest = *digest;
  auto sz = j.find("size");
  if (sz == j.end() || !sz->is_number_integer() || sz->get<int64_t>() < 0) {
    return bad("size must be a non-negative integer");
  }
  d.size = sz->get<int64_t>();
  if (auto at = j.find("artifactType"); at != j.end() && at->is_string()) {
    d.artifact_type = at->get<std::string>();
    if (!d.artifact_type.empty()) {
      BERTH_TRY(validate_media_type(d.artifact_type, where + ".artifactType"));
    }
  }
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    Platform pl;
    pl.os = p->value("os", "");
    pl.architecture = p->value("architecture", "");
    pl.variant = p->value("variant", "");
    d.platform = pl;
  }
  if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
    d.annotations_json = a->dump();
  }
  return d;
}

}  // namespace

Result<Manifest> parse_manifest(std::string_view bytes, std::string_view content_type) {
  auto parsed = parse_json(bytes, "manifest");
  if (!parsed) {
    return parsed.error();
  }
  const Json& j = *parsed;
  if (!j.is_object()) {
    return Error(Errc::InvalidArgument, "manifest must be a JSON object");
  }
  auto sv = j.find("schemaVersion");
  if (sv == j.end() || !sv->is_number_integer()) {
    return Error(Errc::InvalidArgument, "manifest schemaVersion is required");
  }
  if (sv->get<int64_t>() == 1) {
    return Error(Errc::Unsupported,
                 "Docker image manifest schema 1 is not supported; push schema 2 or OCI");
  }
  if (sv->get<int64_t>() != 2) {
    return Error(Errc::InvalidArgument, "manifest schemaVersion must be 2");
  }
  // Strip parameters ("; charset=utf-8") from the Content-Type.
  std::string ct(content_type.substr(0, content_type.find(';')));
  while (!ct.empty() && ct.back() == ' ') {
    ct.pop_back();
  }
  std::string field;
  if (auto mt = j.find("mediaType"); mt != j.end()) {
    if (!mt->is_string()) {
      return Error(Errc::InvalidArgument, "manifest mediaType must be a string");
    }
    field = mt->get<std::string>();
  }
  Manifest m;
  // The spec: a manifest with a mediaType is pushed with that Content-Type. A mismatch is
  // refused whatever the Content-Type says, or the manifest would be served back under a
  // type its pusher did not declare. Media types compare case-insensitively (RFC 6838).
  auto same_type = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  if (!field.empty() && !ct.empty() && !same_type(field, ct)) {
    return Error(Errc::InvalidArgument,
                 "mediaType: '" + field + "' does not match the Content-Type '" + ct + "'");
  }
  if (!field.empty()) {
    BERTH_TRY(validate_media_type(field, "mediaType"));
  }
  m.media_type = !field.empty() ? field : ct;
  if (m.media_type.empty() || !is_manifest_media_type(m.media_type)) {
    // No or unknown declared type: infer from the shape, as the OCI spec allows.
    if (j.contains("manifests")) {
      m.media_type = std::string(kOciIndex);
    } else if (j.contains("config")) {
      m.media_type = std::string(kOciManifest);
    } else {
      return Error(Errc::Unsupported, "unsupported manifest media type '" + m.media_type + "'");
    }
  }
  m.kind = (m.media_type == kOciIndex || m.media_type == kDockerManifestList) ? ManifestKind::Index
                                                                              : ManifestKind::Image;
  if (auto at = j.find("artifactType"); at != j.end()) {
    if (!at->is_string()) {
      return Error(Errc::InvalidArgument, "artifactType must be a string");
    }
    m.artifact_type = at->get<std::string>();
    if (!m.artifact_type.empty()) {
      BERTH_TRY(validate_media_type(m.artifact_type, "artifactType"));
    }
  }
  if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
    m.annotations_json = a->dump();
  }
  if (auto s = j.find("subject"); s != j.end() && !s->is_null()) {
    auto d = parse_descriptor(*s, "subject");
    if (!d) {
      return d.error();
    }
    m.subject = *d;
  }
  if (m.kind == ManifestKind::Image) {
    auto c = j.find("config");
    if (c == j.end()) {
      return Error(Errc::InvalidArgument, "image manifest config is required");
    }
    auto d = parse_descriptor(*c, "config");
    if (!d) {
      return d.error();
    }
    m.config = *d;
    auto layers = j.find("layers");
    if (layers != j.end()) {
      if (!layers->is_array()) {
        return Error(Errc::InvalidArgument, "layers must be an array");
      }
      for (size_t i = 0; i < layers->size(); ++i) {
        auto l = parse_descriptor((*layers)[i], "layers[" + std::to_string(i) + "]");
        if (!l) {
          return l.error();
        }
        m.layers.push_back(std::move(*l));
      }
    } else if (m.media_type == kDockerManifest) {
      return Error(Errc::InvalidArgument, "layers is required");
    }
    if (m.artifact_type.empty() &&
        m.config->media_type != "application/vnd.oci.image.config.v1+json" &&
        m.config->media_type != "application/vnd.docker.container.image.v1+json") {
      m.artifact_type = m.config->media_type;
    }
  } else {
    auto ms = j.find("manifests");
    if (ms == j.end() || !ms->is_array()) {
      return Error(Errc::InvalidArgument, "index manifests must be an array");
    }
    for (size_t i = 0; i < ms->size(); ++i) {
      auto d = parse_descriptor((*ms)[i], "manifests[" + std::to_string(i) + "]");
      if (!d) {
        return d.error();
      }
      m.manifests.push_back(std::move(*d));
    }
  }
  return m;
}

std::optional<Platform> parse_config_platform(std::string_view config_bytes) {
  Json j = Json::parse(config_bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return std::nullopt;
  }
  Platform p;
  if (auto os = j.find("os"); os != j.end() && os->is_string()) {
    p.os = os->get<std::string>();
  }
  if (auto a = j.find("architecture"); a != j.end() && a->is_string()) {
    p.architecture = a->get<std::string>();
  }
  if (auto v = j.find("variant"); v != j.end() && v->is_string()) {
    p.variant = v->get<std::string>();
  }
  if (p.os.empty() && p.architecture.empty()) {
    return std::nullopt;
  }
  return p;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

}  // namespace berth::oci
