// SPDX-License-Identifier: Apache-2.0
// `berth build ...`: build projects and builds over the control API.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "api/client.h"

namespace berth::cli {

struct BuildCommands;

/// Declares the commands and their options on app.
std::shared_ptr<BuildCommands> add_build_commands(CLI::App& app);

/// Runs the chosen command when it is one of these; nullopt otherwise. The access key (empty
/// id: anonymous) authenticates the streamed log requests, which bypass client's buffering.
std::optional<int> run_build_commands(BuildCommands& cmds, const api::Client& client,
                                      const std::string& access_key_id, const std::string& secret);

}  // namespace berth::cli
