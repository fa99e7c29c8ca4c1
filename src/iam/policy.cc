// SPDX-License-Identifier: Apache-2.0
// Policy documents and their evaluation: pure, no I/O.
#include <algorithm>
#include <cctype>

#include "common/ascii.h"
#include "common/json.h"
#include "iam/iam.h"
#include "oci/oci.h"

namespace berth::iam {

using ascii::lower;

namespace {

Result<std::vector<std::string>> string_list(const Json& j, const std::string& where) {
  std::vector<std::string> out;
  if (j.is_string()) {
    out.push_back(j.get<std::string>());
  } else if (j.is_array() && !j.empty()) {
    for (const auto& e : j) {
      if (!e.is_string() || e.get<std::string>().empty()) {
        return Error(Errc::InvalidArgument, where + ": every entry must be a non-empty string");
      }
      out.push_back(e.get<std::string>());
    }
  } else {
    return Error(Errc::InvalidArgument, where + ": expected a string or a non-empty list");
  }
  for (const auto& s : out) {
    if (s.empty()) {
      return Error(Errc::InvalidArgument, where + ": empty value");
    }
  }
  return out;
}

bool any_match(const std::vector<std::string>& patterns, const std::string& value,
               bool case_insensitive) {
  for (const auto& p : patterns) {
    if (case_insensitive ? oci::glob_match(lower(p), lower(value)) : oci::glob_match(p, value)) {
      return true;
    }
  }
  return false;
}

bool applies(const Statement& st, const Request& req, bool resource_policy) {
  if (resource_policy && !any_match(st.principals, req.principal, false)) {
    return false;
  }
  return any_match(st.actions, req.action, true) && any_match(st.resources, req.resource, false);
}

}  // namespace

Result<Policy> parse_policy(std::string_view json, std::string name, bool is_resource_policy) {
  BERTH_ASSIGN_OR_RETURN(Json doc, parse_json(json, "policy"));
  if (!doc.is_object()) {
    return Error(Errc::InvalidArgument, "policy must be a JSON object");
  }
  if (auto v = doc.find("Version"); v != doc.end() && v->is_string()) {
    if (*v != "2012-10-17") {
      return Error(Errc::InvalidArgument, "Version must be \"2012-10-17\"");
    }
  } else {
    return Error(Errc::InvalidArgument, "Version is required (\"2012-10-17\")");
  }
  auto sts = doc.find("Statement");
  if (sts == doc.end()) {
    return Error(Errc::InvalidArgument, "Statement is required");
  }
  Json list = sts->is_object() ? Json::array({*sts}) : *sts;
  if (!list.is_array() || list.empty()) {
    return Error(Errc::InvalidArgument, "Statement must be a non-empty list");
  }
  Policy p;
  p.name = std::move(name);
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& s = list[i];
    std::string where = "Statement[" + std::to_string(i) + "]";
    if (!s.is_object()) {
      return Error(Errc::InvalidArgument, where + ": must be an object");
    }
    Statement st;
    if (auto sid = s.find("Sid"); sid != s.end()) {
      if (!sid->is_string()) {
        return Error(Errc::InvalidArgument, where + ".Sid: must be a string");
      }
      st.sid = sid->get<std::string>();
    }
    auto effect = s.find("Effect");
    if (effect == s.end() || !effect->is_string() || (*effect != "Allow" && *effect != "Deny")) {
      return Error(Errc::InvalidArgument, where + ".Effect: must be \"Allow\" or \"Deny\"");
    }
    st.allow = *effect == "Allow";
    auto action = s.find("Action");
    if (action == s.end()) {
      return Error(Errc::InvalidArgument, where + ".Action: is required");
    }
    BERTH_ASSIGN_OR_RETURN(st.actions, string_list(*action, where + ".Action"));
    for (const auto& a : st.actions) {
      if (a != "*" && a.find(':') == std::string::npos) {
        return Error(Errc::InvalidArgument,
                     where + ".Action: '" + a + "' must look like namespace:Name (or *)");
      }
    }
    auto resource = s.find("Resource");
    if (resource == s.end()) {
      return Error(Errc::InvalidArgument, where + ".Resource: is required");
    }
    BERTH_ASSIGN_OR_RETURN(st.resources, string_list(*resource, where + ".Resource"));
    auto principal = s.find("Principal");
    if (is_resource_policy) {
      if (principal == s.end()) {
        return Error(Errc::InvalidArgument, where + ".Principal: is required in a resource policy");
      }
      BERTH_ASSIGN_OR_RETURN(st.principals, string_list(*principal, where + ".Principal"));
    } else if (principal != s.end()) {
      return Error(Errc::InvalidArgument,
                   where + ".Principal: only resource policies name principals");
    }
    p.statements.push_back(std::move(st));
  }
  return p;
}

Decision evaluate(const std::vector<Policy>& identity_policies, const Policy* resource_policy,
                  const Request& req) {
  const Statement* allow = nullptr;
  const Policy* allow_policy = nullptr;
  auto scan = [&](const Policy& p, bool resource) -> std::optional<Decision> {
    for (const auto& st : p.statements) {
      if (!applies(st, req, resource)) {
        continue;
      }
      if (!st.allow) {
        return Decision{false, p.name, st.sid, "explicit deny"};
      }
      if (allow == nullptr) {
        allow = &st;
        allow_policy = &p;
      }
    }
    return std::nullopt;
  };
  for (const auto& p : identity_policies) {
    if (auto d = scan(p, false)) {
      return *d;
    }
  }
  if (resource_policy != nullptr) {
    if (auto d = scan(*resource_policy, true)) {
      return *d;
    }
  }
  if (allow != nullptr) {
    return Decision{true, allow_policy->name, allow->sid, "allowed"};
  }
  return Decision{false, "", "", "no statement allows it"};
}

}  // namespace berth::iam
