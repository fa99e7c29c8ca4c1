// SPDX-License-Identifier: Apache-2.0
// Private to the router. The router's TLS server side over OpenSSL 3: one SSL_CTX per
// published certificate (all configured alike: TLS 1.2 and 1.3, ALPN h2 and http/1.1,
// read-ahead, partial writes) plus a base SSL_CTX that new connections start from; its SNI
// callback switches the connection to the certificate CertIndex picks, from the certificate
// set current at that moment (an immutable snapshot swapped atomically, so connections that
// finished their handshake keep theirs). Session tickets are sealed with keys of our own that
// rotate (RouterOptions::ticket_key_rotation); a ticket under one of the two previous keys
// still resumes and is replaced.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "router/cert_index.h"
#include "router/router.h"

namespace berth::router {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

class TlsContext {
 public:
  explicit TlsContext(const RouterOptions& opts);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  /// See Router::publish_certificates.
  Status publish(const std::vector<TlsCertificate>& certs);

  /// A server-side SSL for a new connection (handshake not started).
  SslPtr new_ssl();

  std::atomic<uint64_t> handshakes_ok{0};
  std::atomic<uint64_t> handshakes_failed{0};

 private:
  struct CertSet {
    detail::CertIndex index;
    std::vector<SslCtxPtr> ctxs;
  };
  struct TicketKey {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> aes{};
    std::array<unsigned char, 32> hmac{};
  };

  void configure(SSL_CTX* ctx);
  static int on_server_name(SSL* ssl, int* alert, void* arg);
  static int on_status(SSL* ssl, void* arg);
  static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned int inlen, void* arg);
  static int on_ticket_key(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cctx,
                           EVP_MAC_CTX* hctx, int enc);
  // Under keys_mu_: replaces the current key when it is due (keeps two previous ones).
  void rotate_locked();

  bool http2_;
  std::chrono::seconds rotation_;
  SslCtxPtr base_;
  std::atomic<std::shared_ptr<const CertSet>> certs_;
  std::mutex keys_mu_;
  std::vector<TicketKey> keys_;  // newest first
  std::chrono::steady_clock::time_point keys_made_;
};

}  // namespace berth::router
