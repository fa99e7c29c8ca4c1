// SPDX-License-Identifier: Apache-2.0
// berthd: serve (default), `fsck [--config FILE] [--data DIR] [--force]`,
// `backup [--config FILE] --data DIR --to FILE`,
// `restore --from FILE --data DIR [--force]`,
// `migrate --from DIR --to-config FILE [--force] [--dry-run]`, `config check FILE`.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "daemon/backup.h"
#include "daemon/daemon.h"
#include "daemon/migrate.h"

int main(int argc, char** argv) {
  using namespace berth;
  CLI::App app{"berthd: the berth daemon (registry, control API)"};
  std::string data, listen, config_file, log_level;
  bool no_access_log = false;
  app.add_option("--data", data, "data directory (default ./var)");
  app.add_option("--listen", listen, "ADDR:PORT for the registry and API (default 127.0.0.1:5000)");
  std::vector<std::string> router_listen, router_tls_listen;
  app.add_option("--router-listen", router_listen,
                 "ADDR:PORT where services are served over HTTP, repeatable (default "
                 "127.0.0.1:8080; [::1]:8080 for IPv6)");
  app.add_option("--router-tls-listen", router_tls_listen,
                 "ADDR:PORT where services are served over HTTPS, repeatable (default "
                 "127.0.0.1:8443; 'off': no TLS listener)");
  std::vector<std::string> dns_listen;
  app.add_option("--dns-listen", dns_listen,
                 "ADDR:PORT for DNS over UDP and TCP, repeatable (default 127.0.0.1:5353; "
                 "'off': no DNS server)");
  app.add_option("--config", config_file, "YAML config file");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  app.add_flag("--no-access-log", no_access_log, "do not log one line per request");

  auto* fsck = app.add_subcommand("fsck", "re-hash every blob and manifest and report mismatches");
  std::string fsck_data = "./var";
  bool fsck_force = false;
  fsck->add_option("--data", fsck_data, "data directory");
  fsck->add_flag("--force", fsck_force, "check even while a berthd is using the data directory");
  std::string fsck_config;
  fsck->add_option("--config", fsck_config,
                   "YAML config file: its data directory, metadata store (SQLite or "
                   "PostgreSQL) and blob storage (fs or S3)");

  auto* backup = app.add_subcommand(
      "backup", "write a consistent snapshot of a data directory to one file, online or not");
  std::string backup_data = "./var", backup_to;
  backup->add_option("--data", backup_data, "data directory");
  backup->add_option("--to", backup_to, "the backup file to write (a tar)")->required();
  std::string backup_config;
  backup->add_option("--config", backup_config, "YAML config file (its data directory)");

  auto* restore = app.add_subcommand("restore", "put a backup into an empty data directory");
  std::string restore_from, restore_data;
  bool restore_force = false;
  restore->add_option("--from", restore_from, "the backup file")->required();
  restore->add_option("--data", restore_data, "data directory to create")->required();
  restore->add_flag("--force", restore_force,
                    "restore into a non-empty directory (the backup's files replace its own)");

  auto* migrate = app.add_subcommand(
      "migrate",
      "copy a stopped embedded install (berth.db, blobs in files) to the metadata store and blob "
      "storage a config names (PostgreSQL, S3), checking every digest (docs/scale-out.md)");
  std::string migrate_from, migrate_config;
  daemon::MigrateOptions migrate_opts;
  migrate->add_option("--from", migrate_from, "the data directory to copy (e.g. ./var)")
      ->required();
  migrate
      ->add_option("--to-config", migrate_config,
                   "YAML config file naming the target store, blob storage and data directory")
      ->required();
  migrate->add_flag("--force", migrate_opts.force,
                    "replace key files in the target data directory that differ from the "
                    "source's");
  migrate->add_flag("--dry-run", migrate_opts.dry_run,
                    "check everything (every blob's digest included) and copy nothing");

  auto* cfgcmd = app.add_subcommand("config", "configuration tools");
  auto* check = cfgcmd->add_subcommand("check", "validate a config file without starting");
  std::string check_file;
  check->add_option("file", check_file, "YAML config file")->required();
  cfgcmd->require_subcommand(1);

  CLI11_PARSE(app, argc, argv);

  // A subcommand's configuration: the file's, the environment over it, --data over both.
  auto sub_config = [](const std::string& file, const CLI::App* sub, const std::string& data_flag,
                       config::Config& out) -> bool {
    if (!file.empty()) {
      auto c = config::load_file(file);
      if (!c) {
        std::fprintf(stderr, "berthd: %s\n", c.error().message().c_str());
        return false;
      }
      out = *c;
    }
    Status s = config::apply_env(out);
    if (s && (file.empty() || sub->count("--data") > 0)) {
      out.data_dir = data_flag;
    }
    if (s) {
      s = config::validate(out);
    }
    if (!s) {
      std::fprintf(stderr, "berthd: %s\n", s.error().message().c_str());
      return false;
    }
    return true;
  };
  if (*fsck) {
    config::Config fc;
    if (!sub_config(fsck_config, fsck, fsck_data, fc)) {
      return 2;
    }
    return daemon::run_fsck(fc, fsck_force);
  }
  if (*backup) {
    config::Config bc;
    if (!sub_config(backup_config, backup, backup_data, bc)) {
      return 2;
    }
    if (bc.store.driver == "postgres") {
      // The metadata is in the PostgreSQL database, which has its own tools for consistent
      // copies; a tar of the data directory alone would restore blobs without their records.
      std::fprintf(stderr,
                   "berthd backup: the metadata store is PostgreSQL (store.driver: postgres); "
                   "back it up with pg_dump (pg_dump -Fc -f berth.dump \"<store.postgres.dsn>\"), "
                   "and the data directory %s (blobs, secrets.key) with your file backup tool; "
                   "see docs/storage.md\n",
                   bc.data_dir.c_str());
      return 2;
    }
    if (bc.storage.driver == "s3") {
      // The blobs are in the bucket, not in the data directory the backup would copy.
      std::fprintf(stderr,
                   "berthd backup: blobs are in S3 (storage.driver: s3, bucket %s); back the "
                   "bucket up with your S3 service's tools (versioning, replication), the "
                   "metadata store and the data directory %s separately; see docs/storage.md\n",
                   bc.storage.s3.bucket.c_str(), bc.data_dir.c_str());
      return 2;
    }
    return daemon::run_backup(bc.data_dir, backup_to);
  }
  if (*restore) {
    return daemon::run_restore(restore_from, restore_data, restore_force);
  }
  if (*migrate) {
    auto c = config::load_file(migrate_config);
    Status s = c ? config::apply_env(*c) : Status(c.error());
    if (s) {
      s = config::validate(*c);
    }
    if (!s) {
      std::fprintf(stderr, "berthd migrate: %s\n", s.error().message().c_str());
      return 2;
    }
    migrate_opts.config_file = migrate_config;
    return daemon::run_migrate(migrate_from, *c, migrate_opts);
  }
  if (*check) {
    // As berthd would run with it: the environment (BERTH_STORE_POSTGRES_DSN ...) over the file.
    auto c = config::load_file(check_file);
    Status s = c ? config::apply_env(*c) : Status(c.error());
    if (s) {
      s = config::validate(*c);
    }
    if (!s) {
      std::fprintf(stderr, "berthd: %s\n", s.error().message().c_str());
      return 2;
    }
    std::printf("%s: ok\n", check_file.c_str());
    return 0;
  }

  config::Config cfg;
  if (!config_file.empty()) {
    auto c = config::load_file(config_file);
    if (!c) {
      std::fprintf(stderr, "berthd: %s\n", c.error().message().c_str());
      return 2;
    }
    cfg = *c;
  }
  if (auto s = config::apply_env(cfg); !s) {
    std::fprintf(stderr, "berthd: %s\n", s.error().message().c_str());
    return 2;
  }
  // Flags win over the file and the environment.
  if (!data.empty()) cfg.data_dir = data;
  if (!listen.empty()) cfg.listen = listen;
  if (!router_listen.empty()) cfg.router_listen = router_listen;
  if (!router_tls_listen.empty()) {
    cfg.router_tls_listen.clear();
    cfg.router_tls_enabled = false;
    for (const auto& a : router_tls_listen) {
      if (a != "off") {
        cfg.router_tls_listen.push_back(a);
        cfg.router_tls_enabled = true;
      }
    }
  }
  if (!dns_listen.empty()) {
    cfg.dns.listen.clear();
    cfg.dns.enabled = false;
    for (const auto& a : dns_listen) {
      if (a != "off") {
        cfg.dns.listen.push_back(a);
        cfg.dns.enabled = true;
      }
    }
  }
  if (!log_level.empty()) cfg.log_level = log_level;
  if (no_access_log) cfg.access_log = false;

  // SIGINT and SIGTERM wait (blocked, so pending) until run_until_signal() is listening for
  // them: berthd answers /healthz as soon as start() returns, and a stop sent that early must
  // still be a clean stop, not the default action. Threads started meanwhile inherit the mask,
  // so the signal reaches the main thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto d = daemon::Daemon::create(cfg);
  if (!d) {
    std::fprintf(stderr, "berthd: %s\n", d.error().message().c_str());
    return 2;
  }
  auto port = (*d)->start();
  if (!port) {
    std::fprintf(stderr, "berthd: %s\n", port.error().message().c_str());
    return 2;
  }
  (*d)->run_until_signal();
  return 0;
}
