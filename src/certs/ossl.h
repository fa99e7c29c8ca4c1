// SPDX-License-Identifier: Apache-2.0
// Private to certs: OpenSSL handles as unique_ptrs, PEM in and out, and the errors OpenSSL
// leaves on its queue turned into berth Errors.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "certs/certs.h"
#include "common/openssl.h"

namespace berth::certs::detail {

using ossl::PkeyPtr;
using ossl::X509Ptr;
using X509ReqPtr = ossl::Ptr<X509_REQ, X509_REQ_free>;

/// The oldest error on OpenSSL's queue (or "unknown error"); the queue is cleared.
std::string openssl_error();
/// An Errc error whose message is what + ": " + openssl_error().
Error ossl_fail(Errc code, const std::string& what);

/// A new P-256 key.
Result<PkeyPtr> new_p256_key();
/// A private key from PEM (PKCS#8 or SEC1); InvalidArgument when it does not parse.
Result<PkeyPtr> read_private_key(std::string_view pem);
/// True when the key is an EC key on P-256.
bool is_p256(EVP_PKEY* key);
/// PKCS#8 PEM of a private key.
Result<std::string> private_key_pem(EVP_PKEY* key);
/// Every certificate of a PEM chain, in order; InvalidArgument when there is none or one does
/// not parse.
Result<std::vector<X509Ptr>> read_certificates(std::string_view pem);
/// PEM of one certificate.
Result<std::string> certificate_pem(X509* cert);
/// What inspect() reports about one certificate.
Result<CertInfo> describe(X509* cert);
/// SHA-256 of data, raw bytes.
std::string sha256_raw(std::string_view data);
/// n random bytes from OpenSSL's CSPRNG.
Result<std::string> random_bytes(size_t n);
/// A CSR (DER) for names (SAN, and CN = the first when it fits) signed by key.
Result<std::string> make_csr_der(const std::vector<std::string>& names, EVP_PKEY* key);

}  // namespace berth::certs::detail
