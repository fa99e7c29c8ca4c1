// SPDX-License-Identifier: Apache-2.0
// Private to certs (tests include it): JSON Web Keys, RFC 7638 thumbprints and the flattened
// JWS (RFC 7515) that every ACME POST carries, signed ES256 with the raw r||s signature.
// Pure: no I/O.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"

namespace berth::certs::jws {

/// The public JWK of a P-256 key: {"crv":"P-256","kty":"EC","x":...,"y":...}.
Result<Json> public_jwk(EVP_PKEY* key);
/// RFC 7638 thumbprint: base64url(SHA-256(the required members in lexicographic order, no
/// whitespace)). EC (crv, kty, x, y) and RSA (e, kty, n) keys; InvalidArgument otherwise.
Result<std::string> thumbprint(const Json& jwk);
/// ES256 over input: the 64-byte r||s (JWS, RFC 7518 3.4), not DER.
Result<std::string> es256_sign(EVP_PKEY* key, std::string_view input);
/// Checks an ES256 r||s signature (tests, and a self-check).
bool es256_verify(EVP_PKEY* key, std::string_view input, std::string_view signature);

/// The flattened JSON serialization {"protected","payload","signature"}. The protected
/// header has alg ES256, nonce, url, and jwk (when kid is empty: newAccount) or kid.
/// payload empty: POST-as-GET (an empty payload, not "{}").
Result<std::string> sign(EVP_PKEY* key, std::string_view kid, std::string_view nonce,
                         std::string_view url, std::string_view payload);

/// token "." thumbprint (RFC 8555 8.1).
std::string key_authorization(std::string_view token, std::string_view thumbprint);
/// base64url(SHA-256(key_authorization)): the DNS-01 TXT value (RFC 8555 8.4).
std::string dns01_value(std::string_view key_authorization);

}  // namespace berth::certs::jws
