// SPDX-License-Identifier: Apache-2.0
// /api/v1/services and /api/v1/deployments: the deploy controller over HTTP. Each request is
// handled by one blocking job (authorize, call the controller, build the response) so the
// coroutine part stays a read, a hand-off and a send.
#include <ctime>

#include "api/api.h"
#include "api/internal.h"
#include "common/json.h"
#include "deploy/deploy.h"
#include "router/router.h"
#include "runtime/runtime.h"

namespace berth::api {

Json service_json(const deploy::ServiceView& v) {
  Json instances = Json::array();
  for (const auto& i : v.instances) {
    instances.push_back(Json{{"id", i.id},
                             {"revision", i.revision},
                             {"state", i.state},
                             {"in_flight", i.in_flight},
                             {"started_at", i.started_at}});
  }
  Json j = Json::object();
  j["name"] = v.name;
  j["status"] = v.status;
  j["reason"] = v.reason;
  j["url"] = v.url;
  j["image"] = v.spec.image;
  j["paused"] = v.paused;
  j["revision"] = v.revision;
  j["digest"] = v.digest;
  j["restarts"] = v.restarts;
  j["instances"] = instances;
  j["spec"] = deploy::spec_to_view(v.spec);
  j["created_at"] = v.created_at;
  return j;
}

Json deployment_json(const store::DeploymentRecord& d) {
  Json j = Json::object();
  j["id"] = d.id;
  j["service"] = d.service;
  j["revision"] = d.revision;
  j["digest"] = d.digest;
  j["status"] = d.status;
  j["reason"] = d.reason;
  j["trigger"] = d.trigger;
  j["created_at"] = d.created_at;
  j["started_at"] = d.started_at;
  j["finished_at"] = d.finished_at;
  return j;
}

namespace {

Json deployment_ref(int64_t id) {
  Json j = Json::object();
  j["deployment"] = id;
  return j;
}

class ServicesHandler : public RestHandler {
 public:
  ServicesHandler(deploy::Controller& c, iam::Service& iam, const ServicesSettings& settings)
      : RestHandler(iam), c_(c), settings_(settings) {}

 private:
  // A service that pulls with a role, or with berth's own rights: the caller must be able to
  // hand that role over (iam:PassRole), or to pull the image itself.
  // An image that is not cached yet under a pull-through prefix is fetched for the service, so
  // the caller needs registry:PullThrough as for a pull (a role allowed only what is cached
  // stays so).
  Status allow_image_rights(const ApiCall& call, const deploy::ServiceSpec& spec) {
    if (!spec.role.empty()) {
      BERTH_TRY(allow(call, "iam:PassRole", "role/" + spec.role));
    } else {
      BERTH_TRY(allow(call, "registry:Pull", "repository/" + spec.repository()));
    }
    if (settings_.fetches_upstream) {
      std::string repo = spec.repository();
      std::string ref = spec.image.size() > repo.size() + 1 ? spec.image.substr(repo.size() + 1)
                                                            : std::string("latest");
      if (settings_.fetches_upstream(repo, ref)) {
        return allow(call, "registry:PullThrough", "repository/" + repo);
      }
    }
    return ok();
  }

  // Turning a confinement off (seccomp unconfined) is a separate right: a service that runs
  // unconfined, or is about to run something new unconfined, needs service:Privileged.
  Status allow_confinement(const ApiCall& call, const std::string& name,
                           const deploy::ServiceSpec& spec) {
    if (spec.seccomp == "unconfined") {
      return allow(call, "service:Privileged", "service/" + name);
    }
    return ok();
  }

  Result<http::Response> dispatch(const ApiCall& call) override {
    using V = bhttp::verb;
    auto seg = segments(call.rest);
    size_t n = seg.size();
    auto m = call.method;
    if (seg[0] == "deployments" && n == 2 && m == V::get) {
      char* end = nullptr;
      long long id = std::strtoll(seg[1].c_str(), &end, 10);
      if (seg[1].empty() || *end != '\0') {
        return Error(Errc::InvalidArgument, "deployment id must be a number");
      }
      BERTH_ASSIGN_OR_RETURN(auto d, c_.deployment(id));
      BERTH_TRY(allow(call, "service:GetService", "service/" + d.service));
      return json_response(200, deployment_json(d));
    }
    if (seg[0] != "services") {
      return no_endpoint(call);
    }
    if (n == 1 && m == V::get) {
      BERTH_TRY(allow(call, "service:ListServices", "service/*"));
      BERTH_ASSIGN_OR_RETURN(auto list, c_.list());
      Json arr = Json::array();
      for (const auto& v : list) {
        arr.push_back(service_json(v));
      }
      Json out = Json::object();
      out["services"] = arr;
      return json_response(200, out);
    }
    if (n == 1 && m == V::post) {
      BERTH_ASSIGN_OR_RETURN(Json body, parse_object_body(call.body));
      std::string name = body.value("name", "");
      BERTH_TRY(deploy::validate_service_name(name));
      BERTH_ASSIGN_OR_RETURN(auto spec, deploy::spec_from_request(body, deploy::ServiceSpec{}));
      BERTH_TRY(allow(call, "service:CreateService", "service/" + name));
      BERTH_TRY(allow_confinement(call, name, spec));
      BERTH_TRY(allow_image_rights(call, spec));
      BERTH_ASSIGN_OR_RETURN(auto created, c_.create(name, spec));
      Json j = service_json(created.first);
      j["deployment"] = created.second;
      return json_response(201, j);
    }
    if (n < 2) {
      return no_endpoint(call);
    }
    const std::string& name = seg[1];
    std::string res = "service/" + name;
    if (n == 2 && m == V::get) {
      BERTH_TRY(allow(call, "service:GetService", res));
      BERTH_ASSIGN_OR_RETURN(auto v, c_.get(name));
      return json_response(200, service_json(v));
    }
    if (n == 2 && m == V::patch) {
      BERTH_ASSIGN_OR_RETURN(Json body, parse_object_body(call.body));
      BERTH_TRY(allow(call, "service:UpdateService", res));
      BERTH_ASSIGN_OR_RETURN(auto base, c_.spec(name));
      BERTH_ASSIGN_OR_RETURN(auto spec, deploy::spec_from_request(body, base));
      BERTH_TRY(allow_confinement(call, name, spec));
      if (spec.role != base.role || spec.image != base.image) {
        BERTH_TRY(allow_image_rights(call, spec));
      }
      BERTH_ASSIGN_OR_RETURN(int64_t id, c_.update(name, spec));
      return json_response(200, deployment_ref(id));
    }
    if (n == 2 && m == V::delete_) {
      BERTH_TRY(allow(call, "service:DeleteService", res));
      BERTH_TRY(c_.remove(name));
      Json out = Json::object();
      out["deleted"] = name;
      return json_response(200, out);
    }
    if (n == 3 && m == V::post && seg[2] == "deploy") {
      BERTH_ASSIGN_OR_RETURN(Json body, parse_object_body(call.body));
      BERTH_TRY(allow(call, "service:Deploy", res));
      std::string image = body.value("image", "");
      BERTH_ASSIGN_OR_RETURN(auto spec, c_.spec(name));
      if (!image.empty()) {
        Json patch = Json::object();
        patch["image"] = image;
        BERTH_ASSIGN_OR_RETURN(spec, deploy::spec_from_request(patch, spec));
        BERTH_TRY(allow_confinement(call, name, spec));
      }
      BERTH_TRY(allow_image_rights(call, spec));
      BERTH_ASSIGN_OR_RETURN(int64_t id, c_.deploy(name, image));
      return json_response(202, deployment_ref(id));
    }
    if (n == 3 && m == V::post && seg[2] == "rollback") {
      BERTH_TRY(allow(call, "service:Rollback", res));
      BERTH_ASSIGN_OR_RETURN(auto spec, c_.spec(name));
      BERTH_TRY(allow_image_rights(call, spec));
      BERTH_ASSIGN_OR_RETURN(int64_t id, c_.rollback(name));
      return json_response(202, deployment_ref(id));
    }
    if (n == 3 && m == V::post && (seg[2] == "pause" || seg[2] == "resume")) {
      bool pause = seg[2] == "pause";
      BERTH_TRY(allow(call, pause ? "service:PauseService" : "service:ResumeService", res));
      BERTH_TRY(pause ? c_.pause(name) : c_.resume(name));
      Json out = Json::object();
      out["service"] = name;
      out["paused"] = pause;
      return json_response(202, out);
    }
    if (n == 3 && m == V::get && seg[2] == "deployments") {
      BERTH_TRY(allow(call, "service:GetService", res));
      long limit = std::strtol(call.q("limit", "50").c_str(), nullptr, 10);
      BERTH_ASSIGN_OR_RETURN(auto list,
                             c_.deployments(name, static_cast<int>(std::clamp(limit, 1L, 1000L))));
      Json arr = Json::array();
      for (const auto& d : list) {
        arr.push_back(deployment_json(d));
      }
      Json out = Json::object();
      out["deployments"] = arr;
      return json_response(200, out);
    }
    if (n == 3 && m == V::get && seg[2] == "logs") {
      BERTH_TRY(allow(call, "service:GetLogs", res));
      BERTH_ASSIGN_OR_RETURN(auto path, c_.log_path(name));
      char* e1 = nullptr;
      char* e2 = nullptr;
      char* e3 = nullptr;
      std::string since_s = call.q("since_ms", "0");
      std::string offset_s = call.q("offset", "");
      std::string limit_s = call.q("limit", "1000");
      long long since = std::strtoll(since_s.c_str(), &e1, 10);
      unsigned long long offset = std::strtoull(offset_s.c_str(), &e2, 10);
      long long limit = std::strtoll(limit_s.c_str(), &e3, 10);
      if (*e1 != '\0' || *e2 != '\0' || *e3 != '\0' || limit < 0) {
        return Error(Errc::InvalidArgument,
                     "since_ms and offset must be numbers, limit a number from 0");
      }
      uint64_t off = offset;
      auto lines = runtime::read_log(path, since, call.q("instance"), static_cast<size_t>(limit),
                                     offset_s.empty() ? nullptr : &off);
      if (offset_s.empty()) {
        // Where a follower continues from: the end of the current file.
        off = 0;
        (void)runtime::read_log(path, INT64_MAX, "", 1, &off);
      }
      Json arr = Json::array();
      for (const auto& l : lines) {
        Json j = Json::object();
        j["time_ms"] = l.time_ms;
        j["instance"] = l.instance;
        j["stream"] = l.stream;
        j["text"] = l.text;
        arr.push_back(j);
      }
      Json out = Json::object();
      out["lines"] = arr;
      out["offset"] = off;
      return json_response(200, out);
    }
    return no_endpoint(call);
  }

  deploy::Controller& c_;
  const ServicesSettings& settings_;
};

}  // namespace

awaitable<void> Api::handle_services(http::Exchange& ex, std::string rest) {
  if (services_.controller == nullptr || services_.pool == nullptr) {
    std::string why = services_.unavailable_reason.empty()
                          ? "services are not available on this berthd"
                          : services_.unavailable_reason;
    co_return co_await ex.send(error_response(Error(Errc::FailedPrecondition, why)));
  }
  bool follow = ex.query("follow").value_or("0") == "1";
  if (live_services_path(rest, ex.method(), follow)) {
    co_return co_await serve_live_services(ex, std::move(rest));
  }
  std::vector<const char*> params = {"limit", "since_ms", "offset", "instance"};
  co_await serve_call(ex, std::move(rest), std::move(params), kMaxRestBody, *services_.pool,
                      [c = services_.controller, iam = &iam_, s = &services_](const ApiCall& call) {
                        return ServicesHandler(*c, *iam, *s).serve(call);
                      });
}

awaitable<void> Api::metrics(http::Exchange& ex) {
  http::Response r;
  r.header("Content-Type", "text/plain; version=0.0.4");
  if (services_.router != nullptr) {
    r.body = services_.router->metrics_text();
  }
  r.body += registry_.metrics_text();
  co_await ex.send(std::move(r));
}

}  // namespace berth::api
