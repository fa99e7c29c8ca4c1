// SPDX-License-Identifier: Apache-2.0
// ServerContext: SSL_CTX setup, certificate loading and checking, SNI selection, ALPN and the
// rotating session-ticket keys.
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>

#include "common/openssl.h"
#include "tls/cert_index.h"
#include "tls/tls.h"

namespace berth::tls {

namespace {

constexpr unsigned char kAlpnH2[] = "\x02h2\x08http/1.1";
constexpr unsigned char kAlpnH1[] = "\x08http/1.1";
constexpr size_t kMaxTicketKeys = 3;
constexpr char kTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
// TLS 1.2: forward secrecy and AEAD only, the same order.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// The OpenSSL error queue as text (and emptied).
std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) {
      out += "; ";
    }
    out += buf;
  }
  return out.empty() ? std::string("unknown OpenSSL error") : out;
}

// A certificate's OCSP response lives in its SSL_CTX's ex_data, so it lasts exactly as long as
// the context: a handshake that picked the context keeps both through a later publish().
void free_staple(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

int staple_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_staple);
  return index;
}

// The ServerContext a context belongs to. Not app_data: asio's ssl::context, which the API
// listener wraps around base(), deletes whatever app_data holds when it goes.
int owner_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

void SslCtxFree::operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
void SslFree::operator()(SSL* s) const { SSL_free(s); }

struct ServerContext::CertSet {
  detail::CertIndex index;
  std::vector<SslCtxPtr> ctxs;
};

ServerContext::ServerContext(ServerOptions opts)
    : http2_(opts.http2), rotation_(opts.ticket_key_rotation) {
  base_.reset(SSL_CTX_new(TLS_server_method()));
  configure(base_.get());
  std::lock_guard lock(keys_mu_);
  rotate_locked();
  certs_.store(std::make_shared<const CertSet>());
}

ServerContext::~ServerContext() = default;

// Every SSL_CTX alike: after the SNI switch OpenSSL reads options and the ALPN callback from
// the certificate's SSL_CTX, tickets and the session cache from the base.
void ServerContext::configure(SSL_CTX* ctx) {
  SSL_CTX_set_ex_data(ctx, owner_index(), this);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Partial writes and a moving buffer let the proxy's non-blocking write attempts retry from
  // wherever the socket stopped; released buffers keep idle connections small.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // Read ahead: one read(2) takes several records instead of a header and a body each.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
  // AES-128-GCM with SHA-256 first, as Go's crypto/tls orders them on CPUs with AES
  // instructions: as strong as the P-256 and X25519 key exchanges that open the session, and
  // cheaper than OpenSSL's default first pick (AES-256-GCM with SHA-384): CPUs hash SHA-256 in
  // hardware, and TLS 1.3 runs its whole key schedule on the suite's hash. ChaCha20 last.
  SSL_CTX_set_ciphersuites(ctx, kTls13Suites);
  SSL_CTX_set_cipher_list(ctx, kTls12Ciphers);
  SSL_CTX_set_alpn_select_cb(ctx, &ServerContext::on_alpn, this);
  SSL_CTX_set_tlsext_servername_callback(ctx, &ServerContext::on_server_name);
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
  // Tickets are sealed by on_ticket_key; the session_ctx (the one the SSL was made from) is
  // where OpenSSL looks, so every context has it.
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ServerContext::on_ticket_key);
  // Resumption is by ticket only: no per-process session cache to grow.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

Status ServerContext::publish(const std::vector<Certificate>& certs) {
  auto set = std::make_shared<CertSet>();
  std::vector<std::vector<std::string>> names;
  for (size_t i = 0; i < certs.size(); ++i) {
    const auto& c = certs[i];
    std::string label = c.names.empty() ? "certificate " + std::to_string(i) : c.names.front();
    auto bad = [&](const std::string& why) {
      ERR_clear_error();
      return Error(Errc::InvalidArgument, "certificate " + label + ": " + why);
    };
    for (const auto& n : c.names) {
      if (auto why = detail::check_cert_name(n)) {
        return bad(*why);
      }
    }
    ERR_clear_error();
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
      return bad(ssl_errors());
    }
    configure(ctx.get());
    auto chain = ossl::mem_bio(c.chain_pem);
    ossl::X509Ptr leaf(PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr));
    if (!leaf) {
      return bad("chain_pem holds no PEM certificate");
    }
    if (SSL_CTX_use_certificate(ctx.get(), leaf.get()) != 1) {
      return bad(ssl_errors());
    }
    while (X509* x = PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr)) {
      if (SSL_CTX_add0_chain_cert(ctx.get(), x) != 1) {
        X509_free(x);
        return bad(ssl_errors());
      }
    }
    ERR_clear_error();  // the end of the PEM text
    auto keyb = ossl::mem_bio(c.key_pem);
    ossl::PkeyPtr key(PEM_read_bio_PrivateKey(keyb.get(), nullptr, nullptr, nullptr));
    if (!key) {
      return bad("key_pem holds no PEM private key");
    }
    if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      return bad("the private key does not match the leaf certificate (" + ssl_errors() + ")");
    }
    if (!c.ocsp_der.empty()) {
      const auto* p = reinterpret_cast<const unsigned char*>(c.ocsp_der.data());
      OCSP_RESPONSE* r = d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(c.ocsp_der.size()));
      if (r == nullptr) {
        return bad("ocsp_der is not a DER OCSP response");
      }
      OCSP_RESPONSE_free(r);
      auto* der = new std::string(c.ocsp_der);
      if (SSL_CTX_set_ex_data(ctx.get(), staple_index(), der) != 1) {
        delete der;
        return bad(ssl_errors());
      }
      SSL_CTX_set_tlsext_status_cb(ctx.get(), &ServerContext::on_status);
    }
    set->ctxs.push_back(std::move(ctx));
    names.push_back(c.names);
  }
  set->index = detail::CertIndex(names);
  certs_.store(std::move(set));
  return {};
}

bool ServerContext::has_certificates() const { return certs_.load()->index.size() > 0; }

// Made from the first certificate's context when there is one, so that a connection for it
// (the only one, often) needs no switch in on_server_name; SSL_set_SSL_CTX copies the
// certificate structure.
SslPtr ServerContext::new_ssl() {
  auto set = certs_.load();
  return SslPtr(SSL_new(set->ctxs.empty() ? base_.get() : set->ctxs.front().get()));
}

int ServerContext::on_server_name(SSL* ssl, int* alert, void* arg) {
  auto* self = static_cast<ServerContext*>(arg);
  auto set = self->certs_.load();
  const char* sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  auto i = set->index.pick(sn != nullptr ? std::string_view(sn) : std::string_view());
  if (!i) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;  // nothing published yet
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  // The SSL takes a reference: the context outlives a later publish() for this connection.
  if (SSL_get_SSL_CTX(ssl) != set->ctxs[*i].get()) {
    SSL_set_SSL_CTX(ssl, set->ctxs[*i].get());
  }
  return SSL_TLSEXT_ERR_OK;
}

// Called (on the certificate's context, after SNI) only when the client asked for status.
int ServerContext::on_status(SSL* ssl, void*) {
  const auto* der =
      static_cast<const std::string*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), staple_index()));
  if (der == nullptr || der->empty()) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(der->size()));
  if (copy == nullptr) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  std::memcpy(copy, der->data(), der->size());
  SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(der->size()));  // SSL owns it
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::on_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                           const unsigned char* in, unsigned int inlen, void* arg) {
  auto* self = static_cast<ServerContext*>(arg);
  const unsigned char* ours = self->http2_ ? kAlpnH2 : kAlpnH1;
  unsigned int ours_len = self->http2_ ? sizeof kAlpnH2 - 1 : sizeof kAlpnH1 - 1;
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: carry on without ALPN (HTTP/1.1)
  }
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

void ServerContext::rotate_locked() {
  auto now = std::chrono::steady_clock::now();
  if (!keys_.empty() && now - keys_made_ < rotation_) {
    return;
  }
  TicketKey k;
  if (RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) != 1 ||
      RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) != 1 ||
      RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) != 1) {
    ERR_clear_error();
    return;  // keep the old keys; the next handshake tries again
  }
  keys_.insert(keys_.begin(), k);
  if (keys_.size() > kMaxTicketKeys) {
    keys_.resize(kMaxTicketKeys);
  }
  keys_made_ = now;
}

// enc = 1: seal a new ticket with the current key. enc = 0: find the key the ticket names;
// 0 = unknown (full handshake), 1 = resume, 2 = resume and issue a new ticket. A new ticket
// goes out when the key is an older one, and on every TLS 1.3 resumption: TLS 1.3 clients use
// a ticket once (RFC 8446, C.4), so without a fresh one the next connection would be a full
// handshake (OpenSSL's clients, wrk and curl among them, then alternate full and resumed).
int ServerContext::on_ticket_key(SSL* ssl, unsigned char* name, unsigned char* iv,
                                 EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx, int enc) {
  auto* self =
      static_cast<ServerContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), owner_index()));
  TicketKey key;
  int result = 1;
  {
    std::lock_guard lock(self->keys_mu_);
    self->rotate_locked();
    if (self->keys_.empty()) {
      return enc != 0 ? -1 : 0;
    }
    if (enc != 0) {
      key = self->keys_.front();
    } else {
      size_t i = 0;
      while (i < self->keys_.size() &&
             std::memcmp(self->keys_[i].name.data(), name, key.name.size()) != 0) {
        ++i;
      }
      if (i == self->keys_.size()) {
        return 0;
      }
      key = self->keys_[i];
      result = i == 0 && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
    }
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (enc != 0) {
    if (RAND_bytes(iv, 16) != 1) {
      return -1;
    }
    std::memcpy(name, key.name.data(), key.name.size());
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) {
      return -1;
    }
  } else if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) {
    return -1;
  }
  if (EVP_MAC_CTX_set_params(hctx, params) != 1) {
    return -1;
  }
  return result;
}

}  // namespace berth::tls
