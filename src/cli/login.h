// SPDX-License-Identifier: Apache-2.0
// `berth login` and `berth logout`, and where every other command's access key comes from:
// the environment, else ~/.config/berth/credentials (docs/cli.md, "Credentials").
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "api/client.h"
#include "common/result.h"

namespace berth::cli {

struct Credentials {
  std::string server;  // "" when the file names none
  std::string key_id;
  std::string secret;
};

struct LoginCommands;

/// Declares login and logout on app.
std::shared_ptr<LoginCommands> add_login_commands(CLI::App& app);

/// Runs logout (which needs no server) when it was chosen; nullopt otherwise.
std::optional<int> run_logout(LoginCommands& cmds);

/// True when login was chosen: it brings its own key instead of the stored one.
bool login_chosen(const LoginCommands& cmds);

/// The access key for a command: BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY, else the
/// credentials file (nullopt: anonymous). The file's server replaces `server` unless
/// server_given. InvalidArgument for half a key in the environment or an unusable file.
Result<std::optional<Credentials>> find_credentials(bool server_given, std::string& server);

/// Runs login when it was chosen; nullopt otherwise.
std::optional<int> run_login(LoginCommands& cmds, api::Client& client);

}  // namespace berth::cli
