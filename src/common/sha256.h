// SPDX-License-Identifier: Apache-2.0
// Streaming SHA-256 (OpenSSL EVP). The hasher can be copied to fork its state.
#pragma once

#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace berth {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256& other);
  Sha256& operator=(const Sha256& other);
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Lowercase hex of the digest of everything so far; the hasher stays usable.
  std::string hex() const;

  /// One-shot helper.
  static std::string hex_of(std::string_view s);

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace berth
