// SPDX-License-Identifier: Apache-2.0
#include "cli/services.h"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "cli/util.h"
#include "common/duration.h"
#include "common/json.h"

namespace berth::cli {

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

  std::string name;
  bool json = false;
  bool no_wait = false;
  // create/update
  std::string image, cpu, memory, health, role, auto_deploy_tags, deploy_timeout, drain_timeout;
  std::string health_interval, health_timeout, scale_in_cooldown;
  int port = 0, min_instances = -1, max_instances = -1, concurrency = -1;
  int healthy_threshold = -1, unhealthy_threshold = -1;
  bool auto_deploy = false, no_auto_deploy = false;
  std::vector<std::string> env, secret_env, unset_env;
  int limit = 20;
  // logs
  bool follow = false;
  std::string since, instance;
  int tail = 200;
};

namespace {

void add_spec_options(CLI::App* c, ServiceCommands& s, bool create) {
  auto* image = c->add_option("--image", s.image, "image to run: REPO:TAG or REPO@DIGEST");
  if (create) {
    image->required();
  }
  auto* port = c->add_option("--port", s.port, "port the app listens on (given as $PORT)");
  if (create) {
    port->default_val(8080);
  }
  c->add_flag("--auto-deploy", s.auto_deploy, "deploy every push of the image's tag");
  if (!create) {
    c->add_flag("--no-auto-deploy", s.no_auto_deploy, "stop following pushes");
  }
  c->add_option("--auto-deploy-tags", s.auto_deploy_tags,
                "deploy the highest semantic version among pushed tags matching this glob (v*)");
  c->add_option("--env", s.env, "KEY=VALUE (repeatable)");
  c->add_option("--secret-env", s.secret_env,
                "KEY=VALUE stored encrypted, never shown (repeatable)");
  if (!create) {
    c->add_option("--unset-env", s.unset_env, "remove a variable (repeatable)");
  }
  c->add_option("--cpu", s.cpu, "CPU limit in cores, e.g. 0.5");
  c->add_option("--memory", s.memory, "memory limit, e.g. 256M");
  c->add_option("--min-instances", s.min_instances, "instances always running (default 1)");
  c->add_option("--max-instances", s.max_instances, "autoscaling ceiling (default 4)");
  c->add_option("--concurrency", s.concurrency,
                "in-flight requests per instance before scaling out (default 100)");
  c->add_option("--scale-in-cooldown", s.scale_in_cooldown,
                "time load must stay low before an instance is removed (default 60s)");
  c->add_option("--health-check", s.health, "tcp (default) or http:/PATH");
  c->add_option("--health-interval", s.health_interval, "time between checks (default 5s)");
  c->add_option("--health-timeout", s.health_timeout, "time a check may take (default 2s)");
  c->add_option("--healthy-threshold", s.healthy_threshold, "passes to be healthy (default 1)");
  c->add_option("--unhealthy-threshold", s.unhealthy_threshold,
                "failures to be replaced (default 5)");
  c->add_option("--role", s.role, "pull the image with this role's rights");
  c->add_option("--deploy-timeout", s.deploy_timeout,
                "time new instances have to become healthy (default 60s)");
  c->add_option("--drain-timeout", s.drain_timeout,
                "time old instances have to finish requests (default 30s)");
  c->add_flag("--no-wait", s.no_wait, "return once the deployment is queued");
  c->add_flag("--json", s.json, "print JSON");
}

Result<Json> env_object(const std::vector<std::string>& kvs, const std::string& flag) {
  Json out = Json::object();
  for (const auto& kv : kvs) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error(Errc::InvalidArgument, flag + " expects KEY=VALUE, got '" + kv + "'");
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

Result<Json> spec_body(const ServiceCommands& s, bool create) {
  Json b = Json::object();
  if (create) {
    b["name"] = s.name;
  }
  if (!s.image.empty()) {
    b["image"] = s.image;
  }
  if (s.port != 0) {
    b["port"] = s.port;
  }
  if (s.auto_deploy) {
    b["auto_deploy"] = true;
  }
  if (s.no_auto_deploy) {
    b["auto_deploy"] = false;
    b["auto_deploy_tags"] = "";
  }
  if (!s.auto_deploy_tags.empty()) {
    b["auto_deploy_tags"] = s.auto_deploy_tags;
  }
  BERTH_ASSIGN_OR_RETURN(Json env, env_object(s.env, "--env"));
  for (const auto& k : s.unset_env) {
    env[k] = nullptr;
  }
  if (!env.empty()) {
    b["env"] = env;
  }
  BERTH_ASSIGN_OR_RETURN(Json secret, env_object(s.secret_env, "--secret-env"));
  if (!secret.empty()) {
    b["secret_env"] = secret;
  }
  if (!s.cpu.empty()) {
    char* end = nullptr;
    double v = std::strtod(s.cpu.c_str(), &end);
    if (*end != '\0') {
      return Error(Errc::InvalidArgument, "--cpu expects a number of cores like 0.5");
    }
    b["cpus"] = v;
  }
  if (!s.memory.empty()) {
    b["memory"] = s.memory;
  }
  if (s.min_instances >= 0) {
    b["min_instances"] = s.min_instances;
  }
  if (s.max_instances >= 0) {
    b["max_instances"] = s.max_instances;
  }
  if (s.concurrency >= 0) {
    b["concurrency"] = s.concurrency;
  }
  Json health = Json::object();
  if (!s.health.empty()) {
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
  if (!s.health_interval.empty()) {
    health["interval"] = s.health_interval;
  }
  if (!s.health_timeout.empty()) {
    health["timeout"] = s.health_timeout;
  }
  if (s.healthy_threshold >= 0) {
    health["healthy_threshold"] = s.healthy_threshold;
  }
  if (s.unhealthy_threshold >= 0) {
    health["unhealthy_threshold"] = s.unhealthy_threshold;
  }
  if (!health.empty()) {
    b["health_check"] = health;
  }
  if (!s.role.empty()) {
    b["role"] = s.role;
  }
  if (!s.deploy_timeout.empty()) {
    b["deploy_timeout"] = s.deploy_timeout;
  }
  if (!s.drain_timeout.empty()) {
    b["drain_timeout"] = s.drain_timeout;
  }
  if (!s.scale_in_cooldown.empty()) {
    b["scale_in_cooldown"] = s.scale_in_cooldown;
  }
  return b;
}

std::string str(const Json& j, const char* k) {
  return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
}
int64_t num(const Json& j, const char* k) {
  return j.contains(k) && j[k].is_number() ? j[k].get<int64_t>() : 0;
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
  add_spec_options(s->create, *s, true);
  s->update = svc->add_subcommand("update", "change a service's configuration (a deployment)");
  s->update->add_option("name", s->name, "service name")->required();
  add_spec_options(s->update, *s, false);
  s->ls = svc->add_subcommand("ls", "list services");
  s->ls->add_flag("--json", s->json, "print JSON");
  s->show = svc->add_subcommand("show", "a service's state, configuration and instances");
  s->show->add_option("name", s->name, "service name")->required();
  s->show->add_flag("--json", s->json, "print JSON");
  s->deploy = svc->add_subcommand("deploy",
                                  "deploy the service's image (resolved now) again, "
                                  "or another one");
  s->deploy->add_option("name", s->name, "service name")->required();
  s->deploy->add_option("--image", s->image, "REPO:TAG or REPO@DIGEST (default: the service's)");
  s->deploy->add_flag("--no-wait", s->no_wait, "return once the deployment is queued");
  s->deploy->add_flag("--json", s->json, "print JSON");
  s->rollback = svc->add_subcommand("rollback", "redeploy the previous successful revision");
  s->rollback->add_option("name", s->name, "service name")->required();
  s->rollback->add_flag("--no-wait", s->no_wait, "return once the deployment is queued");
  s->rollback->add_flag("--json", s->json, "print JSON");
  s->pause = svc->add_subcommand("pause", "stop every instance; the URL answers 503");
  s->pause->add_option("name", s->name, "service name")->required();
  s->resume = svc->add_subcommand("resume", "start a paused service again");
  s->resume->add_option("name", s->name, "service name")->required();
  s->rm = svc->add_subcommand("rm", "stop and delete a service with its history and logs");
  s->rm->add_option("name", s->name, "service name")->required();
  s->deployments = svc->add_subcommand("deployments", "deployment history, newest first");
  s->deployments->add_option("name", s->name, "service name")->required();
  s->deployments->add_option("--limit", s->limit, "at most this many")->capture_default_str();
  s->deployments->add_flag("--json", s->json, "print JSON");

  s->logs = app.add_subcommand("logs", "stdout and stderr of a service's instances");
  s->logs->add_option("name", s->name, "service name")->required();
  s->logs->add_flag("-f,--follow", s->follow, "keep printing new lines");
  s->logs->add_option("--since", s->since, "only lines this recent (90s, 5m, 2h, 1d)");
  s->logs->add_option("--instance", s->instance, "only this instance");
  s->logs->add_option("--tail", s->tail, "at most this many earlier lines")->capture_default_str();
  s->logs->add_flag("--json", s->json, "one JSON object per line");
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
      std::cout << r->dump(2) << "\n";
      return 0;
    }
    if (id == 0) {
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
    auto body = spec_body(s, true);
    if (!body) {
      return fail(body.error());
    }
    auto r = client.call("POST", "/api/v1/services", *body);
    if (r && num(*r, "deployment") == 0 && s.json) {
      std::cout << r->dump(2) << "\n";
      return 0;
    }
    if (r && num(*r, "deployment") == 0) {
      std::printf("created %s; it deploys when %s is pushed\n", s.name.c_str(),
                  str(*r, "image").c_str());
      return 0;
    }
    return deployed(r, "created");
  }
  if (*s.update) {
    auto body = spec_body(s, false);
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
    std::printf("%s %s\n", p ? "pausing" : "resuming", s.name.c_str());
    return 0;
  }
  if (*s.rm) {
    auto r = client.call("DELETE", path);
    if (!r) {
      return fail(r.error());
    }
    std::printf("deleted service %s\n", s.name.c_str());
    return 0;
  }
  if (*s.ls) {
    auto r = client.call("GET", "/api/v1/services");
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      std::cout << (*r)["services"].dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{
        {"NAME", "STATUS", "INSTANCES", "REVISION", "IMAGE", "URL"}};
    for (const auto& v : (*r)["services"]) {
      rows.push_back({str(v, "name"), str(v, "status"), std::to_string(v["instances"].size()),
                      std::to_string(num(v, "revision")), str(v, "image"), str(v, "url")});
    }
    print_table(rows);
    return 0;
  }
  if (*s.show) {
    auto r = client.call("GET", path);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      std::cout << r->dump(2) << "\n";
      return 0;
    }
    return print_service(*r);
  }
  if (*s.deployments) {
    auto r = client.call("GET", path + "/deployments?limit=" + std::to_string(s.limit));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      std::cout << (*r)["deployments"].dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{
        {"ID", "REVISION", "DIGEST", "STATUS", "TRIGGER", "CREATED", "FINISHED", "REASON"}};
    for (const auto& d : (*r)["deployments"]) {
      std::string reason = str(d, "reason");
      auto nl = reason.find('\n');
      if (nl != std::string::npos) {
        reason = reason.substr(0, nl) + " ...";
      }
      rows.push_back({std::to_string(num(d, "id")), std::to_string(num(d, "revision")),
                      short_digest(str(d, "digest")), str(d, "status"), str(d, "trigger"),
                      when(num(d, "created_at")),
                      num(d, "finished_at") ? when(num(d, "finished_at")) : "-", reason});
    }
    print_table(rows);
    return 0;
  }
  if (*s.logs) {
    return run_logs(s, client);
  }
  return std::nullopt;
}

}  // namespace berth::cli
