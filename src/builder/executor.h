// SPDX-License-Identifier: Apache-2.0
// The image builder (private to the build module): runs a parsed Dockerfile without a Docker
// daemon and produces an OCI image (layers, config, manifest) as local files, ready for
// registry::Registry::push_local().
//
//  - Base images (`FROM web/base:1`, `COPY --from=web/base:1`) come from berth's registry
//    through a BaseImages callback, which checks the build role's registry:Pull; `scratch`
//    is an empty rootfs.
//  - RUN executes through runtime::Runtime::run_task() in an overlay of the stage's layers
//    with the stage's env, user and working dir (host network); the upper dir becomes the
//    layer (write_layer with overlay_upper). COPY/ADD build their layer with
//    write_copy_layer() from the context (or another stage's rootfs / an image), .dockerignore
//    applied; ADD of a local tar extracts it; ADD of a URL is refused.
//  - Every new layer is unpacked into the runtime's layer cache (ImagePreparer::unpack_layer)
//    so the next step can use it as a lower dir.
//  - The layer cache: a step's key is sha256 over the parent chain (the diff_ids so far and
//    the base image digest), the expanded instruction (with the env and args that reach it)
//    and, for COPY/ADD, the content hashes of every file it reads (path, mode, owner, bytes,
//    link targets). A hit reuses the stored layer without running anything.
//  - Output: OCI image manifest and config with diff_ids, history (one entry per
//    instruction, empty_layer where no layer was made), platform (the host's), and the
//    Dockerfile's Cmd, Entrypoint, Env, ExposedPorts, WorkingDir, User, Labels, Volumes,
//    StopSignal, Healthcheck, Shell and OnBuild; extra labels (the commit and source URL)
//    on top.
//
// Everything here blocks: call it from a build worker thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "registry/registry.h"
#include "runtime/runtime.h"

namespace berth::builder {

/// A base image resolved and unpacked.
struct BaseImage {
  std::string reference;            // as written after expansion: "web/base:1"
  std::string repository;           // "web/base"
  std::string digest;               // the platform-specific image manifest's digest
  runtime::PreparedImage prepared;  // layer dirs, digests, run config
  std::string config_json;          // the image config's bytes (history, diff_ids, labels...)
  /// The image's layer blobs as files (the registry's blob files), bottom first, in the
  /// order of prepared.layer_digests, with the manifest's sizes and media types: the built
  /// image's manifest references them below its own layers.
  std::vector<registry::LocalBlob> layer_blobs;
};

/// Resolves an image reference ("web/base:1", "web/base@sha256:...", or with berth's own
/// host:port in front) in berth's registry, checks the build's registry:Pull on it, and
/// unpacks it. Errors name the image: NotFound "base image web/base:1 is not in berth's
/// registry: push it there first", PermissionDenied "AccessDenied: role R may not
/// registry:Pull on repository web/base", and the runtime's platform sentence.
using BaseImages = std::function<Result<BaseImage>(const std::string& reference)>;

struct ExecutorOptions {
  /// DATA/build: blobs/ (layer and config files by digest), cache/ (step key -> layer),
  /// tmp/ (per-build scratch, removed at the end).
  std::string root;
  runtime::Runtime* runtime = nullptr;         // runs RUN steps
  runtime::ImagePreparer* preparer = nullptr;  // unpacks new layers into the layer cache
};

struct BuildInput {
  std::string id;           // build id, for task ids ("build-42-3") and scratch dirs
  std::string context_dir;  // the context root (checkout + the project's context path)
  std::string dockerfile;   // path of the Dockerfile, absolute (may be outside the context)
  std::map<std::string, std::string> build_args;
  std::string target;                         // stage name or index; "" = the last stage
  std::map<std::string, std::string> labels;  // added to the image's labels, over the file's
  std::optional<int64_t> source_date_epoch;   // clamps layer mtimes and sets "created"
  BaseImages base_images;
  /// Values that must never appear in the log (secret build args and the like).
  std::vector<std::string> secrets;
  /// Build log: one line at a time, secrets already masked. Step headers look like
  /// "Step 2/4 : COPY busybox /bin/busybox" and "---> Using cache" as Docker's do.
  std::function<void(std::string_view line)> log;
  const std::atomic<bool>* cancel = nullptr;  // set: the running step is killed, Cancelled
  bool no_cache = false;
};

struct StepTiming {
  int line = 0;         // Dockerfile line
  std::string text;     // "COPY busybox /bin/busybox" (expanded, secrets masked)
  bool cached = false;  // the layer came from the cache
  int64_t ms = 0;       // wall time of the step
};

struct BuiltImage {
  std::string manifest;                     // bytes
  std::string manifest_digest;              // "sha256:..."
  std::string media_type;                   // application/vnd.oci.image.manifest.v1+json
  registry::LocalBlob config;               // the config blob (in root/blobs)
  std::vector<registry::LocalBlob> layers;  // bottom first, base image layers included
  std::vector<StepTiming> steps;
  int cached_steps = 0;  // steps that produce a layer and came from the cache
  int layer_steps = 0;   // steps that produce a layer (RUN, COPY, ADD)
};

class Executor {
 public:
  explicit Executor(ExecutorOptions opts);

  /// Builds the image. Errors carry "Dockerfile:<line>: " for anything a step caused:
  /// a failing RUN is FailedPrecondition "Dockerfile:3: RUN false: exited with code 1" (its
  /// output is already in the log); a COPY source that matches nothing is NotFound naming it;
  /// parse errors as parse_dockerfile() gives them. Cancelled when input.cancel was set.
  Result<BuiltImage> build(const BuildInput& input);

  /// Removes cache entries and blobs not used for `older_than`. Returns bytes freed.
  Result<uint64_t> prune_cache(std::chrono::seconds older_than);

 private:
  ExecutorOptions opts_;
};

}  // namespace berth::builder
