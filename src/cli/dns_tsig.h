// SPDX-License-Identifier: Apache-2.0
// `berth dns tsig create|ls|rm`: the TSIG keys that sign dynamic updates (docs/dns.md).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "api/client.h"

namespace berth::cli {

struct DnsTsigCommands;

/// Declares `tsig` and its commands under the `dns` command.
std::shared_ptr<DnsTsigCommands> add_dns_tsig_commands(CLI::App& dns);

/// Runs the chosen command when it is one of these; nullopt otherwise.
std::optional<int> run_dns_tsig_commands(DnsTsigCommands& cmds, const api::Client& client);

}  // namespace berth::cli
