// SPDX-License-Identifier: Apache-2.0
// Private to src/tls. Which published certificate answers a TLS server name (SNI): the
// exact name first, then a wildcard "*.example.com" covering exactly one more label, else the
// first certificate published. Pure: no OpenSSL, no sockets (tests/unit/tls/).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace berth::tls::detail {

class CertIndex {
 public:
  /// names[i] are certificate i's DNS names (lower case; "*.x.y" wildcards). A name listed by
  /// two certificates goes to the first.
  explicit CertIndex(const std::vector<std::vector<std::string>>& names);
  CertIndex() = default;

  /// The certificate for a server name (any case, one trailing dot allowed; empty: no SNI).
  /// nullopt only when no certificate is published.
  std::optional<size_t> pick(std::string_view server_name) const;

  size_t size() const { return count_; }

 private:
  std::unordered_map<std::string, size_t> exact_;
  std::unordered_map<std::string, size_t> wildcard_;  // "example.com" for "*.example.com"
  size_t count_ = 0;
};

/// Checks one certificate name: lower-case LDH labels, an optional leading "*." wildcard
/// label. The error text says what is wrong.
std::optional<std::string> check_cert_name(std::string_view name);

}  // namespace berth::tls::detail
