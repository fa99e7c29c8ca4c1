// SPDX-License-Identifier: Apache-2.0
// `berth dns ...`: hosted zones, record sets, change batches and zone files over the API.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "api/client.h"

namespace berth::cli {

struct DnsCommands;

/// Declares the commands and their options on app.
std::shared_ptr<DnsCommands> add_dns_commands(CLI::App& app);

/// Runs the chosen command when it is one of these; nullopt otherwise.
std::optional<int> run_dns_commands(DnsCommands& cmds, const api::Client& client);

}  // namespace berth::cli
