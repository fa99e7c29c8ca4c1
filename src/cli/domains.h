// SPDX-License-Identifier: Apache-2.0
// `berth domain link|ls|show|unlink` and `berth ca export` (docs/domains.md).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "api/client.h"

namespace berth::cli {

struct DomainCommands;

/// Declares `domain` and `ca` and their commands.
std::shared_ptr<DomainCommands> add_domain_commands(CLI::App& app);

/// Runs the chosen command when it is one of these; nullopt otherwise.
std::optional<int> run_domain_commands(DomainCommands& cmds, const api::Client& client);

}  // namespace berth::cli
