// SPDX-License-Identifier: Apache-2.0
// TLS for berth's listeners (the router's HTTPS and the registry/API listener). The server
// side over OpenSSL 3: one SSL_CTX per published certificate (all configured alike: TLS 1.2
// and 1.3, ALPN h2 and http/1.1, read-ahead, partial writes) plus a base SSL_CTX that new
// connections start from; its SNI callback switches the connection to the certificate CertIndex
// picks, from the certificate set current at that moment (an immutable snapshot swapped atomically,
// so connections that finished their handshake keep theirs). Session tickets are sealed with keys
// of our own that rotate (ServerOptions::ticket_key_rotation); a ticket under one of the two
// previous keys still resumes and is replaced.
#pragma once

#include <openssl/types.h>  // the SSL and SSL_CTX typedefs only: this header stays light

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"

namespace berth::tls {

/// A certificate served over TLS, chosen by SNI: the exact name first, then a wildcard
/// "*.example.com" (covers exactly one label), else the first certificate published.
struct Certificate {
  std::vector<std::string> names;  // lower-case DNS names, "*.x.y" wildcards allowed
  std::string chain_pem;           // leaf first, then intermediates
  std::string key_pem;             // PKCS#8 or SEC1 PEM (ECDSA P-256 by default, RSA works too)
  /// A DER OCSP response for the leaf, stapled to handshakes that ask for one (RFC 6066
  /// status_request); "" staples nothing.
  std::string ocsp_der;
};

struct ServerOptions {
  bool http2 = false;  // ALPN offers h2 before http/1.1
  std::chrono::seconds ticket_key_rotation{3600};
};

namespace detail {
class CertIndex;
}  // namespace detail

struct SslCtxFree {
  void operator()(SSL_CTX* c) const;
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

struct SslFree {
  void operator()(SSL* s) const;
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

class ServerContext {
 public:
  explicit ServerContext(ServerOptions opts);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  /// Replaces the certificate set: new handshakes use it, connections that finished theirs
  /// keep their certificate. InvalidArgument naming the certificate and what is wrong (the
  /// old set stays). Until a set is published, handshakes fail with an alert. Thread-safe.
  Status publish(const std::vector<Certificate>& certs);
  /// Whether any certificate is published now.
  bool has_certificates() const;

  /// A server-side SSL for a new connection (handshake not started).
  SslPtr new_ssl();
  /// The context new connections start from (its SNI callback picks the certificate's).
  SSL_CTX* base() const { return base_.get(); }

  std::atomic<uint64_t> handshakes_ok{0};
  std::atomic<uint64_t> handshakes_failed{0};

 private:
  struct CertSet;
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

}  // namespace berth::tls
