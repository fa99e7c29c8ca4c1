// SPDX-License-Identifier: Apache-2.0
#include "support/berthd_home.h"

#include <filesystem>

#include "support/rgw.h"

namespace berth::test {

std::string state_backend_name(StateBackend b) {
  return b == StateBackend::Embedded ? "Embedded" : "PostgresS3";
}

BerthdHome::BerthdHome(StateBackend b, PostgresServer* pg)
    : backend_(b), data_(dir_ / "data"), config_(dir_ / "berthd.yaml") {
  std::filesystem::create_directories(data_);
  // The database and the bucket are BlobHome's (the registry suites' PostgresS3 backend).
  blobs_ = std::make_unique<BlobHome>(
      b == StateBackend::Embedded ? BlobBackend::Fs : BlobBackend::PostgresS3, pg);
  if (!blobs_->skip_reason().empty()) {
    skip_ = blobs_->skip_reason();
    return;
  }
  if (b == StateBackend::PostgresS3) {
    s3_ =
        std::make_unique<storage::S3Client>(RgwServer::shared()->client_options(blobs_->bucket()));
  }
  write_config();
}

void BerthdHome::write_config(std::optional<std::chrono::seconds> upload_ttl) const {
  std::string yaml = "version: 1\ndata: " + data_ + "\n";
  if (backend_ == StateBackend::PostgresS3) {
    config::Config c;
    blobs_->apply(c);
    const auto& s3 = c.storage.s3;
    yaml += "store:\n  driver: postgres\n  postgres:\n    dsn: \"" + c.store.postgres.dsn +
            "\"\n    max_connections: " + std::to_string(c.store.postgres.max_connections) + "\n";
    yaml += "storage:\n  driver: s3\n  s3:\n    endpoint: " + s3.endpoint +
            "\n    region: " + s3.region + "\n    bucket: " + s3.bucket +
            "\n    access_key_id_file: " + s3.access_key_id_file +
            "\n    secret_access_key_file: " + s3.secret_access_key_file +
            "\n    path_style: true\n";
  }
  if (upload_ttl) {
    yaml += "registry:\n  upload_ttl: " + std::to_string(upload_ttl->count()) + "s\n";
  }
  write_file(config_, yaml);
}

CmdResult BerthdHome::fsck() const { return run(bin("berthd") + " fsck --config " + config_); }

}  // namespace berth::test
