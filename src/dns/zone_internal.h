// SPDX-License-Identifier: Apache-2.0
// Private to src/dns: what the zone rules (zone.cc), change batches (zone_change.cc) and the
// compiled form (zone_compile.cc) share: canonical order, finding a name's sets, the rules.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ascii.h"
#include "dns/dns.h"

namespace berth::dns::zone_detail {

using ascii::lower;
using ascii::upper;

/// "www.example.com." / "WWW.example.com" → "www.example.com" (the RecordSet form).
std::string api_name(std::string_view s);
/// A set's name in wire form, lower-cased.
std::string set_wire(const RecordSet& s);
/// The name part of sort_key: a name's sets all have keys that start with it.
std::string name_sort_key(std::string_view lower_wire);
/// Canonical order (RFC 4034 §6.1) by (name, type, set identifier) as one memcmp-able key.
std::string sort_key(const RecordSet& s);
/// The sets at one name, [first, last), in sets sorted canonically: O(log n) keys. When there
/// are none, first == last is where they would go.
std::pair<size_t, size_t> sets_at_name(const RecordSets& sets, std::string_view lower_wire);

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

/// The rules one set keeps on its own. Empty string: fine. check_values = false skips parsing
/// each value (for sets checked already).
std::string check_set(const RecordSet& s, std::string_view zone_wire, Checked& out,
                      bool check_values = true);
/// Every rule of a zone; the first violation found, or nullopt. trusted: every set was
/// checked on its own already and the sets are in canonical order.
std::optional<Violation> find_violation(const ZoneData& z, bool trusted = false);
/// The rules only where a batch could have broken them: z, sorted canonically, was valid but
/// for the sets at the names in `touched` (with where their sets lie), whose values were
/// checked. O(touched), plus a search per ancestor of a touched name below the apex and what
/// lies below a name that is a delegation.
std::optional<Violation> find_violation_near(const ZoneData& z,
                                             const std::vector<ZoneDelta::Name>& touched);

}  // namespace berth::dns::zone_detail
