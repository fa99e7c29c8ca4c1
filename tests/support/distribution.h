// SPDX-License-Identifier: Apache-2.0
// Debian's docker-registry (CNCF distribution 2.8) as a test peer: an upstream for the
// pull-through cache and a replication target. Storage in a temp dir, listening on a free
// loopback port, optionally over TLS (a self-signed P-256 certificate for IP 127.0.0.1) and
// behind htpasswd basic auth. Stopped (SIGTERM, then SIGKILL) on destruction. Its access log
// is what tests count requests in.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "support/harness.h"

namespace berth::test {

class Distribution {
 public:
  struct Options {
    bool tls = false;
    std::string username;  // with password: htpasswd basic auth
    std::string password;
  };

  explicit Distribution(Options options);
  ~Distribution();
  Distribution(const Distribution&) = delete;
  Distribution& operator=(const Distribution&) = delete;

  /// True when docker-registry (and htpasswd, openssl) are installed.
  static bool available();

  /// Starts it and waits (up to 15 s) until /v2/ answers; false with the reason and its log.
  bool start(std::string* why);
  /// SIGTERM and wait (SIGKILL after 5 s). Safe to call twice; start() may follow.
  void stop();

  uint16_t port() const { return port_; }
  /// "https://127.0.0.1:PORT" or "http://127.0.0.1:PORT".
  std::string url() const;
  /// "127.0.0.1:PORT", for skopeo's docker:// references.
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  /// The certificate that verifies it (TLS only).
  std::string ca_file() const { return dir_ / "tls.pem"; }
  /// skopeo flags for talking to it directly ("--dest-tls-verify=false --dest-creds U:P").
  std::string skopeo_dest_flags() const;
  std::string skopeo_src_flags() const;
  /// For skopeo inspect ("--tls-verify=false --creds U:P").
  std::string skopeo_inspect_flags() const;
  /// How many requests its access log shows whose request line contains `needle`
  /// ("GET /v2/library/big/blobs/sha256:...").
  int count_requests(const std::string& needle) const;
  std::string log() const;

 private:
  Options options_;
  TempDir dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace berth::test
