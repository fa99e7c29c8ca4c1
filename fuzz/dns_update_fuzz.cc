// SPDX-License-Identifier: Apache-2.0
// Dynamic updates off the wire: parse_message, then plan_update against a fixed zone, and
// TSIG on the same bytes. Invariants: a refused plan carries no changes; an accepted plan's
// batch never touches the SOA or the apex NS set, touches only names the plan reports (so the
// key-scope check sees every one), and either applies to a zone that still validates or is
// refused by apply_changes with InvalidArgument; tsig_verify returns one of the RFC's
// errors; and any parsed message, signed with tsig_append, verifies (and stops verifying
// when its first byte changes).
#include <algorithm>
#include <span>
#include <string>

#include "dns/dns.h"
#include "dns/message.h"
#include "dns/name.h"
#include "dns/rdata.h"
#include "dns/tsig.h"
#include "dns/update.h"
#include "fuzz.h"

namespace {

using namespace berth::dns;

std::span<const uint8_t> as_span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

RecordSet set(std::string name, std::string type, std::vector<std::string> values) {
  RecordSet s;
  s.name = std::move(name);
  s.type = std::move(type);
  s.values = std::move(values);
  return s;
}

const ZoneData& fixed_zone() {
  static const ZoneData z = [] {
    ZoneData d = new_zone("example.com", {"ns1.example.com"}, 100);
    d.sets.push_back(set("ns1.example.com", "A", {"192.0.2.53"}));
    d.sets.push_back(set("www.example.com", "A", {"192.0.2.1", "192.0.2.2"}));
    d.sets.push_back(set("www.example.com", "TXT", {"\"hello\""}));
    d.sets.push_back(set("alias.example.com", "CNAME", {"www.example.com."}));
    d.sets.push_back(set("example.com", "MX", {"10 mail.example.com."}));
    d.sets.push_back(set("sub.example.com", "NS", {"ns.sub.example.com."}));
    d.sets.push_back(set("ns.sub.example.com", "A", {"192.0.2.99"}));
    RecordSet w = set("lb.example.com", "A", {"192.0.2.10"});
    w.set_identifier = "one";
    w.weight = 5;
    d.sets.push_back(w);
    return d;
  }();
  return z;
}

TsigKey fuzz_key() {
  TsigKey k;
  k.name = "fuzz-key";
  k.secret = "0123456789abcdef0123456789abcdef";
  return k;
}

}  // namespace

BERTH_FUZZ_TARGET(dns_update) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto m = parse_message(as_span(bytes));
  if (!m) {
    return 0;
  }
  const ZoneData& zone = fixed_zone();
  UpdatePlan plan = plan_update(zone, *m);
  static const int kRcodes[] = {rcode::NOERROR,  rcode::FORMERR, rcode::SERVFAIL,
                                rcode::NXDOMAIN, rcode::REFUSED, rcode::YXDOMAIN,
                                rcode::YXRRSET,  rcode::NXRRSET, rcode::NOTZONE};
  BERTH_FUZZ_CHECK(std::find(std::begin(kRcodes), std::end(kRcodes), plan.rcode) !=
                   std::end(kRcodes));
  if (plan.rcode != rcode::NOERROR) {
    BERTH_FUZZ_CHECK(plan.changes.empty());
  }
  for (const auto& c : plan.changes) {
    BERTH_FUZZ_CHECK(c.set.type != "SOA");
    BERTH_FUZZ_CHECK(!(c.set.type == "NS" && c.set.name == zone.name));
    BERTH_FUZZ_CHECK(std::find(plan.names.begin(), plan.names.end(), c.set.name) !=
                     plan.names.end());
  }
  if (!plan.changes.empty()) {
    auto applied = apply_changes(zone, plan.changes);
    if (applied) {
      BERTH_FUZZ_CHECK(validate_zone(*applied).has_value());
      BERTH_FUZZ_CHECK(applied->serial == zone.serial + 1);
    } else {
      BERTH_FUZZ_CHECK(applied.error().code() == berth::Errc::InvalidArgument);
    }
  }

  auto lookup = [](std::string_view n) -> std::optional<TsigKey> {
    if (n == "fuzz-key") {
      return fuzz_key();
    }
    return std::nullopt;
  };
  if (m->tsig_offset) {
    auto c = tsig_verify(as_span(bytes), *m, lookup, 1700000000);
    BERTH_FUZZ_CHECK(c.error == 0 || c.error == rcode::FORMERR || c.error == rcode::BADKEY ||
                     c.error == rcode::BADSIG || c.error == rcode::BADTIME ||
                     c.error == rcode::BADTRUNC);
    BERTH_FUZZ_CHECK(c.error == rcode::FORMERR || c.error == rcode::BADKEY || c.key.has_value());
    return 0;
  }
  uint16_t arcount = static_cast<uint16_t>((static_cast<uint8_t>(bytes[10]) << 8) |
                                           static_cast<uint8_t>(bytes[11]));
  if (arcount == 0xFFFF || bytes.size() > 60000) {
    return 0;
  }
  std::string signed_msg = bytes;
  std::string mac =
      tsig_append(signed_msg, fuzz_key(), *name_from_text("fuzz-key."), 1700000000, 0, {});
  BERTH_FUZZ_CHECK(mac.size() == kTsigMacBytes);
  auto sm = parse_message(as_span(signed_msg));
  BERTH_FUZZ_CHECK(sm.has_value() && sm->tsig_offset.has_value());
  BERTH_FUZZ_CHECK(tsig_verify(as_span(signed_msg), *sm, lookup, 1700000100).error == 0);
  std::string tampered = signed_msg;
  tampered[2] = static_cast<char>(tampered[2] ^ 0x01);  // the RD bit: parses the same
  auto tm = parse_message(as_span(tampered));
  BERTH_FUZZ_CHECK(tm.has_value());
  BERTH_FUZZ_CHECK(tsig_verify(as_span(tampered), *tm, lookup, 1700000100).error == rcode::BADSIG);
  return 0;
}
