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
  return "AccessDenied: " + req.principal + " may not " + req.action + " on " + req.resource;
}

}  // namespace berth::iam
