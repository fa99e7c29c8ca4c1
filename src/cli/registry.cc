// SPDX-License-Identifier: Apache-2.0
#include "cli/registry.h"

#include <cstdio>
#include <iostream>

#include "cli/table.h"
#include "cli/util.h"
#include "common/url.h"

namespace berth::cli {

struct RegistryCommands {
  CLI::App *create = nullptr, *ls = nullptr, *show = nullptr, *rm = nullptr, *test = nullptr;
  std::string name, url, prefix, username, ca_file, ttl;
  bool password_stdin = false;
  bool is_default = false;
  bool json = false;
};

namespace {

const std::string kUpstreams = "/api/v1/registry/upstreams";

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

}  // namespace

std::shared_ptr<RegistryCommands> add_registry_commands(CLI::App& app) {
  auto s = std::make_shared<RegistryCommands>();
  auto* reg = app.add_subcommand("registry", "registry settings: pull-through upstreams");
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
  for (auto* c : {s->create, s->ls, s->show, s->rm, s->test}) {
    add_json_flag(c, s->json);
  }
  return s;
}

std::optional<int> run_registry_commands(RegistryCommands& s, const api::Client& client) {
  if (s.create->parsed()) {
    Json body{{"name", s.name}, {"url", s.url}, {"prefix", s.prefix}, {"default", s.is_default}};
    if (!s.username.empty()) {
      body["username"] = s.username;
    }
    if (s.password_stdin) {
      std::string pw;
      std::getline(std::cin, pw);
      while (!pw.empty() && (pw.back() == '\r' || pw.back() == '\n')) {
        pw.pop_back();
      }
      if (pw.empty()) {
        return fail(Error(Errc::InvalidArgument, "--password-stdin: no password on stdin"));
      }
      body["password"] = pw;
    }
    if (!s.ca_file.empty()) {
      body["ca_file"] = s.ca_file;
    }
    if (!s.ttl.empty()) {
      body["ttl"] = s.ttl;
    }
    auto r = client.call("POST", kUpstreams, body);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    print_upstream(*r);
    return 0;
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
    auto r = client.call("GET", kUpstreams + "/" + url::encode(s.name));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    print_upstream(*r);
    return 0;
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
  return std::nullopt;
}

}  // namespace berth::cli
