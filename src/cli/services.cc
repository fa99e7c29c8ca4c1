// SPDX-License-Identifier: Apache-2.0
#include "cli/services.h"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "cli/table.h"
#include "cli/util.h"
#include "common/duration.h"
#include "common/json.h"

namespace berth::cli {

// The spec options of `create` and `update`; only the given ones go into the request, so an
// update changes nothing the user did not name (and the API, not the CLI, holds the defaults).
struct SpecFlags {
  CLI::Option* image = nullptr;
  CLI::Option* port = nullptr;
  CLI::Option* auto_deploy = nullptr;
  CLI::Option* no_auto_deploy = nullptr;  // update only
  CLI::Option* auto_deploy_tags = nullptr;
  CLI::Option* env = nullptr;
  CLI::Option* secret_env = nullptr;
  CLI::Option* unset_env = nullptr;  // update only
  CLI::Option* cpu = nullptr;
  CLI::Option* memory = nullptr;
  CLI::Option* min_instances = nullptr;
  CLI::Option* max_instances = nullptr;
  CLI::Option* concurrency = nullptr;
  CLI::Option* scale_in_cooldown = nullptr;
  CLI::Option* health = nullptr;
  CLI::Option* health_interval = nullptr;
  CLI::Option* health_timeout = nullptr;
  CLI::Option* healthy_threshold = nullptr;
  CLI::Option* unhealthy_threshold = nullptr;
  CLI::Option* role = nullptr;
  CLI::Option* deploy_timeout = nullptr;
  CLI::Option* drain_timeout = nullptr;
  CLI::Option* seccomp = nullptr;
  CLI::Option* pids_limit = nullptr;
  CLI::Option* read_only = nullptr;
  CLI::Option* no_read_only = nullptr;  // update only
  CLI::Option* protocol = nullptr;
};

struct ServiceCommands {
  CLI::App* create = nullptr;
  CLI::App* update = nullptr;
  CLI::App* ls = nullptr;
  CLI::App* show = nullptr;
  CLI::App* deploy = nullptr;
  CLI::App* rollback = nullptr;
  CLI::App* pause = nullptr;
  CLI::App* resume = nullptr;
  CLI::App* rm = nullptr;
  CLI::App* deployments = nullptr;
  CLI::App* logs = nullptr;
  SpecFlags create_flags, update_flags;

  std::string name;
  bool json = false;
  bool no_wait = false;
  // create/update: read only when their flag was given
  std::string image, cpu, memory, health, role, auto_deploy_tags, deploy_timeout, drain_timeout;
  std::string health_interval, health_timeout, scale_in_cooldown, seccomp, protocol;
  int64_t pids_limit = 0;
  bool read_only = false, no_read_only = false;
  int port = 0, min_instances = 0, max_instances = 0, concurrency = 0;
  int healthy_threshold = 0, unhealthy_threshold = 0;
  bool auto_deploy = false, no_auto_deploy = false;
  std::vector<std::string> env, secret_env, unset_env;
  int limit = 20;
  // logs
  bool follow = false;
  std::string since, instance;
  int tail = 200;
};

namespace {

void add_spec_options(CLI::App* c, ServiceCommands& s, SpecFlags& f, bool create) {
  f.image = c->add_option("--image", s.image, "image to run: REPO:TAG or REPO@DIGEST");
  if (create) {
    f.image->required();
  }
  f.port = c->add_option("--port", s.port,
                         create ? "port the app listens on, given as $PORT (default 8080)"
                                : "port the app listens on, given as $PORT");
  f.auto_deploy =
      c->add_flag("--auto-deploy", s.auto_deploy, "deploy every push of the image's tag");
  if (!create) {
    f.no_auto_deploy = c->add_flag("--no-auto-deploy", s.no_auto_deploy, "stop following pushes");
  }
  f.auto_deploy_tags = c->add_option(
      "--auto-deploy-tags", s.auto_deploy_tags,
      "deploy the highest semantic version among pushed tags matching this glob (v*)");
  f.env = add_repeatable(c, "--env", s.env, "KEY=VALUE", "an environment variable (repeatable)");
  f.secret_env = add_repeatable(c, "--secret-env", s.secret_env, "KEY=VALUE",
                                "a variable stored encrypted, never shown (repeatable)");
  if (!create) {
    f.unset_env = add_repeatable(c, "--unset-env", s.unset_env, "NAME",
                                 "remove a variable, plain or secret (repeatable)");
  }
  f.cpu = c->add_option("--cpu", s.cpu, "CPU limit in cores, e.g. 0.5");
  f.memory = c->add_option("--memory", s.memory, "memory limit, e.g. 256M");
  f.min_instances =
      c->add_option("--min-instances", s.min_instances, "instances always running (default 1)");
  f.max_instances =
      c->add_option("--max-instances", s.max_instances, "autoscaling ceiling (default 4)");
  f.concurrency = c->add_option("--concurrency", s.concurrency,
                                "in-flight requests per instance before scaling out (default 100)");
  f.scale_in_cooldown =
      c->add_option("--scale-in-cooldown", s.scale_in_cooldown,
                    "time load must stay low before an instance is removed (default 60s)");
  f.health = c->add_option("--health-check", s.health, "tcp (default) or http:/PATH");
  f.health_interval =
      c->add_option("--health-interval", s.health_interval, "time between checks (default 5s)");
  f.health_timeout =
      c->add_option("--health-timeout", s.health_timeout, "time a check may take (default 2s)");
  f.healthy_threshold =
      c->add_option("--healthy-threshold", s.healthy_threshold, "passes to be healthy (default 1)");
  f.unhealthy_threshold = c->add_option("--unhealthy-threshold", s.unhealthy_threshold,
                                        "failures to be replaced (default 5)");
  f.role = c->add_option("--role", s.role, "pull the image with this role's rights");
  f.deploy_timeout = c->add_option("--deploy-timeout", s.deploy_timeout,
                                   "time new instances have to become healthy (default 60s)");
  f.drain_timeout = c->add_option("--drain-timeout", s.drain_timeout,
                                  "time old instances have to finish requests (default 30s)");
  f.seccomp = c->add_option("--seccomp", s.seccomp,
                            "default (Docker's profile) or unconfined (needs service:Privileged)");
  f.seccomp->check(CLI::IsMember({"default", "unconfined"}));
  f.pids_limit = c->add_option("--pids-limit", s.pids_limit,
                               "processes and threads per instance (default 1024, 0: no limit)");
  f.read_only =
      c->add_flag("--read-only", s.read_only, "read-only root filesystem, with a tmpfs at /tmp");
  if (!create) {
    f.no_read_only = c->add_flag("--no-read-only", s.no_read_only, "writable root filesystem");
  }
  f.protocol = c->add_option("--protocol", s.protocol,
                             create ? "how the router speaks to instances: http1 (default) or h2c "
                                      "(HTTP/2 cleartext, for gRPC)"
                                    : "how the router speaks to instances: http1 or h2c");
  f.protocol->check(CLI::IsMember({"http1", "h2c"}));
  c->add_flag("--no-wait", s.no_wait, "return once the deployment is queued");
  add_json_flag(c, s.json);
}

bool given(const CLI::Option* o) { return o != nullptr && o->count() > 0; }

Result<Json> spec_body(const ServiceCommands& s, const SpecFlags& f, bool create) {
  Json b = Json::object();
  if (create) {
    b["name"] = s.name;
  }
  if (given(f.image)) {
    b["image"] = s.image;
  }
  if (given(f.port)) {
    b["port"] = s.port;  // 0 too: the API's range error beats a silent default
  }
  if (given(f.auto_deploy)) {
    b["auto_deploy"] = true;
  }
  if (given(f.no_auto_deploy)) {
    b["auto_deploy"] = false;
    b["auto_deploy_tags"] = "";
  }
  if (given(f.auto_deploy_tags)) {
    b["auto_deploy_tags"] = s.auto_deploy_tags;
  }
  if (given(f.env)) {
    BERTH_ASSIGN_OR_RETURN(b["env"], kv_object(s.env, "--env"));
  }
  if (given(f.secret_env)) {
    BERTH_ASSIGN_OR_RETURN(b["secret_env"], kv_object(s.secret_env, "--secret-env"));
  }
  if (given(f.unset_env)) {
    // A name is plain or secret, never both: null removes it from whichever holds it.
    for (const auto& k : s.unset_env) {
      b["env"][k] = nullptr;
      b["secret_env"][k] = nullptr;
    }
  }
  if (given(f.cpu)) {
    char* end = nullptr;
    double v = std::strtod(s.cpu.c_str(), &end);
    if (s.cpu.empty() || *end != '\0') {
      return Error(Errc::InvalidArgument, "--cpu expects a number of cores like 0.5");
    }
    b["cpus"] = v;
  }
  if (given(f.memory)) {
    b["memory"] = s.memory;
  }
  if (given(f.min_instances)) {
    b["min_instances"] = s.min_instances;
  }
  if (given(f.max_instances)) {
    b["max_instances"] = s.max_instances;
  }
  if (given(f.concurrency)) {
    b["concurrency"] = s.concurrency;
  }
  Json health = Json::object();
  if (given(f.health)) {
    if (s.health == "tcp") {
      health["type"] = "tcp";
    } else if (s.health.rfind("http:", 0) == 0) {
      health["type"] = "http";
      health["path"] = s.health.substr(5);
    } else {
      return Error(Errc::InvalidArgument,
                   "--health-check expects tcp or http:/PATH, got '" + s.health + "'");
    }
  }
  if (given(f.health_interval)) {
    health["interval"] = s.health_interval;
  }
  if (given(f.health_timeout)) {
    health["timeout"] = s.health_timeout;
  }
  if (given(f.healthy_threshold)) {
    health["healthy_threshold"] = s.healthy_threshold;
  }
  if (given(f.unhealthy_threshold)) {
    health["unhealthy_threshold"] = s.unhealthy_threshold;
  }
  if (!health.empty()) {
    b["health_check"] = health;
  }
  if (given(f.role)) {
    b["role"] = s.role;
  }
  if (given(f.deploy_timeout)) {
    b["deploy_timeout"] = s.deploy_timeout;
  }
  if (given(f.drain_timeout)) {
    b["drain_timeout"] = s.drain_timeout;
  }
  if (given(f.scale_in_cooldown)) {
    b["scale_in_cooldown"] = s.scale_in_cooldown;
  }
  if (given(f.seccomp)) {
    b["seccomp"] = s.seccomp;
  }
  if (given(f.pids_limit)) {
    b["pids_limit"] = s.pids_limit;
  }
  if (given(f.protocol)) {
    b["protocol"] = s.protocol;
  }
  if (given(f.read_only) && given(f.no_read_only)) {
    return Error(Errc::InvalidArgument, "--read-only and --no-read-only exclude each other");
  }
  if (given(f.read_only)) {
    b["read_only"] = true;
  }
  if (given(f.no_read_only)) {
    b["read_only"] = false;
  }
  return b;
}

std::string short_digest(const std::string& d) { return d.size() > 19 ? d.substr(0, 19) : d; }

// Follows a deployment to its end, printing its phases on stderr. 0 when it succeeded.
int wait_deployment(const api::Client& client, int64_t id, bool quiet) {
  std::string last;
  auto start = std::chrono::steady_clock::now();
  while (true) {
    auto d = client.call("GET", "/api/v1/deployments/" + std::to_string(id));
    if (!d) {
      return fail(d.error());
    }
    std::string status = str(*d, "status");
    if (status != last && !quiet) {
      std::fprintf(stderr, "deployment %lld: %s\n", static_cast<long long>(id), status.c_str());
      last = status;
    }
    if (status == "SUCCEEDED") {
      return 0;
    }
    if (status == "FAILED" || status == "SUPERSEDED") {
      std::fprintf(stderr, "%s\n", str(*d, "reason").c_str());
      return status == "FAILED" ? 1 : 0;
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::minutes(30)) {
      std::fprintf(stderr, "berth: still %s after 30 minutes; see berth service deployments\n",
                   status.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
}

std::string format_time_ms(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S", std::gmtime(&t));
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03lld", buf, static_cast<long long>(ms % 1000));
  return out;
}

int print_service(const Json& v) {
  std::printf("name:       %s\n", str(v, "name").c_str());
  std::printf("status:     %s\n", str(v, "status").c_str());
  if (!str(v, "reason").empty()) {
    std::printf("reason:     %s\n", str(v, "reason").c_str());
  }
  std::printf("url:        %s\n", str(v, "url").c_str());
  std::printf("image:      %s\n", str(v, "image").c_str());
  std::printf("revision:   %lld (%s)\n", static_cast<long long>(num(v, "revision")),
              str(v, "digest").c_str());
  std::printf("restarts:   %lld\n", static_cast<long long>(num(v, "restarts")));
  const Json& spec = v["spec"];
  std::printf("port:       %lld\n", static_cast<long long>(num(spec, "port")));
  std::printf("instances:  min %lld, max %lld, concurrency %lld\n",
              static_cast<long long>(num(spec, "min_instances")),
              static_cast<long long>(num(spec, "max_instances")),
              static_cast<long long>(num(spec, "concurrency")));
  std::string follow = spec.value("auto_deploy", false) ? "follows " + str(spec, "image") : "off";
  if (!str(spec, "auto_deploy_tags").empty()) {
    follow = "highest version matching " + str(spec, "auto_deploy_tags");
  }
  std::printf("auto-deploy: %s\n", follow.c_str());
  if (spec.contains("seccomp")) {
    long long pids = static_cast<long long>(num(spec, "pids_limit"));
    std::printf("confinement: seccomp %s, pids %s, rootfs %s\n", str(spec, "seccomp").c_str(),
                pids == 0 ? "unlimited" : std::to_string(pids).c_str(),
                spec.value("read_only", false) ? "read-only" : "writable");
  }
  if (str(spec, "protocol") == "h2c") {
    std::printf("protocol:   h2c (HTTP/2 to instances)\n");
  }
  if (!str(spec, "role").empty()) {
    std::printf("role:       %s\n", str(spec, "role").c_str());
  }
  if (spec.contains("env") && !spec["env"].empty()) {
    std::printf("env:\n");
    for (const auto& [k, val] : spec["env"].items()) {
      std::printf("  %s=%s\n", k.c_str(), val.get<std::string>().c_str());
    }
  }
  if (spec.contains("secret_env") && !spec["secret_env"].empty()) {
    std::printf("secret env: ");
    for (const auto& k : spec["secret_env"]) {
      std::printf("%s ", k.get<std::string>().c_str());
    }
    std::printf("(values hidden)\n");
  }
  std::vector<std::vector<std::string>> rows{
      {"INSTANCE", "REVISION", "STATE", "IN-FLIGHT", "STARTED"}};
  for (const auto& i : v["instances"]) {
    rows.push_back({str(i, "id"), std::to_string(num(i, "revision")), str(i, "state"),
                    std::to_string(num(i, "in_flight")), when(num(i, "started_at"))});
  }
  std::printf("\n");
  print_table(rows);
  return 0;
}

int run_logs(ServiceCommands& s, const api::Client& client) {
  std::string base = "/api/v1/services/" + s.name + "/logs?";
  int64_t since = 0;
  if (!s.since.empty()) {
    auto parsed = parse_duration(s.since);
    int64_t d = parsed ? parsed->count() : -1;
    if (d < 0) {
      return fail(Error(Errc::InvalidArgument, "--since expects a duration like 90s, 5m or 2h"));
    }
    since = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count() -
            d;
  }
  std::string filter = s.instance.empty() ? "" : "&instance=" + s.instance;
  auto r = client.call("GET", base + "since_ms=" + std::to_string(since) +
                                  "&limit=" + std::to_string(s.tail) + filter);
  if (!r) {
    return fail(r.error());
  }
  auto print = [&](const Json& lines) {
    for (const auto& l : lines) {
      if (s.json) {
        std::cout << l.dump() << "\n";
      } else {
        std::printf("%s %s %s\n", format_time_ms(num(l, "time_ms")).c_str(),
                    str(l, "instance").c_str(), str(l, "text").c_str());
      }
    }
    std::fflush(stdout);
  };
  print((*r)["lines"]);
  if (!s.follow) {
    return 0;
  }
  int64_t offset = num(*r, "offset");
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto next = client.call("GET", base + "offset=" + std::to_string(offset) + filter);
    if (!next) {
      return fail(next.error());
    }
    print((*next)["lines"]);
    offset = num(*next, "offset");
  }
}

}  // namespace

std::shared_ptr<ServiceCommands> add_service_commands(CLI::App& app) {
  auto s = std::make_shared<ServiceCommands>();
  auto* svc = app.add_subcommand("service", "services: images running behind the router");
  svc->require_subcommand(1);
  s->create = svc->add_subcommand("create", "create a service and deploy its image");
  s->create->add_option("name", s->name, "service name (it answers at NAME.<apps_domain>)")
      ->required();
  add_spec_options(s->create, *s, s->create_flags, true);
  s->update = svc->add_subcommand("update", "change a service's configuration (a deployment)");
  s->update->add_option("name", s->name, "service name")->required();
  add_spec_options(s->update, *s, s->update_flags, false);
  s->ls = svc->add_subcommand("ls", "list services");
  add_json_flag(s->ls, s->json);
  s->show = svc->add_subcommand("show", "a service's state, configuration and instances");
  s->show->add_option("name", s->name, "service name")->required();
  add_json_flag(s->show, s->json);
  s->deploy = svc->add_subcommand("deploy",
                                  "deploy the service's image (resolved now) again, "
                                  "or another one");
  s->deploy->add_option("name", s->name, "service name")->required();
  s->deploy->add_option("--image", s->image, "REPO:TAG or REPO@DIGEST (default: the service's)");
  s->deploy->add_flag("--no-wait", s->no_wait, "return once the deployment is queued");
  add_json_flag(s->deploy, s->json);
  s->rollback = svc->add_subcommand("rollback", "redeploy the previous successful revision");
  s->rollback->add_option("name", s->name, "service name")->required();
  s->rollback->add_flag("--no-wait", s->no_wait, "return once the deployment is queued");
  add_json_flag(s->rollback, s->json);
  s->pause = svc->add_subcommand("pause", "stop every instance; the URL answers 503");
  s->pause->add_option("name", s->name, "service name")->required();
  add_json_flag(s->pause, s->json);
  s->resume = svc->add_subcommand("resume", "start a paused service again");
  s->resume->add_option("name", s->name, "service name")->required();
  add_json_flag(s->resume, s->json);
  s->rm = svc->add_subcommand("rm", "stop and delete a service with its history and logs");
  s->rm->add_option("name", s->name, "service name")->required();
  add_json_flag(s->rm, s->json);
  s->deployments = svc->add_subcommand("deployments", "deployment history, newest first");
  s->deployments->add_option("name", s->name, "service name")->required();
  s->deployments->add_option("--limit", s->limit, "at most this many")->capture_default_str();
  add_json_flag(s->deployments, s->json);

  s->logs = app.add_subcommand("logs", "stdout and stderr of a service's instances");
  s->logs->add_option("name", s->name, "service name")->required();
  s->logs->add_flag("-f,--follow", s->follow, "keep printing new lines");
  s->logs->add_option("--since", s->since, "only lines this recent (90s, 5m, 2h, 1d)");
  s->logs->add_option("--instance", s->instance, "only this instance");
  s->logs->add_option("--tail", s->tail, "at most this many earlier lines")->capture_default_str();
  add_json_flag(s->logs, s->json, "one JSON object per line");
  return s;
}

std::optional<int> run_service_commands(ServiceCommands& s, const api::Client& client) {
  const std::string path = "/api/v1/services/" + s.name;
  auto deployed = [&](const Result<Json>& r, const char* verb) -> int {
    if (!r) {
      return fail(r.error());
    }
    int64_t id = num(*r, "deployment");
    if (s.json && s.no_wait) {
      return print_json(*r);
    }
    if (id == 0) {
      if (s.json) {
        // Nothing to deploy yet: the service as it is now, as after a deployment.
        auto v = client.call("GET", path);
        return v ? print_json(*v) : fail(v.error());
      }
      std::printf("%s %s\n", verb, s.name.c_str());
      return 0;
    }
    std::fprintf(stderr, "%s %s: deployment %lld\n", verb, s.name.c_str(),
                 static_cast<long long>(id));
    int rc = s.no_wait ? 0 : wait_deployment(client, id, false);
    if (rc == 0 && !s.no_wait) {
      auto v = client.call("GET", path);
      if (v && s.json) {
        std::cout << v->dump(2) << "\n";
      } else if (v) {
        std::printf("%s is serving revision %lld at %s\n", s.name.c_str(),
                    static_cast<long long>(num(*v, "revision")), str(*v, "url").c_str());
      }
    }
    return rc;
  };
  if (*s.create) {
    auto body = spec_body(s, s.create_flags, true);
    if (!body) {
      return fail(body.error());
    }
    auto r = client.call("POST", "/api/v1/services", *body);
    if (r && num(*r, "deployment") == 0 && s.json) {
      return print_json(*r);
    }
    if (r && num(*r, "deployment") == 0) {
      std::printf("created %s; it deploys when %s is pushed\n", s.name.c_str(),
                  str(*r, "image").c_str());
      return 0;
    }
    return deployed(r, "created");
  }
  if (*s.update) {
    auto body = spec_body(s, s.update_flags, false);
    if (!body) {
      return fail(body.error());
    }
    return deployed(client.call("PATCH", path, *body), "updated");
  }
  if (*s.deploy) {
    Json body = Json::object();
    if (!s.image.empty()) {
      body["image"] = s.image;
    }
    return deployed(client.call("POST", path + "/deploy", body), "deploying");
  }
  if (*s.rollback) {
    return deployed(client.call("POST", path + "/rollback", Json::object()), "rolling back");
  }
  if (*s.pause || *s.resume) {
    bool p = s.pause->parsed();
    auto r = client.call("POST", path + (p ? "/pause" : "/resume"), Json::object());
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("%s %s\n", p ? "pausing" : "resuming", s.name.c_str());
    return 0;
  }
  if (*s.rm) {
    auto r = client.call("DELETE", path);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("deleted service %s\n", s.name.c_str());
    return 0;
  }
  if (*s.ls) {
    return print_list(
        client.call("GET", "/api/v1/services"), "services", s.json,
        {field("NAME", "name"),
         field("STATUS", "status"),
         {"INSTANCES",
          [](const Json& v) {
            return std::to_string(v.contains("instances") ? v["instances"].size() : 0);
          }},
         {"REVISION", [](const Json& v) { return std::to_string(num(v, "revision")); }},
         field("IMAGE", "image"),
         field("URL", "url")});
  }
  if (*s.show) {
    auto r = client.call("GET", path);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    return print_service(*r);
  }
  if (*s.deployments) {
    auto first_line = [](const Json& d) {
      std::string reason = str(d, "reason");
      auto nl = reason.find('\n');
      return nl == std::string::npos ? reason : reason.substr(0, nl) + " ...";
    };
    auto time = [](const char* key) {
      return [key](const Json& d) { return num(d, key) ? when(num(d, key)) : "-"; };
    };
    return print_list(
        client.call("GET", path + "/deployments?limit=" + std::to_string(s.limit)), "deployments",
        s.json,
        {{"ID", [](const Json& d) { return std::to_string(num(d, "id")); }},
         {"REVISION", [](const Json& d) { return std::to_string(num(d, "revision")); }},
         {"DIGEST", [](const Json& d) { return short_digest(str(d, "digest")); }},
         field("STATUS", "status"),
         field("TRIGGER", "trigger"),
         {"CREATED", time("created_at")},
         {"FINISHED", time("finished_at")},
         {"REASON", first_line}});
  }
  if (*s.logs) {
    return run_logs(s, client);
  }
  return std::nullopt;
}

}  // namespace berth::cli
