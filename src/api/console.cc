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

http::Response Api::console_call(const ApiCall& call, const std::string& cookie,
                                 const std::string& host) {
  auto* sessions = console_.sessions;
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
      principal = *who;
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
    std::string code = sessions->create_code(call.ctx.principal, console_.link_ttl);
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

awaitable<void> Api::handle_console(http::Exchange& ex, std::string rest) {
  if (console_.sessions == nullptr || console_.pool == nullptr) {
    co_return co_await ex.send(
        error_response(Error(Errc::FailedPrecondition, "the console is off (console.enabled)")));
  }
  std::string cookie = ex.header(bhttp::field::cookie);
  std::string host = ex.header(bhttp::field::host);
  auto job = [this, cookie, host](const ApiCall& call) { return console_call(call, cookie, host); };
  co_await serve_call(ex, std::move(rest), {}, 16 * 1024, *console_.pool, std::move(job));
}

}  // namespace berth::api
