// SPDX-License-Identifier: Apache-2.0
// Certificates (docs/certs.md): P-256 keys, reading certificates, berth's own certificate
// authority, and an ACME (RFC 8555) client. Library code only: where certificates are stored,
// when they are renewed and how challenges are answered belong to the caller (`berth domain`).
//
// Threads: everything here blocks (key generation, signing, and for AcmeClient, HTTPS round
// trips and sleeps while the server validates). Call it from a worker thread or run_blocking,
// never on an I/O thread. Authority is immutable after creation and safe to share; one
// AcmeClient runs one obtain() at a time (it keeps the account URL and the last nonce).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace berth::certs {

struct CertInfo {
  std::vector<std::string> names;         // subjectAltName DNS names, lower-case, in order
  int64_t not_before = 0, not_after = 0;  // unix seconds
  std::string issuer;                     // issuer's CN (or full DN when it has no CN)
  std::string serial;                     // lower-case hex, no leading zeros ("0" for zero)
};

struct Issued {
  std::string chain_pem;  // leaf first, then intermediates (no root for ACME)
  std::string key_pem;    // the leaf's private key, PKCS#8 PEM
  CertInfo info;
};

/// A new ECDSA P-256 private key, PKCS#8 PEM. Internal only when OpenSSL fails.
Result<std::string> generate_key();
/// Parses the first certificate of a PEM chain. InvalidArgument naming what is wrong.
Result<CertInfo> inspect(std::string_view chain_pem);
/// True when key_pem is the private key of chain_pem's leaf. InvalidArgument when either does
/// not parse.
Result<bool> key_matches(std::string_view chain_pem, std::string_view key_pem);
/// Checks and normalizes certificate names: lower-case, LDH labels of at most 63 characters,
/// at most 253 in all, an optional "*." as the whole leftmost label, no duplicates, at least
/// one name. InvalidArgument naming the first bad name.
Result<std::vector<std::string>> normalize_names(const std::vector<std::string>& names);

/// An OCSP response to staple (RFC 6066 status_request) for a certificate.
struct OcspStaple {
  std::string der;          // the whole OCSPResponse, DER
  int64_t this_update = 0;  // Unix seconds
  int64_t next_update = 0;  // Unix seconds; 0 when the responder gave none
};
/// The OCSP responder URL in the chain leaf's Authority Information Access, or "" when its
/// issuer offers none (berth's own CA does not; most public CAs do).
std::string ocsp_url(std::string_view chain_pem);
/// Asks the leaf's OCSP responder about it (HTTP POST). The chain must hold the issuer right
/// after the leaf. The answer must be signed for the issuer, say "good" and be current:
/// otherwise FailedPrecondition with the responder's verdict; Unavailable when it cannot be
/// reached; NotFound when the certificate names no responder. Blocking.
Result<OcspStaple> fetch_ocsp(std::string_view chain_pem, std::chrono::seconds timeout);

/// berth's own certificate authority (the default issuer, `tls.issuer: internal`): a P-256 root,
/// self-signed, valid 10 years, CN "berth root CA <short id>" (the short id is the first 8 hex
/// digits of the SHA-256 of the root's public key, so two berth installs are told apart).
class Authority {
 public:
  static Result<Authority> create();
  /// Checks that the certificate parses, is a CA, and that key_pem is its key.
  /// InvalidArgument naming what is wrong.
  static Result<Authority> load(std::string root_pem, std::string key_pem);
  const std::string& root_pem() const { return root_pem_; }
  const std::string& key_pem() const { return key_pem_; }
  /// A leaf for names (exact and "*." wildcards) with a new P-256 key: SAN = names, CN = first
  /// name (when it fits in 64 characters), serverAuth EKU, valid from now-1h for `lifetime`.
  /// chain_pem is the leaf only: the root is not sent by servers (clients that trust it have
  /// it already; `berth ca export` distributes it). InvalidArgument for bad names or lifetime.
  Result<Issued> issue(const std::vector<std::string>& names,
                       std::chrono::seconds lifetime = std::chrono::hours(24 * 90)) const;

 private:
  Authority(std::string root_pem, std::string key_pem)
      : root_pem_(std::move(root_pem)), key_pem_(std::move(key_pem)) {}
  std::string root_pem_;
  std::string key_pem_;
};

/// ACME (RFC 8555) client options.
struct AcmeOptions {
  std::string directory_url;                // e.g. https://127.0.0.1:14000/dir
  std::string email;                        // optional contact
  std::string ca_bundle;                    // PEM file to trust for the server's TLS; empty: system
  std::chrono::seconds timeout{30};         // per HTTP request
  std::chrono::seconds order_timeout{300};  // whole obtain()
  /// When non-zero, the order asks for this lifetime (RFC 8555 notAfter = now + lifetime).
  /// Pebble honours it (a way to short-lived certificates for renewal tests); Let's Encrypt
  /// refuses orders that carry notAfter, so leave it zero for real CAs.
  std::chrono::seconds requested_lifetime{0};
};

struct Challenge {
  enum class Type { http01, dns01 };
  Type type = Type::http01;
  std::string domain;             // the identifier, without a leading "*."
  std::string token;              //
  std::string key_authorization;  // token "." base64url(JWK thumbprint)
  std::string dns_name() const;   // "_acme-challenge." + domain
  std::string dns_value() const;  // base64url(SHA-256(key_authorization))
  /// "/.well-known/acme-challenge/" + token: the HTTP-01 path, answered with key_authorization.
  std::string http_path() const;
};

/// "http-01" / "dns-01".
const char* challenge_type_name(Challenge::Type t);

/// How the caller answers challenges: HTTP-01 by the router, DNS-01 by berth's DNS.
class ChallengeResponder {
 public:
  virtual ~ChallengeResponder() = default;
  /// Which challenge type to use for this identifier (wildcards must get dns01); nullopt: none
  /// possible (obtain() then fails with a clear error naming the identifier).
  virtual std::optional<Challenge::Type> choose(std::string_view domain, bool wildcard) = 0;
  virtual Status present(const Challenge& c) = 0;  // make it answerable
  virtual void cleanup(const Challenge& c) = 0;    // always called after present()
};

/// ACME (RFC 8555) client. Blocking; callers run it on a worker thread.
class AcmeClient {
 public:
  /// account_key_pem empty: a new P-256 account key is generated (read it back to store it).
  /// InvalidArgument when the key does not parse or is not P-256, or the URL is not https.
  static Result<AcmeClient> create(AcmeOptions opts, std::string account_key_pem);
  AcmeClient(AcmeClient&&) noexcept;
  AcmeClient& operator=(AcmeClient&&) noexcept;
  ~AcmeClient();

  const std::string& account_key_pem() const;
  /// The account's URL once obtain() (or register_account()) has run; empty before.
  const std::string& account_url() const;
  /// Registers (or finds) the account (agreeing to the terms of service).
  Status register_account();

  /// Registers (or finds) the account, orders names, answers each authorization through the
  /// responder, polls with back-off honouring Retry-After, finalizes with a CSR for a new P-256
  /// key, downloads the chain. progress() gets one human line per step ("order created",
  /// "dns-01 for *.preview.example.com: presented", "validated", "certificate issued").
  /// Errors carry the ACME server's own problem type and detail text verbatim, e.g.
  /// "acme: urn:ietf:params:acme:error:rejectedIdentifier: ..." (Errc::FailedPrecondition for
  /// rejections, ResourceExhausted for rateLimited, Unavailable when the server cannot be
  /// reached or fails itself, DeadlineExceeded when order_timeout passes, InvalidArgument for
  /// names normalize_names refuses).
  Result<Issued> obtain(const std::vector<std::string>& names, ChallengeResponder& responder,
                        const std::function<void(std::string_view)>& progress);

  struct State;

 private:
  explicit AcmeClient(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace berth::certs
