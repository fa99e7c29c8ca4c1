// SPDX-License-Identifier: Apache-2.0
// Private to src/dns: another DNS server as configuration names it (allow_transfer,
// also_notify, tls.dns_check_resolver): "ADDR", "ADDR:PORT" or "[IPv6]:PORT", an IP address and
// no host name.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth::dns {

struct Peer {
  std::string address;  // "192.0.2.1", "2001:db8::1" (no brackets)
  uint16_t port = 53;
};

/// The address and port (default_port when none is given); nullopt when malformed.
std::optional<Peer> parse_peer(std::string_view text, uint16_t default_port = 53);

}  // namespace berth::dns
