// SPDX-License-Identifier: Apache-2.0
// /api/v1/repositories/NAME/lifecycle (PUT the rules JSON, GET, DELETE) and
// /api/v1/repositories/NAME/lifecycle/preview (GET): a repository's lifecycle rules
// (docs/registry.md). The registry authorizes and validates; this is the HTTP edge.
#include "registry/lifecycle.h"

#include "api/api.h"
#include "api/internal.h"
#include "common/json.h"

namespace berth::api {

namespace {

Json preview_json(const registry::LifecyclePreview& p) {
  Json images = Json::array();
  for (const auto& d : p.images) {
    images.push_back(Json{{"digest", d.digest},
                          {"tags", d.tags},
                          {"pushedAt", d.pushed_at},
                          {"action", d.expire ? "expire" : "keep"},
                          {"rulePriority", d.rule_priority > 0 ? Json(d.rule_priority) : Json()},
                          {"reason", d.reason}});
  }
  return Json{{"repository", p.repository}, {"images", images}};
}

// Built outside the coroutine: GCC 12 miscompiles brace-initialised string literals in them.
Json deleted_json(const std::string& repo) { return Json{{"deleted", repo + " lifecycle rules"}}; }

}  // namespace

bool is_lifecycle_path(const std::string& rest) {
  auto ends = [&](const std::string& s) {
    return rest.size() > s.size() && rest.compare(rest.size() - s.size(), s.size(), s) == 0;
  };
  return rest.rfind("repositories/", 0) == 0 && (ends("/lifecycle") || ends("/lifecycle/preview"));
}

awaitable<void> Api::handle_lifecycle(http::Exchange& ex, std::string rest) {
  using V = bhttp::verb;
  auto m = ex.method();
  auto ctx = ex.context();
  std::string tail = rest.substr(std::string("repositories/").size());
  bool preview = tail.size() > 18 && tail.compare(tail.size() - 18, 18, "/lifecycle/preview") == 0;
  std::string repo = tail.substr(0, tail.size() - (preview ? 18 : 10));
  if (preview && m == V::get) {
    auto r = co_await registry_.preview_lifecycle(ctx, repo);
    if (!r) {
      co_return co_await ex.send(error_response(r.error()));
    }
    co_return co_await ex.send(json_response(200, preview_json(*r)));
  }
  if (!preview && m == V::get) {
    auto r = co_await registry_.get_lifecycle(ctx, repo);
    if (!r) {
      co_return co_await ex.send(error_response(r.error()));
    }
    // Stored validated, so it parses.
    co_return co_await ex.send(json_response(200, Json::parse(*r)));
  }
  if (!preview && m == V::put) {
    auto body = co_await ex.read_all(registry::kMaxLifecyclePolicyBytes + 1);
    if (!body) {
      co_return co_await ex.send(error_response(body.error()));
    }
    Status s = co_await registry_.put_lifecycle(ctx, repo, *body);
    if (!s) {
      co_return co_await ex.send(error_response(s.error()));
    }
    auto stored = co_await registry_.get_lifecycle(ctx, repo);
    if (!stored) {
      co_return co_await ex.send(error_response(stored.error()));
    }
    co_return co_await ex.send(json_response(200, Json::parse(*stored)));
  }
  if (!preview && m == V::delete_) {
    Status s = co_await registry_.delete_lifecycle(ctx, repo);
    if (!s) {
      co_return co_await ex.send(error_response(s.error()));
    }
    Json out = deleted_json(repo);
    co_return co_await ex.send(json_response(200, out));
  }
  Error none(Errc::NotFound, "no API endpoint " + ex.method_string() + " /api/v1/" + rest);
  co_await ex.send(error_response(none));
}

}  // namespace berth::api
