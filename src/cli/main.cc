// SPDX-License-Identifier: Apache-2.0
// berth: the command-line client. Talks only to the control API.
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include "api/client.h"
#include "cli/build.h"
#include "cli/services.h"
#include "cli/util.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/url.h"

namespace {

using berth::Errc;
using berth::Json;
using berth::cli::exit_code;
using berth::cli::fail;
using berth::cli::human_size;
using berth::cli::print_table;
using berth::cli::when;

// ---- credentials ----

struct Credentials {
  std::string server;  // "" when the file names none
  std::string key_id;
  std::string secret;
};

std::string getenv_str(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string trim(std::string s) {
  auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && sp(s.back())) {
    s.pop_back();
  }
  size_t i = 0;
  while (i < s.size() && sp(s[i])) {
    ++i;
  }
  return s.substr(i);
}

// ~/.config/berth/credentials ("" when HOME is unset).
std::string credentials_path() {
  std::string home = getenv_str("HOME");
  return home.empty() ? "" : home + "/.config/berth/credentials";
}

// Reads the credentials file: KEY=VALUE lines (blank lines and # comments skipped).
// nullopt when the file does not exist; InvalidArgument when it is unreadable or incomplete.
berth::Result<std::optional<Credentials>> read_credentials_file(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) {
    return std::optional<Credentials>{};
  }
  auto text = berth::fs::read_file(path);
  if (!text) {
    return berth::Error(Errc::InvalidArgument,
                        "cannot read " + path + ": " + text.error().message());
  }
  std::map<std::string, std::string> kv;
  size_t pos = 0;
  while (pos <= text->size()) {
    size_t eol = text->find('\n', pos);
    std::string line =
        trim(text->substr(pos, eol == std::string::npos ? std::string::npos : eol - pos));
    if (!line.empty() && line[0] != '#') {
      auto eq = line.find('=');
      if (eq != std::string::npos) {
        kv[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
      }
    }
    if (eol == std::string::npos) {
      break;
    }
    pos = eol + 1;
  }
  Credentials c{kv["BERTH_SERVER"], kv["BERTH_ACCESS_KEY_ID"], kv["BERTH_SECRET_ACCESS_KEY"]};
  if (c.key_id.empty() || c.secret.empty()) {
    return berth::Error(Errc::InvalidArgument,
                        path +
                            " must set BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY (run "
                            "berth login again)");
  }
  return std::optional<Credentials>{c};
}

// Writes the credentials file with mode 0600, creating ~/.config/berth with mode 0700.
berth::Status write_credentials_file(const std::string& path, const Credentials& c) {
  if (path.empty()) {
    return berth::Error(Errc::InvalidArgument, "HOME is not set: nowhere to keep credentials");
  }
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir.parent_path(), ec);
  if (ec) {
    return berth::Error(Errc::Internal,
                        "cannot create " + dir.parent_path().string() + ": " + ec.message());
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return berth::Error(Errc::Internal,
                        "cannot create " + dir.string() + ": " + std::strerror(errno));
  }
  return berth::fs::write_atomic(path,
                                 "BERTH_SERVER=" + c.server + "\nBERTH_ACCESS_KEY_ID=" + c.key_id +
                                     "\nBERTH_SECRET_ACCESS_KEY=" + c.secret + "\n",
                                 0600);
}

// One line from stdin without its newline; with hide, and stdin a terminal, echo is off.
std::optional<std::string> read_line(const char* prompt, bool hide) {
  bool tty = ::isatty(STDIN_FILENO) == 1;
  if (tty && prompt) {
    std::fprintf(stderr, "%s", prompt);
    std::fflush(stderr);
  }
  termios old{};
  bool restore = false;
  if (tty && hide && ::tcgetattr(STDIN_FILENO, &old) == 0) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    restore = ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
  }
  std::string line;
  bool ok = static_cast<bool>(std::getline(std::cin, line));
  if (restore) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  if (!ok && line.empty()) {
    return std::nullopt;
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  return line;
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
  app.fallthrough();  // global options (--server) may follow the subcommand too
  std::string server;
  const std::string env_server = getenv_str("BERTH_SERVER");
  const std::string kDefaultServer = "http://127.0.0.1:5000";
  server = env_server.empty() ? kDefaultServer : env_server;
  auto* server_opt = app.add_option("--server", server,
                                    "berthd URL (env BERTH_SERVER, else the server in "
                                    "~/.config/berth/credentials, else " +
                                        kDefaultServer + ")")
                         ->capture_default_str();
  bool as_json = false;

  auto* login = app.add_subcommand(
      "login", "verify an access key with the server and keep it in ~/.config/berth/credentials");
  std::string login_key_id;
  bool secret_stdin = false;
  login->add_option("--access-key-id", login_key_id, "access key id (BK...); else prompted");
  login->add_flag("--secret-access-key-stdin", secret_stdin,
                  "read the secret as one line from stdin (without a prompt)");
  auto* logout = app.add_subcommand("logout", "forget the credentials kept by berth login");

  auto* repo = app.add_subcommand("repo", "repositories");
  repo->require_subcommand(1);
  auto* repo_create = repo->add_subcommand("create", "create a repository");
  std::string repo_name;
  bool immutable = false;
  std::vector<std::string> mutable_globs;
  repo_create->add_option("name", repo_name, "repository name, e.g. web/app")->required();
  repo_create->add_flag("--immutable-tags", immutable, "refuse to move an existing tag");
  bool make_public = false;
  repo_create->add_flag("--public", make_public,
                        "anyone (anonymous included) may pull; pushes still need rights");
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

  auto* audit = app.add_subcommand("audit", "the audit log: state changes and denials");
  audit->require_subcommand(1);
  auto* audit_ls = audit->add_subcommand("ls", "list audit events, newest first");
  std::string audit_since, audit_principal;
  int audit_limit = 100;
  audit_ls->add_option("--since", audit_since,
                       "only events this recent (e.g. 90s, 15m, 2h, 1d) or since UNIX seconds");
  audit_ls->add_option("--principal", audit_principal,
                       "only this principal (user/NAME, role/NAME)");
  audit_ls->add_option("--limit", audit_limit, "at most this many events")->capture_default_str();
  audit_ls->add_flag("--json", as_json, "print JSON");

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
  auto* key_rotate =
      key->add_subcommand("rotate", "create a new key for the same user and deactivate this one");
  key_rotate->add_option("key_id", iam_name, "access key id (BK...)")->required();
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

  for (auto* c :
       {user_create, user_ls, user_rm, key_create, key_ls, key_deactivate, key_rotate, key_rm,
        role_create, role_ls, role_rm, policy_put, policy_ls, policy_rm, simulate}) {
    c->add_flag("--json", as_json, "print JSON");
  }

  auto service_cmds = berth::cli::add_service_commands(app);
  auto build_cmds = berth::cli::add_build_commands(app);

  CLI11_PARSE(app, argc, argv);

  const std::string creds_path = credentials_path();
  if (*logout) {
    std::error_code ec;
    if (creds_path.empty() || !std::filesystem::exists(creds_path, ec)) {
      std::printf("not logged in\n");
      return 0;
    }
    if (!std::filesystem::remove(creds_path, ec) || ec) {
      return fail(berth::Error(Errc::Internal, "cannot remove " + creds_path + ": " +
                                                   (ec ? ec.message() : "unknown error")));
    }
    std::printf("logged out (removed %s)\n", creds_path.c_str());
    return 0;
  }

  // Credentials: the environment, else the file berth login wrote. The file's server counts
  // when neither --server nor BERTH_SERVER names one (also when the key comes from the
  // environment).
  const bool server_given = server_opt->count() > 0 || !env_server.empty();
  std::optional<Credentials> creds;
  if (!*login) {
    const std::string id = getenv_str("BERTH_ACCESS_KEY_ID");
    const std::string secret = getenv_str("BERTH_SECRET_ACCESS_KEY");
    const bool from_env = !id.empty() || !secret.empty();
    if (from_env && (id.empty() || secret.empty())) {
      return fail(berth::Error(Errc::InvalidArgument,
                               "set both BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY, or "
                               "neither"));
    }
    auto file = read_credentials_file(creds_path);
    if (!file && !from_env) {
      return fail(file.error());
    }
    if (file && *file && !server_given && !(*file)->server.empty()) {
      server = (*file)->server;
    }
    if (from_env) {
      creds = Credentials{"", id, secret};
    } else if (file) {
      creds = *file;
    }
  }

  auto client = berth::api::Client::create(server);
  if (!client) {
    return fail(client.error());
  }
  if (creds) {
    client->set_credentials(creds->key_id, creds->secret);
  }

  if (*login) {
    if (login_key_id.empty()) {
      auto id = read_line("Access key ID: ", false);
      login_key_id = id ? trim(*id) : "";
    }
    if (login_key_id.empty()) {
      return fail(berth::Error(Errc::InvalidArgument, "no access key id given"));
    }
    auto secret = read_line(secret_stdin ? nullptr : "Secret access key: ", true);
    std::string secret_str = secret ? trim(*secret) : "";
    if (secret_str.empty()) {
      return fail(berth::Error(Errc::InvalidArgument, "no secret access key on stdin"));
    }
    client->set_credentials(login_key_id, secret_str);
    auto who = client->call("GET", "/api/v1/auth/whoami");
    if (!who) {
      if (who.error().code() == Errc::Unauthenticated) {
        std::fprintf(stderr, "berth: login failed: %s refused access key %s or its secret\n",
                     client->server().c_str(), login_key_id.c_str());
        return exit_code(Errc::Unauthenticated);
      }
      if (who.error().code() == Errc::NotFound) {
        return fail(berth::Error(Errc::FailedPrecondition,
                                 "could not verify the credentials: " + client->server() +
                                     " does not answer /api/v1/auth/whoami (berthd too old?); "
                                     "nothing was saved"));
      }
      return fail(who.error());
    }
    std::string principal = who->contains("principal") && (*who)["principal"].is_string()
                                ? (*who)["principal"].get<std::string>()
                                : "";
    if (principal.empty()) {
      return fail(berth::Error(Errc::Internal,
                               "could not verify the credentials: whoami named no principal"));
    }
    auto st =
        write_credentials_file(creds_path, Credentials{client->server(), login_key_id, secret_str});
    if (!st) {
      return fail(st.error());
    }
    std::printf("logged in to %s as %s\n", client->server().c_str(), principal.c_str());
    return 0;
  }
  if (auto rc = berth::cli::run_service_commands(*service_cmds, *client)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_build_commands(*build_cmds, *client, creds ? creds->key_id : "",
                                               creds ? creds->secret : "")) {
    return *rc;
  }
  auto repo_path = [](const std::string& name) {
    return "/api/v1/repositories/" + berth::url::encode(name);
  };

  if (*repo_create) {
    Json body{{"name", repo_name},
              {"immutable_tags", immutable},
              {"mutable_tags", mutable_globs},
              {"public", make_public}};
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
  if (*audit_ls) {
    int64_t since = 0;
    if (!audit_since.empty()) {
      size_t digits = audit_since.find_first_not_of("0123456789");
      if (digits == 0) {
        return fail(
            berth::Error(Errc::InvalidArgument,
                         "--since '" + audit_since + "': use 90s, 15m, 2h, 1d or UNIX seconds"));
      }
      int64_t n = std::stoll(audit_since.substr(0, digits));
      std::string unit = digits == std::string::npos ? "" : audit_since.substr(digits);
      int64_t mult = unit == "s"   ? 1
                     : unit == "m" ? 60
                     : unit == "h" ? 3600
                     : unit == "d" ? 86400
                                   : 0;
      if (unit.empty()) {
        since = n;  // absolute UNIX seconds
      } else if (mult == 0) {
        return fail(
            berth::Error(Errc::InvalidArgument,
                         "--since '" + audit_since + "': use 90s, 15m, 2h, 1d or UNIX seconds"));
      } else {
        since = static_cast<int64_t>(std::time(nullptr)) - n * mult;
      }
    }
    std::string path =
        "/api/v1/audit?since=" + std::to_string(since) + "&limit=" + std::to_string(audit_limit);
    if (!audit_principal.empty()) {
      path += "&principal=" + berth::url::encode(audit_principal);
    }
    auto r = client->call("GET", path);
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << (*r)["events"].dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{
        {"TIME", "PRINCIPAL", "ACTION", "RESOURCE", "DECISION", "SOURCE"}};
    for (const auto& e : (*r)["events"]) {
      rows.push_back({when(e.value("time", int64_t{0})), e.value("principal", ""),
                      e.value("action", ""), e.value("resource", ""), e.value("decision", ""),
                      e.value("source", "")});
    }
    print_table(rows);
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
  if (*key_create || *key_rotate) {
    auto r =
        *key_create
            ? client->call("POST", iam_base + "/users/" + berth::url::encode(iam_name) + "/keys")
            : client->call("POST", iam_base + "/keys/" + berth::url::encode(iam_name) + "/rotate");
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << r->dump(2) << "\n";
      return 0;
    }
    if (*key_rotate) {
      std::printf("rotated %s (now inactive; delete it once nothing uses it)\n", iam_name.c_str());
    }
    std::printf("created access key for user %s\n", r->value("user", iam_name).c_str());
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
