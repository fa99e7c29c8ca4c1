// SPDX-License-Identifier: Apache-2.0
// plan_update: RFC 2136's prerequisite checks (§3.2) and update section (§3.4) over a copy of
// the zone's record sets, then the difference as a change batch for Service::change. Pure.
#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "dns/name.h"
#include "dns/rdata.h"
#include "dns/update.h"

namespace berth::dns {

namespace {

constexpr uint16_t kMailB = 253, kMailA = 254;

struct Work {
  RecordSet set;
  uint16_t type = 0;
  std::string wire;  // lower-case wire name
};

bool is_meta(uint16_t t) {
  return t == type::ANY || t == type::AXFR || t == type::IXFR || t == kMailA || t == kMailB ||
         t == type::OPT || t == type::TSIG;
}

// Rdata in a form where equal records compare equal: names inside it lower-cased.
std::string canonical_rdata(uint16_t t, std::string_view rd) {
  size_t fixed = 0;
  switch (t) {
    case type::NS:
    case type::CNAME:
    case type::PTR:
      return name_lower(rd);
    case type::MX:
      fixed = 2;
      break;
    case type::SRV:
      fixed = 6;
      break;
    case type::SOA: {
      auto n1 = name_check(rd);
      if (!n1) {
        return std::string(rd);
      }
      auto n2 = name_check(rd.substr(*n1));
      if (!n2) {
        return std::string(rd);
      }
      return name_lower(rd.substr(0, *n1)) + name_lower(rd.substr(*n1, *n2)) +
             std::string(rd.substr(*n1 + *n2));
    }
    default:
      return std::string(rd);
  }
  if (rd.size() < fixed) {
    return std::string(rd);
  }
  return std::string(rd.substr(0, fixed)) + name_lower(rd.substr(fixed));
}

// A stored presentation value in canonical wire form ("" when it does not parse).
std::string canonical_value(uint16_t t, const std::string& text) {
  auto wire = rdata_from_text(t, text);
  return wire ? canonical_rdata(t, *wire) : std::string();
}

UpdatePlan fail(UpdatePlan p, int rc, std::string reason) {
  p.rcode = rc;
  p.reason = std::move(reason);
  p.changes.clear();
  return p;
}

}  // namespace

UpdatePlan plan_update(const ZoneData& zone, const Message& m) {
  UpdatePlan plan;
  auto apex_r = name_from_text(zone.name);
  if (!apex_r) {
    return fail(plan, rcode::SERVFAIL, "bad zone name");
  }
  const std::string apex = name_lower(*apex_r);
  std::vector<Work> work;
  for (const auto& s : zone.sets) {
    auto t = type_from_text(s.type);
    auto w = name_from_text(s.name);
    if (!t || !w) {
      continue;  // cannot happen for a validated zone
    }
    work.push_back(Work{s, *t, name_lower(*w)});
  }
  auto in_use = [&](const std::string& wire) {
    return std::any_of(work.begin(), work.end(), [&](const Work& w) { return w.wire == wire; });
  };
  auto has_set = [&](const std::string& wire, uint16_t t) {
    return std::any_of(work.begin(), work.end(),
                       [&](const Work& w) { return w.wire == wire && w.type == t; });
  };
  auto text_of = [](const std::string& wire) { return name_to_api(wire); };

  // ---- Prerequisites (§3.2), against the zone as it is ----
  std::map<std::pair<std::string, uint16_t>, std::set<std::string>> value_sets;
  for (const auto& rr : m.answers) {
    std::string wire = name_lower(rr.name);
    if (rr.ttl != 0) {
      return fail(plan, rcode::FORMERR, "prerequisite with a TTL");
    }
    if (!name_is_within(wire, apex)) {
      return fail(plan, rcode::NOTZONE, "prerequisite " + text_of(wire) + " is outside the zone");
    }
    if (rr.klass == kClassANY || rr.klass == kClassNONE) {
      if (!rr.rdata.empty()) {
        return fail(plan, rcode::FORMERR, "prerequisite of class ANY/NONE with rdata");
      }
      bool any = rr.type == type::ANY;
      bool exists = any ? in_use(wire) : has_set(wire, rr.type);
      if (rr.klass == kClassANY && !exists) {
        return fail(plan, any ? rcode::NXDOMAIN : rcode::NXRRSET,
                    "prerequisite: " + text_of(wire) +
                        (any ? " is not in use" : " has no " + type_to_text(rr.type) + " set"));
      }
      if (rr.klass == kClassNONE && exists) {
        return fail(plan, any ? rcode::YXDOMAIN : rcode::YXRRSET,
                    "prerequisite: " + text_of(wire) +
                        (any ? " is in use" : " has a " + type_to_text(rr.type) + " set"));
      }
    } else if (rr.klass == kClassIN && !is_meta(rr.type)) {
      value_sets[{wire, rr.type}].insert(canonical_rdata(rr.type, rr.rdata));
    } else {
      return fail(plan, rcode::FORMERR, "prerequisite of class " + std::to_string(rr.klass));
    }
  }
  for (const auto& [key, want] : value_sets) {
    std::set<std::string> have;
    for (const auto& w : work) {
      if (w.wire == key.first && w.type == key.second) {
        for (const auto& v : w.set.values) {
          have.insert(canonical_value(w.type, v));
        }
      }
    }
    if (have != want) {
      return fail(
          plan, rcode::NXRRSET,
          "prerequisite: " + text_of(key.first) + " " + type_to_text(key.second) + " set differs");
    }
  }

  // ---- Update section (§3.4), applied in order to the copy ----
  std::set<std::pair<std::string, uint16_t>> touched;
  std::set<std::string> names;
  auto policy_set = [&](const std::string& wire, uint16_t t) {
    return std::any_of(work.begin(), work.end(), [&](const Work& w) {
      return w.wire == wire && w.type == t && !w.set.set_identifier.empty();
    });
  };
  for (const auto& rr : m.authority) {
    std::string wire = name_lower(rr.name);
    if (!name_is_within(wire, apex)) {
      return fail(plan, rcode::NOTZONE, "update " + text_of(wire) + " is outside the zone");
    }
    names.insert(text_of(wire));
    const bool at_apex = wire == apex;
    const uint16_t t = rr.type;
    std::string what = text_of(wire) + " " + type_to_text(t);
    auto protected_set = [&] { return t == type::SOA || (t == type::NS && at_apex); };
    if (rr.klass == kClassIN) {
      if (is_meta(t)) {
        return fail(plan, rcode::FORMERR, "update adds a meta type: " + what);
      }
      if (protected_set()) {
        return fail(plan, rcode::REFUSED, "update may not change " + what + " (berth keeps it)");
      }
      if (t == type::ALIAS || !type_supported(t)) {
        return fail(plan, rcode::REFUSED, "update adds an unsupported type: " + what);
      }
      if (policy_set(wire, t)) {
        return fail(plan, rcode::REFUSED,
                    what + " has routing-policy sets: change it with the API");
      }
      auto text = rdata_to_text(t, rr.rdata);
      if (!text) {
        return fail(plan, rcode::FORMERR, what + ": " + text.error().message());
      }
      // §3.4.2.2: CNAME and other data do not mix; the conflicting add is ignored.
      bool other_data = std::any_of(work.begin(), work.end(), [&](const Work& w) {
        return w.wire == wire && w.type != type::CNAME;
      });
      if ((t == type::CNAME && other_data) || (t != type::CNAME && has_set(wire, type::CNAME))) {
        continue;
      }
      touched.insert({wire, t});
      auto it = std::find_if(work.begin(), work.end(),
                             [&](const Work& w) { return w.wire == wire && w.type == t; });
      if (it == work.end()) {
        RecordSet s;
        s.name = text_of(wire);
        s.type = type_to_text(t);
        s.ttl = rr.ttl;
        s.values.push_back(*text);
        work.push_back(Work{std::move(s), t, wire});
        continue;
      }
      // The whole set takes the new TTL (RFC 2181 §5.2: one TTL per RRset).
      it->set.ttl = rr.ttl;
      if (t == type::CNAME) {
        it->set.values = {*text};
        continue;
      }
      std::string canon = canonical_rdata(t, rr.rdata);
      bool present =
          std::any_of(it->set.values.begin(), it->set.values.end(),
                      [&](const std::string& v) { return canonical_value(t, v) == canon; });
      if (!present) {
        it->set.values.push_back(*text);
      }
    } else if (rr.klass == kClassANY) {
      if (rr.ttl != 0 || !rr.rdata.empty()) {
        return fail(plan, rcode::FORMERR, "RRset deletion with a TTL or rdata: " + what);
      }
      if (t == type::ANY) {
        // Every set at the name, except the SOA and NS the apex keeps (§3.4.2.3).
        for (const auto& w : work) {
          if (w.wire == wire && !(at_apex && (w.type == type::SOA || w.type == type::NS))) {
            touched.insert({wire, w.type});
          }
        }
        std::erase_if(work, [&](const Work& w) {
          return w.wire == wire && !(at_apex && (w.type == type::SOA || w.type == type::NS));
        });
        continue;
      }
      if (is_meta(t)) {
        return fail(plan, rcode::FORMERR, "RRset deletion of a meta type: " + what);
      }
      if (protected_set()) {
        return fail(plan, rcode::REFUSED, "update may not delete " + what + " (berth keeps it)");
      }
      touched.insert({wire, t});
      std::erase_if(work, [&](const Work& w) { return w.wire == wire && w.type == t; });
    } else if (rr.klass == kClassNONE) {
      if (rr.ttl != 0 || is_meta(t)) {
        return fail(plan, rcode::FORMERR, "RR deletion with a TTL or a meta type: " + what);
      }
      if (protected_set()) {
        return fail(plan, rcode::REFUSED, "update may not change " + what + " (berth keeps it)");
      }
      if (policy_set(wire, t)) {
        return fail(plan, rcode::REFUSED,
                    what + " has routing-policy sets: change it with the API");
      }
      touched.insert({wire, t});
      auto it = std::find_if(work.begin(), work.end(),
                             [&](const Work& w) { return w.wire == wire && w.type == t; });
      if (it == work.end()) {
        continue;  // deleting what is not there is no error (§3.4.2.4)
      }
      std::string canon = canonical_rdata(t, rr.rdata);
      std::erase_if(it->set.values,
                    [&](const std::string& v) { return canonical_value(t, v) == canon; });
      if (it->set.values.empty()) {
        work.erase(it);
      }
    } else {
      return fail(plan, rcode::FORMERR, "update of class " + std::to_string(rr.klass));
    }
  }
  plan.names.assign(names.begin(), names.end());

  // ---- The difference, for the sets the update touched ----
  auto key_of = [](const RecordSet& s) {
    return std::make_tuple(s.name, s.type, s.set_identifier);
  };
  std::map<std::tuple<std::string, std::string, std::string>, const RecordSet*> before;
  std::map<std::tuple<std::string, std::string, std::string>, const RecordSet*> after;
  for (const auto& s : zone.sets) {
    auto t = type_from_text(s.type);
    auto w = name_from_text(s.name);
    if (t && w && touched.count({name_lower(*w), *t}) != 0) {
      before[key_of(s)] = &s;
    }
  }
  for (const auto& w : work) {
    if (touched.count({w.wire, w.type}) != 0) {
      after[key_of(w.set)] = &w.set;
    }
  }
  for (const auto& [key, set] : before) {
    auto it = after.find(key);
    if (it == after.end() || !(*it->second == *set)) {
      plan.changes.push_back(Change{Change::Action::Delete, *set});
    }
  }
  for (const auto& [key, set] : after) {
    auto it = before.find(key);
    if (it == before.end() || !(*it->second == *set)) {
      plan.changes.push_back(Change{Change::Action::Create, *set});
    }
  }
  return plan;
}

}  // namespace berth::dns
