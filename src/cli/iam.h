// SPDX-License-Identifier: Apache-2.0
// `berth iam ...`: users, access keys, roles, identity policies and the policy simulator.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "api/client.h"
#include "common/json.h"
#include "common/result.h"

namespace berth::cli {

struct IamCommands;

/// Declares the commands and their options on app.
std::shared_ptr<IamCommands> add_iam_commands(CLI::App& app);

/// Runs the chosen command when it is one of these; nullopt otherwise.
std::optional<int> run_iam_commands(IamCommands& cmds, const api::Client& client);

/// Reads and parses a policy document; InvalidArgument (exit 2) when unreadable or not JSON.
Result<Json> read_policy_file(const std::string& path);

}  // namespace berth::cli
