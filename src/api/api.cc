// SPDX-License-Identifier: Apache-2.0
#include "api/api.h"

#include "common/json.h"

namespace berth::api {

unsigned status_for(Errc code) {
  switch (code) {
    case Errc::Ok:
      return 200;
    case Errc::InvalidArgument:
      return 400;
    case Errc::NotFound:
      return 404;
    case Errc::AlreadyExists:
      return 409;
    case Errc::FailedPrecondition:
      return 412;
    case Errc::Conflict:
      return 409;
    case Errc::Unauthenticated:
      return 401;
    case Errc::PermissionDenied:
      return 403;
    case Errc::ResourceExhausted:
      return 413;
    case Errc::Unavailable:
      return 503;
    case Errc::DeadlineExceeded:
      return 504;
    case Errc::Cancelled:
      return 499;
    case Errc::Unsupported:
      return 501;
    case Errc::DataLoss:
      return 500;
    case Errc::Internal:
      return 500;
  }
  return 500;
}

namespace {

http::Response json_response(unsigned status, const Json& body) {
  http::Response r;
  r.status = status;
  r.header("Content-Type", "application/json");
  r.body = body.dump() + "\n";
  return r;
}

http::Response error_response(const Error& e) {
  return json_response(status_for(e.code()),
                       Json{{"error", {{"code", errc_name(e.code())}, {"message", e.message()}}}});
}

Json repo_json(const store::Repository& r) {
  return Json{{"name", r.name},
              {"immutable_tags", r.immutable_tags},
              {"mutable_tags", r.mutable_tag_globs},
              {"created_at", r.created_at}};
}

Json image_json(const store::ImageSummary& s) {
  Json j{{"digest", s.digest}, {"media_type", s.media_type}, {"tags", s.tags},
         {"size", s.size},     {"platform", s.platform},     {"pushed_at", s.pushed_at}};
  if (!s.artifact_type.empty()) {
    j["artifact_type"] = s.artifact_type;
  }
  return j;
}

// Not a coroutine and no aggregate or Error temporaries in co_await expressions: GCC 12
// mis-copies those. Callers pass a code and a string.
awaitable<void> reply_error(http::Exchange& ex, Errc code, std::string message) {
  return ex.send(error_response(Error(code, std::move(message))));
}

// Built outside coroutines: GCC 12 miscompiles brace-initialised string literals in them.
Json object_with(const std::string& key, Json value) {
  Json j = Json::object();
  j[key] = std::move(value);
  return j;
}

Json gc_json(const registry::GcReport& r) {
  return Json{{"blobs_deleted", r.blobs_deleted},
              {"orphan_files_deleted", r.orphan_files_deleted},
              {"bytes_freed", r.bytes_freed},
              {"uploads_removed", r.uploads_removed}};
}

}  // namespace

awaitable<void> Api::handle(http::Exchange& ex) {
  const std::string prefix = "/api/v1/";
  std::string path = ex.path();
  auto m = ex.method();
  using V = bhttp::verb;
  std::string rest = path.size() > prefix.size() ? path.substr(prefix.size()) : "";
  const auto& ctx = ex.context();

  if (rest == "repositories") {
    if (m == V::get) {
      auto r = co_await registry_.list_repositories(ctx);
      if (!r) {
        co_return co_await ex.send(error_response(r.error()));
      }
      Json list = Json::array();
      for (const auto& repo : *r) {
        list.push_back(repo_json(repo));
      }
      co_return co_await ex.send(json_response(200, object_with("repositories", list)));
    }
    if (m == V::post) {
      auto body = co_await ex.read_all(64 * 1024);
      if (!body) {
        co_return co_await ex.send(error_response(body.error()));
      }
      auto j = parse_json(*body, "request body");
      if (!j) {
        co_return co_await ex.send(error_response(j.error()));
      }
      registry::RepositorySpec spec;
      if (!j->is_object() || !j->contains("name") || !(*j)["name"].is_string()) {
        co_return co_await reply_error(ex, Errc::InvalidArgument,
                                       "body must be {\"name\": \"...\"}");
      }
      spec.name = (*j)["name"].get<std::string>();
      if (auto it = j->find("immutable_tags"); it != j->end()) {
        if (!it->is_boolean()) {
          co_return co_await reply_error(ex, Errc::InvalidArgument,
                                         "immutable_tags must be true or false");
        }
        spec.immutable_tags = it->get<bool>();
      }
      if (auto it = j->find("mutable_tags"); it != j->end()) {
        if (!it->is_array()) {
          co_return co_await reply_error(ex, Errc::InvalidArgument, "mutable_tags must be a list");
        }
        for (const auto& g : *it) {
          if (!g.is_string()) {
            co_return co_await reply_error(ex, Errc::InvalidArgument,
                                           "mutable_tags must be a list of strings");
          }
          spec.mutable_tag_globs.push_back(g.get<std::string>());
        }
      }
      auto r = co_await registry_.create_repository(ctx, spec);
      if (!r) {
        co_return co_await ex.send(error_response(r.error()));
      }
      co_return co_await ex.send(json_response(201, repo_json(*r)));
    }
  }
  if (rest.rfind("repositories/", 0) == 0) {
    std::string tail = rest.substr(std::string("repositories/").size());
    // <name>/images[/<ref>] or <name>
    auto pos = tail.rfind("/images");
    if (pos != std::string::npos && pos + 7 == tail.size() && m == V::get) {
      auto r = co_await registry_.list_images(ctx, tail.substr(0, pos));
      if (!r) {
        co_return co_await ex.send(error_response(r.error()));
      }
      Json list = Json::array();
      for (const auto& img : *r) {
        list.push_back(image_json(img));
      }
      co_return co_await ex.send(json_response(200, object_with("images", list)));
    }
    pos = tail.rfind("/images/");
    if (pos != std::string::npos && m == V::delete_) {
      auto s = co_await registry_.delete_image(ctx, tail.substr(0, pos), tail.substr(pos + 8));
      if (!s) {
        co_return co_await ex.send(error_response(s.error()));
      }
      co_return co_await ex.send(json_response(200, object_with("deleted", tail.substr(pos + 8))));
    }
    if (m == V::delete_ && tail.find("/images") == std::string::npos) {
      auto s = co_await registry_.delete_repository(ctx, tail);
      if (!s) {
        co_return co_await ex.send(error_response(s.error()));
      }
      co_return co_await ex.send(json_response(200, object_with("deleted", tail)));
    }
  }
  if (rest == "gc" && m == V::post) {
    auto r = co_await registry_.gc(ctx);
    if (!r) {
      co_return co_await ex.send(error_response(r.error()));
    }
    co_return co_await ex.send(json_response(200, gc_json(*r)));
  }
  co_await reply_error(ex, Errc::NotFound, "no API endpoint " + ex.method_string() + " " + path);
}

}  // namespace berth::api
