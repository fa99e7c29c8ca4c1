// SPDX-License-Identifier: Apache-2.0
// `berth dns tsig create|ls|rm` over /api/v1/dns/tsig. create prints the secret (the only
// time it is shown) and the lines nsupdate, certbot and lego want.
#include "cli/dns_tsig.h"

#include <cstdio>

#include "cli/table.h"
#include "cli/util.h"
#include "common/url.h"

namespace berth::cli {

struct DnsTsigCommands {
  CLI::App *create = nullptr, *ls = nullptr, *rm = nullptr;
  std::string name;
  std::vector<std::string> zones, names;
  std::string secret;
  bool json = false;
};

namespace {

const std::string kTsig = "/api/v1/dns/tsig";

std::string joined(const Json& a) {
  std::string out;
  for (const auto& v : a) {
    if (v.is_string()) {
      out += (out.empty() ? "" : " ") + v.get<std::string>();
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<DnsTsigCommands> add_dns_tsig_commands(CLI::App& dns) {
  auto s = std::make_shared<DnsTsigCommands>();
  auto* tsig =
      dns.add_subcommand("tsig", "TSIG keys for dynamic updates (nsupdate, certbot, lego)");
  tsig->require_subcommand(1);
  s->create = tsig->add_subcommand("create", "create a key; its secret is printed once");
  s->create->add_option("name", s->name, "key name (like acme or acme.example.com)")->required();
  add_repeatable(s->create, "--zone", s->zones, "ZONE",
                 "a zone the key may update (repeat; default: every zone)");
  add_repeatable(s->create, "--names", s->names, "GLOB",
                 "names it may change, like '_acme-challenge.*' (repeat; default: any)");
  s->create->add_option("--secret", s->secret, "use this base64 secret instead of 32 random bytes");
  add_json_flag(s->create, s->json);
  s->ls = tsig->add_subcommand("ls", "list keys (never their secrets)");
  add_json_flag(s->ls, s->json);
  s->rm = tsig->add_subcommand("rm", "delete a key: updates signed with it are refused");
  s->rm->add_option("name", s->name, "key name")->required();
  add_json_flag(s->rm, s->json);
  return s;
}

std::optional<int> run_dns_tsig_commands(DnsTsigCommands& s, const api::Client& client) {
  if (*s.create) {
    Json body = {{"name", s.name}, {"zones", s.zones}, {"names", s.names}};
    if (!s.secret.empty()) {
      body["secret"] = s.secret;
    }
    auto r = client.call("POST", kTsig, body);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::string name = str(*r, "name");
    std::string alg = str(*r, "algorithm");
    std::string secret = str(*r, "secret");
    std::string zones = joined(r->value("zones", Json::array()));
    std::string names = joined(r->value("names", Json::array()));
    std::printf("created TSIG key %s\n", name.c_str());
    std::printf("  algorithm  %s\n", alg.c_str());
    std::printf("  secret     %s\n", secret.c_str());
    std::printf("  zones      %s\n", zones.empty() ? "(every zone)" : zones.c_str());
    std::printf("  names      %s\n", names.empty() ? "(any name)" : names.c_str());
    std::printf("The secret is not shown again. For nsupdate (-k FILE), BIND or knot:\n");
    std::printf("  key \"%s\" { algorithm %s; secret \"%s\"; };\n", name.c_str(), alg.c_str(),
                secret.c_str());
    std::printf("or: nsupdate -y %s:%s:%s\n", alg.c_str(), name.c_str(), secret.c_str());
    return 0;
  }
  if (*s.ls) {
    return print_list(client.call("GET", kTsig), "keys", s.json,
                      {field("NAME", "name"),
                       field("ALGORITHM", "algorithm"),
                       {"ZONES",
                        [](const Json& k) {
                          std::string z = joined(k.value("zones", Json::array()));
                          return z.empty() ? std::string("*") : z;
                        }},
                       {"NAMES", [](const Json& k) {
                          std::string n = joined(k.value("names", Json::array()));
                          return n.empty() ? std::string("*") : n;
                        }}});
  }
  if (*s.rm) {
    auto r = client.call("DELETE", kTsig + "/" + url::encode(s.name));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("deleted TSIG key %s\n", s.name.c_str());
    return 0;
  }
  return std::nullopt;
}

}  // namespace berth::cli
