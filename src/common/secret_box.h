// SPDX-License-Identifier: Apache-2.0
// Secret values at rest: AES-256-GCM with one key per data directory (DATA/secrets.key, mode
// 0600). Services seal their secret env with it, build projects their webhook secret, git
// credentials and secret build env.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace berth {

class SecretBox {
 public:
  /// Reads the 32-byte key at path, or creates it (mode 0600) when the file is absent.
  static Result<std::shared_ptr<SecretBox>> load_or_create(const std::string& path);
  /// "v1:" + base64(nonce | ciphertext | tag).
  std::string seal(const std::string& plaintext) const;
  /// DataLoss when the value is malformed or was sealed with another key.
  Result<std::string> open(const std::string& sealed) const;

 private:
  std::string key_;
};

}  // namespace berth
