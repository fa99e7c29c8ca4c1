// SPDX-License-Identifier: Apache-2.0
// `berth service ...` and `berth logs`: services over the control API.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "api/client.h"

namespace berth::cli {

struct ServiceCommands;

/// Declares the commands and their options on app.
std::shared_ptr<ServiceCommands> add_service_commands(CLI::App& app);

/// Runs the chosen command when it is one of these; nullopt otherwise.
std::optional<int> run_service_commands(ServiceCommands& cmds, const api::Client& client);

}  // namespace berth::cli
