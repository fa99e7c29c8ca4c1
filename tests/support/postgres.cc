// SPDX-License-Identifier: Apache-2.0
#include "support/postgres.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "support/shared_servers.h"

namespace berth::test {

namespace {

// The newest PostgreSQL server installed the Debian way.
std::string find_bin() {
  auto r = run("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1");
  std::string dir = r.out;
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) {
    dir.pop_back();
  }
  if (dir.empty() || !std::filesystem::exists(dir + "/initdb")) {
    return {};
  }
  return dir;
}

// A new cluster in `data`, copied from one initdb made once per build tree and server version
// (BUILD/pg-template-N): a copy takes milliseconds where initdb takes a second or more, and
// tests that need a server of their own (or run without the shared one) start one per test
// process. A lock file orders the test
// processes that ctest runs at once; the template appears under its name only when complete.
// Returns "" or why it failed.
std::string copy_template(const std::string& bin, const std::string& owner,
                          const std::string& data) {
  std::string version = std::filesystem::path(bin).parent_path().filename().string();
  std::string tpl = std::string(BERTH_BIN_DIR) + "/../pg-template-" + version;
  int lock = ::open((tpl + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0) {
    std::string why = "cannot lock " + tpl + ".lock: " + std::strerror(errno);
    if (lock >= 0) {
      ::close(lock);
    }
    return why;
  }
  std::string why;
  if (!std::filesystem::exists(tpl + "/data/PG_VERSION")) {
    std::string tmp = tpl + ".tmp";
    auto made = run("rm -rf '" + tmp + "' '" + tpl + "' && mkdir -p '" + tmp + "'" +
                    (owner.empty() ? "" : " && chown nobody '" + tmp + "'"));
    auto init =
        made.code != 0
            ? made
            : run(owner + bin + "/initdb -D '" + tmp +
                  "/data' -U berth -A trust -E UTF8 --locale=C --no-sync --no-instructions");
    if (init.code != 0) {
      why = "initdb failed: " + tail_of(init.all());
    } else if (::rename(tmp.c_str(), tpl.c_str()) != 0) {
      why = "rename " + tmp + ": " + std::strerror(errno);
    }
  }
  if (why.empty()) {
    auto cp = run("cp -a '" + tpl + "/data' '" + data + "'");
    if (cp.code != 0) {
      why = "copying the initdb template: " + tail_of(cp.all());
    }
  }
  ::flock(lock, LOCK_UN);
  ::close(lock);
  return why;
}

}  // namespace

PostgresServer::PostgresServer() : own_dir_(std::make_unique<TempDir>()), dir_(own_dir_->path()) {
  bin_ = find_bin();
  if (bin_.empty()) {
    error_ =
        "no PostgreSQL server installed (/usr/lib/postgresql/*/bin/initdb; scripts/setup "
        "--test installs postgresql-15)";
    return;
  }
  if (::geteuid() == 0) {
    if (!have("runuser")) {
      error_ = "running as root and runuser is missing: initdb refuses to run as root";
      return;
    }
    // The server's files belong to nobody; the temp dir must be theirs to write.
    auto r = run("chown nobody '" + dir_ + "'");
    if (r.code != 0) {
      error_ = "chown nobody " + dir_ + ": " + r.all();
      return;
    }
  }
  if (std::string why = copy_template(bin_, as_owner(), dir_ + "/data"); !why.empty()) {
    error_ = why;
    return;
  }
  // Tuned for tests: nothing survives a crash, and nothing needs to.
  write_file(dir_ + "/data/postgresql.auto.conf",
             "listen_addresses = '127.0.0.1'\nunix_socket_directories = '" + dir_ +
                 "'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                 "max_connections = 200\n");
  if (::geteuid() == 0) {
    (void)run("chown nobody '" + dir_ + "/data/postgresql.auto.conf'");
  }
  for (int attempt = 0; attempt < 3 && !running_; ++attempt) {
    port_ = free_port();  // another process may take it first: then try the next one
    running_ = start();
  }
}

PostgresServer::PostgresServer(const SharedPostgres& s)
    : bin_(s.bin), port_(s.port), running_(true), attached_(true) {}

PostgresServer::~PostgresServer() {
  if (attached_) {
    // The databases this process made, so that a run's server does not fill the disk.
    for (const auto& name : databases_) {
      (void)psql("postgres", "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    }
    return;
  }
  resume();
  if (running_) {
    stop();
  }
}

std::string PostgresServer::as_owner() const {
  return ::geteuid() == 0 ? "runuser -u nobody -- " : "";
}

bool PostgresServer::refuse_shared(const char* what) const {
  if (attached_) {
    ADD_FAILURE() << "a test that " << what
                  << " PostgreSQL needs a server of its own (PostgresServer server;), not the "
                     "one the run shares";
  }
  return attached_;
}

bool PostgresServer::start() {
  if (refuse_shared("starts")) {
    return false;
  }
  if (postmaster_ > 0) {
    error_ = "start: the server is already running";
    return false;
  }
  // The postmaster runs as this process's child, not daemonized by pg_ctl: a test killed by a
  // timeout or a crash takes it down too (SIGQUIT, PostgreSQL's immediate shutdown).
  std::string data = dir_ + "/data";
  std::string log = dir_ + "/server.log";
  SpawnOptions opts;
  opts.death_signal = SIGQUIT;
  opts.user = "nobody";  // when root (initdb's cluster refuses root); otherwise ignored
  postmaster_ =
      spawn_server({bin_ + "/postgres", "-D", data, "-p", std::to_string(port_)}, log, opts);
  // Ready when postmaster.pid names this postmaster and says so (its 8th line, as pg_ctl -w
  // reads it).
  auto ready = [&] {
    std::istringstream pidfile(read_file(data + "/postmaster.pid"));
    std::string line;
    for (int i = 1; std::getline(pidfile, line); ++i) {
      if (i == 1 && std::atoi(line.c_str()) != postmaster_) {
        return false;
      }
      if (i == 8) {
        return line.rfind("ready", 0) == 0;
      }
    }
    return false;
  };
  std::string failed = wait_started(postmaster_, "postgres", ready, std::chrono::seconds(60),
                                    std::chrono::milliseconds(20));
  running_ = failed.empty();
  if (!running_) {
    stop_child(postmaster_, std::chrono::seconds(5), SIGQUIT);  // when it hangs at start
    error_ = failed + "; server log: " + tail_of(read_file(log));
  }
  return running_;
}

bool PostgresServer::require_passwords() {
  if (refuse_shared("reconfigures")) {
    return false;
  }
  // Read top down, first match wins; the file belongs to the server's owner.
  std::string hba = dir_ + "/data/pg_hba.conf";
  write_file(hba,
             "local all all trust\n"
             "host all berth 127.0.0.1/32 trust\n"
             "host all all 127.0.0.1/32 scram-sha-256\n"
             "host all all ::1/128 scram-sha-256\n");
  auto r = run("chown --reference='" + dir_ + "/data/postgresql.conf' '" + hba + "'");
  if (r.code != 0 || postmaster_ <= 0 ||
      ::kill(postmaster_, SIGHUP) != 0) {  // SIGHUP: reload, as pg_ctl does
    error_ = "reloading pg_hba.conf failed: " + tail_of(r.all());
    return false;
  }
  return true;
}

bool PostgresServer::stop() {
  if (refuse_shared("stops")) {
    return false;
  }
  // SIGINT: a fast shutdown, as pg_ctl stop -m fast.
  bool stopped = postmaster_ > 0 && stop_child(postmaster_, std::chrono::seconds(60), SIGINT);
  running_ = false;
  return stopped;
}

namespace {

// The pids whose parent is `parent` (from /proc/<pid>/stat: "pid (comm) state ppid ...").
std::vector<int> children_of(int parent) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::string stat = read_file(e.path().string() + "/stat");
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) {
      continue;
    }
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %d", &state, &ppid) == 2 && ppid == parent) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

}  // namespace

bool PostgresServer::pause() {
  if (refuse_shared("pauses")) {
    return false;
  }
  // The postmaster first, so that it forks no new backend meanwhile.
  if (postmaster_ <= 0 || ::kill(postmaster_, SIGSTOP) != 0) {
    return false;
  }
  paused_ = {postmaster_};
  for (int pid : children_of(postmaster_)) {
    if (::kill(pid, SIGSTOP) == 0) {
      paused_.push_back(pid);
    }
  }
  return true;
}

void PostgresServer::resume() {
  for (int pid : paused_) {
    ::kill(pid, SIGCONT);
  }
  paused_.clear();
}

namespace {

std::unique_ptr<PostgresServer>& shared_server() {
  static std::unique_ptr<PostgresServer> server = std::make_unique<PostgresServer>();
  return server;
}

}  // namespace

PostgresServer* PostgresServer::shared() {
  if (shared_postgres()) {
    static PostgresServer attached(*shared_postgres());
    return &attached;
  }
  auto& server = shared_server();
  if (!server->running()) {
    server_missing("PostgreSQL cannot run here: " + server->error());
    return nullptr;
  }
  return server.get();
}

const std::string& PostgresServer::shared_error() {
  static const std::string none;
  return shared_postgres() ? none : shared_server()->error();
}

std::string PostgresServer::dsn(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + dbname + " user=berth";
}

CmdResult PostgresServer::psql(const std::string& dbname, const std::string& sql) const {
  return run(bin_ + "/psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p " +
             std::to_string(port_) + " -U berth -d " + dbname + " -c \"" + sql + "\"");
}

// Unique across the test processes sharing a server, and across a pid used again (a
// database left by a process that died keeps its name): pid, count, and a random tag.
std::string PostgresServer::create_database() {
  std::string name = "test_";
  name.append(std::to_string(::getpid()))
      .append("_")
      .append(std::to_string(databases_.size() + 1))
      .append("_")
      .append(random_text("0123456789abcdef", 8));
  auto r = psql("postgres", "CREATE DATABASE " + name);
  EXPECT_EQ(r.code, 0) << r.all();
  if (r.code != 0) {
    return {};
  }
  databases_.push_back(name);
  return dsn(name);
}

std::string store_engine_name(StoreEngine e) {
  return e == StoreEngine::Sqlite ? "Sqlite" : "Postgres";
}

StoreHome::StoreHome(StoreEngine e, bool persistent) : engine_(e) {
  if (e == StoreEngine::Sqlite) {
    if (persistent) {
      dir_ = std::make_unique<TempDir>();
      path_ = *dir_ / "berth.db";
    } else {
      path_ = ":memory:";
    }
    return;
  }
  auto* server = PostgresServer::shared();
  if (server == nullptr) {
    skip_ = "PostgreSQL cannot run here: " + PostgresServer::shared_error();
    return;
  }
  dsn_ = server->create_database();
  if (dsn_.empty()) {
    skip_ = "CREATE DATABASE failed";
  }
}

Result<store::MetadataStorePtr> StoreHome::open() const {
  if (engine_ == StoreEngine::Sqlite) {
    return store::open_sqlite(path_);
  }
  return store::open_postgres(store::PostgresOptions{dsn_, "", 4});
}

}  // namespace berth::test
