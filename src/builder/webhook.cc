// SPDX-License-Identifier: Apache-2.0
#include "builder/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdint>

#include "builder/git.h"
#include "common/ascii.h"
#include "common/json.h"
#include "common/url.h"
#include "oci/oci.h"

namespace berth::builder {
namespace {

constexpr std::string_view kSigPrefix = "sha256=";
constexpr size_t kSha256Bytes = 32;

using Digest = std::array<unsigned char, kSha256Bytes>;

bool hmac_sha256(std::string_view key, std::string_view data, Digest& out) {
  unsigned int len = 0;
  const unsigned char* r =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return r != nullptr && len == kSha256Bytes;
}

bool all_zeros(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

Error field_error(const std::string& event, const std::string& field, const std::string& what) {
  std::string m = event;
  m += " event: ";
  m += field;
  m += ": ";
  m += what;
  return make_error(Errc::InvalidArgument, std::move(m));
}

/// The string at a dotted path ("repository.clone_url"); nullopt-like via the bool.
const Json* find_path(const Json& root, std::string_view path) {
  const Json* cur = &root;
  while (!path.empty()) {
    size_t dot = path.find('.');
    std::string key(path.substr(0, dot));
    if (!cur->is_object()) {
      return nullptr;
    }
    auto it = cur->find(key);
    if (it == cur->end()) {
      return nullptr;
    }
    cur = &*it;
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return cur;
}

Result<std::string> required_string(const Json& root, const std::string& event,
                                    const std::string& path) {
  const Json* v = find_path(root, path);
  if (v == nullptr || v->is_null()) {
    return field_error(event, path, "missing");
  }
  if (!v->is_string()) {
    return field_error(event, path, "expected a string");
  }
  return v->get<std::string>();
}

Result<std::string> optional_string(const Json& root, const std::string& event,
                                    const std::string& path) {
  const Json* v = find_path(root, path);
  if (v == nullptr || v->is_null()) {
    return std::string();
  }
  if (!v->is_string()) {
    return field_error(event, path, "expected a string");
  }
  return v->get<std::string>();
}

Result<bool> optional_bool(const Json& root, const std::string& event, const std::string& path) {
  const Json* v = find_path(root, path);
  if (v == nullptr || v->is_null()) {
    return false;
  }
  if (!v->is_boolean()) {
    return field_error(event, path, "expected true or false");
  }
  return v->get<bool>();
}

std::string short_id(const std::string& commit) { return commit.substr(0, 7); }

}  // namespace

std::string github_signature(std::string_view secret, std::string_view body) {
  Digest d{};
  if (!hmac_sha256(secret, body, d)) {
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kSigPrefix);
  for (unsigned char b : d) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

bool verify_github_signature(std::string_view secret, std::string_view body,
                             std::string_view header) {
  header = ascii::trim(header);
  if (secret.empty() || header.size() != kSigPrefix.size() + 2 * kSha256Bytes ||
      header.substr(0, kSigPrefix.size()) != kSigPrefix) {
    return false;
  }
  std::string_view hex = header.substr(kSigPrefix.size());
  Digest given{};
  for (size_t i = 0; i < kSha256Bytes; ++i) {
    int hi = ascii::hex_digit(hex[2 * i]);
    int lo = ascii::hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    given[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  Digest expected{};
  if (!hmac_sha256(secret, body, expected)) {
    return false;
  }
  return CRYPTO_memcmp(given.data(), expected.data(), kSha256Bytes) == 0;
}

Result<GithubEvent> parse_github_event(std::string_view event_header, std::string_view body) {
  GithubEvent ev;
  ev.name = std::string(ascii::trim(event_header));
  if (ev.name.empty()) {
    return make_error(Errc::InvalidArgument, "X-GitHub-Event header is missing");
  }
  std::string json_text;
  if (body.substr(0, 8) == "payload=") {
    auto decoded = url::decode(body.substr(8), /*plus_is_space=*/true);
    if (!decoded) {
      return make_error(Errc::InvalidArgument, "payload: malformed form encoding");
    }
    json_text = std::move(*decoded);
  } else {
    json_text = std::string(body);
  }
  std::string what = ev.name;
  what += " event";
  BERTH_ASSIGN_OR_RETURN(Json root, parse_json(json_text, what.c_str()));
  if (!root.is_object()) {
    return make_error(Errc::InvalidArgument, what + ": expected a JSON object");
  }

  if (ev.name == "ping") {
    ev.kind = GithubEventKind::Ping;
    BERTH_ASSIGN_OR_RETURN(ev.zen, optional_string(root, ev.name, "zen"));
    const Json* id = find_path(root, "hook_id");
    if (id != nullptr && id->is_number_integer()) {
      ev.hook_id = std::to_string(id->get<int64_t>());
    }
    return ev;
  }
  if (ev.name != "push") {
    ev.kind = GithubEventKind::Other;
    return ev;
  }

  ev.kind = GithubEventKind::Push;
  BERTH_ASSIGN_OR_RETURN(ev.ref, required_string(root, ev.name, "ref"));
  if (ev.ref.empty()) {
    return field_error(ev.name, "ref", "empty");
  }
  // git's own ref rules forbid these; refusing them keeps a signed but odd payload from
  // writing lines of its own into build logs.
  for (char c : ev.ref) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '\\') {
      return field_error(ev.name, "ref", "not a valid ref name");
    }
  }
  constexpr std::string_view kHeads = "refs/heads/";
  constexpr std::string_view kTags = "refs/tags/";
  if (ev.ref.rfind(kHeads, 0) == 0) {
    ev.branch = ev.ref.substr(kHeads.size());
  } else if (ev.ref.rfind(kTags, 0) == 0) {
    ev.tag = ev.ref.substr(kTags.size());
  }
  BERTH_ASSIGN_OR_RETURN(ev.after, required_string(root, ev.name, "after"));
  if (!is_commit_id(ev.after)) {
    return field_error(ev.name, "after", "expected a 40 or 64 character lower-case hex commit id");
  }
  BERTH_ASSIGN_OR_RETURN(ev.before, optional_string(root, ev.name, "before"));
  if (!ev.before.empty() && !is_commit_id(ev.before)) {
    return field_error(ev.name, "before", "expected a 40 or 64 character lower-case hex commit id");
  }
  BERTH_ASSIGN_OR_RETURN(ev.created, optional_bool(root, ev.name, "created"));
  BERTH_ASSIGN_OR_RETURN(ev.deleted, optional_bool(root, ev.name, "deleted"));
  // Older senders omit "deleted"; an all-zero "after" means the same thing.
  if (all_zeros(ev.after)) {
    ev.deleted = true;
  }
  const Json* repo = find_path(root, "repository");
  if (repo == nullptr || !repo->is_object()) {
    return field_error(ev.name, "repository", "missing");
  }
  BERTH_ASSIGN_OR_RETURN(ev.clone_url, required_string(root, ev.name, "repository.clone_url"));
  BERTH_ASSIGN_OR_RETURN(ev.html_url, optional_string(root, ev.name, "repository.html_url"));
  BERTH_ASSIGN_OR_RETURN(ev.repository_full_name,
                         optional_string(root, ev.name, "repository.full_name"));
  BERTH_ASSIGN_OR_RETURN(ev.head_commit_message,
                         optional_string(root, ev.name, "head_commit.message"));
  BERTH_ASSIGN_OR_RETURN(ev.pusher_name, optional_string(root, ev.name, "pusher.name"));
  return ev;
}

WebhookDecision decide(const GithubEvent& event, const std::string& branch_glob) {
  WebhookDecision d;
  d.action = WebhookAction::Ignore;
  switch (event.kind) {
    case GithubEventKind::Ping:
      d.reason = "ping: webhook configured";
      return d;
    case GithubEventKind::Other:
      d.reason = "event ";
      d.reason += event.name;
      d.reason += " is ignored (berth builds on push)";
      return d;
    case GithubEventKind::Push:
      break;
  }
  if (event.branch.empty()) {
    d.reason = "ref ";
    d.reason += event.ref;
    d.reason += " is not a branch";
    return d;
  }
  if (event.deleted) {
    d.reason = "branch ";
    d.reason += event.branch;
    d.reason += " was deleted";
    return d;
  }
  if (!branch_glob.empty() && !oci::glob_match(branch_glob, event.branch)) {
    d.reason = "branch ";
    d.reason += event.branch;
    d.reason += " does not match ";
    d.reason += branch_glob;
    return d;
  }
  d.action = WebhookAction::Build;
  d.commit = event.after;
  d.branch = event.branch;
  d.reason = "push to ";
  d.reason += event.branch;
  d.reason += " at ";
  d.reason += short_id(event.after);
  d.reason += ": build queued";
  return d;
}

}  // namespace berth::builder
