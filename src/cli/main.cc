// SPDX-License-Identifier: Apache-2.0
// berth: the command-line client. Talks only to the control API. Each command group lives in
// its own file (login, repos, iam, services, build); this one parses and dispatches.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <optional>
#include <string>

#include "api/client.h"
#include "cli/args.h"
#include "cli/build.h"
#include "cli/console.h"
#include "cli/dns.h"
#include "cli/domains.h"
#include "cli/iam.h"
#include "cli/login.h"
#include "cli/registry.h"
#include "cli/repos.h"
#include "cli/services.h"
#include "cli/util.h"

int main(int argc, char** argv) {
  using berth::cli::fail;
  CLI::App app{"berth: push to deploy, on your own machine"};
  app.require_subcommand(1);
  app.fallthrough();  // global options (--server) may follow the subcommand too
  const char* env = std::getenv("BERTH_SERVER");
  const std::string env_server = env ? env : "";
  const std::string kDefaultServer = "http://127.0.0.1:5000";
  std::string server = env_server.empty() ? kDefaultServer : env_server;
  auto* server_opt = app.add_option("--server", server,
                                    "berthd URL (env BERTH_SERVER, else the server in "
                                    "~/.config/berth/credentials, else " +
                                        kDefaultServer + ")")
                         ->capture_default_str();

  auto login_cmds = berth::cli::add_login_commands(app);
  auto repo_cmds = berth::cli::add_repo_commands(app);
  auto iam_cmds = berth::cli::add_iam_commands(app);
  auto service_cmds = berth::cli::add_service_commands(app);
  auto build_cmds = berth::cli::add_build_commands(app);
  auto dns_cmds = berth::cli::add_dns_commands(app);
  auto domain_cmds = berth::cli::add_domain_commands(app);
  auto registry_cmds = berth::cli::add_registry_commands(app);
  auto console_cmds = berth::cli::add_console_commands(app);

  if (auto rc = berth::cli::parse_args(app, argc, argv)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_logout(*login_cmds)) {
    return *rc;
  }

  std::optional<berth::cli::Credentials> creds;
  if (!berth::cli::login_chosen(*login_cmds)) {
    const bool server_given = server_opt->count() > 0 || !env_server.empty();
    auto found = berth::cli::find_credentials(server_given, server);
    if (!found) {
      return fail(found.error());
    }
    creds = *found;
  }
  auto client = berth::api::Client::create(server);
  if (!client) {
    return fail(client.error());
  }
  if (creds) {
    client->set_credentials(creds->key_id, creds->secret);
  }

  if (auto rc = berth::cli::run_login(*login_cmds, *client)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_repo_commands(*repo_cmds, *client)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_iam_commands(*iam_cmds, *client)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_service_commands(*service_cmds, *client)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_dns_commands(*dns_cmds, *client)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_domain_commands(*domain_cmds, *client)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_registry_commands(*registry_cmds, *client)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_console_commands(*console_cmds, *client)) {
    return *rc;
  }
  if (auto rc = berth::cli::run_build_commands(*build_cmds, *client, creds ? creds->key_id : "",
                                               creds ? creds->secret : "")) {
    return *rc;
  }
  return 0;
}
