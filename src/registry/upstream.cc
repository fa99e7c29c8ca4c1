// SPDX-License-Identifier: Apache-2.0
// Talking to an upstream registry as docker does: anonymous, HTTP Basic, or the Bearer token
// flow (401 challenge -> token endpoint -> retry), and redirects to blob storage.
#include "registry/upstream.h"

#include "common/ascii.h"
#include "common/json.h"
#include "common/url.h"

namespace berth::registry {

using ascii::lower;

namespace {

constexpr int kMaxHops = 6;  // redirects plus one authentication retry

// Location may be absolute or absolute-path (RFC 9110 §10.2.2).
std::string resolve_location(const std::string& location, const http::ClientUrl& from) {
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) {
    return location;
  }
  if (!location.empty() && location.front() == '/') {
    return from.origin() + location;
  }
  std::string dir = from.target.substr(0, from.target.rfind('/') + 1);
  return from.origin() + dir + location;
}

}  // namespace

std::optional<AuthChallenge> parse_challenge(std::string_view h) {
  size_t sp = h.find(' ');
  AuthChallenge c;
  c.scheme = lower(std::string(h.substr(0, sp)));
  if (c.scheme.empty()) {
    return std::nullopt;
  }
  if (sp == std::string_view::npos) {
    return c;
  }
  size_t i = sp + 1;
  while (i < h.size()) {
    while (i < h.size() && (h[i] == ' ' || h[i] == ',')) {
      ++i;
    }
    size_t eq = h.find('=', i);
    if (eq == std::string_view::npos) {
      break;
    }
    std::string key = lower(std::string(h.substr(i, eq - i)));
    i = eq + 1;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      while (i < h.size() && h[i] != '"') {
        if (h[i] == '\\' && i + 1 < h.size()) {
          ++i;
        }
        value += h[i++];
      }
      if (i >= h.size()) {
        return std::nullopt;  // unclosed quote
      }
      ++i;
    } else {
      size_t end = h.find(',', i);
      value = std::string(h.substr(i, end == std::string_view::npos ? end : end - i));
      i = end == std::string_view::npos ? h.size() : end;
    }
    c.params[key] = value;
  }
  return c;
}

std::string remote_repository(const UpstreamSpec& spec, const std::string& repository) {
  return repository.substr(spec.prefix.size() + 1);
}

std::string Upstream::describe() const { return role_ + " " + spec_.name + " (" + spec_.url + ")"; }

std::string Upstream::auth_seen() {
  std::lock_guard lock(mu_);
  return auth_seen_;
}

std::string Upstream::basic_header() const {
  return "Basic " + b64::encode(spec_.username + ":" + spec_.password);
}

Result<std::pair<std::string, std::chrono::seconds>> Upstream::fetch_token(const AuthChallenge& c) {
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty()) {
    return Error(Errc::Unavailable, describe() + " asked for a Bearer token without a realm");
  }
  std::string url = realm->second;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  for (const char* key : {"service", "scope"}) {
    auto it = c.params.find(key);
    if (it != c.params.end()) {
      url += sep + std::string(key) + "=" + url::encode(it->second);
      sep = '&';
    }
  }
  http::ClientRequest req;
  req.url = url;
  req.max_body = 1 << 20;
  if (!spec_.username.empty()) {
    req.headers.emplace_back("Authorization", basic_header());
  }
  auto r = client_.send(req);
  if (!r) {
    return Error(Errc::Unavailable, describe() + ": token endpoint: " + r.error().message());
  }
  if (r->status != 200) {
    Errc code = r->status == 401 || r->status == 403 ? Errc::PermissionDenied : Errc::Unavailable;
    return Error(code, describe() + ": token endpoint " + realm->second + " answered " +
                           std::to_string(r->status) +
                           (spec_.username.empty() ? " (no credentials configured)" : ""));
  }
  auto j = parse_json(r->body, "token response");
  if (!j || !j->is_object()) {
    return Error(Errc::Unavailable, describe() + ": token endpoint sent no JSON object");
  }
  std::string token = j->value("token", std::string());
  if (token.empty()) {
    token = j->value("access_token", std::string());
  }
  if (token.empty()) {
    return Error(Errc::Unavailable, describe() + ": token endpoint sent no token");
  }
  // Used until 10 s before it expires (docker's default lifetime is 60 s).
  int64_t expires_in = j->contains("expires_in") && (*j)["expires_in"].is_number_integer()
                           ? (*j)["expires_in"].get<int64_t>()
                           : 60;
  return std::make_pair(token, std::chrono::seconds(std::max<int64_t>(expires_in - 10, 1)));
}

Result<http::ClientResponse> Upstream::request(http::ClientRequest req, const std::string& path,
                                               const std::string& cache_key) {
  bool absolute = path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0;
  std::string url = absolute ? path : base_.origin() + path;
  // Tokens are per repository and per kind of access: a pull token cannot start an upload.
  bool reads = req.method == "GET" || req.method == "HEAD";
  std::string token_key = "bearer:" + cache_key + (reads ? ":pull" : ":push");
  std::string authorization;
  bool cached = false;
  {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    // A Bearer token is good for the repository it was issued for; Basic for everything.
    for (const std::string& key : {token_key, std::string("basic")}) {
      auto it = auth_.find(key);
      if (it != auth_.end() && it->second.second > now) {
        authorization = it->second.first;
        cached = true;
        break;
      }
    }
  }
  bool retried_auth = false;
  auto base_headers = req.headers;
  for (int hop = 0; hop < kMaxHops; ++hop) {
    BERTH_ASSIGN_OR_RETURN(auto target, http::parse_client_url(url));
    bool same_origin = target.origin() == base_.origin();
    req.url = url;
    req.headers = base_headers;
    if (same_origin && !authorization.empty()) {
      req.headers.emplace_back("Authorization", authorization);
    }
    auto r = client_.send(req);
    if (!r) {
      return Error(r.error().code() == Errc::Cancelled ? Errc::Cancelled : Errc::Unavailable,
                   describe() + ": " + r.error().message());
    }
    if (r->status == 403 && same_origin && cached && !retried_auth) {
      // A cached token without the rights this request needs: ask afresh.
      authorization.clear();
      cached = false;
      continue;
    }
    if (r->status == 401 && same_origin && !retried_auth) {
      auto c = parse_challenge(r->header("www-authenticate"));
      if (!c) {
        return r;
      }
      retried_auth = true;
      std::string key;
      auto until = std::chrono::steady_clock::now();
      if (c->scheme == "basic") {
        if (spec_.username.empty()) {
          return r;
        }
        authorization = basic_header();
        key = "basic";
        until += std::chrono::hours(24);
      } else if (c->scheme == "bearer") {
        BERTH_ASSIGN_OR_RETURN(auto token, fetch_token(*c));
        authorization = "Bearer " + token.first;
        key = token_key;
        until += token.second;
      } else {
        return r;
      }
      std::lock_guard lock(mu_);
      auth_seen_ = c->scheme;
      auth_[key] = {authorization, until};
      continue;
    }
    if (r->status >= 300 && r->status < 400 && r->status != 304) {
      std::string location = r->header("location");
      if (location.empty()) {
        return r;
      }
      url = resolve_location(location, target);
      continue;
    }
    return r;
  }
  return Error(Errc::Unavailable, describe() + ": too many redirects for " + path);
}

}  // namespace berth::registry
