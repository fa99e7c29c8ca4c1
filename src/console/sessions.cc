// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <ctime>

#include "common/fs.h"
#include "common/sha256.h"
#include "console/console.h"

namespace berth::console {

namespace {

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

Sessions::Sessions(std::chrono::seconds ttl, size_t max_sessions)
    : ttl_(ttl), max_(max_sessions == 0 ? 1 : max_sessions) {}

void Sessions::expire_locked(int64_t now) {
  std::erase_if(sessions_, [now](const auto& kv) { return kv.second.expires_at <= now; });
  std::erase_if(codes_, [now](const auto& kv) { return kv.second.until <= now; });
}

namespace {

// Erases the entry of `m` (matching `mine`) with the smallest `key(value)`.
template <class Map, class Mine, class Key>
void erase_oldest(Map& m, Mine mine, Key key) {
  auto oldest = m.end();
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (mine(it->second) && (oldest == m.end() || key(it->second) < key(oldest->second))) {
      oldest = it;
    }
  }
  if (oldest != m.end()) {
    m.erase(oldest);
  }
}

}  // namespace

std::pair<std::string, Session> Sessions::create(const std::string& principal,
                                                 const std::string& key_id) {
  std::string id = fs::random_hex(32);
  Session s{principal, key_id, fs::random_hex(32), now_s() + ttl_.count()};
  // The oldest by creation, not by expiry: sessions made in one second expire together.
  auto oldest = [](const Session& x) { return x.serial; };
  std::lock_guard lock(mu_);
  s.serial = ++serial_;
  expire_locked(now_s());
  auto own = [&](const Session& x) { return x.principal == principal; };
  if (static_cast<size_t>(std::count_if(sessions_.begin(), sessions_.end(), [&](const auto& kv) {
        return own(kv.second);
      })) >= kPerPrincipal) {
    erase_oldest(sessions_, own, oldest);
  }
  if (sessions_.size() >= max_) {
    erase_oldest(
        sessions_, [](const Session&) { return true; }, oldest);
  }
  sessions_[Sha256::hex_of(id)] = s;
  return {id, s};
}

std::optional<Session> Sessions::find(const std::string& id) const {
  if (id.empty()) {
    return std::nullopt;
  }
  std::string key = Sha256::hex_of(id);
  std::lock_guard lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end() || it->second.expires_at <= now_s()) {
    return std::nullopt;
  }
  return it->second;
}

void Sessions::remove(const std::string& id) {
  std::string key = Sha256::hex_of(id);
  std::lock_guard lock(mu_);
  sessions_.erase(key);
}

std::string Sessions::create_code(const std::string& principal, const std::string& key_id,
                                  std::chrono::seconds ttl) {
  std::string code = fs::random_hex(32);
  auto oldest = [](const Code& c) { return c.serial; };
  auto own = [&](const Code& c) { return c.principal == principal; };
  std::lock_guard lock(mu_);
  expire_locked(now_s());
  if (static_cast<size_t>(std::count_if(codes_.begin(), codes_.end(), [&](const auto& kv) {
        return own(kv.second);
      })) >= kPerPrincipal) {
    erase_oldest(codes_, own, oldest);
  }
  if (codes_.size() >= max_) {
    erase_oldest(
        codes_, [](const Code&) { return true; }, oldest);
  }
  codes_[Sha256::hex_of(code)] = Code{principal, key_id, now_s() + ttl.count(), ++serial_};
  return code;
}

std::optional<std::pair<std::string, std::string>> Sessions::redeem_code(const std::string& code) {
  if (code.empty()) {
    return std::nullopt;
  }
  std::string key = Sha256::hex_of(code);
  std::lock_guard lock(mu_);
  auto it = codes_.find(key);
  if (it == codes_.end()) {
    return std::nullopt;
  }
  Code c = it->second;
  codes_.erase(it);
  if (c.until <= now_s()) {
    return std::nullopt;
  }
  return std::make_pair(c.principal, c.key_id);
}

size_t Sessions::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) {
      end = header.size();
    }
    std::string_view part = header.substr(pos, end - pos);
    while (!part.empty() && part.front() == ' ') {
      part.remove_prefix(1);
    }
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) {
      return std::string(part.substr(eq + 1));
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::string session_cookie(const std::string& id, std::chrono::seconds ttl, bool secure) {
  std::string c = std::string(kCookie) + "=" + id +
                  "; Path=/; Max-Age=" + std::to_string(ttl.count()) +
                  "; HttpOnly; SameSite=Strict";
  if (secure) {
    c += "; Secure";
  }
  return c;
}

std::string clear_cookie(bool secure) {
  std::string c = std::string(kCookie) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict";
  if (secure) {
    c += "; Secure";
  }
  return c;
}

}  // namespace berth::console
