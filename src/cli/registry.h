// SPDX-License-Identifier: Apache-2.0
// `berth registry upstream create|ls|show|rm|test` (docs/registry.md, "Pull-through cache").
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "api/client.h"

namespace berth::cli {

struct RegistryCommands;

/// Declares `registry` and its commands.
std::shared_ptr<RegistryCommands> add_registry_commands(CLI::App& app);

/// Runs the chosen command when it is one of these; nullopt otherwise.
std::optional<int> run_registry_commands(RegistryCommands& cmds, const api::Client& client);

}  // namespace berth::cli
