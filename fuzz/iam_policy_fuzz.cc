// SPDX-License-Identifier: Apache-2.0
// IAM policy documents (PUT /api/v1/iam/.../policies, repository policies): parse_policy as an
// identity and as a resource policy, then evaluate() a few requests against what parsed, so the
// wildcard matcher runs on patterns the parser let through.
#include <string>
#include <vector>

#include "fuzz.h"
#include "iam/iam.h"

BERTH_FUZZ_TARGET(iam_policy) {
  using namespace berth;
  fuzz::quiet_logs();
  std::string_view json = fuzz::as_view(data, size);
  auto identity = iam::parse_policy(json, "fuzz", false);
  auto resource = iam::parse_policy(json, "fuzz-resource", true);
  std::vector<iam::Policy> ids;
  if (identity) {
    ids.push_back(*identity);
  }
  const iam::Policy* rp = resource ? &*resource : nullptr;
  const iam::Request requests[] = {
      {"user/alice", "registry:Pull", "repository/web/app"},
      {"anonymous", "registry:Push", "repository/a"},
      {"role/ci", "iam:PutPolicy", "*"},
      {"user/" + std::string(json.substr(0, 64)), std::string(json.substr(0, 32)),
       "repository/" + std::string(json.substr(0, 64))},
  };
  for (const auto& req : requests) {
    auto d = iam::evaluate(ids, rp, req);
    if (ids.empty() && rp == nullptr) {
      BERTH_FUZZ_CHECK(!d.allowed);  // default deny
    }
  }
  return 0;
}
