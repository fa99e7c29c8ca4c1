// SPDX-License-Identifier: Apache-2.0
// berth's own certificate authority: a self-signed P-256 root and the leaves it signs.
#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "certs/ossl.h"

namespace berth::certs {

using namespace detail;

namespace {

constexpr int64_t kRootLifetimeSeconds = int64_t{10} * 365 * 24 * 3600 + int64_t{3} * 24 * 3600;
constexpr int64_t kBackdateSeconds = 3600;  // clocks that run a little behind still accept it

// A random positive 127-bit serial (RFC 5280 allows up to 20 octets; CAs use >= 64 bits).
Status set_random_serial(X509* cert) {
  BERTH_ASSIGN_OR_RETURN(std::string bytes, random_bytes(16));
  bytes[0] = static_cast<char>(static_cast<unsigned char>(bytes[0]) & 0x7f);
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), 16, nullptr);
  ASN1_INTEGER* serial = bn != nullptr ? BN_to_ASN1_INTEGER(bn, nullptr) : nullptr;
  BN_free(bn);
  if (serial == nullptr || X509_set_serialNumber(cert, serial) != 1) {
    ASN1_INTEGER_free(serial);
    return ossl_fail(Errc::Internal, "certificate serial");
  }
  ASN1_INTEGER_free(serial);
  return ok();
}

Status add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    return ossl_fail(Errc::Internal, std::string("certificate extension ") + OBJ_nid2sn(nid));
  }
  int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (added != 1) {
    return ossl_fail(Errc::Internal, std::string("certificate extension ") + OBJ_nid2sn(nid));
  }
  return ok();
}

// A certificate with version 3, a random serial, the validity window and the public key set.
Result<X509Ptr> new_certificate(EVP_PKEY* pub, int64_t not_before_offset, int64_t lifetime) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) {
    return ossl_fail(Errc::Internal, "new certificate");
  }
  BERTH_TRY(set_random_serial(cert.get()));
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(not_before_offset)) ==
          nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                      static_cast<long>(not_before_offset + lifetime)) == nullptr ||
      X509_set_pubkey(cert.get(), pub) != 1) {
    return ossl_fail(Errc::Internal, "certificate validity");
  }
  return cert;
}

Result<std::string> public_key_id(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) {
    return ossl_fail(Errc::Internal, "encode public key");
  }
  std::string digest =
      sha256_raw(std::string_view(reinterpret_cast<char*>(der), static_cast<size_t>(n)));
  OPENSSL_free(der);
  static const char* kHex = "0123456789abcdef";
  std::string id;
  for (size_t i = 0; i < 4; ++i) {
    auto b = static_cast<unsigned char>(digest[i]);
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

}  // namespace

Result<Authority> Authority::create() {
  BERTH_ASSIGN_OR_RETURN(auto key, new_p256_key());
  BERTH_ASSIGN_OR_RETURN(std::string id, public_key_id(key.get()));
  BERTH_ASSIGN_OR_RETURN(auto cert, new_certificate(key.get(), -kBackdateSeconds,
                                                    kRootLifetimeSeconds + kBackdateSeconds));
  std::string cn = "berth root CA " + id;
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("berth"), -1, -1, 0);
  X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  if (X509_set_issuer_name(cert.get(), name) != 1) {
    return ossl_fail(Errc::Internal, "root issuer");
  }
  BERTH_TRY(add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  BERTH_TRY(add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  BERTH_TRY(add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    return ossl_fail(Errc::Internal, "sign root");
  }
  BERTH_ASSIGN_OR_RETURN(std::string root_pem, certificate_pem(cert.get()));
  BERTH_ASSIGN_OR_RETURN(std::string key_pem, private_key_pem(key.get()));
  return Authority(std::move(root_pem), std::move(key_pem));
}

Result<Authority> Authority::load(std::string root_pem, std::string key_pem) {
  BERTH_ASSIGN_OR_RETURN(auto certs, read_certificates(root_pem));
  BERTH_ASSIGN_OR_RETURN(auto key, read_private_key(key_pem));
  X509* root = certs.front().get();
  if (X509_check_ca(root) == 0) {
    return Error(Errc::InvalidArgument, "root certificate: not a CA certificate");
  }
  EVP_PKEY* pub = X509_get0_pubkey(root);
  if (pub == nullptr || EVP_PKEY_eq(pub, key.get()) != 1) {
    return Error(Errc::InvalidArgument, "root key: not the private key of the root certificate");
  }
  return Authority(std::move(root_pem), std::move(key_pem));
}

Result<Issued> Authority::issue(const std::vector<std::string>& names,
                                std::chrono::seconds lifetime) const {
  BERTH_ASSIGN_OR_RETURN(auto sans, normalize_names(names));
  if (lifetime.count() <= 0 || lifetime > std::chrono::hours(24 * 3650)) {
    return Error(Errc::InvalidArgument, "lifetime: must be more than 0 and at most 10 years");
  }
  BERTH_ASSIGN_OR_RETURN(auto roots, read_certificates(root_pem_));
  BERTH_ASSIGN_OR_RETURN(auto ca_key, read_private_key(key_pem_));
  X509* root = roots.front().get();
  BERTH_ASSIGN_OR_RETURN(auto key, new_p256_key());
  BERTH_ASSIGN_OR_RETURN(auto cert, new_certificate(key.get(), -kBackdateSeconds,
                                                    lifetime.count() + kBackdateSeconds));
  if (sans.front().size() <= 64) {
    X509_NAME* subject = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(sans.front().c_str()), -1, -1,
                               0);
  }
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(root)) != 1) {
    return ossl_fail(Errc::Internal, "leaf issuer");
  }
  std::string san;
  for (const auto& n : sans) {
    san += (san.empty() ? "DNS:" : ",DNS:") + n;
  }
  BERTH_TRY(add_ext(cert.get(), root, NID_basic_constraints, "critical,CA:FALSE"));
  BERTH_TRY(add_ext(cert.get(), root, NID_key_usage, "critical,digitalSignature"));
  BERTH_TRY(add_ext(cert.get(), root, NID_ext_key_usage, "serverAuth"));
  BERTH_TRY(add_ext(cert.get(), root, NID_subject_key_identifier, "hash"));
  BERTH_TRY(add_ext(cert.get(), root, NID_authority_key_identifier, "keyid:always"));
  // Critical when the subject is empty (RFC 5280 4.2.1.6).
  BERTH_TRY(add_ext(cert.get(), root, NID_subject_alt_name,
                    (sans.front().size() <= 64 ? "" : "critical,") + san));
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) <= 0) {
    return ossl_fail(Errc::Internal, "sign leaf");
  }
  Issued out;
  BERTH_ASSIGN_OR_RETURN(out.chain_pem, certificate_pem(cert.get()));
  BERTH_ASSIGN_OR_RETURN(out.key_pem, private_key_pem(key.get()));
  BERTH_ASSIGN_OR_RETURN(out.info, describe(cert.get()));
  return out;
}

}  // namespace berth::certs
