// SPDX-License-Identifier: Apache-2.0
// The web console's server side: sign-in sessions (an HttpOnly cookie naming an in-memory
// session with its CSRF token), one-time sign-in codes for `berth console`, and the static
// files (HTML, CSS, ES modules) embedded in berthd at build time. The console's data comes
// from /api/v1 like the CLI's; nothing here is an API of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "http/http.h"

namespace berth::console {

/// The cookie that carries a console session.
inline constexpr std::string_view kCookie = "berth_session";
/// The header every state-changing request made with the cookie must carry.
inline constexpr std::string_view kCsrfHeader = "X-CSRF-Token";

struct Session {
  std::string principal;
  std::string key_id;  // the access key signed in with ("" for a one-time link)
  std::string csrf_token;
  int64_t expires_at = 0;  // Unix seconds
  uint64_t serial = 0;     // creation order: past a cap, the lowest goes first
};

/// Signed-in browsers. In memory: a berthd restart signs everyone out, and signing out ends a
/// session at once (nothing stays valid until an expiry). Session ids and codes are 256-bit
/// random values kept only as their SHA-256. Thread-safe.
class Sessions {
 public:
  explicit Sessions(std::chrono::seconds ttl, size_t max_sessions = 10000);

  /// A new session for principal; returns its id (the cookie's value) and the session. A
  /// principal holds at most kPerPrincipal sessions (its oldest goes), and when max_sessions
  /// are live the one closest to expiry goes: one user signing in in a loop cannot sign the
  /// others out.
  std::pair<std::string, Session> create(const std::string& principal,
                                         const std::string& key_id = "");
  static constexpr size_t kPerPrincipal = 20;
  /// The live session with this id; nullopt when unknown or expired.
  std::optional<Session> find(const std::string& id) const;
  void remove(const std::string& id);
  /// A one-time sign-in code for principal (made with key_id, which the session it opens
  /// inherits), valid for `ttl` and for one redemption; at most kPerPrincipal live per
  /// principal (its oldest goes).
  std::string create_code(const std::string& principal, const std::string& key_id,
                          std::chrono::seconds ttl);
  /// The principal and key id of a live code, which is used up; nullopt otherwise.
  std::optional<std::pair<std::string, std::string>> redeem_code(const std::string& code);
  std::chrono::seconds ttl() const { return ttl_; }
  size_t size() const;

 private:
  void expire_locked(int64_t now);

  std::chrono::seconds ttl_;
  size_t max_;
  mutable std::mutex mu_;
  uint64_t serial_ = 0;                      // the last serial given out
  std::map<std::string, Session> sessions_;  // sha256(id) -> session
  struct Code {
    std::string principal, key_id;
    int64_t until = 0;
    uint64_t serial = 0;
  };
  std::map<std::string, Code> codes_;  // sha256(code) -> code
};

/// The value of cookie `name` in a Cookie header ("a=1; berth_session=X"), if present.
std::optional<std::string> cookie_value(std::string_view header, std::string_view name);

/// Set-Cookie for a session (HttpOnly, SameSite=Strict, Path=/, Max-Age; Secure when the
/// console is served over TLS), and the one that clears it.
std::string session_cookie(const std::string& id, std::chrono::seconds ttl, bool secure);
std::string clear_cookie(bool secure);

/// GET/HEAD /console/...: the embedded file, or index.html for a path that names no file type (the
/// console routes in the browser), with the console's Content-Security-Policy and an ETag
/// (304 for a matching If-None-Match). With BERTH_CONSOLE_DIR set, files are read from that
/// directory on each request instead (for working on the console without rebuilding).
http::Response serve(const std::string& path, bhttp::verb method, const std::string& if_none_match);

/// The Content-Security-Policy of every console page: own scripts and styles only, no inline
/// code, no eval, not framed.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

}  // namespace berth::console
