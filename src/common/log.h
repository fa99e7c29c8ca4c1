// SPDX-License-Identifier: Apache-2.0
// One named spdlog logger per subsystem ("registry", "http", "store", ...). Messages are
// "event key=value ...". Never log secrets.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace berth::log {

/// The named logger, created on first use with the shared sink.
std::shared_ptr<spdlog::logger> get(const std::string& name);

/// Sets every logger's level from "trace|debug|info|warn|error|off".
void set_level(const std::string& level);

}  // namespace berth::log
