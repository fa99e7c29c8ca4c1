// SPDX-License-Identifier: Apache-2.0
#include "router/proxy_util.h"

#include <cstdint>
#include <cstring>

#include "common/ascii.h"

namespace berth::router::detail {

std::string_view normalize_host(std::string_view host, char* buf, size_t cap) {
  host = ascii::trim(host);
  std::string_view name = host;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) {
      return {};
    }
    name = host.substr(0, close + 1);
  } else if (auto colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
  }
  if (!name.empty() && name.back() == '.') {
    name.remove_suffix(1);
  }
  if (name.empty() || name.size() > cap) {
    return {};
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '\x7f') {
      return {};
    }
    buf[i] = ascii::lower(c);
  }
  return {buf, name.size()};
}

size_t pick_least_outstanding(const std::vector<std::shared_ptr<Upstream>>& ups, size_t start) {
  size_t n = ups.size();
  size_t best = start % n;
  int64_t best_load = ups[best]->in_flight.load(std::memory_order_relaxed);
  for (size_t k = 1; k < n && best_load > 0; ++k) {
    size_t i = (start + k) % n;
    int64_t load = ups[i]->in_flight.load(std::memory_order_relaxed);
    if (load < best_load) {
      best = i;
      best_load = load;
    }
  }
  return best;
}

bool is_hop_by_hop(std::string_view name) {
  if (name.size() >= 6 && ascii::iequals(name.substr(0, 6), "proxy-")) {
    return true;
  }
  return ascii::iequals(name, "connection") || ascii::iequals(name, "keep-alive") ||
         ascii::iequals(name, "te") || ascii::iequals(name, "trailer") ||
         ascii::iequals(name, "transfer-encoding") || ascii::iequals(name, "upgrade");
}

bool token_list_contains(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = ascii::trim(list.substr(0, comma));
    if (ascii::iequals(item, token)) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    list.remove_prefix(comma + 1);
  }
  return false;
}

void append_forwarded_for(std::string& out, std::string_view existing, std::string_view peer) {
  existing = ascii::trim(existing);
  if (!existing.empty()) {
    out.append(existing);
    out.append(", ");
  }
  out.append(peer);
}

const char* status_class(unsigned status) {
  switch (status / 100) {
    case 1:
      return "1xx";
    case 2:
      return "2xx";
    case 3:
      return "3xx";
    case 4:
      return "4xx";
    default:
      return "5xx";
  }
}

bool idempotent_method(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

bool connection_names_fields(std::string_view connection) {
  while (!connection.empty()) {
    auto comma = connection.find(',');
    std::string_view item = ascii::trim(connection.substr(0, comma));
    if (!item.empty() && !ascii::iequals(item, "keep-alive") && !ascii::iequals(item, "close") &&
        !ascii::iequals(item, "upgrade")) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    connection.remove_prefix(comma + 1);
  }
  return false;
}

size_t find_head_end(const char* p, size_t n, size_t from, bool& bare) {
  size_t i = from;
  while (i < n) {
    const void* hit = std::memchr(p + i, '\n', n - i);
    if (hit == nullptr) {
      return 0;
    }
    size_t k = static_cast<size_t>(static_cast<const char*>(hit) - p);
    if (k == 0 || p[k - 1] != '\r') {
      bare = true;
    }
    if (k + 1 < n && p[k + 1] == '\n') {
      return k + 2;
    }
    if (k + 2 < n && p[k + 1] == '\r' && p[k + 2] == '\n') {
      return k + 3;
    }
    i = k + 1;
  }
  return 0;
}

void crlf_line_ends(const char* p, size_t n, std::string& out) {
  out.clear();
  out.reserve(n + n / 8 + 16);
  for (size_t i = 0; i < n; ++i) {
    if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
      out.push_back('\r');
    }
    out.push_back(p[i]);
  }
}

}  // namespace berth::router::detail
