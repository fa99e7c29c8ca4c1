// SPDX-License-Identifier: Apache-2.0
// The build service: build projects (a git source, a Dockerfile, a target repository and a
// role), a persistent build queue, and the triggers that fill it (a GitHub-compatible webhook,
// a push to berth's own git remote, `berth build start`). A build fetches the commit
// (SOURCE), runs the optional buildspec.yml and builds the Dockerfile (BUILD), and pushes
// REPO:TAG and REPO:<7-char commit> through the registry with the project's role (PUSH); the
// deploy controller's auto-deploy takes it from there.
//
// Public API of src/build (the parser, layer writer, git and webhook helpers and the
// executor are private to the module). All methods block (store, files, thread hand-offs):
// call them through run_blocking, never on an I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace berth {
class SecretBox;
}  // namespace berth
namespace berth::store {
class MetadataStore;
}  // namespace berth::store
namespace berth::registry {
class Registry;
}  // namespace berth::registry
namespace berth::runtime {
class Runtime;
class ImagePreparer;
}  // namespace berth::runtime
namespace berth::iam {
class PolicyAuthorizer;
}  // namespace berth::iam

namespace berth::builder {

/// A build project's configuration.
struct ProjectSpec {
  std::string name;             // [a-z0-9][a-z0-9-]{0,62}
  std::string git_url;          // "" = builds only from berth's own remote (/git/NAME.git)
  std::string branch = "main";  // branch filter: a name or a glob ("release/*")
  std::string repository;       // target repository, "web/app"
  std::string tag = "latest";
  std::string dockerfile = "Dockerfile";  // relative to the repository root
  std::string context = ".";              // relative to the repository root
  std::string role;                       // the role builds pull and push as; "" = as `owner`
  /// Set by the API, never by a request: the principal that created or last changed the
  /// project ("user/alice"). A project without a role builds with this principal's rights, so
  /// a build can read and write only what its author could. "" = berth's own rights (IAM off).
  std::string owner;
  std::map<std::string, std::string> build_args;
  std::map<std::string, std::string> secret_build_args;  // sealed at rest, masked in logs
  std::string git_username;  // credentials for git_url (http(s)); the password is sealed
  std::string git_password;
};

/// Parses and validates a create/update request body over `base` (fields absent keep base's
/// values). InvalidArgument naming the field: "git: file:// remotes are disabled
/// (build.allow_file_remotes)", "repository: ...", "branch: ...".
Result<ProjectSpec> project_from_request(const Json& body, ProjectSpec base,
                                         bool allow_file_remotes);
/// The API's view of a spec: secret values never appear (secret_build_args lists names; the
/// git password is "****" when set; a password inside git_url is masked).
Json project_to_view(const ProjectSpec& spec);

struct ProjectView {
  ProjectSpec spec;
  std::string webhook_path;  // "/hooks/github/NAME"
  std::string git_path;      // "/git/NAME.git"
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

struct ProjectCreated {
  ProjectView view;
  std::string webhook_secret;  // shown once, at creation (and on rotation)
};

/// One Dockerfile step of a build, for `build show`.
struct BuildStep {
  int line = 0;
  std::string text;
  bool cached = false;
  int64_t ms = 0;
};

struct BuildView {
  int64_t id = 0;
  std::string project;
  std::string status;  // QUEUED IN_PROGRESS SUCCEEDED FAILED STOPPED
  std::string phase;   // SOURCE BUILD PUSH while running, the last phase reached afterwards
  std::string reason;  // why it failed or stopped; "" otherwise
  std::string commit;  // full id once known ("" while a branch head is still to resolve)
  std::string branch;
  std::string trigger;  // "webhook push to main", "git push by user/alice", "manual by ..."
  std::string source;   // the URL fetched (credentials masked)
  std::string image;    // "web/app:latest"
  std::vector<std::string> tags;            // every tag pushed: {"latest", "1a2b3c4"}
  std::string image_digest;                 // the pushed manifest's digest
  std::map<std::string, int64_t> phase_ms;  // SOURCE/BUILD/PUSH -> wall time
  std::vector<BuildStep> steps;
  int64_t created_at = 0;
  int64_t started_at = 0;
  int64_t finished_at = 0;
};

/// What POST /hooks/github/<project> answers.
struct WebhookReply {
  unsigned status = 202;  // 200 ping, 202 queued or ignored, 401 signature, 404 project, 400
  std::string message;    // one sentence (decide()'s reason, or why it was refused)
  int64_t build_id = 0;   // the queued build, when one was
};

struct ServiceDeps {
  store::MetadataStore& store;
  registry::Registry& registry;
  runtime::Runtime* runtime = nullptr;  // null: builds fail with unavailable_reason
  runtime::ImagePreparer* preparer = nullptr;
  const iam::PolicyAuthorizer* authorizer = nullptr;  // null: roles are not checked
  std::shared_ptr<SecretBox> box;
  std::string data_dir;  // DATA: build/ (work, cache, logs) and git/ (bare repositories)
  int max_concurrent = 1;
  bool allow_file_remotes = false;
  std::string builder_image;           // image for buildspec.yml commands ("" = buildspecs fail)
  std::chrono::seconds timeout{3600};  // per build
  std::string unavailable_reason;      // why there is no runtime
};

class Service {
 public:
  explicit Service(ServiceDeps deps);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  /// Recovers the queue (a build IN_PROGRESS when berthd stopped is queued again, its log
  /// saying so) and starts max_concurrent workers.
  Status start();
  /// Stops the workers; running builds are killed and stay queued for the next start.
  void stop();

  Result<ProjectCreated> create_project(ProjectSpec spec);
  Result<ProjectView> update_project(const std::string& name, ProjectSpec spec);
  Result<ProjectView> get_project(const std::string& name);
  Result<std::vector<ProjectView>> list_projects();
  /// Stops its builds and removes the project, its builds, logs and bare repository.
  Status delete_project(const std::string& name);

  /// Queues a build of `commit_or_ref` ("" = the head of the project's branch filter when it
  /// is a plain name; InvalidArgument when it is a glob). A queued build of the same branch
  /// that has not started is marked STOPPED ("superseded by build N").
  Result<BuildView> start_build(const std::string& project, const std::string& commit_or_ref,
                                const std::string& trigger);
  Result<BuildView> get_build(int64_t id);
  /// Newest first; "" project = all projects.
  Result<std::vector<BuildView>> list_builds(const std::string& project, int limit);
  /// QUEUED or IN_PROGRESS -> STOPPED (the running step is killed). FailedPrecondition when
  /// it has finished.
  Result<BuildView> stop_build(int64_t id);
  /// The build's log file (plain text lines, secrets masked); it grows while the build runs.
  Result<std::string> log_path(int64_t id);
  /// The base images' digests that builds running in this berthd resolved (FROM, a buildspec's
  /// builder image): lifecycle rules must not expire them mid-build.
  std::vector<std::string> base_digests_in_use();

  /// POST /hooks/github/<project>: verifies X-Hub-Signature-256 against the project's secret
  /// before anything else (401, nothing queued), then answers ping (200) or queues a build
  /// for a push to a matching branch (202), or says why it ignored the event (202).
  Result<WebhookReply> github_webhook(const std::string& project, const std::string& event,
                                      const std::string& signature, const std::string& body);

  /// berth's own git remote: the directory holding NAME.git bare repositories (created with
  /// the project).
  std::string git_root() const;
  /// The refs of the project's bare repository (before a receive-pack).
  Result<std::map<std::string, std::string>> git_refs(const std::string& project);
  /// After a receive-pack: queues a build for each updated branch that matches the filter,
  /// building from the bare repository. Returns the builds queued.
  Result<std::vector<int64_t>> git_pushed(const std::string& project,
                                          const std::map<std::string, std::string>& before,
                                          const std::string& principal);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace berth::builder
