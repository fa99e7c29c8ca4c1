// SPDX-License-Identifier: Apache-2.0
// `berth dns zone|record|change`: the hosted zones over /api/v1/dns. Record commands build a
// one-change batch (the API has one way to change records: change batches).
#include "cli/dns.h"

#include <cstdio>

#include "cli/dns_health.h"
#include "cli/dns_tsig.h"
#include "cli/table.h"
#include "cli/util.h"
#include "common/fs.h"
#include "common/url.h"

namespace berth::cli {

struct DnsCommands {
  CLI::App *zone_create = nullptr, *zone_ls = nullptr, *zone_show = nullptr, *zone_rm = nullptr;
  CLI::App *zone_export = nullptr, *zone_import = nullptr, *zone_update = nullptr;
  std::vector<std::string> allow_transfer, also_notify;
  bool no_transfer = false;
  CLI::App *record_ls = nullptr, *record_upsert = nullptr, *record_delete = nullptr;
  CLI::App* change = nullptr;

  bool json = false;
  std::string zone;
  std::string file;
  bool replace = false;
  // record
  std::string name, type, alias_service, alias_name, set_id, failover, health_check;
  std::vector<std::string> values;
  int64_t ttl = 300;
  int64_t weight = -1;
  bool multivalue = false;
  CLI::Option* ttl_opt = nullptr;
  std::shared_ptr<DnsHealthCommands> health;  // dns healthcheck (dns_health.cc)
  std::shared_ptr<DnsTsigCommands> tsig;      // dns tsig (dns_tsig.cc)
};

namespace {

const std::string kZones = "/api/v1/dns/zones";

std::string zone_path(const std::string& zone) { return kZones + "/" + url::encode(zone); }

// "www" → "www.example.com", "@" → "example.com", a full name stays (a trailing dot dropped).
std::string full_name(std::string name, const std::string& zone) {
  if (name.empty() || name == "@") {
    return zone;
  }
  if (name.back() == '.') {
    name.pop_back();
    return name;
  }
  if (name == zone ||
      (name.size() > zone.size() + 1 &&
       name.compare(name.size() - zone.size() - 1, zone.size() + 1, "." + zone) == 0)) {
    return name;
  }
  return name + "." + zone;
}

Json record_set(const DnsCommands& s) {
  Json rs = Json::object();
  rs["Name"] = full_name(s.name, s.zone);
  rs["Type"] = s.type;
  rs["TTL"] = s.ttl;
  if (!s.alias_service.empty()) {
    rs["AliasTarget"] = Json{{"Service", s.alias_service}};
  } else if (!s.alias_name.empty()) {
    rs["AliasTarget"] = Json{{"DNSName", full_name(s.alias_name, s.zone)}};
  } else {
    Json vals = Json::array();
    for (const auto& v : s.values) {
      vals.push_back(Json{{"Value", v}});
    }
    rs["ResourceRecords"] = vals;
  }
  if (!s.set_id.empty()) {
    rs["SetIdentifier"] = s.set_id;
  }
  if (s.weight >= 0) {
    rs["Weight"] = s.weight;
  }
  if (!s.failover.empty()) {
    rs["Failover"] = s.failover;
  }
  if (s.multivalue) {
    rs["MultiValueAnswer"] = true;
  }
  if (!s.health_check.empty()) {
    rs["HealthCheckId"] = s.health_check;
  }
  return rs;
}

std::string values_cell(const Json& rs) {
  if (rs.contains("AliasTarget")) {
    const auto& a = rs["AliasTarget"];
    return a.contains("Service") ? "ALIAS → service " + str(a, "Service")
                                 : "ALIAS → " + str(a, "DNSName");
  }
  std::string out;
  for (const auto& v : rs.value("ResourceRecords", Json::array())) {
    out += (out.empty() ? "" : ", ") + str(v, "Value");
  }
  return out;
}

std::string policy_cell(const Json& rs) {
  std::string id = str(rs, "SetIdentifier");
  if (id.empty()) {
    return "-";
  }
  if (rs.contains("Weight")) {
    return id + " weight=" + std::to_string(num(rs, "Weight"));
  }
  if (rs.contains("Failover")) {
    return id + " " + str(rs, "Failover");
  }
  return id + (rs.value("MultiValueAnswer", false) ? " multivalue" : "");
}

// The zone berth hosts that holds name's delegation (the longest proper suffix), or "".
std::string hosted_parent(const api::Client& client, const std::string& name) {
  auto zones = client.call("GET", kZones);
  std::string best;
  if (!zones) {
    return best;
  }
  for (const auto& z : zones->value("zones", Json::array())) {
    std::string n = str(z, "name");
    if (n.size() > best.size() && name.size() > n.size() + 1 && name.ends_with("." + n)) {
      best = n;
    }
  }
  return best;
}

int print_zone(const Json& z, bool json, const api::Client& client) {
  if (json) {
    return print_json(z);
  }
  std::printf("zone %s serial %lld, %lld record sets\n", str(z, "name").c_str(),
              static_cast<long long>(num(z, "serial")),
              static_cast<long long>(num(z, "record_set_count")));
  if (std::string parent = hosted_parent(client, str(z, "name")); !parent.empty()) {
    std::printf("name servers (delegated from %s, which berth hosts: nothing to set elsewhere):\n",
                parent.c_str());
  } else {
    std::printf("name servers (set these at your registrar):\n");
  }
  for (const auto& ns : z.value("nameservers", Json::array())) {
    std::printf("  %s\n", ns.get<std::string>().c_str());
  }
  return 0;
}

int list_records(const DnsCommands& s, const api::Client& client) {
  std::string q;
  if (!s.name.empty()) {
    q += "name=" + url::encode(full_name(s.name, s.zone));
  }
  if (!s.type.empty()) {
    q += std::string(q.empty() ? "" : "&") + "type=" + url::encode(s.type);
  }
  auto r = client.call("GET", zone_path(s.zone) + "/records" + (q.empty() ? "" : "?" + q));
  return print_list(r, "record_sets", s.json,
                    {field("NAME", "Name"),
                     field("TYPE", "Type"),
                     {"TTL", [](const Json& x) { return std::to_string(num(x, "TTL")); }},
                     {"VALUES", values_cell},
                     {"POLICY", policy_cell}});
}

int post_batch(const DnsCommands& s, const api::Client& client, const Json& batch) {
  auto r = client.call("POST", zone_path(s.zone) + "/changes", batch);
  if (!r) {
    return fail(r.error());
  }
  if (s.json) {
    return print_json(*r);
  }
  std::printf("zone %s: %lld change(s) applied, serial %lld\n", str(*r, "name").c_str(),
              static_cast<long long>(num(*r, "changes")),
              static_cast<long long>(num(*r, "serial")));
  return 0;
}

}  // namespace

std::shared_ptr<DnsCommands> add_dns_commands(CLI::App& app) {
  auto s = std::make_shared<DnsCommands>();
  auto* dns = app.add_subcommand("dns", "hosted DNS zones and records (docs/dns.md)");
  dns->require_subcommand(1);
  auto* zone = dns->add_subcommand("zone", "create, list, show, delete, export, import zones");
  zone->require_subcommand(1);
  auto zone_arg = [&](CLI::App* c) { c->add_option("zone", s->zone, "zone name")->required(); };

  s->zone_create = zone->add_subcommand("create",
                                        "create a zone (a sub-zone of a hosted zone "
                                        "is delegated from it)");
  zone_arg(s->zone_create);
  add_json_flag(s->zone_create, s->json);
  s->zone_ls = zone->add_subcommand("ls", "list zones");
  add_json_flag(s->zone_ls, s->json);
  s->zone_show = zone->add_subcommand("show", "show a zone and its name servers");
  zone_arg(s->zone_show);
  add_json_flag(s->zone_show, s->json);
  s->zone_rm = zone->add_subcommand("rm", "delete a zone (and its delegation in a parent)");
  zone_arg(s->zone_rm);
  add_json_flag(s->zone_rm, s->json);
  s->zone_update = zone->add_subcommand(
      "update", "set the secondaries that may transfer the zone and get NOTIFY on change");
  zone_arg(s->zone_update);
  add_repeatable(s->zone_update, "--allow-transfer", s->allow_transfer, "ADDR",
                 "an address allowed to AXFR the zone (repeat for several)");
  add_repeatable(s->zone_update, "--also-notify", s->also_notify, "ADDR[:PORT]",
                 "a secondary sent NOTIFY on every change (repeat for several)");
  s->zone_update->add_flag("--no-transfer", s->no_transfer,
                           "clear both lists: no transfers, no NOTIFY");
  add_json_flag(s->zone_update, s->json);
  s->zone_export = zone->add_subcommand("export", "print the zone as a BIND zone file");
  zone_arg(s->zone_export);
  add_json_flag(s->zone_export, s->json, "print {\"zone\", \"zone_file\"} instead of the file");
  s->zone_import = zone->add_subcommand("import", "load a BIND zone file (all or nothing)");
  zone_arg(s->zone_import);
  s->zone_import->add_option("--file", s->file, "zone file ('-' = stdin)")->required();
  s->zone_import->add_flag("--replace", s->replace,
                           "make the zone exactly the file (else upsert the file's sets)");
  add_json_flag(s->zone_import, s->json);

  auto* record = dns->add_subcommand("record", "list, upsert and delete record sets");
  record->require_subcommand(1);
  s->record_ls = record->add_subcommand("ls", "list a zone's record sets");
  zone_arg(s->record_ls);
  s->record_ls->add_option("--name", s->name, "only this name (relative, @, or full)");
  s->record_ls->add_option("--type", s->type, "only this type (A, AAAA, MX, ...)");
  add_json_flag(s->record_ls, s->json);

  s->record_upsert = record->add_subcommand("upsert", "create or replace a record set");
  zone_arg(s->record_upsert);
  s->record_upsert->add_option("--name", s->name, "record name (relative, @, or full)")->required();
  s->record_upsert
      ->add_option("--type", s->type,
                   "A, AAAA, CNAME, MX, TXT, SRV, CAA, PTR, NS, "
                   "ALIAS")
      ->required();
  add_repeatable(s->record_upsert, "--value", s->values, "VALUE",
                 "a record's value, as in a zone file (repeat for several)");
  s->ttl_opt = s->record_upsert->add_option("--ttl", s->ttl, "seconds (default 300)");
  s->record_upsert->add_option("--alias-service", s->alias_service,
                               "ALIAS: answer with this berth service's addresses");
  s->record_upsert->add_option("--alias-name", s->alias_name,
                               "ALIAS: answer with this name's A/AAAA records");
  s->record_upsert->add_option("--set-id", s->set_id, "routing policy: the set's identifier");
  s->record_upsert->add_option("--weight", s->weight, "weighted routing: 0-255");
  s->record_upsert->add_option("--failover", s->failover, "failover routing: PRIMARY|SECONDARY");
  s->record_upsert->add_flag("--multivalue", s->multivalue, "multivalue answer routing");
  s->record_upsert->add_option("--health-check", s->health_check,
                               "leave this set out while the health check fails");
  add_json_flag(s->record_upsert, s->json);

  s->record_delete = record->add_subcommand("delete", "delete a record set");
  zone_arg(s->record_delete);
  s->record_delete->add_option("--name", s->name, "record name")->required();
  s->record_delete->add_option("--type", s->type, "record type")->required();
  s->record_delete->add_option("--set-id", s->set_id, "routing policy: the set's identifier");
  add_json_flag(s->record_delete, s->json);

  s->change = dns->add_subcommand("change",
                                  "apply a change batch (Route 53's "
                                  "ChangeResourceRecordSets JSON), all or nothing");
  zone_arg(s->change);
  s->change->add_option("--file", s->file, "batch JSON ('-' = stdin)")->required();
  add_json_flag(s->change, s->json);
  s->health = add_dns_health_commands(*dns);
  s->tsig = add_dns_tsig_commands(*dns);
  return s;
}

std::optional<int> run_dns_commands(DnsCommands& s, const api::Client& client) {
  if (auto rc = run_dns_health_commands(*s.health, client)) {
    return rc;
  }
  if (auto rc = run_dns_tsig_commands(*s.tsig, client)) {
    return rc;
  }
  auto read_input = [&](const std::string& path) -> Result<std::string> {
    if (path == "-") {
      std::string all;
      char buf[65536];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
        all.append(buf, n);
      }
      return all;
    }
    auto text = fs::read_file(path);
    if (!text) {
      return Error(Errc::InvalidArgument, "cannot read " + path + ": " + text.error().message());
    }
    return *text;
  };
  if (*s.zone_create) {
    auto r = client.call("POST", kZones, Json{{"name", s.zone}});
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("created ");
    return print_zone(*r, false, client);
  }
  if (*s.zone_ls) {
    return print_list(
        client.call("GET", kZones), "zones", s.json,
        {field("NAME", "name"),
         {"SERIAL", [](const Json& z) { return std::to_string(num(z, "serial")); }},
         {"RECORD SETS", [](const Json& z) { return std::to_string(num(z, "record_set_count")); }},
         {"NAME SERVERS", [](const Json& z) {
            std::string out;
            for (const auto& ns : z.value("nameservers", Json::array())) {
              out += (out.empty() ? "" : " ") + ns.get<std::string>();
            }
            return out;
          }}});
  }
  if (*s.zone_show) {
    auto r = client.call("GET", zone_path(s.zone));
    return r ? print_zone(*r, s.json, client) : fail(r.error());
  }
  if (*s.zone_rm) {
    auto r = client.call("DELETE", zone_path(s.zone));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("deleted zone %s\n", s.zone.c_str());
    return 0;
  }
  if (*s.zone_update) {
    Json body = Json::object();
    if (s.no_transfer) {
      body["allow_transfer"] = Json::array();
      body["also_notify"] = Json::array();
    }
    if (!s.allow_transfer.empty()) {
      body["allow_transfer"] = s.allow_transfer;
    }
    if (!s.also_notify.empty()) {
      body["also_notify"] = s.also_notify;
    }
    if (body.empty()) {
      return fail(Error(Errc::InvalidArgument,
                        "nothing to change: give --allow-transfer, --also-notify or "
                        "--no-transfer"));
    }
    auto r = client.call("PATCH", zone_path(s.zone), body);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    auto joined = [](const Json& a) {
      std::string out;
      for (const auto& v : a) {
        out += (out.empty() ? "" : " ") + v.get<std::string>();
      }
      return out.empty() ? std::string("-") : out;
    };
    std::printf("zone %s: allow transfer %s; notify %s\n", str(*r, "name").c_str(),
                joined(r->value("allow_transfer", Json::array())).c_str(),
                joined(r->value("also_notify", Json::array())).c_str());
    return 0;
  }
  if (*s.zone_export) {
    auto r = client.call_text("GET", zone_path(s.zone) + "/export");
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(Json{{"zone", s.zone}, {"zone_file", *r}});
    }
    std::fwrite(r->data(), 1, r->size(), stdout);
    return 0;
  }
  if (*s.zone_import) {
    auto text = read_input(s.file);
    if (!text) {
      return fail(text.error());
    }
    auto r = client.call("POST", zone_path(s.zone) + "/import" + (s.replace ? "?replace=1" : ""),
                         Json{{"zone_file", *text}});
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("imported %s into zone %s: serial %lld, %lld record sets\n", s.file.c_str(),
                str(*r, "name").c_str(), static_cast<long long>(num(*r, "serial")),
                static_cast<long long>(num(*r, "record_set_count")));
    return 0;
  }
  if (*s.record_ls) {
    return list_records(s, client);
  }
  if (*s.record_upsert) {
    if (s.values.empty() && s.alias_service.empty() && s.alias_name.empty()) {
      return fail(Error(Errc::InvalidArgument,
                        "give at least one --value (or --alias-service / --alias-name)"));
    }
    if (!s.alias_service.empty() || !s.alias_name.empty()) {
      s.type = "ALIAS";
    }
    Json batch = {{"Changes", Json::array({Json{{"Action", "UPSERT"},
                                                {"ResourceRecordSet", record_set(s)}}})}};
    return post_batch(s, client, batch);
  }
  if (*s.record_delete) {
    // DELETE must name the set exactly (values and TTL, as Route 53 wants): fetch it first.
    std::string name = full_name(s.name, s.zone);
    auto r = client.call("GET", zone_path(s.zone) + "/records?name=" + url::encode(name) +
                                    "&type=" + url::encode(s.type));
    if (!r) {
      return fail(r.error());
    }
    Json changes = Json::array();
    for (const auto& rs : r->value("record_sets", Json::array())) {
      if (s.set_id.empty() || str(rs, "SetIdentifier") == s.set_id) {
        changes.push_back(Json{{"Action", "DELETE"}, {"ResourceRecordSet", rs}});
      }
    }
    if (changes.empty()) {
      return fail(
          Error(Errc::NotFound, "zone " + s.zone + " has no " + s.type + " record at " + name));
    }
    return post_batch(s, client, Json{{"Changes", changes}});
  }
  if (*s.change) {
    auto text = read_input(s.file);
    if (!text) {
      return fail(text.error());
    }
    Json batch = Json::parse(*text, nullptr, false);
    if (batch.is_discarded()) {
      return fail(Error(Errc::InvalidArgument, s.file + " is not valid JSON"));
    }
    return post_batch(s, client, batch);
  }
  return std::nullopt;
}

}  // namespace berth::cli
