// SPDX-License-Identifier: Apache-2.0
// OpenSSL objects owned by unique_ptrs. One deleter template, named by the free function, in
// place of a deleter struct per type in every file that holds one:
//   ossl::Ptr<OCSP_REQUEST, OCSP_REQUEST_free> req(OCSP_REQUEST_new());
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string_view>

namespace berth::ossl {

/// Frees through Free (any function taking the pointer).
template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};
template <class T, auto Free>
using Ptr = std::unique_ptr<T, Deleter<Free>>;

using BioPtr = Ptr<BIO, BIO_free>;
using PkeyPtr = Ptr<EVP_PKEY, EVP_PKEY_free>;
using X509Ptr = Ptr<X509, X509_free>;

/// A read-only memory BIO over data, which must outlive it.
inline BioPtr mem_bio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

}  // namespace berth::ossl
