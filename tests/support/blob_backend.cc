// SPDX-License-Identifier: Apache-2.0
#include "support/blob_backend.h"

#include <cstdlib>
#include <filesystem>

#include "daemon/daemon.h"
#include "support/postgres.h"
#include "support/rgw.h"

namespace berth::test {

std::string blob_backend_name(BlobBackend b) {
  switch (b) {
    case BlobBackend::Fs:
      return "Fs";
    case BlobBackend::S3:
      return "S3";
    case BlobBackend::PostgresS3:
      return "PostgresS3";
  }
  return "?";
}

BlobHome::BlobHome(BlobBackend b, PostgresServer* pg) : backend_(b) {
  if (b == BlobBackend::Fs) {
    return;
  }
  if (b == BlobBackend::PostgresS3) {
    pg = pg != nullptr ? pg : PostgresServer::shared();
    if (pg == nullptr) {
      skip_ = "PostgreSQL cannot run here: " + PostgresServer::shared_error();
      return;
    }
    dsn_ = pg->create_database();
    if (dsn_.empty()) {
      skip_ = "CREATE DATABASE failed";
      server_missing(skip_);
      return;
    }
  }
  auto* rgw = RgwServer::shared();
  if (rgw == nullptr) {
    skip_ = "RGW cannot run here: " + RgwServer::shared_error();
    return;
  }
  if (!rgw->running() && !rgw->start()) {
    skip_ = "radosgw does not start again: " + rgw->error();
    server_missing(skip_);
    return;
  }
  bucket_ = rgw->create_bucket();
  if (bucket_.empty()) {
    skip_ = "creating a bucket failed";
    server_missing(skip_);
    return;
  }
  keys_ = std::make_unique<TempDir>();
  write_file(*keys_ / "s3.id", rgw->access_key() + "\n");
  write_file(*keys_ / "s3.secret", rgw->secret_key() + "\n");
}

void BlobHome::apply(config::Config& c, bool redirect_pulls) const {
  if (!on_s3() || !skip_.empty()) {
    return;
  }
  if (backend_ == BlobBackend::PostgresS3) {
    c.store.driver = "postgres";
    c.store.postgres.dsn = dsn_;
    c.store.postgres.max_connections = 8;
  }
  auto* rgw = RgwServer::shared();
  c.storage.driver = "s3";
  c.storage.s3.endpoint = rgw->endpoint();
  c.storage.s3.region = rgw->region();
  c.storage.s3.bucket = bucket_;
  c.storage.s3.access_key_id_file = *keys_ / "s3.id";
  c.storage.s3.secret_access_key_file = *keys_ / "s3.secret";
  c.storage.s3.path_style = true;
  c.storage.s3.redirect_pulls = redirect_pulls;
}

storage::BlobStoragePtr BlobHome::open(const std::string& data_dir) const {
  config::Config c;
  c.data_dir = data_dir;
  apply(c);
  auto r = daemon::open_blob_storage(c);
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : nullptr;
}

std::string BlobHome::read_blob(const std::string& data_dir, const std::string& hex) const {
  if (backend_ == BlobBackend::Fs) {
    return read_file(data_dir + "/" + storage::blob_key(hex));
  }
  auto* rgw = RgwServer::shared();
  auto r =
      run(rgw->curl_s3() + "-f " + rgw->endpoint() + "/" + bucket_ + "/" + storage::blob_key(hex));
  return r.code == 0 ? r.out : std::string();
}

int BlobHome::blob_status(const std::string& data_dir, const std::string& hex) const {
  if (backend_ == BlobBackend::Fs) {
    return std::filesystem::exists(data_dir + "/" + storage::blob_key(hex)) ? 200 : 404;
  }
  auto* rgw = RgwServer::shared();
  auto r = run(rgw->curl_s3() + "-o /dev/null -w '%{http_code}' --head " + rgw->endpoint() + "/" +
               bucket_ + "/" + storage::blob_key(hex));
  return std::atoi(r.out.c_str());
}

}  // namespace berth::test
