// SPDX-License-Identifier: Apache-2.0
#include "certs/jws.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>

#include "certs/ossl.h"
#include "common/url.h"

namespace berth::certs::jws {

using detail::ossl_fail;

namespace {

// A P-256 coordinate: exactly 32 big-endian bytes, base64url.
Result<std::string> coordinate(EVP_PKEY* key, const char* param) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) {
    return ossl_fail(Errc::Internal, "read EC public key");
  }
  unsigned char buf[32];
  int n = BN_bn2binpad(bn, buf, sizeof buf);
  BN_free(bn);
  if (n != 32) {
    return Error(Errc::Internal, "EC coordinate is not 32 bytes");
  }
  return b64::url_encode(std::string_view(reinterpret_cast<char*>(buf), sizeof buf));
}

bool string_member(const Json& j, const char* key) { return j.contains(key) && j[key].is_string(); }

}  // namespace

Result<Json> public_jwk(EVP_PKEY* key) {
  if (!detail::is_p256(key)) {
    return Error(Errc::InvalidArgument, "account key: only ECDSA P-256 keys are supported");
  }
  Json jwk = Json::object();
  jwk["kty"] = "EC";
  jwk["crv"] = "P-256";
  BERTH_ASSIGN_OR_RETURN(std::string x, coordinate(key, OSSL_PKEY_PARAM_EC_PUB_X));
  BERTH_ASSIGN_OR_RETURN(std::string y, coordinate(key, OSSL_PKEY_PARAM_EC_PUB_Y));
  jwk["x"] = std::move(x);
  jwk["y"] = std::move(y);
  return jwk;
}

Result<std::string> thumbprint(const Json& jwk) {
  if (!jwk.is_object() || !string_member(jwk, "kty")) {
    return Error(Errc::InvalidArgument, "JWK: no \"kty\"");
  }
  std::string kty = jwk["kty"].get<std::string>();
  // Json objects keep their members sorted, so dump() is RFC 7638's canonical form once
  // only the required members are in it.
  Json required = Json::object();
  const char* const* members = nullptr;
  static const char* const kEc[] = {"crv", "kty", "x", "y", nullptr};
  static const char* const kRsa[] = {"e", "kty", "n", nullptr};
  if (kty == "EC") {
    members = kEc;
  } else if (kty == "RSA") {
    members = kRsa;
  } else {
    return Error(Errc::InvalidArgument, "JWK: unsupported kty \"" + kty + "\"");
  }
  for (const char* const* m = members; *m != nullptr; ++m) {
    if (!string_member(jwk, *m)) {
      return Error(Errc::InvalidArgument, std::string("JWK: no \"") + *m + "\"");
    }
    required[*m] = jwk[*m];
  }
  return b64::url_encode(detail::sha256_raw(required.dump()));
}

Result<std::string> es256_sign(EVP_PKEY* key, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string der;
  bool ok_sig =
      ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) == 1;
  if (ok_sig) {
    der.resize(len);
    ok_sig =
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    der.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok_sig) {
    return ossl_fail(Errc::Internal, "ES256 sign");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) {
    return ossl_fail(Errc::Internal, "ES256 signature");
  }
  unsigned char raw[64];
  bool fits = BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
              BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  if (!fits) {
    return Error(Errc::Internal, "ES256 signature does not fit 64 bytes");
  }
  return std::string(reinterpret_cast<char*>(raw), sizeof raw);
}

bool es256_verify(EVP_PKEY* key, std::string_view input, std::string_view signature) {
  if (signature.size() != 64) {
    return false;
  }
  const auto* raw = reinterpret_cast<const unsigned char*>(signature.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, nullptr), BN_bin2bn(raw + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (der_len <= 0) {
    return false;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool good =
      ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, der, static_cast<size_t>(der_len),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return good;
}

Result<std::string> sign(EVP_PKEY* key, std::string_view kid, std::string_view nonce,
                         std::string_view url, std::string_view payload) {
  Json header = Json::object();
  header["alg"] = "ES256";
  header["nonce"] = std::string(nonce);
  header["url"] = std::string(url);
  if (kid.empty()) {
    BERTH_ASSIGN_OR_RETURN(header["jwk"], public_jwk(key));
  } else {
    header["kid"] = std::string(kid);
  }
  std::string protected_b64 = b64::url_encode(header.dump());
  std::string payload_b64 = b64::url_encode(payload);
  BERTH_ASSIGN_OR_RETURN(std::string sig, es256_sign(key, protected_b64 + "." + payload_b64));
  Json out = Json::object();
  out["protected"] = std::move(protected_b64);
  out["payload"] = std::move(payload_b64);
  out["signature"] = b64::url_encode(sig);
  return out.dump();
}

std::string key_authorization(std::string_view token, std::string_view thumbprint) {
  return std::string(token) + "." + std::string(thumbprint);
}

std::string dns01_value(std::string_view key_authorization) {
  return b64::url_encode(detail::sha256_raw(key_authorization));
}

}  // namespace berth::certs::jws
