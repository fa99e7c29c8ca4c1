// SPDX-License-Identifier: Apache-2.0
// /api/v1/console/...: signing the console in and out, one-time sign-in links for
// `berth console`, and what the signed-in principal may do (so pages show disabled actions).
#include "console/console.h"

#include <ctime>

#include "api/api.h"
#include "api/internal.h"
#include "common/json.h"

namespace berth::api {

namespace {

using V = bhttp::verb;

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

Json session_json(const console::Session& s) {
  return Json{
      {"principal", s.principal}, {"csrf_token", s.csrf_token}, {"expires_at", s.expires_at}};
}

// The most checks one permissions request may ask (a page asks for its buttons).
constexpr size_t kMaxChecks = 200;

}  // namespace

http::Response Api::console_call(const ApiCall& call, const ConsoleHeaders& h) {
  auto* sessions = console_.sessions;
  const std::string& cookie = h.cookie;
  const std::string& host = h.host;
  std::string sub = call.rest.substr(std::string("console/").size());
  auto cookie_session = [&]() -> std::optional<std::pair<std::string, console::Session>> {
    auto id = console::cookie_value(cookie, console::kCookie);
    if (!id) {
      return std::nullopt;
    }
    auto s = sessions->find(*id);
    if (!s) {
      return std::nullopt;
    }
    return std::make_pair(*id, *s);
  };

  if (sub == "session" && call.method == V::post) {
    // Signing in needs no token (there is no session yet), so it must come from the console's
    // own page: a form on another site can neither send JSON nor hide where it comes from.
    // Otherwise such a page could sign the browser in as someone else (login CSRF).
    if (h.content_type.rfind("application/json", 0) != 0) {
      return error_response(Error(Errc::InvalidArgument,
                                  "sign in with a JSON body (Content-Type: application/json)"));
    }
    if ((!h.fetch_site.empty() && h.fetch_site != "same-origin" && h.fetch_site != "none") ||
        (!h.origin.empty() && h.origin != "http://" + host && h.origin != "https://" + host)) {
      return error_response(
          Error(Errc::PermissionDenied, "sign-in requests must come from berth's own console"));
    }
    auto body = parse_object_body(call.body);
    if (!body) {
      return error_response(body.error());
    }
    std::string principal;
    std::string key_id;
    if (body->contains("code")) {
      auto code = body->value("code", "");
      auto who = sessions->redeem_code(code);
      if (!who) {
        return error_response(Error(Errc::Unauthenticated,
                                    "this sign-in link is unknown, used or expired: run `berth "
                                    "console` again for a new one"));
      }
      key_id = who->second;
      principal = who->first;
    } else {
      std::string id = body->value("access_key_id", "");
      std::string secret = body->value("secret_access_key", "");
      if (id.empty() || secret.empty()) {
        return error_response(Error(Errc::InvalidArgument,
                                    "sign in with an access key id and its secret access key"));
      }
      std::chrono::seconds retry_after(0);
      auto who = console_.check_key(id, secret, call.ctx.peer, &retry_after);
      if (!who) {
        http::Response r = error_response(who.error());
        if (who.error().code() == Errc::ResourceExhausted) {
          r.status = 429;
          r.header("Retry-After", std::to_string(std::max<int64_t>(1, retry_after.count())));
        }
        return r;
      }
      principal = *who;
      key_id = id;
    }
    // A browser signing in again (as anyone) leaves its old session behind: end it.
    if (auto old = cookie_session()) {
      sessions->remove(old->first);
    }
    auto [id, s] = sessions->create(principal, key_id);
    http::Response r = json_response(200, session_json(s));
    r.header("Set-Cookie", console::session_cookie(id, sessions->ttl(), console_.secure_cookie));
    r.header("Cache-Control", "no-store");
    return r;
  }
  if (sub == "session" && call.method == V::get) {
    auto s = cookie_session();
    if (!s) {
      return error_response(Error(Errc::Unauthenticated, "not signed in"));
    }
    http::Response r = json_response(200, session_json(s->second));
    r.header("Cache-Control", "no-store");
    return r;
  }
  if (sub == "session" && call.method == V::delete_) {
    if (auto s = cookie_session()) {
      sessions->remove(s->first);
    }
    http::Response r = json_response(200, Json{{"signed_out", true}});
    r.header("Set-Cookie", console::clear_cookie(console_.secure_cookie));
    return r;
  }

  // The rest acts for an authenticated principal.
  if (auth_.require_auth && !call.ctx.authenticated) {
    return error_response(Error(Errc::Unauthenticated, "authentication required"));
  }
  if (sub == "links" && call.method == V::post) {
    // The session a link opens ends with the key that made it, so it needs one.
    if (auth_.require_auth && call.ctx.key_id.empty()) {
      return error_response(Error(Errc::PermissionDenied,
                                  "one-time links are made with an access key (as `berth "
                                  "console` does), not with a token"));
    }
    std::string code =
        sessions->create_code(call.ctx.principal, call.ctx.key_id, console_.link_ttl);
    std::string url = "http://" + (host.empty() ? std::string("127.0.0.1:5000") : host) +
                      "/console/login?code=" + code;
    if (console_.secure_cookie) {
      url.replace(0, 4, "https");
    }
    return json_response(201, Json{{"url", url},
                                   {"code", code},
                                   {"principal", call.ctx.principal},
                                   {"expires_at", now_s() + console_.link_ttl.count()}});
  }
  if (sub == "permissions" && call.method == V::post) {
    auto body = parse_object_body(call.body);
    if (!body) {
      return error_response(body.error());
    }
    auto checks = body->value("checks", Json::array());
    if (!checks.is_array() || checks.size() > kMaxChecks) {
      return error_response(Error(Errc::InvalidArgument, "checks must be a list of at most " +
                                                             std::to_string(kMaxChecks) +
                                                             " {\"action\",\"resource\"} objects"));
    }
    Json results = Json::array();
    for (const auto& c : checks) {
      if (!c.is_object() || !c.value("action", Json()).is_string() ||
          !c.value("resource", Json()).is_string()) {
        return error_response(
            Error(Errc::InvalidArgument, "each check needs an action and a resource (strings)"));
      }
      std::string action = c["action"].get<std::string>();
      std::string resource = c["resource"].get<std::string>();
      bool allowed = true;
      std::string reason = "allowed";
      if (auth_.authorizer != nullptr) {
        auto d = auth_.authorizer->decide(iam::Request{call.ctx.principal, action, resource});
        allowed = d.allowed;
        reason = d.allowed ? "allowed"
                           : "You may not do " + action + " on " + resource + " (" + d.reason + ")";
      }
      results.push_back(Json{
          {"action", action}, {"resource", resource}, {"allowed", allowed}, {"reason", reason}});
    }
    return json_response(200, Json{{"principal", call.ctx.principal}, {"results", results}});
  }
  return error_response(no_endpoint(call));
}

bool Api::still_allowed(const http::RequestContext& ctx, const std::string& action,
                        const std::string& resource) const {
  if (!ctx.session.empty() && console_.sessions != nullptr &&
      !console_.sessions->find(ctx.session)) {
    return false;  // signed out, or expired
  }
  if (auth_.authorizer == nullptr) {
    return true;
  }
  if (!ctx.key_id.empty() && !auth_.authorizer->key_active(ctx.key_id)) {
    return false;
  }
  return auth_.authorizer->decide(iam::Request{ctx.principal, action, resource}).allowed;
}

awaitable<void> Api::handle_console(http::Exchange& ex, std::string rest) {
  if (console_.sessions == nullptr || console_.pool == nullptr) {
    co_return co_await ex.send(
        error_response(Error(Errc::FailedPrecondition, "the console is off (console.enabled)")));
  }
  ConsoleHeaders h{ex.header(bhttp::field::cookie), ex.header(bhttp::field::host),
                   ex.header(bhttp::field::content_type), ex.header("Sec-Fetch-Site"),
                   ex.header(bhttp::field::origin)};
  auto job = [this, h](const ApiCall& call) { return console_call(call, h); };
  co_await serve_call(ex, std::move(rest), {}, 16 * 1024, *console_.pool, std::move(job));
}

}  // namespace berth::api
