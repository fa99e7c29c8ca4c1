// SPDX-License-Identifier: Apache-2.0
#include "cli/iam.h"

#include <cstdio>
#include <string>
#include <utility>

#include "cli/table.h"
#include "cli/util.h"
#include "common/fs.h"
#include "common/url.h"

namespace berth::cli {

struct IamCommands {
  CLI::App *user_create = nullptr, *user_ls = nullptr, *user_rm = nullptr;
  CLI::App *key_create = nullptr, *key_ls = nullptr, *key_deactivate = nullptr,
           *key_rotate = nullptr, *key_rm = nullptr;
  CLI::App *role_create = nullptr, *role_ls = nullptr, *role_rm = nullptr;
  CLI::App *policy_put = nullptr, *policy_ls = nullptr, *policy_rm = nullptr;
  CLI::App* simulate = nullptr;

  bool json = false;
  std::string name;  // user, role, key id or policy name, by subcommand
  std::string for_user, for_role;
  std::string policy_file;
  std::string sim_principal, sim_action, sim_resource;
};

Result<Json> read_policy_file(const std::string& path) {
  auto text = fs::read_file(path);
  if (!text) {
    return Error(Errc::InvalidArgument,
                 "cannot read policy file " + path + ": " + text.error().message());
  }
  Json doc = Json::parse(*text, nullptr, false);
  if (doc.is_discarded()) {
    return Error(Errc::InvalidArgument, "policy file " + path + " is not valid JSON");
  }
  return doc;
}

namespace {

const std::string kBase = "/api/v1/iam";

// --user U / --role R of a policy command.
void add_owner_options(CLI::App* c, IamCommands& s, const std::string& user_what,
                       const std::string& role_what) {
  auto* user = c->add_option("--user", s.for_user, user_what);
  c->add_option("--role", s.for_role, role_what)->excludes(user);
}

class Runner {
 public:
  Runner(IamCommands& s, const api::Client& client) : s_(s), client_(client) {}

  std::optional<int> run() {
    for (const char* kind : {"user", "role"}) {
      bool user = std::string(kind) == "user";
      if (*(user ? s_.user_create : s_.role_create)) {
        return principal_create(kind);
      }
      if (*(user ? s_.user_ls : s_.role_ls)) {
        return principal_ls(kind);
      }
      if (*(user ? s_.user_rm : s_.role_rm)) {
        return principal_rm(kind);
      }
    }
    if (*s_.key_create || *s_.key_rotate) {
      return key_create();
    }
    if (*s_.key_ls) {
      return print_list(
          client_.call("GET", kBase + "/users/" + url::encode(s_.name) + "/keys"), "keys", s_.json,
          {field("ACCESS KEY ID", "access_key_id"),
           {"STATUS",
            [](const Json& x) { return x.value("active", false) ? "active" : "inactive"; }},
           {"CREATED", [](const Json& x) { return when(num(x, "created_at")); }}});
    }
    if (*s_.key_deactivate) {
      auto r = client_.call("POST", kBase + "/keys/" + url::encode(s_.name) + "/deactivate");
      return done(r, "deactivated access key " + s_.name);
    }
    if (*s_.key_rm) {
      auto r = client_.call("DELETE", kBase + "/keys/" + url::encode(s_.name));
      return done(r, "deleted access key " + s_.name);
    }
    if (*s_.policy_put || *s_.policy_rm) {
      return policy_put_rm();
    }
    if (*s_.policy_ls) {
      return policy_ls();
    }
    if (*s_.simulate) {
      return simulate();
    }
    return std::nullopt;
  }

 private:
  // Prints the answer as JSON, or the human line.
  int done(const Result<Json>& r, const std::string& human) const {
    if (!r) {
      return fail(r.error());
    }
    if (s_.json) {
      return print_json(*r);
    }
    std::printf("%s\n", human.c_str());
    return 0;
  }

  // Users and roles share their shape.
  int principal_create(const std::string& kind) const {
    auto r = client_.call("POST", kBase + "/" + kind + "s", Json{{"name", s_.name}});
    return done(r, "created " + kind + " " + s_.name);
  }
  int principal_ls(const std::string& kind) const {
    return print_list(client_.call("GET", kBase + "/" + kind + "s"), kind + "s", s_.json,
                      {field("NAME", "name"),
                       {"CREATED", [](const Json& x) { return when(num(x, "created_at")); }}});
  }
  int principal_rm(const std::string& kind) const {
    auto r = client_.call("DELETE", kBase + "/" + kind + "s/" + url::encode(s_.name));
    return done(r, "deleted " + kind + " " + s_.name);
  }

  int key_create() const {
    auto r = *s_.key_create
                 ? client_.call("POST", kBase + "/users/" + url::encode(s_.name) + "/keys")
                 : client_.call("POST", kBase + "/keys/" + url::encode(s_.name) + "/rotate");
    if (!r) {
      return fail(r.error());
    }
    if (s_.json) {
      return print_json(*r);
    }
    if (*s_.key_rotate) {
      std::printf("rotated %s (now inactive; delete it once nothing uses it)\n", s_.name.c_str());
    }
    std::printf("created access key for user %s\n", r->value("user", s_.name).c_str());
    print_table({{"Access key ID:", str(*r, "access_key_id")},
                 {"Secret access key:", str(*r, "secret_access_key")}});
    std::printf("Save the secret now: it will not be shown again.\n");
    return 0;
  }

  // --user U / --role R as (kind, principal); kind "" when neither was given.
  std::pair<std::string, std::string> owner() const {
    if (!s_.for_user.empty()) {
      return {"user", s_.for_user};
    }
    if (!s_.for_role.empty()) {
      return {"role", s_.for_role};
    }
    return {"", ""};
  }

  int policy_put_rm() const {
    auto o = owner();
    if (o.first.empty()) {
      return fail(Error(Errc::InvalidArgument, "give exactly one of --user or --role"));
    }
    std::string path = kBase + "/policies/" + url::encode(o.first) + "/" + url::encode(o.second) +
                       "/" + url::encode(s_.name);
    std::string who = o.first + " " + o.second;
    if (*s_.policy_rm) {
      return done(client_.call("DELETE", path), "deleted policy " + s_.name + " of " + who);
    }
    auto doc = read_policy_file(s_.policy_file);
    if (!doc) {
      return fail(doc.error());
    }
    return done(client_.call("PUT", path, *doc), "put policy " + s_.name + " on " + who);
  }

  int policy_ls() const {
    auto r = client_.call("GET", kBase + "/policies");
    if (r && !owner().first.empty()) {
      // Filtered here; the answer keeps the API's shape ({"policies":[...]}).
      auto o = owner();
      Json kept = Json::array();
      for (const auto& x : (*r)["policies"]) {
        if (x.value("kind", "") == o.first && x.value("principal", "") == o.second) {
          kept.push_back(x);
        }
      }
      (*r)["policies"] = kept;
    }
    auto statements = [](const Json& x) {
      size_t n = 0;
      if (x.contains("document") && x["document"].is_object() &&
          x["document"].contains("Statement")) {
        const Json& st = x["document"]["Statement"];
        n = st.is_array() ? st.size() : 1;
      }
      return std::to_string(n);
    };
    return print_list(
        r, "policies", s_.json,
        {{"PRINCIPAL", [](const Json& x) { return str(x, "kind") + "/" + str(x, "principal"); }},
         field("NAME", "name"),
         {"STATEMENTS", statements},
         {"UPDATED", [](const Json& x) { return when(num(x, "updated_at")); }}});
  }

  int simulate() const {
    Json body{
        {"principal", s_.sim_principal}, {"action", s_.sim_action}, {"resource", s_.sim_resource}};
    auto r = client_.call("POST", kBase + "/simulate", body);
    if (!r) {
      return fail(r.error());
    }
    if (s_.json) {
      return print_json(*r);
    }
    std::string policy_name = str(*r, "policy"), sid = str(*r, "sid"), reason = str(*r, "reason");
    std::printf("%s\n", str(*r, "decision").c_str());
    std::string why;
    if (!policy_name.empty()) {
      why = "policy " + policy_name;
      if (!sid.empty()) {
        why += ", statement " + sid;
      }
      if (!reason.empty()) {
        why += " (" + reason + ")";
      }
    } else {
      why = reason;
    }
    if (!why.empty()) {
      std::printf("  %s\n", why.c_str());
    }
    return 0;
  }

  IamCommands& s_;
  const api::Client& client_;
};

}  // namespace

std::shared_ptr<IamCommands> add_iam_commands(CLI::App& app) {
  auto s = std::make_shared<IamCommands>();
  auto* iam = app.add_subcommand("iam", "users, roles, access keys and policies");
  iam->require_subcommand(1);

  auto* user = iam->add_subcommand("user", "users (people, CI)");
  user->require_subcommand(1);
  s->user_create = user->add_subcommand("create", "create a user");
  s->user_create->add_option("name", s->name, "user name")->required();
  s->user_ls = user->add_subcommand("ls", "list users");
  s->user_rm = user->add_subcommand("rm", "delete a user with its keys and policies");
  s->user_rm->add_option("name", s->name, "user name")->required();

  auto* key = iam->add_subcommand("key", "access keys of users");
  key->require_subcommand(1);
  s->key_create = key->add_subcommand("create", "create an access key (the secret shows once)");
  s->key_create->add_option("user", s->name, "user name")->required();
  s->key_ls = key->add_subcommand("ls", "list a user's access keys");
  s->key_ls->add_option("user", s->name, "user name")->required();
  s->key_deactivate = key->add_subcommand("deactivate", "deactivate an access key");
  s->key_deactivate->add_option("key_id", s->name, "access key id (BK...)")->required();
  s->key_rotate =
      key->add_subcommand("rotate", "create a new key for the same user and deactivate this one");
  s->key_rotate->add_option("key_id", s->name, "access key id (BK...)")->required();
  s->key_rm = key->add_subcommand("rm", "delete an access key");
  s->key_rm->add_option("key_id", s->name, "access key id (BK...)")->required();

  auto* role = iam->add_subcommand("role", "roles (assumed by services and builds)");
  role->require_subcommand(1);
  s->role_create = role->add_subcommand("create", "create a role");
  s->role_create->add_option("name", s->name, "role name")->required();
  s->role_ls = role->add_subcommand("ls", "list roles");
  s->role_rm = role->add_subcommand("rm", "delete a role with its policies");
  s->role_rm->add_option("name", s->name, "role name")->required();

  auto* policy = iam->add_subcommand("policy", "identity policies attached to users and roles");
  policy->require_subcommand(1);
  s->policy_put =
      policy->add_subcommand("put", "attach (or replace) a named policy from a JSON file");
  add_owner_options(s->policy_put, *s, "attach to this user", "attach to this role");
  s->policy_put->add_option("name", s->name, "policy name")->required();
  s->policy_put->add_option("--file", s->policy_file, "policy document (JSON)")->required();
  s->policy_ls = policy->add_subcommand("ls", "list policies (all, or one user's or role's)");
  add_owner_options(s->policy_ls, *s, "only this user's policies", "only this role's policies");
  s->policy_rm = policy->add_subcommand("rm", "detach and delete a named policy");
  add_owner_options(s->policy_rm, *s, "the policy's user", "the policy's role");
  s->policy_rm->add_option("name", s->name, "policy name")->required();

  s->simulate = iam->add_subcommand(
      "simulate", "evaluate the policies for one request: prints Allow or Deny and why");
  s->simulate->add_option("--principal", s->sim_principal, "user/NAME, role/NAME or anonymous")
      ->required();
  s->simulate->add_option("--action", s->sim_action, "e.g. registry:Push")->required();
  s->simulate->add_option("--resource", s->sim_resource, "e.g. repository/web/app")->required();

  for (auto* c : {s->user_create, s->user_ls, s->user_rm, s->key_create, s->key_ls,
                  s->key_deactivate, s->key_rotate, s->key_rm, s->role_create, s->role_ls,
                  s->role_rm, s->policy_put, s->policy_ls, s->policy_rm, s->simulate}) {
    add_json_flag(c, s->json);
  }
  return s;
}

std::optional<int> run_iam_commands(IamCommands& s, const api::Client& client) {
  return Runner(s, client).run();
}

}  // namespace berth::cli
