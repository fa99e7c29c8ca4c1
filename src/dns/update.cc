// SPDX-License-Identifier: Apache-2.0
// UpdateHandler: one UPDATE message from bytes to signed reply. Order (RFC 8945 §5.2, RFC
// 2136 §3): parse (FORMERR), signed at all (REFUSED), TSIG key/MAC/time (NOTAUTH + BADKEY,
// BADSIG, BADTIME), zone section (FORMERR, NOTAUTH), key scope on the zone (REFUSED),
// prerequisites and update section (plan_update), key scope on every name (REFUSED), then
// Service::change. Work runs on one thread of its own: updates are applied in arrival order
// and a slow store write never holds a UDP worker or the TCP thread.
#include "dns/update.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctime>

#include "common/async.h"
#include "common/log.h"
#include "dns/name.h"
#include "dns/rdata.h"
#include "dns/tsig.h"

namespace berth::dns {

namespace {

constexpr const char* kAction = "dns:ChangeRecordSets";
constexpr int kAttempts = 3;  // re-plans when another writer changed the zone meanwhile

std::string rcode_name(int rc) {
  switch (rc) {
    case rcode::NOERROR:
      return "NOERROR";
    case rcode::FORMERR:
      return "FORMERR";
    case rcode::SERVFAIL:
      return "SERVFAIL";
    case rcode::NXDOMAIN:
      return "NXDOMAIN";
    case rcode::NOTIMP:
      return "NOTIMP";
    case rcode::REFUSED:
      return "REFUSED";
    case rcode::YXDOMAIN:
      return "YXDOMAIN";
    case rcode::YXRRSET:
      return "YXRRSET";
    case rcode::NXRRSET:
      return "NXRRSET";
    case rcode::NOTAUTH:
      return "NOTAUTH";
    case rcode::NOTZONE:
      return "NOTZONE";
    default:
      return std::to_string(rc);
  }
}

std::string tsig_error_name(int e) {
  switch (e) {
    case rcode::BADSIG:
      return "BADSIG";
    case rcode::BADKEY:
      return "BADKEY";
    case rcode::BADTIME:
      return "BADTIME";
    case rcode::BADTRUNC:
      return "BADTRUNC";
    default:
      return std::to_string(e);
  }
}

// Header (same id, QR, opcode UPDATE, the rcode) and the zone section echoed.
std::string base_reply(const Message& m, int rc) {
  std::string out;
  Writer w(out, 65535);
  w.header(m.id, static_cast<uint16_t>(flag::QR | (opcode::UPDATE << 11) | (rc & 0xF)));
  if (m.questions.size() == 1) {
    (void)w.question(m.questions[0]);
  }
  return out;
}

std::string peer_text(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  }
  return buf;
}

std::string u48(uint64_t v) {
  std::string out;
  for (int shift = 40; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
  return out;
}

}  // namespace

UpdateHandler::UpdateHandler(Service& service, const TsigKeyring& keys, AuditFn audit)
    : service_(service),
      keys_(keys),
      audit_(std::move(audit)),
      now_([] { return static_cast<uint64_t>(std::time(nullptr)); }),
      pool_(std::make_unique<asio::thread_pool>(1)) {}

UpdateHandler::~UpdateHandler() { stop(); }

void UpdateHandler::stop() {
  if (pool_) {
    pool_->join();
  }
}

std::string UpdateHandler::handle(std::span<const uint8_t> packet, const std::string& peer) {
  auto log = log::get("dns");
  auto parsed = parse_message(packet);
  if (!parsed) {
    log->debug("update malformed peer={} error={}", peer, parsed.error().message());
    return error_reply(packet, rcode::FORMERR);
  }
  const Message& m = *parsed;
  if (m.opcode() != opcode::UPDATE) {
    return error_reply(packet, rcode::NOTIMP);
  }
  std::string zone_text =
      m.questions.size() == 1 ? name_to_api(name_lower(m.questions[0].name)) : "-";
  auto audit = [&](const std::string& principal, const std::string& resource, bool allowed) {
    if (audit_) {
      audit_(principal, kAction, resource, allowed, peer);
    }
  };
  if (!m.tsig_offset) {
    log->warn("update refused zone={} peer={}: not signed (give nsupdate a TSIG key)", zone_text,
              peer);
    audit("anonymous", "zone/" + zone_text, false);
    return base_reply(m, rcode::REFUSED);
  }
  uint64_t now = now_();
  auto check = tsig_verify(
      packet, m, [this](std::string_view n) { return keys_.find(n); }, now);
  const std::string key_wire = m.additional.back().name;
  const std::string principal = "tsig/" + name_to_api(name_lower(key_wire));
  if (check.error == rcode::FORMERR) {
    log->warn("update refused zone={} peer={}: malformed TSIG", zone_text, peer);
    return base_reply(m, rcode::FORMERR);
  }
  if (check.error != 0) {
    log->warn("update refused zone={} key={} peer={}: TSIG {}", zone_text, principal, peer,
              tsig_error_name(check.error));
    audit(principal, "zone/" + zone_text, false);
    std::string r = base_reply(m, rcode::NOTAUTH);
    auto e = static_cast<uint16_t>(check.error);
    if (check.error == rcode::BADKEY || check.error == rcode::BADSIG) {
      // Unsigned: the MAC cannot be trusted or computed (RFC 8945 §5.3.2).
      tsig_append(r, TsigKey{}, key_wire, check.record.time_signed, e, {}, false);
    } else {
      // BADTIME: signed, the request's time, the server's time in Other Data (§5.2.3).
      tsig_append(r, *check.key, key_wire, check.record.time_signed, e, check.record.mac, true,
                  check.error == rcode::BADTIME ? u48(now) : std::string());
    }
    return r;
  }
  const TsigKey& key = *check.key;
  auto respond = [&](int rc) {
    std::string r = base_reply(m, rc);
    tsig_append(r, key, key_wire, now, 0, check.record.mac);
    return r;
  };
  if (m.questions.size() != 1 || m.questions[0].type != type::SOA ||
      m.questions[0].klass != kClassIN) {
    log->info("update refused key={} peer={}: the zone section is not one IN SOA", principal, peer);
    return respond(rcode::FORMERR);
  }
  auto zone = service_.get_zone(zone_text);
  if (!zone) {
    log->info("update refused zone={} key={} peer={}: not a zone berth hosts", zone_text, principal,
              peer);
    return respond(rcode::NOTAUTH);
  }
  if (!key.allows_zone(zone->name)) {
    log->warn("update refused zone={} key={} peer={}: the key is not allowed on the zone",
              zone->name, principal, peer);
    audit(principal, "zone/" + zone->name, false);
    return respond(rcode::REFUSED);
  }
  for (int attempt = 1;; ++attempt) {
    UpdatePlan plan = plan_update(*zone, m);
    if (plan.rcode != rcode::NOERROR) {
      log->info("update not applied zone={} key={} peer={} rcode={}: {}", zone->name, principal,
                peer, rcode_name(plan.rcode), plan.reason);
      return respond(plan.rcode);
    }
    for (const auto& n : plan.names) {
      if (!key.allows_name(n)) {
        log->warn("update refused zone={} key={} peer={}: the key may not change {}", zone->name,
                  principal, peer, n);
        audit(principal, "zone/" + zone->name + "/record/" + n, false);
        return respond(rcode::REFUSED);
      }
    }
    if (plan.changes.empty()) {
      log->info("update zone={} key={} peer={}: nothing to change", zone->name, principal, peer);
      return respond(rcode::NOERROR);
    }
    auto applied = service_.change(zone->name, plan.changes);
    if (applied) {
      for (const auto& n : plan.names) {
        audit(principal, "zone/" + zone->name + "/record/" + n, true);
      }
      log->info("update applied zone={} key={} peer={} changes={} serial={}", zone->name, principal,
                peer, plan.changes.size(), (*applied)->serial);
      return respond(rcode::NOERROR);
    }
    // Another writer (the API) may have changed a set this batch deletes: plan again.
    auto again = service_.get_zone(zone->name);
    if (again && again->serial != zone->serial && attempt < kAttempts) {
      zone = std::move(again);
      continue;
    }
    Errc code = applied.error().code();
    bool refused = code == Errc::InvalidArgument || code == Errc::ResourceExhausted;
    log->warn("update {} zone={} key={} peer={}: {}", refused ? "refused" : "failed", zone->name,
              principal, peer, applied.error().message());
    return respond(refused ? rcode::REFUSED : rcode::SERVFAIL);
  }
}

void UpdateHandler::handle_udp(int fd, std::span<const uint8_t> packet,
                               const sockaddr_storage& from, socklen_t from_len) {
  if (queued_.fetch_add(1) >= kMaxQueued) {
    queued_.fetch_sub(1);
    log::get("dns")->warn("update dropped peer={}: {} updates already queued", peer_text(from),
                          kMaxQueued);
    return;
  }
  std::string copy(reinterpret_cast<const char*>(packet.data()), packet.size());
  asio::post(*pool_, [this, fd, copy = std::move(copy), from, from_len] {
    std::span<const uint8_t> p(reinterpret_cast<const uint8_t*>(copy.data()), copy.size());
    std::string reply = handle(p, peer_text(from));
    if (!reply.empty()) {
      // A reply that cannot be sent (the client is gone) is dropped, as for queries.
      (void)::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<const sockaddr*>(&from),
                     from_len);
    }
    queued_.fetch_sub(1);
  });
}

awaitable<std::unique_ptr<std::string>> UpdateHandler::handle_tcp(
    std::unique_ptr<std::string> packet, std::unique_ptr<std::string> peer) {
  auto job = [this, packet = std::move(packet), peer = std::move(peer)] {
    std::span<const uint8_t> p(reinterpret_cast<const uint8_t*>(packet->data()), packet->size());
    return std::make_unique<std::string>(handle(p, *peer));
  };
  return run_blocking(*pool_, std::move(job));
}

}  // namespace berth::dns
