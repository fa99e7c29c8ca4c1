// SPDX-License-Identifier: Apache-2.0
// What every request to berthd's listener passes first: who it is (an access key over HTTP
// Basic, a bearer token, or the console's session cookie with its CSRF token), then where it
// goes (/v2/, /api/v1/, /git/, /metrics, the console's files).
#include <openssl/crypto.h>

#include "daemon/impl.h"

namespace berth::daemon {

// An access key's principal ("user/NAME"), or Unauthenticated; ResourceExhausted with
// *retry_after set while the key id or the address is locked out. HTTP Basic and the
// console's sign-in both come here.
Result<std::string> Daemon::Impl::check_key(const std::string& id, const std::string& secret,
                                            const std::string& peer,
                                            std::chrono::seconds* retry_after) {
  std::string addr = iam::peer_address(peer);
  auto now = iam::AuthThrottle::Clock::now();
  if (auto wait = throttle.retry_after(id, addr, now); wait.count() > 0) {
    log->warn("authentication rate limited access_key_id={} peer={} retry_after={}s", id, peer,
              wait.count());
    *retry_after = wait;
    return Error(
        Errc::ResourceExhausted,
        fmt::format("too many failed authentications; try again in {} seconds", wait.count()));
  }
  auto who = policy_authz->authenticate(id, secret);
  if (!who) {
    throttle.record_failure(id, addr, now);
    log->warn("authentication failed access_key_id={} peer={}", id, peer);
    return Error(Errc::Unauthenticated, "invalid access key id or secret");
  }
  return *who;
}

// A console session named by the cookie, for /api/v1/ requests without an Authorization
// header. A request that changes something must also carry the session's CSRF token, which
// a page of another site cannot read; signing in itself is exempt (it has no session yet).
// No cookie, or an unknown or expired session: anonymous (then the API answers 401).
Status Daemon::Impl::session_auth(http::Exchange& ex) {
  std::string cookie = ex.header(bhttp::field::cookie);
  auto id = cookie.empty() ? std::nullopt : console::cookie_value(cookie, console::kCookie);
  if (!id || sessions == nullptr) {
    return ok();
  }
  auto session = sessions->find(*id);
  if (!session) {
    return ok();
  }
  if (!session->key_id.empty() && !policy_authz->key_active(session->key_id)) {
    // The key it signed in with was deactivated or deleted: so is the session.
    sessions->remove(*id);
    return ok();
  }
  auto m = ex.method();
  bool safe = m == bhttp::verb::get || m == bhttp::verb::head || m == bhttp::verb::options;
  bool sign_in = m == bhttp::verb::post && ex.path() == "/api/v1/console/session";
  if (!safe && !sign_in) {
    std::string token = ex.header(std::string(console::kCsrfHeader));
    if (token.size() != session->csrf_token.size() ||
        CRYPTO_memcmp(token.data(), session->csrf_token.data(), token.size()) != 0) {
      return Error(Errc::PermissionDenied,
                   "missing or wrong X-CSRF-Token header: the console sends the token of its "
                   "session with every change, and a page of another site cannot");
    }
  }
  ex.context().principal = session->principal;
  ex.context().authenticated = true;
  ex.context().key_id = session->key_id;
  ex.context().session = *id;
  return ok();
}

// Resolves the request's principal from its Authorization header. Ok with "anonymous" when
// there is none; Unauthenticated or ResourceExhausted (lockout, with *retry_after set) when
// it is wrong.
Status Daemon::Impl::authenticate(http::Exchange& ex, std::chrono::seconds* retry_after) {
  auto& ctx = ex.context();
  std::string h = ex.header(bhttp::field::authorization);
  if (h.empty()) {
    return ok();
  }
  if (h.rfind("Basic ", 0) == 0) {
    auto decoded = b64::decode(h.substr(6));
    auto colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) {
      return Error(Errc::Unauthenticated, "malformed Basic credentials");
    }
    BERTH_ASSIGN_OR_RETURN(
        ctx.principal,
        check_key(decoded->substr(0, colon), decoded->substr(colon + 1), ctx.peer, retry_after));
    ctx.authenticated = true;
    ctx.key_id = decoded->substr(0, colon);
    return ok();
  }
  if (h.rfind("Bearer ", 0) == 0) {
    auto payload = signer->verify(h.substr(7));
    Json claims = payload ? Json::parse(*payload, nullptr, false) : Json();
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    if (!payload || !claims.is_object() || !claims.contains("sub") ||
        claims.value("exp", int64_t{0}) < now) {
      return Error(Errc::Unauthenticated, "invalid or expired token");
    }
    ctx.principal = claims.value("sub", "anonymous");
    ctx.authenticated = ctx.principal != "anonymous";
    if (claims.contains("access") && claims["access"].is_array()) {
      ctx.token_scoped = true;
      for (const auto& a : claims["access"]) {
        for (const auto& act : a.value("actions", Json::array())) {
          if (act.is_string()) {
            ctx.grants.push_back(a.value("type", "") + ":" + a.value("name", "") + ":" +
                                 act.get<std::string>());
          }
        }
      }
    }
    return ok();
  }
  return Error(Errc::Unauthenticated, "unsupported Authorization scheme");
}

awaitable<void> Daemon::Impl::handle(http::Exchange& ex) {
  const std::string& p = ex.path();
  if (p.rfind("/hooks/github/", 0) == 0) {
    // Unauthenticated: the webhook's HMAC signature is its authentication.
    co_return co_await api->github_webhook(ex);
  }
  if (policy_authz) {
    std::chrono::seconds retry_after(0);
    Status s = authenticate(ex, &retry_after);
    // The console's session works on /api/v1/, and for reads on /v2/ (the OCI referrers API).
    bool read = ex.method() == bhttp::verb::get || ex.method() == bhttp::verb::head;
    if (s && !ex.context().authenticated &&
        (p.rfind("/api/v1/", 0) == 0 || (read && p.rfind("/v2/", 0) == 0)) &&
        ex.header(bhttp::field::authorization).empty()) {
      s = session_auth(ex);
    }
    if (!s) {
      co_return co_await send_auth_failure(ex, s.error(), retry_after);
    }
  }
  if (p == "/console" || p.rfind("/console/", 0) == 0 || p == "/") {
    co_return co_await console_page(ex);
  }
  if (p == "/v2/token") {
    co_return co_await api->registry_token(ex);
  }
  if (p == "/v2" || p.rfind("/v2/", 0) == 0) {
    co_return co_await registry->handle(ex);
  }
  if (p.rfind("/api/v1/", 0) == 0) {
    co_return co_await api->handle(ex);
  }
  if (p.rfind("/git/", 0) == 0) {
    co_return co_await api->git(ex);
  }
  if (p == "/metrics") {
    co_return co_await metrics(ex);
  }
  http::Response r;
  if (p == "/healthz") {
    r.header("Content-Type", "text/plain");
    r.body = "berth ok\n";
  } else {
    r.status = 404;
    r.header("Content-Type", "text/plain");
    r.body = "not found: " + p + "\n";
  }
  co_await ex.send(std::move(r));
}

// The console's files (public: they hold no data; the data comes from /api/v1 with the
// session). "/" and "/console" lead to "/console/".
awaitable<void> Daemon::Impl::console_page(http::Exchange& ex) {
  http::Response r;
  const std::string& p = ex.path();
  if (!cfg.console.enabled) {
    r.status = p == "/" ? 200 : 404;
    r.header("Content-Type", "text/plain");
    r.body = p == "/" ? "berth ok\n" : "the console is off (console.enabled: false)\n";
  } else if (p == "/" || p == "/console") {
    r.status = 302;
    r.header("Location", "/console/");
    r.header("Content-Type", "text/plain");
    r.body = "the console is at /console/\n";
  } else {
    r = console::serve(p, ex.method(), ex.header(bhttp::field::if_none_match));
  }
  co_await ex.send(std::move(r));
}

// Prometheus scrapes authenticate like any client and need metrics:Get.
awaitable<void> Daemon::Impl::metrics(http::Exchange& ex) {
  if (policy_authz) {
    Status s = ex.context().authenticated
                   ? iam->authorize(ex.context(), "metrics:Get", "metrics")
                   : Status(Error(Errc::Unauthenticated, "authentication required"));
    if (!s) {
      co_return co_await send_auth_failure(ex, s.error());
    }
  }
  co_await api->metrics(ex);
}

// Not a coroutine (GCC 12: no temporaries of this kind inside co_await expressions).
awaitable<void> Daemon::Impl::send_auth_failure(http::Exchange& ex, const Error& e,
                                                std::chrono::seconds retry_after) {
  http::Response r;
  bool limited = e.code() == Errc::ResourceExhausted;
  bool denied = e.code() == Errc::PermissionDenied;
  r.status = limited ? 429 : (denied ? 403 : 401);
  r.header("Content-Type", "application/json");
  if (limited) {
    // Every 429 says when to come back (RFC 9110 10.2.3: delay-seconds).
    r.header("Retry-After", std::to_string(std::max<int64_t>(1, retry_after.count())));
  }
  const std::string& p = ex.path();
  if (p == "/v2" || p.rfind("/v2/", 0) == 0) {
    Json err = {{"code", limited ? "TOOMANYREQUESTS" : "UNAUTHORIZED"}, {"message", e.message()}};
    r.body = Json{{"errors", Json::array({err})}}.dump();
    if (!limited) {
      r.header("WWW-Authenticate", "Basic realm=\"berth\"");
    }
  } else if (p.rfind("/git/", 0) == 0) {
    // git asks for (other) credentials only when challenged.
    r.body = Json{{"error", {{"code", errc_name(e.code())}, {"message", e.message()}}}}.dump();
    if (!limited && !denied) {
      r.header("WWW-Authenticate", "Basic realm=\"berth\"");
    }
  } else {
    r.body = Json{{"error", {{"code", errc_name(e.code())}, {"message", e.message()}}}}.dump();
  }
  return ex.send(std::move(r));
}

}  // namespace berth::daemon
