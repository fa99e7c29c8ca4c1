// SPDX-License-Identifier: Apache-2.0
// `berth console`: a one-time sign-in link to the web console (docs/console.md).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "api/client.h"

namespace berth::cli {

struct ConsoleCommands;

std::shared_ptr<ConsoleCommands> add_console_commands(CLI::App& app);

/// Runs `berth console` when it was chosen; nullopt otherwise.
std::optional<int> run_console_commands(ConsoleCommands& cmds, const api::Client& client);

}  // namespace berth::cli
