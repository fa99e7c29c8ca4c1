// SPDX-License-Identifier: Apache-2.0
// Pebble (Let's Encrypt's ACME test server, Debian's pebble 2.4) as a test peer: its own TLS
// certificate (P-256, self-signed for IP 127.0.0.1) and config JSON in a temp dir, the ACME
// API and the management interface on free loopback ports, validations at full speed
// (PEBBLE_VA_NOSLEEP=1), names resolved through the DNS server the test names
// (-dnsserver 127.0.0.1:PORT). Stopped (SIGTERM, then SIGKILL) on destruction.
//
// Pebble 2.4 facts a test must know: it forgets everything when it stops; its issuing root
// and intermediate are new on every start (root_pem()); it honours an order's notAfter (and
// certificateValidityPeriod) for short-lived certificates; it does not check CAA; by default
// it rejects 5% of good nonces (badNonce) and reuses valid authorizations half the time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "support/harness.h"

namespace berth::test {

class Pebble {
 public:
  struct Options {
    /// The DNS server pebble resolves every name through (127.0.0.1:dns_port); 0: the system's.
    uint16_t dns_port = 0;
    /// Where HTTP-01 validations connect (pebble's httpPort); 0: a free port is picked.
    uint16_t http_port = 0;
    /// Names pebble refuses to issue for (rejectedIdentifier), with their subdomains:
    /// domainBlocklist. Pebble 2.4 panics (and drops the connection) on an order for a name
    /// with fewer labels than an entry, so keep entries short ("blocked.test").
    std::vector<std::string> blocked_domains;
    /// certificateValidityPeriod in seconds; 0: pebble's default (about 5 years).
    uint32_t certificate_validity_seconds = 0;
    /// PEBBLE_WFE_NONCEREJECT: the percentage of good nonces rejected as bad (pebble: 5).
    int nonce_reject_percent = 5;
    /// PEBBLE_AUTHZREUSE: the percentage of new orders that reuse a valid authorization.
    int authz_reuse_percent = 0;
    /// ocspResponderURL: the OCSP responder pebble's certificates name ("": none).
    std::string ocsp_responder_url;
  };

  explicit Pebble(Options options);
  ~Pebble();
  Pebble(const Pebble&) = delete;
  Pebble& operator=(const Pebble&) = delete;

  /// True when the pebble binary is installed (tests GTEST_SKIP otherwise).
  static bool available();

  /// Writes the certificate and config, starts pebble and waits (up to 15 s) until its
  /// directory answers. False, with the reason and pebble's log in *why, when it does not.
  bool start(std::string* why);
  /// SIGTERM and wait (SIGKILL after 5 s). Safe to call twice.
  void stop();
  /// Options::blocked_domains for the next start() (a running pebble keeps its own).
  void set_blocked_domains(std::vector<std::string> names) {
    options_.blocked_domains = std::move(names);
  }

  /// https://127.0.0.1:PORT/dir
  std::string directory_url() const;
  /// The PEM file that verifies pebble's own TLS certificate (API and management): the
  /// AcmeOptions::ca_bundle a client needs.
  std::string ca_bundle() const { return dir_ / "pebble-tls.pem"; }
  uint16_t http_port() const { return options_.http_port; }
  uint16_t management_port() const { return management_port_; }
  /// Pebble's issuing root (management /roots/0), PEM; "" with *why when it cannot be read.
  std::string root_pem(std::string* why) const { return management("/roots/0", why); }
  /// What the management interface answers at path (/intermediates/0, /intermediate-keys/0,
  /// ...): a PEM; "" with *why when it cannot be read.
  std::string management(const std::string& path, std::string* why) const;
  /// What pebble has logged so far (for failure messages).
  std::string log() const;
  const std::string& dir() const { return dir_.path(); }

 private:
  bool start_once(std::string* why);
  std::string config() const;

  Options options_;
  TempDir dir_;
  uint16_t port_ = 0;
  uint16_t management_port_ = 0;
  uint16_t tls_port_ = 0;
  bool started_ = false;  // once up, a start() after stop() keeps the ports
  pid_t pid_ = -1;
};

}  // namespace berth::test
