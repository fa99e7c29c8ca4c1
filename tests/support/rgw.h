// SPDX-License-Identifier: Apache-2.0
// An S3 service for tests: Ceph's RADOS Gateway from Debian (radosgw, ceph-mon, ceph-osd) as a
// single-node cluster on loopback in a temp dir. One monitor, one OSD on the memstore object
// store (nothing touches a disk but the temp dir), pool size 1, no cephx
// (auth_*_required = none), and radosgw's beast frontend on a free 127.0.0.1 port; an S3 user
// made with radosgw-admin. Every daemon's files (conf, run dir with pid files and admin
// sockets, logs, the monitor's store) stay inside the temp dir. The daemons are children of
// the process that started them (a test, or the holder of the cluster a ctest run shares:
// support/shared_servers.h) and die with it (PR_SET_PDEATHSIG), so a crash leaves none behind.
// When the cluster cannot be started here, tests skip naming the reason: they never pass
// without having run.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/s3.h"
#include "support/harness.h"

namespace berth::test {

struct SharedRgw;

/// Waits (up to 20 s) until the bucket s3 talks to holds a multipart upload under prefix (the
/// parts of an upload go out in the background); returns how many there are then (0: none).
size_t wait_for_multipart_uploads(storage::S3Client& s3, const std::string& prefix);

class RgwServer {
 public:
  /// Makes and starts the cluster; running() tells whether it worked, error() why not.
  RgwServer();
  /// Attaches to the cluster a ctest run shares (support/shared_servers.h); stop() and
  /// start() are test failures on it.
  explicit RgwServer(const SharedRgw& s);
  /// Kills every daemon and removes the temp dir.
  ~RgwServer();
  RgwServer(const RgwServer&) = delete;
  RgwServer& operator=(const RgwServer&) = delete;

  /// The cluster the tests of a ctest run share, or when there is none (or after
  /// use_own()) this process's own, started at first use and stopped at exit; nullptr when it
  /// cannot run here (shared_error() says why).
  static RgwServer* shared();
  /// From now on shared() is this process's own cluster: for a test that stops radosgw.
  /// Call it before anything uses shared() (ctest runs each test in a process of its own).
  static void use_own();
  static const std::string& shared_error();

  bool running() const { return attached_ || rgw_pid_ > 0; }
  const std::string& error() const { return error_; }
  uint16_t port() const { return rgw_port_; }
  /// "http://127.0.0.1:PORT".
  std::string endpoint() const;
  const std::string& region() const { return region_; }
  const std::string& access_key() const { return access_key_; }
  const std::string& secret_key() const { return secret_key_; }
  /// The cluster's directory (conf, logs, run dir).
  const std::string& dir() const { return dir_; }
  /// radosgw's log (every request at its default level) since this process began to use
  /// the cluster.
  std::string log() const;

  /// A new, empty bucket with a name unique to this process; "" (and a test failure) when
  /// creating it fails. On the cluster a run shares, the buckets a process made are deleted
  /// after it exits (purge_done_buckets), so the OSD's memory does not grow with the run.
  std::string create_bucket();
  /// On the cluster that holds them: deletes, objects and all, the buckets of attached
  /// processes that have exited since the last call. Returns how many.
  int purge_done_buckets();
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
  // A test failure (and true) on the cluster the run shares, which no test may stop.
  bool refuse_shared() const;
  std::string log_tail(const std::string& name) const;

  std::unique_ptr<TempDir> own_dir_;  // none when attached
  std::string dir_;
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
  std::vector<std::string> made_;  // by create_bucket()
  size_t done_read_ = 0;           // of kDoneBuckets, by purge_done_buckets()
  static constexpr const char* kDoneBuckets = "done-buckets";
  bool attached_ = false;
  size_t log_from_ = 0;
};

/// A first base class for a fixture that stops radosgw: its members are then made on this
/// process's own cluster (RgwServer::use_own()).
struct OwnRgw {
  OwnRgw() { RgwServer::use_own(); }
};

}  // namespace berth::test
