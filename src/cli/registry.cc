// SPDX-License-Identifier: Apache-2.0
#include "cli/registry.h"

#include <cstdio>
#include <iostream>

#include "cli/table.h"
#include "cli/util.h"
#include "common/duration.h"
#include "common/url.h"

namespace berth::cli {

struct RegistryCommands {
  CLI::App *create = nullptr, *ls = nullptr, *show = nullptr, *rm = nullptr, *test = nullptr;
  CLI::App *rcreate = nullptr, *rls = nullptr, *rstatus = nullptr, *rrm = nullptr;
  std::string name, url, prefix, username, ca_file, ttl;
  std::vector<std::string> repos;
  bool password_stdin = false;
  bool is_default = false;
  bool deletes = false;
  bool json = false;
};

namespace {

const std::string kUpstreams = "/api/v1/registry/upstreams";
const std::string kReplications = "/api/v1/registry/replications";

std::string ttl_text(const Json& u) {
  int64_t s = num(u, "ttl_seconds");
  if (s != 0 && s % 3600 == 0) {
    return std::to_string(s / 3600) + "h";
  }
  if (s != 0 && s % 60 == 0) {
    return std::to_string(s / 60) + "m";
  }
  return std::to_string(s) + "s";
}

std::string credentials(const Json& u) {
  if (str(u, "username").empty()) {
    return "anonymous";
  }
  return str(u, "username") + (u.value("password_set", false) ? " (password set)" : "");
}

void print_upstream(const Json& u) {
  std::printf("%s\n", str(u, "name").c_str());
  std::printf("  url          %s\n", str(u, "url").c_str());
  std::printf("  prefix       %s\n", str(u, "prefix").c_str());
  std::printf("  default      %s\n", u.value("default", false) ? "yes" : "no");
  std::printf("  credentials  %s\n", credentials(u).c_str());
  std::printf("  ca file      %s\n",
              str(u, "ca_file").empty() ? "(system CAs)" : str(u, "ca_file").c_str());
  std::printf("  tag ttl      %s\n", ttl_text(u).c_str());
  std::printf("  created      %s\n", when(num(u, "created_at")).c_str());
  std::printf("  pull with    docker pull HOST/%s/REPOSITORY:TAG\n", str(u, "prefix").c_str());
}

std::string repos_text(const Json& r) {
  std::string out;
  for (const auto& g : r.value("repos", Json::array())) {
    out += (out.empty() ? "" : ",") + g.get<std::string>();
  }
  return out;
}

void print_replication(const Json& r) {
  std::printf("%s\n", str(r, "name").c_str());
  std::printf("  to           %s\n", str(r, "url").c_str());
  std::printf("  repos        %s\n", repos_text(r).c_str());
  std::printf("  deletes      %s\n", r.value("deletes", false) ? "replicated" : "not replicated");
  std::printf("  credentials  %s\n", credentials(r).c_str());
  std::printf("  pending      %lld", static_cast<long long>(num(r, "pending")));
  if (num(r, "pending") > 0) {
    std::printf(" (oldest %s ago)", format_age(num(r, "lag_seconds")).c_str());
  }
  std::printf("\n  replicated   %lld since berthd started",
              static_cast<long long>(num(r, "replicated")));
  if (num(r, "last_success_at") != 0) {
    std::printf(", last at %s", when(num(r, "last_success_at")).c_str());
  }
  std::printf("\n");
  if (!str(r, "last_error").empty()) {
    std::printf("  last error   %s (%s)\n", str(r, "last_error").c_str(),
                when(num(r, "last_error_at")).c_str());
  }
  for (const auto& n : r.value("next", Json::array())) {
    std::printf("  next         %s\n", n.get<std::string>().c_str());
  }
}

// One line of stdin: the password for --password-stdin.
Result<std::string> password_from_stdin() {
  std::string pw;
  std::getline(std::cin, pw);
  while (!pw.empty() && (pw.back() == '\r' || pw.back() == '\n')) {
    pw.pop_back();
  }
  if (pw.empty()) {
    return Error(Errc::InvalidArgument, "--password-stdin: no password on stdin");
  }
  return pw;
}

// The fields an upstream and a replication destination share: who berth is there, and whom
// it trusts.
Status add_remote_fields(Json& body, const RegistryCommands& s) {
  if (!s.username.empty()) {
    body["username"] = s.username;
  }
  if (s.password_stdin) {
    BERTH_ASSIGN_OR_RETURN(auto pw, password_from_stdin());
    body["password"] = pw;
  }
  if (!s.ca_file.empty()) {
    body["ca_file"] = s.ca_file;
  }
  return ok();
}

int print_one(const Result<Json>& r, bool json, void (*print)(const Json&)) {
  if (!r) {
    return fail(r.error());
  }
  if (json) {
    return print_json(*r);
  }
  print(*r);
  return 0;
}

}  // namespace

std::shared_ptr<RegistryCommands> add_registry_commands(CLI::App& app) {
  auto s = std::make_shared<RegistryCommands>();
  auto* reg =
      app.add_subcommand("registry", "registry settings: pull-through upstreams and replication");
  reg->require_subcommand(1);
  auto* up = reg->add_subcommand("upstream", "registries berth pulls through and caches");
  up->require_subcommand(1);
  s->create = up->add_subcommand("create", "add an upstream registry");
  s->create->add_option("name", s->name, "upstream name, e.g. dockerhub")->required();
  s->create->add_option("--url", s->url, "its origin, e.g. https://registry-1.docker.io")
      ->required();
  s->create->add_option("--prefix", s->prefix, "where it appears in berth, e.g. docker.io")
      ->required();
  s->create->add_option("--username", s->username, "user for HTTP Basic or its token endpoint");
  s->create->add_flag("--password-stdin", s->password_stdin, "read the password from stdin");
  s->create->add_option("--ca-file", s->ca_file, "PEM bundle to trust instead of the system's");
  s->create->add_option("--ttl", s->ttl, "how long a tag looked up stays fresh (default 6h)");
  s->create->add_flag("--default", s->is_default,
                      "resolve unqualified names (busybox:stable) through it");
  s->ls = up->add_subcommand("ls", "list upstreams");
  s->show = up->add_subcommand("show", "show one upstream");
  s->show->add_option("name", s->name, "upstream name")->required();
  s->rm = up->add_subcommand("rm", "remove an upstream (what was cached stays)");
  s->rm->add_option("name", s->name, "upstream name")->required();
  s->test = up->add_subcommand("test", "check that berth can reach and log in to it");
  s->test->add_option("name", s->name, "upstream name")->required();
  auto* rep = reg->add_subcommand("replication", "copy pushes to other registries");
  rep->require_subcommand(1);
  s->rcreate = rep->add_subcommand("create", "copy every push to matching repositories");
  s->rcreate->add_option("name", s->name, "replication name, e.g. to-backup")->required();
  s->rcreate
      ->add_option("--to", s->url, "the destination's origin, e.g. https://backup.example.com")
      ->required();
  s->rcreate->add_option("--repos", s->repos, "repository globs, e.g. 'web/*' (repeatable)")
      ->required();
  s->rcreate->add_option("--username", s->username, "user at the destination");
  s->rcreate->add_flag("--password-stdin", s->password_stdin, "read the password from stdin");
  s->rcreate->add_option("--ca-file", s->ca_file, "PEM bundle to trust instead of the system's");
  s->rcreate->add_flag("--deletes", s->deletes, "also delete there what is deleted here");
  s->rls = rep->add_subcommand("ls", "list replications with what is pending");
  s->rstatus = rep->add_subcommand("status", "lag, last error and what is pending");
  s->rstatus->add_option("name", s->name, "replication name")->required();
  s->rrm = rep->add_subcommand("rm", "stop replicating (what was copied stays)");
  s->rrm->add_option("name", s->name, "replication name")->required();
  for (auto* c :
       {s->create, s->ls, s->show, s->rm, s->test, s->rcreate, s->rls, s->rstatus, s->rrm}) {
    add_json_flag(c, s->json);
  }
  return s;
}

std::optional<int> run_registry_commands(RegistryCommands& s, const api::Client& client) {
  if (s.create->parsed()) {
    Json body{{"name", s.name}, {"url", s.url}, {"prefix", s.prefix}, {"default", s.is_default}};
    if (auto st = add_remote_fields(body, s); !st) {
      return fail(st.error());
    }
    if (!s.ttl.empty()) {
      body["ttl"] = s.ttl;
    }
    return print_one(client.call("POST", kUpstreams, body), s.json, print_upstream);
  }
  if (s.ls->parsed()) {
    return print_list(
        client.call("GET", kUpstreams), "upstreams", s.json,
        {field("NAME", "name"),
         field("PREFIX", "prefix"),
         field("URL", "url"),
         {"DEFAULT", [](const Json& u) { return u.value("default", false) ? "yes" : "-"; }},
         {"CREDENTIALS", credentials},
         {"TTL", ttl_text}});
  }
  if (s.show->parsed()) {
    return print_one(client.call("GET", kUpstreams + "/" + url::encode(s.name)), s.json,
                     print_upstream);
  }
  if (s.rm->parsed()) {
    auto r = client.call("DELETE", kUpstreams + "/" + url::encode(s.name));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("removed upstream %s (images already pulled through stay)\n", s.name.c_str());
    return 0;
  }
  if (s.test->parsed()) {
    auto r = client.call("POST", kUpstreams + "/" + url::encode(s.name) + "/test");
    if (!r) {
      return fail(r.error());
    }
    bool good = r->value("ok", false);
    if (s.json) {
      print_json(*r);
    } else {
      std::printf("%s: %s (auth %s, %lld ms)\n", good ? "ok" : "FAILED", str(*r, "message").c_str(),
                  str(*r, "auth").c_str(), static_cast<long long>(num(*r, "millis")));
    }
    return good ? 0 : 1;
  }
  if (s.rcreate->parsed()) {
    Json body{{"name", s.name}, {"url", s.url}, {"repos", s.repos}, {"deletes", s.deletes}};
    if (auto st = add_remote_fields(body, s); !st) {
      return fail(st.error());
    }
    return print_one(client.call("POST", kReplications, body), s.json, print_replication);
  }
  if (s.rls->parsed()) {
    return print_list(client.call("GET", kReplications), "replications", s.json,
                      {field("NAME", "name"),
                       field("TO", "url"),
                       {"REPOS", repos_text},
                       {"PENDING", [](const Json& r) { return std::to_string(num(r, "pending")); }},
                       {"LAG",
                        [](const Json& r) {
                          return num(r, "pending") ? format_age(num(r, "lag_seconds")) : "-";
                        }},
                       field("LAST ERROR", "last_error")});
  }
  if (s.rstatus->parsed()) {
    return print_one(client.call("GET", kReplications + "/" + url::encode(s.name)), s.json,
                     print_replication);
  }
  if (s.rrm->parsed()) {
    auto r = client.call("DELETE", kReplications + "/" + url::encode(s.name));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("removed replication %s (what was copied stays; pending changes are dropped)\n",
                s.name.c_str());
    return 0;
  }
  return std::nullopt;
}

}  // namespace berth::cli
