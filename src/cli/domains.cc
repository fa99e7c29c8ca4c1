// SPDX-License-Identifier: Apache-2.0
// `berth domain link|ls|show|unlink|renew` over /api/v1/domains, and `berth ca export` over
// /api/v1/ca. link prints each step as berthd reports it and ends with the final status; its
// exit code is 0 for ACTIVE (or PENDING_DNS, which waits for the user's records) and 1 when a
// name FAILED.
#include "cli/domains.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "cli/table.h"
#include "cli/util.h"
#include "common/duration.h"
#include "common/url.h"

namespace berth::cli {

struct DomainCommands {
  CLI::App *link = nullptr, *ls = nullptr, *show = nullptr, *unlink = nullptr, *renew = nullptr,
           *ca_export = nullptr;
  std::string service, name;
  bool www = false;
  bool registry = false;  // link/unlink --registry DOMAIN: berthd's own registry listener
  bool force = false;     // renew --force
  bool json = false;
  std::string wait = "5m";
};

namespace {

const std::string kDomains = "/api/v1/domains";

std::string expiry(const Json& d) {
  int64_t t = num(d, "expires_at");
  return t == 0 ? "-" : when(t);
}

// What a domain is linked to: the service's name, or "(registry)".
std::string target(const Json& d) {
  return d.value("registry", false) ? std::string("(registry)") : str(d, "service");
}

// link and unlink take SERVICE DOMAIN, or --registry DOMAIN (which CLI11 puts in service).
std::optional<Error> settle_args(DomainCommands& s) {
  if (s.registry) {
    if (!s.name.empty()) {
      return Error(Errc::InvalidArgument, "--registry takes one DOMAIN and no service");
    }
    s.name = std::move(s.service);
    s.service.clear();
  }
  if (s.name.empty()) {
    return Error(Errc::InvalidArgument, s.registry ? "--registry needs a DOMAIN"
                                                   : "needs SERVICE DOMAIN (or --registry DOMAIN)");
  }
  return std::nullopt;
}

void print_domain(const Json& d) {
  std::printf("%s\n", str(d, "name").c_str());
  std::printf("  service      %s\n", target(d).c_str());
  std::printf("  status       %s\n", str(d, "status").c_str());
  std::printf("  issuer       %s\n", str(d, "issuer").c_str());
  std::printf("  expires      %s\n", expiry(d).c_str());
  if (!str(d, "serial").empty()) {
    std::printf("  serial       %s\n", str(d, "serial").c_str());
  }
  if (num(d, "renew_at") != 0) {
    std::printf("  renews       %s\n", when(num(d, "renew_at")).c_str());
  }
  if (!str(d, "last_error").empty()) {
    std::printf("  last error   %s\n", str(d, "last_error").c_str());
  }
  if (num(d, "retry_at") != 0) {
    std::printf("  next try     %s\n", when(num(d, "retry_at")).c_str());
  }
  std::printf("  steps\n");
  for (const auto& s : d.value("steps", Json::array())) {
    std::printf("    %-12s %-8s %s\n", str(s, "step").c_str(), str(s, "status").c_str(),
                str(s, "detail").c_str());
  }
  auto recs = d.value("records", Json::array());
  if (!recs.empty()) {
    std::printf("  records created by link\n");
    for (const auto& r : recs) {
      std::printf("    %s %s (zone %s)\n", str(r, "name").c_str(), str(r, "type").c_str(),
                  str(r, "zone").c_str());
    }
  }
  auto req = d.value("required_records", Json::array());
  if (!req.empty()) {
    std::printf("  create these records at your DNS host\n");
    for (const auto& r : req) {
      std::printf("    %s\n", r.get<std::string>().c_str());
    }
  }
}

// Where following a link stops: done, failed, waiting for the user's DNS records, or waiting
// for an ACME server that could not be reached (berthd tries again on its own).
bool settled(const Json& d) {
  std::string status = str(d, "status");
  return status == "ACTIVE" || status == "FAILED" || status == "PENDING_DNS" ||
         (status == "PENDING_CERTIFICATE" && !str(d, "last_error").empty());
}

// Polls the linked names, printing every step as it changes, until each has settled.
int follow_link(const api::Client& client, std::vector<std::string> names,
                std::chrono::milliseconds wait) {
  std::map<std::string, std::string> shown;  // name/step -> "status detail" last printed
  auto deadline = std::chrono::steady_clock::now() + wait;
  std::map<std::string, Json> last;
  for (;;) {
    bool all = true;
    for (const auto& n : names) {
      auto r = client.call("GET", kDomains + "/" + url::encode(n));
      if (!r) {
        return fail(r.error());
      }
      last[n] = *r;
      for (const auto& s : r->value("steps", Json::array())) {
        std::string key = n + "/" + str(s, "step");
        std::string now = str(s, "status") + " " + str(s, "detail");
        if (str(s, "status") != "pending" || !str(s, "detail").empty()) {
          if (shown[key] != now) {
            shown[key] = now;
            std::printf("%s: %s %s%s%s\n", n.c_str(), str(s, "step").c_str(),
                        str(s, "status").c_str(), str(s, "detail").empty() ? "" : ": ",
                        str(s, "detail").c_str());
            std::fflush(stdout);
          }
        }
      }
      all = all && settled(*r);
    }
    if (all || std::chrono::steady_clock::now() >= deadline) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  int rc = 0;
  for (const auto& n : names) {
    const auto& d = last[n];
    std::string status = str(d, "status");
    std::printf("%s: %s%s%s\n", n.c_str(), status.c_str(), str(d, "last_error").empty() ? "" : ": ",
                str(d, "last_error").c_str());
    if (status == "PENDING_DNS") {
      std::printf("  create these records at your DNS host; berth checks them and goes on:\n");
      for (const auto& r : d.value("required_records", Json::array())) {
        std::printf("    %s\n", r.get<std::string>().c_str());
      }
    } else if (status == "PENDING_CERTIFICATE" && settled(d)) {
      std::printf("  berth tries again every minute; follow it with `berth domain show %s`\n",
                  n.c_str());
    } else if (!settled(d)) {
      std::printf("  still working: follow it with `berth domain show %s`\n", n.c_str());
    }
    if (status == "FAILED") {
      rc = 1;
    }
  }
  return rc;
}

// `domain renew` of an ACTIVE name: polls until the certificate's serial changes (renewed) or a
// retry is scheduled (the attempt failed; the old certificate keeps serving).
int follow_renewal(const api::Client& client, const Json& before, std::chrono::milliseconds wait) {
  const std::string name = str(before, "name");
  std::printf("%s: renewing the certificate that expires %s\n", name.c_str(),
              expiry(before).c_str());
  std::fflush(stdout);
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto r = client.call("GET", kDomains + "/" + url::encode(name));
    if (!r) {
      return fail(r.error());
    }
    if (str(*r, "serial") != str(before, "serial")) {
      std::printf("%s: renewed, expires %s (serial %s)\n", name.c_str(), expiry(*r).c_str(),
                  str(*r, "serial").c_str());
      return 0;
    }
    if (num(*r, "retry_at") != 0) {
      std::printf("%s: %s\n", name.c_str(), str(*r, "last_error").c_str());
      std::printf("  the certificate that expires %s keeps serving; berth tries again at %s\n",
                  expiry(*r).c_str(), when(num(*r, "retry_at")).c_str());
      return 1;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::printf("%s: still renewing; follow it with `berth domain show %s`\n", name.c_str(),
                  name.c_str());
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

std::shared_ptr<DomainCommands> add_domain_commands(CLI::App& app) {
  auto s = std::make_shared<DomainCommands>();
  auto* domain = app.add_subcommand("domain", "custom domains over HTTPS (docs/domains.md)");
  domain->require_subcommand(1);
  s->link = domain->add_subcommand(
      "link", "serve a service on a domain over HTTPS: DNS records, certificate, route");
  s->link->add_option("service", s->service, "service name (none with --registry)");
  s->link->add_option("domain", s->name, "domain name (example.com, *.preview.example.com)");
  s->link->add_flag("--www", s->www, "also link www.DOMAIN");
  s->link->add_flag("--registry", s->registry,
                    "link DOMAIN to berthd's own registry/API listener (docker login DOMAIN)");
  s->link->add_option("--wait", s->wait, "how long to follow the steps (0s: do not wait)")
      ->capture_default_str();
  add_json_flag(s->link, s->json);
  s->ls = domain->add_subcommand("ls", "list linked domains");
  s->ls->add_option("service", s->service, "only this service's domains");
  add_json_flag(s->ls, s->json);
  s->show = domain->add_subcommand("show", "a domain's status, steps, records and certificate");
  s->show->add_option("domain", s->name, "domain name")->required();
  add_json_flag(s->show, s->json);
  s->unlink = domain->add_subcommand(
      "unlink", "stop serving a domain: removes its route, the records link made, its certificate");
  s->unlink->add_option("service", s->service, "service name (none with --registry)");
  s->unlink->add_option("domain", s->name, "domain name");
  s->unlink->add_flag("--registry", s->registry, "DOMAIN is linked to the registry");
  add_json_flag(s->unlink, s->json);
  s->renew = domain->add_subcommand(
      "renew", "renew a domain's certificate now, or try a pending link's steps again now");
  s->renew->add_option("domain", s->name, "domain name")->required();
  s->renew->add_flag("--force", s->force,
                     "renew an ACME certificate issued less than a day ago too (rate limits)");
  s->renew->add_option("--wait", s->wait, "how long to follow it (0s: do not wait)")
      ->capture_default_str();
  add_json_flag(s->renew, s->json);

  auto* ca = app.add_subcommand("ca", "berth's own certificate authority");
  ca->require_subcommand(1);
  s->ca_export = ca->add_subcommand("export", "print the root certificate (PEM), to trust locally");
  add_json_flag(s->ca_export, s->json);
  return s;
}

std::optional<int> run_domain_commands(DomainCommands& s, const api::Client& client) {
  if (*s.link) {
    auto wait = parse_duration(s.wait);
    if (!wait) {
      return fail(Error(Errc::InvalidArgument, "--wait: " + wait.error().message()));
    }
    if (auto bad = settle_args(s)) {
      return fail(*bad);
    }
    if (s.registry && s.www) {
      return fail(Error(Errc::InvalidArgument, "--www cannot be combined with --registry"));
    }
    Json body = s.registry ? Json{{"registry", true}, {"name", s.name}}
                           : Json{{"service", s.service}, {"name", s.name}, {"www", s.www}};
    auto r = client.call("POST", kDomains, body);
    if (!r) {
      return fail(r.error());
    }
    std::vector<std::string> names;
    for (const auto& d : r->value("domains", Json::array())) {
      names.push_back(str(d, "name"));
    }
    if (s.json) {
      return print_json(*r);
    }
    for (const auto& n : names) {
      std::printf("%s: linking to %s\n", n.c_str(),
                  s.registry ? "the registry" : ("service " + s.service).c_str());
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*wait);
    return follow_link(client, names, ms);
  }
  if (*s.ls) {
    std::string path = kDomains + (s.service.empty() ? "" : "?service=" + url::encode(s.service));
    return print_list(client.call("GET", path), "domains", s.json,
                      {field("DOMAIN", "name"),
                       {"SERVICE", target},
                       field("STATUS", "status"),
                       field("ISSUER", "issuer"),
                       {"EXPIRES", expiry},
                       field("LAST ERROR", "last_error")});
  }
  if (*s.show) {
    auto r = client.call("GET", kDomains + "/" + url::encode(s.name));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    print_domain(*r);
    return 0;
  }
  if (*s.unlink) {
    if (auto bad = settle_args(s)) {
      return fail(*bad);
    }
    auto r = client.call("DELETE", kDomains + "/" + url::encode(s.name) +
                                       (s.registry ? std::string("?registry=true")
                                                   : "?service=" + url::encode(s.service)));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("unlinked %s from %s\n", s.name.c_str(),
                s.registry ? "the registry" : ("service " + s.service).c_str());
    for (const auto& k : r->value("kept_records", Json::array())) {
      std::printf("kept %s: changed since link, so it is yours now\n",
                  k.get<std::string>().c_str());
    }
    return 0;
  }
  if (*s.renew) {
    auto wait = parse_duration(s.wait);
    if (!wait) {
      return fail(Error(Errc::InvalidArgument, "--wait: " + wait.error().message()));
    }
    Json body = Json::object();
    if (s.force) {
      body["force"] = true;
    }
    auto r = client.call("POST", kDomains + "/" + url::encode(s.name) + "/renew", body);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*wait);
    if (str(*r, "status") == "ACTIVE") {
      return follow_renewal(client, *r, ms);
    }
    std::printf("%s: trying its waiting steps again now\n", str(*r, "name").c_str());
    return follow_link(client, {str(*r, "name")}, ms);
  }
  if (*s.ca_export) {
    auto r = client.call("GET", "/api/v1/ca");
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::fputs(str(*r, "root_pem").c_str(), stdout);
    return 0;
  }
  return std::nullopt;
}

}  // namespace berth::cli
