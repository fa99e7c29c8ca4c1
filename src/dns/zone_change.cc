// SPDX-License-Identifier: Apache-2.0
// Change batches applied all or nothing (apply_changes, apply_changes_to_valid) and new zones.
// A batch looks each set up in the zone's canonically sorted sets by binary search and builds
// the result in one merge, so its cost is the changes (× log sets) plus one copy of the set
// list; the rules are checked on the whole result, or for a zone known valid only where the
// batch touched it. Pure; no I/O.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "dns/name.h"
#include "dns/rdata.h"
#include "dns/zone_internal.h"

namespace berth::dns {

namespace {

using zone_detail::api_name;
using zone_detail::Checked;
using zone_detail::lower;
using zone_detail::sort_key;
using zone_detail::upper;

/// DELETE matches only the exact set: values (compared in wire form, any order), TTL, target
/// and routing fields.
bool same_content(const RecordSet& a, const RecordSet& b) {
  if (a.ttl != b.ttl || a.values.size() != b.values.size() ||
      lower(a.alias_service) != lower(b.alias_service) ||
      api_name(a.alias_name) != api_name(b.alias_name) || a.weight != b.weight ||
      a.failover != b.failover || a.multivalue != b.multivalue ||
      a.health_check != b.health_check) {
    return false;
  }
  auto t = type_from_text(a.type);
  auto wires = [&](const RecordSet& s) {
    std::vector<std::string> w;
    for (const auto& v : s.values) {
      auto rd = t ? rdata_from_text(*t, v) : Result<std::string>(make_error(Errc::Internal, ""));
      w.push_back(rd ? *rd : v);
    }
    std::sort(w.begin(), w.end());
    return w;
  };
  return wires(a) == wires(b);
}

const char* action_name(Change::Action a) {
  switch (a) {
    case Change::Action::Create:
      return "CREATE";
    case Change::Action::Upsert:
      return "UPSERT";
    case Change::Action::Delete:
      return "DELETE";
  }
  return "?";
}

/// Writes `serial` into an SOA value (the third field), via the wire form.
Result<std::string> soa_with_serial(std::string_view value, uint32_t serial) {
  BERTH_ASSIGN_OR_RETURN(std::string wire, rdata_from_text(type::SOA, value));
  if (wire.size() < 20) {
    return make_error(Errc::InvalidArgument, "SOA rdata too short");
  }
  size_t at = wire.size() - 20;
  for (int i = 0; i < 4; ++i) {
    wire[at + i] = static_cast<char>((serial >> (24 - 8 * i)) & 0xFF);
  }
  return rdata_to_text(type::SOA, wire);
}

// One record set key a batch touched, in canonical order.
struct Slot {
  size_t pos = 0;        // in the old sets: the set itself when it existed, else where it goes
  bool existed = false;  // the old zone had a set under this key
  std::optional<RecordSet> value;  // what the key holds after the changes so far
};

// base_valid: z is a valid zone (so only the touched names are checked again). z.sets must be
// in canonical order with unique keys.
Result<ZoneData> apply(const ZoneData& z, const std::vector<Change>& changes, bool base_valid,
                       ZoneDelta* delta) {
  if (changes.empty()) {
    return make_error(Errc::InvalidArgument, "a change batch needs at least one change");
  }
  auto zone_wire_r = name_from_text(z.name);
  if (!zone_wire_r) {
    return make_error(Errc::InvalidArgument, "bad zone name: " + zone_wire_r.error().message());
  }
  std::string zone_wire = name_lower(*zone_wire_r);
  auto label = [&](size_t i) {
    const Change& c = changes[i];
    return fmt::format("change {} ({} {} {})", i, action_name(c.action), api_name(c.set.name),
                       upper(c.set.type));
  };
  std::map<std::string, Slot> slots;  // by sort key
  auto slot_for = [&](const RecordSet& s) -> Slot& {
    std::string key = sort_key(s);
    if (auto it = slots.find(key); it != slots.end()) {
      return it->second;
    }
    size_t lo = 0;
    size_t hi = z.sets.size();
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (z.sets.key(mid) < key) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    Slot slot;
    slot.pos = lo;
    if (lo < z.sets.size() && z.sets.key(lo) == key) {
      slot.existed = true;
      slot.value = z.sets[lo];
    }
    return slots.emplace(std::move(key), std::move(slot)).first->second;
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    RecordSet s = changes[i].set;
    s.name = api_name(s.name);
    s.type = upper(s.type);
    Checked checked;
    if (std::string rule = zone_detail::check_set(s, zone_wire, checked); !rule.empty()) {
      return make_error(Errc::InvalidArgument, label(i) + ": " + rule);
    }
    Slot& slot = slot_for(s);
    const bool exists = slot.value.has_value();
    bool apex = checked.wire == zone_wire;
    switch (changes[i].action) {
      case Change::Action::Create:
        if (exists) {
          return make_error(Errc::InvalidArgument,
                            label(i) + ": the record set already exists (use UPSERT)");
        }
        slot.value = std::move(s);
        break;
      case Change::Action::Upsert:
        slot.value = std::move(s);
        break;
      case Change::Action::Delete:
        if (checked.type == type::SOA) {
          return make_error(Errc::InvalidArgument, label(i) + ": the SOA cannot be deleted");
        }
        if (apex && checked.type == type::NS) {
          return make_error(Errc::InvalidArgument,
                            label(i) + ": the apex NS set cannot be deleted");
        }
        if (!exists) {
          return make_error(Errc::InvalidArgument, label(i) + ": no such record set");
        }
        if (!same_content(*slot.value, s)) {
          return make_error(Errc::InvalidArgument,
                            label(i) +
                                ": DELETE must match the record set exactly (values, "
                                "TTL, target and routing)");
        }
        slot.value.reset();
        break;
    }
  }
  ZoneData out;
  out.name = z.name;
  out.serial = z.serial + 1;  // RFC 1982 arithmetic: wraps
  out.allow_transfer = z.allow_transfer;
  out.also_notify = z.also_notify;
  {
    RecordSet probe;
    probe.name = api_name(z.name);
    probe.type = "SOA";
    Slot& soa = slot_for(probe);
    if (soa.value && soa.value->values.size() == 1) {
      if (auto v = soa_with_serial(soa.value->values[0], out.serial)) {
        soa.value->values[0] = std::move(*v);
      }
    }
  }
  // One merge of the old sets and the touched keys, both in canonical order.
  out.sets.reserve(z.sets.size() + slots.size());
  std::vector<ZoneDelta::Name> touched;  // each name once, at one of its touched sets' places
  size_t at = 0;
  for (auto& [key, slot] : slots) {
    while (at < slot.pos) {
      out.sets.push_back(z.sets.shared(at++));
    }
    if (slot.existed) {
      ++at;
    }
    if (!slot.existed && !slot.value) {
      continue;  // created and deleted again, or a probe for a set that is not there
    }
    const RecordSet& named = slot.value ? *slot.value : z.sets[slot.pos];
    std::string wire = zone_detail::set_wire(named);
    if (touched.empty() || touched.back().wire != wire) {
      touched.push_back({std::move(wire), out.sets.size(), out.sets.size()});
    }
    if (delta != nullptr) {
      (slot.value ? delta->put : delta->removed).push_back(named);
    }
    if (slot.value) {
      out.sets.push_back(std::move(*slot.value));
    }
  }
  while (at < z.sets.size()) {
    out.sets.push_back(z.sets.shared(at++));
  }
  // Each touched name's sets are the neighbours with its name: no search needed.
  for (auto& n : touched) {
    while (n.first > 0 && zone_detail::set_wire(out.sets[n.first - 1]) == n.wire) {
      --n.first;
    }
    while (n.last < out.sets.size() && zone_detail::set_wire(out.sets[n.last]) == n.wire) {
      ++n.last;
    }
  }
  auto v = base_valid ? zone_detail::find_violation_near(out, touched)
                      : zone_detail::find_violation(out, false);
  if (!v && delta != nullptr) {
    delta->names = std::move(touched);
  }
  if (v) {
    // Name the change that touched the record: the last with its name and type, else the
    // last with its name.
    std::string vname = api_name(v->name);
    std::optional<size_t> hit;
    for (size_t pass = 0; pass < 2 && !hit; ++pass) {
      for (size_t i = changes.size(); i-- > 0;) {
        const RecordSet& cs = changes[i].set;
        if (api_name(cs.name) == vname && (pass == 1 || upper(cs.type) == upper(v->type))) {
          hit = i;
          break;
        }
      }
    }
    if (hit) {
      return make_error(Errc::InvalidArgument, label(*hit) + ": " + v->rule);
    }
    return make_error(Errc::InvalidArgument, "change batch: " + v->text());
  }
  return out;
}

}  // namespace

Result<ZoneData> apply_changes(const ZoneData& z, const std::vector<Change>& changes) {
  // Any zone data, in any order: sorted first, checked whole after.
  ZoneData base = z;
  base.sets.sort();
  return apply(base, changes, false, nullptr);
}

Result<ZoneData> apply_changes_to_valid(const ZoneData& z, const std::vector<Change>& changes,
                                        ZoneDelta& delta) {
  delta = ZoneDelta{};
  auto out = apply(z, changes, true, &delta);
  if (!out) {
    delta = ZoneDelta{};
  }
  return out;
}

ZoneData new_zone(std::string_view name, const std::vector<std::string>& nameservers,
                  uint32_t serial) {
  ZoneData z;
  z.name = api_name(name);
  z.serial = serial;
  std::vector<std::string> ns;
  for (const auto& n : nameservers) {
    std::string a = api_name(n);
    if (!a.empty()) {
      ns.push_back(a + ".");
    }
  }
  std::string mname = ns.empty() ? "ns1." + z.name + "." : ns.front();
  RecordSet soa;
  soa.name = z.name;
  soa.type = "SOA";
  soa.ttl = 900;
  soa.values = {fmt::format("{} hostmaster.{}. {} 3600 900 1209600 300", mname, z.name, serial)};
  z.sets.push_back(std::move(soa));
  if (!ns.empty()) {
    RecordSet nss;
    nss.name = z.name;
    nss.type = "NS";
    nss.ttl = 172800;
    nss.values = std::move(ns);
    z.sets.push_back(std::move(nss));
  }
  z.sets.sort();
  return z;
}

}  // namespace berth::dns
