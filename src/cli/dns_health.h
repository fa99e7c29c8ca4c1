// SPDX-License-Identifier: Apache-2.0
// `berth dns healthcheck create|ls|show|rm`: the health checks berth runs (docs/dns.md).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "api/client.h"

namespace berth::cli {

struct DnsHealthCommands;

/// Declares `healthcheck` and its commands under the `dns` command.
std::shared_ptr<DnsHealthCommands> add_dns_health_commands(CLI::App& dns);

/// Runs the chosen command when it is one of these; nullopt otherwise.
std::optional<int> run_dns_health_commands(DnsHealthCommands& cmds, const api::Client& client);

}  // namespace berth::cli
