// SPDX-License-Identifier: Apache-2.0
// Dynamic updates (RFC 2136) signed with TSIG (RFC 8945): plan_update() checks the
// prerequisites against a zone and turns the update section into a change batch (pure);
// UpdateHandler verifies the signature, scopes the key, applies the batch through
// Service::change and signs the reply. The server hands it every UPDATE message; the work
// runs on the handler's own thread, so a store write never holds up ordinary queries.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/asio.h"
#include "dns/dns.h"
#include "dns/message.h"

namespace berth::dns {

class TsigKeyring;

/// What an UPDATE would do to a zone.
struct UpdatePlan {
  int rcode = 0;                   // rcode::NOERROR, or the RFC 2136 rcode that stops it
  std::string reason;              // why, for the log ("prerequisite: www.example.com is in use")
  std::vector<Change> changes;     // the batch (empty: nothing to change)
  std::vector<std::string> names;  // every name the update section touches (API form)
};

/// RFC 2136 §3.2 and §3.4 against `zone` (the zone section already matched it): FORMERR for
/// malformed records, NOTZONE for names outside the zone, YXDOMAIN/NXDOMAIN/YXRRSET/NXRRSET
/// for failed prerequisites, REFUSED for what berth does not let an update change (the SOA,
/// the apex NS set, ALIAS and routing-policy sets, unsupported types). Sets the update
/// modifies become DELETE (exactly as they were) + CREATE, so a batch computed from a zone
/// that has since changed fails instead of overwriting.
UpdatePlan plan_update(const ZoneData& zone, const Message& m);

class UpdateHandler {
 public:
  /// An audit hook: principal ("tsig/NAME"), action, resource, allowed, peer address.
  using AuditFn = std::function<void(const std::string&, const std::string&, const std::string&,
                                     bool, const std::string&)>;
  UpdateHandler(Service& service, const TsigKeyring& keys, AuditFn audit = {});
  ~UpdateHandler();

  /// Handles one UPDATE message and returns the reply (never empty unless the packet has no
  /// header). Blocking (the store write): call off the I/O threads.
  std::string handle(std::span<const uint8_t> packet, const std::string& peer);

  /// For the UDP workers: handles the update on the handler's thread and sends the reply
  /// with sendto(fd) from there. Copies what it needs. Over kMaxQueued waiting: dropped.
  void handle_udp(int fd, std::span<const uint8_t> packet, const sockaddr_storage& from,
                  socklen_t from_len);
  /// For TCP connections: the reply, computed on the handler's thread. Not a coroutine, and
  /// strings travel in unique_ptrs: GCC 12 relocates values through Asio 1.74's coroutine
  /// plumbing bitwise, which breaks short (SSO) std::strings (seen as free() aborts).
  awaitable<std::unique_ptr<std::string>> handle_tcp(std::unique_ptr<std::string> packet,
                                                     std::unique_ptr<std::string> peer);
  /// Waits for queued updates and stops the thread (the server calls it when it stops).
  void stop();

  /// The clock TSIG times are checked against (seconds since the epoch).
  void set_clock_for_test(std::function<uint64_t()> now) { now_ = std::move(now); }

  static constexpr int kMaxQueued = 64;

 private:
  Service& service_;
  const TsigKeyring& keys_;
  AuditFn audit_;
  std::function<uint64_t()> now_;
  std::unique_ptr<asio::thread_pool> pool_;
  std::atomic<int> queued_{0};
};

/// True when the packet's header says opcode UPDATE (the server's dispatch test).
inline bool is_update(std::span<const uint8_t> packet) {
  return packet.size() >= kHeaderBytes && ((packet[2] >> 3) & 0xF) == opcode::UPDATE;
}

}  // namespace berth::dns
