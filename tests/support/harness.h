// SPDX-License-Identifier: Apache-2.0
// Test harness: temp dirs, subprocesses, free ports, an in-process berthd, a berthd child
// process (for SIGKILL tests), a private dockerd, and OCI layouts built from busybox-static.
// Everything binds 127.0.0.1 and cleans up after itself.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/daemon.h"

namespace berth::test {

/// Sets an environment variable for the lifetime of the object, then unsets it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

/// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CmdResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  std::string all() const { return out + err; }
};

/// Runs `bash -c cmd`, capturing stdout and stderr. Never throws.
CmdResult run(const std::string& cmd);

/// True when an executable is on PATH.
bool have(const std::string& tool);

/// Asks `cond` every `every` until it holds or `limit` has passed (then once more). For waits on
/// something asynchronous (a daemon's loop, a process, a port): give a limit several times what
/// a quiet machine needs, since CI runs two tests at once on 2 loaded cores.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit,
                std::chrono::milliseconds every = std::chrono::milliseconds(200));

/// True when text contains what.
inline bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

/// git in dir with no user or system config and a fixed identity; stderr is merged into out.
CmdResult git(const std::string& dir, const std::string& args);

/// The last 2000 bytes of s (a long log or command output, for a failure message).
inline std::string tail_of(const std::string& s) {
  return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
}

/// s without its trailing newlines (a command's one-line output).
std::string trimmed(std::string s);

/// Stops a child process the harness started: `sig`, up to `grace` for it to exit, then
/// SIGKILL; reaps it and sets pid to -1. False when it took SIGKILL; nothing (and true) when
/// pid <= 0.
bool stop_child(pid_t& pid, std::chrono::milliseconds grace, int sig = SIGTERM);

/// Polls a server spawn_server started until ready(), or it exits, or `limit` passes. Empty
/// when ready; otherwise why not: "NAME could not be spawned" (pid < 0), "NAME exited" (reaped,
/// pid set to -1) or "NAME was not ready within N s" (it still runs).
std::string wait_started(pid_t& pid, std::string_view name, const std::function<bool()>& ready,
                         std::chrono::milliseconds limit,
                         std::chrono::milliseconds every = std::chrono::milliseconds(50));

/// How spawn_server starts a server.
struct SpawnOptions {
  /// What the server gets when the thread that spawned it ends, however it ends
  /// (PR_SET_PDEATHSIG): a test that crashes or is killed leaves no server running.
  int death_signal = SIGKILL;
  /// A session of its own (setsid), out of reach of the terminal's signals.
  bool new_session = false;
  /// When root, the user to run as (PostgreSQL refuses to run as root).
  std::string user;
  /// "NAME=value" entries put ahead of this process's environment.
  std::vector<std::string> env;
};

/// Forks and execs argv (argv[0] looked up on PATH) as a server for a test: stdin from
/// /dev/null, stdout and stderr appended to `log`. Any thread may call it: the fork happens on
/// one that lives as long as the process, so the server outlives the caller's thread. The child's
/// pid; -1 when it cannot fork or the user is unknown. A child that cannot open the log or change
/// user exits with 126, one that cannot exec with 127.
pid_t spawn_server(const std::vector<std::string>& argv, const std::string& log,
                   const SpawnOptions& opts = {});

/// Called where a test server (PostgreSQL, RGW) cannot run and its tests would skip: with
/// BERTH_TEST_REQUIRE_SERVERS=1 (as `make test` sets it) the test fails instead, naming why,
/// so a run that proved nothing about a backend cannot pass.
void server_missing(const std::string& why);

/// n characters drawn at random from alphabet: names and keys that no other test process, nor
/// an earlier run, can have made.
std::string random_text(const std::string& alphabet, size_t n);

/// A TCP port free on 127.0.0.1 right now.
uint16_t free_port();

/// Whether a UDP socket can bind ip:port here right now ("::1", "127.0.1.53" with 53): for
/// tests that need an address (IPv6 loopback) or a privileged port this machine may lack.
bool can_bind(const std::string& ip, uint16_t port = 0);

/// The serial number of the leaf certificate a TLS server on 127.0.0.1:port serves for SNI
/// name, as berth prints it (lower-case hex, no leading zeros); "no certificate: ..." when
/// none comes.
std::string served_serial(uint16_t port, const std::string& name);

/// Connects a socket the caller made (any options set) to 127.0.0.1:port; false on failure.
bool connect_loopback(int fd, uint16_t port);
/// A new blocking TCP socket connected to 127.0.0.1:port whose reads and writes time out after
/// `timeout`; -1 when nothing accepts there.
int connect_loopback(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
/// A new TCP socket (SO_REUSEADDR, close-on-exec) listening on 127.0.0.1:port, 0 meaning any
/// free port; `port` is set to the one bound. -1 on failure, with errno from the call that
/// failed.
int listen_loopback(uint16_t& port, int backlog = 16);

/// Path of a built binary ("berthd", "berth").
std::string bin(const std::string& name);

/// Runs jq -c FILTER on json; returns its trimmed output (a test failure when jq fails).
std::string jq(const std::string& json, const std::string& filter);
/// A JSON string as jq printed it, without its quotes ("\"abc\"" -> "abc"); others unchanged.
std::string unquote(const std::string& s);

/// Writes a file (creating parent directories).
void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);

/// Standard base64 with padding.
std::string base64(const std::string& bytes);

/// The admin access key berthd writes to DATA/admin.credentials on first start.
struct AdminCredentials {
  std::string key_id;
  std::string secret;
  /// Reads DATA/admin.credentials; empty fields when the file is missing or incomplete.
  static AdminCredentials read(const std::string& data_dir);
  /// "ID:SECRET" (for curl -u, skopeo --creds, podman --creds).
  std::string creds() const { return key_id + ":" + secret; }
  /// "Basic base64(ID:SECRET)", the value of an Authorization header.
  std::string basic_header() const { return "Basic " + base64(creds()); }
  /// " -u 'ID:SECRET' " for a curl command line.
  std::string curl_auth() const { return " -u '" + creds() + "' "; }
  /// "BERTH_ACCESS_KEY_ID=... BERTH_SECRET_ACCESS_KEY=... " for a shell command line.
  std::string env() const {
    return "BERTH_ACCESS_KEY_ID='" + key_id + "' BERTH_SECRET_ACCESS_KEY='" + secret + "' ";
  }
};

/// Runs the berth CLI against server with these credentials in its environment (none when
/// the key id is empty), and HOME pointing at an empty directory so ~/.config/berth is never
/// the developer's own.
CmdResult berth_as(const std::string& server, const AdminCredentials& who, const std::string& args);

/// berthd in this process on 127.0.0.1:<random>, data in a temp dir.
class TestDaemon {
 public:
  explicit TestDaemon(std::function<void(config::Config&)> tweak = {});
  ~TestDaemon();
  uint16_t port() const { return port_; }
  std::string host() const;  // "127.0.0.1:PORT"
  std::string url() const;   // "http://127.0.0.1:PORT"
  /// The router (services), "http://127.0.0.1:PORT".
  uint16_t router_port() const { return d_->router_port(); }
  /// The DNS server's port (UDP and TCP on 127.0.0.1).
  uint16_t dns_port() const;
  std::string router_url() const { return "http://127.0.0.1:" + std::to_string(router_port()); }
  /// The router's TLS port (on 127.0.0.1, picked free at start).
  uint16_t router_tls_port() const { return d_->router_tls_port(); }
  const std::string& data_dir() const { return data_.path(); }
  daemon::Daemon& daemon() { return *d_; }
  /// Runs the berth CLI against this daemon as admin (BERTH_ACCESS_KEY_ID and
  /// BERTH_SECRET_ACCESS_KEY in its environment).
  CmdResult cli(const std::string& args) const;
  /// Runs the berth CLI against this daemon with other credentials (an empty key id: none).
  CmdResult cli_as(const AdminCredentials& who, const std::string& args) const;

  /// The admin access key from DATA/admin.credentials.
  const AdminCredentials& admin() const { return admin_; }
  const std::string& admin_key_id() const { return admin_.key_id; }
  const std::string& admin_secret() const { return admin_.secret; }
  /// "ID:SECRET" of the admin key.
  std::string creds() const { return admin_.creds(); }
  /// " -u 'ID:SECRET' " for curl.
  std::string curl_auth() const { return admin_.curl_auth(); }

 private:
  TempDir data_;
  std::unique_ptr<daemon::Daemon> d_;
  uint16_t port_ = 0;
  AdminCredentials admin_;
};

/// berthd as a child process (so tests can SIGKILL it and restart on the same data dir).
class BerthdProcess {
 public:
  BerthdProcess(std::string data_dir, std::vector<std::string> extra_args = {});
  /// Before start(): the API listens on this address instead of 127.0.0.1 ("[::1]").
  void listen_address(std::string a) { listen_address_ = std::move(a); }
  ~BerthdProcess();
  /// Starts and waits until /healthz answers (fails the test after 15 s).
  void start();
  void kill9();
  /// SIGTERM and wait; returns the exit status.
  int terminate();
  bool running() const { return pid_ > 0; }
  /// The child's pid while it runs (-1 otherwise).
  pid_t pid() const { return pid_; }
  /// True while the child is still running (reaps it if it died, e.g. on a crash).
  bool alive();
  /// Port of the current (or last) run; start() picks a new one each time.
  uint16_t port() const { return port_; }
  std::string host() const;
  std::string url() const;
  /// The router of the current run, "http://127.0.0.1:PORT".
  std::string router_url() const { return "http://127.0.0.1:" + std::to_string(router_port_); }
  uint16_t dns_port() const { return dns_port_; }
  uint16_t router_tls_port() const { return router_tls_port_; }
  const std::string& log_path() const { return log_; }
  /// Runs the berth CLI against this berthd as admin.
  CmdResult cli(const std::string& args) const;

  /// The admin access key from DATA/admin.credentials (read by start()).
  const AdminCredentials& admin() const { return admin_; }
  const std::string& admin_key_id() const { return admin_.key_id; }
  const std::string& admin_secret() const { return admin_.secret; }
  std::string creds() const { return admin_.creds(); }
  std::string curl_auth() const { return admin_.curl_auth(); }

 private:
  std::string data_dir_;
  std::vector<std::string> extra_;
  std::string listen_address_ = "127.0.0.1";
  uint16_t port_ = 0;
  uint16_t router_port_ = 0;
  uint16_t router_tls_port_ = 0;
  uint16_t dns_port_ = 0;
  pid_t pid_ = -1;
  std::string log_;
  AdminCredentials admin_;
};

/// A private dockerd (no iptables, no bridge) with its own root, exec root and socket. Each
/// docker command must use docker_cmd() so it talks to this daemon.
class Dockerd {
 public:
  Dockerd();
  ~Dockerd();
  /// Before start(): dockerd runs in a mount namespace of its own where etc_docker is bind-
  /// mounted over /etc/docker (certs.d/HOST:PORT/ca.crt is how docker trusts a registry) and
  /// hosts over /etc/hosts (names for registries, without touching the machine's files).
  void private_etc(std::string etc_docker, std::string hosts);
  /// Starts and waits for the socket (up to 60 s). Returns false (with a reason) if it fails.
  bool start(std::string* why);
  /// "docker -H unix://... --config DIR" prefix.
  std::string docker_cmd() const;

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  std::string etc_docker_, hosts_;
};

/// Builds an OCI image layout at dir with tag `tag` whose single layer holds busybox-static at
/// /bin/busybox (plus extra_files: path -> content). Uses umoci. Returns "" on success, else
/// the error output.
std::string make_busybox_layout(
    const std::string& dir, const std::string& tag,
    const std::vector<std::pair<std::string, std::string>>& extra_files = {});

}  // namespace berth::test
