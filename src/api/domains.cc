// SPDX-License-Identifier: Apache-2.0
// /api/v1/domains: custom domains linked to services (docs/domains.md), and /api/v1/ca, the
// root of berth's own CA. Actions: domain:LinkDomain, domain:UnlinkDomain and
// domain:RenewDomain (POST domains/NAME/renew) on domain/NAME (link also needs
// service:GetService on the service; {"registry": true} links a name to berthd's own registry
// listener), domain:GetDomain, domain:ListDomains
// (domain/*), domain:GetCaRoot on ca/root.
#include "domains/domains.h"

#include "api/api.h"
#include "api/internal.h"
#include "common/async.h"
#include "common/json.h"
#include "iam/iam.h"

namespace berth::api {

namespace {

class DomainsHandler : public RestHandler {
 public:
  DomainsHandler(domains::Manager& m, iam::Service& iam) : RestHandler(iam), m_(m) {}

 private:
  Result<http::Response> dispatch(const ApiCall& call) override {
    using V = bhttp::verb;
    auto m = call.method;
    if (call.rest == "ca") {
      if (m != V::get) {
        return no_endpoint(call);
      }
      BERTH_TRY(allow(call, "domain:GetCaRoot", "ca/root"));
      return json_response(200, Json{{"root_pem", m_.ca_root_pem()}});
    }
    auto seg = segments(call.rest);  // domains, NAME
    if (seg.size() == 1 && m == V::get) {
      BERTH_TRY(allow(call, "domain:ListDomains", "domain/*"));
      BERTH_ASSIGN_OR_RETURN(auto list, m_.list(call.q("service")));
      Json arr = Json::array();
      for (const auto& d : list) {
        arr.push_back(domains::domain_to_json(d));
      }
      return json_response(200, Json{{"domains", arr}});
    }
    if (seg.size() == 1 && m == V::post) {
      // {"service": "web", "name": "example.com", "www": true} or
      // {"registry": true, "name": "registry.example.com"}
      BERTH_ASSIGN_OR_RETURN(auto body, parse_object_body(call.body));
      if (body.contains("registry") && !body["registry"].is_boolean()) {
        return Error(Errc::InvalidArgument, "registry must be true or false");
      }
      bool registry = body.value("registry", false);
      if (!body.contains("name") || !body["name"].is_string() ||
          (!registry && (!body.contains("service") || !body["service"].is_string()))) {
        return Error(Errc::InvalidArgument,
                     "body must be {\"service\": \"NAME\", \"name\": \"DOMAIN\", \"www\": false} "
                     "or {\"registry\": true, \"name\": \"DOMAIN\"}");
      }
      if (body.contains("www") && !body["www"].is_boolean()) {
        return Error(Errc::InvalidArgument, "www must be true or false");
      }
      BERTH_ASSIGN_OR_RETURN(auto name, domains::normalize_domain(body["name"].get<std::string>()));
      bool www = body.value("www", false);
      if (registry && (www || body.contains("service"))) {
        return Error(Errc::InvalidArgument,
                     "a registry link takes one name: no service and no www");
      }
      BERTH_TRY(allow(call, "domain:LinkDomain", "domain/" + name));
      if (www) {
        BERTH_TRY(allow(call, "domain:LinkDomain", "domain/www." + name));
      }
      std::vector<domains::Domain> linked;
      if (registry) {
        BERTH_ASSIGN_OR_RETURN(linked, m_.link_registry(name));
      } else {
        std::string service = body["service"].get<std::string>();
        BERTH_TRY(allow(call, "service:GetService", "service/" + service));
        BERTH_ASSIGN_OR_RETURN(linked, m_.link(service, name, www));
      }
      Json arr = Json::array();
      for (const auto& d : linked) {
        arr.push_back(domains::domain_to_json(d));
      }
      return json_response(202, Json{{"domains", arr}});
    }
    if (seg.size() == 3 && seg[2] == "renew" && m == V::post) {
      BERTH_ASSIGN_OR_RETURN(auto name, domains::normalize_domain(seg[1]));
      BERTH_TRY(allow(call, "domain:RenewDomain", "domain/" + name));
      bool force = false;
      if (!call.body.empty()) {  // {"force": true}: renew a fresh ACME certificate too
        BERTH_ASSIGN_OR_RETURN(auto body, parse_object_body(call.body));
        if (body.contains("force") && !body["force"].is_boolean()) {
          return Error(Errc::InvalidArgument, "force must be true or false");
        }
        force = body.value("force", false);
      }
      BERTH_ASSIGN_OR_RETURN(auto d, m_.renew(name, force));
      return json_response(202, domains::domain_to_json(d));
    }
    if (seg.size() != 2) {
      return no_endpoint(call);
    }
    BERTH_ASSIGN_OR_RETURN(auto name, domains::normalize_domain(seg[1]));
    if (m == V::get) {
      BERTH_TRY(allow(call, "domain:GetDomain", "domain/" + name));
      BERTH_ASSIGN_OR_RETURN(auto d, m_.get(name));
      return json_response(200, domains::domain_to_json(d));
    }
    if (m == V::delete_) {
      std::string service = call.q("service");
      bool registry = call.q("registry") == "true";
      if (service.empty() == !registry) {
        return Error(Errc::InvalidArgument,
                     "unlink needs ?service=NAME (the service it is linked to) or ?registry=true");
      }
      BERTH_TRY(allow(call, "domain:UnlinkDomain", "domain/" + name));
      BERTH_ASSIGN_OR_RETURN(auto kept, m_.unlink(service, name));
      Json out{{"unlinked", name}, {"kept_records", kept}};
      if (registry) {
        out["registry"] = true;
      } else {
        out["service"] = service;
      }
      return json_response(200, out);
    }
    return no_endpoint(call);
  }

  domains::Manager& m_;
};

}  // namespace

awaitable<void> Api::handle_domains(http::Exchange& ex, std::string rest) {
  if (domains_.manager == nullptr || domains_.pool == nullptr) {
    std::string why = domains_.unavailable_reason.empty()
                          ? "custom domains are not available on this berthd"
                          : domains_.unavailable_reason;
    co_return co_await ex.send(error_response(Error(Errc::FailedPrecondition, why)));
  }
  std::vector<const char*> params = {"service", "registry"};
  co_await serve_call(ex, std::move(rest), std::move(params), kMaxRestBody, *domains_.pool,
                      [m = domains_.manager, iam = &iam_](const ApiCall& call) {
                        return DomainsHandler(*m, *iam).serve(call);
                      });
}

}  // namespace berth::api
