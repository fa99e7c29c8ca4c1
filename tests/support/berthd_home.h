// SPDX-License-Identifier: Apache-2.0
// Where a berthd child process (BerthdProcess) keeps its state, for the fault tests that run
// one scenario on both deployments: the embedded one (SQLite and blob files under DATA) and
// the scale-out one (PostgreSQL and S3: a fresh database on a PostgreSQL server and a fresh
// bucket on the shared RGW of support/rgw.h). A BerthdHome writes the berthd.yaml that points
// berthd, and `berthd fsck --config`, at it; tests skip with skip_reason() when its services
// cannot run here.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "storage/s3.h"
#include "support/blob_backend.h"
#include "support/harness.h"
#include "support/postgres.h"

namespace berth::test {

enum class StateBackend { Embedded, PostgresS3 };

std::string state_backend_name(StateBackend b);

/// How gtest prints the parameter (in test lists and ctest names).
inline void PrintTo(StateBackend b, std::ostream* os) { *os << state_backend_name(b); }

/// INSTANTIATE_TEST_SUITE_P's name generator: ".../Embedded", ".../PostgresS3".
struct StateBackendName {
  std::string operator()(const ::testing::TestParamInfo<StateBackend>& p) const {
    return state_backend_name(p.param);
  }
};

class BerthdHome {
 public:
  /// PostgresS3: a database on pg (nullptr: the shared server) and a bucket on the shared RGW.
  explicit BerthdHome(StateBackend b, PostgresServer* pg = nullptr);
  StateBackend backend() const { return backend_; }
  /// "" when usable; otherwise why not (the test should GTEST_SKIP with it).
  const std::string& skip_reason() const { return skip_; }

  /// The data directory (DATA: keys, upload spools, and on Embedded berth.db and blobs/).
  const std::string& data_dir() const { return data_; }
  const std::string& config_path() const { return config_; }
  /// (Re)writes berthd.yaml: data, store and storage, and registry.upload_ttl when set.
  /// The constructor writes it without a TTL (berthd's default).
  void write_config(std::optional<std::chrono::seconds> upload_ttl = std::nullopt) const;
  /// A berthd on this state: BerthdProcess(data_dir(), berthd_args()).
  std::vector<std::string> berthd_args() const { return {"--config", config_}; }
  /// `berthd fsck --config berthd.yaml` (berthd must not be running).
  CmdResult fsck() const;

  /// The blob storage, as berthd opens it.
  const BlobHome& blobs() const { return *blobs_; }
  /// A client for the bucket (PostgresS3), nullptr on Embedded.
  storage::S3Client* s3() const { return s3_.get(); }
  /// The database's DSN (PostgresS3), "" on Embedded.
  const std::string& dsn() const { return blobs_->dsn(); }

 private:
  StateBackend backend_;
  std::string skip_;
  TempDir dir_;
  std::string data_;
  std::string config_;
  std::unique_ptr<BlobHome> blobs_;
  std::unique_ptr<storage::S3Client> s3_;
};

}  // namespace berth::test
