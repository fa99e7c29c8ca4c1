// SPDX-License-Identifier: Apache-2.0
#include "cli/build.h"

#include <chrono>
#include <cstdio>
#include <functional>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/table.h"
#include "cli/util.h"
#include "common/asio.h"
#include "common/json.h"
#include "common/url.h"

namespace berth::cli {

namespace {

// The project options of `create` and `update`; only the given ones go into the request.
struct ProjectFlags {
  CLI::Option* git = nullptr;
  CLI::Option* branch = nullptr;
  CLI::Option* repo = nullptr;
  CLI::Option* tag = nullptr;
  CLI::Option* dockerfile = nullptr;
  CLI::Option* context = nullptr;
  CLI::Option* role = nullptr;
  CLI::Option* build_args = nullptr;
  CLI::Option* secret_build_args = nullptr;
  CLI::Option* git_username = nullptr;
  CLI::Option* git_password = nullptr;
  CLI::Option* unset_build_args = nullptr;  // update only
};

}  // namespace

struct BuildCommands {
  CLI::App* project_create = nullptr;
  CLI::App* project_ls = nullptr;
  CLI::App* project_show = nullptr;
  CLI::App* project_update = nullptr;
  CLI::App* project_rm = nullptr;
  CLI::App* start = nullptr;
  CLI::App* ls = nullptr;
  CLI::App* show = nullptr;
  CLI::App* logs = nullptr;
  CLI::App* stop = nullptr;
  ProjectFlags create_flags, update_flags;

  std::string name;  // project
  int64_t id = 0;    // build
  bool json = false;
  bool no_wait = false;
  bool follow = false;
  std::string commit;
  std::string project_filter;
  int limit = 20;
  // project fields
  std::string git, branch, repo, tag, dockerfile, context, role, git_username, git_password;
  std::vector<std::string> build_args, secret_build_args, unset_build_args;
};

namespace {

void add_project_options(CLI::App* c, BuildCommands& s, ProjectFlags& f, bool update) {
  f.git = c->add_option("--git", s.git,
                        "git remote to build from (https://, ssh://, user@host:path); without "
                        "it, builds come from pushes to berth's own remote");
  f.branch = c->add_option("--branch", s.branch,
                           "branch (or glob, release/*) whose pushes build (default main)");
  f.repo = c->add_option("--repo", s.repo, "repository the image is pushed to, e.g. web/app");
  f.tag = c->add_option("--tag", s.tag, "tag pushed besides the commit's (default latest)");
  f.dockerfile = c->add_option("--dockerfile", s.dockerfile,
                               "Dockerfile path in the repository (default Dockerfile)");
  f.context = c->add_option("--context", s.context, "build context directory (default .)");
  f.role = c->add_option("--role", s.role, "pull and push with this role's rights");
  f.build_args =
      add_repeatable(c, "--build-arg", s.build_args, "KEY=VALUE", "a build arg (repeatable)");
  f.secret_build_args = add_repeatable(c, "--secret-build-arg", s.secret_build_args, "KEY=VALUE",
                                       "a build arg stored encrypted, masked in logs (repeatable)");
  f.git_username =
      c->add_option("--git-username", s.git_username,
                    "user for an https remote (with a token: any, e.g. x-access-token)");
  f.git_password = c->add_option("--git-password", s.git_password,
                                 "password or token for an https remote (stored encrypted)");
  if (update) {
    f.unset_build_args = add_repeatable(c, "--unset-build-arg", s.unset_build_args, "NAME",
                                        "remove a build arg, plain or secret (repeatable)");
  }
  add_json_flag(c, s.json);
}

Result<Json> project_body(const BuildCommands& s, const ProjectFlags& f, bool create) {
  Json b = Json::object();
  if (create) {
    b["name"] = s.name;
  }
  auto put = [&](CLI::Option* o, const char* key, const std::string& v) {
    if (o->count() > 0) {
      b[key] = v;
    }
  };
  put(f.git, "git", s.git);
  put(f.branch, "branch", s.branch);
  put(f.repo, "repository", s.repo);
  put(f.tag, "tag", s.tag);
  put(f.dockerfile, "dockerfile", s.dockerfile);
  put(f.context, "context", s.context);
  put(f.role, "role", s.role);
  put(f.git_username, "git_username", s.git_username);
  put(f.git_password, "git_password", s.git_password);
  if (f.build_args->count() > 0) {
    BERTH_ASSIGN_OR_RETURN(b["build_args"], kv_object(s.build_args, "--build-arg"));
  }
  if (f.secret_build_args->count() > 0) {
    BERTH_ASSIGN_OR_RETURN(b["secret_build_args"],
                           kv_object(s.secret_build_args, "--secret-build-arg"));
  }
  if (f.unset_build_args != nullptr) {
    for (const auto& k : s.unset_build_args) {
      b["build_args"][k] = nullptr;
      b["secret_build_args"][k] = nullptr;
    }
  }
  return b;
}

std::string seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string short_commit(const std::string& c) { return c.size() > 7 ? c.substr(0, 7) : c; }

std::string duration(const Json& b) {
  int64_t start = num(b, "started_at");
  int64_t end = num(b, "finished_at");
  if (start == 0) {
    return "-";
  }
  if (end == 0) {
    end = static_cast<int64_t>(std::time(nullptr));
  } else if (b.contains("phase_ms") && b["phase_ms"].is_object() && !b["phase_ms"].empty()) {
    // Finished: the phases' own milliseconds say more than whole-second timestamps.
    int64_t ms = 0;
    for (const auto& [phase, v] : b["phase_ms"].items()) {
      ms += v.is_number() ? v.get<int64_t>() : 0;
    }
    return seconds(ms);
  }
  return std::to_string(std::max<int64_t>(0, end - start)) + "s";
}

std::string join(const Json& arr, const std::string& sep) {
  std::string out;
  if (!arr.is_array()) {
    return out;
  }
  for (const auto& x : arr) {
    if (!out.empty()) {
      out += sep;
    }
    out += x.is_string() ? x.get<std::string>() : x.dump();
  }
  return out;
}

void print_project(const Json& p) {
  std::printf("name:         %s\n", str(p, "name").c_str());
  std::string git = str(p, "git");
  std::printf("git:          %s\n", git.empty() ? "(berth's remote only)" : git.c_str());
  if (!str(p, "git_username").empty() || !str(p, "git_password").empty()) {
    std::printf("git auth:     user %s, password %s\n", str(p, "git_username").c_str(),
                str(p, "git_password").empty() ? "(none)" : str(p, "git_password").c_str());
  }
  std::printf("branch:       %s\n", str(p, "branch").c_str());
  std::printf("image:        %s:%s\n", str(p, "repository").c_str(), str(p, "tag").c_str());
  std::printf("dockerfile:   %s (context %s)\n", str(p, "dockerfile").c_str(),
              str(p, "context").c_str());
  // Without a role a build has its owner's rights (who created or last changed the project).
  std::string role = str(p, "role");
  if (role.empty()) {
    std::string owner = str(p, "owner");
    role = owner.find('/') == std::string::npos
               ? "(none: berth's own rights)"
               : "(none: builds with its owner's rights, " + owner + ")";
  }
  std::printf("role:         %s\n", role.c_str());
  if (p.contains("build_args") && p["build_args"].is_object() && !p["build_args"].empty()) {
    std::printf("build args:\n");
    for (const auto& [k, v] : p["build_args"].items()) {
      std::printf("  %s=%s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str() : "");
    }
  }
  if (p.contains("secret_build_args") && !p["secret_build_args"].empty()) {
    const Json& sb = p["secret_build_args"];
    std::string names;
    if (sb.is_object()) {
      for (const auto& [k, v] : sb.items()) {
        names += (names.empty() ? "" : " ") + k;
      }
    } else {
      names = join(sb, " ");
    }
    std::printf("secret build args: %s (values hidden)\n", names.c_str());
  }
  std::printf("webhook URL:  %s\n", str(p, "webhook_url").c_str());
  std::printf("git remote:   %s\n", str(p, "git_remote").c_str());
  std::printf("created:      %s\n", when(num(p, "created_at")).c_str());
  if (num(p, "updated_at") != 0) {
    std::printf("updated:      %s\n", when(num(p, "updated_at")).c_str());
  }
}

void print_build(const Json& b) {
  std::printf("build:      %lld (project %s)\n", static_cast<long long>(num(b, "id")),
              str(b, "project").c_str());
  std::printf("status:     %s\n", str(b, "status").c_str());
  std::printf("phase:      %s\n", str(b, "phase").empty() ? "-" : str(b, "phase").c_str());
  if (!str(b, "reason").empty()) {
    std::printf("reason:     %s\n", str(b, "reason").c_str());
  }
  std::printf("trigger:    %s\n", str(b, "trigger").c_str());
  if (!str(b, "branch").empty()) {
    std::printf("branch:     %s\n", str(b, "branch").c_str());
  }
  std::printf("commit:     %s\n", str(b, "commit").empty() ? "-" : str(b, "commit").c_str());
  if (!str(b, "source").empty()) {
    std::printf("source:     %s\n", str(b, "source").c_str());
  }
  std::printf("image:      %s\n", str(b, "image").c_str());
  if (b.contains("tags") && !b["tags"].empty()) {
    std::printf("tags:       %s\n", join(b["tags"], ", ").c_str());
  }
  std::printf("digest:     %s\n",
              str(b, "image_digest").empty() ? "-" : str(b, "image_digest").c_str());
  std::printf("created:    %s\n", when(num(b, "created_at")).c_str());
  if (num(b, "started_at") != 0) {
    std::printf("started:    %s\n", when(num(b, "started_at")).c_str());
  }
  if (num(b, "finished_at") != 0) {
    std::printf("finished:   %s (%s)\n", when(num(b, "finished_at")).c_str(), duration(b).c_str());
  }
  if (b.contains("phase_ms") && b["phase_ms"].is_object() && !b["phase_ms"].empty()) {
    std::string phases;
    for (const char* ph : {"SOURCE", "BUILD", "PUSH"}) {
      if (b["phase_ms"].contains(ph)) {
        phases += (phases.empty() ? "" : ", ") + std::string(ph) + " " +
                  seconds(b["phase_ms"][ph].get<int64_t>());
      }
    }
    for (const auto& [k, v] : b["phase_ms"].items()) {
      if (k != "SOURCE" && k != "BUILD" && k != "PUSH" && v.is_number()) {
        phases += (phases.empty() ? "" : ", ") + k + " " + seconds(v.get<int64_t>());
      }
    }
    std::printf("phases:     %s\n", phases.c_str());
  }
  if (b.contains("steps") && b["steps"].is_array() && !b["steps"].empty()) {
    std::vector<std::vector<std::string>> rows{{"STEP", "LINE", "CACHED", "TIME", "INSTRUCTION"}};
    int i = 0;
    for (const auto& st : b["steps"]) {
      bool cached = st.value("cached", false);
      rows.push_back({std::to_string(++i), std::to_string(num(st, "line")), cached ? "yes" : "no",
                      cached ? "-" : seconds(num(st, "ms")), str(st, "text")});
    }
    std::printf("\n");
    print_table(rows);
  }
}

// A non-JSON answer (the log text); the API's {"error":{code,message}} body becomes an Error.
Result<std::string> get_text(const api::Client& client, const std::string& path) {
  auto r = client.request("GET", path);
  if (!r) {
    return r.error();
  }
  if (r->status < 400) {
    return std::move(r->body);
  }
  Json j = Json::parse(r->body, nullptr, false);
  if (!j.is_discarded() && j.contains("error") && j["error"].is_object()) {
    std::string code = j["error"].value("code", "internal");
    Errc errc = Errc::Internal;
    for (int i = 0; i <= static_cast<int>(Errc::Internal); ++i) {
      if (code == errc_name(static_cast<Errc>(i))) {
        errc = static_cast<Errc>(i);
      }
    }
    return Error(errc, j["error"].value("message", "unknown error"));
  }
  Errc code = r->status == 401   ? Errc::Unauthenticated
              : r->status == 403 ? Errc::PermissionDenied
              : r->status == 404 ? Errc::NotFound
                                 : Errc::Internal;
  return Error(code, "server answered " + std::to_string(r->status) + ": " + r->body);
}

// Where log text goes as it arrives.
using LogSink = std::function<void(std::string_view)>;

LogSink to_file(std::FILE* f) {
  return [f](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), f);
    std::fflush(f);
  };
}

// Log text as one JSON object per line on stdout ({"line":"..."}), as `berth logs --json`
// prints instance lines; a last line without a newline is printed by flush().
class JsonLines {
 public:
  void write(std::string_view text) {
    buf_.append(text);
    size_t nl = 0;
    while ((nl = buf_.find('\n')) != std::string::npos) {
      emit(buf_.substr(0, nl));
      buf_.erase(0, nl + 1);
    }
  }
  void flush() {
    if (!buf_.empty()) {
      emit(buf_);
      buf_.clear();
    }
  }

 private:
  static void emit(const std::string& line) {
    Json j = Json::object();
    j["line"] = line;
    // Build output is not always UTF-8: replace what JSON cannot hold rather than throw.
    std::printf("%s\n", j.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    std::fflush(stdout);
  }
  std::string buf_;
};

// Streams GET /api/v1/builds/ID/logs?follow=1 (chunked, until the build ends) to out from
// byte offset, reconnecting from where it stopped when the connection drops; offset advances
// by what was printed.
Status stream_log(const api::Client& client, const std::string& authorization, int64_t id,
                  const LogSink& out, uint64_t& offset) {
  const std::string& server = client.server();  // "http://HOST[:PORT]"
  std::string hp = server.substr(7);
  std::string host = hp, port = "80";
  auto colon = hp.rfind(':');
  if (colon != std::string::npos && hp.back() != ']') {
    host = hp.substr(0, colon);
    port = hp.substr(colon + 1);
  }
  if (host.size() > 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  int failures = 0;
  while (true) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    beast::error_code ec;
    asio::ip::tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, port, ec);
    if (!ec) {
      stream.expires_after(std::chrono::seconds(30));
      stream.connect(results, ec);
    }
    std::string target =
        "/api/v1/builds/" + std::to_string(id) + "/logs?follow=1&offset=" + std::to_string(offset);
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
    req.set(bhttp::field::host, host + ":" + port);
    req.set(bhttp::field::user_agent, "berth-cli");
    if (!authorization.empty()) {
      req.set(bhttp::field::authorization, authorization);
    }
    if (!ec) {
      bhttp::write(stream, req, ec);
    }
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (!ec) {
      bhttp::read_header(stream, buf, parser, ec);
    }
    if (ec) {
      if (++failures > 5) {
        return Error(Errc::Unavailable, "following the log of build " + std::to_string(id) +
                                            " at " + server + " failed: " + ec.message());
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (parser.get().result_int() != 200) {
      // An error answer (not found, denied): ask again without following, to decode it.
      auto again = get_text(client, target.substr(0, target.find('?')));
      if (!again) {
        return again.error();
      }
      return Error(Errc::Internal, "server answered " + std::to_string(parser.get().result_int()));
    }
    // No timeout while following: a quiet build step can take long. The server ends the body
    // when the build ends.
    stream.expires_never();
    char chunk[16 * 1024];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      bhttp::read(stream, buf, parser, ec);
      if (ec == bhttp::error::need_buffer) {
        ec = {};
      }
      size_t n = sizeof chunk - parser.get().body().size;
      if (n > 0) {
        out(std::string_view(chunk, n));
        offset += n;
        failures = 0;
      }
      if (ec) {
        break;
      }
    }
    if (!ec && parser.is_done()) {
      return ok();
    }
    if (++failures > 5) {
      return Error(Errc::Unavailable,
                   "following the log of build " + std::to_string(id) + " failed: " + ec.message());
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// Waits for a build (following its log on out) and reports how it ended: 0 when it
// succeeded, 1 when it failed or was stopped.
int wait_build(const api::Client& client, const std::string& authorization, int64_t id,
               std::FILE* out, bool json) {
  std::string path = "/api/v1/builds/" + std::to_string(id);
  Result<Json> b = Error(Errc::Internal, "unset");
  uint64_t offset = 0;
  // The log ends with the build. It can also end early (berthd restarting): then follow on.
  while (true) {
    if (auto s = stream_log(client, authorization, id, to_file(out), offset); !s) {
      return fail(s.error());
    }
    b = client.call("GET", path);
    if (!b) {
      return fail(b.error());
    }
    std::string st = str(*b, "status");
    if (st == "SUCCEEDED" || st == "FAILED" || st == "STOPPED") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::string status = str(*b, "status");
  if (json) {
    print_json(*b);
  }
  if (status == "SUCCEEDED") {
    if (!json) {
      std::string repo = str(*b, "image");
      auto colon = repo.rfind(':');
      if (colon != std::string::npos && repo.find('/', colon) == std::string::npos) {
        repo = repo.substr(0, colon);
      }
      std::string pushed;
      for (const auto& t : (*b)["tags"]) {
        pushed += (pushed.empty() ? "" : " ") + repo + ":" + t.get<std::string>();
      }
      if (pushed.empty()) {
        pushed = str(*b, "image");
      }
      std::printf("build %lld SUCCEEDED: pushed %s (%s)\n", static_cast<long long>(id),
                  pushed.c_str(), str(*b, "image_digest").c_str());
    }
    return 0;
  }
  std::string reason = str(*b, "reason");
  if (status == "FAILED") {
    std::fprintf(stderr, "build %lld FAILED in %s: %s\n", static_cast<long long>(id),
                 str(*b, "phase").c_str(), reason.c_str());
  } else {
    std::fprintf(stderr, "build %lld %s%s%s\n", static_cast<long long>(id), status.c_str(),
                 reason.empty() ? "" : ": ", reason.c_str());
  }
  return 1;
}

}  // namespace

std::shared_ptr<BuildCommands> add_build_commands(CLI::App& app) {
  auto s = std::make_shared<BuildCommands>();
  auto* b =
      app.add_subcommand("build", "build projects: Dockerfile builds from git, pushed as images");
  b->require_subcommand(1);
  auto* project =
      b->add_subcommand("project", "build projects (a git source, a Dockerfile, a target)");
  project->require_subcommand(1);

  s->project_create = project->add_subcommand(
      "create", "create a project; prints its webhook URL and secret and its git remote");
  s->project_create->add_option("name", s->name, "project name ([a-z0-9-], up to 63)")->required();
  add_project_options(s->project_create, *s, s->create_flags, false);
  s->project_ls = project->add_subcommand("ls", "list projects");
  add_json_flag(s->project_ls, s->json);
  s->project_show = project->add_subcommand("show", "a project's configuration (secrets hidden)");
  s->project_show->add_option("name", s->name, "project name")->required();
  add_json_flag(s->project_show, s->json);
  s->project_update = project->add_subcommand("update", "change the options given");
  s->project_update->add_option("name", s->name, "project name")->required();
  add_project_options(s->project_update, *s, s->update_flags, true);
  s->project_rm = project->add_subcommand(
      "rm", "delete a project with its builds, logs and git remote (images stay)");
  s->project_rm->add_option("name", s->name, "project name")->required();
  add_json_flag(s->project_rm, s->json);

  s->start = b->add_subcommand("start", "build a project now and follow the build to its end");
  s->start->add_option("project", s->name, "project name")->required();
  s->start->add_option("--commit", s->commit,
                       "commit id or ref to build (default: the head of the project's branch)");
  s->start->add_flag("--no-wait", s->no_wait, "return once the build is queued");
  add_json_flag(s->start, s->json, "print the build as JSON (the log goes to stderr)");
  s->ls = b->add_subcommand("ls", "list builds, newest first");
  s->ls->add_option("--project", s->project_filter, "only this project's builds");
  s->ls->add_option("--limit", s->limit, "at most this many")->capture_default_str();
  add_json_flag(s->ls, s->json);
  s->show = b->add_subcommand("show", "a build: status, phase, commit, image, timings, steps");
  s->show->add_option("id", s->id, "build id")->required();
  add_json_flag(s->show, s->json);
  s->logs = b->add_subcommand("logs", "a build's log");
  s->logs->add_option("id", s->id, "build id")->required();
  s->logs->add_flag("-f,--follow", s->follow, "keep printing until the build ends");
  add_json_flag(s->logs, s->json, "one JSON object per log line: {\"line\":TEXT}");
  s->stop = b->add_subcommand("stop", "stop a queued or running build");
  s->stop->add_option("id", s->id, "build id")->required();
  add_json_flag(s->stop, s->json);
  return s;
}

std::optional<int> run_build_commands(BuildCommands& s, const api::Client& client,
                                      const std::string& access_key_id, const std::string& secret) {
  std::string authorization =
      access_key_id.empty() ? "" : "Basic " + b64::encode(access_key_id + ":" + secret);
  const std::string project_path = "/api/v1/build/projects/" + s.name;
  const std::string build_path = "/api/v1/builds/" + std::to_string(s.id);
  if (*s.project_create) {
    auto body = project_body(s, s.create_flags, true);
    if (!body) {
      return fail(body.error());
    }
    auto r = client.call("POST", "/api/v1/build/projects", *body);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("created build project %s\n", s.name.c_str());
    std::printf("webhook URL:    %s\n", str(*r, "webhook_url").c_str());
    std::printf("webhook secret: %s\n", str(*r, "webhook_secret").c_str());
    std::printf("git remote:     %s\n", str(*r, "git_remote").c_str());
    std::fprintf(stderr,
                 "The webhook secret is shown only now. On GitHub: Settings > Webhooks > Add "
                 "webhook, content type application/json, the push event.\n");
    return 0;
  }
  if (*s.project_update) {
    auto body = project_body(s, s.update_flags, false);
    if (!body) {
      return fail(body.error());
    }
    auto r = client.call("PATCH", project_path, *body);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      print_json(*r);
    } else {
      std::printf("updated build project %s\n", s.name.c_str());
    }
    return 0;
  }
  if (*s.project_ls) {
    return print_list(
        client.call("GET", "/api/v1/build/projects"), "projects", s.json,
        {field("NAME", "name"),
         {"IMAGE", [](const Json& p) { return str(p, "repository") + ":" + str(p, "tag"); }},
         field("BRANCH", "branch"),
         {"GIT",
          [](const Json& p) { return str(p, "git").empty() ? "(berth remote)" : str(p, "git"); }},
         field("ROLE", "role"),
         {"CREATED", [](const Json& p) { return when(num(p, "created_at")); }}});
  }
  if (*s.project_show) {
    auto r = client.call("GET", project_path);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    print_project(*r);
    return 0;
  }
  if (*s.project_rm) {
    auto r = client.call("DELETE", project_path);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("deleted build project %s\n", s.name.c_str());
    return 0;
  }
  if (*s.start) {
    Json body = Json::object();
    if (!s.commit.empty()) {
      body["commit"] = s.commit;
    }
    auto r = client.call("POST", project_path + "/builds", body);
    if (!r) {
      return fail(r.error());
    }
    int64_t id = num(*r, "id");
    if (s.no_wait) {
      if (s.json) {
        print_json(*r);
      } else {
        std::printf("build %lld queued for %s\n", static_cast<long long>(id), s.name.c_str());
      }
      return 0;
    }
    std::fprintf(stderr, "build %lld queued for %s (%s)\n", static_cast<long long>(id),
                 s.name.c_str(), str(*r, "trigger").c_str());
    return wait_build(client, authorization, id, s.json ? stderr : stdout, s.json);
  }
  if (*s.ls) {
    std::string path = "/api/v1/builds?limit=" + std::to_string(s.limit);
    if (!s.project_filter.empty()) {
      path += "&project=" + url::encode(s.project_filter);
    }
    return print_list(client.call("GET", path), "builds", s.json,
                      {{"ID", [](const Json& b) { return std::to_string(num(b, "id")); }},
                       field("PROJECT", "project"),
                       field("STATUS", "status"),
                       field("PHASE", "phase"),
                       {"COMMIT",
                        [](const Json& b) {
                          return str(b, "commit").empty() ? "-" : short_commit(str(b, "commit"));
                        }},
                       field("TRIGGER", "trigger"),
                       {"CREATED", [](const Json& b) { return when(num(b, "created_at")); }},
                       {"DURATION", [](const Json& b) { return duration(b); }}});
  }
  if (*s.show) {
    auto r = client.call("GET", build_path);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    print_build(*r);
    return 0;
  }
  if (*s.logs) {
    JsonLines lines;
    LogSink out = to_file(stdout);
    if (s.json) {
      out = [&lines](std::string_view text) { lines.write(text); };
    }
    if (s.follow) {
      uint64_t offset = 0;
      auto st = stream_log(client, authorization, s.id, out, offset);
      lines.flush();
      return st ? 0 : fail(st.error());
    }
    auto text = get_text(client, build_path + "/logs");
    if (!text) {
      return fail(text.error());
    }
    out(*text);
    lines.flush();
    return 0;
  }
  if (*s.stop) {
    auto r = client.call("POST", build_path + "/stop", Json::object());
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      print_json(*r);
    } else {
      std::printf("build %lld: %s\n", static_cast<long long>(s.id), str(*r, "status").c_str());
    }
    return 0;
  }
  return std::nullopt;
}

}  // namespace berth::cli
