// SPDX-License-Identifier: Apache-2.0
// The layer unpacker (ImagePreparer::unpack_layer): libarchive reading a tar (optionally gzip or
// zstd) and berth's checks on every entry: paths that climb out, hardlinks whose target does,
// entries below a symlink, whiteouts. The input is the layer blob; it is unpacked into a scratch
// cache (on /dev/shm when it exists: the unpacker syncfs()es every layer) and pruned after.
// Invariant: nothing appears in the scratch root besides the cache and the blob, whatever the
// layer says. Runs as root in CI, like berthd (device nodes, chown, trusted.* xattrs).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "fuzz.h"
#include "runtime/runtime.h"

namespace {

namespace stdfs = std::filesystem;

// A fixed digest: the unpacker does not hash the blob, and one name keeps its lock table small.
constexpr const char* kDigest =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

class NoSource : public berth::runtime::ImageSource {
 public:
  berth::Result<std::pair<std::string, std::string>> manifest(const std::string&,
                                                              const std::string&) override {
    return berth::Error(berth::Errc::NotFound, "no manifests");
  }
  berth::Result<std::string> blob_path(const std::string&) override {
    return berth::Error(berth::Errc::NotFound, "no blobs");
  }
};

struct Env {
  std::string root;
  std::string blob;
  NoSource source;
  berth::runtime::ImagePreparer preparer;
  explicit Env(const std::string& r)
      : root(r), blob(r + "/layer.tar"), preparer(r + "/cache", source) {}
};

Env& env() {
  static Env* e = [] {
    std::error_code ec;
    stdfs::path base = stdfs::is_directory("/dev/shm", ec) ? stdfs::path("/dev/shm")
                                                           : stdfs::temp_directory_path();
    std::string tmpl = (base / "berth-fuzz-unpack-XXXXXX").string();
    BERTH_FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    auto* made = new Env(tmpl);
    // The scratch dir goes when the replay or fuzzer exits normally (a crash keeps it).
    std::atexit([] {
      std::error_code rm_ec;
      std::filesystem::remove_all(env().root, rm_ec);
    });
    return made;
  }();
  return *e;
}

}  // namespace

BERTH_FUZZ_TARGET(tar_unpack) {
  berth::fuzz::quiet_logs();
  Env& e = env();
  {
    std::ofstream out(e.blob, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    BERTH_FUZZ_CHECK(out.good());
  }
  (void)e.preparer.unpack_layer(kDigest, e.blob);
  (void)e.preparer.prune({});
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(e.root, ec)) {
    auto name = entry.path().filename().string();
    if (name != "cache" && name != "layer.tar") {
      std::fprintf(stderr, "unpacker wrote outside its layer dir: %s\n", name.c_str());
      BERTH_FUZZ_CHECK(false);
    }
  }
  // A failed unpack must not leave its temp dir behind: only the layer's lock file stays.
  for (const auto& entry : stdfs::directory_iterator(e.root + "/cache/layers", ec)) {
    auto name = entry.path().filename().string();
    if (name != std::string(kDigest).substr(7) + ".lock") {
      std::fprintf(stderr, "unpacker left %s in the layer cache\n", name.c_str());
      BERTH_FUZZ_CHECK(false);
    }
  }
  return 0;
}
