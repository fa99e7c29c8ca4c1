// SPDX-License-Identifier: Apache-2.0
// One build, on its worker's thread: SOURCE (fetch the commit), BUILD (buildspec.yml, then the
// Dockerfile executor with base images resolved through berth's registry), PUSH (with the
// project's role), with phase timings and the FAILED reason.
#include <cerrno>
#include <cstring>

#include "builder/service_internal.h"

namespace berth::builder {

namespace {

// A failure caused by a full disk: berth's own writes say NoSpace; a RUN step, git or tar
// only say it in their output.
bool disk_full(const Error& e) {
  return e.code() == Errc::NoSpace ||
         e.message().find(std::strerror(ENOSPC)) != std::string::npos ||
         e.message().find(std::strerror(EDQUOT)) != std::string::npos;
}

}  // namespace

std::string Service::Impl::build_principal(const ProjectSpec& spec) {
  if (!spec.role.empty()) {
    return cat("role/", spec.role);
  }
  if (spec.owner.find('/') != std::string::npos) {
    return spec.owner;
  }
  return kSystemBuild;
}

Result<BaseImage> Service::Impl::resolve_base_for(const ProjectSpec& spec, Running& r,
                                                  const std::string& reference) {
  auto base = resolve_base(spec, reference);
  if (base) {
    std::lock_guard lock(mu);
    r.base_digests.push_back(base->digest);
  }
  return base;
}

Result<BaseImage> Service::Impl::resolve_base(const ProjectSpec& spec,
                                              const std::string& reference) {
  // Read as docker reads it: berth's own host dropped, unqualified names through the default
  // upstream ("busybox:stable" -> "docker.io/library/busybox:stable").
  std::string ref = deps.registry.qualify(reference);
  auto [repo, tag_or_digest] = split_reference(ref);
  std::string who = build_principal(spec);
  if (who != kSystemBuild && deps.authorizer != nullptr) {
    iam::Request req{who, "registry:Pull", cat("repository/", repo)};
    if (!deps.authorizer->decide(req).allowed) {
      std::string shown = who;
      shown[shown.find('/')] = ' ';  // "role builder-web", as push_local says it
      return Error(Errc::PermissionDenied,
                   cat("AccessDenied: ", shown, " may not registry:Pull on repository ", repo));
    }
  }
  if (deps.registry.pulls_through(repo)) {
    if (deps.preparer == nullptr) {
      return Error(Errc::FailedPrecondition, deps.unavailable_reason.empty()
                                                 ? std::string("builds need the container runtime")
                                                 : deps.unavailable_reason);
    }
    auto pulled =
        deps.registry.pull_image(who, repo, tag_or_digest, runtime::host_platform().str());
    if (!pulled) {
      return std::move(pulled).error().with_context(cat("base image ", reference));
    }
  }
  auto missing = [&] {
    // "ghcr.io/org/app": another registry's image, which no upstream pulls through.
    std::string first = repo.substr(0, repo.find('/'));
    if (repo.find('/') != std::string::npos &&
        (first.find_first_of(".:") != std::string::npos || first == "localhost") &&
        !deps.registry.pulls_through(repo)) {
      return Error(Errc::NotFound,
                   cat("base image ", reference, " is on ", first,
                       ", which berth does not pull through: add it with `berth registry upstream "
                       "create NAME --url https://",
                       first, " --prefix ", first, "`, or push the image to berth"));
    }
    return Error(Errc::NotFound,
                 cat("base image ", reference, " is not in berth's registry: push it there first"));
  };
  auto rec = deps.store.get_repository(repo);
  if (!rec) {
    return missing();
  }
  auto m = deps.store.get_manifest(rec->id, tag_or_digest);
  if (!m) {
    return missing();
  }
  if (deps.preparer == nullptr) {
    return Error(Errc::FailedPrecondition, deps.unavailable_reason.empty()
                                               ? std::string("builds need the container runtime")
                                               : deps.unavailable_reason);
  }
  BaseImage base;
  base.reference = reference;
  base.repository = repo;
  BERTH_ASSIGN_OR_RETURN(base.prepared, deps.preparer->prepare(repo, m->digest));
  base.digest = base.prepared.digest;
  BERTH_ASSIGN_OR_RETURN(auto image_manifest, deps.store.get_manifest(rec->id, base.digest));
  BERTH_ASSIGN_OR_RETURN(auto parsed,
                         oci::parse_manifest(image_manifest.content, image_manifest.media_type));
  BERTH_ASSIGN_OR_RETURN(auto config_path, deps.registry.blob_file(base.prepared.config_digest));
  BERTH_ASSIGN_OR_RETURN(base.config_json, fs::read_file(config_path));
  for (const auto& d : parsed.layers) {
    registry::LocalBlob blob;
    blob.digest = d.digest.str();
    BERTH_ASSIGN_OR_RETURN(blob.path, deps.registry.blob_file(blob.digest));
    blob.size = d.size;
    blob.media_type = d.media_type;
    base.layer_blobs.push_back(std::move(blob));
  }
  return base;
}

Status Service::Impl::run_buildspec(const store::BuildRecord& b, const ProjectSpec& spec,
                                    Running& r, BuildLog& blog, const std::string& src) {
  BERTH_ASSIGN_OR_RETURN(
      auto text, fs::read_regular_file(cat(src, "/buildspec.yml"), 1 << 20, "buildspec.yml"));
  BERTH_ASSIGN_OR_RETURN(auto bs, parse_buildspec(text));
  if (deps.builder_image.empty()) {
    return Error(Errc::FailedPrecondition, "buildspec.yml needs build.builder_image to be set");
  }
  blog.line(cat("buildspec.yml: running in ", deps.builder_image));
  auto base = resolve_base_for(spec, r, deps.builder_image);
  if (!base) {
    return std::move(base).error().with_context("buildspec.yml: build.builder_image");
  }
  if (deps.runtime == nullptr) {
    return Error(Errc::FailedPrecondition, deps.unavailable_reason);
  }
  std::vector<std::string> env = base->prepared.config.env;
  for (const auto& [k, v] : bs.variables) {
    std::string prefix = cat(k, "=");
    env.erase(std::remove_if(env.begin(), env.end(),
                             [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }),
              env.end());
    env.push_back(cat(k, "=", v));
  }
  std::vector<std::string> lowers = base->prepared.layer_dirs;
  std::string dir = cat(work_dir(b.id), "/buildspec");
  int n = 0;
  for (const auto& phase : bs.phases) {
    blog.line(cat("buildspec.yml: phase ", phase.name));
    for (const auto& command : phase.commands) {
      if (r.cancel) {
        return Error(Errc::Cancelled, "build cancelled");
      }
      ++n;
      std::string upper = cat(dir, "/", std::to_string(n), "/upper");
      std::string work = cat(dir, "/", std::to_string(n), "/work");
      BERTH_TRY(fs::make_dirs(upper));
      BERTH_TRY(fs::make_dirs(work));
      blog.line(cat("$ ", command));
      runtime::TaskSpec t;
      t.id = cat("build-", std::to_string(b.id), "-spec-", std::to_string(n));
      t.lower_dirs = lowers;
      t.upper_dir = upper;
      t.work_dir = work;
      t.args = {"sh", "-c", command};
      t.env = env;
      t.cwd = "/src";
      t.host_network = true;
      t.binds.push_back(runtime::TaskSpec::Bind{src, "/src", false});
      t.output = [&blog](std::string_view, std::string_view line) { blog.line(line); };
      auto left = std::chrono::duration_cast<milliseconds>(r.deadline - Clock::now());
      t.timeout = std::max(left, milliseconds(1));
      t.cancel = &r.cancel;
      auto exit = deps.runtime->run_task(t);
      if (!exit) {
        return std::move(exit).error().with_context(
            cat("buildspec.yml: phases.", phase.name, ": `", command, "`"));
      }
      if (exit->exit_code != 0 || exit->signal != 0) {
        return Error(Errc::FailedPrecondition,
                     cat("buildspec.yml: phases.", phase.name, ": `", command, "` ", exit->str()));
      }
      // The next command sees this one's changes to the builder's filesystem too.
      lowers.push_back(upper);
    }
  }
  return ok();
}

Status Service::Impl::execute(store::BuildRecord& b, const ProjectSpec& spec, Running& r,
                              BuildLog& blog, std::map<std::string, int64_t>& phase_ms,
                              std::vector<StepTiming>& steps) {
  auto cancelled = [&]() -> Status {
    if (r.cancel) {
      return Error(Errc::Cancelled, "build cancelled");
    }
    return ok();
  };
  auto remaining = [&] {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(r.deadline - Clock::now());
    return std::max(left, std::chrono::seconds(1));
  };
  auto enter = [&](const char* phase) {
    b.phase = phase;
    if (auto st = deps.store.update_build(b); !st) {
      log->warn("build update failed id={} error={}", b.id, st.error().message());
    }
    blog.line(cat("==> ", phase));
  };
  if (deps.runtime == nullptr) {
    return Error(Errc::FailedPrecondition,
                 deps.unavailable_reason.empty()
                     ? std::string("builds are not available: no container runtime")
                     : deps.unavailable_reason);
  }

  // SOURCE
  auto t0 = Clock::now();
  enter("SOURCE");
  std::string url;
  GitAuth auth;
  if (b.source == git_path(b.project)) {
    url = cat("file://", bare_repo(b.project));
  } else {
    url = spec.git_url;
    if (url.empty()) {
      return Error(Errc::FailedPrecondition, "the project has no git URL");
    }
    if (is_file_remote(url) && !deps.allow_file_remotes) {
      return Error(Errc::InvalidArgument,
                   "git: file:// remotes are disabled (build.allow_file_remotes)");
    }
    auth.username = spec.git_username;
    auth.password = spec.git_password;
    blog.add_secrets(auth.secrets());
  }
  std::string work = work_dir(b.id);
  std::string src = cat(work, "/src");
  std::error_code ec;
  stdfs::remove_all(work, ec);
  BERTH_TRY(fs::make_dirs(work));
  auto glog = [&blog](std::string_view line) { blog.line(line); };
  if (b.commit_id.empty()) {
    blog.line(cat("resolving ", b.branch, " at ", b.source));
    auto commit = resolve_ref(url, b.branch, auth, std::min(remaining(), std::chrono::seconds(60)));
    BERTH_TRY(cancelled());
    if (!commit) {
      return commit.error();
    }
    b.commit_id = *commit;
    if (auto st = deps.store.update_build(b); !st) {
      log->warn("build update failed id={} error={}", b.id, st.error().message());
    }
  }
  FetchOptions fo;
  fo.timeout = remaining();
  fo.object_cache = git_cache(b.project, url);
  {
    std::lock_guard lock(mu);
    r.git_cache = fo.object_cache;
  }
  BERTH_TRY(fs::make_dirs(git_cache_root(b.project)));
  if (!b.branch.empty() && validate_ref(b.branch)) {
    fo.fallback_ref = b.branch;
  }
  auto fetched = fetch_commit(url, b.commit_id, src, auth, glog, fo);
  BERTH_TRY(cancelled());
  if (!fetched) {
    return fetched.error();
  }
  b.commit_id = *fetched;
  phase_ms["SOURCE"] = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();

  // BUILD
  t0 = Clock::now();
  enter("BUILD");
  struct stat bst {};
  if (::lstat(cat(src, "/buildspec.yml").c_str(), &bst) == 0) {
    BERTH_TRY(run_buildspec(b, spec, r, blog, src));
    BERTH_TRY(cancelled());
  }
  BERTH_ASSIGN_OR_RETURN(auto context_dir, inside(src, spec.context, "context"));
  BERTH_ASSIGN_OR_RETURN(auto dockerfile, inside(src, spec.dockerfile, "dockerfile"));
  if (!stdfs::is_regular_file(dockerfile, ec)) {
    return Error(Errc::NotFound, cat("dockerfile: ", spec.dockerfile, " does not exist in commit ",
                                     short_commit(b.commit_id)));
  }
  if (!stdfs::is_directory(context_dir, ec)) {
    return Error(Errc::NotFound, cat("context: ", spec.context, " is not a directory in commit ",
                                     short_commit(b.commit_id)));
  }
  ExecutorOptions eo;
  eo.root = build_root();
  eo.runtime = deps.runtime;
  eo.preparer = deps.preparer;
  Executor executor(eo);
  BuildInput in;
  in.id = std::to_string(b.id);
  in.context_dir = context_dir;
  in.dockerfile = dockerfile;
  in.build_args = spec.build_args;
  for (const auto& [k, v] : spec.secret_build_args) {
    in.build_args[k] = v;
  }
  if (auto it = spec.build_args.find("SOURCE_DATE_EPOCH"); it != spec.build_args.end()) {
    // As BuildKit reads it: layer mtimes are clamped to it and it is the image's "created",
    // so the same commit builds to the same digest.
    in.source_date_epoch = std::stoll(it->second);
  }
  in.labels["org.opencontainers.image.revision"] = b.commit_id;
  in.labels["org.opencontainers.image.source"] = b.source;
  in.base_images = [this, &spec, &r](const std::string& ref) {
    return resolve_base_for(spec, r, ref);
  };
  in.secrets = project_secrets(spec);
  in.log = glog;
  in.cancel = &r.cancel;
  auto built = executor.build(in);
  BERTH_TRY(cancelled());
  if (!built) {
    return built.error();
  }
  steps = built->steps;
  phase_ms["BUILD"] = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();

  // PUSH
  t0 = Clock::now();
  enter("PUSH");
  registry::LocalImage image;
  image.repository = spec.repository;
  image.tags = {spec.tag};
  if (short_commit(b.commit_id) != spec.tag) {
    image.tags.push_back(short_commit(b.commit_id));
  }
  image.manifest = built->manifest;
  image.media_type = built->media_type;
  std::set<std::string> seen;
  for (const auto* blob : {&built->config}) {
    seen.insert(blob->digest);
    image.blobs.push_back(*blob);
  }
  for (const auto& layer : built->layers) {
    if (seen.insert(layer.digest).second) {
      image.blobs.push_back(layer);
    }
  }
  std::string principal = build_principal(spec);
  BERTH_ASSIGN_OR_RETURN(b.digest, deps.registry.push_local(principal, image));
  b.tags = image.tags;
  std::string names;
  for (const auto& t : image.tags) {
    names += names.empty() ? "" : ", ";
    names += cat(spec.repository, ":", t);
  }
  blog.line(cat("pushed ", names, " as ", principal, ": ", b.digest));
  phase_ms["PUSH"] = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  return ok();
}

void Service::Impl::run(store::BuildRecord b, Running& r) {
  auto t0 = Clock::now();
  std::map<std::string, int64_t> phase_ms;
  std::vector<StepTiming> steps;
  Status result = ok();
  std::vector<std::string> secrets;
  std::optional<ProjectSpec> spec;
  auto rec = deps.store.get_build_project(b.project);
  if (rec) {
    if (auto s = load_spec(*rec); s) {
      spec = std::move(*s);
      secrets = project_secrets(*spec);
    } else {
      result = s.error();
    }
    if (auto secret = deps.box->open(rec->webhook_secret); secret) {
      secrets.push_back(*secret);
    }
  } else {
    result = rec.error();
  }
  BuildLog blog(log_file(b.id), secrets);
  blog.line(cat("build ", std::to_string(b.id), " of ", b.project, " started (", b.trigger, ")"));
  if (spec) {
    result = execute(b, *spec, r, blog, phase_ms, steps);
  }
  std::error_code ec;
  stdfs::remove_all(work_dir(b.id), ec);

  bool requeue = false;
  {
    std::lock_guard lock(mu);
    if (result) {
      b.status = kSucceeded;
      b.reason.clear();
    } else if (r.timed_out) {
      b.status = kFailed;
      b.reason = cat("build timed out after ", duration_text(deps.timeout));
    } else if (r.cancel && r.user_stop) {
      b.status = kStopped;
      b.reason = "stopped by request";
    } else if (r.cancel && stopping) {
      requeue = true;
    } else {
      b.status = kFailed;
      b.reason = blog.mask(result.error().message());
      if (disk_full(result.error())) {
        // The operator's problem, not the Dockerfile's: one sentence for the user (no server
        // paths), the details in the build's log and one error line for the operator.
        blog.line(cat("error: ", b.reason));
        log->error("storage full (ENOSPC) during build id={} project={} error={}", b.id, b.project,
                   result.error().message());
        b.reason =
            "the disk under berth's data directory is full: free space, then start the "
            "build again";
      }
    }
  }
  int64_t total = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  b.phase_ms = phase_ms_json(phase_ms).dump();
  b.steps = steps_json(steps).dump();
  if (requeue) {
    b.status = kQueued;
    b.phase.clear();
    b.started_at = 0;
    blog.line("berthd stopping; build queued again");
  } else {
    b.finished_at = now_unix();
    if (b.status == kSucceeded) {
      blog.line(cat("build ", std::to_string(b.id), " SUCCEEDED in ", seconds_text(total), ": ",
                    b.image, "@", b.digest));
    } else {
      blog.line(cat("build ", std::to_string(b.id), " ", b.status, ": ", b.reason));
    }
  }
  // The outcome must reach the store. On a full disk SQLite refuses the write, and a build
  // left IN_PROGRESS would never end: retry each second until there is room again, or until
  // berthd stops (the next start then queues the build again).
  for (bool told = false;;) {
    auto st = deps.store.update_build(b);
    if (st) {
      break;
    }
    if (!told) {
      log->error("build update failed, retrying each second id={} error={}", b.id,
                 st.error().message());
      told = true;
    }
    std::unique_lock lock(mu);
    if (cv.wait_for(lock, std::chrono::seconds(1), [this] { return stopping; })) {
      break;
    }
  }
  log->info("build finished id={} project={} status={} ms={}", b.id, b.project,
            requeue ? kQueued : b.status, total);
}

}  // namespace berth::builder
