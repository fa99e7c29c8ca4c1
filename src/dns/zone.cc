// SPDX-License-Identifier: Apache-2.0
// Zone rules: canonical order, what one set must keep (check_set), what a whole zone must keep
// (validate_zone, find_violation) and the same rules checked only where a batch touched a valid
// zone (find_violation_near). Pure; no I/O. Errors name the record ("www.example.com A") and
// the rule broken. Batches are in zone_change.cc, the compiled form in zone_compile.cc.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <unordered_set>

#include "dns/name.h"
#include "dns/rdata.h"
#include "dns/zone_internal.h"

namespace berth::dns {

namespace zone_detail {

namespace {

constexpr uint32_t kMaxTtl = 2147483647;  // RFC 2181 §8
constexpr int kMaxLabels = 127;
constexpr size_t kMaxSetIdentifier = 128;  // Route 53's limit
constexpr uint32_t kMaxWeight = 255;

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

}  // namespace

/// "www.example.com." / "WWW.example.com" → "www.example.com" (the RecordSet form).
std::string api_name(std::string_view s) {
  if (s.size() > 1 && s.back() == '.') {
    s.remove_suffix(1);
  }
  return lower(s);
}

/// A set's sort key as one byte string whose plain order is the canonical one (RFC 4034
/// §6.1): labels from the rightmost, lower-cased, each ended by 0x00 (bytes 0x00 and 0x01
/// escaped as 0x01 0x01 and 0x01 0x02, which keeps their order), then the type code (2 bytes,
/// big-endian) and the set identifier. Built once per set, so sorting is memcmp.
std::string name_sort_key(std::string_view wire) {
  std::string k;
  std::array<uint16_t, 128> off{};
  int n = label_offsets(wire, off);
  k.reserve(wire.size() + 8);
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
  return k;
}

std::string set_wire(const RecordSet& s) {
  auto w = name_from_text(s.name);
  return w ? name_lower(*w) : lower(s.name);
}

std::string sort_key(const RecordSet& s) {
  std::string k = name_sort_key(set_wire(s));
  auto t = type_from_text(s.type);
  uint16_t type = t ? *t : 0;
  k += static_cast<char>(type >> 8);
  k += static_cast<char>(type & 0xFF);
  k += s.set_identifier;
  return k;
}

std::pair<size_t, size_t> sets_at_name(const RecordSets& sets, std::string_view lower_wire) {
  // A name's sets start where its name key would go: each of their keys extends it, and every
  // name before it in canonical order has a smaller key.
  std::string probe = name_sort_key(lower_wire);
  size_t lo = 0;
  size_t hi = sets.size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sets.key(mid) < probe) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  size_t end = lo;
  while (end < sets.size() && set_wire(sets[end]) == lower_wire) {
    ++end;
  }
  return {lo, end};
}

/// The rules one set keeps on its own. Empty string: fine.
// check_values = false skips parsing each value: for sets already checked (a batch's final
// zone is the old, valid zone plus sets checked one by one as they were applied).
std::string check_set(const RecordSet& s, std::string_view zone_wire, Checked& out,
                      bool check_values) {
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

namespace {

// The rules of one name's sets, sets[order[i]] .. sets[order[j - 1]] in canonical order: what
// may share a name, routing-policy consistency, what may sit at a delegation. Counts the apex's
// SOA and NS sets; is_cut: a name below the apex with NS.
std::optional<Violation> check_name(const std::vector<Checked>& sets,
                                    const std::vector<size_t>& order, size_t i, size_t j,
                                    std::string_view zone_wire, int& soa_count, bool& apex_ns,
                                    bool& is_cut) {
  auto viol = [](const Checked& c, std::string rule) {
    return Violation{c.set->name, c.set->type, std::move(rule)};
  };
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
        is_cut = true;
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
  return std::nullopt;
}

}  // namespace

/// Every rule; the first violation found, or nullopt.
// trusted: every set was checked on its own already and the sets are in canonical order (a
// batch's result): only the zone-wide rules run, without sorting.
std::optional<Violation> find_violation(const ZoneData& z, bool trusted) {
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
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return z.sets.key(a) < z.sets.key(b); });
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
    bool is_cut = false;
    if (auto v = check_name(sets, order, i, j, zone_wire, soa_count, apex_ns, is_cut)) {
      return v;
    }
    if (is_cut) {
      cuts.insert(sets[order[i]].wire);
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

std::optional<Violation> find_violation_near(const ZoneData& z,
                                             const std::vector<ZoneDelta::Name>& touched) {
  auto zone_wire_r = name_from_text(z.name);
  if (!zone_wire_r) {
    return Violation{z.name, "SOA", "bad zone name: " + zone_wire_r.error().message()};
  }
  std::string zone_wire = name_lower(*zone_wire_r);
  std::string zone_api = name_to_api(zone_wire);
  auto has_ns = [&](std::string_view wire) {
    auto [b, e] = sets_at_name(z.sets, wire);
    for (size_t k = b; k < e; ++k) {
      if (z.sets[k].type == "NS") {
        return true;
      }
    }
    return false;
  };
  auto below_cut = [](const RecordSet& s, std::string_view cut) {
    return Violation{
        s.name, s.type,
        fmt::format("only A/AAAA glue may lie below the delegation at {}", name_to_api(cut))};
  };
  for (const auto& name : touched) {
    const std::string& wire = name.wire;
    size_t b = name.first;
    size_t e = name.last;
    std::vector<Checked> sets(e - b);
    std::vector<size_t> order(e - b);
    for (size_t k = b; k < e; ++k) {
      // Values were checked as the batch applied them, or before it (the zone was valid).
      std::string rule = check_set(z.sets[k], zone_wire, sets[k - b], false);
      if (!rule.empty()) {
        return Violation{z.sets[k].name, z.sets[k].type, rule};
      }
      order[k - b] = k - b;
    }
    int soa_count = 0;
    bool apex_ns = false;
    bool is_cut = false;
    if (!sets.empty()) {
      if (auto v = check_name(sets, order, 0, sets.size(), zone_wire, soa_count, apex_ns, is_cut)) {
        return v;
      }
    }
    if (wire == zone_wire) {
      if (soa_count != 1) {
        return Violation{zone_api, "SOA", "the zone needs exactly one SOA at its apex"};
      }
      if (!apex_ns) {
        return Violation{zone_api, "NS", "the zone needs an NS set at its apex"};
      }
      continue;
    }
    // Below a delegation only glue; a delegation only glue below it (names below a name sort
    // right after its sets).
    for (std::string_view p = name_parent(wire); p.size() > zone_wire.size(); p = name_parent(p)) {
      if (has_ns(p)) {
        for (const auto& c : sets) {
          if (c.type != type::A && c.type != type::AAAA) {
            return below_cut(*c.set, p);
          }
        }
      }
    }
    if (is_cut) {
      for (size_t k = e; k < z.sets.size() && name_is_within(set_wire(z.sets[k]), wire); ++k) {
        if (z.sets[k].type != "A" && z.sets[k].type != "AAAA") {
          return below_cut(z.sets[k], wire);
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace zone_detail

RecordSets::Stored::Stored(RecordSet s) : set(std::move(s)), key(zone_detail::sort_key(set)) {}

RecordSets::RecordSets(std::initializer_list<RecordSet> sets) {
  items_.reserve(sets.size());
  for (const auto& s : sets) {
    push_back(s);
  }
}

void RecordSets::push_back(RecordSet s) {
  items_.push_back(std::make_shared<const Stored>(std::move(s)));
}

void RecordSets::replace(size_t i, RecordSet s) {
  items_[i] = std::make_shared<const Stored>(std::move(s));
}

void RecordSets::erase(size_t i) { items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i)); }

void RecordSets::sort() {
  auto less = [](const Ptr& a, const Ptr& b) { return a->key < b->key; };
  if (!std::is_sorted(items_.begin(), items_.end(), less)) {
    std::stable_sort(items_.begin(), items_.end(), less);
  }
}

bool RecordSets::operator==(const RecordSets& o) const {
  return std::equal(items_.begin(), items_.end(), o.items_.begin(), o.items_.end(),
                    [](const Ptr& a, const Ptr& b) { return a == b || a->set == b->set; });
}

Status validate_zone(const ZoneData& z) {
  if (auto v = zone_detail::find_violation(z)) {
    return make_error(Errc::InvalidArgument, v->text());
  }
  return ok();
}

}  // namespace berth::dns
