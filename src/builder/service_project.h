// SPDX-License-Identifier: Apache-2.0
// Build projects inside the build module: names, the stored form of a spec (secrets sealed),
// the secrets a build log must mask, and URL credential helpers. Pure except for the
// SecretBox. Private to src/build (project.cc implements it, service.cc uses it).
#pragma once

#include <string>
#include <vector>

#include "builder/build.h"
#include "common/result.h"
#include "common/secret_box.h"

namespace berth::builder {

/// Concatenates strings, string_views, C strings and chars by appending (GCC 12 at -O3 warns
/// falsely on "literal" + std::string).
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  ((out += parts), ...);
  return out;
}

/// [a-z0-9][a-z0-9-]{0,62}; InvalidArgument "name: ..." otherwise.
Status validate_project_name(const std::string& name);

/// The stored JSON: the request form with git_password and secret_build_args values sealed.
std::string project_to_store(const ProjectSpec& spec, const SecretBox& box);
/// Back from the stored form. DataLoss when it is not JSON or a sealed value does not open.
Result<ProjectSpec> project_from_store(const std::string& json, const SecretBox& box);

/// The URL with any user:password removed (what the image label and the build record show).
std::string url_without_credentials(const std::string& url);

/// Every value of the project a build log must never show: the git password, the secret build
/// args' values (empty ones skipped).
std::vector<std::string> project_secrets(const ProjectSpec& spec);

/// True for file:// URLs (refused unless build.allow_file_remotes).
bool is_file_remote(const std::string& url);

}  // namespace berth::builder
