// SPDX-License-Identifier: Apache-2.0
#include "common/secret_box.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "common/fs.h"
#include "common/url.h"

namespace berth {

Result<std::shared_ptr<SecretBox>> SecretBox::load_or_create(const std::string& path) {
  auto box = std::make_shared<SecretBox>();
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    box->key_ = ss.str();
    if (box->key_.size() != 32) {
      return Error(Errc::DataLoss, path + ": expected a 32-byte key");
    }
    return box;
  }
  box->key_.resize(32);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(box->key_.data()), 32) != 1) {
    return Error(Errc::Internal, "cannot generate a secrets key");
  }
  BERTH_TRY(fs::write_atomic(path, box->key_, 0600));
  return box;
}

// "v1:" + base64(nonce(12) | ciphertext | tag(16)).
std::string SecretBox::seal(const std::string& plaintext) const {
  unsigned char nonce[12];
  RAND_bytes(nonce, sizeof nonce);
  std::string out(reinterpret_cast<char*>(nonce), sizeof nonce);
  out.resize(12 + plaintext.size() + 16);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key_.data()), nonce);
  EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()) + 12, &len,
                    reinterpret_cast<const unsigned char*>(plaintext.data()),
                    static_cast<int>(plaintext.size()));
  EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + 12 + len, &len);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16,
                      reinterpret_cast<unsigned char*>(out.data()) + 12 + plaintext.size());
  EVP_CIPHER_CTX_free(ctx);
  return "v1:" + b64::encode(out);
}

Result<std::string> SecretBox::open(const std::string& sealed) const {
  auto raw = sealed.rfind("v1:", 0) == 0 ? b64::decode(sealed.substr(3)) : std::nullopt;
  if (!raw || raw->size() < 28) {
    return Error(Errc::DataLoss, "a stored secret is malformed");
  }
  size_t n = raw->size() - 28;
  std::string out(n, '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  auto* in = reinterpret_cast<unsigned char*>(raw->data());
  EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key_.data()), in);
  EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, in + 12,
                    static_cast<int>(n));
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, in + 12 + n);
  int okf = EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &len);
  EVP_CIPHER_CTX_free(ctx);
  if (okf != 1) {
    return Error(Errc::DataLoss, "a stored secret does not decrypt with DATA/secrets.key");
  }
  return out;
}

}  // namespace berth
