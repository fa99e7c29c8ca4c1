// SPDX-License-Identifier: Apache-2.0
// berthd's wiring and lifecycle: config -> store -> subsystems -> listener. Used by main()
// and, in-process, by the integration tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/events.h"
#include "common/result.h"
#include "config/config.h"
#include "storage/blob_storage.h"

namespace berth::router {
class Router;
}
namespace berth::store {
class MetadataStore;
}  // namespace berth::store

namespace berth::domains {
class Manager;
}  // namespace berth::domains

namespace berth::registry {
class Registry;
}

namespace berth::daemon {

class Daemon {
 public:
  /// Opens the data dir (creating it), locks it against a second berthd, opens the store.
  static Result<std::unique_ptr<Daemon>> create(config::Config cfg);
  ~Daemon();

  /// Binds the listener and starts the I/O threads; returns the bound port.
  Result<uint16_t> start();
  /// Stops accepting, lets in-flight requests finish (bounded), joins the threads.
  void stop();
  /// Blocks until SIGINT/SIGTERM, then stops.
  void run_until_signal();

  uint16_t port() const;
  /// The router's first bound plain-HTTP port (services), 0 before start.
  uint16_t router_port() const;
  /// The router's first bound TLS port, 0 before start or without a TLS listener.
  uint16_t router_tls_port() const;
  /// The router (certificates and ACME challenges are published through it).
  router::Router& router();
  /// The DNS server's bound addresses ("127.0.0.1:40123"), empty before start or when off.
  std::vector<std::string> dns_addresses() const;
  EventBus& events();
  /// The registry (tests drive its maintenance, e.g. apply_lifecycle(), without waiting).
  registry::Registry& registry();
  /// Linked domains (null before start()).
  domains::Manager* domains();

 private:
  Daemon();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// `berthd fsck --data DIR [--force]`: prints a report; exit code 0 clean, 1 problems, 2 error.
/// Refuses (2) a data dir a running berthd holds, unless force.
int run_fsck(const std::string& data_dir, bool force = false);
/// The same with a whole configuration: its data directory and its metadata store (SQLite in
/// the data directory, or PostgreSQL).
int run_fsck(const config::Config& cfg, bool force);

/// Opens the metadata store cfg.store names: SQLite at DATA/berth.db, or PostgreSQL at
/// store.postgres.dsn (with the password from store.postgres.password_file, if set).
Result<std::unique_ptr<store::MetadataStore>> open_store(const config::Config& cfg);
/// The blob storage cfg.storage names (the S3 driver reads its key files here).
Result<storage::BlobStoragePtr> open_blob_storage(const config::Config& cfg);

}  // namespace berth::daemon
