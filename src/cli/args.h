// SPDX-License-Identifier: Apache-2.0
// Parsing the command line: CLI11's errors become docs/cli.md's (`berth: MESSAGE`, exit 2),
// and an unknown command is named as such, with the closest known one.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace berth::cli {

/// Parses argv into app. nullopt when the command should run; else the exit status, after
/// the help (0) or a `berth: ...` error on stderr (2) was printed.
std::optional<int> parse_args(CLI::App& app, int argc, char** argv);

/// The known word closest to `word` (a small edit distance or a prefix), "" when none is.
std::string closest(const std::string& word, const std::vector<std::string>& known);

}  // namespace berth::cli
