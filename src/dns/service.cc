// SPDX-License-Identifier: Apache-2.0
// dns::Service: hosted zones kept in the metadata store, published to the query path as one
// immutable Snapshot per change (copy the zone map, recompile only the names a batch touched,
// swap the pointer). The store keeps a row per zone and per record set, and a batch writes only
// the sets it changed. Writers are serialised by a mutex; the store's serial check keeps a
// second node from overwriting a change it did not see.
#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>

#include "common/json.h"
#include "common/log.h"
#include "dns/dns.h"
#include "dns/name.h"
#include "dns/peer.h"
#include "dns/zone.h"
#include "dns/zone_internal.h"
#include "store/store.h"

namespace berth::dns {

struct Service::State {
  std::map<std::string, std::shared_ptr<const Zone>> zones;  // by API name
  std::unordered_set<std::string> services;
  std::unordered_set<std::string> unhealthy;
};

namespace {

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

RecordSet make_set(std::string name, std::string type, uint32_t ttl) {
  RecordSet s;
  s.name = std::move(name);
  s.type = std::move(type);
  s.ttl = ttl;
  return s;
}

bool is_ipv6(const std::string& a) { return a.find(':') != std::string::npos; }

// "ns1.example.com" names for a zone: the configured ones, or ns1.<zone>.
std::vector<std::string> nameservers_for(const Settings& s, const std::string& zone) {
  if (!s.nameservers.empty()) {
    return s.nameservers;
  }
  return {"ns1." + zone};
}

bool within(const std::string& name, const std::string& zone) {
  return name == zone || (name.size() > zone.size() &&
                          name.compare(name.size() - zone.size(), zone.size(), zone) == 0 &&
                          name[name.size() - zone.size() - 1] == '.');
}

// Address sets for name servers inside `scope` (the zone's own, or glue in a parent).
std::vector<RecordSet> nameserver_addresses(const Settings& s, const std::string& zone,
                                            const std::string& scope) {
  std::vector<RecordSet> out;
  for (const auto& ns : nameservers_for(s, zone)) {
    if (!within(ns, scope)) {
      continue;
    }
    RecordSet a = make_set(ns, "A", 3600);
    RecordSet aaaa = make_set(ns, "AAAA", 3600);
    for (const auto& addr : s.nameserver_addresses) {
      (is_ipv6(addr) ? aaaa : a).values.push_back(addr);
    }
    for (auto* set : {&a, &aaaa}) {
      if (!set->values.empty()) {
        out.push_back(*set);
      }
    }
  }
  return out;
}

// The hosted zone directly above `name` (the deepest proper ancestor), or "".
std::string parent_zone(const std::map<std::string, std::shared_ptr<const Zone>>& zones,
                        const std::string& name) {
  for (auto pos = name.find('.'); pos != std::string::npos; pos = name.find('.', pos + 1)) {
    std::string candidate = name.substr(pos + 1);
    if (zones.count(candidate) != 0) {
      return candidate;
    }
  }
  return "";
}

// A serial for a new zone: YYYYMMDD01 like most operators use, so a re-created zone's serial
// still grows for secondaries that remember the old one.
uint32_t initial_serial() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return static_cast<uint32_t>((tm.tm_year + 1900) * 1000000 + (tm.tm_mon + 1) * 10000 +
                               tm.tm_mday * 100 + 1);
}

}  // namespace

Result<std::string> normalize_zone_name(std::string_view name) {
  if (name.empty() || name == ".") {
    return Error(Errc::InvalidArgument, "zone name is empty: give a domain like example.com");
  }
  auto wire = name_from_text(name);
  if (!wire) {
    return Error(Errc::InvalidArgument,
                 "zone name '" + std::string(name) + "': " + wire.error().message());
  }
  return name_to_api(name_lower(*wire));
}

namespace {

// JSON string escaping for the document writer (presentation forms are ASCII; other bytes
// pass through as they are, which JSON allows for UTF-8).
void append_json_string(std::string& out, std::string_view v) {
  out += '"';
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      static const char* hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

void append_field(std::string& out, const char* key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":";
  append_json_string(out, value);
}

// One record set as record_set_to_json would print it, written straight into the document:
// building a JSON DOM per set was most of a change's cost on a big zone.
void append_record_set(std::string& out, const RecordSet& s) {
  out += "{\"Name\":";
  append_json_string(out, s.name + ".");
  append_field(out, "Type", s.type);
  out += ",\"TTL\":" + std::to_string(s.ttl);
  if (!s.alias_service.empty()) {
    out += ",\"AliasTarget\":{\"Service\":";
    append_json_string(out, s.alias_service);
    out += '}';
  } else if (!s.alias_name.empty()) {
    out += ",\"AliasTarget\":{\"DNSName\":";
    append_json_string(out, s.alias_name + ".");
    out += '}';
  } else {
    out += ",\"ResourceRecords\":[";
    for (size_t i = 0; i < s.values.size(); ++i) {
      out += i == 0 ? "{\"Value\":" : ",{\"Value\":";
      append_json_string(out, s.values[i]);
      out += '}';
    }
    out += ']';
  }
  if (!s.set_identifier.empty()) {
    append_field(out, "SetIdentifier", s.set_identifier);
  }
  if (s.weight) {
    out += ",\"Weight\":" + std::to_string(*s.weight);
  }
  if (!s.failover.empty()) {
    append_field(out, "Failover", s.failover);
  }
  if (s.multivalue) {
    out += ",\"MultiValueAnswer\":true";
  }
  if (!s.health_check.empty()) {
    append_field(out, "HealthCheckId", s.health_check);
  }
  out += '}';
}

void append_string_list(std::string& out, const std::vector<std::string>& v) {
  out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    append_json_string(out, v[i]);
  }
  out += ']';
}

}  // namespace

std::string record_set_document(const RecordSet& s) {
  std::string out;
  out.reserve(96);
  append_record_set(out, s);
  return out;
}

namespace {

// The zone's row: its serial and settings; with_sets: every set too (a new zone).
store::DnsZoneRow zone_row(const ZoneData& z, bool with_sets) {
  int64_t now = now_unix();
  std::string doc = "{\"allow_transfer\":";
  append_string_list(doc, z.allow_transfer);
  doc += ",\"also_notify\":";
  append_string_list(doc, z.also_notify);
  doc += '}';
  store::DnsZoneRow row{z.name, z.serial, std::move(doc), now, now, {}};
  if (with_sets) {
    row.record_sets.reserve(z.sets.size());
    for (const auto& set : z.sets) {
      row.record_sets.push_back({set.name, set.type, set.set_identifier, record_set_document(set)});
    }
  }
  return row;
}

// An update of the zone's row that writes only what a batch changed.
store::DnsZoneWrite zone_update(const ZoneData& z, const ZoneDelta& delta, uint32_t old_serial) {
  store::DnsZoneWrite w{store::DnsZoneWrite::Op::Update, zone_row(z, false), old_serial, {}};
  w.row.record_sets.reserve(delta.put.size());
  for (const auto& set : delta.put) {
    w.row.record_sets.push_back({set.name, set.type, set.set_identifier, record_set_document(set)});
  }
  for (const auto& set : delta.removed) {
    w.removed_sets.push_back({set.name, set.type, set.set_identifier, ""});
  }
  return w;
}

Result<ZoneData> zone_from_row(const store::DnsZoneRow& row) {
  ZoneData z;
  z.name = row.name;
  z.serial = static_cast<uint32_t>(row.serial);
  auto fail = [&](const std::string& what) {
    return Error(Errc::DataLoss, "zone " + row.name + ": stored " + what);
  };
  auto j = parse_json(row.document, "zone document");
  if (!j || !j->is_object()) {
    return fail("document is not a JSON object");
  }
  try {
    z.allow_transfer = j->value("allow_transfer", std::vector<std::string>{});
    z.also_notify = j->value("also_notify", std::vector<std::string>{});
  } catch (const std::exception& e) {
    return fail(std::string("settings: ") + e.what());
  }
  z.sets.reserve(row.record_sets.size());
  for (const auto& r : row.record_sets) {
    auto sj = parse_json(r.document, "record set");
    if (!sj) {
      return fail("record set " + r.name + " " + r.type + ": " + sj.error().message());
    }
    auto set = record_set_from_json(*sj, row.name);
    if (!set) {
      return fail("record set " + r.name + " " + r.type + ": " + set.error().message());
    }
    z.sets.push_back(std::move(*set));
  }
  z.sets.sort();
  return z;
}

// The NS set at a name (empty when there is none).
RecordSet ns_at(const ZoneData& z, const std::string& at) {
  auto wire = name_from_text(at);
  if (!wire) {
    return {};
  }
  auto [first, last] = zone_detail::sets_at_name(z.sets, name_lower(*wire));
  for (size_t k = first; k < last; ++k) {
    if (z.sets[k].type == "NS") {
      return z.sets[k];
    }
  }
  return {};
}

}  // namespace

Service::Service(store::MetadataStore& store, Settings settings)
    : store_(store), settings_(std::move(settings)), state_(std::make_unique<State>()) {
  snapshot_ = std::make_shared<const Snapshot>();
}

Service::~Service() = default;

std::shared_ptr<const Snapshot> Service::snapshot() const { return std::atomic_load(&snapshot_); }

void Service::publish_locked() {
  auto snap = std::make_shared<Snapshot>();
  for (const auto& [name, zone] : state_->zones) {
    snap->zones.emplace(zone->apex(), zone);
  }
  snap->unhealthy_checks = state_->unhealthy;
  snap->services = state_->services;
  for (const auto& a : settings_.service_addresses) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, a.c_str(), buf) == 1) {
      snap->service_a.emplace_back(reinterpret_cast<char*>(buf), 4);
    } else if (inet_pton(AF_INET6, a.c_str(), buf) == 1) {
      snap->service_aaaa.emplace_back(reinterpret_cast<char*>(buf), 16);
    }
  }
  std::atomic_store(&snapshot_, std::shared_ptr<const Snapshot>(std::move(snap)));
}

Status Service::load() {
  BERTH_ASSIGN_OR_RETURN(auto rows, store_.list_dns_zones());
  std::lock_guard lock(mu_);
  state_->zones.clear();
  for (const auto& row : rows) {
    auto z = zone_from_row(row);
    auto compiled = z ? Zone::compile(*z) : Result<std::shared_ptr<const Zone>>(z.error());
    if (!compiled) {
      log::get("dns")->error("zone {} is not served: {}", row.name, compiled.error().message());
      continue;
    }
    state_->zones[row.name] = *compiled;
  }
  publish_locked();
  log::get("dns")->info("zones loaded count={}", state_->zones.size());
  return ok();
}

Result<ZoneData> Service::read_zone(std::string_view name) const {
  BERTH_ASSIGN_OR_RETURN(auto n, normalize_zone_name(name));
  std::lock_guard lock(mu_);
  auto it = state_->zones.find(n);
  if (it == state_->zones.end()) {
    return Error(Errc::NotFound, "zone " + n + " does not exist");
  }
  return it->second->data();
}

Result<std::vector<ZoneData>> Service::list_zones() const {
  std::lock_guard lock(mu_);
  std::vector<ZoneData> out;
  for (const auto& [name, zone] : state_->zones) {
    out.push_back(zone->data());
  }
  return out;
}

std::vector<std::string> Service::zone_names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, zone] : state_->zones) {
    out.push_back(name);
  }
  return out;
}

Result<ZoneData> Service::get_zone(std::string_view name) const { return read_zone(name); }

Result<ZoneData> Service::create_zone(std::string_view name_in) {
  BERTH_ASSIGN_OR_RETURN(auto name, normalize_zone_name(name_in));
  std::lock_guard lock(mu_);
  if (state_->zones.count(name) != 0) {
    return Error(Errc::AlreadyExists, "zone " + name + " already exists");
  }
  auto nameservers = nameservers_for(settings_, name);
  ZoneData z = new_zone(name, nameservers, initial_serial());
  for (auto& set : nameserver_addresses(settings_, name, name)) {
    z.sets.push_back(std::move(set));
  }
  BERTH_TRY(validate_zone(z));
  BERTH_ASSIGN_OR_RETURN(auto compiled, Zone::compile(z));
  std::vector<store::DnsZoneWrite> writes;
  writes.push_back({store::DnsZoneWrite::Op::Create, zone_row(z, true), 0, {}});

  // A sub-zone of a hosted zone: delegate it from the parent (NS, plus glue for name
  // servers inside the new zone), in the same transaction.
  std::string parent = parent_zone(state_->zones, name);
  std::shared_ptr<const Zone> parent_compiled;
  if (!parent.empty()) {
    const ZoneData& pz = state_->zones[parent]->data();
    std::vector<Change> changes;
    RecordSet ns = make_set(name, "NS", 172800);
    for (const auto& n : nameservers) {
      ns.values.push_back(n + ".");
    }
    changes.push_back({Change::Action::Upsert, ns});
    for (auto& glue : nameserver_addresses(settings_, name, name)) {
      changes.push_back({Change::Action::Upsert, std::move(glue)});
    }
    ZoneDelta delta;
    auto updated = apply_changes_to_valid(pz, changes, delta);
    if (!updated) {
      return Error(updated.error().code(), "delegate " + name + " from parent zone " + parent +
                                               ": " + updated.error().message());
    }
    writes.push_back(zone_update(*updated, delta, pz.serial));
    BERTH_ASSIGN_OR_RETURN(
        parent_compiled, Zone::compile_changed(*state_->zones[parent], std::move(*updated), delta));
  }
  BERTH_TRY(store_.write_dns_zones(writes));
  state_->zones[name] = compiled;
  if (parent_compiled) {
    state_->zones[parent] = parent_compiled;
  }
  publish_locked();
  if (on_change_ && parent_compiled) {
    on_change_(parent_compiled->data());
  }
  log::get("dns")->info("zone created name={} parent={}", name, parent.empty() ? "-" : parent);
  return z;
}

Status Service::delete_zone(std::string_view name_in) {
  BERTH_ASSIGN_OR_RETURN(auto name, normalize_zone_name(name_in));
  std::lock_guard lock(mu_);
  auto it = state_->zones.find(name);
  if (it == state_->zones.end()) {
    return Error(Errc::NotFound, "zone " + name + " does not exist");
  }
  std::vector<store::DnsZoneWrite> writes;
  writes.push_back(
      {store::DnsZoneWrite::Op::Remove, store::DnsZoneRow{name, 0, "", 0, 0, {}}, 0, {}});
  // Remove exactly the delegation create_zone added: the NS set at the cut and glue below it.
  std::string parent = parent_zone(state_->zones, name);
  std::shared_ptr<const Zone> parent_compiled;
  if (!parent.empty()) {
    const ZoneData& pz = state_->zones[parent]->data();
    std::vector<Change> changes;
    for (const auto& set : pz.sets) {
      if (within(set.name, name) && (set.type == "NS" || set.type == "A" || set.type == "AAAA")) {
        changes.push_back({Change::Action::Delete, set});
      }
    }
    if (!changes.empty()) {
      ZoneDelta delta;
      BERTH_ASSIGN_OR_RETURN(auto updated, apply_changes_to_valid(pz, changes, delta));
      writes.push_back(zone_update(updated, delta, pz.serial));
      BERTH_ASSIGN_OR_RETURN(parent_compiled, Zone::compile_changed(*state_->zones[parent],
                                                                    std::move(updated), delta));
    }
  }
  BERTH_TRY(store_.write_dns_zones(writes));
  state_->zones.erase(name);
  if (parent_compiled) {
    state_->zones[parent] = parent_compiled;
  }
  publish_locked();
  if (on_change_ && parent_compiled) {
    on_change_(parent_compiled->data());
  }
  log::get("dns")->info("zone deleted name={}", name);
  return ok();
}

Result<std::shared_ptr<const ZoneData>> Service::change(std::string_view zone_in,
                                                        const std::vector<Change>& changes) {
  BERTH_ASSIGN_OR_RETURN(auto name, normalize_zone_name(zone_in));
  std::lock_guard lock(mu_);
  auto it = state_->zones.find(name);
  if (it == state_->zones.end()) {
    return Error(Errc::NotFound, "zone " + name + " does not exist");
  }
  const Zone& old_zone = *it->second;
  const ZoneData& old = old_zone.data();
  auto t0 = std::chrono::steady_clock::now();
  ZoneDelta delta;
  BERTH_ASSIGN_OR_RETURN(auto updated, apply_changes_to_valid(old, changes, delta));
  auto t1 = std::chrono::steady_clock::now();
  // The delegation to a zone berth hosts itself is berth's (zone create and rm keep it): a
  // batch may not change the NS set at another hosted zone's apex (re-stating it is fine, so
  // an exported zone file imports back).
  for (const auto& [other, zone] : state_->zones) {
    if (other != name && within(other, name) && !(ns_at(old, other) == ns_at(updated, other))) {
      return Error(Errc::InvalidArgument,
                   other + " NS: the delegation to zone " + other +
                       ", which berth hosts, is managed by `berth dns zone create/rm`");
    }
  }
  if (updated.sets.size() > settings_.max_record_sets) {
    return Error(Errc::ResourceExhausted, "zone " + name + " would hold " +
                                              std::to_string(updated.sets.size()) +
                                              " record sets; dns.max_record_sets_per_zone is " +
                                              std::to_string(settings_.max_record_sets));
  }
  // The store's rows first (the sets the batch wrote or removed, and the serial), then the
  // compiled zone, which takes the data over.
  auto write = zone_update(updated, delta, old.serial);
  auto t2 = std::chrono::steady_clock::now();
  BERTH_ASSIGN_OR_RETURN(auto compiled, Zone::compile_changed(old_zone, std::move(updated), delta));
  auto t3 = std::chrono::steady_clock::now();
  BERTH_TRY(store_.write_dns_zones({std::move(write)}));
  auto t4 = std::chrono::steady_clock::now();
  it->second = compiled;
  publish_locked();
  const ZoneData& now = compiled->data();
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  log::get("dns")->info(
      "zone changed name={} serial={} changes={} record_sets={} ms={:.1f} (apply={:.1f} "
      "rows={:.1f} compile={:.1f} store={:.1f}) sets_written={} sets_removed={}",
      name, now.serial, changes.size(), now.sets.size(), ms(t0, t4), ms(t0, t1), ms(t1, t2),
      ms(t2, t3), ms(t3, t4), delta.put.size(), delta.removed.size());
  if (on_change_) {
    on_change_(now);
  }
  return std::shared_ptr<const ZoneData>(compiled, &now);
}

Result<std::string> Service::export_zone(std::string_view zone) const {
  BERTH_ASSIGN_OR_RETURN(auto z, read_zone(zone));
  return export_zone_file(z);
}

Result<std::shared_ptr<const ZoneData>> Service::import_zone(std::string_view zone_in,
                                                             std::string_view text, bool replace) {
  BERTH_ASSIGN_OR_RETURN(auto name, normalize_zone_name(zone_in));
  BERTH_ASSIGN_OR_RETURN(auto file, parse_zone_file(text, name));
  BERTH_ASSIGN_OR_RETURN(auto current, read_zone(name));
  std::vector<Change> changes;
  if (replace) {
    // Delete what the file does not have, upsert what it has: one batch, so validation sees
    // the final zone and nothing changes on an error.
    for (const auto& set : current.sets) {
      bool kept = std::any_of(file.sets.begin(), file.sets.end(), [&](const RecordSet& f) {
        return f.name == set.name && f.type == set.type && f.set_identifier == set.set_identifier;
      });
      if (!kept) {
        changes.push_back({Change::Action::Delete, set});
      }
    }
  }
  for (const auto& set : file.sets) {
    if (set.type == "SOA" && !replace) {
      continue;
    }
    changes.push_back({Change::Action::Upsert, set});
  }
  return change(name, changes);
}

Result<ZoneData> Service::set_transfer(std::string_view zone_in,
                                       std::vector<std::string> allow_transfer,
                                       std::vector<std::string> also_notify) {
  BERTH_ASSIGN_OR_RETURN(auto name, normalize_zone_name(zone_in));
  for (const auto* list : {&allow_transfer, &also_notify}) {
    for (const auto& entry : *list) {
      if (!parse_peer(entry)) {
        return Error(Errc::InvalidArgument,
                     std::string(list == &allow_transfer ? "allow_transfer" : "also_notify") +
                         ": '" + entry + "' is not ADDR, ADDR:PORT or [IPv6]:PORT");
      }
    }
  }
  std::unique_lock lock(mu_);
  auto it = state_->zones.find(name);
  if (it == state_->zones.end()) {
    return Error(Errc::NotFound, "zone " + name + " does not exist");
  }
  ZoneData z = it->second->data();
  uint32_t old_serial = z.serial;
  z.allow_transfer = std::move(allow_transfer);
  z.also_notify = std::move(also_notify);
  // Settings only: no set changes, so every node is shared.
  BERTH_TRY(store_.write_dns_zones({zone_update(z, ZoneDelta{}, old_serial)}));
  BERTH_ASSIGN_OR_RETURN(auto compiled, Zone::compile_changed(*it->second, z, ZoneDelta{}));
  it->second = compiled;
  publish_locked();
  return z;
}

void Service::set_on_change(std::function<void(const ZoneData&)> fn) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(fn);
}

void Service::set_services(std::vector<std::string> names) {
  std::lock_guard lock(mu_);
  std::unordered_set<std::string> next(names.begin(), names.end());
  if (next == state_->services) {
    return;
  }
  state_->services = std::move(next);
  publish_locked();
}

void Service::set_unhealthy(std::vector<std::string> check_ids) {
  std::lock_guard lock(mu_);
  std::unordered_set<std::string> next(check_ids.begin(), check_ids.end());
  if (next == state_->unhealthy) {
    return;
  }
  state_->unhealthy = std::move(next);
  publish_locked();
}

}  // namespace berth::dns
