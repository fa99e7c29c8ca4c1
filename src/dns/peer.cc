// SPDX-License-Identifier: Apache-2.0
#include "dns/peer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace berth::dns {

std::optional<Peer> parse_peer(std::string_view text, uint16_t default_port) {
  std::string_view addr = text;
  std::string_view port;
  bool has_port = false;
  if (!addr.empty() && addr.front() == '[') {
    auto close = addr.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    if (close + 1 < addr.size()) {
      if (addr[close + 1] != ':') {
        return std::nullopt;
      }
      port = addr.substr(close + 2);
      has_port = true;
    }
    addr = addr.substr(1, close - 1);
  } else if (std::count(addr.begin(), addr.end(), ':') == 1) {
    port = addr.substr(addr.find(':') + 1);
    addr = addr.substr(0, addr.find(':'));
    has_port = true;
  }
  Peer p;
  p.address = std::string(addr);
  p.port = default_port;
  if (has_port) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || v > 65535) {
      return std::nullopt;
    }
    p.port = static_cast<uint16_t>(v);
  }
  unsigned char buf[16];
  if (::inet_pton(AF_INET, p.address.c_str(), buf) != 1 &&
      ::inet_pton(AF_INET6, p.address.c_str(), buf) != 1) {
    return std::nullopt;
  }
  return p;
}

}  // namespace berth::dns
