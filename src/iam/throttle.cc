// SPDX-License-Identifier: Apache-2.0
// Failed-authentication lockout, counted per (key id, source address) and per address.
#include <algorithm>

#include "common/log.h"
#include "iam/iam.h"

namespace berth::iam {

namespace {
std::string pair_key(const std::string& key_id, const std::string& address) {
  return key_id + " " + address;  // addresses hold no spaces: the last one splits the pair
}
}  // namespace

std::string peer_address(const std::string& peer) {
  std::string a;
  if (!peer.empty() && peer.front() == '[') {
    auto close = peer.find(']');
    a = peer.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  } else {
    a = peer.substr(0, peer.rfind(':'));  // the port is always last, after the last colon
  }
  static const std::string kMapped = "::ffff:";
  if (a.size() > kMapped.size() && a.compare(0, kMapped.size(), kMapped) == 0 &&
      a.find('.') != std::string::npos) {
    a.erase(0, kMapped.size());
  }
  return a;
}

AuthThrottle::AuthThrottle(LockoutLimits limits) : limits_(limits) {}

std::chrono::seconds AuthThrottle::wait_locked(Times& t, int limit, Clock::time_point now) const {
  while (!t.empty() && now - t.front() >= limits_.window) {
    t.pop_front();
  }
  if (limit <= 0 || t.size() < static_cast<size_t>(limit)) {
    return std::chrono::seconds(0);
  }
  // Allowed again once all but limit-1 of the failures have left the window.
  auto until = t[t.size() - static_cast<size_t>(limit)] + limits_.window;
  auto secs = std::chrono::ceil<std::chrono::seconds>(until - now);
  return std::max(secs, std::chrono::seconds(1));
}

std::chrono::seconds AuthThrottle::retry_after(const std::string& key_id,
                                               const std::string& address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  std::chrono::seconds wait(0);
  if (auto it = by_key_and_address_.find(pair_key(key_id, address));
      it != by_key_and_address_.end()) {
    wait = std::max(wait, wait_locked(it->second, limits_.per_key_and_address, now));
  }
  if (auto it = by_address_.find(address); it != by_address_.end()) {
    wait = std::max(wait, wait_locked(it->second, limits_.per_address, now));
  }
  return wait;
}

void AuthThrottle::prune_locked(std::map<std::string, Times>& m, Clock::time_point now,
                                const char* what) {
  if (m.size() < limits_.max_tracked) {
    return;
  }
  std::erase_if(m, [&](const auto& kv) {
    return kv.second.empty() || now - kv.second.back() >= limits_.window;
  });
  if (m.size() >= limits_.max_tracked) {
    // A flood of distinct ids or addresses within one window: forget them rather than grow
    // without bound. The other map still holds what it can.
    log::get("iam")->warn("authentication failures forgotten kind={} tracked={} limit={}", what,
                          m.size(), limits_.max_tracked);
    m.clear();
  }
}

void AuthThrottle::record_failure(const std::string& key_id, const std::string& address,
                                  Clock::time_point now) {
  std::lock_guard lock(mu_);
  prune_locked(by_key_and_address_, now, "key_and_address");
  prune_locked(by_address_, now, "address");
  auto trim = [&](Times& t, int limit) {
    t.push_back(now);
    // Only the newest `limit` failures decide anything: memory per entry stays bounded.
    while (t.size() > static_cast<size_t>(std::max(limit, 1))) {
      t.pop_front();
    }
  };
  trim(by_key_and_address_[pair_key(key_id, address)], limits_.per_key_and_address);
  trim(by_address_[address], limits_.per_address);
}

}  // namespace berth::iam
