// SPDX-License-Identifier: Apache-2.0
// /api/v1/dns/healthchecks: the health checks berth runs (docs/dns.md "Health checks"). Like
// the zones API, each request is one blocking job: authorize, call dns::HealthChecker, build
// the response. Resources: healthcheck/ID (healthcheck/* for the list).
#include "api/api.h"
#include "api/internal.h"
#include "common/async.h"
#include "common/json.h"
#include "dns/dns.h"

namespace berth::api {

namespace {

constexpr size_t kMaxHealthBody = 16 * 1024;

// The check (Route 53's field names) with its status under "Status".
Json check_json(const dns::HealthCheckInfo& h) {
  Json j = dns::health_check_to_json(h.check);
  Json st = Json::object();
  st["State"] = std::string(dns::health_state_name(h.status.state));
  st["LastChecked"] = h.status.last_checked;
  st["LastResult"] = h.status.last_checked == 0 ? "" : (h.status.last_ok ? "SUCCESS" : "FAILURE");
  st["LastError"] = h.status.last_error;
  st["Consecutive"] = h.status.consecutive;
  j["Status"] = st;
  return j;
}

class HealthHandler : public RestHandler {
 public:
  HealthHandler(dns::HealthChecker& h, iam::Service& iam) : RestHandler(iam), h_(h) {}

 private:
  Result<http::Response> dispatch(const ApiCall& call) override {
    using V = bhttp::verb;
    auto seg = segments(call.rest);  // dns, healthchecks, ID
    size_t n = seg.size();
    auto m = call.method;
    if (n == 2 && m == V::get) {
      BERTH_TRY(allow(call, "dns:ListHealthChecks", "healthcheck/*"));
      Json arr = Json::array();
      for (const auto& h : h_.list()) {
        arr.push_back(check_json(h));
      }
      return json_response(200, Json{{"health_checks", arr}});
    }
    if (n == 2 && m == V::post) {
      BERTH_ASSIGN_OR_RETURN(auto body, parse_object_body(call.body));
      if (body.contains("CreatedAt")) {
        return Error(Errc::InvalidArgument, "CreatedAt: set by berth, not by the request");
      }
      BERTH_ASSIGN_OR_RETURN(auto check, dns::health_check_from_json(body));
      BERTH_TRY(allow(call, "dns:ManageHealthChecks", "healthcheck/" + check.id));
      BERTH_ASSIGN_OR_RETURN(auto created, h_.create(std::move(check)));
      return json_response(201, check_json(created));
    }
    if (n != 3) {
      return no_endpoint(call);
    }
    const std::string& id = seg[2];
    if (m == V::get) {
      BERTH_TRY(allow(call, "dns:GetHealthCheck", "healthcheck/" + id));
      BERTH_ASSIGN_OR_RETURN(auto h, h_.get(id));
      return json_response(200, check_json(h));
    }
    if (m == V::delete_) {
      BERTH_TRY(allow(call, "dns:ManageHealthChecks", "healthcheck/" + id));
      BERTH_TRY(h_.remove(id));
      return json_response(200, Json{{"deleted", id}});
    }
    return no_endpoint(call);
  }

  dns::HealthChecker& h_;
};

}  // namespace

awaitable<void> Api::handle_dns_health(http::Exchange& ex, std::string rest) {
  if (dns_.health == nullptr || dns_.pool == nullptr) {
    co_return co_await ex.send(error_response(
        Error(Errc::FailedPrecondition, "DNS health checks are not available on this berthd")));
  }
  std::vector<const char*> params = {};
  co_await serve_call(ex, std::move(rest), std::move(params), kMaxHealthBody, *dns_.pool,
                      [x = dns_.health, iam = &iam_](const ApiCall& call) {
                        return HealthHandler(*x, *iam).serve(call);
                      });
}

}  // namespace berth::api
