// SPDX-License-Identifier: Apache-2.0
#include "tls/cert_index.h"

#include "common/ascii.h"

namespace berth::tls::detail {

CertIndex::CertIndex(const std::vector<std::vector<std::string>>& names) : count_(names.size()) {
  for (size_t i = 0; i < names.size(); ++i) {
    for (const auto& n : names[i]) {
      if (n.size() > 2 && n[0] == '*' && n[1] == '.') {
        wildcard_.emplace(std::string(std::string_view(n).substr(2)), i);
      } else {
        exact_.emplace(n, i);
      }
    }
  }
}

std::optional<size_t> CertIndex::pick(std::string_view server_name) const {
  if (count_ == 0) {
    return std::nullopt;
  }
  if (!server_name.empty() && server_name.back() == '.') {
    server_name.remove_suffix(1);
  }
  if (server_name.empty() || server_name.size() > 253) {
    return 0;
  }
  std::string name(server_name);
  for (auto& c : name) {
    c = ascii::lower(c);
  }
  if (auto it = exact_.find(name); it != exact_.end()) {
    return it->second;
  }
  // A wildcard covers exactly one label: "a.example.com" but not "b.a.example.com", nor
  // "example.com" itself.
  if (auto dot = name.find('.'); dot != std::string::npos && dot > 0) {
    if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) {
      return it->second;
    }
  }
  return 0;
}

namespace {

// name in quotes, then why (built by appending: GCC 12 -O3 warns falsely on "'" + string).
std::string quoted(std::string_view before, std::string_view name, std::string_view why) {
  std::string out(before);
  out.push_back('\'');
  out.append(name);
  out.push_back('\'');
  out.append(why);
  return out;
}

}  // namespace

std::optional<std::string> check_cert_name(std::string_view name) {
  if (name.empty() || name.size() > 253) {
    return "a DNS name must be 1 to 253 characters";
  }
  std::string_view rest = name;
  if (rest.size() > 2 && rest.substr(0, 2) == "*.") {
    rest.remove_prefix(2);
  }
  size_t labels = 0;
  while (true) {
    size_t dot = rest.find('.');
    std::string_view label = rest.substr(0, dot);
    if (label.empty() || label.size() > 63) {
      return quoted("empty or over-long label in ", name, "");
    }
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!ok) {
        return quoted("", name, " is not a lower-case DNS name");
      }
    }
    ++labels;
    if (dot == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(dot + 1);
  }
  if (name[0] == '*' && labels < 2) {
    return quoted("wildcard ", name, " must cover a name with at least two labels");
  }
  return std::nullopt;
}

}  // namespace berth::tls::detail
