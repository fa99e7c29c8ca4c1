// SPDX-License-Identifier: Apache-2.0
// `berth repo ...`, `berth image ...`, `berth gc` and `berth audit ls`: the registry and the
// audit log over the control API.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "api/client.h"

namespace berth::cli {

struct RepoCommands;

/// Declares the commands and their options on app.
std::shared_ptr<RepoCommands> add_repo_commands(CLI::App& app);

/// Runs the chosen command when it is one of these; nullopt otherwise.
std::optional<int> run_repo_commands(RepoCommands& cmds, const api::Client& client);

}  // namespace berth::cli
