// SPDX-License-Identifier: Apache-2.0
// An ImageSource over an OCI image layout directory (index.json + blobs/sha256), for the
// runtime tests that run images without a registry.
#pragma once

#include <filesystem>
#include <string>
#include <utility>

#include "common/json.h"
#include "runtime/runtime.h"
#include "support/harness.h"

namespace berth::test {

class LayoutSource : public runtime::ImageSource {
 public:
  explicit LayoutSource(std::string dir) : dir_(std::move(dir)) {}
  Result<std::pair<std::string, std::string>> manifest(const std::string&,
                                                       const std::string& digest) override {
    BERTH_ASSIGN_OR_RETURN(std::string path, blob_path(digest));
    std::string bytes = read_file(path);
    auto j = parse_json(bytes);
    std::string mt = j && j->is_object() ? j->value("mediaType", "") : "";
    return std::make_pair(bytes, mt);
  }
  Result<std::string> blob_path(const std::string& digest) override {
    if (digest.rfind("sha256:", 0) != 0) {
      return Error(Errc::NotFound, digest);
    }
    std::string p = dir_ + "/blobs/sha256/" + digest.substr(7);
    if (!std::filesystem::exists(p)) {
      return Error(Errc::NotFound, "no blob " + digest);
    }
    return p;
  }
  // The manifest digest that tag names in index.json.
  std::string tag_digest(const std::string& tag) {
    auto j = parse_json(read_file(dir_ + "/index.json"));
    for (const auto& m : (*j)["manifests"]) {
      if (m.contains("annotations") &&
          m["annotations"].value("org.opencontainers.image.ref.name", "") == tag) {
        return m["digest"].get<std::string>();
      }
    }
    return "";
  }
  // The digest of the first (in these tests, the only) manifest in index.json.
  std::string digest_of_only_manifest() {
    auto j = parse_json(read_file(dir_ + "/index.json"));
    return (*j)["manifests"][0]["digest"].get<std::string>();
  }

 private:
  std::string dir_;
};

}  // namespace berth::test
