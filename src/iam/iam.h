// SPDX-License-Identifier: Apache-2.0
// Authorization seam called by every handler before it acts. Until users, keys and policies
// land (issue 3), the only implementation allows everything; handlers already name the
// action ("registry:Push") and resource ("repository/web/app") they need.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// ---- Policies (pure) ------------------------------------------------------------------------

/// One statement of a policy document in the familiar cloud shape.
struct Statement {
  std::string sid;
  bool allow = false;
  std::vector<std::string> actions;     // "registry:Pull", "registry:*", "*"
  std::vector<std::string> resources;   // "repository/web/*"
  std::vector<std::string> principals;  // resource policies only: "user/alice", "role/x", "*"
};

struct Policy {
  std::string name;
  std::vector<Statement> statements;
};

/// Parses {"Version":"2012-10-17","Statement":[{"Sid","Effect","Action","Resource"}]}. Action,
/// Resource and Principal may be a string or a list. A resource policy (is_resource_policy)
/// needs "Principal" in every statement; an identity policy must not have one. Errors are
/// InvalidArgument naming the statement and field ("Statement[1].Effect: ...").
Result<Policy> parse_policy(std::string_view json, std::string name, bool is_resource_policy);

/// Why a request was allowed or denied, for the API, `berth iam simulate` and the audit log.
struct Decision {
  bool allowed = false;
  std::string policy;  // the policy of the deciding statement ("" when nothing matched)
  std::string sid;     // its Sid
  std::string reason;  // "explicit deny", "allowed", "no statement allows it"
};

/// Default deny; an explicit Deny in any applicable statement wins over every Allow. `*` and
/// `?` are wildcards in actions (case-insensitive) and resources (case-sensitive). A resource
/// policy's statements apply when one of their principals matches req.principal ("*" matches
/// everyone, anonymous included).
Decision evaluate(const std::vector<Policy>& identity_policies, const Policy* resource_policy,
                  const Request& req);

}  // namespace berth::iam
