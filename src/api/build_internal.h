// SPDX-License-Identifier: Apache-2.0
// Private to build.cc and git.cc: what the build API and berth's git remote share.
#pragma once

#include <string>

#include "api/api.h"
#include "http/http.h"

namespace berth::api {

/// A project name as the store and the git remote's paths accept it.
bool plausible_project_name(const std::string& n);
/// A text/plain reply (git's clients print the body).
http::Response text_response(unsigned status, std::string body);
/// 412 with why builds are not available on this berthd.
awaitable<void> reply_unavailable(http::Exchange& ex, const BuildSettings& s);

}  // namespace berth::api
