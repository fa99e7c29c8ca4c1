// SPDX-License-Identifier: Apache-2.0
// `berth dns healthcheck ...` over /api/v1/dns/healthchecks. Durations go to the API as
// typed ("10s"); the API validates them.
#include "cli/dns_health.h"

#include <cstdio>

#include "cli/table.h"
#include "cli/util.h"
#include "common/url.h"

namespace berth::cli {

struct DnsHealthCommands {
  CLI::App *create = nullptr, *ls = nullptr, *show = nullptr, *rm = nullptr;
  bool json = false;
  std::string id, type, target, host, path, interval, timeout;
  int64_t failure_threshold = 3;
  CLI::Option* threshold_opt = nullptr;
};

namespace {

const std::string kChecks = "/api/v1/dns/healthchecks";

std::string check_path(const std::string& id) { return kChecks + "/" + url::encode(id); }

const Json& status_of(const Json& c) {
  static const Json kEmpty = Json::object();
  return c.contains("Status") && c["Status"].is_object() ? c["Status"] : kEmpty;
}

std::string last_checked(const Json& c) {
  int64_t t = num(status_of(c), "LastChecked");
  return t == 0 ? "-" : when(t);
}

std::string last_error(const Json& c) {
  std::string e = str(status_of(c), "LastError");
  return e.empty() ? "-" : e;
}

// "HTTP 127.0.0.1:8080 web.localhost/healthz" style summary of what is probed.
std::string probe_of(const Json& c) {
  std::string out = str(c, "Type") + " " + str(c, "Target");
  if (str(c, "Type") != "TCP") {
    std::string host = str(c, "Host");
    out += " GET " + (host.empty() ? "" : "//" + host) + str(c, "Path");
  }
  return out;
}

int print_check(const Json& c, bool json) {
  if (json) {
    return print_json(c);
  }
  const Json& st = status_of(c);
  std::printf("health check %s\n", str(c, "Id").c_str());
  std::printf("  probe:        %s\n", probe_of(c).c_str());
  std::printf("  every:        %llds (timeout %llds, threshold %lld)\n",
              static_cast<long long>(num(c, "Interval")), static_cast<long long>(num(c, "Timeout")),
              static_cast<long long>(num(c, "FailureThreshold")));
  std::printf("  state:        %s\n", str(st, "State").c_str());
  std::printf("  last checked: %s", last_checked(c).c_str());
  if (!str(st, "LastResult").empty()) {
    std::printf(" (%s, %lld in a row)", str(st, "LastResult").c_str(),
                static_cast<long long>(num(st, "Consecutive")));
  }
  std::printf("\n  last error:   %s\n", last_error(c).c_str());
  return 0;
}

}  // namespace

std::shared_ptr<DnsHealthCommands> add_dns_health_commands(CLI::App& dns) {
  auto s = std::make_shared<DnsHealthCommands>();
  auto* hc = dns.add_subcommand("healthcheck",
                                "health checks berth runs; record sets name them with "
                                "--health-check");
  hc->require_subcommand(1);
  auto id_arg = [&](CLI::App* c) { c->add_option("id", s->id, "health check id")->required(); };

  s->create = hc->add_subcommand("create", "create a health check (probing starts at once)");
  id_arg(s->create);
  s->create->add_option("--type", s->type, "HTTP, HTTPS or TCP")->required();
  s->create->add_option("--target", s->target, "ADDR:PORT to probe (127.0.0.1:8080, [::1]:8443)")
      ->required();
  s->create->add_option("--host", s->host,
                        "HTTP(S): the Host header and TLS server name (default: the target)");
  s->create->add_option("--path", s->path, "HTTP(S): the path to GET (default /)");
  s->create->add_option("--interval", s->interval, "time between probes (default 10s, min 1s)");
  s->create->add_option("--timeout", s->timeout, "a probe's time limit (default 2s)");
  s->threshold_opt = s->create->add_option(
      "--failure-threshold", s->failure_threshold,
      "consecutive failures to turn unhealthy, and successes to turn healthy again (default 3)");
  add_json_flag(s->create, s->json);

  s->ls = hc->add_subcommand("ls", "list health checks and their state");
  add_json_flag(s->ls, s->json);
  s->show = hc->add_subcommand("show", "show a health check and its last result");
  id_arg(s->show);
  add_json_flag(s->show, s->json);
  s->rm = hc->add_subcommand("rm", "delete a health check no record set uses");
  id_arg(s->rm);
  add_json_flag(s->rm, s->json);
  return s;
}

std::optional<int> run_dns_health_commands(DnsHealthCommands& s, const api::Client& client) {
  if (*s.create) {
    Json body = {{"Id", s.id}, {"Type", s.type}, {"Target", s.target}};
    if (!s.host.empty()) {
      body["Host"] = s.host;
    }
    if (!s.path.empty()) {
      body["Path"] = s.path;
    }
    if (!s.interval.empty()) {
      body["Interval"] = s.interval;
    }
    if (!s.timeout.empty()) {
      body["Timeout"] = s.timeout;
    }
    if (s.threshold_opt->count() > 0) {
      body["FailureThreshold"] = s.failure_threshold;
    }
    auto r = client.call("POST", kChecks, body);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("created health check %s: %s every %llds\n", str(*r, "Id").c_str(),
                probe_of(*r).c_str(), static_cast<long long>(num(*r, "Interval")));
    return 0;
  }
  if (*s.ls) {
    return print_list(client.call("GET", kChecks), "health_checks", s.json,
                      {field("ID", "Id"),
                       field("TYPE", "Type"),
                       field("TARGET", "Target"),
                       {"STATE", [](const Json& c) { return str(status_of(c), "State"); }},
                       {"LAST CHECKED", last_checked},
                       {"LAST ERROR", last_error}});
  }
  if (*s.show) {
    auto r = client.call("GET", check_path(s.id));
    return r ? print_check(*r, s.json) : fail(r.error());
  }
  if (*s.rm) {
    auto r = client.call("DELETE", check_path(s.id));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("deleted health check %s\n", s.id.c_str());
    return 0;
  }
  return std::nullopt;
}

}  // namespace berth::cli
