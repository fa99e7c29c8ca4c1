// SPDX-License-Identifier: Apache-2.0
// Authorization seam called by every handler before it acts. Until users, keys and policies
// land (issue 3), the only implementation allows everything; handlers already name the
// action ("registry:Push") and resource ("repository/web/app") they need.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace berth::iam {

struct Request {
  std::string principal;  // "anonymous" until authentication lands
  std::string action;     // "registry:Pull"
  std::string resource;   // "repository/web/app"
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  /// PermissionDenied with "AccessDenied: <principal> may not <action> on <resource>" when
  /// refused. Pure and quick: safe to call on an I/O thread.
  virtual Status authorize(const Request& req) const = 0;
};

using AuthorizerPtr = std::shared_ptr<const Authorizer>;

/// Allows every request. The default until IAM lands.
AuthorizerPtr allow_all();

/// The message every denial uses.
std::string denial_message(const Request& req);

}  // namespace berth::iam
