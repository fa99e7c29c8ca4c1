// SPDX-License-Identifier: Apache-2.0
// Keys and certificates: P-256 key generation, PEM in and out, inspect(), key_matches(),
// certificate names, CSRs. Everything here is pure computation over OpenSSL (no I/O).
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "certs/ossl.h"
#include "common/ascii.h"

namespace berth::certs {

using ascii::lower;

namespace detail {

namespace {

using ossl::BioPtr;
using ossl::mem_bio;

std::string bio_string(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

Result<int64_t> unix_time(const ASN1_TIME* t, const char* which) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return Error(Errc::InvalidArgument, std::string("certificate: unreadable ") + which);
  }
  return static_cast<int64_t>(timegm(&tm));
}

std::string name_text(X509_NAME* name) {
  int at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (at >= 0) {
    ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n >= 0) {
      std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
      OPENSSL_free(utf8);
      return out;
    }
  }
  BioPtr b(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253);
  return bio_string(b.get());
}

}  // namespace

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) {
    return "unknown error";
  }
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Error ossl_fail(Errc code, const std::string& what) {
  return Error(code, what + ": " + openssl_error());
}

Result<PkeyPtr> new_p256_key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) {
    return ossl_fail(Errc::Internal, "generate P-256 key");
  }
  return key;
}

Result<PkeyPtr> read_private_key(std::string_view pem) {
  BioPtr b = mem_bio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return ossl_fail(Errc::InvalidArgument, "private key: not a PEM private key");
  }
  return key;
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    return false;
  }
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) !=
      1) {
    return false;
  }
  return std::string_view(group, len) == "prime256v1" || std::string_view(group, len) == "P-256";
}

Result<std::string> private_key_pem(EVP_PKEY* key) {
  BioPtr b(BIO_new(BIO_s_mem()));
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3.
  if (PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ossl_fail(Errc::Internal, "write private key");
  }
  return bio_string(b.get());
}

Result<std::vector<X509Ptr>> read_certificates(std::string_view pem) {
  std::vector<X509Ptr> out;
  BioPtr b = mem_bio(pem);
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      unsigned long e = ERR_peek_last_error();
      bool at_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
      if (!at_end || out.empty()) {
        std::string why = at_end ? "no PEM certificate found" : openssl_error();
        ERR_clear_error();
        return Error(Errc::InvalidArgument,
                     "certificate " + std::to_string(out.size() + 1) + ": " + why);
      }
      ERR_clear_error();
      return out;
    }
    out.push_back(std::move(cert));
  }
}

Result<std::string> certificate_pem(X509* cert) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(b.get(), cert) != 1) {
    return ossl_fail(Errc::Internal, "write certificate");
  }
  return bio_string(b.get());
}

Result<CertInfo> describe(X509* cert) {
  CertInfo info;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) {
        const ASN1_IA5STRING* s = g->d.dNSName;
        info.names.push_back(
            lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                              static_cast<size_t>(ASN1_STRING_length(s)))));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  BERTH_ASSIGN_OR_RETURN(info.not_before, unix_time(X509_get0_notBefore(cert), "notBefore"));
  BERTH_ASSIGN_OR_RETURN(info.not_after, unix_time(X509_get0_notAfter(cert), "notAfter"));
  info.issuer = name_text(X509_get_issuer_name(cert));
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (bn == nullptr) {
    return Error(Errc::InvalidArgument, "certificate: unreadable serial number");
  }
  char* hex = BN_bn2hex(bn);
  std::string serial = lower(hex != nullptr ? hex : "0");
  OPENSSL_free(hex);
  BN_free(bn);
  size_t nz = serial.find_first_not_of('0');
  info.serial = nz == std::string::npos ? "0" : serial.substr(nz);
  return info;
}

std::string sha256_raw(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), n);
}

Result<std::string> random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return ossl_fail(Errc::Internal, "random bytes");
  }
  return out;
}

Result<std::string> make_csr_der(const std::vector<std::string>& names, EVP_PKEY* key) {
  X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_pubkey(req.get(), key) != 1) {
    return ossl_fail(Errc::Internal, "CSR");
  }
  if (!names.empty() && names.front().size() <= 64) {
    X509_NAME* subject = X509_REQ_get_subject_name(req.get());
    X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(names.front().c_str()), -1,
                               -1, 0);
  }
  std::string san;
  for (const auto& n : names) {
    san += (san.empty() ? "DNS:" : ",DNS:") + n;
  }
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  if (ext == nullptr) {
    return ossl_fail(Errc::InvalidArgument, "CSR subjectAltName");
  }
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(exts, ext);
  int added = X509_REQ_add_extensions(req.get(), exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  if (added != 1 || X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    return ossl_fail(Errc::Internal, "sign CSR");
  }
  unsigned char* der = nullptr;
  int n = i2d_X509_REQ(req.get(), &der);
  if (n <= 0) {
    return ossl_fail(Errc::Internal, "encode CSR");
  }
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

}  // namespace detail

using namespace detail;

Result<std::string> generate_key() {
  BERTH_ASSIGN_OR_RETURN(auto key, new_p256_key());
  return private_key_pem(key.get());
}

Result<CertInfo> inspect(std::string_view chain_pem) {
  BERTH_ASSIGN_OR_RETURN(auto certs, read_certificates(chain_pem));
  return describe(certs.front().get());
}

Result<bool> key_matches(std::string_view chain_pem, std::string_view key_pem) {
  BERTH_ASSIGN_OR_RETURN(auto certs, read_certificates(chain_pem));
  BERTH_ASSIGN_OR_RETURN(auto key, read_private_key(key_pem));
  EVP_PKEY* pub = X509_get0_pubkey(certs.front().get());
  return pub != nullptr && EVP_PKEY_eq(pub, key.get()) == 1;
}

Result<std::vector<std::string>> normalize_names(const std::vector<std::string>& names) {
  if (names.empty()) {
    return Error(Errc::InvalidArgument, "no names: a certificate needs at least one");
  }
  std::vector<std::string> out;
  for (const auto& raw : names) {
    std::string n = lower(raw);
    auto bad = [&](const std::string& why) {
      return Error(Errc::InvalidArgument, "name '" + raw + "': " + why);
    };
    std::string_view rest = n;
    if (rest.substr(0, 2) == "*.") {
      rest.remove_prefix(2);
    }
    if (rest.empty()) {
      return bad("is empty");
    }
    if (n.size() > 253) {
      return bad("is longer than 253 characters");
    }
    size_t start = 0;
    while (start <= rest.size()) {
      size_t dot = rest.find('.', start);
      std::string_view label =
          rest.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (label.empty()) {
        return bad("has an empty label");
      }
      if (label.size() > 63) {
        return bad("has a label longer than 63 characters");
      }
      for (char c : label) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
          return bad(c == '*' ? "a wildcard must be the whole leftmost label (\"*.\")"
                              : "may hold only letters, digits, '-' and '.'");
        }
      }
      if (label.front() == '-' || label.back() == '-') {
        return bad("a label may not start or end with '-'");
      }
      if (dot == std::string_view::npos) {
        break;
      }
      start = dot + 1;
    }
    for (const auto& seen : out) {
      if (seen == n) {
        return bad("is listed twice");
      }
    }
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace berth::certs
