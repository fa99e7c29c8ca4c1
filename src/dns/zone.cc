// SPDX-License-Identifier: Apache-2.0
// Zone rules (validate_zone), change batches applied all or nothing (apply_changes), new zones,
// and the compiled form queries are answered from (Zone::compile, Snapshot::zone_for).
// Pure; no I/O. Errors name the record ("www.example.com A") and the rule broken.
#include "dns/zone.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <unordered_set>

#include "dns/name.h"
#include "dns/rdata.h"

namespace berth::dns {

namespace {

constexpr uint32_t kMaxTtl = 2147483647;  // RFC 2181 §8
constexpr int kMaxLabels = 127;
constexpr size_t kMaxSetIdentifier = 128;  // Route 53's limit
constexpr uint32_t kMaxWeight = 255;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

/// "www.example.com." / "WWW.example.com" → "www.example.com" (the RecordSet form).
std::string api_name(std::string_view s) {
  if (s.size() > 1 && s.back() == '.') {
    s.remove_suffix(1);
  }
  return lower(s);
}

/// Offsets of each label in a wire name, first label first; returns the count.
int label_offsets(std::string_view wire, std::array<uint16_t, 128>& off) {
  int n = 0;
  size_t i = 0;
  while (i < wire.size() && wire[i] != 0 && n < 128) {
    off[n++] = static_cast<uint16_t>(i);
    i += 1 + static_cast<unsigned char>(wire[i]);
  }
  return n;
}

/// A set's sort key as one byte string whose plain order is the canonical one (RFC 4034
/// §6.1): labels from the rightmost, lower-cased, each ended by 0x00 (bytes 0x00 and 0x01
/// escaped as 0x01 0x01 and 0x01 0x02, which keeps their order), then the type code (2 bytes,
/// big-endian) and the set identifier. Built once per set, so sorting is memcmp.
std::string sort_key(const RecordSet& s) {
  std::string k;
  auto w = name_from_text(s.name);
  std::string wire = w ? name_lower(*w) : lower(s.name);
  std::array<uint16_t, 128> off{};
  int n = label_offsets(wire, off);
  k.reserve(wire.size() + 8 + s.set_identifier.size());
  for (int i = n - 1; i >= 0; --i) {
    size_t len = static_cast<unsigned char>(wire[off[i]]);
    for (size_t j = 0; j < len && off[i] + 1 + j < wire.size(); ++j) {
      auto c = static_cast<unsigned char>(wire[off[i] + 1 + j]);
      if (c <= 1) {
        k += '\x01';
        k += static_cast<char>(c + 1);
      } else {
        k += static_cast<char>(c);
      }
    }
    k += '\0';
  }
  k += '\0';  // the name ends: fewer labels first
  auto t = type_from_text(s.type);
  uint16_t type = t ? *t : 0;
  k += static_cast<char>(type >> 8);
  k += static_cast<char>(type & 0xFF);
  k += s.set_identifier;
  return k;
}

void sort_sets(std::vector<RecordSet>& sets) {
  std::vector<std::pair<std::string, size_t>> keys;
  keys.reserve(sets.size());
  for (size_t i = 0; i < sets.size(); ++i) {
    keys.emplace_back(sort_key(sets[i]), i);
  }
  if (std::is_sorted(keys.begin(), keys.end())) {
    return;
  }
  std::sort(keys.begin(), keys.end());
  std::vector<RecordSet> out;
  out.reserve(sets.size());
  for (auto& k : keys) {
    out.push_back(std::move(sets[k.second]));
  }
  sets = std::move(out);
}

/// A broken rule and the record it concerns (apply_changes maps it back to a change).
struct Violation {
  std::string name;  // API form
  std::string type;
  std::string rule;
  std::string text() const { return fmt::format("{} {}: {}", name, type, rule); }
};

/// A set that passed check_set, in the forms the zone-level rules need.
struct Checked {
  std::string wire;  // lower-case
  uint16_t type = 0;
  const RecordSet* set = nullptr;
};

enum class PolicyKind { None, Weighted, Failover, Multivalue, Several };

PolicyKind policy_of(const RecordSet& s) {
  int n = (s.weight ? 1 : 0) + (s.failover.empty() ? 0 : 1) + (s.multivalue ? 1 : 0);
  if (n > 1) {
    return PolicyKind::Several;
  }
  if (s.weight) {
    return PolicyKind::Weighted;
  }
  if (!s.failover.empty()) {
    return PolicyKind::Failover;
  }
  return s.multivalue ? PolicyKind::Multivalue : PolicyKind::None;
}

bool service_name_ok(std::string_view s) {
  if (s.empty() || s.size() > kMaxLabelBytes) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
  });
}

/// The rules one set keeps on its own. Empty string: fine.
// check_values = false skips parsing each value: for sets already checked (a batch's final
// zone is the old, valid zone plus sets checked one by one as they were applied).
std::string check_set(const RecordSet& s, std::string_view zone_wire, Checked& out,
                      bool check_values = true) {
  auto wire = name_from_text(s.name);
  if (!wire) {
    return "bad name: " + wire.error().message();
  }
  if (name_labels(*wire) > kMaxLabels) {
    return "a name may have at most 127 labels";
  }
  out.wire = name_lower(*wire);
  if (!name_is_within(out.wire, zone_wire)) {
    return fmt::format("the name is outside the zone {}", name_to_api(zone_wire));
  }
  auto t = type_from_text(s.type);
  if (!t || !type_supported(*t)) {
    return fmt::format("unsupported record type {}", s.type);
  }
  out.type = *t;
  out.set = &s;
  if (s.ttl > kMaxTtl) {
    return fmt::format("TTL {} is over the maximum 2147483647", s.ttl);
  }
  bool apex = out.wire == zone_wire;
  if (*t == type::ALIAS) {
    if (!s.values.empty()) {
      return "an ALIAS has a target, not values";
    }
    if (s.alias_service.empty() == s.alias_name.empty()) {
      return "an ALIAS needs exactly one target: a service or a name";
    }
    if (!s.alias_service.empty() && !service_name_ok(s.alias_service)) {
      return fmt::format("bad ALIAS service name \"{}\"", s.alias_service);
    }
    if (!s.alias_name.empty()) {
      auto target = name_from_text(s.alias_name);
      if (!target) {
        return "bad ALIAS target: " + target.error().message();
      }
      if (name_equal(*target, out.wire)) {
        return "an ALIAS cannot point at its own name";
      }
    }
  } else {
    if (!s.alias_service.empty() || !s.alias_name.empty()) {
      return "only an ALIAS has an alias target";
    }
    if (s.values.empty()) {
      return "a record set needs at least one value";
    }
    if (check_values) {
      std::vector<std::string> wires;
      wires.reserve(s.values.size());
      for (const auto& v : s.values) {
        auto rd = rdata_from_text(*t, v);
        if (!rd) {
          return fmt::format("bad value \"{}\": {}", v, rd.error().message());
        }
        if (std::find(wires.begin(), wires.end(), *rd) != wires.end()) {
          return fmt::format("duplicate value \"{}\"", v);
        }
        wires.push_back(std::move(*rd));
      }
    }
  }
  if (*t == type::SOA) {
    if (!apex) {
      return "an SOA may only be at the zone apex";
    }
    if (s.values.size() != 1) {
      return "the SOA has exactly one value";
    }
  }
  if (*t == type::CNAME && apex) {
    return "a CNAME cannot be at the zone apex (use an ALIAS)";
  }
  // Routing policy.
  PolicyKind kind = policy_of(s);
  if (kind == PolicyKind::Several) {
    return "a record set has at most one routing policy (weight, failover or multivalue)";
  }
  if (s.weight && *s.weight > kMaxWeight) {
    return fmt::format("weight {} is over 255", *s.weight);
  }
  if (!s.failover.empty() && s.failover != "PRIMARY" && s.failover != "SECONDARY") {
    return fmt::format("failover must be PRIMARY or SECONDARY, not \"{}\"", s.failover);
  }
  if (s.set_identifier.size() > kMaxSetIdentifier) {
    return "a set identifier has at most 128 characters";
  }
  if (kind != PolicyKind::None && s.set_identifier.empty()) {
    return "a routing policy needs a set identifier";
  }
  if (kind == PolicyKind::None && !s.set_identifier.empty()) {
    return "a set identifier needs a routing policy (weight, failover or multivalue)";
  }
  if (kind != PolicyKind::None && apex && (*t == type::SOA || *t == type::NS)) {
    return "the apex SOA and NS sets cannot have a routing policy";
  }
  return {};
}

/// Every rule; the first violation found, or nullopt.
// trusted: every set was checked on its own already and the sets are in canonical order (a
// batch's result): only the zone-wide rules run, without sorting.
std::optional<Violation> find_violation(const ZoneData& z, bool trusted = false) {
  const bool check_values = !trusted;
  auto zone_wire_r = name_from_text(z.name);
  if (!zone_wire_r) {
    return Violation{z.name, "SOA", "bad zone name: " + zone_wire_r.error().message()};
  }
  std::string zone_wire = name_lower(*zone_wire_r);
  std::string zone_api = name_to_api(zone_wire);
  std::vector<Checked> sets(z.sets.size());
  for (size_t i = 0; i < z.sets.size(); ++i) {
    std::string rule = check_set(z.sets[i], zone_wire, sets[i], check_values);
    if (!rule.empty()) {
      return Violation{z.sets[i].name, z.sets[i].type, rule};
    }
  }
  // Group by (name, type): sort indices canonically.
  std::vector<size_t> order(sets.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i;
  }
  if (!trusted) {
    std::vector<std::string> keys(sets.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      keys[i] = sort_key(z.sets[i]);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  }
  auto viol = [](const Checked& c, std::string rule) {
    return Violation{c.set->name, c.set->type, std::move(rule)};
  };
  std::unordered_set<std::string> cuts;  // non-apex names with NS
  int soa_count = 0;
  bool apex_ns = false;
  for (size_t i = 0; i < order.size();) {
    // One name: [i, j).
    size_t j = i;
    while (j < order.size() && sets[order[j]].wire == sets[order[i]].wire) {
      ++j;
    }
    bool has_cname = false, has_alias = false, has_addr = false, has_other = false;
    for (size_t k = i; k < j; ++k) {
      uint16_t t = sets[order[k]].type;
      has_cname |= t == type::CNAME;
      has_alias |= t == type::ALIAS;
      has_addr |= t == type::A || t == type::AAAA;
      has_other |= t != type::CNAME;
    }
    const Checked& first = sets[order[i]];
    if (has_cname && has_other) {
      for (size_t k = i; k < j; ++k) {
        if (sets[order[k]].type == type::CNAME) {
          return viol(sets[order[k]], "a CNAME cannot share a name with other data");
        }
      }
    }
    if (has_alias && has_addr) {
      for (size_t k = i; k < j; ++k) {
        if (sets[order[k]].type == type::ALIAS) {
          return viol(sets[order[k]], "an ALIAS cannot share a name with A or AAAA data");
        }
      }
    }
    // Sets sharing a type: all with identifiers, one policy kind, unique identifiers.
    for (size_t k = i; k < j;) {
      size_t m = k;
      while (m < j && sets[order[m]].type == sets[order[k]].type) {
        ++m;
      }
      if (m - k > 1) {
        PolicyKind kind = policy_of(*sets[order[k]].set);
        int primaries = 0, secondaries = 0;
        for (size_t n = k; n < m; ++n) {
          const RecordSet& s = *sets[order[n]].set;
          if (s.set_identifier.empty()) {
            return viol(sets[order[n]],
                        "record sets sharing a name and type each need a set identifier");
          }
          if (n > k && s.set_identifier == sets[order[n - 1]].set->set_identifier) {
            return viol(sets[order[n]],
                        fmt::format("duplicate set identifier \"{}\"", s.set_identifier));
          }
          if (policy_of(s) != kind) {
            return viol(sets[order[n]],
                        "record sets sharing a name and type must use the same routing policy");
          }
          primaries += s.failover == "PRIMARY" ? 1 : 0;
          secondaries += s.failover == "SECONDARY" ? 1 : 0;
          if (primaries > 1 || secondaries > 1) {
            return viol(sets[order[n]], "failover allows one PRIMARY and one SECONDARY");
          }
        }
      }
      k = m;
    }
    if (first.wire == zone_wire) {
      for (size_t k = i; k < j; ++k) {
        soa_count += sets[order[k]].type == type::SOA ? 1 : 0;
        apex_ns |= sets[order[k]].type == type::NS;
      }
    } else {
      for (size_t k = i; k < j; ++k) {
        if (sets[order[k]].type == type::NS) {
          cuts.insert(first.wire);
          for (size_t n = i; n < j; ++n) {
            uint16_t t = sets[order[n]].type;
            if (t != type::NS && t != type::A && t != type::AAAA) {
              return viol(sets[order[n]],
                          "only NS and A/AAAA glue may sit at a delegation (a name with NS)");
            }
          }
          break;
        }
      }
    }
    i = j;
  }
  if (soa_count != 1) {
    return Violation{zone_api, "SOA", "the zone needs exactly one SOA at its apex"};
  }
  if (!apex_ns) {
    return Violation{zone_api, "NS", "the zone needs an NS set at its apex"};
  }
  if (!cuts.empty()) {
    for (const auto& c : sets) {
      std::string_view p = c.wire;
      while (p.size() > zone_wire.size()) {
        p = name_parent(p);
        if (p.size() <= zone_wire.size()) {
          break;
        }
        if (cuts.count(std::string(p)) != 0 && c.type != type::A && c.type != type::AAAA) {
          return viol(c, fmt::format("only A/AAAA glue may lie below the delegation at {}",
                                     name_to_api(p)));
        }
      }
    }
  }
  return std::nullopt;
}

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

uint32_t read_u32(std::string_view b, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  }
  return v;
}

}  // namespace

Status validate_zone(const ZoneData& z) {
  if (auto v = find_violation(z)) {
    return make_error(Errc::InvalidArgument, v->text());
  }
  return ok();
}

Result<ZoneData> apply_changes(const ZoneData& z, const std::vector<Change>& changes) {
  if (changes.empty()) {
    return make_error(Errc::InvalidArgument, "a change batch needs at least one change");
  }
  auto zone_wire_r = name_from_text(z.name);
  if (!zone_wire_r) {
    return make_error(Errc::InvalidArgument, "bad zone name: " + zone_wire_r.error().message());
  }
  std::string zone_wire = name_lower(*zone_wire_r);
  ZoneData out = z;
  auto label = [&](size_t i) {
    const Change& c = changes[i];
    return fmt::format("change {} ({} {} {})", i, action_name(c.action), api_name(c.set.name),
                       upper(c.set.type));
  };
  // One index of the sets by key, built once: a batch is O(sets + changes), not their
  // product (a 1 000-change batch on a 15 000-set zone stays well under 100 ms). Deleted sets
  // are tombstoned and compacted at the end so indexes stay valid.
  auto key_of = [](const RecordSet& r) {
    return api_name(r.name) + '\0' + upper(r.type) + '\0' + r.set_identifier;
  };
  std::unordered_map<std::string, size_t> index;
  index.reserve(out.sets.size() + changes.size());
  for (size_t i = 0; i < out.sets.size(); ++i) {
    index.emplace(key_of(out.sets[i]), i);
  }
  std::vector<bool> dead(out.sets.size(), false);
  for (size_t i = 0; i < changes.size(); ++i) {
    RecordSet s = changes[i].set;
    s.name = api_name(s.name);
    s.type = upper(s.type);
    Checked checked;
    if (std::string rule = check_set(s, zone_wire, checked); !rule.empty()) {
      return make_error(Errc::InvalidArgument, label(i) + ": " + rule);
    }
    std::string key = key_of(s);
    auto found = index.find(key);
    const bool exists = found != index.end();
    bool apex = checked.wire == zone_wire;
    switch (changes[i].action) {
      case Change::Action::Create:
        if (exists) {
          return make_error(Errc::InvalidArgument,
                            label(i) + ": the record set already exists (use UPSERT)");
        }
        index.emplace(std::move(key), out.sets.size());
        out.sets.push_back(std::move(s));
        dead.push_back(false);
        break;
      case Change::Action::Upsert:
        if (exists) {
          out.sets[found->second] = std::move(s);
        } else {
          index.emplace(std::move(key), out.sets.size());
          out.sets.push_back(std::move(s));
          dead.push_back(false);
        }
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
        if (!same_content(out.sets[found->second], s)) {
          return make_error(Errc::InvalidArgument,
                            label(i) +
                                ": DELETE must match the record set exactly (values, "
                                "TTL, target and routing)");
        }
        dead[found->second] = true;
        index.erase(found);
        break;
    }
  }
  {
    size_t w = 0;
    for (size_t r = 0; r < out.sets.size(); ++r) {
      if (!dead[r]) {
        if (w != r) {
          out.sets[w] = std::move(out.sets[r]);
        }
        ++w;
      }
    }
    out.sets.resize(w);
  }
  out.serial = z.serial + 1;  // RFC 1982 arithmetic: wraps
  for (auto& s : out.sets) {
    if (upper(s.type) == "SOA" && s.values.size() == 1) {
      auto v = soa_with_serial(s.values[0], out.serial);
      if (v) {
        s.values[0] = std::move(*v);
      }
    }
  }
  sort_sets(out.sets);
  // Every set was checked on its own already (the old zone was valid; each change's set was
  // checked above): only the zone-wide rules are left.
  if (auto v = find_violation(out, false)) {
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
  sort_sets(z.sets);
  return z;
}

Result<std::shared_ptr<const Zone>> Zone::compile(const ZoneData& z) {
  BERTH_TRY(validate_zone(z));
  return compile_validated(z);
}

Result<std::shared_ptr<const Zone>> Zone::compile_validated(const ZoneData& z) {
  auto zone = std::make_shared<Zone>();
  BERTH_ASSIGN_OR_RETURN(std::string apex, name_from_text(z.name));
  zone->apex_ = name_lower(apex);
  zone->data_ = z;
  zone->nodes_[zone->apex_];
  for (const auto& s : z.sets) {
    BERTH_ASSIGN_OR_RETURN(std::string wire, name_from_text(s.name));
    wire = name_lower(wire);
    BERTH_ASSIGN_OR_RETURN(uint16_t t, type_from_text(s.type));
    CompiledSet c;
    c.type = t;
    c.ttl = s.ttl;
    c.set_identifier = s.set_identifier;
    c.weight = s.weight.value_or(0);
    c.health_check = s.health_check;
    if (s.weight) {
      c.policy = CompiledSet::Policy::Weighted;
    } else if (!s.failover.empty()) {
      c.policy = CompiledSet::Policy::Failover;
      c.primary = s.failover == "PRIMARY";
    } else if (s.multivalue) {
      c.policy = CompiledSet::Policy::Multivalue;
    }
    if (t == type::ALIAS) {
      if (!s.alias_service.empty()) {
        c.alias_service = s.alias_service;
        BERTH_ASSIGN_OR_RETURN(std::string target,
                               name_from_text(s.alias_service + ".service.berth."));
        c.rdata.push_back(name_lower(target));
      } else {
        BERTH_ASSIGN_OR_RETURN(std::string target, name_from_text(s.alias_name));
        c.alias_name = name_lower(target);
        c.rdata.push_back(c.alias_name);
      }
    } else {
      for (const auto& v : s.values) {
        BERTH_ASSIGN_OR_RETURN(std::string rd, rdata_from_text(t, v));
        c.rdata.push_back(std::move(rd));
      }
    }
    if (t == type::SOA && !c.rdata.empty() && c.rdata[0].size() >= 20) {
      zone->soa_minimum_ = read_u32(c.rdata[0], c.rdata[0].size() - 4);
    }
    zone->nodes_[wire].sets.push_back(std::move(c));
    // Empty non-terminals between the apex and the name.
    std::string_view p = wire;
    while (p.size() > zone->apex_.size()) {
      p = name_parent(p);
      zone->nodes_.try_emplace(std::string(p));
    }
  }
  for (auto& [name, node] : zone->nodes_) {
    std::stable_sort(node.sets.begin(), node.sets.end(),
                     [](const CompiledSet& a, const CompiledSet& b) { return a.type < b.type; });
    if (name != zone->apex_) {
      node.is_delegation = std::any_of(node.sets.begin(), node.sets.end(),
                                       [](const CompiledSet& s) { return s.type == type::NS; });
    }
  }
  return std::shared_ptr<const Zone>(std::move(zone));
}

const Node* Zone::find(std::string_view lower_wire) const {
  // The map is keyed by std::string; a per-thread key avoids an allocation per lookup.
  thread_local std::string key;
  key.assign(lower_wire);
  auto it = nodes_.find(key);
  return it == nodes_.end() ? nullptr : &it->second;
}

const Node& Zone::apex_node() const {
  static const Node kEmpty;
  const Node* n = find(apex_);
  return n != nullptr ? *n : kEmpty;
}

const Zone* Snapshot::zone_for(std::string_view lower_wire) const {
  if (zones.empty()) {
    return nullptr;
  }
  thread_local std::string key;
  std::string_view p = lower_wire;
  for (;;) {
    key.assign(p);
    auto it = zones.find(key);
    if (it != zones.end()) {
      return it->second.get();
    }
    if (p.size() <= 1) {
      return nullptr;
    }
    p = name_parent(p);
  }
}

}  // namespace berth::dns
