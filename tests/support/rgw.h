// SPDX-License-Identifier: Apache-2.0
// An S3 service for tests: Ceph's RADOS Gateway from Debian (radosgw, ceph-mon, ceph-osd) as a
// single-node cluster on loopback in a temp dir. One monitor, one OSD on the memstore object
// store (nothing touches a disk but the temp dir), pool size 1, no cephx
// (auth_*_required = none), and radosgw's beast frontend on a free 127.0.0.1 port; an S3 user
// made with radosgw-admin. Every daemon's files (conf, run dir with pid files and admin
// sockets, logs, the monitor's store) stay inside the temp dir. The daemons are children of
// the test process and die with it (PR_SET_PDEATHSIG), so a crashed test leaves none behind.
// When the cluster cannot be started here, tests skip naming the reason: they never pass
// without having run.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "storage/s3.h"
#include "support/harness.h"

namespace berth::test {

/// Waits (up to 20 s) until the bucket s3 talks to holds a multipart upload under prefix (the
/// parts of an upload go out in the background); returns how many there are then (0: none).
size_t wait_for_multipart_uploads(storage::S3Client& s3, const std::string& prefix);

class RgwServer {
 public:
  /// Makes and starts the cluster; running() tells whether it worked, error() why not.
  RgwServer();
  /// Kills every daemon and removes the temp dir.
  ~RgwServer();
  RgwServer(const RgwServer&) = delete;
  RgwServer& operator=(const RgwServer&) = delete;

  /// The cluster shared by the tests of this process, started at first use and stopped at
  /// exit; nullptr when it cannot run here (shared_error() says why).
  static RgwServer* shared();
  static const std::string& shared_error();

  bool running() const { return rgw_pid_ > 0; }
  const std::string& error() const { return error_; }
  uint16_t port() const { return rgw_port_; }
  /// "http://127.0.0.1:PORT".
  std::string endpoint() const;
  const std::string& region() const { return region_; }
  const std::string& access_key() const { return access_key_; }
  const std::string& secret_key() const { return secret_key_; }
  /// The cluster's directory (conf, logs, run dir).
  const std::string& dir() const { return dir_.path(); }

  /// A new, empty bucket with a name unique to this process; "" (and a test failure) when
  /// creating it fails.
  std::string create_bucket();
  /// "curl -s --aws-sigv4 ... -u KEY:SECRET -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' ",
  /// for commands against endpoint().
  std::string curl_s3() const;
  /// berth's S3 client settings for a bucket on this server, with its user's keys.
  storage::S3Options client_options(const std::string& bucket) const;

  /// Stops radosgw alone (SIGKILL: the S3 service vanishes as in a crash); the monitor and
  /// the OSD keep running.
  void stop();
  /// Starts radosgw again on the same port and waits until it answers. False (error() says
  /// why) when it does not within 60 s.
  bool start();

 private:
  bool bootstrap();
  // Runs a ceph tool with this cluster's conf; a test harness failure explains itself.
  CmdResult ceph_tool(const std::string& tool, const std::string& args) const;
  // Starts a daemon in the foreground as a child; its stdout/stderr go to log/<name>.out.
  pid_t spawn(const std::string& name, const std::string& args);
  bool wait_osd_up();
  std::string log_tail(const std::string& name) const;

  TempDir dir_;
  std::string conf_;
  uint16_t mon_port_ = 0;
  uint16_t rgw_port_ = 0;
  pid_t mon_pid_ = -1;
  pid_t osd_pid_ = -1;
  pid_t rgw_pid_ = -1;
  std::string region_ = "us-east-1";
  std::string access_key_;
  std::string secret_key_;
  std::string error_;
  int buckets_ = 0;
};

}  // namespace berth::test
