// SPDX-License-Identifier: Apache-2.0
// /api/v1/dns/zones: hosted zones, record sets, change batches (Route 53's shape), zone file
// export and import. Like the services API, each request is one blocking job: authorize,
// call dns::Service, build the response.
//
// Resources: zone/NAME for zone actions; record changes are authorized per record name as
// zone/NAME/record/FULLNAME, so a policy can let a key touch only _acme-challenge.* records.
#include "dns/dns.h"

#include <set>

#include "api/api.h"
#include "api/internal.h"
#include "common/json.h"

namespace berth::api {

namespace {

constexpr size_t kMaxDnsBody = 8 * 1024 * 1024;  // a 1000-record batch or a big zone file

Json zone_summary(const dns::ZoneData& z) {
  Json ns = Json::array();
  for (const auto& s : z.sets) {
    if (s.type == "NS" && s.name == z.name) {
      for (const auto& v : s.values) {
        ns.push_back(v);
      }
    }
  }
  Json j = Json::object();
  j["name"] = z.name;
  j["serial"] = z.serial;
  j["record_set_count"] = z.sets.size();
  j["nameservers"] = ns;
  j["allow_transfer"] = z.allow_transfer;
  j["also_notify"] = z.also_notify;
  return j;
}

class DnsHandler : public RestHandler {
 public:
  DnsHandler(dns::Service& d, iam::Service& iam, const dns::HealthChecker* health = nullptr)
      : RestHandler(iam), d_(d), health_(health) {}

 private:
  Result<http::Response> dispatch(const ApiCall& call) override {
    using V = bhttp::verb;
    auto seg = segments(call.rest);  // dns, zones, NAME, sub
    size_t n = seg.size();
    auto m = call.method;
    if (n < 2 || seg[1] != "zones") {
      return no_endpoint(call);
    }
    if (n == 2 && m == V::get) {
      BERTH_TRY(allow(call, "dns:ListZones", "zone/*"));
      BERTH_ASSIGN_OR_RETURN(auto zones, d_.list_zones());
      Json arr = Json::array();
      for (const auto& z : zones) {
        arr.push_back(zone_summary(z));
      }
      return json_response(200, Json{{"zones", arr}});
    }
    if (n == 2 && m == V::post) {
      BERTH_ASSIGN_OR_RETURN(auto body, parse_object_body(call.body));
      if (!body.contains("name") || !body["name"].is_string()) {
        return Error(Errc::InvalidArgument, "body must be {\"name\": \"example.com\"}");
      }
      BERTH_ASSIGN_OR_RETURN(auto name, dns::normalize_zone_name(body["name"].get<std::string>()));
      BERTH_TRY(allow(call, "dns:CreateZone", "zone/" + name));
      BERTH_ASSIGN_OR_RETURN(auto z, d_.create_zone(name));
      return json_response(201, zone_summary(z));
    }
    if (n < 3) {
      return no_endpoint(call);
    }
    BERTH_ASSIGN_OR_RETURN(auto zone, dns::normalize_zone_name(seg[2]));
    const std::string resource = "zone/" + zone;
    if (n == 3 && m == V::get) {
      BERTH_TRY(allow(call, "dns:GetZone", resource));
      BERTH_ASSIGN_OR_RETURN(auto z, d_.get_zone(zone));
      return json_response(200, zone_summary(z));
    }
    if (n == 3 && m == V::patch) {
      // {"allow_transfer": [...], "also_notify": [...]}: either may be left out (kept).
      BERTH_TRY(allow(call, "dns:UpdateZone", resource));
      BERTH_ASSIGN_OR_RETURN(auto body, parse_object_body(call.body));
      BERTH_ASSIGN_OR_RETURN(auto current, d_.get_zone(zone));
      for (auto [key, field] : {std::pair{"allow_transfer", &current.allow_transfer},
                                std::pair{"also_notify", &current.also_notify}}) {
        BERTH_ASSIGN_OR_RETURN(auto list, string_list_field(body, key));
        if (list) {
          *field = std::move(*list);
        }
      }
      BERTH_ASSIGN_OR_RETURN(auto z,
                             d_.set_transfer(zone, current.allow_transfer, current.also_notify));
      return json_response(200, zone_summary(z));
    }
    if (n == 3 && m == V::delete_) {
      BERTH_TRY(allow(call, "dns:DeleteZone", resource));
      BERTH_TRY(d_.delete_zone(zone));
      return json_response(200, Json{{"deleted", zone}});
    }
    const std::string& sub = seg[3];
    if (n == 4 && sub == "records" && m == V::get) {
      BERTH_TRY(allow(call, "dns:ListRecordSets", resource));
      BERTH_ASSIGN_OR_RETURN(auto z, d_.get_zone(zone));
      std::string want_name = call.q("name");
      if (!want_name.empty() && want_name != "@") {
        while (!want_name.empty() && want_name.back() == '.') {
          want_name.pop_back();
        }
        // A relative name ("www") is taken inside the zone.
        if (want_name != zone && (want_name.size() <= zone.size() ||
                                  want_name.compare(want_name.size() - zone.size() - 1,
                                                    zone.size() + 1, "." + zone) != 0)) {
          want_name += "." + zone;
        }
      } else if (want_name == "@") {
        want_name = zone;
      }
      std::string want_type = call.q("type");
      for (auto& c : want_type) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      for (auto& c : want_name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      Json arr = Json::array();
      for (const auto& s : z.sets) {
        if ((want_name.empty() || s.name == want_name) &&
            (want_type.empty() || s.type == want_type)) {
          arr.push_back(dns::record_set_to_json(s));
        }
      }
      return json_response(200, Json{{"zone", zone}, {"serial", z.serial}, {"record_sets", arr}});
    }
    if (n == 4 && sub == "changes" && m == V::post) {
      BERTH_ASSIGN_OR_RETURN(auto changes, dns::parse_change_batch(call.body, zone));
      std::set<std::string> names;
      for (const auto& c : changes) {
        names.insert(c.set.name);
      }
      for (const auto& name : names) {
        BERTH_TRY(allow(call, "dns:ChangeRecordSets", resource + "/record/" + name));
      }
      if (health_ != nullptr) {
        BERTH_TRY(health_->check_references(changes));  // docs/dns.md "Health checks"
      }
      BERTH_ASSIGN_OR_RETURN(auto z, d_.change(zone, changes));
      Json out = zone_summary(*z);
      out["changes"] = changes.size();
      return json_response(200, out);
    }
    if (n == 4 && sub == "export" && m == V::get) {
      BERTH_TRY(allow(call, "dns:GetZone", resource));
      BERTH_ASSIGN_OR_RETURN(auto text, d_.export_zone(zone));
      http::Response r;
      r.status = 200;
      r.header("Content-Type", "text/dns");
      r.body = std::move(text);
      return r;
    }
    if (n == 4 && sub == "import" && m == V::post) {
      BERTH_TRY(allow(call, "dns:ChangeRecordSets", resource + "/record/*"));
      bool replace = call.q("replace") == "1" || call.q("replace") == "true";
      // The body is the zone file itself, or {"zone_file": "..."} (what the CLI sends); a
      // zone file never starts with '{'.
      std::string text = call.body;
      if (!text.empty() && text.front() == '{') {
        BERTH_ASSIGN_OR_RETURN(auto body, parse_object_body(call.body));
        if (!body.contains("zone_file") || !body["zone_file"].is_string()) {
          return Error(Errc::InvalidArgument,
                       "body must be a zone file, or {\"zone_file\": \"...\"}");
        }
        text = body["zone_file"].get<std::string>();
      }
      BERTH_ASSIGN_OR_RETURN(auto z, d_.import_zone(zone, text, replace));
      return json_response(200, zone_summary(*z));
    }
    return no_endpoint(call);
  }

  dns::Service& d_;
  const dns::HealthChecker* health_ = nullptr;
};

}  // namespace

awaitable<void> Api::handle_dns(http::Exchange& ex, std::string rest) {
  if (rest == "dns/healthchecks" || rest.rfind("dns/healthchecks/", 0) == 0) {
    co_return co_await handle_dns_health(ex, std::move(rest));
  }
  if (rest == "dns/tsig" || rest.rfind("dns/tsig/", 0) == 0) {
    co_return co_await handle_dns_tsig(ex, std::move(rest));
  }
  if (dns_.service == nullptr || dns_.pool == nullptr) {
    co_return co_await ex.send(
        error_response(Error(Errc::FailedPrecondition, "DNS is not available on this berthd")));
  }
  std::vector<const char*> params = {"name", "type", "replace"};
  co_await serve_call(ex, std::move(rest), std::move(params), kMaxDnsBody, *dns_.pool,
                      [d = dns_.service, iam = &iam_, health = dns_.health](const ApiCall& call) {
                        return DnsHandler(*d, *iam, health).serve(call);
                      });
}

}  // namespace berth::api
