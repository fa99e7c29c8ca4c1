// SPDX-License-Identifier: Apache-2.0
#include "api/api.h"

#include <ctime>

#include "api/internal.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "registry/oci_errors.h"

namespace berth::api {

unsigned status_for(Errc code) {
  switch (code) {
    case Errc::Ok:
      return 200;
    case Errc::InvalidArgument:
      return 400;
    case Errc::NotFound:
      return 404;
    case Errc::AlreadyExists:
      return 409;
    case Errc::FailedPrecondition:
      return 412;
    case Errc::Conflict:
      return 409;
    case Errc::Unauthenticated:
      return 401;
    case Errc::PermissionDenied:
      return 403;
    case Errc::ResourceExhausted:
      return 413;
    case Errc::Unavailable:
      return 503;
    case Errc::DeadlineExceeded:
      return 504;
    case Errc::Cancelled:
      return 499;
    case Errc::Unsupported:
      return 501;
    case Errc::DataLoss:
      return 500;
    case Errc::NoSpace:
      return 507;
    case Errc::Internal:
      return 500;
  }
  return 500;
}

http::Response json_response(unsigned status, const Json& body) {
  http::Response r;
  r.status = status;
  r.header("Content-Type", "application/json");
  // Text from containers and git may hold invalid UTF-8: replaced, never an exception.
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  return r;
}

Error no_endpoint(const ApiCall& call) {
  return Error(Errc::NotFound, "no API endpoint " + call.method_string + " /api/v1/" + call.rest);
}

http::Response error_response(const Error& e) {
  std::string message = e.message();
  if (e.code() == Errc::Unavailable) {
    // The metadata store or S3 away: the client hears that much, the log gets the error's own
    // text with the host, port, bucket and key in it.
    if (const char* safe = registry::backend_unavailable_message(e); safe != nullptr) {
      log::get("api")->warn("request failed: backend unavailable error={}", message);
      message = safe;
    }
  }
  return json_response(status_for(e.code()),
                       Json{{"error", {{"code", errc_name(e.code())}, {"message", message}}}});
}

awaitable<void> reply_error(http::Exchange& ex, Errc code, std::string message) {
  return ex.send(error_response(Error(code, std::move(message))));
}

http::Response RestHandler::serve(const ApiCall& call) {
  auto r = dispatch(call);
  return r ? std::move(*r) : error_response(r.error());
}

Status RestHandler::allow(const ApiCall& call, const std::string& action,
                          const std::string& resource) {
  return iam_.authorize(call.ctx, action, resource);
}

awaitable<Result<std::shared_ptr<ApiCall>>> read_call(http::Exchange& ex, std::string rest,
                                                      std::vector<const char*> params,
                                                      size_t max_body) {
  auto call = std::make_shared<ApiCall>();
  call->ctx = ex.context();
  call->method = ex.method();
  call->method_string = ex.method_string();
  call->rest = std::move(rest);
  for (const char* k : params) {
    if (auto v = ex.query(k)) {
      call->query[k] = *v;
    }
  }
  if (call->method == bhttp::verb::post || call->method == bhttp::verb::patch) {
    auto body = co_await ex.read_all(max_body);
    if (!body) {
      co_return body.error();
    }
    call->body = std::move(*body);
  }
  co_return call;
}

awaitable<void> serve_call(http::Exchange& ex, std::string rest, std::vector<const char*> params,
                           size_t max_body, BlockingPool& pool,
                           std::function<http::Response(const ApiCall&)> handle) {
  auto read = co_await read_call(ex, std::move(rest), std::move(params), max_body);
  if (!read) {
    co_return co_await ex.send(error_response(read.error()));
  }
  std::shared_ptr<ApiCall> call = std::move(*read);
  auto job = [call, handle = std::move(handle)] { return handle(*call); };
  http::Response r = co_await run_blocking(pool, std::move(job));
  co_await ex.send(std::move(r));
}

Result<std::optional<std::vector<std::string>>> string_list_field(const Json& body,
                                                                  const char* key) {
  auto it = body.find(key);
  if (it == body.end()) {
    return std::optional<std::vector<std::string>>();
  }
  std::vector<std::string> out;
  if (!it->is_array()) {
    return Error(Errc::InvalidArgument, std::string(key) + " must be a list of strings");
  }
  for (const auto& v : *it) {
    if (!v.is_string()) {
      return Error(Errc::InvalidArgument, std::string(key) + " must be a list of strings");
    }
    out.push_back(v.get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<Json> parse_object_body(const std::string& body) {
  if (body.empty()) {
    return Json::object();
  }
  BERTH_ASSIGN_OR_RETURN(Json j, parse_json(body, "request body"));
  if (!j.is_object()) {
    return Error(Errc::InvalidArgument, "request body must be a JSON object");
  }
  return j;
}

// Splits "a/b/c" into its segments.
std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    out.push_back(
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) {
      break;
    }
    start = slash + 1;
  }
  return out;
}

namespace {

Json repo_json(const store::Repository& r) {
  return Json{{"name", r.name},
              {"immutable_tags", r.immutable_tags},
              {"mutable_tags", r.mutable_tag_globs},
              {"created_at", r.created_at}};
}

Json image_json(const store::ImageSummary& s) {
  Json j{{"digest", s.digest}, {"media_type", s.media_type}, {"tags", s.tags},
         {"size", s.size},     {"platform", s.platform},     {"pushed_at", s.pushed_at}};
  if (!s.artifact_type.empty()) {
    j["artifact_type"] = s.artifact_type;
  }
  return j;
}

// Built outside coroutines: GCC 12 miscompiles brace-initialised string literals in them.
Json object_with(const std::string& key, Json value) {
  Json j = Json::object();
  j[key] = std::move(value);
  return j;
}

Json gc_json(const registry::GcReport& r) {
  return Json{{"blobs_deleted", r.blobs_deleted},
              {"orphan_files_deleted", r.orphan_files_deleted},
              {"bytes_freed", r.bytes_freed},
              {"uploads_removed", r.uploads_removed}};
}

Json principal_json(const store::Principal& p) {
  return Json{{"name", p.name}, {"kind", p.kind}, {"created_at", p.created_at}};
}

Json key_json(const store::AccessKey& k) {
  return Json{{"access_key_id", k.id},
              {"user", k.user},
              {"active", k.active},
              {"created_at", k.created_at}};
}

Json new_key_json(const iam::NewKey& k) {
  Json j = key_json(k.key);
  j["secret_access_key"] = k.secret;
  return j;
}

Json policy_json(const store::AttachedPolicy& p, bool with_document) {
  Json j{
      {"kind", p.kind}, {"principal", p.principal}, {"name", p.name}, {"updated_at", p.updated_at}};
  if (with_document) {
    Json doc = Json::parse(p.document, nullptr, false);
    j["document"] = doc.is_discarded() ? Json(p.document) : doc;
  }
  return j;
}

Json repo_policy_json(const std::string& repo, const std::string& document) {
  Json doc = document.empty() ? Json(nullptr) : Json::parse(document, nullptr, false);
  return Json{{"repository", repo}, {"document", doc.is_discarded() ? Json(document) : doc}};
}

Json decision_json(const iam::Decision& d) {
  return Json{{"decision", d.allowed ? "Allow" : "Deny"},
              {"policy", d.policy},
              {"sid", d.sid},
              {"reason", d.reason}};
}

Json token_json(const std::string& token, std::chrono::seconds ttl) {
  // issued_at is RFC 3339, as Docker's token spec says (clients parse it).
  std::time_t now = std::time(nullptr);
  char issued[32];
  std::strftime(issued, sizeof issued, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return Json{{"token", token},
              {"access_token", token},
              {"expires_in", ttl.count()},
              {"issued_at", issued}};
}

// Signs a token for principal; access (registry grants) is omitted for API tokens.
std::string make_token(const iam::TokenSigner& signer, const std::string& principal,
                       std::chrono::seconds ttl, const Json* access) {
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  Json claims{
      {"iss", "berth"}, {"sub", principal},         {"aud", "berth"},           {"iat", now},
      {"nbf", now - 5}, {"exp", now + ttl.count()}, {"jti", fs::random_hex(12)}};
  if (access != nullptr) {
    claims["access"] = *access;
  }
  return signer.sign(claims.dump());
}

// The registry grants for requested scopes ("repository:web/app:pull,push"), as a JWT
// "access" claim: each requested action the policies allow.
Json grant_scopes(const iam::PolicyAuthorizer& authz, const std::string& principal,
                  const std::vector<std::string>& scopes) {
  Json access = Json::array();
  for (const auto& scope : scopes) {
    // type:name:actions — the name may itself contain ':' only for a port, which names can't.
    auto first = scope.find(':');
    auto last = scope.rfind(':');
    if (first == std::string::npos || last == first) {
      continue;
    }
    std::string type = scope.substr(0, first);
    std::string name = scope.substr(first + 1, last - first - 1);
    std::string actions = scope.substr(last + 1);
    Json granted = Json::array();
    size_t start = 0;
    while (start <= actions.size()) {
      size_t comma = actions.find(',', start);
      std::string a =
          actions.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      std::string action;
      std::string resource = "repository/" + name;
      if (type == "repository" && a == "pull") {
        action = "registry:Pull";
      } else if (type == "repository" && a == "push") {
        action = "registry:Push";
      } else if (type == "repository" && a == "delete") {
        action = "registry:Delete";
      } else if (type == "registry" && name == "catalog" && a == "*") {
        action = "registry:ListRepositories";
        resource = "repository/*";
      }
      if (!action.empty() && authz.decide(iam::Request{principal, action, resource}).allowed) {
        granted.push_back(a);
      }
      if (comma == std::string::npos) {
        break;
      }
      start = comma + 1;
    }
    if (!granted.empty()) {
      access.push_back(Json{{"type", type}, {"name", name}, {"actions", granted}});
    }
  }
  return access;
}

Json audit_json(const store::AuditEvent& e) {
  return Json{{"time", e.time},
              {"principal", e.principal},
              {"action", e.action},
              {"resource", e.resource},
              {"decision", e.allowed ? "Allow" : "Deny"},
              {"source", e.source}};
}

std::string public_policy(const std::string& repo) {
  return Json{{"Version", "2012-10-17"},
              {"Statement", Json::array({Json{{"Sid", "PublicPull"},
                                              {"Effect", "Allow"},
                                              {"Principal", "*"},
                                              {"Action", "registry:Pull"},
                                              {"Resource", "repository/" + repo}}})}}
      .dump();
}

}  // namespace

awaitable<void> Api::handle_iam(http::Exchange& ex, std::string rest) {
  using V = bhttp::verb;
  auto m = ex.method();
  const auto& ctx = ex.context();
  // Repository resource policy: repositories/NAME/policy (NAME may contain '/').
  const std::string repos = "repositories/", suffix = "/policy";
  if (rest.rfind(repos, 0) == 0 && rest.size() > repos.size() + suffix.size() &&
      rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) == 0) {
    std::string repo = rest.substr(repos.size(), rest.size() - repos.size() - suffix.size());
    if (m == V::put) {
      auto body = co_await ex.read_all(64 * 1024);
      if (!body) {
        co_return co_await ex.send(error_response(body.error()));
      }
      Status s = co_await iam_.set_repository_policy(ctx, repo, *body);
      if (!s) {
        co_return co_await ex.send(error_response(s.error()));
      }
      co_return co_await ex.send(json_response(200, repo_policy_json(repo, *body)));
    }
    if (m == V::get) {
      auto doc = co_await iam_.get_repository_policy(ctx, repo);
      if (!doc) {
        co_return co_await ex.send(error_response(doc.error()));
      }
      co_return co_await ex.send(json_response(200, repo_policy_json(repo, *doc)));
    }
    co_return co_await reply_error(ex, Errc::NotFound,
                                   "no API endpoint " + ex.method_string() + " /api/v1/" + rest);
  }

  auto seg = segments(rest);  // seg[0] == "iam"
  size_t n = seg.size();
  if (n >= 2 && (seg[1] == "users" || seg[1] == "roles")) {
    std::string kind = seg[1] == "users" ? "user" : "role";
    if (n == 2 && m == V::post) {
      auto body = co_await ex.read_all(64 * 1024);
      if (!body) {
        co_return co_await ex.send(error_response(body.error()));
      }
      auto j = parse_json(*body, "request body");
      if (!j || !j->is_object() || !j->contains("name") || !(*j)["name"].is_string()) {
        co_return co_await reply_error(ex, Errc::InvalidArgument,
                                       "body must be {\"name\": \"...\"}");
      }
      std::string name = (*j)["name"].get<std::string>();
      auto p = co_await iam_.create_principal(ctx, kind, name);
      if (!p) {
        co_return co_await ex.send(error_response(p.error()));
      }
      co_return co_await ex.send(json_response(201, principal_json(*p)));
    }
    if (n == 2 && m == V::get) {
      auto list = co_await iam_.list_principals(ctx, kind);
      if (!list) {
        co_return co_await ex.send(error_response(list.error()));
      }
      Json arr = Json::array();
      for (const auto& p : *list) {
        arr.push_back(principal_json(p));
      }
      co_return co_await ex.send(json_response(200, object_with(seg[1], arr)));
    }
    if (n == 3 && m == V::delete_) {
      Status s = co_await iam_.delete_principal(ctx, kind, seg[2]);
      if (!s) {
        co_return co_await ex.send(error_response(s.error()));
      }
      co_return co_await ex.send(json_response(200, object_with("deleted", seg[2])));
    }
    if (kind == "user" && n == 4 && seg[3] == "keys" && m == V::post) {
      auto k = co_await iam_.create_key(ctx, seg[2]);
      if (!k) {
        co_return co_await ex.send(error_response(k.error()));
      }
      co_return co_await ex.send(json_response(201, new_key_json(*k)));
    }
    if (kind == "user" && n == 4 && seg[3] == "keys" && m == V::get) {
      auto keys = co_await iam_.list_keys(ctx, seg[2]);
      if (!keys) {
        co_return co_await ex.send(error_response(keys.error()));
      }
      Json arr = Json::array();
      for (const auto& k : *keys) {
        arr.push_back(key_json(k));
      }
      co_return co_await ex.send(json_response(200, object_with("keys", arr)));
    }
  }
  if (n >= 3 && seg[1] == "keys") {
    if (n == 4 && seg[3] == "rotate" && m == V::post) {
      auto k = co_await iam_.rotate_key(ctx, seg[2]);
      if (!k) {
        co_return co_await ex.send(error_response(k.error()));
      }
      co_return co_await ex.send(json_response(201, new_key_json(*k)));
    }
    if (n == 4 && seg[3] == "deactivate" && m == V::post) {
      auto k = co_await iam_.deactivate_key(ctx, seg[2]);
      if (!k) {
        co_return co_await ex.send(error_response(k.error()));
      }
      co_return co_await ex.send(json_response(200, key_json(*k)));
    }
    if (n == 3 && m == V::delete_) {
      Status s = co_await iam_.delete_key(ctx, seg[2]);
      if (!s) {
        co_return co_await ex.send(error_response(s.error()));
      }
      co_return co_await ex.send(json_response(200, object_with("deleted", seg[2])));
    }
  }
  if (n >= 2 && seg[1] == "policies") {
    if (n == 2 && m == V::get) {
      auto kind = ex.query("kind").value_or("");
      auto principal = ex.query("principal").value_or("");
      auto list = co_await iam_.list_policies(ctx, kind, principal);
      if (!list) {
        co_return co_await ex.send(error_response(list.error()));
      }
      Json arr = Json::array();
      for (const auto& p : *list) {
        arr.push_back(policy_json(p, true));
      }
      co_return co_await ex.send(json_response(200, object_with("policies", arr)));
    }
    if (n == 5 && m == V::put) {
      auto body = co_await ex.read_all(64 * 1024);
      if (!body) {
        co_return co_await ex.send(error_response(body.error()));
      }
      auto p = co_await iam_.put_policy(ctx, seg[2], seg[3], seg[4], *body);
      if (!p) {
        co_return co_await ex.send(error_response(p.error()));
      }
      co_return co_await ex.send(json_response(200, policy_json(*p, false)));
    }
    if (n == 5 && m == V::delete_) {
      Status s = co_await iam_.delete_policy(ctx, seg[2], seg[3], seg[4]);
      if (!s) {
        co_return co_await ex.send(error_response(s.error()));
      }
      co_return co_await ex.send(json_response(200, object_with("deleted", seg[4])));
    }
  }
  if (n == 2 && seg[1] == "simulate" && m == V::post) {
    auto body = co_await ex.read_all(64 * 1024);
    if (!body) {
      co_return co_await ex.send(error_response(body.error()));
    }
    auto j = parse_json(*body, "request body");
    if (!j || !j->is_object()) {
      co_return co_await reply_error(
          ex, Errc::InvalidArgument,
          "body must be {\"principal\": ..., \"action\": ..., \"resource\": ...}");
    }
    iam::Request req;
    req.principal = j->value("principal", "");
    req.action = j->value("action", "");
    req.resource = j->value("resource", "");
    auto d = co_await iam_.simulate(ctx, req);
    if (!d) {
      co_return co_await ex.send(error_response(d.error()));
    }
    co_return co_await ex.send(json_response(200, decision_json(*d)));
  }
  co_await reply_error(ex, Errc::NotFound,
                       "no API endpoint " + ex.method_string() + " /api/v1/" + rest);
}

awaitable<void> Api::registry_token(http::Exchange& ex) {
  if (auth_.signer == nullptr || auth_.authorizer == nullptr) {
    co_return co_await reply_error(ex, Errc::Unsupported,
                                   "tokens are not issued: iam.enforce is off");
  }
  const auto& ctx = ex.context();
  Json access = grant_scopes(*auth_.authorizer, ctx.principal, ex.query_all("scope"));
  std::string token = make_token(*auth_.signer, ctx.principal, auth_.token_ttl, &access);
  co_await ex.send(json_response(200, token_json(token, auth_.token_ttl)));
}

awaitable<void> Api::handle(http::Exchange& ex) {
  const std::string prefix = "/api/v1/";
  std::string path = ex.path();
  auto m = ex.method();
  using V = bhttp::verb;
  std::string rest = path.size() > prefix.size() ? path.substr(prefix.size()) : "";
  const auto& ctx = ex.context();

  // Signing in comes before authentication; console.cc checks the rest itself.
  if (rest.rfind("console/", 0) == 0) {
    co_return co_await handle_console(ex, rest);
  }
  if (auth_.require_auth && !ctx.authenticated) {
    http::Response r = error_response(
        Error(Errc::Unauthenticated,
              "authentication required: send an access key (HTTP Basic) or a bearer token from "
              "/api/v1/auth/token"));
    r.header("WWW-Authenticate", "Basic realm=\"berth\"");
    co_return co_await ex.send(std::move(r));
  }
  if (rest == "audit" && m == V::get) {
    auto since_s = ex.query("since").value_or("0");
    auto limit_s = ex.query("limit").value_or("1000");
    char* end1 = nullptr;
    char* end2 = nullptr;
    long long since = std::strtoll(since_s.c_str(), &end1, 10);
    long limit = std::strtol(limit_s.c_str(), &end2, 10);
    if (*end1 != '\0' || *end2 != '\0' || limit < 1 || limit > 100000) {
      co_return co_await reply_error(ex, Errc::InvalidArgument,
                                     "since must be unix seconds and limit 1 to 100000");
    }
    auto events = co_await iam_.list_audit(ctx, since, ex.query("principal").value_or(""),
                                           static_cast<int>(limit));
    if (!events) {
      co_return co_await ex.send(error_response(events.error()));
    }
    Json arr = Json::array();
    for (const auto& e : *events) {
      arr.push_back(audit_json(e));
    }
    co_return co_await ex.send(json_response(200, object_with("events", arr)));
  }
  if (rest == "services" || rest.rfind("services/", 0) == 0 || rest.rfind("deployments/", 0) == 0) {
    co_return co_await handle_services(ex, rest);
  }
  if (rest == "dns" || rest.rfind("dns/", 0) == 0) {
    co_return co_await handle_dns(ex, rest);
  }
  if (rest == "registry/upstreams" || rest.rfind("registry/upstreams/", 0) == 0 ||
      rest == "registry/replications" || rest.rfind("registry/replications/", 0) == 0) {
    co_return co_await handle_upstreams(ex, rest);
  }
  if (rest == "domains" || rest.rfind("domains/", 0) == 0 || rest == "ca") {
    co_return co_await handle_domains(ex, rest);
  }
  if (rest == "builds" || rest.rfind("builds/", 0) == 0 || rest.rfind("build/", 0) == 0) {
    co_return co_await handle_build(ex, rest);
  }
  if (rest == "auth/whoami" && m == V::get) {
    co_return co_await ex.send(json_response(200, object_with("principal", ctx.principal)));
  }
  if (rest == "auth/token" && (m == V::get || m == V::post)) {
    if (auth_.signer == nullptr) {
      co_return co_await reply_error(ex, Errc::Unsupported,
                                     "tokens are not issued: iam.enforce is off");
    }
    std::string token = make_token(*auth_.signer, ctx.principal, auth_.token_ttl, nullptr);
    co_return co_await ex.send(json_response(200, token_json(token, auth_.token_ttl)));
  }
  if (is_lifecycle_path(rest)) {
    co_return co_await handle_lifecycle(ex, rest);
  }
  if (rest.rfind("iam/", 0) == 0 || (rest.rfind("repositories/", 0) == 0 && rest.size() > 7 &&
                                     rest.compare(rest.size() - 7, 7, "/policy") == 0)) {
    co_return co_await handle_iam(ex, rest);
  }
  if (rest == "repositories") {
    if (m == V::get) {
      auto r = co_await registry_.list_repositories(ctx);
      if (!r) {
        co_return co_await ex.send(error_response(r.error()));
      }
      Json list = Json::array();
      for (const auto& repo : *r) {
        list.push_back(repo_json(repo));
      }
      co_return co_await ex.send(json_response(200, object_with("repositories", list)));
    }
    if (m == V::post) {
      auto body = co_await ex.read_all(64 * 1024);
      if (!body) {
        co_return co_await ex.send(error_response(body.error()));
      }
      auto j = parse_json(*body, "request body");
      if (!j) {
        co_return co_await ex.send(error_response(j.error()));
      }
      registry::RepositorySpec spec;
      if (!j->is_object() || !j->contains("name") || !(*j)["name"].is_string()) {
        co_return co_await reply_error(ex, Errc::InvalidArgument,
                                       "body must be {\"name\": \"...\"}");
      }
      spec.name = (*j)["name"].get<std::string>();
      if (auto it = j->find("immutable_tags"); it != j->end()) {
        if (!it->is_boolean()) {
          co_return co_await reply_error(ex, Errc::InvalidArgument,
                                         "immutable_tags must be true or false");
        }
        spec.immutable_tags = it->get<bool>();
      }
      if (auto it = j->find("mutable_tags"); it != j->end()) {
        if (!it->is_array()) {
          co_return co_await reply_error(ex, Errc::InvalidArgument, "mutable_tags must be a list");
        }
        for (const auto& g : *it) {
          if (!g.is_string()) {
            co_return co_await reply_error(ex, Errc::InvalidArgument,
                                           "mutable_tags must be a list of strings");
          }
          spec.mutable_tag_globs.push_back(g.get<std::string>());
        }
      }
      bool make_public = false;
      if (auto it = j->find("public"); it != j->end()) {
        if (!it->is_boolean()) {
          co_return co_await reply_error(ex, Errc::InvalidArgument, "public must be true or false");
        }
        make_public = it->get<bool>();
      }
      auto r = co_await registry_.create_repository(ctx, spec);
      if (!r) {
        co_return co_await ex.send(error_response(r.error()));
      }
      if (make_public) {
        // Public = a resource policy letting everyone (anonymous included) pull.
        Status s = co_await iam_.set_repository_policy(ctx, spec.name, public_policy(spec.name));
        if (!s) {
          co_return co_await ex.send(error_response(s.error()));
        }
      }
      Json out = repo_json(*r);
      out["public"] = make_public;
      co_return co_await ex.send(json_response(201, out));
    }
  }
  if (rest.rfind("repositories/", 0) == 0) {
    std::string tail = rest.substr(std::string("repositories/").size());
    // <name>/images[/<ref>] or <name>
    auto pos = tail.rfind("/images");
    if (pos != std::string::npos && pos + 7 == tail.size() && m == V::get) {
      auto r = co_await registry_.list_images(ctx, tail.substr(0, pos));
      if (!r) {
        co_return co_await ex.send(error_response(r.error()));
      }
      Json list = Json::array();
      for (const auto& img : *r) {
        list.push_back(image_json(img));
      }
      co_return co_await ex.send(json_response(200, object_with("images", list)));
    }
    pos = tail.rfind("/images/");
    if (pos != std::string::npos && m == V::delete_) {
      auto s = co_await registry_.delete_image(ctx, tail.substr(0, pos), tail.substr(pos + 8));
      if (!s) {
        co_return co_await ex.send(error_response(s.error()));
      }
      co_return co_await ex.send(json_response(200, object_with("deleted", tail.substr(pos + 8))));
    }
    if (m == V::delete_ && tail.find("/images") == std::string::npos) {
      auto s = co_await registry_.delete_repository(ctx, tail);
      if (!s) {
        co_return co_await ex.send(error_response(s.error()));
      }
      co_return co_await ex.send(json_response(200, object_with("deleted", tail)));
    }
  }
  if (rest == "gc" && m == V::post) {
    auto r = co_await registry_.gc(ctx);
    if (!r) {
      co_return co_await ex.send(error_response(r.error()));
    }
    co_return co_await ex.send(json_response(200, gc_json(*r)));
  }
  co_await reply_error(ex, Errc::NotFound, "no API endpoint " + ex.method_string() + " " + path);
}

}  // namespace berth::api
