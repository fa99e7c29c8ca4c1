// SPDX-License-Identifier: Apache-2.0
// Record sets and change batches as JSON, in Route 53's field names. Input is normalised
// here (names lower-case and absolute, values re-printed from their wire form) so that the
// store and the zone rules only ever see one spelling of a set.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/json.h"
#include "dns/dns.h"
#include "dns/name.h"
#include "dns/rdata.h"

namespace berth::dns {

namespace {

constexpr uint32_t kMaxTtl = 2147483647;
constexpr size_t kMaxChanges = 1000;  // Route 53's limit per batch
constexpr size_t kMaxValues = 400;

Error field_error(std::string_view field, const std::string& what) {
  return make_error(Errc::InvalidArgument, fmt::format("{}: {}", field, what));
}

/// A name as the API writes it ("www.example.com" or "www.example.com.") → the normalised
/// wire form (lower-case). Relative names do not exist here: every name is absolute.
Result<std::string> api_name_to_wire(std::string_view text) {
  if (text.empty() || text == ".") {
    return make_error(Errc::InvalidArgument, "empty name");
  }
  BERTH_ASSIGN_OR_RETURN(std::string wire, name_from_text(text));
  return name_lower(wire);
}

Result<std::string> string_field(const Json& j, const char* field) {
  if (!j.is_string()) {
    return field_error(field, "must be a string");
  }
  return j.get<std::string>();
}

bool service_ok(std::string_view s) {
  return !s.empty() && s.size() <= kMaxLabelBytes && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
  });
}

Result<std::string> normalise_value(uint16_t t, const std::string& v) {
  auto wire = rdata_from_text(t, v);  // no origin: names in values are absolute
  if (!wire) {
    std::string msg = wire.error().message();
    if (t == type::TXT && msg.find("over 255 bytes") != std::string::npos) {
      return make_error(Errc::InvalidArgument,
                        fmt::format("{:.60}: TXT string over 255 bytes; split it into several "
                                    "quoted strings",
                                    v));
    }
    return make_error(Errc::InvalidArgument, msg);
  }
  return rdata_to_text(t, *wire);
}

const char* const kKnownFields[] = {
    "Name",          "Type",   "TTL",      "ResourceRecords",  "AliasTarget",
    "SetIdentifier", "Weight", "Failover", "MultiValueAnswer", "HealthCheckId"};

}  // namespace

Json record_set_to_json(const RecordSet& s) {
  Json j = Json::object();
  j["Name"] = s.name + ".";
  j["Type"] = s.type;
  j["TTL"] = s.ttl;
  if (!s.alias_service.empty()) {
    j["AliasTarget"] = {{"Service", s.alias_service}};
  } else if (!s.alias_name.empty()) {
    j["AliasTarget"] = {{"DNSName", s.alias_name + "."}};
  } else {
    Json rrs = Json::array();
    for (const auto& v : s.values) {
      rrs.push_back({{"Value", v}});
    }
    j["ResourceRecords"] = std::move(rrs);
  }
  if (!s.set_identifier.empty()) {
    j["SetIdentifier"] = s.set_identifier;
  }
  if (s.weight) {
    j["Weight"] = *s.weight;
  }
  if (!s.failover.empty()) {
    j["Failover"] = s.failover;
  }
  if (s.multivalue) {
    j["MultiValueAnswer"] = true;
  }
  if (!s.health_check.empty()) {
    j["HealthCheckId"] = s.health_check;
  }
  return j;
}

Result<RecordSet> record_set_from_json(const Json& j, std::string_view zone) {
  if (!j.is_object()) {
    return make_error(Errc::InvalidArgument, "a record set must be an object");
  }
  for (const auto& [key, value] : j.items()) {
    if (std::find(std::begin(kKnownFields), std::end(kKnownFields), key) ==
        std::end(kKnownFields)) {
      return field_error(key, "unknown field");
    }
  }
  auto zone_wire = api_name_to_wire(zone);
  if (!zone_wire) {
    return make_error(Errc::InvalidArgument, "bad zone name: " + zone_wire.error().message());
  }
  RecordSet s;
  // Name
  auto name_it = j.find("Name");
  if (name_it == j.end()) {
    return field_error("Name", "required");
  }
  BERTH_ASSIGN_OR_RETURN(std::string name_text, string_field(*name_it, "Name"));
  auto wire = api_name_to_wire(name_text);
  if (!wire) {
    return field_error("Name", wire.error().message());
  }
  if (!name_is_within(*wire, *zone_wire)) {
    return field_error(
        "Name", fmt::format("{} is not within the zone {}", name_text, name_to_api(*zone_wire)));
  }
  s.name = name_to_api(*wire);
  // Type
  auto type_it = j.find("Type");
  if (type_it == j.end()) {
    return field_error("Type", "required");
  }
  BERTH_ASSIGN_OR_RETURN(std::string type_text, string_field(*type_it, "Type"));
  auto t = type_from_text(type_text);
  if (!t || !type_supported(*t)) {
    return field_error("Type", fmt::format("unsupported record type {}", type_text));
  }
  s.type = type_to_text(*t);
  // TTL
  if (auto it = j.find("TTL"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > kMaxTtl) {
      return field_error("TTL", "must be an integer from 0 to 2147483647");
    }
    s.ttl = static_cast<uint32_t>(it->get<int64_t>());
  }
  // ResourceRecords / AliasTarget
  auto rrs = j.find("ResourceRecords");
  auto alias = j.find("AliasTarget");
  if (*t == type::ALIAS) {
    if (rrs != j.end() && !(rrs->is_array() && rrs->empty())) {
      return field_error("ResourceRecords", "an ALIAS has an AliasTarget, not values");
    }
    if (alias == j.end() || !alias->is_object()) {
      return field_error("AliasTarget",
                         "required for an ALIAS: {\"Service\":...} or "
                         "{\"DNSName\":...}");
    }
    auto svc = alias->find("Service");
    auto dns = alias->find("DNSName");
    if ((svc == alias->end()) == (dns == alias->end())) {
      return field_error("AliasTarget", "exactly one of Service and DNSName");
    }
    for (const auto& [key, value] : alias->items()) {
      if (key != "Service" && key != "DNSName" && key != "HostedZoneId" &&
          key != "EvaluateTargetHealth") {
        return field_error("AliasTarget." + key, "unknown field");
      }
    }
    if (svc != alias->end()) {
      BERTH_ASSIGN_OR_RETURN(std::string service, string_field(*svc, "AliasTarget.Service"));
      std::transform(service.begin(), service.end(), service.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!service_ok(service)) {
        return field_error("AliasTarget.Service",
                           "a service name is 1-63 letters, digits, '-' or '_'");
      }
      s.alias_service = std::move(service);
    } else {
      BERTH_ASSIGN_OR_RETURN(std::string target, string_field(*dns, "AliasTarget.DNSName"));
      auto tw = api_name_to_wire(target);
      if (!tw) {
        return field_error("AliasTarget.DNSName", tw.error().message());
      }
      s.alias_name = name_to_api(*tw);
    }
  } else {
    if (alias != j.end()) {
      return field_error("AliasTarget", "only a set of Type ALIAS has an AliasTarget");
    }
    if (rrs == j.end() || !rrs->is_array() || rrs->empty()) {
      return field_error("ResourceRecords", "a non-empty list of {\"Value\":...} is required");
    }
    if (rrs->size() > kMaxValues) {
      return field_error("ResourceRecords", "at most 400 values");
    }
    for (size_t i = 0; i < rrs->size(); ++i) {
      std::string where = fmt::format("ResourceRecords[{}].Value", i);
      const Json& rr = (*rrs)[i];
      auto v = rr.is_object() ? rr.find("Value") : rr.end();
      if (!rr.is_object() || v == rr.end() || !v->is_string() || rr.size() != 1) {
        return field_error(where, "each record is {\"Value\": \"...\"}");
      }
      auto norm = normalise_value(*t, v->get<std::string>());
      if (!norm) {
        return field_error(where, norm.error().message());
      }
      s.values.push_back(std::move(*norm));
    }
  }
  // Routing policy
  if (auto it = j.find("SetIdentifier"); it != j.end()) {
    BERTH_ASSIGN_OR_RETURN(s.set_identifier, string_field(*it, "SetIdentifier"));
    if (s.set_identifier.empty() || s.set_identifier.size() > 128) {
      return field_error("SetIdentifier", "1 to 128 characters");
    }
  }
  if (auto it = j.find("Weight"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 255) {
      return field_error("Weight", "must be an integer from 0 to 255");
    }
    s.weight = static_cast<uint32_t>(it->get<int64_t>());
  }
  if (auto it = j.find("Failover"); it != j.end()) {
    BERTH_ASSIGN_OR_RETURN(s.failover, string_field(*it, "Failover"));
    if (s.failover != "PRIMARY" && s.failover != "SECONDARY") {
      return field_error("Failover", "PRIMARY or SECONDARY");
    }
  }
  if (auto it = j.find("MultiValueAnswer"); it != j.end()) {
    if (!it->is_boolean()) {
      return field_error("MultiValueAnswer", "must be true or false");
    }
    s.multivalue = it->get<bool>();
  }
  if (auto it = j.find("HealthCheckId"); it != j.end()) {
    BERTH_ASSIGN_OR_RETURN(s.health_check, string_field(*it, "HealthCheckId"));
    if (s.health_check.empty()) {
      return field_error("HealthCheckId", "must not be empty");
    }
  }
  int policies = (s.weight ? 1 : 0) + (s.failover.empty() ? 0 : 1) + (s.multivalue ? 1 : 0);
  if (policies > 1) {
    return field_error("Weight", "at most one of Weight, Failover and MultiValueAnswer");
  }
  if (policies == 1 && s.set_identifier.empty()) {
    return field_error("SetIdentifier", "required with a routing policy");
  }
  if (policies == 0 && !s.set_identifier.empty()) {
    return field_error("SetIdentifier", "needs Weight, Failover or MultiValueAnswer");
  }
  return s;
}

Result<std::vector<Change>> parse_change_batch(std::string_view json, std::string_view zone) {
  BERTH_ASSIGN_OR_RETURN(Json doc, parse_json(json, "change batch"));
  if (!doc.is_object()) {
    return make_error(Errc::InvalidArgument, "a change batch must be an object");
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "Comment" && key != "Changes") {
      return field_error(key, "unknown field");
    }
  }
  if (auto c = doc.find("Comment"); c != doc.end() && !c->is_string()) {
    return field_error("Comment", "must be a string");
  }
  auto changes = doc.find("Changes");
  if (changes == doc.end() || !changes->is_array() || changes->empty()) {
    return field_error("Changes", "a non-empty list of changes is required");
  }
  if (changes->size() > kMaxChanges) {
    return field_error("Changes", "at most 1000 changes per batch");
  }
  std::vector<Change> out;
  out.reserve(changes->size());
  for (size_t i = 0; i < changes->size(); ++i) {
    const Json& c = (*changes)[i];
    std::string where = fmt::format("Changes[{}]", i);
    if (!c.is_object()) {
      return field_error(where, "must be an object");
    }
    for (const auto& [key, value] : c.items()) {
      if (key != "Action" && key != "ResourceRecordSet") {
        return field_error(where + "." + key, "unknown field");
      }
    }
    Change change;
    auto action = c.find("Action");
    std::string a = action != c.end() && action->is_string() ? action->get<std::string>() : "";
    if (a == "CREATE") {
      change.action = Change::Action::Create;
    } else if (a == "UPSERT") {
      change.action = Change::Action::Upsert;
    } else if (a == "DELETE") {
      change.action = Change::Action::Delete;
    } else {
      return field_error(where + ".Action", "must be CREATE, UPSERT or DELETE");
    }
    auto rrset = c.find("ResourceRecordSet");
    if (rrset == c.end()) {
      return field_error(where + ".ResourceRecordSet", "required");
    }
    auto set = record_set_from_json(*rrset, zone);
    if (!set) {
      // "Changes[3].ResourceRecordSet.TTL: ..." when the error names a field.
      const std::string& msg = set.error().message();
      size_t colon = msg.find(": ");
      bool field = colon != std::string::npos && colon > 0 &&
                   std::isupper(static_cast<unsigned char>(msg[0])) != 0 &&
                   msg.substr(0, colon).find(' ') == std::string::npos;
      return make_error(Errc::InvalidArgument,
                        where + ".ResourceRecordSet" + (field ? "." : ": ") + msg);
    }
    change.set = std::move(*set);
    out.push_back(std::move(change));
  }
  return out;
}

}  // namespace berth::dns
