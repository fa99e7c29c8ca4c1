// SPDX-License-Identifier: Apache-2.0
#include "common/json.h"

namespace berth {

Result<Json> parse_json(std::string_view text, const char* what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Error(Errc::InvalidArgument, std::string(what) + " is not valid JSON");
  }
  return j;
}

}  // namespace berth
