// SPDX-License-Identifier: Apache-2.0
// /api/v1/registry/upstreams: the registries berth pulls through, and
// /api/v1/registry/replications: the registries it copies pushes to (docs/registry.md).
// Actions: registry:CreateUpstream, GetUpstream, DeleteUpstream, TestUpstream on upstream/NAME,
// registry:ListUpstreams on upstream/*; registry:CreateReplication, GetReplication,
// DeleteReplication on replication/NAME, registry:ListReplications on replication/* (the
// registry checks them).
#include <algorithm>
#include <initializer_list>

#include "api/api.h"
#include "api/internal.h"
#include "common/duration.h"
#include "registry/registry.h"

namespace berth::api {

namespace {

Json upstream_json(const registry::UpstreamView& v) {
  return Json{{"name", v.spec.name},
              {"url", v.spec.url},
              {"prefix", v.spec.prefix},
              {"username", v.spec.username},
              {"password_set", v.has_password},
              {"ca_file", v.spec.ca_file},
              {"ttl_seconds", static_cast<int64_t>(v.spec.ttl.count())},
              {"default", v.spec.is_default},
              {"created_at", v.created_at}};
}

Result<std::string> string_field(const Json& body, const char* key, bool required) {
  if (!body.contains(key)) {
    if (required) {
      return Error(Errc::InvalidArgument, std::string(key) + " is required");
    }
    return std::string();
  }
  if (!body[key].is_string()) {
    return Error(Errc::InvalidArgument, std::string(key) + " must be a string");
  }
  return body[key].get<std::string>();
}

Json replication_json(const registry::ReplicationStatus& s) {
  return Json{{"name", s.spec.name},
              {"url", s.spec.url},
              {"repos", s.spec.repos},
              {"username", s.spec.username},
              {"password_set", s.has_password},
              {"ca_file", s.spec.ca_file},
              {"deletes", s.spec.deletes},
              {"created_at", s.created_at},
              {"pending", s.pending},
              {"lag_seconds", s.lag_seconds},
              {"replicated", s.replicated},
              {"last_success_at", s.last_success_at},
              {"last_error", s.last_error},
              {"last_error_at", s.last_error_at},
              {"next", s.next}};
}

Status only_known_fields(const Json& body, std::initializer_list<const char*> known) {
  for (const auto& [k, _] : body.items()) {
    if (std::find_if(known.begin(), known.end(), [&](const char* n) { return k == n; }) ==
        known.end()) {
      return Error(Errc::InvalidArgument, "unknown field " + k);
    }
  }
  return ok();
}

// {"name", "url", "repos": ["web/*"], "username", "password", "ca_file", "deletes": false}
Result<registry::ReplicationSpec> parse_replication(const std::string& text) {
  BERTH_ASSIGN_OR_RETURN(auto body, parse_object_body(text));
  BERTH_TRY(only_known_fields(
      body, {"name", "url", "repos", "username", "password", "ca_file", "deletes"}));
  registry::ReplicationSpec s;
  BERTH_ASSIGN_OR_RETURN(s.name, string_field(body, "name", true));
  BERTH_ASSIGN_OR_RETURN(s.url, string_field(body, "url", true));
  BERTH_ASSIGN_OR_RETURN(auto repos, string_list_field(body, "repos"));
  s.repos = repos.value_or(std::vector<std::string>{});
  BERTH_ASSIGN_OR_RETURN(s.username, string_field(body, "username", false));
  BERTH_ASSIGN_OR_RETURN(s.password, string_field(body, "password", false));
  BERTH_ASSIGN_OR_RETURN(s.ca_file, string_field(body, "ca_file", false));
  if (body.contains("deletes")) {
    if (!body["deletes"].is_boolean()) {
      return Error(Errc::InvalidArgument, "deletes must be true or false");
    }
    s.deletes = body["deletes"].get<bool>();
  }
  return s;
}

// {"name", "url", "prefix", "username", "password", "ca_file", "ttl": "6h", "default": false}
Result<registry::UpstreamSpec> parse_spec(const std::string& text) {
  BERTH_ASSIGN_OR_RETURN(auto body, parse_object_body(text));
  BERTH_TRY(only_known_fields(
      body, {"name", "url", "prefix", "username", "password", "ca_file", "ttl", "default"}));
  registry::UpstreamSpec s;
  BERTH_ASSIGN_OR_RETURN(s.name, string_field(body, "name", true));
  BERTH_ASSIGN_OR_RETURN(s.url, string_field(body, "url", true));
  BERTH_ASSIGN_OR_RETURN(s.prefix, string_field(body, "prefix", true));
  BERTH_ASSIGN_OR_RETURN(s.username, string_field(body, "username", false));
  BERTH_ASSIGN_OR_RETURN(s.password, string_field(body, "password", false));
  BERTH_ASSIGN_OR_RETURN(s.ca_file, string_field(body, "ca_file", false));
  BERTH_ASSIGN_OR_RETURN(auto ttl, string_field(body, "ttl", false));
  if (!ttl.empty()) {
    BERTH_ASSIGN_OR_RETURN(auto ms, parse_duration(ttl));
    s.ttl = std::chrono::duration_cast<std::chrono::seconds>(ms);
  }
  if (body.contains("default")) {
    if (!body["default"].is_boolean()) {
      return Error(Errc::InvalidArgument, "default must be true or false");
    }
    s.is_default = body["default"].get<bool>();
  }
  return s;
}

http::Response serve(registry::Registry& reg, const ApiCall& call) {
  using V = bhttp::verb;
  auto seg = segments(call.rest);  // registry, upstreams|replications, NAME, test
  auto answer = [&]() -> Result<http::Response> {
    if (seg.size() >= 2 && seg[1] == "replications") {
      if (seg.size() == 2 && call.method == V::get) {
        BERTH_ASSIGN_OR_RETURN(auto list, reg.list_replications(call.ctx));
        Json arr = Json::array();
        for (const auto& r : list) {
          arr.push_back(replication_json(r));
        }
        return json_response(200, Json{{"replications", arr}});
      }
      if (seg.size() == 2 && call.method == V::post) {
        BERTH_ASSIGN_OR_RETURN(auto spec, parse_replication(call.body));
        BERTH_ASSIGN_OR_RETURN(auto r, reg.create_replication(call.ctx, std::move(spec)));
        return json_response(201, replication_json(r));
      }
      if (seg.size() == 3 && call.method == V::get) {
        BERTH_ASSIGN_OR_RETURN(auto r, reg.get_replication(call.ctx, seg[2]));
        return json_response(200, replication_json(r));
      }
      if (seg.size() == 3 && call.method == V::delete_) {
        BERTH_TRY(reg.delete_replication(call.ctx, seg[2]));
        return json_response(200, Json{{"deleted", seg[2]}});
      }
      return no_endpoint(call);
    }
    if (seg.size() == 2 && call.method == V::get) {
      BERTH_ASSIGN_OR_RETURN(auto list, reg.list_upstreams(call.ctx));
      Json arr = Json::array();
      for (const auto& v : list) {
        arr.push_back(upstream_json(v));
      }
      return json_response(200, Json{{"upstreams", arr}});
    }
    if (seg.size() == 2 && call.method == V::post) {
      BERTH_ASSIGN_OR_RETURN(auto spec, parse_spec(call.body));
      BERTH_ASSIGN_OR_RETURN(auto v, reg.create_upstream(call.ctx, std::move(spec)));
      return json_response(201, upstream_json(v));
    }
    if (seg.size() == 3 && call.method == V::get) {
      BERTH_ASSIGN_OR_RETURN(auto v, reg.get_upstream(call.ctx, seg[2]));
      return json_response(200, upstream_json(v));
    }
    if (seg.size() == 3 && call.method == V::delete_) {
      BERTH_TRY(reg.delete_upstream(call.ctx, seg[2]));
      return json_response(200, Json{{"deleted", seg[2]}});
    }
    if (seg.size() == 4 && seg[3] == "test" && call.method == V::post) {
      BERTH_ASSIGN_OR_RETURN(auto c, reg.test_upstream(call.ctx, seg[2]));
      return json_response(200, Json{{"name", seg[2]},
                                     {"ok", c.ok},
                                     {"auth", c.auth},
                                     {"status", c.status},
                                     {"millis", c.millis},
                                     {"message", c.message}});
    }
    return no_endpoint(call);
  }();
  return answer ? std::move(*answer) : error_response(answer.error());
}

}  // namespace

awaitable<void> Api::handle_upstreams(http::Exchange& ex, std::string rest) {
  if (registry_pool_ == nullptr) {
    co_return co_await ex.send(
        error_response(Error(Errc::FailedPrecondition, "upstreams are not available")));
  }
  std::vector<const char*> params;
  auto* reg = &registry_;
  co_await serve_call(ex, std::move(rest), std::move(params), kMaxRestBody, *registry_pool_,
                      [reg](const ApiCall& call) { return serve(*reg, call); });
}

}  // namespace berth::api
