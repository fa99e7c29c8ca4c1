// SPDX-License-Identifier: Apache-2.0
#include "iam/iam.h"

namespace berth::iam {

namespace {
class AllowAll final : public Authorizer {
 public:
  Status authorize(const Request&) const override { return ok(); }
};
}  // namespace

AuthorizerPtr allow_all() { return std::make_shared<AllowAll>(); }

std::string denial_message(const Request& req) {
  // "repository/web/app" reads as "repository web/app".
  std::string resource = req.resource;
  auto slash = resource.find('/');
  if (slash != std::string::npos) {
    resource[slash] = ' ';
  }
  return "AccessDenied: " + req.principal + " may not " + req.action + " on " + resource;
}

}  // namespace berth::iam
