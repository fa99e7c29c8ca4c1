// SPDX-License-Identifier: Apache-2.0
// The blob storage backends the registry's integration tests run on, the way the store's tests
// run on both engines (support/postgres.h): fs (DATA/blobs) and s3 (a fresh bucket on the
// shared RGW of support/rgw.h), and for the suites that go through berthd's API, the whole
// scale-out deployment too: s3 with the metadata in a fresh database on the shared PostgreSQL
// server. A test parametrized over BlobBackend builds a BlobHome, lets it configure the
// daemon, and skips with skip_reason() when the backend cannot run here.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "storage/blob_storage.h"
#include "support/harness.h"

namespace berth::test {

class PostgresServer;

enum class BlobBackend {
  Fs,          // blobs under DATA, metadata in SQLite
  S3,          // blobs in a bucket, metadata in SQLite
  PostgresS3,  // blobs in a bucket, metadata in PostgreSQL
};

std::string blob_backend_name(BlobBackend b);

/// INSTANTIATE_TEST_SUITE_P's name generator: ".../Fs", ".../S3", ".../PostgresS3".
struct BlobBackendName {
  std::string operator()(const ::testing::TestParamInfo<BlobBackend>& p) const {
    return blob_backend_name(p.param);
  }
};

/// Both blob storages, for INSTANTIATE_TEST_SUITE_P of tests of the storage itself.
inline auto all_blob_backends() { return ::testing::Values(BlobBackend::Fs, BlobBackend::S3); }
/// Every deployment, for suites that go through a berthd (its API, skopeo, podman).
inline auto all_registry_backends() {
  return ::testing::Values(BlobBackend::Fs, BlobBackend::S3, BlobBackend::PostgresS3);
}

class BlobHome {
 public:
  /// S3: a fresh bucket on the shared RGW, and the key files in a temp dir; PostgresS3 also a
  /// fresh database on pg (nullptr: the shared PostgreSQL server).
  explicit BlobHome(BlobBackend b, PostgresServer* pg = nullptr);
  BlobBackend backend() const { return backend_; }
  /// Blobs are in a bucket (S3 or PostgresS3).
  bool on_s3() const { return backend_ != BlobBackend::Fs; }
  /// "" when usable; otherwise why not (the test should GTEST_SKIP with it).
  const std::string& skip_reason() const { return skip_; }
  /// Points the config's storage (and for PostgresS3 its store) at this backend (nothing for
  /// fs).
  void apply(config::Config& c, bool redirect_pulls = false) const;
  /// The blob storage over data_dir, as berthd would open it.
  storage::BlobStoragePtr open(const std::string& data_dir) const;
  /// A stored blob's bytes ("" when it is not there).
  std::string read_blob(const std::string& data_dir, const std::string& hex) const;
  /// 200 when the blob is stored, 404 when it is not; anything else is the backend failing to
  /// say (an S3 error, curl's 0 when RGW does not answer).
  int blob_status(const std::string& data_dir, const std::string& hex) const;
  const std::string& bucket() const { return bucket_; }
  /// The database's DSN (PostgresS3), "" otherwise.
  const std::string& dsn() const { return dsn_; }

 private:
  BlobBackend backend_;
  std::string skip_;
  std::string bucket_;
  std::string dsn_;
  std::unique_ptr<TempDir> keys_;
};

}  // namespace berth::test
