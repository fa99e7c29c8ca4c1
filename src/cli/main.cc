// SPDX-License-Identifier: Apache-2.0
// berth: the command-line client. Talks only to the control API.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "api/client.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/url.h"

namespace {

using berth::Errc;
using berth::Json;

// Exit codes by error class (documented in docs/cli.md).
int exit_code(Errc c) {
  switch (c) {
    case Errc::InvalidArgument:
      return 2;
    case Errc::NotFound:
      return 3;
    case Errc::AlreadyExists:
    case Errc::Conflict:
      return 4;
    case Errc::Unauthenticated:
    case Errc::PermissionDenied:
      return 5;
    case Errc::Unavailable:
      return 6;
    default:
      return 1;
  }
}

int fail(const berth::Error& e) {
  std::fprintf(stderr, "berth: %s\n", e.message().c_str());
  return exit_code(e.code());
}

std::string human_size(int64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string when(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::gmtime(&tt));
  return buf;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows) {
    w.resize(std::max(w.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) {
      w[i] = std::max(w[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) {
        line += std::string(w[i] - r[i].size() + 2, ' ');
      }
    }
    std::printf("%s\n", line.c_str());
  }
}

// Reads and parses a policy document; InvalidArgument (exit 2) when unreadable or not JSON.
berth::Result<Json> read_policy_file(const std::string& path) {
  auto text = berth::fs::read_file(path);
  if (!text) {
    return berth::Error(Errc::InvalidArgument,
                        "cannot read policy file " + path + ": " + text.error().message());
  }
  Json doc = Json::parse(*text, nullptr, false);
  if (doc.is_discarded()) {
    return berth::Error(Errc::InvalidArgument, "policy file " + path + " is not valid JSON");
  }
  return doc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berth: push to deploy, on your own machine"};
  app.require_subcommand(1);
  std::string server;
  const char* env_server = std::getenv("BERTH_SERVER");
  server = env_server && *env_server ? env_server : "http://127.0.0.1:5000";
  app.add_option("--server", server, "berthd URL (env BERTH_SERVER)")->capture_default_str();
  bool as_json = false;

  auto* repo = app.add_subcommand("repo", "repositories");
  repo->require_subcommand(1);
  auto* repo_create = repo->add_subcommand("create", "create a repository");
  std::string repo_name;
  bool immutable = false;
  std::vector<std::string> mutable_globs;
  repo_create->add_option("name", repo_name, "repository name, e.g. web/app")->required();
  repo_create->add_flag("--immutable-tags", immutable, "refuse to move an existing tag");
  repo_create
      ->add_option("--mutable-tags", mutable_globs,
                   "tag globs that stay mutable in an immutable repository (e.g. latest)")
      ->needs(repo_create->get_option("--immutable-tags"));
  repo_create->add_flag("--json", as_json, "print JSON");
  auto* repo_ls = repo->add_subcommand("ls", "list repositories");
  repo_ls->add_flag("--json", as_json, "print JSON");
  auto* repo_rm = repo->add_subcommand("rm", "delete a repository with its tags and manifests");
  repo_rm->add_option("name", repo_name, "repository name")->required();

  auto* repo_policy = repo->add_subcommand("policy", "repository (resource) policies");
  repo_policy->require_subcommand(1);
  auto* repo_policy_put =
      repo_policy->add_subcommand("put", "set a repository's resource policy from a file");
  std::string policy_file;
  repo_policy_put->add_option("name", repo_name, "repository name")->required();
  repo_policy_put->add_option("--file", policy_file, "policy document (JSON)")->required();
  repo_policy_put->add_flag("--json", as_json, "print JSON");

  auto* image = app.add_subcommand("image", "images in a repository");
  image->require_subcommand(1);
  auto* image_ls = image->add_subcommand("ls", "list images: digest, tags, size, platform");
  image_ls->add_option("repo", repo_name, "repository name")->required();
  image_ls->add_flag("--json", as_json, "print JSON");
  auto* image_rm = image->add_subcommand("rm", "remove REPO:TAG (the tag) or REPO@DIGEST");
  std::string image_ref;
  image_rm->add_option("ref", image_ref, "REPO:TAG or REPO@DIGEST")->required();

  auto* gc = app.add_subcommand("gc", "delete blobs no manifest references (older than 1h)");
  gc->add_flag("--json", as_json, "print JSON");

  // ---- iam ----
  auto* iam = app.add_subcommand("iam", "users, roles, access keys and policies");
  iam->require_subcommand(1);
  std::string iam_name;  // user, role, key id or policy name, by subcommand

  auto* user = iam->add_subcommand("user", "users (people, CI)");
  user->require_subcommand(1);
  auto* user_create = user->add_subcommand("create", "create a user");
  user_create->add_option("name", iam_name, "user name")->required();
  auto* user_ls = user->add_subcommand("ls", "list users");
  auto* user_rm = user->add_subcommand("rm", "delete a user with its keys and policies");
  user_rm->add_option("name", iam_name, "user name")->required();

  auto* key = iam->add_subcommand("key", "access keys of users");
  key->require_subcommand(1);
  auto* key_create = key->add_subcommand("create", "create an access key (the secret shows once)");
  key_create->add_option("user", iam_name, "user name")->required();
  auto* key_ls = key->add_subcommand("ls", "list a user's access keys");
  key_ls->add_option("user", iam_name, "user name")->required();
  auto* key_deactivate = key->add_subcommand("deactivate", "deactivate an access key");
  key_deactivate->add_option("key_id", iam_name, "access key id (BK...)")->required();
  auto* key_rm = key->add_subcommand("rm", "delete an access key");
  key_rm->add_option("key_id", iam_name, "access key id (BK...)")->required();

  auto* role = iam->add_subcommand("role", "roles (assumed by services and builds)");
  role->require_subcommand(1);
  auto* role_create = role->add_subcommand("create", "create a role");
  role_create->add_option("name", iam_name, "role name")->required();
  auto* role_ls = role->add_subcommand("ls", "list roles");
  auto* role_rm = role->add_subcommand("rm", "delete a role with its policies");
  role_rm->add_option("name", iam_name, "role name")->required();

  auto* policy = iam->add_subcommand("policy", "identity policies attached to users and roles");
  policy->require_subcommand(1);
  std::string for_user, for_role;
  auto* policy_put =
      policy->add_subcommand("put", "attach (or replace) a named policy from a JSON file");
  auto* put_user = policy_put->add_option("--user", for_user, "attach to this user");
  policy_put->add_option("--role", for_role, "attach to this role")->excludes(put_user);
  policy_put->add_option("name", iam_name, "policy name")->required();
  policy_put->add_option("--file", policy_file, "policy document (JSON)")->required();
  auto* policy_ls = policy->add_subcommand("ls", "list policies (all, or one user's or role's)");
  auto* ls_user = policy_ls->add_option("--user", for_user, "only this user's policies");
  policy_ls->add_option("--role", for_role, "only this role's policies")->excludes(ls_user);
  auto* policy_rm = policy->add_subcommand("rm", "detach and delete a named policy");
  auto* rm_user = policy_rm->add_option("--user", for_user, "the policy's user");
  policy_rm->add_option("--role", for_role, "the policy's role")->excludes(rm_user);
  policy_rm->add_option("name", iam_name, "policy name")->required();

  auto* simulate = iam->add_subcommand(
      "simulate", "evaluate the policies for one request: prints Allow or Deny and why");
  std::string sim_principal, sim_action, sim_resource;
  simulate->add_option("--principal", sim_principal, "user/NAME, role/NAME or anonymous")
      ->required();
  simulate->add_option("--action", sim_action, "e.g. registry:Push")->required();
  simulate->add_option("--resource", sim_resource, "e.g. repository/web/app")->required();

  for (auto* c : {user_create, user_ls, user_rm, key_create, key_ls, key_deactivate, key_rm,
                  role_create, role_ls, role_rm, policy_put, policy_ls, policy_rm, simulate}) {
    c->add_flag("--json", as_json, "print JSON");
  }

  CLI11_PARSE(app, argc, argv);

  auto client = berth::api::Client::create(server);
  if (!client) {
    return fail(client.error());
  }
  auto repo_path = [](const std::string& name) {
    return "/api/v1/repositories/" + berth::url::encode(name);
  };

  if (*repo_create) {
    Json body{{"name", repo_name}, {"immutable_tags", immutable}, {"mutable_tags", mutable_globs}};
    auto r = client->call("POST", "/api/v1/repositories", body);
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << r->dump(2) << "\n";
    } else {
      std::printf("created repository %s%s\n", repo_name.c_str(),
                  immutable ? " (immutable tags)" : "");
    }
    return 0;
  }
  if (*repo_ls) {
    auto r = client->call("GET", "/api/v1/repositories");
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << (*r)["repositories"].dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "TAGS", "CREATED"}};
    for (const auto& x : (*r)["repositories"]) {
      std::string mode = x.value("immutable_tags", false) ? "immutable" : "mutable";
      auto globs = x.value("mutable_tags", std::vector<std::string>{});
      if (!globs.empty()) {
        mode += " (mutable:";
        for (auto& g : globs) {
          mode += " " + g;
        }
        mode += ")";
      }
      rows.push_back({x.value("name", ""), mode, when(x.value("created_at", int64_t{0}))});
    }
    print_table(rows);
    return 0;
  }
  if (*repo_rm) {
    auto r = client->call("DELETE", repo_path(repo_name));
    if (!r) {
      return fail(r.error());
    }
    std::printf("deleted repository %s\n", repo_name.c_str());
    return 0;
  }
  if (*repo_policy_put) {
    auto doc = read_policy_file(policy_file);
    if (!doc) {
      return fail(doc.error());
    }
    auto r = client->call("PUT", repo_path(repo_name) + "/policy", *doc);
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << r->dump(2) << "\n";
    } else {
      std::printf("set the policy of repository %s\n", repo_name.c_str());
    }
    return 0;
  }
  if (*image_ls) {
    auto r = client->call("GET", repo_path(repo_name) + "/images");
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << (*r)["images"].dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{{"DIGEST", "TAGS", "SIZE", "PLATFORM", "PUSHED"}};
    for (const auto& x : (*r)["images"]) {
      std::string tags;
      for (const auto& t : x["tags"]) {
        tags += (tags.empty() ? "" : ",") + t.get<std::string>();
      }
      std::string platform = x.value("platform", "");
      if (x.contains("artifact_type")) {
        platform = x.value("artifact_type", "");
      }
      rows.push_back({x.value("digest", ""), tags.empty() ? "<none>" : tags,
                      human_size(x.value("size", int64_t{0})), platform.empty() ? "-" : platform,
                      when(x.value("pushed_at", int64_t{0}))});
    }
    print_table(rows);
    return 0;
  }
  if (*image_rm) {
    std::string name, ref;
    auto at = image_ref.find('@');
    if (at != std::string::npos) {
      name = image_ref.substr(0, at);
      ref = image_ref.substr(at + 1);
    } else {
      auto colon = image_ref.rfind(':');
      if (colon == std::string::npos || image_ref.find('/', colon) != std::string::npos) {
        return fail(berth::Error(Errc::InvalidArgument,
                                 "'" + image_ref + "' must be REPO:TAG or REPO@DIGEST"));
      }
      name = image_ref.substr(0, colon);
      ref = image_ref.substr(colon + 1);
    }
    auto r = client->call("DELETE", repo_path(name) + "/images/" + berth::url::encode(ref));
    if (!r) {
      return fail(r.error());
    }
    std::printf("removed %s\n", image_ref.c_str());
    return 0;
  }
  if (*gc) {
    auto r = client->call("POST", "/api/v1/gc");
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << r->dump(2) << "\n";
    } else {
      std::printf(
          "gc: deleted %lld blob(s) and %lld orphan file(s), freed %s, removed %lld "
          "stale upload(s)\n",
          static_cast<long long>(r->value("blobs_deleted", int64_t{0})),
          static_cast<long long>(r->value("orphan_files_deleted", int64_t{0})),
          human_size(r->value("bytes_freed", int64_t{0})).c_str(),
          static_cast<long long>(r->value("uploads_removed", int64_t{0})));
    }
    return 0;
  }

  // ---- iam ----
  const std::string iam_base = "/api/v1/iam";
  // Prints the answer as JSON, or the human line.
  auto done = [&](const Json& r, const std::string& human) {
    if (as_json) {
      std::cout << r.dump(2) << "\n";
    } else {
      std::printf("%s\n", human.c_str());
    }
    return 0;
  };
  // Users and roles share their shape.
  auto principal_create = [&](const std::string& kind) {
    auto r = client->call("POST", iam_base + "/" + kind + "s", Json{{"name", iam_name}});
    return r ? done(*r, "created " + kind + " " + iam_name) : fail(r.error());
  };
  auto principal_ls = [&](const std::string& kind) {
    auto r = client->call("GET", iam_base + "/" + kind + "s");
    if (!r) {
      return fail(r.error());
    }
    const Json& list = (*r)[kind + "s"];
    if (as_json) {
      std::cout << list.dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "CREATED"}};
    for (const auto& x : list) {
      rows.push_back({x.value("name", ""), when(x.value("created_at", int64_t{0}))});
    }
    print_table(rows);
    return 0;
  };
  auto principal_rm = [&](const std::string& kind) {
    auto r = client->call("DELETE", iam_base + "/" + kind + "s/" + berth::url::encode(iam_name));
    return r ? done(*r, "deleted " + kind + " " + iam_name) : fail(r.error());
  };
  // --user U / --role R as (kind, principal); kind "" when neither was given.
  auto policy_owner = [&]() -> std::pair<std::string, std::string> {
    if (!for_user.empty()) {
      return {"user", for_user};
    }
    if (!for_role.empty()) {
      return {"role", for_role};
    }
    return {"", ""};
  };
  auto policy_path = [&](const std::pair<std::string, std::string>& owner) {
    return iam_base + "/policies/" + berth::url::encode(owner.first) + "/" +
           berth::url::encode(owner.second) + "/" + berth::url::encode(iam_name);
  };

  if (*user_create) {
    return principal_create("user");
  }
  if (*user_ls) {
    return principal_ls("user");
  }
  if (*user_rm) {
    return principal_rm("user");
  }
  if (*role_create) {
    return principal_create("role");
  }
  if (*role_ls) {
    return principal_ls("role");
  }
  if (*role_rm) {
    return principal_rm("role");
  }
  if (*key_create) {
    auto r = client->call("POST", iam_base + "/users/" + berth::url::encode(iam_name) + "/keys");
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << r->dump(2) << "\n";
      return 0;
    }
    std::printf("created access key for user %s\n", iam_name.c_str());
    print_table({{"Access key ID:", r->value("access_key_id", "")},
                 {"Secret access key:", r->value("secret_access_key", "")}});
    std::printf("Save the secret now: it will not be shown again.\n");
    return 0;
  }
  if (*key_ls) {
    auto r = client->call("GET", iam_base + "/users/" + berth::url::encode(iam_name) + "/keys");
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << (*r)["keys"].dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{{"ACCESS KEY ID", "STATUS", "CREATED"}};
    for (const auto& x : (*r)["keys"]) {
      rows.push_back({x.value("access_key_id", ""),
                      x.value("active", false) ? "active" : "inactive",
                      when(x.value("created_at", int64_t{0}))});
    }
    print_table(rows);
    return 0;
  }
  if (*key_deactivate) {
    auto r =
        client->call("POST", iam_base + "/keys/" + berth::url::encode(iam_name) + "/deactivate");
    return r ? done(*r, "deactivated access key " + iam_name) : fail(r.error());
  }
  if (*key_rm) {
    auto r = client->call("DELETE", iam_base + "/keys/" + berth::url::encode(iam_name));
    return r ? done(*r, "deleted access key " + iam_name) : fail(r.error());
  }
  if (*policy_put || *policy_rm) {
    auto owner = policy_owner();
    if (owner.first.empty()) {
      return fail(berth::Error(Errc::InvalidArgument, "give exactly one of --user or --role"));
    }
    std::string who = owner.first + " " + owner.second;
    if (*policy_rm) {
      auto r = client->call("DELETE", policy_path(owner));
      return r ? done(*r, "deleted policy " + iam_name + " of " + who) : fail(r.error());
    }
    auto doc = read_policy_file(policy_file);
    if (!doc) {
      return fail(doc.error());
    }
    auto r = client->call("PUT", policy_path(owner), *doc);
    return r ? done(*r, "put policy " + iam_name + " on " + who) : fail(r.error());
  }
  if (*policy_ls) {
    auto r = client->call("GET", iam_base + "/policies");
    if (!r) {
      return fail(r.error());
    }
    auto owner = policy_owner();
    Json list = Json::array();
    for (const auto& x : (*r)["policies"]) {
      if (owner.first.empty() ||
          (x.value("kind", "") == owner.first && x.value("principal", "") == owner.second)) {
        list.push_back(x);
      }
    }
    if (as_json) {
      std::cout << list.dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{{"PRINCIPAL", "NAME", "STATEMENTS", "UPDATED"}};
    for (const auto& x : list) {
      size_t n = 0;
      if (x.contains("document") && x["document"].is_object() &&
          x["document"].contains("Statement")) {
        const Json& st = x["document"]["Statement"];
        n = st.is_array() ? st.size() : 1;
      }
      rows.push_back({x.value("kind", "") + "/" + x.value("principal", ""), x.value("name", ""),
                      std::to_string(n), when(x.value("updated_at", int64_t{0}))});
    }
    print_table(rows);
    return 0;
  }
  if (*simulate) {
    Json body{{"principal", sim_principal}, {"action", sim_action}, {"resource", sim_resource}};
    auto r = client->call("POST", iam_base + "/simulate", body);
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << r->dump(2) << "\n";
      return 0;
    }
    auto str = [&](const char* k) {
      return r->contains(k) && (*r)[k].is_string() ? (*r)[k].get<std::string>() : std::string();
    };
    std::string policy_name = str("policy"), sid = str("sid"), reason = str("reason");
    std::printf("%s\n", str("decision").c_str());
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
  return 0;
}
