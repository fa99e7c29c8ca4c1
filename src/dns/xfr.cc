// SPDX-License-Identifier: Apache-2.0
// AXFR out: SOA, every record set (ALIAS flattened to nothing: secondaries cannot serve it,
// so it is left out and documented), SOA again, in messages of at most 16 KiB.
#include "dns/xfr.h"

#include <algorithm>
#include <memory>

#include "dns/name.h"
#include "dns/peer.h"
#include "dns/rdata.h"

namespace berth::dns {

namespace {

constexpr size_t kXfrMessageBytes = 16 * 1024;

}  // namespace

std::vector<std::string> axfr_replies(const Zone& zone, const Message& query) {
  std::vector<std::string> out;
  const Question& q = query.questions.at(0);
  const uint16_t flags = flag::QR | flag::AA | (query.flags & 0x7800);

  std::string msg;
  auto writer = std::make_unique<Writer>(msg, kXfrMessageBytes);
  auto begin = [&] {
    msg.clear();
    writer = std::make_unique<Writer>(msg, kXfrMessageBytes);
    writer->header(query.id, flags);
    writer->question(q);
  };
  begin();
  auto put = [&](std::string_view owner, uint16_t type, uint32_t ttl, std::string_view rdata) {
    if (!writer->add(Writer::kAnswer, owner, type, kClassIN, ttl, rdata)) {
      out.push_back(msg);
      begin();
      (void)writer->add(Writer::kAnswer, owner, type, kClassIN, ttl, rdata);
    }
  };

  const std::string& apex = zone.apex();
  std::string soa_rdata;
  uint32_t soa_ttl = 0;
  for (const auto& set : zone.apex_node().sets) {
    if (set.type == type::SOA && !set.rdata.empty()) {
      soa_rdata = set.rdata[0];
      soa_ttl = set.ttl;
    }
  }
  put(apex, type::SOA, soa_ttl, soa_rdata);
  for (const auto& rs : zone.data().sets) {
    auto t = type_from_text(rs.type);
    if (!t || *t == type::SOA || *t == type::ALIAS) {
      continue;
    }
    auto owner = name_from_text(rs.name + ".");
    if (!owner) {
      continue;
    }
    for (const auto& v : rs.values) {
      auto rdata = rdata_from_text(*t, v);
      if (rdata) {
        put(*owner, *t, rs.ttl, *rdata);
      }
    }
  }
  put(apex, type::SOA, soa_ttl, soa_rdata);
  out.push_back(msg);
  return out;
}

bool transfer_allowed(const ZoneData& zone, const std::string& peer) {
  for (const auto& entry : zone.allow_transfer) {
    if (auto p = parse_peer(entry); p && p->address == peer) {
      return true;
    }
  }
  return false;
}

}  // namespace berth::dns
