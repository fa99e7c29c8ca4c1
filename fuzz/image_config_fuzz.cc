// SPDX-License-Identifier: Apache-2.0
// Image config blobs (application/vnd.oci.image.config.v1+json) as the registry reads them for
// the platform (oci::parse_config_platform) and as the runtime reads them to start an instance
// (ImagePreparer::prepare: Entrypoint, Cmd, Env, WorkingDir, User, ...). The runtime's parser
// is private, so the input goes through prepare() with a fake image source whose manifest has
// no layers and whose config blob is the input.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz.h"
#include "oci/oci.h"
#include "runtime/runtime.h"

namespace {

constexpr const char* kConfigDigest =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

class ConfigSource : public berth::runtime::ImageSource {
 public:
  explicit ConfigSource(std::string path) : path_(std::move(path)) {}
  berth::Result<std::pair<std::string, std::string>> manifest(const std::string&,
                                                              const std::string&) override {
    std::string m =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
        R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json",)"
        R"("digest":")" +
        std::string(kConfigDigest) + R"(","size":2},"layers":[]})";
    return std::make_pair(m, std::string("application/vnd.oci.image.manifest.v1+json"));
  }
  berth::Result<std::string> blob_path(const std::string&) override { return path_; }

 private:
  std::string path_;
};

struct Env {
  std::string dir;
  std::string config_path;
  ConfigSource source;
  berth::runtime::ImagePreparer preparer;

  explicit Env(const std::string& d)
      : dir(d),
        config_path(d + "/config.json"),
        source(config_path),
        preparer(d + "/cache", source) {}
};

Env& env() {
  static Env* e = [] {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "berth-fuzz-config-XXXXXX").string();
    BERTH_FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    auto* made = new Env(tmpl);
    // The scratch dir goes when the replay or fuzzer exits normally (a crash keeps it).
    std::atexit([] {
      std::error_code rm_ec;
      std::filesystem::remove_all(env().dir, rm_ec);
    });
    return made;
  }();
  return *e;
}

}  // namespace

BERTH_FUZZ_TARGET(image_config) {
  using namespace berth;
  fuzz::quiet_logs();
  std::string_view bytes = fuzz::as_view(data, size);
  (void)oci::parse_config_platform(bytes);
  Env& e = env();
  {
    std::ofstream out(e.config_path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    BERTH_FUZZ_CHECK(out.good());
  }
  auto img = e.preparer.prepare("fuzz/app", kConfigDigest);
  if (img) {
    BERTH_FUZZ_CHECK(img->layer_dirs.empty());
  }
  return 0;
}
