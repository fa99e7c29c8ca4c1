// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the API's handler files (private to src/api).
#pragma once

#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "http/http.h"

namespace berth::api {

/// A JSON reply, and the {"error":{"code","message"}} reply for an error.
http::Response json_response(unsigned status, const Json& body);
http::Response error_response(const Error& e);

/// A request body that must be a JSON object ("" = {}). InvalidArgument otherwise.
Result<Json> parse_object_body(const std::string& body);

/// Splits "a/b/c" into its segments.
std::vector<std::string> segments(const std::string& path);

}  // namespace berth::api
