// SPDX-License-Identifier: Apache-2.0
// buildspec.yml: optional commands a build runs in the builder image before the Dockerfile,
// with the checkout at /src (read-write), so they can generate files the Dockerfile copies.
//
//   version: 0.2
//   env:
//     variables: {GOFLAGS: -mod=vendor}
//   phases:
//     install:    {commands: [...]}
//     pre_build:  {commands: [...]}
//     build:      {commands: [...]}
//     post_build: {commands: [...]}
//
// Pure (yaml-cpp, no I/O). Private to src/build.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace berth::builder {

struct BuildspecPhase {
  std::string name;  // install, pre_build, build, post_build
  std::vector<std::string> commands;
};

struct Buildspec {
  std::vector<std::pair<std::string, std::string>> variables;  // in file order
  std::vector<BuildspecPhase> phases;  // in run order; phases without commands left out
};

/// Parses buildspec.yml. Errors are InvalidArgument naming the file and the field:
/// "buildspec.yml: phases.build.commands: expected a list of strings".
Result<Buildspec> parse_buildspec(const std::string& text);

}  // namespace berth::builder
