// SPDX-License-Identifier: Apache-2.0
#include "certs/acme_protocol.h"

#include <ctime>

#include "http/client.h"

namespace berth::certs::acme {

namespace {

constexpr size_t kMaxList = 1000;  // identifiers, authorizations, challenges, subproblems

std::string str(const Json& j, const char* key) {
  if (j.is_object() && j.contains(key) && j[key].is_string()) {
    return j[key].get<std::string>();
  }
  return "";
}

Result<Json> object_body(std::string_view body, const char* what) {
  auto j = parse_json(body, what);
  if (!j) {
    return std::move(j).error();
  }
  if (!j->is_object()) {
    return Error(Errc::InvalidArgument, std::string(what) + ": not a JSON object");
  }
  return j;
}

Identifier identifier_from(const Json& j) { return Identifier{str(j, "type"), str(j, "value")}; }

Error malformed(const char* what, const std::string& why) {
  return Error(Errc::Unavailable, std::string("acme: malformed ") + what + " from server: " + why);
}

}  // namespace

std::optional<Problem> problem_from_json(const Json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return std::nullopt;
  }
  Problem p;
  p.type = j["type"].get<std::string>();
  p.detail = str(j, "detail");
  if (j.contains("status") && j["status"].is_number_integer()) {
    auto s = j["status"].get<int64_t>();
    p.status = s >= 0 && s < 1000 ? static_cast<int>(s) : 0;
  }
  if (j.contains("subproblems") && j["subproblems"].is_array()) {
    for (const auto& sub : j["subproblems"]) {
      if (p.subproblems.size() >= kMaxList) {
        break;
      }
      auto sp = problem_from_json(sub);
      if (!sp) {
        continue;
      }
      std::string line;
      if (sub.contains("identifier")) {
        line = identifier_from(sub["identifier"]).value + ": ";
      }
      line += sp->type + (sp->detail.empty() ? "" : ": " + sp->detail);
      p.subproblems.push_back(std::move(line));
    }
  }
  return p;
}

std::optional<Problem> parse_problem(std::string_view body) {
  auto j = parse_json(body, "problem");
  if (!j) {
    return std::nullopt;
  }
  return problem_from_json(*j);
}

bool is_problem(const Problem& p, std::string_view name) {
  return p.type.size() == kErrorPrefix.size() + name.size() &&
         std::string_view(p.type).substr(0, kErrorPrefix.size()) == kErrorPrefix &&
         std::string_view(p.type).substr(kErrorPrefix.size()) == name;
}

Error problem_error(const Problem& p, unsigned http_status) {
  std::string msg = "acme: " + p.type;
  if (!p.detail.empty()) {
    msg += ": " + p.detail;
  }
  for (const auto& sub : p.subproblems) {
    msg += "; " + sub;
  }
  Errc code = Errc::FailedPrecondition;
  if (is_problem(p, "rateLimited")) {
    code = Errc::ResourceExhausted;
  } else if (is_problem(p, "serverInternal") || http_status >= 500) {
    code = Errc::Unavailable;
  }
  return Error(code, std::move(msg));
}

Result<Directory> parse_directory(std::string_view body) {
  auto j = object_body(body, "ACME directory");
  if (!j) {
    return malformed("directory", j.error().message());
  }
  Directory d;
  d.new_nonce = str(*j, "newNonce");
  d.new_account = str(*j, "newAccount");
  d.new_order = str(*j, "newOrder");
  if (j->contains("meta")) {
    d.terms_of_service = str((*j)["meta"], "termsOfService");
  }
  if (d.new_nonce.empty() || d.new_account.empty() || d.new_order.empty()) {
    return malformed("directory", "newNonce, newAccount and newOrder are required");
  }
  return d;
}

Result<Order> parse_order(std::string_view body) {
  auto j = object_body(body, "ACME order");
  if (!j) {
    return malformed("order", j.error().message());
  }
  Order o;
  o.status = str(*j, "status");
  if (o.status.empty()) {
    return malformed("order", "no status");
  }
  if (j->contains("identifiers") && (*j)["identifiers"].is_array()) {
    for (const auto& id : (*j)["identifiers"]) {
      if (o.identifiers.size() < kMaxList) {
        o.identifiers.push_back(identifier_from(id));
      }
    }
  }
  if (j->contains("authorizations") && (*j)["authorizations"].is_array()) {
    for (const auto& a : (*j)["authorizations"]) {
      if (!a.is_string()) {
        return malformed("order", "an authorization URL is not a string");
      }
      if (o.authorizations.size() < kMaxList) {
        o.authorizations.push_back(a.get<std::string>());
      }
    }
  }
  o.finalize = str(*j, "finalize");
  o.certificate = str(*j, "certificate");
  if (j->contains("error")) {
    o.error = problem_from_json((*j)["error"]);
  }
  return o;
}

const ChallengeDoc* Authorization::failed() const {
  for (const auto& c : challenges) {
    if (c.error) {
      return &c;
    }
  }
  return nullptr;
}

const ChallengeDoc* Authorization::find(std::string_view type) const {
  for (const auto& c : challenges) {
    if (c.type == type) {
      return &c;
    }
  }
  return nullptr;
}

Result<Authorization> parse_authorization(std::string_view body) {
  auto j = object_body(body, "ACME authorization");
  if (!j) {
    return malformed("authorization", j.error().message());
  }
  Authorization a;
  a.status = str(*j, "status");
  if (a.status.empty()) {
    return malformed("authorization", "no status");
  }
  if (j->contains("identifier")) {
    a.identifier = identifier_from((*j)["identifier"]);
  }
  if (j->contains("wildcard") && (*j)["wildcard"].is_boolean()) {
    a.wildcard = (*j)["wildcard"].get<bool>();
  }
  // Servers before RFC 8555's final text kept the "*." in the identifier.
  if (a.identifier.value.rfind("*.", 0) == 0) {
    a.identifier.value.erase(0, 2);
    a.wildcard = true;
  }
  if (j->contains("challenges") && (*j)["challenges"].is_array()) {
    for (const auto& c : (*j)["challenges"]) {
      if (!c.is_object() || a.challenges.size() >= kMaxList) {
        continue;
      }
      ChallengeDoc d;
      d.type = str(c, "type");
      d.url = str(c, "url");
      d.token = str(c, "token");
      d.status = str(c, "status");
      if (c.contains("error")) {
        d.error = problem_from_json(c["error"]);
      }
      a.challenges.push_back(std::move(d));
    }
  }
  return a;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, int64_t now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  if (value.empty()) {
    return std::nullopt;
  }
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    if (value.size() > 9) {
      return std::chrono::seconds(999999999);
    }
    return std::chrono::seconds(std::stoll(std::string(value)));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  struct tm tm {};
  std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') {
    return std::nullopt;
  }
  int64_t at = static_cast<int64_t>(timegm(&tm));
  return std::chrono::seconds(at > now ? at - now : 0);
}

Result<Url> parse_https_url(std::string_view url) {
  BERTH_ASSIGN_OR_RETURN(auto u, http::parse_client_url(url));
  if (u.scheme != "https") {
    return Error(Errc::InvalidArgument, "URL '" + std::string(url) + "': must start with https://");
  }
  return Url{std::move(u.host), std::move(u.port), std::move(u.target)};
}

}  // namespace berth::certs::acme
