// SPDX-License-Identifier: Apache-2.0
// berth's authoritative DNS (docs/dns.md): hosted zones with record sets in Route 53's shape,
// change batches applied all or nothing, BIND zone files in and out, and the server that
// answers from an immutable snapshot swapped on every change. The public API of src/dns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace berth::dns {

/// One record set: a name, a type and its values, as the API, the store and zone files see
/// it. Several sets may share name and type when each has a set_identifier (routing policies).
struct RecordSet {
  std::string name;  // absolute, lower-case, no trailing dot: "www.example.com"
  std::string type;  // upper-case mnemonic: "A", "AAAA", "CNAME", ..., "ALIAS"
  uint32_t ttl = 300;
  /// Presentation rdata, one per record, as dig prints it: names absolute with the trailing
  /// dot ("10 mail.example.com."), TXT as quoted strings ("\"v=spf1 -all\"").
  std::vector<std::string> values;
  // ALIAS only: exactly one target.
  std::string alias_service;  // a berth service: answered with the router's addresses
  std::string alias_name;     // another name in a zone berth hosts: its A/AAAA, flattened
  // Routing policy (Route 53's): at most one of weight / failover / multivalue, with an id.
  std::string set_identifier;
  std::optional<uint32_t> weight;  // weighted: 0..255
  std::string failover;            // "PRIMARY" or "SECONDARY"
  bool multivalue = false;         // up to 8 healthy values, one per set
  std::string health_check;        // id of a health check; unhealthy sets are left out

  bool operator==(const RecordSet&) const = default;
};

/// A zone as stored: its name, serial and record sets (SOA and apex NS included).
struct ZoneData {
  std::string name;  // "example.com"
  uint32_t serial = 1;
  std::vector<RecordSet> sets;  // sorted by (name in canonical order, type, set_identifier)
  /// Secondaries allowed to AXFR/IXFR, and sent NOTIFY on change ("127.0.0.1:53530").
  std::vector<std::string> allow_transfer;
  std::vector<std::string> also_notify;

  bool operator==(const ZoneData&) const = default;
};

/// One change of a batch (Route 53's ChangeResourceRecordSets): CREATE fails when the set
/// exists, DELETE when it does not match exactly (values and TTL), UPSERT replaces.
struct Change {
  enum class Action { Create, Upsert, Delete } action = Action::Upsert;
  RecordSet set;
};

// ---- JSON (Route 53's field names) ----------------------------------------------------------
/// {"Name":"www.example.com.","Type":"A","TTL":60,"ResourceRecords":[{"Value":"127.0.0.2"}],
///  "AliasTarget":{"Service":"web"}|{"DNSName":"x.example.com."},"SetIdentifier":...,
///  "Weight":..,"Failover":..,"MultiValueAnswer":..,"HealthCheckId":..}
nlohmann::json record_set_to_json(const RecordSet& s);
/// Parses and normalises one set (names lower-cased and made absolute against `zone`,
/// values re-printed in canonical presentation form). InvalidArgument naming the field.
Result<RecordSet> record_set_from_json(const nlohmann::json& j, std::string_view zone);
/// {"Comment":..., "Changes":[{"Action":"CREATE|UPSERT|DELETE","ResourceRecordSet":{...}}]}.
/// Errors name the change by index ("Changes[3].ResourceRecordSet.TTL: ...").
Result<std::vector<Change>> parse_change_batch(std::string_view json, std::string_view zone);

// ---- Zone rules (zone.cc) -------------------------------------------------------------------
/// Every rule a zone must keep: names inside the zone and ≤ 127 labels/255 bytes, TTL in
/// [0, 2147483647], values parse for their type, one SOA and ≥ 1 NS at the apex, no CNAME
/// beside other data at a name, no CNAME/ALIAS at the apex except ALIAS, no data below a
/// delegation other than glue, routing-policy sets consistent (same type, unique ids, one
/// policy kind per name/type). InvalidArgument naming the record and the rule.
Status validate_zone(const ZoneData& z);
/// Applies a batch all or nothing: the result is validated; on any error nothing changes and
/// the error names the change by index. The serial is bumped (and the SOA's with it).
Result<ZoneData> apply_changes(const ZoneData& z, const std::vector<Change>& changes);
/// A new zone's data: SOA (mname = first name server, rname hostmaster.<zone>) and NS set.
ZoneData new_zone(std::string_view name, const std::vector<std::string>& nameservers,
                  uint32_t serial);

// ---- Zone files (zonefile.cc) ---------------------------------------------------------------
/// Parses a BIND master file ($ORIGIN, $TTL, $INCLUDE refused, relative names, @, blank owner
/// = previous owner, parentheses, comments, quoted strings and escapes, class IN optional,
/// TTL units like 1h30m). Records are grouped into sets by name and type. berth's own ALIAS
/// records are read as "name ttl IN ALIAS target." and "name ttl IN ALIAS service:web".
/// Errors: "line N: ..." and nothing is returned.
Result<ZoneData> parse_zone_file(std::string_view text, std::string_view zone);
/// Writes the zone as a master file: $ORIGIN, SOA first, then sets in canonical order, names
/// relative to the origin. export → import → export is identical.
std::string export_zone_file(const ZoneData& z);

}  // namespace berth::dns
