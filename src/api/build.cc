// SPDX-License-Identifier: Apache-2.0
// The build service over HTTP: /api/v1/build/projects and /api/v1/builds (JSON), the
// GitHub-compatible webhook POST /hooks/github/NAME (berth's git remote, /git/, is git.cc).
//
// REST requests are one blocking job each (authorize, call the service, build the response),
// as the services handlers do. A followed build log streams instead (chunked, the file read
// and the status polled on the blocking pool between timer waits).
#include "builder/build.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "api/api.h"
#include "api/build_internal.h"
#include "api/internal.h"
#include "builder/git.h"
#include "common/async.h"
#include "common/json.h"
#include "common/log.h"

namespace berth::api {

namespace {

constexpr size_t kMaxWebhookBody = 25 * 1024 * 1024;  // GitHub's payload cap
constexpr size_t kLogChunk = 256 * 1024;              // per read of a followed log
constexpr auto kLogPoll = std::chrono::milliseconds(250);

bool terminal_status(const std::string& s) {
  return s == "SUCCEEDED" || s == "FAILED" || s == "STOPPED";
}

// [a-z0-9][a-z0-9-]{0,62}: checked here too, since NAME becomes a path under the git root.

Json project_json(const builder::ProjectView& v, const std::string& base_url) {
  Json j = builder::project_to_view(v.spec);
  j["name"] = v.spec.name;
  std::string hook = base_url;
  hook += v.webhook_path;
  std::string remote = base_url;
  remote += v.git_path;
  j["webhook_url"] = hook;
  j["git_remote"] = remote;
  j["created_at"] = v.created_at;
  j["updated_at"] = v.updated_at;
  return j;
}

Json build_json(const builder::BuildView& b) {
  Json steps = Json::array();
  for (const auto& s : b.steps) {
    Json st = Json::object();
    st["line"] = s.line;
    st["text"] = s.text;
    st["cached"] = s.cached;
    st["ms"] = s.ms;
    steps.push_back(st);
  }
  Json phases = Json::object();
  for (const auto& [k, v] : b.phase_ms) {
    phases[k] = v;
  }
  Json j = Json::object();
  j["id"] = b.id;
  j["project"] = b.project;
  j["status"] = b.status;
  j["phase"] = b.phase;
  j["reason"] = b.reason;
  j["commit"] = b.commit;
  j["branch"] = b.branch;
  j["trigger"] = b.trigger;
  j["source"] = b.source;
  j["image"] = b.image;
  j["tags"] = b.tags;
  j["image_digest"] = b.image_digest;
  j["phase_ms"] = phases;
  j["steps"] = steps;
  j["created_at"] = b.created_at;
  j["started_at"] = b.started_at;
  j["finished_at"] = b.finished_at;
  return j;
}

Result<int64_t> parse_build_id(const std::string& s) {
  char* end = nullptr;
  long long id = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || id <= 0) {
    return Error(Errc::InvalidArgument, "build id must be a positive number, got '" + s + "'");
  }
  return static_cast<int64_t>(id);
}

// GET /builds/ID/logs after authorization: where the log is and how far the build got.
struct LogTarget {
  std::optional<http::Response> error;  // set: send this instead
  std::string path;
  std::string status;
};

class BuildHandler : public RestHandler {
 public:
  BuildHandler(builder::Service& svc, iam::Service& iam, bool allow_file_remotes)
      : RestHandler(iam), svc_(svc), allow_file_remotes_(allow_file_remotes) {}

  LogTarget log_target(const ApiCall& call, int64_t id) {
    LogTarget t;
    auto r = [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(auto b, svc_.get_build(id));
      BERTH_TRY(allow(call, "build:GetLogs", "project/" + b.project));
      BERTH_ASSIGN_OR_RETURN(t.path, svc_.log_path(id));
      t.status = b.status;
      return ok();
    }();
    if (!r) {
      t.error = error_response(r.error());
    }
    return t;
  }

 private:
  // A project that builds with a role, or with berth's own rights: the caller must be able to
  // hand that role over (iam:PassRole), or to push the image itself.
  Status allow_image_rights(const ApiCall& call, const builder::ProjectSpec& spec) {
    if (!spec.role.empty()) {
      return allow(call, "iam:PassRole", "role/" + spec.role);
    }
    return allow(call, "registry:Push", "repository/" + spec.repository);
  }

  Result<http::Response> dispatch(const ApiCall& call) override {
    using V = bhttp::verb;
    auto seg = segments(call.rest);
    size_t n = seg.size();
    auto m = call.method;
    if (seg[0] == "builds") {
      return builds(call, seg);
    }
    if (n < 2 || seg[0] != "build" || seg[1] != "projects") {
      return no_endpoint(call);
    }
    if (n == 2 && m == V::get) {
      BERTH_TRY(allow(call, "build:ListProjects", "project/*"));
      BERTH_ASSIGN_OR_RETURN(auto list, svc_.list_projects());
      Json arr = Json::array();
      for (const auto& v : list) {
        arr.push_back(project_json(v, call.ctx.base_url));
      }
      Json out = Json::object();
      out["projects"] = arr;
      return json_response(200, out);
    }
    if (n == 2 && m == V::post) {
      BERTH_ASSIGN_OR_RETURN(Json body, parse_object_body(call.body));
      if (!body.contains("name") || !body["name"].is_string()) {
        return Error(Errc::InvalidArgument, "name: required, a string");
      }
      BERTH_ASSIGN_OR_RETURN(auto spec, builder::project_from_request(body, builder::ProjectSpec{},
                                                                      allow_file_remotes_));
      BERTH_TRY(allow(call, "build:CreateProject", "project/" + spec.name));
      BERTH_TRY(allow_image_rights(call, spec));
      spec.owner = call.ctx.principal;
      BERTH_ASSIGN_OR_RETURN(auto created, svc_.create_project(spec));
      Json j = project_json(created.view, call.ctx.base_url);
      j["webhook_secret"] = created.webhook_secret;
      return json_response(201, j);
    }
    if (n < 3 || seg[2].empty()) {
      return no_endpoint(call);
    }
    const std::string& name = seg[2];
    std::string res = "project/" + name;
    if (n == 3 && m == V::get) {
      BERTH_TRY(allow(call, "build:GetProject", res));
      BERTH_ASSIGN_OR_RETURN(auto v, svc_.get_project(name));
      return json_response(200, project_json(v, call.ctx.base_url));
    }
    if (n == 3 && m == V::patch) {
      BERTH_ASSIGN_OR_RETURN(Json body, parse_object_body(call.body));
      if (body.contains("name") && body["name"] != Json(name)) {
        return Error(Errc::InvalidArgument, "name: a project cannot be renamed");
      }
      BERTH_TRY(allow(call, "build:UpdateProject", res));
      BERTH_ASSIGN_OR_RETURN(auto base, svc_.get_project(name));
      BERTH_ASSIGN_OR_RETURN(auto spec,
                             builder::project_from_request(body, base.spec, allow_file_remotes_));
      // Whoever changes a project takes it over: it then builds with their rights (or a role
      // they may pass), so changing its source or Dockerfile cannot borrow someone else's.
      BERTH_TRY(allow_image_rights(call, spec));
      spec.owner = call.ctx.principal;
      BERTH_ASSIGN_OR_RETURN(auto v, svc_.update_project(name, spec));
      return json_response(200, project_json(v, call.ctx.base_url));
    }
    if (n == 3 && m == V::delete_) {
      BERTH_TRY(allow(call, "build:DeleteProject", res));
      BERTH_TRY(svc_.delete_project(name));
      Json out = Json::object();
      out["deleted"] = name;
      return json_response(200, out);
    }
    if (n == 4 && seg[3] == "builds" && m == V::post) {
      BERTH_ASSIGN_OR_RETURN(Json body, parse_object_body(call.body));
      std::string commit;
      if (body.contains("commit")) {
        if (!body["commit"].is_string()) {
          return Error(Errc::InvalidArgument, "commit: expected a commit id or a ref");
        }
        commit = body["commit"].get<std::string>();
      }
      BERTH_TRY(allow(call, "build:StartBuild", res));
      std::string trigger = "manual by ";
      trigger += call.ctx.principal;
      BERTH_ASSIGN_OR_RETURN(auto b, svc_.start_build(name, commit, trigger));
      return json_response(202, build_json(b));
    }
    if (n == 4 && seg[3] == "builds" && m == V::get) {
      BERTH_TRY(allow(call, "build:ListBuilds", res));
      return list_builds(call, name);
    }
    return no_endpoint(call);
  }

  Result<http::Response> list_builds(const ApiCall& call, const std::string& project) {
    char* end = nullptr;
    std::string limit_s = call.q("limit", "50");
    long limit = std::strtol(limit_s.c_str(), &end, 10);
    if (limit_s.empty() || *end != '\0' || limit < 1 || limit > 1000) {
      return Error(Errc::InvalidArgument, "limit must be a number from 1 to 1000");
    }
    BERTH_ASSIGN_OR_RETURN(auto list, svc_.list_builds(project, static_cast<int>(limit)));
    Json arr = Json::array();
    for (const auto& b : list) {
      arr.push_back(build_json(b));
    }
    Json out = Json::object();
    out["builds"] = arr;
    return json_response(200, out);
  }

  Result<http::Response> builds(const ApiCall& call, const std::vector<std::string>& seg) {
    using V = bhttp::verb;
    size_t n = seg.size();
    auto m = call.method;
    if (n == 1 && m == V::get) {
      std::string project = call.q("project");
      BERTH_TRY(
          allow(call, "build:ListBuilds", project.empty() ? "project/*" : "project/" + project));
      return list_builds(call, project);
    }
    if (n < 2) {
      return no_endpoint(call);
    }
    BERTH_ASSIGN_OR_RETURN(int64_t id, parse_build_id(seg[1]));
    if (n == 2 && m == V::get) {
      BERTH_ASSIGN_OR_RETURN(auto b, svc_.get_build(id));
      BERTH_TRY(allow(call, "build:GetBuild", "project/" + b.project));
      return json_response(200, build_json(b));
    }
    if (n == 3 && seg[2] == "stop" && m == V::post) {
      BERTH_ASSIGN_OR_RETURN(auto b, svc_.get_build(id));
      BERTH_TRY(allow(call, "build:StopBuild", "project/" + b.project));
      BERTH_ASSIGN_OR_RETURN(auto stopped, svc_.stop_build(id));
      return json_response(200, build_json(stopped));
    }
    return no_endpoint(call);
  }

  builder::Service& svc_;
  bool allow_file_remotes_;
};

// Opens a log for send_file; fd -1 (and size 0) when it does not exist yet.
struct OpenLog {
  int fd = -1;
  uint64_t size = 0;
  std::string error;
};

OpenLog open_log(const std::string& path) {
  OpenLog o;
  o.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (o.fd < 0) {
    if (errno != ENOENT) {
      o.error = "cannot open the build log: ";
      o.error += std::strerror(errno);
    }
    return o;
  }
  struct stat st {};
  if (::fstat(o.fd, &st) == 0) {
    o.size = static_cast<uint64_t>(st.st_size);
  }
  return o;
}

// One poll of a followed log: what was appended since offset, and whether the build had
// ended before it was read (then nothing more will come once a read comes back empty).
// The length of s up to its last complete UTF-8 sequence (a lead byte whose continuation
// bytes have not all arrived is left out).
size_t utf8_complete(const std::string& s) {
  size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) {
      continue;  // a continuation byte: look further back for the lead
    }
    size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return want > back ? n - back : n;
  }
  return n;
}

struct LogPoll {
  std::string data;
  std::string status;
  bool ended = false;
  bool gone = false;  // the build (or its project) was deleted
};

LogPoll poll_log(builder::Service& svc, int64_t id, const std::string& path, uint64_t offset) {
  LogPoll p;
  auto b = svc.get_build(id);
  if (!b) {
    p.gone = true;
    return p;
  }
  p.status = b->status;
  p.ended = terminal_status(b->status);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return p;
  }
  p.data.resize(kLogChunk);
  ssize_t n = ::pread(fd, p.data.data(), p.data.size(), static_cast<off_t>(offset));
  ::close(fd);
  p.data.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return p;
}

http::Response webhook_response(const Result<builder::WebhookReply>& r) {
  if (!r) {
    return error_response(r.error());
  }
  Json j = Json::object();
  j["message"] = r->message;
  if (r->build_id != 0) {
    j["build"] = r->build_id;
  } else {
    j["build"] = nullptr;
  }
  return json_response(r->status, j);
}

}  // namespace

// ---- shared with git.cc (build_internal.h) ----

bool plausible_project_name(const std::string& n) {
  if (n.empty() || n.size() > 63 || n[0] == '-') {
    return false;
  }
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

http::Response text_response(unsigned status, std::string body) {
  http::Response r;
  r.status = status;
  r.header("Content-Type", "text/plain; charset=utf-8");
  r.body = std::move(body);
  return r;
}

awaitable<void> reply_unavailable(http::Exchange& ex, const BuildSettings& s) {
  std::string why = s.unavailable_reason.empty() ? "builds are not available on this berthd"
                                                 : s.unavailable_reason;
  return ex.send(error_response(Error(Errc::FailedPrecondition, std::move(why))));
}

awaitable<void> Api::handle_build(http::Exchange& ex, std::string rest) {
  if (build_.service == nullptr || build_.pool == nullptr) {
    co_return co_await reply_unavailable(ex, build_);
  }
  std::vector<const char*> params = {"limit", "project", "follow", "offset"};
  auto read = co_await read_call(ex, std::move(rest), std::move(params));
  if (!read) {
    co_return co_await ex.send(error_response(read.error()));
  }
  std::shared_ptr<ApiCall> call = std::move(*read);
  // GET builds/ID/logs: text, sent from the file or followed.
  auto seg = segments(call->rest);
  if (seg.size() == 3 && seg[0] == "builds" && seg[2] == "logs" &&
      call->method == bhttp::verb::get) {
    auto id = parse_build_id(seg[1]);
    if (!id) {
      co_return co_await ex.send(error_response(id.error()));
    }
    std::string offset_s = call->q("offset", "0");
    char* end = nullptr;
    unsigned long long offset = std::strtoull(offset_s.c_str(), &end, 10);
    if (offset_s.empty() || *end != '\0') {
      co_return co_await reply_error(ex, Errc::InvalidArgument, "offset must be a number");
    }
    int64_t build_id = *id;
    auto target_job = [call, svc = build_.service, iam = &iam_, files = build_.allow_file_remotes,
                       build_id] {
      BuildHandler h(*svc, *iam, files);
      return h.log_target(*call, build_id);
    };
    LogTarget t = co_await run_blocking(*build_.pool, std::move(target_job));
    if (t.error) {
      co_return co_await ex.send(std::move(*t.error));
    }
    std::string follow = call->q("follow");
    if ((follow == "1" || follow == "true") && wants_sse(ex)) {
      // The console's live log: `log` events with the text, then `end` with the status.
      struct Tail {
        uint64_t offset;
        int quiet_after_end = 0;
      };
      auto tail = std::make_shared<Tail>(Tail{offset});
      std::function<SsePoll()> poll = [svc = build_.service, build_id, path = t.path, tail] {
        SsePoll out;
        LogPoll p = poll_log(*svc, build_id, path, tail->offset);
        // A character split by the read (or by a write in progress) waits for its last bytes,
        // unless the build has ended (then what is there is all there will be).
        p.data.resize(p.ended ? p.data.size() : utf8_complete(p.data));
        if (!p.data.empty()) {
          tail->offset += p.data.size();
          out.events = sse_event(
              "log", Json{{"text", p.data}}.dump(-1, ' ', false, Json::error_handler_t::replace));
        }
        // As with the text stream: ended and a read that finds nothing, twice, is the end.
        if (p.gone || (p.ended && p.data.empty() && ++tail->quiet_after_end >= 2)) {
          out.events += sse_event("end", Json{{"status", p.gone ? "DELETED" : p.status}}.dump());
          out.done = true;
        }
        return out;
      };
      co_return co_await serve_sse(ex, *build_.pool, std::move(poll), kLogPoll, stopping_,
                                   sse_limits_);
    }
    if (follow == "1" || follow == "true") {
      co_return co_await follow_build_log(ex, build_id, t.path, offset);
    }
    auto open_job = [path = t.path] { return open_log(path); };
    OpenLog f = co_await run_blocking(*build_.pool, std::move(open_job));
    if (!f.error.empty()) {
      co_return co_await reply_error(ex, Errc::Internal, f.error);
    }
    http::Response head = text_response(200, "");
    head.header("X-Berth-Build-Status", t.status);
    uint64_t from = std::min<uint64_t>(offset, f.size);
    head.header("X-Berth-Log-Offset", std::to_string(f.size));
    if (f.fd < 0) {
      co_return co_await ex.send(std::move(head));
    }
    co_await ex.send_file(std::move(head), f.fd, from, f.size - from);
    ::close(f.fd);
    co_return;
  }
  auto job = [call, svc = build_.service, iam = &iam_, files = build_.allow_file_remotes] {
    BuildHandler h(*svc, *iam, files);
    return h.serve(*call);
  };
  http::Response r = co_await run_blocking(*build_.pool, std::move(job));
  co_await ex.send(std::move(r));
}

awaitable<void> Api::follow_build_log(http::Exchange& ex, int64_t id, std::string path,
                                      uint64_t offset) {
  http::Response head = text_response(200, "");
  head.header("Cache-Control", "no-store");
  head.header("X-Content-Type-Options", "nosniff");
  if (!co_await ex.send_head(std::move(head))) {
    co_return;
  }
  asio::steady_timer timer(co_await asio::this_coro::executor);
  int quiet_after_end = 0;
  while (true) {
    auto poll = [svc = build_.service, id, path, offset] {
      return poll_log(*svc, id, path, offset);
    };
    LogPoll p = co_await run_blocking(*build_.pool, std::move(poll));
    size_t got = p.data.size();
    if (got > 0) {
      offset += got;
      if (!co_await ex.write_chunk(std::move(p.data))) {
        co_return;  // the client went away
      }
      if (got == kLogChunk) {
        continue;  // more is waiting
      }
    }
    if (p.gone || stopping_->load()) {
      break;
    }
    // The status is read before the file: once the build has ended and a read finds nothing,
    // the log is complete. One more poll catches a last line written just after the status.
    if (p.ended && got == 0 && ++quiet_after_end >= 2) {
      break;
    }
    timer.expires_after(kLogPoll);
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  co_await ex.end_body();
}

awaitable<void> Api::github_webhook(http::Exchange& ex) {
  if (build_.service == nullptr || build_.pool == nullptr) {
    co_return co_await reply_unavailable(ex, build_);
  }
  const std::string prefix = "/hooks/github/";
  std::string name = ex.path().substr(prefix.size());
  if (ex.method() != bhttp::verb::post) {
    http::Response r = error_response(Error(Errc::InvalidArgument,
                                            "webhooks are POST requests (GitHub: content type "
                                            "application/json, event push)"));
    r.status = 405;
    r.header("Allow", "POST");
    co_return co_await ex.send(std::move(r));
  }
  if (!plausible_project_name(name)) {
    std::string msg = "build project ";
    msg += name;
    msg += " does not exist";
    co_return co_await reply_error(ex, Errc::NotFound, std::move(msg));
  }
  // Unauthenticated callers: find the project before reading up to 25 MiB for it.
  auto exists = [svc = build_.service, name]() -> Status {
    auto p = svc->get_project(name);
    if (!p && p.error().code() == Errc::NotFound) {
      std::string msg = "build project ";
      msg += name;
      msg += " does not exist";
      return Error(Errc::NotFound, std::move(msg));
    }
    return p ? ok() : Status(p.error());
  };
  Status known = co_await run_blocking(*build_.pool, std::move(exists));
  if (!known) {
    co_return co_await ex.send(error_response(known.error()));
  }
  auto body = co_await ex.read_all(kMaxWebhookBody);
  if (!body) {
    co_return co_await ex.send(error_response(body.error()));
  }
  auto job = [svc = build_.service, name, event = ex.header("X-GitHub-Event"),
              signature = ex.header("X-Hub-Signature-256"),
              payload = std::move(*body)]() -> http::Response {
    auto r = svc->github_webhook(name, event, signature, payload);
    auto lg = log::get("build");
    if (r) {
      lg->info("webhook project={} event={} status={} build={} message={}", name, event, r->status,
               r->build_id, r->message);
    } else {
      lg->info("webhook project={} event={} error={}", name, event, r.error().message());
    }
    return webhook_response(r);
  };
  http::Response r = co_await run_blocking(*build_.pool, std::move(job));
  co_await ex.send(std::move(r));
}

}  // namespace berth::api